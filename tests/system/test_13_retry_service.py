"""The retry service (services/retry) on its own, fed hand-made records on `retry`: it keeps
each one in PostgreSQL, redelivers it to retry.<group> when due (never before), gives up
after the last attempt or at the deadline (a dead letter plus one final notice), sends
invalid records straight to dead-letter, and loses nothing when killed."""

import os
import signal
import time
import uuid
from collections import Counter

import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BIN, Proc, message_headers, service_env, wait_assigned, wait_for

HEADER_ORDER = ["dozen-original-topic", "dozen-original-partition", "dozen-original-offset",
                "dozen-group", "dozen-attempt", "dozen-max-attempts", "dozen-not-before",
                "dozen-deadline", "dozen-reason", "dozen-error", "dozen-first-failed-at"]


def now_ms():
    return int(time.time() * 1000)


def new_group(broker):
    """A consumer group of this test alone, with its redelivery topic retry.<group>."""
    group = f"t13-{uuid.uuid4().hex[:10]}"
    topic = "retry." + group
    admin = AdminClient({"bootstrap.servers": broker})
    try:
        admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(15)
    except Exception:
        # The dev broker (librdkafka's mock cluster) cannot CreateTopics, but creates a
        # topic a producer writes to: a probe record that no test reads as one of its own.
        p = Producer({"bootstrap.servers": broker})
        p.produce(topic, value=b"probe")
        assert p.flush(10) == 0
    wait_for(lambda: topic in admin.list_topics(timeout=5).topics, 15, f"topic {topic}")
    return group


