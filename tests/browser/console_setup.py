"""console_setup.py: what the console test needs that a browser cannot make, on the stack
run.sh started (KAFKA_BOOTSTRAP and RUN_DIR in the environment).

  console_setup.py dead   writes one dead letter (group stock, reason handler_failed) to
                          dead-letter and prints where it landed: PARTITION:OFFSET
  console_setup.py lag N  stops the stock service (its pid from RUN_DIR/pids) and writes N
                          records to stock.replenished partition 0: the stock group lags N
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

from confluent_kafka import Producer


def produce(topic, key, value, headers, partition):
    p = Producer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP"], "enable.idempotence": True})
    where = []
    p.produce(topic, key=key, value=value, headers=headers, partition=partition,
              on_delivery=lambda err, msg: where.append((err, msg.partition(), msg.offset())))
    if p.flush(30) != 0 or not where or where[0][0] is not None:
        sys.exit(f"console_setup: produce to {topic} failed: {where}")
    return where[0][1], where[0][2]


def dead():
    now = int(time.time() * 1000)
    ce_id = str(uuid.uuid4())
    headers = [("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()),
               ("ce_source", b"/dozen/test"), ("ce_type", b"stock.replenished"),
               ("ce_time", b"2026-01-01T00:00:00.000Z"), ("content-type", b"application/json")]
    dozen = [("dozen-original-topic", "stock.replenished"), ("dozen-original-partition", "0"),
             ("dozen-original-offset", "0"), ("dozen-group", "stock"), ("dozen-attempt", "8"),
             ("dozen-max-attempts", "8"), ("dozen-not-before", str(now)),
             ("dozen-reason", "handler_failed"), ("dozen-error", "browser test: the console must show me"),
             ("dozen-first-failed-at", str(now - 60000))]
    headers += [(k, v.encode()) for k, v in dozen]
    part, off = produce("dead-letter", b"glazed", b'{"sku":"glazed","quantity":1}', headers, 0)
    print(f"{part}:{off} {ce_id}")


def stock_caught_up():
    """True when the stock group has committed everything on stock.replenished/0."""
    out = subprocess.run([os.path.join(os.environ["DOZEN_ROOT"], "bin", "dozenctl"), "groups",
                          "stock", "--json"], capture_output=True, text=True, timeout=30)
    for g in json.loads(out.stdout or "[]"):
        for p in g["partitions"]:
            if p["topic"] == "stock.replenished" and p["partition"] == 0:
                return p["committed"] is not None and p["committed"] == p["end"]
    return False


def lag(n):
    # first a record the stock group reads and commits, so that its lag is defined
    produce("stock.replenished", b"glazed", b"{}", [], 0)
    deadline = time.monotonic() + 60
    while not stock_caught_up():
        if time.monotonic() > deadline:
            sys.exit("console_setup: the stock group did not commit stock.replenished/0 in 60 s")
        time.sleep(0.5)
    pidfile = os.path.join(os.environ["RUN_DIR"], "pids", "stock.pid")
    with open(pidfile) as f:
        pid = int(f.read().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        sys.exit("console_setup: the stock service did not stop within 20 s")
    for _ in range(n):
        produce("stock.replenished", b"glazed", b"{}", [], 0)
    print("ok")


if __name__ == "__main__":
    if sys.argv[1:2] == ["dead"]:
        dead()
    elif sys.argv[1:2] == ["lag"]:
        lag(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
