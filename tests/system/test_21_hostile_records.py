"""Hostile records (issue 11): no input can make a consumer stop advancing a partition.

For every consumed topic (stock.replenished, stock.depleted, bulletins, the groups'
retry.<group> topics, and `retry` itself), a seeded RNG makes a bounded number of mutated
records (random bytes, missing, duplicated, oversized, null and non-UTF-8 headers, values
of the wrong type, huge keys), each built so that it can never be valid, then one valid
record on the same partition. The valid one must be processed, every mutated one must be
in `dead-letter` (once per consuming group) with reason invalid_record and a readable
error, and no service may crash. The second test reproduces the numbered defects: a
ce_time PostgreSQL refuses, a non-UTF-8 dozen-reason, a redelivery without dozen-*
headers, a 1500-byte key with NUL bytes, and a record whose data PostgreSQL refuses
(SQLSTATE 23514) although every header is valid.

T21_SEED and T21_RECORDS (mutated records a topic, default 150) change the run."""

import json
import os
import random
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import message_headers, wait_assigned, wait_for

SEED = int(os.environ.get("T21_SEED", "2111"))
PER_TOPIC = int(os.environ.get("T21_RECORDS", "150"))
TIME_OK = b"2026-01-01T00:00:00.000Z"
CE_NAMES = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"]
DOZEN_REQUIRED = ["dozen-original-topic", "dozen-original-partition",
                  "dozen-original-offset", "dozen-group", "dozen-attempt",
                  "dozen-max-attempts", "dozen-not-before", "dozen-reason",
                  "dozen-first-failed-at"]
MARK = "t21-id"          # our own header: every copy of a record carries it


def now_ms():
    return int(time.time() * 1000)


def ce_headers(ce_type, ce_id=None, ce_time=TIME_OK):
    return [("ce_specversion", b"1.0"), ("ce_id", (ce_id or str(uuid.uuid4())).encode()),
            ("ce_source", b"/dozen/t21"), ("ce_type", ce_type.encode()),
            ("ce_time", ce_time), ("content-type", b"application/json")]


def dozen_headers(group, original_topic, attempt=1):
    return [("dozen-original-topic", original_topic.encode()),
            ("dozen-original-partition", b"0"), ("dozen-original-offset", b"17"),
            ("dozen-group", group.encode()), ("dozen-attempt", str(attempt).encode()),
            ("dozen-max-attempts", b"8"), ("dozen-not-before", str(now_ms()).encode()),
            ("dozen-reason", b"t21_reason"),
            ("dozen-first-failed-at", str(now_ms() - 1000).encode())]


def set_header(headers, name, value):
    """Replaces every header called name by one with value (None: a null value)."""
    return [(k, v) for k, v in headers if k != name] + [(name, value)]


def drop_header(headers, name):
    return [(k, v) for k, v in headers if k != name]


def junk(rng, lo=1, hi=64):
    return bytes(rng.randrange(256) for _ in range(rng.randint(lo, hi)))


# How each consumed topic's records look, and which groups consume them.
REQUIRED = {"stock.replenished": ["sku", "quantity"], "stock.depleted": ["sku"],
            "bulletin.requested": ["date", "deadline_ms"]}
EVENT = {
    "stock.replenished": ("stock.replenished", {"sku": "SKU", "quantity": 3}),
    "stock.depleted": ("stock.depleted", {"sku": "SKU", "requested": 1, "available": 0}),
    "bulletins": ("bulletin.requested", {"date": "2001-01-01", "deadline_ms": 1}),
}