class Reader:
    """Reads a topic from the beginning and keeps what it read: raw key and value bytes,
    headers as a list of (name, bytes) pairs, and the record's timestamp."""

    def __init__(self, broker, topic):
        self.topic = topic
        self.records = []
        self.c = Consumer({"bootstrap.servers": broker, "group.id": "t13-" + uuid.uuid4().hex,
                           "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        md = self.c.list_topics(topic, timeout=10)
        parts = list(md.topics[topic].partitions)
        assert parts, f"{topic} has no partitions"
        self.c.assign([TopicPartition(topic, p, 0) for p in parts])

    def poll(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            m = self.c.poll(0.1)
            if m is None:
                continue
            assert not m.error(), f"consume error on {self.topic}: {m.error()}"
            headers = list(message_headers(m))
            self.records.append({
                "key": m.key(), "value": m.value(), "headers": headers,
                "h": {k: (v.decode(errors="replace") if v is not None else None)
                      for k, v in headers},
                "ts": m.timestamp()[1], "partition": m.partition(), "offset": m.offset()})

    def wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s on {self.topic} waiting for "
                                     f"{what} ({len(self.records)} records read)")
            self.poll(0.2)
        return self.records

    def of(self, ce_ids):
        ce_ids = set(ce_ids)
        return [r for r in self.records if r["h"].get("ce_id") in ce_ids]

    def close(self):
        self.c.close()


def retry_record(group, not_before, attempt=1, max_attempts=5, deadline=None,
                 reason="factory_unavailable", error="HTTP 503 from the legacy factory",
                 key=b"sku-1", value=b'{"sku": "sku-1", "n": 1}', extra=()):
    """A record as a consumer hands it to `retry`: the original's ce_* headers (and extra
    ones), then the dozen-* headers in the contract's order. Returns (ce_id, key, value,
    headers)."""
    ce_id = str(uuid.uuid4())
    headers = [("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()),
               ("ce_source", b"/dozen/test"), ("ce_type", b"stock.depleted"),
               ("ce_time", b"2026-01-01T00:00:00.000Z"), ("content-type", b"application/json")]
    headers += list(extra)
    dozen = {"dozen-original-topic": "stock.depleted", "dozen-original-partition": "4",
             "dozen-original-offset": "1234", "dozen-group": group,
             "dozen-attempt": str(attempt), "dozen-max-attempts": str(max_attempts),
             "dozen-not-before": str(not_before), "dozen-reason": reason,
             "dozen-error": error, "dozen-first-failed-at": str(now_ms() - 60000)}
    if deadline is not None:
        dozen["dozen-deadline"] = str(deadline)
    headers += [(k, dozen[k].encode()) for k in HEADER_ORDER if k in dozen]
    return ce_id, key, value, headers


def produce(broker, records):
    p = Producer({"bootstrap.servers": broker, "enable.idempotence": True, "linger.ms": 5})
    for _, key, value, headers in records:
        p.produce("retry", key=key, value=value, headers=headers)
        p.poll(0)
    assert p.flush(60) == 0


def stats(svc):
    r = requests.get(svc.url + "/stats", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def pending_of(pg, group):
    return pg.query("SELECT count(*) FROM retry_pending WHERE group_id = %s", (group,))[0][0]


def start_retry(stack, **extra):
    svc = stack.retry(**extra).start()
    wait_assigned(svc)
    return svc


def test_redelivered_when_due_never_before_with_everything_kept(stack, migrated, broker):
    group = new_group(broker)
    svc = start_retry(stack)
    t0 = now_ms()
    odd_key, odd_value = b"k\x00\xffey", bytes(range(256))
    records = [retry_record(group, t0 + 2500 + 100 * i, attempt=1 + i % 3) for i in range(10)]
    records.append(retry_record(group, t0 + 3000, deadline=t0 + 60000, key=odd_key,
                                value=odd_value,
                                extra=[("traceparent", b"00-abc-def-01"), ("x-bin", b"\x00\x01\xfe"),
                                       ("x-null", None), ("x-empty", b"")]))
    records.append(retry_record(group, t0 + 2000, key=None))
    produce(broker, records)
    sent = {ce: (key, value, headers) for ce, key, value, headers in records}

    # Stored, not sent: /stats shows them under the owner's group and reason.
    wait_for(lambda: pending_of(migrated, group) == len(records), 10, "the records stored")
    s = stats(svc)
    assert s["pending"][group] == {"factory_unavailable": len(records)}
    assert s["pending_total"] >= len(records)
    assert s["next_due_at"] is not None and s["next_due_at"].endswith("Z")

    reader = Reader(broker, "retry." + group)
    try:
        # Nothing of ours may appear before the earliest not-before.
        reader.poll(max(0.0, (t0 + 2000 - now_ms()) / 1000 - 0.3))
        assert reader.of(sent) == [], "redelivered before its dozen-not-before"
        reader.wait(lambda rs: len(reader.of(sent)) >= len(records), 15, "every redelivery")
        reader.poll(1.0)  # and no second copy
        mine = reader.of(sent)
        assert len(mine) == len(records)
        lateness = []
        for r in mine:
            key, value, headers = sent[r["h"]["ce_id"]]
            assert r["key"] == key and r["value"] == value
            assert r["headers"] == headers, "headers must be the retry record's, unchanged"
            due = int(r["h"]["dozen-not-before"])
            assert r["ts"] >= due, f"sent {due - r['ts']} ms before its dozen-not-before"
            lateness.append(r["ts"] - due)
        assert max(lateness) < 1000, f"lateness {sorted(lateness)} ms"
    finally:
        reader.close()
    wait_for(lambda: pending_of(migrated, group) == 0, 10, "the delivered rows deleted")
    assert group not in stats(svc)["pending"]
    assert "retry_redelivered group=" + group in svc.log()


def test_last_attempt_gives_up_to_dead_letter_with_one_expired_notice(stack, migrated, broker):
    group = new_group(broker)
    svc = start_retry(stack)
    before = stats(svc)["dead_letters"]["by_reason"].get("max_attempts", 0)
    t0 = now_ms()
    # attempt 4 of at most 3 retries: given up at its due time.
    gone = retry_record(group, t0 + 1500, attempt=4, max_attempts=3, error="timeout after 10 s")
    # attempt 3 of 3 is still delivered.
    last = retry_record(group, t0 + 1500, attempt=3, max_attempts=3)
    produce(broker, [gone, last])

    dead, redel = Reader(broker, "dead-letter"), Reader(broker, "retry." + group)
    try:
        dead.wait(lambda rs: dead.of([gone[0]]), 20, "the dead letter")
        redel.wait(lambda rs: len(redel.of([gone[0], last[0]])) >= 2, 20, "the notice")
        dead.poll(1.0)
        redel.poll(1.0)
        [d] = dead.of([gone[0]])
        assert d["ts"] >= t0 + 1500
        assert d["h"]["dozen-reason"] == "max_attempts"
        assert d["h"]["dozen-last-reason"] == "factory_unavailable"
        assert d["h"]["dozen-error"] == "timeout after 10 s"
        assert d["h"]["dozen-group"] == group
        assert (d["h"]["dozen-original-topic"], d["h"]["dozen-original-partition"],
                d["h"]["dozen-original-offset"]) == ("stock.depleted", "4", "1234")
        assert d["h"]["dozen-attempt"] == "4" and d["h"]["dozen-max-attempts"] == "3"
        assert d["value"] == gone[2] and d["key"] == gone[1]
        assert "dozen-expired" not in d["h"]

        [notice] = redel.of([gone[0]])
        assert notice["h"]["dozen-expired"] == "max_attempts"
        assert notice["h"]["dozen-reason"] == "factory_unavailable"
        assert notice["headers"][:-1] == gone[3], "the notice carries the record's headers"
        [ok] = redel.of([last[0]])
        assert "dozen-expired" not in ok["h"]
        assert dead.of([last[0]]) == []
    finally:
        dead.close()
        redel.close()
    wait_for(lambda: stats(svc)["dead_letters"]["by_reason"].get("max_attempts", 0) >= before + 1,
             10, "the dead letter counted")
    row = migrated.query("SELECT reason, last_reason, group_id FROM retry_dead_letters "
                         "WHERE ce_id = %s", (gone[0],))
    assert row == [("max_attempts", "factory_unavailable", group)]


def test_deadline_exceeded_is_given_up_at_the_deadline(stack, migrated, broker):
    group = new_group(broker)
    svc = start_retry(stack)
    t0 = now_ms()
    # The next attempt would come after the deadline: given up at the deadline, not later.
    late = retry_record(group, t0 + 30000, deadline=t0 + 2000, reason="feed_late")
    # A deadline after not-before: redelivered normally, the deadline kept.
    fine = retry_record(group, t0 + 1500, deadline=t0 + 30000, reason="feed_late")
    produce(broker, [late, fine])

    dead, redel = Reader(broker, "dead-letter"), Reader(broker, "retry." + group)
    try:
        dead.wait(lambda rs: dead.of([late[0]]), 20, "the dead letter")
        redel.wait(lambda rs: len(redel.of([late[0], fine[0]])) >= 2, 20, "notice + redelivery")
        redel.poll(1.0)
        [d] = dead.of([late[0]])
        assert d["h"]["dozen-reason"] == "deadline_exceeded"
        assert d["h"]["dozen-last-reason"] == "feed_late"
        assert d["h"]["dozen-deadline"] == str(t0 + 2000)
        assert t0 + 2000 <= d["ts"] < t0 + 3000, "given up at the deadline"
        [notice] = redel.of([late[0]])
        assert notice["h"]["dozen-expired"] == "deadline_exceeded"
        [ok] = redel.of([fine[0]])
        assert "dozen-expired" not in ok["h"] and ok["h"]["dozen-deadline"] == str(t0 + 30000)
        assert ok["ts"] >= t0 + 1500
    finally:
        dead.close()
        redel.close()
    assert pending_of(migrated, group) == 0
    assert "reason=deadline_exceeded" in svc.log()


def test_invalid_records_go_straight_to_dead_letter(stack, migrated, broker):
    group = new_group(broker)
    svc = start_retry(stack)
    before = stats(svc)["dead_letters"]["by_reason"].get("invalid_record", 0)
    t0 = now_ms()

    def broken(name, value, drop=False):
        ce, key, val, headers = retry_record(group, t0)
        headers = [(k, v) for k, v in headers if k != name]
        if not drop:
            headers.append((name, value))
        return ce, key, val, headers

    cases = {
        "missing group": (broken("dozen-group", None, drop=True), "missing header 'dozen-group'"),
        "attempt text": (broken("dozen-attempt", b"two"), "header 'dozen-attempt': 'two' is not"),
        "attempt zero": (broken("dozen-attempt", b"0"), "header 'dozen-attempt': '0' is not"),
        "negative partition": (broken("dozen-original-partition", b"-1"),
                               "header 'dozen-original-partition'"),
        "huge offset": (broken("dozen-original-offset", b"99999999999999999999"),
                        "header 'dozen-original-offset'"),
        "group with a space": (broken("dozen-group", b"a b"), "header 'dozen-group': 'a b'"),
        "not-before in 10000 AD": (broken("dozen-not-before", b"253402300800000"),
                                   "header 'dozen-not-before'"),
        "empty deadline": (broken("dozen-deadline", b""), "header 'dozen-deadline': ''"),
        "binary reason": (broken("dozen-reason", b"\x00\xff"), "header 'dozen-reason': '??'"),
    }
    records = [c for c, _ in cases.values()]
    bare_ce = str(uuid.uuid4())
    # No dozen-* header at all, and one without any header.
    records.append((bare_ce, b"k", b"v", [("ce_id", bare_ce.encode())]))
    records.append((None, None, b"no headers", []))
    good = retry_record(group, t0 + 500)  # behind them, still redelivered: nothing blocks
    produce(broker, records + [good])

    dead, redel = Reader(broker, "dead-letter"), Reader(broker, "retry." + group)
    try:
        want = [c[0] for c in records if c[0] is not None]
        dead.wait(lambda rs: len(dead.of(want)) >= len(want), 20, "every invalid record")
        redel.wait(lambda rs: redel.of([good[0]]), 20, "the valid record behind them")
        for name, ((ce, key, value, _), fragment) in cases.items():
            [d] = dead.of([ce])
            assert d["h"]["dozen-reason"] == "invalid_record", name
            assert fragment in d["h"]["dozen-error"], f"{name}: {d['h']['dozen-error']}"
            assert d["h"]["dozen-group"] == "retry", "the retry service is who failed"
            assert d["h"]["dozen-original-topic"] == "retry"
            assert d["key"] == key and d["value"] == value
            assert d["h"]["ce_type"] == "stock.depleted", "the record's own headers are kept"
            # Earlier dozen-* headers are gone; each contract header appears at most once.
            names = Counter(k for k, _ in d["headers"])
            assert all(n == 1 for k, n in names.items() if k.startswith("dozen-")), names
        [bare] = dead.of([bare_ce])
        assert "missing header 'dozen-original-topic'" in bare["h"]["dozen-error"]
        dead.wait(lambda rs: any(r["value"] == b"no headers" for r in rs), 10, "headerless")
    finally:
        dead.close()
        redel.close()
    wait_for(lambda: stats(svc)["dead_letters"]["by_reason"].get("invalid_record", 0)
             >= before + len(records), 10, "the invalid records counted")
    assert svc.healthy()
    assert pending_of(migrated, group) == 0


def test_a_group_without_redelivery_topic_is_dead_lettered(stack, migrated, broker):
    svc = start_retry(stack)
    group = f"t13-nowhere-{uuid.uuid4().hex[:8]}"  # no retry.<group> topic
    rec = retry_record(group, now_ms())
    produce(broker, [rec])
    dead = Reader(broker, "dead-letter")
    try:
        dead.wait(lambda rs: dead.of([rec[0]]), 20, "the dead letter")
        [d] = dead.of([rec[0]])
        assert d["h"]["dozen-reason"] == "unknown_group"
        assert f"no topic 'retry.{group}'" in d["h"]["dozen-error"]
        assert d["h"]["dozen-last-reason"] == "factory_unavailable"
    finally:
        dead.close()
    admin = AdminClient({"bootstrap.servers": broker})
    assert "retry." + group not in admin.list_topics(timeout=5).topics, \
        "the service must not create a topic by writing to it"
    assert svc.healthy()


def test_sigkill_with_1000_pending_loses_nothing(stack, migrated, broker):
    group = new_group(broker)
    t0 = now_ms()
    records = [retry_record(group, t0 + 8000 + 4 * i, key=f"sku-{i % 17}".encode())
               for i in range(1000)]
    ce_ids = {r[0] for r in records}
    produce(broker, records)
    reader = Reader(broker, "retry." + group)
    try:
        # Killed while storing (small batches widen the window): what was stored stays,
        # what was not is read again, since offsets follow the rows.
        svc = stack.retry(RETRY_BATCH=20).start()
        wait_for(lambda: pending_of(migrated, group) > 0, 30, "the first records stored")
        svc.kill(signal.SIGKILL)
        stored = pending_of(migrated, group)
        assert 0 < stored <= 1000
        print(f"\nkilled with {stored} of 1000 stored")

        # Killed again in the middle of the redeliveries.
        svc2 = stack.retry().start()
        reader.wait(lambda rs: len(reader.of(ce_ids)) >= 200, 60, "redeliveries under way")
        svc2.kill(signal.SIGKILL)

        svc3 = stack.retry().start()
        reader.wait(lambda rs: {r["h"].get("ce_id") for r in rs} >= ce_ids, 90,
                    "all 1000 redelivered")
        reader.poll(1.0)
        got = Counter(r["h"]["ce_id"] for r in reader.of(ce_ids))
        assert len(got) == 1000 and set(got) == ce_ids
        strays = [r for r in reader.records if r["h"].get("ce_id") not in ce_ids
                  and r["value"] != b"probe"]
        assert strays == []
        dupes = sum(n - 1 for n in got.values())
        print(f"{dupes} redelivered twice (killed between the broker's ack and the DELETE)")
        assert dupes <= 500, "only the round in flight at the kill may be sent twice"
        for r in reader.of(ce_ids):
            assert r["ts"] >= int(r["h"]["dozen-not-before"])
    finally:
        reader.close()
    wait_for(lambda: pending_of(migrated, group) == 0, 20, "every row deleted")
    assert migrated.query("SELECT count(DISTINCT (retry_partition, retry_offset)) FROM "
                          "retry_dead_letters WHERE group_id = %s", (group,))[0][0] == 0
    assert svc3.healthy()


def test_one_scheduler_at_a_time_and_a_standby_takes_over(stack, migrated, broker):
    group = new_group(broker)
    first = start_retry(stack)
    wait_for(lambda: "retry_scheduler_active" in first.log(), 10, "the first scheduler active")
    second = stack.retry().start()
    wait_for(lambda: "retry_scheduler_standby" in second.log(), 10, "the second one standing by")
    assert "retry_scheduler_active" not in second.log()
    wait_assigned(second)  # the two consumers share the partitions of `retry` now

    # Due while both instances run: only the active scheduler sends them.
    t0 = now_ms()
    records = [retry_record(group, t0 + 2000 + 10 * i) for i in range(100)]
    produce(broker, records)
    reader = Reader(broker, "retry." + group)
    try:
        want = {r[0] for r in records}
        reader.wait(lambda rs: {r["h"].get("ce_id") for r in rs} >= want, 60, "the redeliveries")
        wait_for(lambda: pending_of(migrated, group) == 0, 20, "the rows deleted")
        reader.poll(1.0)
        assert len(reader.of(want)) == 100, "each record sent once: one scheduler at a time"

        first.kill(signal.SIGKILL)  # its session ends, and with it the lock
        wait_for(lambda: "retry_scheduler_active" in second.log(), 10, "the standby taking over")
        more = [retry_record(group, now_ms() + 500) for _ in range(10)]
        produce(broker, more)
        reader.wait(lambda rs: len(reader.of(r[0] for r in more)) >= 10, 60,
                    "redeliveries by the new active scheduler")
    finally:
        reader.close()


def test_database_outage_delays_but_loses_nothing(stack, migrated, broker):
    group = new_group(broker)
    svc = start_retry(stack)
    t0 = now_ms()
    early = [retry_record(group, t0 + 1500 + 10 * i) for i in range(20)]
    produce(broker, early)
    wait_for(lambda: pending_of(migrated, group) == 20, 20, "the first records stored")
    migrated.stop("fast")
    try:
        # Written while PostgreSQL is down: they wait in Kafka, uncommitted.
        late = [retry_record(group, t0 + 2000 + 10 * i) for i in range(20)]
        produce(broker, late)
        time.sleep(3)
        r = requests.get(svc.url + "/healthz", timeout=5)
        assert r.status_code == 503
    finally:
        migrated.start()
    reader = Reader(broker, "retry." + group)
    try:
        want = {r[0] for r in early + late}
        reader.wait(lambda rs: {r["h"].get("ce_id") for r in rs} >= want, 60,
                    "every record after the outage")
    finally:
        reader.close()
    wait_for(svc.healthy, 20, "healthy again")
    wait_for(lambda: pending_of(migrated, group) == 0, 20, "every row deleted")


def test_stats_survive_a_restart(stack, migrated, broker):
    group = new_group(broker)
    svc = start_retry(stack)
    t0 = now_ms()
    far = t0 + 3600 * 1000
    produce(broker, [retry_record(group, far, reason="feed_late") for _ in range(3)] +
            [retry_record(group, far + 1000, reason="factory_unavailable")] +
            [retry_record(group, t0, attempt=9, max_attempts=2)])
    wait_for(lambda: stats(svc)["pending"].get(group) == {"feed_late": 3,
                                                           "factory_unavailable": 1},
             15, "the pending records in /stats")
    wait_for(lambda: stats(svc)["dead_letters"]["by_reason"].get("max_attempts", 0) >= 1, 10,
             "the given-up record counted")
    first = stats(svc)
    assert first["dead_letters"]["total"] == sum(first["dead_letters"]["by_reason"].values())
    assert svc.stop() == 0

    again = stack.retry().start()
    second = stats(again)
    assert second["pending"][group] == first["pending"][group]
    # Kept in PostgreSQL, not in memory: a restart starts from the counts, not from zero
    # (other tests' records may have been given up meanwhile: never fewer).
    for reason, n in first["dead_letters"]["by_reason"].items():
        assert second["dead_letters"]["by_reason"][reason] >= n
    assert second["dead_letters"]["total"] >= first["dead_letters"]["total"]
    # Nothing else is due earlier in this session than an hour away, unless another test
    # left something: the answer is a time no later than ours.
    ours = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(far // 1000)) + f".{far % 1000:03d}Z"
    assert second["next_due_at"] is not None and second["next_due_at"] <= ours
    migrated.execute("DELETE FROM retry_pending WHERE group_id = %s", (group,))


def test_many_pending_are_redelivered_on_time(stack, migrated, broker):
    """2,000 records due over 10 s, stored ahead: each goes out well within a second."""
    group = new_group(broker)
    svc = start_retry(stack)
    t0 = now_ms() + 8000
    records = [retry_record(group, t0 + (i * 10000) // 2000) for i in range(2000)]
    produce(broker, records)
    wait_for(lambda: pending_of(migrated, group) == 2000, 7, "2000 records stored before due")
    reader = Reader(broker, "retry." + group)
    try:
        want = {r[0] for r in records}
        reader.wait(lambda rs: len({r["h"].get("ce_id") for r in rs} & want) == 2000, 40,
                    "2000 redeliveries")
        late = sorted(r["ts"] - int(r["h"]["dozen-not-before"]) for r in reader.of(want))
    finally:
        reader.close()
    assert late[0] >= 0, "sent before its not-before"
    p99 = late[int(len(late) * 0.99) - 1]
    print(f"\nlateness ms: median {late[len(late) // 2]}, p99 {p99}, max {late[-1]}")
    assert p99 < 500 and late[-1] < 1000, f"p99 {p99} ms, max {late[-1]} ms"
    assert svc.healthy()


def test_bad_configuration_is_refused(migrated, broker, workdir):
    for var, value, fragment in [("RETRY_BATCH", "0", "RETRY_BATCH"),
                                 ("RETRY_BATCH", "lots", "RETRY_BATCH"),
                                 ("RETRY_GROUP", "no spaces", "RETRY_GROUP"),
                                 ("RETRY_PORT", "70000", "RETRY_PORT"),
                                 ("DB_POOL_SIZE", "1", "DB_POOL_SIZE"),
                                 ("TOPICS_WAIT", "soon", "TOPICS_WAIT")]:
        env = service_env(migrated, broker, **{var: value})
        p = Proc("retry", env, workdir=workdir).start()
        p.p.wait(timeout=20)
        assert p.p.returncode == 1, f"{var}={value}: exit {p.p.returncode}"
        assert fragment in p.log(), p.log()
    env = service_env(migrated, broker)
    del env["DATABASE_URL"]
    p = Proc("retry", env, workdir=workdir).start()
    p.p.wait(timeout=20)
    assert p.p.returncode == 1 and "DATABASE_URL" in p.log()
    assert os.path.exists(os.path.join(BIN, "retry"))
