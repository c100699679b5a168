"""retry_load.py: the load side of `make bench-retry` (tests/bench/retry.sh): hand-made retry
records for one consumer group on topic `retry`, as a consumer hands them over
(docs/retry.md: the original's ce_* headers, then the dozen-* headers), and the reading of
their redeliveries on retry.<group>.

Subcommands (arguments are NAME=VALUE words):
  topic    broker group                 makes sure retry.<group> exists (a probe record)
  pending  broker group n url timeout [window]
                                        n records due in a day; waits until GET url/stats
                                        shows pending_total n (prints PENDING n seconds).
                                        window > 0: never more than window records produced
                                        but not yet pending (produced in steps of window/2,
                                        each once GET /stats shows room); 0 (default): one
                                        burst
  lateness broker group n spread_ms lead_ms timeout
                                        n records due uniformly over spread_ms from now +
                                        lead_ms, read back on retry.<group>; prints LATENESS
                                        lines (by receive time and by record timestamp)
Exit status 0 on success, 1 when the service did not do what was expected, 2 on misuse."""

import json
import math
import random
import sys
import time
import urllib.request
import uuid

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

HEADER_ORDER = ["dozen-original-topic", "dozen-original-partition", "dozen-original-offset",
                "dozen-group", "dozen-attempt", "dozen-max-attempts", "dozen-not-before",
                "dozen-deadline", "dozen-reason", "dozen-error", "dozen-first-failed-at"]


class Problem(Exception):
    pass


def now_ms():
    return int(time.time() * 1000)