def wrong_value(rng, ce_type, fields):
    """A JSON value of the event's shape with one field of the wrong type or range, or a
    value that is no JSON object at all."""
    kind = rng.randrange(9)
    if kind == 0:
        return b"\xff" + junk(rng, 0, 300)                 # random bytes
    if kind == 1:
        return b""                                         # empty
    if kind == 2:
        return None                                        # a null value
    if kind == 3:
        return json.dumps([fields]).encode()               # not an object
    if kind == 4:
        return b'{"sku": "a", "sku": "b"}'                 # duplicate key
    data = dict(fields)
    name = rng.choice(sorted(data))
    if kind == 5:
        del data[rng.choice(REQUIRED[ce_type])]            # a required field missing
    elif kind == 6:
        data[name] = rng.choice([[1], {"x": 1}, None, True, 1.5])
    elif kind == 7:
        data[name] = ("x" * 5000 if isinstance(data[name], str) else -1)
    else:
        data[name] = (12345 if isinstance(data[name], str) else str(data[name]))
    return json.dumps(data).encode()


def break_ce(rng, headers):
    """headers made invalid at the CloudEvents level, one way at random."""
    name = rng.choice(CE_NAMES)
    kind = rng.randrange(9)
    if kind == 0:
        return drop_header(headers, name)
    if kind == 1:
        return set_header(headers, name, None)
    if kind == 2:
        return set_header(headers, name, b"")
    if kind == 3:
        return set_header(headers, name, b"x" * rng.choice([200, 5000]))       # oversized
    if kind == 4:
        return set_header(headers, rng.choice(["ce_source", "ce_type", "ce_time", "ce_id"]),
                          b"\xff\xfe" + junk(rng, 1, 8))                       # not UTF-8
    if kind == 5:
        return headers + [("ce_id", b"not-a-uuid")]         # duplicated, the last one bad
    if kind == 6:
        return set_header(headers, "ce_time", rng.choice(
            [b"yesterday", b"2026-02-30T00:00:00Z", b"2026-01-01 00:00:00",
             b"2026-01-01T25:00:00Z", b"1767225600000", junk(rng, 1, 30)]))
    if kind == 7:
        return set_header(headers, "ce_specversion", rng.choice([b"0.3", b"1.0\x00", b"1"]))
    return set_header(headers, "ce_type", rng.choice([b"order.completed", b"nope",
                                                      b"stock.replenished\n"]))


def break_dozen(rng, headers, for_retry_topic):
    """headers made invalid at the dozen-* level (on `retry`, a foreign group is valid)."""
    kinds = 8 if for_retry_topic else 9
    kind = rng.randrange(kinds)
    if kind == 0:
        return [(k, v) for k, v in headers if not k.startswith("dozen-")]   # defect 3
    if kind == 1:
        return drop_header(headers, rng.choice(DOZEN_REQUIRED))
    if kind == 2:
        return set_header(headers, rng.choice(["dozen-reason", "dozen-group",
                                               "dozen-original-topic"]),
                          b"\xff\xfe" + junk(rng, 1, 8))                    # defect 2
    if kind == 3:
        return set_header(headers, "dozen-attempt", rng.choice(
            [b"abc", b"-1", b"99999999999999999999", b"", b" 1"] +
            ([b"0"] if for_retry_topic else [])))
    if kind == 4:
        return set_header(headers, "dozen-original-partition", rng.choice([b"-1", b"1e3"]))
    if kind == 5:
        return set_header(headers, rng.choice(["dozen-not-before", "dozen-first-failed-at"]),
                          rng.choice([b"soon", b"999999999999999999", junk(rng)]))
    if kind == 6:
        return set_header(headers, "dozen-deadline", b"0")
    if kind == 7:
        return headers + [("dozen-attempt", b"x")]          # duplicated, the last one bad
    return set_header(headers, "dozen-group", b"someone-else")   # not this group's


