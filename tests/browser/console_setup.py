"""console_setup.py: what the console test needs that a browser cannot make, on the stack
run.sh started (KAFKA_BOOTSTRAP and RUN_DIR in the environment).

  console_setup.py dead   writes one dead letter (group stock, reason handler_failed) to
                          dead-letter and prints where it landed: PARTITION:OFFSET
  console_setup.py lag N  stops the stock service (its pid from RUN_DIR/pids) and writes N
                          records to stock.replenished partition 0: the stock group lags N
  console_setup.py db     seeds PostgreSQL (DATABASE_URL) with what the console's database
                          side shows and no service of the stack will touch: two unsent
                          outbox rows of a producer no relay serves, a retry pending a day
                          from now for a group of its own, and a bulletin two days ago with
                          two failed checks; prints what it seeded as JSON
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg2
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


def db():
    now = int(time.time())
    oldest = now - 300                           # whole seconds: the page shows no less
    due_ms = (now + 86400) * 1000 + 250
    iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))  # noqa: E731
    seeded = {"producer": "browser-test", "unsent": 2, "oldest": iso(oldest),
              "group": "browser-test", "reason": "handler_failed", "pending": 1,
              "next_due": iso(due_ms // 1000)[:-1] + ".250Z",
              "failures": [[1, "not_published_yet", "browser test: not published yet"],
                           [2, "stale_date", "browser test: the feed still has the day before"]]}
    with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
        for _ in range(seeded["unsent"]):
            cur.execute("INSERT INTO outbox (producer, topic, msg_key, ce_id, ce_type, ce_source, "
                        "ce_time, payload, created_at) VALUES (%s, 'orders', 'glazed', %s, "
                        "'order.created', '/dozen/test', now(), '{}', to_timestamp(%s))",
                        (seeded["producer"], str(uuid.uuid4()), oldest))
        cur.execute("INSERT INTO retry_pending (group_id, original_topic, original_partition, "
                    "original_offset, retry_partition, retry_offset, retry_timestamp, msg_key, "
                    "msg_value, headers, ce_id, attempt, max_attempts, not_before, reason, error, "
                    "first_failed_at, due_at) VALUES (%s, 'stock.replenished', 0, 0, 0, "
                    "999999999, 1, 'glazed', '{}', '\\x01', %s, 2, 8, %s, %s, "
                    "'browser test: pending', %s, %s)",
                    (seeded["group"], str(uuid.uuid4()), due_ms, seeded["reason"],
                     now * 1000, due_ms))
        cur.execute("INSERT INTO bulletins (day, state, trigger, scheduled_at, deadline_at, "
                    "attempts, last_reason, last_error, finished_at) VALUES (current_date - 2, "
                    "'unavailable', 'schedule', now() - interval '2 days', "
                    "now() - interval '2 days' + interval '3 hours', 2, 'stale_date', %s, "
                    "now() - interval '2 days' + interval '3 hours') RETURNING day::text",
                    (seeded["failures"][1][2],))
        seeded["day"] = cur.fetchone()[0]
        for attempt, reason, error in seeded["failures"]:
            cur.execute("INSERT INTO bulletin_attempts (day, attempt, source, reason, error) "
                        "VALUES (%s, %s, 'http://feed.test/daily', %s, %s)",
                        (seeded["day"], attempt, reason, error))
    print(json.dumps(seeded))


if __name__ == "__main__":
    if sys.argv[1:2] == ["dead"]:
        dead()
    elif sys.argv[1:2] == ["lag"]:
        lag(int(sys.argv[2]))
    elif sys.argv[1:2] == ["db"]:
        db()
    else:
        sys.exit(__doc__)