def retry_record(group, not_before, rng, seq):
    """(ce_id, key, value, headers) of one record as a consumer hands it to `retry`."""
    ce_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    sku = f"sku-{rng.randrange(100)}"
    value = json.dumps({"sku": sku, "quantity": 1, "bench_seq": seq}).encode()
    headers = [("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()),
               ("ce_source", b"/dozen/bench"), ("ce_type", b"stock.depleted"),
               ("ce_time", b"2026-01-01T00:00:00.000Z"), ("content-type", b"application/json")]
    dozen = {"dozen-original-topic": "stock.depleted", "dozen-original-partition": "0",
             "dozen-original-offset": str(seq), "dozen-group": group,
             "dozen-attempt": "1", "dozen-max-attempts": "8",
             "dozen-not-before": str(not_before), "dozen-reason": "factory_unavailable",
             "dozen-error": "HTTP 503 from the legacy factory",
             "dozen-first-failed-at": str(now_ms() - 1000)}
    headers += [(k, dozen[k].encode()) for k in HEADER_ORDER if k in dozen]
    return ce_id, sku.encode(), value, headers


def new_producer(broker):
    return Producer({"bootstrap.servers": broker, "enable.idempotence": True, "linger.ms": 5,
                     "queue.buffering.max.messages": 200000})


def produce(broker, records, p=None):
    """Produces records to `retry` and waits until the broker has them all; p: a producer
    to use (a new one when None)."""
    p = p if p is not None else new_producer(broker)
    failed = []

    def on_delivery(err, _msg):
        if err is not None:
            failed.append(err)

    for _, key, value, headers in records:
        while True:
            try:
                p.produce("retry", key=key, value=value, headers=headers,
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    if p.flush(120) != 0 or failed:
        raise Problem(f"producing to retry failed: {failed[:3]} ({len(failed)} errors)")


def cmd_topic(a):
    topic = "retry." + a["group"]
    p = Producer({"bootstrap.servers": a["broker"]})
    p.produce(topic, value=b"probe")  # no ce_id: not one of the bench's records
    if p.flush(15) != 0:
        raise Problem(f"could not write a probe record to {topic}")
    c = Consumer({"bootstrap.servers": a["broker"], "group.id": "bench-retry-probe"})
    try:
        deadline = time.monotonic() + 15
        while True:
            md = c.list_topics(topic, timeout=5)
            if topic in md.topics and md.topics[topic].partitions:
                return
            if time.monotonic() > deadline:
                raise Problem(f"topic {topic} does not exist after 15 s")
            time.sleep(0.2)
    finally:
        c.close()


def pending_total(url):
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return int(json.load(r)["pending_total"])


def cmd_pending(a):
    n, timeout = int(a["n"]), float(a["timeout"])
    window = int(a.get("window", "0"))
    # The steps of a paced run: half the window, so that the next step can be produced while
    # the service stores the last one.
    step = n if window <= 0 else max(1, window // 2)
    rng = random.Random(n)
    far = now_ms() + 86400 * 1000
    t0 = time.monotonic()
    p = new_producer(a["broker"])
    produced, got = 0, 0
    while produced < n:
        size = min(step, n - produced)
        while window > 0 and produced + size - got > window:
            if time.monotonic() - t0 > timeout:
                raise Problem(f"pending_total {got} of {produced} produced "
                              f"after {timeout:.0f} s")
            time.sleep(0.05)
            got = pending_total(a["url"])
        produce(a["broker"], (retry_record(a["group"], far + i, rng, i)
                              for i in range(produced, produced + size)), p)
        produced += size
    produced_s = time.monotonic() - t0
    while True:
        got = pending_total(a["url"])
        if got == n:
            break
        if got > n:
            raise Problem(f"pending_total {got}, more than the {n} produced")
        if time.monotonic() - t0 > timeout:
            raise Problem(f"pending_total {got} of {n} after {timeout:.0f} s")
        time.sleep(0.2)
    print(f"PENDING n={n} window={window} produce_s={produced_s:.1f} "
          f"stored_s={time.monotonic() - t0:.1f}", flush=True)


def nearest_rank(v, p):
    return v[max(0, math.ceil(p * len(v)) - 1)]


def summary(name, values):
    v = sorted(values)
    return (f"LATENESS by={name} n={len(v)} min_ms={v[0]:.1f} p50_ms={nearest_rank(v, 0.5):.1f} "
            f"p99_ms={nearest_rank(v, 0.99):.1f} max_ms={v[-1]:.1f} "
            f"early={sum(1 for x in v if x < 0)}")


def cmd_lateness(a):
    broker, group, n = a["broker"], a["group"], int(a["n"])
    spread, lead, timeout = int(a["spread_ms"]), int(a["lead_ms"]), float(a["timeout"])
    topic = "retry." + group
    # The reader first, at the end of retry.<group>: only what is redelivered from now on.
    c = Consumer({"bootstrap.servers": broker, "group.id": "bench-retry-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "fetch.wait.max.ms": 10,
                  "fetch.error.backoff.ms": 10})
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions) if topic in md.topics else []
    if not parts:
        raise Problem(f"{topic} has no partitions")
    c.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
    c.poll(0.5)  # let the assignment settle on the end offsets before producing

    rng = random.Random(1)
    start = now_ms() + lead
    records, due = [], {}
    for i in range(n):
        nb = start + rng.randrange(spread)
        rec = retry_record(group, nb, rng, i)
        records.append(rec)
        due[rec[0]] = nb
    t_produce = now_ms()
    produce(broker, records)
    produce_ms = now_ms() - t_produce
    if now_ms() > start:
        raise Problem(f"producing took {produce_ms} ms, past the first not-before")

    by_recv, by_ts, dup, seen = [], [], 0, set()
    deadline = time.monotonic() + (start + spread - now_ms()) / 1000 + timeout
    while len(seen) < n and time.monotonic() < deadline:
        for m in c.consume(1000, 0.05):
            recv = time.time() * 1000
            if m.error():
                raise Problem(f"consume error on {topic}: {m.error()}")
            ce = dict(m.headers() or []).get("ce_id")
            ce = ce.decode(errors="replace") if ce is not None else None
            if ce not in due:
                continue
            if ce in seen:
                dup += 1
                continue
            seen.add(ce)
            by_recv.append(recv - due[ce])
            by_ts.append(m.timestamp()[1] - due[ce])
    c.close()
    print(f"PRODUCED n={n} produce_ms={produce_ms} first_due_in_ms={lead} spread_ms={spread}",
          flush=True)
    if by_recv:
        print(summary("receive", by_recv), flush=True)
        print(summary("timestamp", by_ts), flush=True)
    print(f"SEEN n={len(seen)} of={n} duplicates={dup}", flush=True)
    if len(seen) < n:
        raise Problem(f"only {len(seen)} of {n} redeliveries seen on {topic} "
                      f"{timeout:.0f} s after the last not-before")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("topic", "pending", "lateness"):
        print(__doc__, file=sys.stderr)
        return 2
    a = dict(arg.split("=", 1) for arg in sys.argv[2:])
    try:
        {"topic": cmd_topic, "pending": cmd_pending, "lateness": cmd_lateness}[sys.argv[1]](a)
    except Problem as e:
        print("PROBLEM", e, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