def hostile(rng, topic, groups, sku):
    """One mutated record for topic: (key, value, headers) that no consumer may accept."""
    redelivery = topic.startswith("retry.") or topic == "retry"
    original = {"retry.stock": "stock.replenished", "retry.factory": "stock.depleted",
                "retry.notifier": "stock.replenished"}.get(topic, "stock.replenished")
    ce_type, fields = EVENT[topic if topic in EVENT else original]
    fields = {k: (sku if v == "SKU" else v) for k, v in fields.items()}
    headers = ce_headers(ce_type)
    value = json.dumps(fields).encode()
    if redelivery:
        group = "stock" if topic == "retry" else topic[len("retry."):]
        headers += dozen_headers(group, original, attempt=1)
    if topic == "retry":
        headers = break_dozen(rng, headers, True)
    elif redelivery and rng.random() < 0.5:
        headers = break_dozen(rng, headers, False)
    elif rng.random() < 0.5:
        headers = break_ce(rng, headers)
    else:
        value = wrong_value(rng, ce_type, fields)
    # What may come on top and must not matter: odd keys and headers of no one's.
    key = sku.encode()
    roll = rng.random()
    if roll < 0.15:
        key = junk(rng, 1024, 6000)                       # huge, with NUL bytes
    elif roll < 0.25:
        key = None
    if rng.random() < 0.2:
        headers = headers + [("x-junk", junk(rng, 0, 200)), ("x-junk", None)]
    return key, value, headers + [(MARK, str(uuid.uuid4()).encode())]


def produce(broker, topic, records):
    """Writes (key, value, headers) records to partition 0 of topic, in order; returns
    their offsets."""
    p = Producer({"bootstrap.servers": broker, "enable.idempotence": True, "linger.ms": 5,
                  "message.max.bytes": 2000000})
    offsets = [None] * len(records)

    def landed(err, msg, i):
        assert err is None, f"produce to {topic} failed: {err}"
        offsets[i] = msg.offset()

    for i, (key, value, headers) in enumerate(records):
        p.produce(topic, key=key, value=value, headers=headers, partition=0,
                  on_delivery=lambda err, msg, i=i: landed(err, msg, i))
        p.poll(0)
    assert p.flush(60) == 0
    assert None not in offsets
    return offsets


class DeadLetters:
    """Reads dead-letter as it grows, keeping every record that carries our mark."""

    def __init__(self, broker):
        self.c = Consumer({"bootstrap.servers": broker, "group.id": "t21-" + uuid.uuid4().hex,
                           "enable.auto.commit": False})
        parts = self.c.list_topics("dead-letter", timeout=10).topics["dead-letter"].partitions
        self.c.assign([TopicPartition("dead-letter", p, 0) for p in parts])
        self.by_mark = {}

    def poll(self, seconds=0.5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            m = self.c.poll(0.1)
            if m is None or m.error():
                continue
            headers = {}
            for k, v in message_headers(m):
                headers[k] = v
            mark = headers.get(MARK)
            if mark is not None:
                self.by_mark.setdefault(mark.decode(), []).append(
                    {"key": m.key(), "headers": headers, "partition": m.partition()})

    def wait(self, marks_groups, timeout):
        """Waits until every (mark, group) pair is there; returns the missing ones."""
        deadline = time.monotonic() + timeout
        missing = set(marks_groups)
        while missing and time.monotonic() < deadline:
            self.poll()
            missing = {(mark, g) for mark, g in missing
                       if not any(d["headers"].get("dozen-group") == g.encode()
                                  for d in self.by_mark.get(mark, []))}
        return missing

    def close(self):
        self.c.close()


def readable(raw):
    """A dead letter's dozen-error is readable: UTF-8, no control characters, not empty."""
    if not raw:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch >= " " and ch != "\x7f" for ch in text)


def committed(broker, group, topic, partition=0):
    c = Consumer({"bootstrap.servers": broker, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tp = c.committed([TopicPartition(topic, partition)], timeout=10)[0]
        return tp.offset
    finally:
        c.close()


def start_all(stack, pg):
    legacy = stack.legacy_factory().start()
    retry = stack.retry().start()
    stock = stack.stock().start()
    factory = stack.factory(legacy).start()
    feed = stack.open_data().start()
    gateway = stack.sms_gateway(SMS_ACCOUNT_SID="ACt21", SMS_AUTH_TOKEN="t21-token").start()
    notifier = stack.notifier(feed, gateway, SMS_FROM="+15005550006").start()
    for svc in (retry, stock, factory, notifier):
        wait_assigned(svc)
    return {"stock": stock, "factory": factory, "notifier": notifier, "retry": retry,
            "legacy": legacy}


def level(pg, sku):
    return pg.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]


def orders_of(pg, sku):
    return pg.query("SELECT count(*) FROM production_orders WHERE sku = %s", (sku,))[0][0]


def valid_record(topic, sku, quantity=None):
    original = {"retry.stock": "stock.replenished", "retry.factory": "stock.depleted",
                "retry.notifier": "stock.replenished", "retry": "stock.replenished"}
    base = original.get(topic, topic)
    ce_type, fields = EVENT[base]
    fields = {k: (sku if v == "SKU" else v) for k, v in fields.items()}
    if quantity is not None:
        fields["quantity"] = quantity
    headers = ce_headers(ce_type)
    if topic.startswith("retry"):
        group = topic[len("retry."):] if topic != "retry" else "stock"
        headers += dozen_headers(group, base)
        if topic == "retry":
            # Due in an hour: it waits in retry_pending, nothing is redelivered meanwhile.
            headers = set_header(headers, "dozen-not-before", str(now_ms() + 3600000).encode())
    return sku.encode(), json.dumps(fields).encode(), headers


def test_hostile_records_never_stop_a_partition(stack, migrated, broker, make_sku):
    pg = migrated
    svcs = start_all(stack, pg)
    rng = random.Random(SEED)
    sku_stock = make_sku(10, prefix="t21s")
    sku_dep, sku_redep = make_sku(0, prefix="t21d"), make_sku(0, prefix="t21r")
    pg.execute("INSERT INTO bulletins (day, state, trigger, scheduled_at, deadline_at) "
               "VALUES ('2001-01-01', 'sent', 'manual', now(), now()) "
               "ON CONFLICT (day) DO NOTHING")
    consumers = {"stock.replenished": ["stock", "notifier"], "stock.depleted": ["factory"],
                 "bulletins": ["notifier"], "retry.stock": ["stock"],
                 "retry.factory": ["factory"], "retry.notifier": ["notifier"],
                 "retry": ["retry"]}
    valid = {"stock.replenished": valid_record("stock.replenished", sku_stock, 7),
             "retry.stock": valid_record("retry.stock", sku_stock, 5),
             "stock.depleted": valid_record("stock.depleted", sku_dep),
             "retry.factory": valid_record("retry.factory", sku_redep),
             "bulletins": valid_record("bulletins", "unused"),
             "retry.notifier": valid_record("retry.notifier", "t21-nobody", 1),
             "retry": valid_record("retry", "t21-nobody", 1)}
    dead = DeadLetters(broker)
    expected, valid_at = set(), {}
    try:
        for topic, groups in consumers.items():
            records = [hostile(rng, topic, groups, sku_stock if "factory" not in groups
                               else sku_dep) for _ in range(PER_TOPIC)]
            offsets = produce(broker, topic, records + [valid[topic]])
            valid_at[topic] = offsets[-1]
            for key, value, headers in records:
                mark = dict(headers)[MARK].decode()
                expected |= {(mark, g) for g in groups}

        assert len(expected) == PER_TOPIC * sum(len(g) for g in consumers.values())

        # The valid records were processed, after everything before them.
        wait_for(lambda: level(pg, sku_stock) == 10 + 7 + 5, 180,
                 "stock to apply both valid replenishments")
        wait_for(lambda: orders_of(pg, sku_dep) == 1, 180, "the valid depletion's order")
        wait_for(lambda: orders_of(pg, sku_redep) == 1, 180, "the redelivered depletion's order")
        for topic, groups in consumers.items():
            for g in groups:
                wait_for(lambda: committed(broker, g, topic) > valid_at[topic], 60,
                         f"{g} to commit past the valid record of {topic}")

        missing = dead.wait(expected, 120)
        assert not missing, f"{len(missing)} of {len(expected)} mutated records are not " \
                            f"in dead-letter, e.g. {sorted(missing)[:5]}"
        unreadable = []
        for mark, g in expected:
            for d in dead.by_mark[mark]:
                if d["headers"].get("dozen-group") != g.encode():
                    continue
                if d["headers"].get("dozen-reason") != b"invalid_record" or \
                        not readable(d["headers"].get("dozen-error")):
                    unreadable.append((g, d["headers"].get("dozen-reason"),
                                       d["headers"].get("dozen-error")))
        assert not unreadable, f"dead letters without a readable reason: {unreadable[:5]}"
        # The level moved by the valid records only: nothing mutated was applied.
        assert level(pg, sku_stock) == 22
        for name, svc in svcs.items():
            assert svc.alive(), f"{name} crashed:\n{svc.log()[-4000:]}"
    finally:
        dead.close()


def test_defects_bad_time_dozen_headers_and_keys(stack, migrated, broker, make_sku):
    """Issue 11, defects 2 and 3 and the hand-over's key: each bad record is dead-lettered
    (not retried in place for ever) and the valid record behind it on the same partition is
    handled."""
    pg = migrated
    svcs = start_all(stack, pg)
    bad_time_sku, after_sku = make_sku(0, prefix="t21t"), make_sku(0, prefix="t21a")
    poison_sku, after_poison = make_sku(0, prefix="t21poison"), make_sku(0, prefix="t21b")
    long_key = bytes(range(256)) * 6                       # 1536 bytes, NULs included
    dead = DeadLetters(broker)

    def mark(headers):
        m = str(uuid.uuid4())
        return headers + [(MARK, m.encode())], m

    try:
        # Defect 2: a ce_time PostgreSQL refuses (22007), with a long key holding NULs.
        h, m_time = mark(ce_headers("stock.depleted", ce_time=b"not-a-timestamp"))
        # And a record whose copy is too large for any producer of ours (1,000,100 bytes
        # of value): it reaches dead-letter without its value instead of blocking.
        hb, m_big = mark(ce_headers("stock.depleted"))
        produce(broker, "stock.depleted", [
            (long_key, json.dumps({"sku": bad_time_sku}).encode(), h),
            (b"big", b"[" + b"7" * 1000098 + b"]", hb),
            valid_record("stock.depleted", after_sku)])
        # Defect 2, the retry variant: a dozen-reason that is not UTF-8.
        h2 = set_header(ce_headers("stock.depleted") + dozen_headers("factory",
                                                                     "stock.depleted"),
                        "dozen-reason", b"\xff\xfe\xfd")
        h2, m_reason = mark(h2)
        # Defect 3: ce_* headers but no dozen-* headers on retry.<group>.
        h3, m_nodozen = mark(ce_headers("stock.depleted"))
        produce(broker, "retry.factory", [
            (b"k", json.dumps({"sku": bad_time_sku}).encode(), h2),
            (b"k", json.dumps({"sku": bad_time_sku}).encode(), h3),
            valid_record("retry.factory", after_poison)])

        wait_for(lambda: orders_of(pg, after_sku) == 1, 120,
                 "the depletion behind the bad ce_time")
        wait_for(lambda: orders_of(pg, after_poison) == 1, 120,
                 "the redelivery behind the bad ones")
        missing = dead.wait({(m_time, "factory"), (m_reason, "factory"),
                             (m_nodozen, "factory"), (m_big, "factory")}, 60)
        assert not missing
        d_big = dead.by_mark[m_big][0]
        assert d_big["key"] == b"big"
        assert b"not kept, too large for dead-letter" in d_big["headers"]["dozen-error"]
        d_time = dead.by_mark[m_time][0]
        assert d_time["headers"]["dozen-reason"] == b"invalid_record"
        assert b"ce_time" in d_time["headers"]["dozen-error"]
        # The key is kept byte for byte (it was dropped at 1024 bytes or at a NUL).
        assert d_time["key"] == long_key
        d_reason = dead.by_mark[m_reason][0]
        assert d_reason["headers"]["dozen-reason"] == b"invalid_record"
        assert b"dozen-reason" in d_reason["headers"]["dozen-error"]
        assert readable(d_reason["headers"]["dozen-error"])
        d_nodozen = dead.by_mark[m_nodozen][0]
        assert d_nodozen["headers"]["dozen-error"] == \
            b"missing header 'dozen-original-topic'"
        assert orders_of(pg, bad_time_sku) == 0

        # A record every header of which is valid, but whose data PostgreSQL refuses
        # (here a CHECK added for the test: SQLSTATE 23514): dead-lettered at once with the
        # database's message, not retried in place, and the next record is handled.
        pg.execute("ALTER TABLE production_orders ADD CONSTRAINT t21_no_poison "
                   "CHECK (left(sku, 9) <> 't21poison') NOT VALID")
        try:
            k, v, h4 = valid_record("stock.depleted", poison_sku)
            h4, m_poison = mark(h4)
            later = make_sku(0, prefix="t21c")
            produce(broker, "stock.depleted", [(k, v, h4),
                                               valid_record("stock.depleted", later)])
            wait_for(lambda: orders_of(pg, later) == 1, 60, "the depletion behind the poison")
            assert not dead.wait({(m_poison, "factory")}, 30)
            d = dead.by_mark[m_poison][0]
            assert d["headers"]["dozen-reason"] == b"invalid_record"
            assert d["headers"]["dozen-error"].startswith(b"23514 ")
            assert b"t21_no_poison" in d["headers"]["dozen-error"]
            assert "record_retry_in_place_exhausted" not in svcs["factory"].log()
        finally:
            pg.execute("ALTER TABLE production_orders DROP CONSTRAINT IF EXISTS t21_no_poison")

        # A level that would leave its column's range (SQLSTATE 22003) is a data error
        # too, classified by the loop: dead-lettered with the database's message.
        full, next_sku = make_sku(2147483000, prefix="t21f"), make_sku(1, prefix="t21n")
        k, v, h7 = valid_record("stock.replenished", full, 1000000)
        h7, m_full = mark(h7)
        produce(broker, "stock.replenished", [(k, v, h7),
                                              valid_record("stock.replenished", next_sku, 4)])
        wait_for(lambda: level(pg, next_sku) == 5, 60, "the replenishment behind the overflow")
        assert not dead.wait({(m_full, "stock")}, 30)
        d = dead.by_mark[m_full]
        d = [x for x in d if x["headers"].get("dozen-group") == b"stock"][0]
        assert d["headers"]["dozen-reason"] == b"invalid_record"
        assert d["headers"]["dozen-error"].startswith(b"22003 ")
        assert level(pg, full) == 2147483000

        # The same for the retry service's own consumer: a row of its batch that
        # PostgreSQL refuses is dead-lettered, the rest of the batch is stored.
        pg.execute("ALTER TABLE retry_pending ADD CONSTRAINT t21_no_poison_reason "
                   "CHECK (reason <> 't21_poison') NOT VALID")
        try:
            k, v, h5 = valid_record("retry", "t21-nobody", 1)
            h5, m_refused = mark(set_header(h5, "dozen-reason", b"t21_poison"))
            k, v6, h6 = valid_record("retry", "t21-nobody", 2)
            after_id = dict(h6)["ce_id"].decode()
            produce(broker, "retry", [(k, v, h5), (k, v6, h6)])
            wait_for(lambda: pg.query("SELECT count(*) FROM retry_pending WHERE ce_id = %s",
                                      (after_id,))[0][0] == 1, 60,
                     "the retry record behind the refused one to be stored")
            assert not dead.wait({(m_refused, "retry")}, 30)
            d = dead.by_mark[m_refused][0]
            assert d["headers"]["dozen-reason"] == b"invalid_record"
            assert b"refused by the database: 23514" in d["headers"]["dozen-error"]
        finally:
            pg.execute("ALTER TABLE retry_pending DROP CONSTRAINT IF EXISTS "
                       "t21_no_poison_reason")
        for name, svc in svcs.items():
            assert svc.alive(), f"{name} crashed:\n{svc.log()[-4000:]}"
    finally:
        dead.close()
