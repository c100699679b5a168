"""dozenctl dlq: listing the dead letters (with filters, unreadable ones included) and
replaying them to retry.<group> with a fresh attempt count, each at most once (recorded in
PostgreSQL), fed hand-made records on `dead-letter`.

The dead-letter topic is shared by the whole session: records of other tests may be on it,
so a test identifies its own records by ce_id and computes what a replay must do from what
is on the topic."""

import os
import shutil
import signal
import subprocess
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import BIN, message_headers, wait_for

FIRST_FAILED_AT = 1767225600123           # 2026-01-01T00:00:00.123Z
FIRST_FAILED_AT_TEXT = "2026-01-01T00:00:00.123Z"
DOZEN_ORDER = ["dozen-original-topic", "dozen-original-partition", "dozen-original-offset",
               "dozen-group", "dozen-attempt", "dozen-max-attempts", "dozen-not-before",
               "dozen-deadline", "dozen-reason", "dozen-last-reason", "dozen-error",
               "dozen-first-failed-at"]


def now_ms():
    return int(time.time() * 1000)


def clean_env(**extra):
    """The test's environment without a broker or a database of its own: no KAFKA_* and no
    DATABASE_URL leak in from the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KAFKA_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


def dozenctl(args, env, cwd=None, timeout=60, binary=None):
    return subprocess.run([binary or os.path.join(BIN, "dozenctl")] + args, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


class Dead:
    """A hand-made record of dead-letter, as a consumer or the retry service writes one."""

    def __init__(self, group, reason, attempt=9, error="HTTP 503 from the legacy factory",
                 key=b"", deadline=None, last_reason=None, readable=True):
        self.ce_id = str(uuid.uuid4())
        sku = "t14-" + uuid.uuid4().hex[:10]
        self.key = sku.encode() if key == b"" else key
        self.value = ('{"sku": "%s", "requested": 1, "available": 0, "order_id": "%s"}'
                      % (sku, uuid.uuid4())).encode()
        self.group, self.reason, self.attempt, self.error = group, reason, attempt, error
        self.orig = ("stock.depleted", 4, 1000 + int(uuid.uuid4().int % 100000))
        self.timestamp = now_ms()
        self.ce = [("ce_specversion", b"1.0"), ("ce_id", self.ce_id.encode()),
                   ("ce_source", b"/dozen/test"), ("ce_type", b"stock.depleted"),
                   ("ce_time", b"2026-01-01T00:00:00.000Z"),
                   ("content-type", b"application/json")]
        dozen = {"dozen-original-topic": self.orig[0],
                 "dozen-original-partition": str(self.orig[1]),
                 "dozen-original-offset": str(self.orig[2]), "dozen-group": group,
                 "dozen-attempt": str(attempt), "dozen-max-attempts": "8",
                 "dozen-not-before": str(now_ms()), "dozen-reason": reason,
                 "dozen-error": error, "dozen-first-failed-at": str(FIRST_FAILED_AT)}
        if deadline is not None:
            dozen["dozen-deadline"] = str(deadline)
        if last_reason is not None:
            dozen["dozen-last-reason"] = last_reason
        if not readable:
            del dozen["dozen-original-partition"]
        self.headers = self.ce + [(k, dozen[k].encode()) for k in DOZEN_ORDER if k in dozen]
        self.partition = self.offset = None

    def line(self, replayed):
        """The line `dlq list` must print for this record."""
        topic, part, off = self.orig
        error = self.error.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\x0a")
        return (f"partition={self.partition} offset={self.offset} "
                f"original={topic}/{part}/{off} group={self.group} attempts={self.attempt} "
                f"reason={self.reason} error=\"{error}\" first_failed_at={FIRST_FAILED_AT_TEXT} "
                f"ce_id={self.ce_id} replayed={replayed}")


def produce_dead(broker, records):
    """Writes records to dead-letter (a partition each, round robin) and notes where each
    one landed."""
    p = Producer({"bootstrap.servers": broker, "enable.idempotence": True, "linger.ms": 5})

    def landed(err, msg, rec):
        assert err is None, f"produce failed: {err}"
        rec.partition, rec.offset = msg.partition(), msg.offset()

    for i, rec in enumerate(records):
        p.produce("dead-letter", key=rec.key, value=rec.value, headers=rec.headers,
                  partition=i % 3, timestamp=rec.timestamp,
                  on_delivery=lambda err, msg, rec=rec: landed(err, msg, rec))
        p.poll(0)
    assert p.flush(60) == 0
    assert all(r.offset is not None for r in records)


def read_all(broker, topic, timeout=30):
    """Every record of topic from the beginning to the end of each partition: partition,
    offset, key and value bytes, headers as (name, bytes) pairs and as a dict of text."""
    c = Consumer({"bootstrap.servers": broker, "group.id": "t14-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        parts = list(c.list_topics(topic, timeout=10).topics[topic].partitions)
        assert parts, f"{topic} has no partitions"
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        records, eof = [], set()
        deadline = time.monotonic() + timeout
        while len(eof) < len(parts):
            assert time.monotonic() < deadline, f"timed out reading {topic}"
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == -191, f"consume error on {topic}: {m.error()}"
                eof.add(m.partition())
                continue
            eof.discard(m.partition())
            headers = list(message_headers(m))
            records.append({"partition": m.partition(), "offset": m.offset(), "key": m.key(),
                            "value": m.value(), "headers": headers,
                            "ts": m.timestamp()[1],
                            "h": {k: (v.decode(errors="replace") if v is not None else None)
                                  for k, v in headers}})
        return records
    finally:
        c.close()


def lines_of(out, records):
    """The lines of out that are about the given records (by ce_id)."""
    ids = {"ce_id=" + r.ce_id for r in records}
    return [l for l in out.splitlines() if any(i in l.split() for i in ids)]


def summary(out):
    [line] = [l for l in out.splitlines() if l.startswith(("replayed ", "dry run:"))
              and "skipped" in l]
    return line


def replayed_lines(out):
    return [l for l in out.splitlines() if l.startswith("replayed partition=")]


def position(line):
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    return int(fields["partition"]), int(fields["offset"])


def rows_of(pg, records):
    return {r[0]: r[1:] for r in pg.query(
        "SELECT ce_id, status, dead_partition, dead_offset, dead_timestamp, group_id, "
        "original_topic, original_partition, original_offset, replayed_at IS NOT NULL "
        "FROM dlq_replays WHERE ce_id = ANY(%s)", ([r.ce_id for r in records],))}


def test_list_shows_exactly_the_matching_records(migrated, broker, tmp_path):
    a = Dead("factory", "max_attempts", error='factory said "no"\nback\\slash',
             last_reason="factory_unavailable")
    b = Dead("factory", "unknown_sku", attempt=0, error="no such sku")
    c = Dead("stock", "max_attempts", attempt=4)
    d = Dead("stock", "invalid_record", attempt=0, error="field 'sku' is missing")
    bad = Dead("stock", "max_attempts", readable=False)
    mine = [a, b, c, d, bad]
    produce_dead(broker, mine)
    env = clean_env(KAFKA_BOOTSTRAP=broker, DATABASE_URL=migrated.url)

    out = dozenctl(["dlq", "list"], env)
    assert out.returncode == 0, out.stderr
    got = lines_of(out.stdout, mine)
    assert sorted(got) == sorted([r.line("no") for r in (a, b, c, d)] + [
        f"partition={bad.partition} offset={bad.offset} original=? group=? attempts=? "
        f"reason=? error=\"header dozen-original-partition is missing\" first_failed_at=? "
        f"ce_id={bad.ce_id} replayed=no"])
    # One line per record of the topic, each partition in offset order.
    positions = [position(l) for l in out.stdout.splitlines()]
    on_topic = [(r["partition"], r["offset"]) for r in read_all(broker, "dead-letter")]
    assert sorted(positions) == sorted(on_topic)
    for part in {p for p, _ in positions}:
        offsets = [o for p, o in positions if p == part]
        assert offsets == sorted(offsets)

    out = dozenctl(["dlq", "list", "--group", "factory"], env)
    assert out.returncode == 0, out.stderr
    assert sorted(lines_of(out.stdout, mine)) == sorted([a.line("no"), b.line("no")])
    assert all(" group=factory " in l for l in out.stdout.splitlines())

    out = dozenctl(["dlq", "list", "--reason", "max_attempts"], env)
    assert sorted(lines_of(out.stdout, mine)) == sorted([a.line("no"), c.line("no")])
    assert all(" reason=max_attempts " in l for l in out.stdout.splitlines())

    out = dozenctl(["dlq", "list", "--group", "stock", "--reason", "invalid_record"], env)
    assert lines_of(out.stdout, mine) == [d.line("no")]

    out = dozenctl(["dlq", "list", "--reason", "?"], env)
    assert [l.split(" ce_id=")[1] for l in lines_of(out.stdout, mine)] == [
        bad.ce_id + " replayed=no"]
    assert all(" reason=? " in l for l in out.stdout.splitlines())

    out = dozenctl(["dlq", "list", "--group", "no-such-group-" + uuid.uuid4().hex[:6]], env)
    assert out.returncode == 0 and out.stdout == ""

    # Without a database the replay column is unknown, not "no". A copy of the program, so
    # that neither ./.run/env nor <bin>/../.run/env exists.
    (tmp_path / "bin").mkdir()
    shutil.copy(os.path.join(BIN, "dozenctl"), tmp_path / "bin" / "dozenctl")
    out = dozenctl(["dlq", "list", "--group", "factory"], clean_env(KAFKA_BOOTSTRAP=broker),
                   cwd=tmp_path, binary=str(tmp_path / "bin" / "dozenctl"))
    assert out.returncode == 0, out.stderr
    assert sorted(lines_of(out.stdout, mine)) == sorted([a.line("-"), b.line("-")])


def factory_pending(broker, pg):
    """Positions of the factory's dead records on the topic that no run replayed yet:
    exactly what `dlq replay --group factory` must copy."""
    done = {(p, o, ts) for p, o, ts in pg.query(
        "SELECT dead_partition, dead_offset, dead_timestamp FROM dlq_replays "
        "WHERE status = 'replayed'")}
    return {(r["partition"], r["offset"]) for r in read_all(broker, "dead-letter")
            if r["h"].get("dozen-group") == "factory" and "dozen-original-partition" in r["h"]
            and (r["partition"], r["offset"], r["ts"]) not in done}


def replay_copies(broker, topic):
    return [r for r in read_all(broker, topic) if "dozen-replayed-at" in r["h"]]


def test_replay_copies_each_matching_record_once(migrated, broker):
    pg = migrated
    t0 = now_ms()
    a1 = Dead("factory", "max_attempts", last_reason="factory_unavailable",
              deadline=t0 - 1000)
    a2 = Dead("factory", "max_attempts", last_reason="factory_unavailable")
    b1 = Dead("factory", "unknown_sku", attempt=0, key=None)
    c1 = Dead("stock", "max_attempts")
    mine = [a1, a2, b1, c1]
    produce_dead(broker, mine)
    env = clean_env(KAFKA_BOOTSTRAP=broker, DATABASE_URL=pg.url)
    copies_before = len(replay_copies(broker, "retry.factory"))

    # A dry run says what it would do and changes nothing.
    out = dozenctl(["dlq", "replay", "--group", "factory", "--reason", "max_attempts",
                    "--dry-run"], env)
    assert out.returncode == 0, out.stderr
    would = lines_of(out.stdout, mine)
    assert len(would) == 2 and all(l.startswith("would replay ") for l in would)
    assert {l.split(" ce_id=")[1].split()[0] for l in would} == {a1.ce_id, a2.ce_id}
    assert all(l.endswith(" to=retry.factory") for l in would)
    assert summary(out.stdout).startswith("dry run: would replay ")
    assert rows_of(pg, mine) == {}
    assert len(replay_copies(broker, "retry.factory")) == copies_before

    # A run that died between claiming a2 and recording its copy left it 'replaying'; a row
    # left at b1's place by a record of an earlier dead-letter topic (other timestamp) says
    # 'replayed' but is not about b1. Both must be replayed.
    pg.execute("INSERT INTO dlq_replays (dead_partition, dead_offset, dead_timestamp, "
               "original_topic, original_partition, original_offset, group_id, ce_id, status) "
               "VALUES (%s, %s, %s, %s, %s, %s, 'factory', %s, 'replaying')",
               (a2.partition, a2.offset, a2.timestamp, *a2.orig, a2.ce_id))
    pg.execute("INSERT INTO dlq_replays (dead_partition, dead_offset, dead_timestamp, "
               "original_topic, original_partition, original_offset, group_id, ce_id, status, "
               "replayed_at) VALUES (%s, %s, %s, 'stock.depleted', 4, 1, 'factory', "
               "'stale', 'replayed', now())", (b1.partition, b1.offset, b1.timestamp - 5000))
    listed = dozenctl(["dlq", "list", "--group", "factory"], env)
    assert sorted(lines_of(listed.stdout, [a2, b1])) == sorted([a2.line("no"), b1.line("no")])

    expected = factory_pending(broker, pg)
    assert {(r.partition, r.offset) for r in (a1, a2, b1)} <= expected

    # --limit 1: one record, whichever comes first.
    out = dozenctl(["dlq", "replay", "--group", "factory", "--limit", "1"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    first = replayed_lines(out.stdout)
    assert len(first) == 1 and summary(out.stdout).startswith("replayed 1, ")

    out = dozenctl(["dlq", "replay", "--group", "factory"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    rest = replayed_lines(out.stdout)
    # (the one --limit 1 replayed is skipped now)
    assert summary(out.stdout) == f"replayed {len(rest)}, skipped 1 (already replayed), failed 0"
    done = [position(l) for l in first + rest]
    assert sorted(done) == sorted(expected), "exactly the factory's unreplayed dead records"
    assert all(" group=factory " in l and " to=retry.factory/" in l for l in first + rest)

    # On retry.factory: one copy each, fresh attempt count, the rest unchanged.
    copies = replay_copies(broker, "retry.factory")
    assert len(copies) == copies_before + len(expected)
    by_ce = {}
    for r in copies:
        by_ce.setdefault(r["h"]["ce_id"], []).append(r)
    assert c1.ce_id not in by_ce
    for rec in (a1, a2, b1):
        [copy] = by_ce[rec.ce_id]
        assert copy["key"] == rec.key and copy["value"] == rec.value
        h = copy["h"]
        assert h["dozen-attempt"] == "0"
        assert t0 <= int(h["dozen-replayed-at"]) <= now_ms()
        assert h["dozen-reason"] == "replay"
        assert h["dozen-group"] == "factory"
        assert (h["dozen-original-topic"], int(h["dozen-original-partition"]),
                int(h["dozen-original-offset"])) == rec.orig
        assert h["dozen-first-failed-at"] == str(FIRST_FAILED_AT)
        assert h["dozen-error"] == rec.error
        assert "dozen-expired" not in h and "dozen-deadline" not in h
        # The CloudEvents headers first, as they were; no dozen-* header twice.
        assert copy["headers"][:len(rec.ce)] == rec.ce
        names = [k for k, _ in copy["headers"]]
        assert len(names) == len(set(names))

    rows = rows_of(pg, mine)
    assert set(rows) == {a1.ce_id, a2.ce_id, b1.ce_id}
    for rec in (a1, a2, b1):
        assert rows[rec.ce_id] == ("replayed", rec.partition, rec.offset, rec.timestamp,
                                   "factory", *rec.orig, True)
    assert pg.query("SELECT count(*) FROM dlq_replays WHERE ce_id = 'stale'")[0][0] == 0

    listed = dozenctl(["dlq", "list", "--group", "factory"], env)
    assert sorted(lines_of(listed.stdout, [a1, a2, b1])) == sorted(
        r.line("yes") for r in (a1, a2, b1))

    # Once only: a second run replays nothing.
    out = dozenctl(["dlq", "replay", "--group", "factory"], env)
    assert out.returncode == 0, out.stderr
    assert replayed_lines(out.stdout) == []
    assert summary(out.stdout).startswith("replayed 0, skipped ")
    assert int(summary(out.stdout).split("skipped ")[1].split()[0]) >= 3
    assert len(replay_copies(broker, "retry.factory")) == copies_before + len(expected)


def test_rate_spaces_replays_and_ctrl_c_stops_between_records(migrated, broker):
    pg = migrated
    env = clean_env(KAFKA_BOOTSTRAP=broker, DATABASE_URL=pg.url)
    # Nothing of the factory's left to replay, whatever the other tests left behind.
    out = dozenctl(["dlq", "replay", "--group", "factory"], env)
    assert out.returncode == 0, out.stdout + out.stderr

    recs = [Dead("factory", "max_attempts") for _ in range(3)]
    produce_dead(broker, recs)
    start = time.monotonic()
    out = dozenctl(["dlq", "replay", "--group", "factory", "--rate", "4/s", "--limit", "2"],
                   env)
    elapsed = time.monotonic() - start
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(replayed_lines(out.stdout)) == 2
    assert elapsed >= 0.25, f"two replays at 4/s took only {elapsed:.3f} s"

    # One record left; two more arrive. At one record every 2 s, Ctrl-C after the first
    # replay stops the run before the second.
    more = [Dead("factory", "max_attempts") for _ in range(2)]
    produce_dead(broker, more)
    p = subprocess.Popen([os.path.join(BIN, "dozenctl"), "dlq", "replay", "--group", "factory",
                          "--rate", "0.5/s"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len([r for r in rows_of(pg, recs + more).values()
                              if r[0] == "replayed"]) == 3, 20, "the first replay of the run")
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, stdout + stderr
    assert "interrupted" in stderr
    assert summary(stdout).startswith("replayed 1, skipped ")
    assert summary(stdout).endswith(" (already replayed), failed 0")
    statuses = [r[0] for r in rows_of(pg, recs + more).values()]
    assert sorted(statuses) == ["replayed"] * 3, "nothing claimed after the stop"

    out = dozenctl(["dlq", "replay", "--group", "factory"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert summary(out.stdout).startswith("replayed 2, ")
    assert all(r[0] == "replayed" for r in rows_of(pg, recs + more).values())
    assert len(rows_of(pg, recs + more)) == 5


def test_unknown_group_fails_the_record_and_the_run(migrated, broker):
    rec = Dead("t14-" + uuid.uuid4().hex[:8], "max_attempts")  # no retry.<group> topic
    produce_dead(broker, [rec])
    env = clean_env(KAFKA_BOOTSTRAP=broker, DATABASE_URL=migrated.url)
    out = dozenctl(["dlq", "replay", "--group", rec.group], env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert summary(out.stdout) == "replayed 0, skipped 0 (already replayed), failed 1"
    assert f"retry.{rec.group} does not exist" in out.stderr and rec.ce_id in out.stderr
    assert rows_of(migrated, [rec]) == {}
    topics = AdminClient({"bootstrap.servers": broker}).list_topics(timeout=10).topics
    assert f"retry.{rec.group}" not in topics, "a replay must not create topics"


def test_bad_options_exit_2(migrated, broker):
    env = clean_env(KAFKA_BOOTSTRAP=broker, DATABASE_URL=migrated.url)
    rows = migrated.query("SELECT count(*) FROM dlq_replays")[0][0]
    for args in (["dlq"], ["dlq", "frobnicate"], ["dlq", "list", "extra"],
                 ["dlq", "list", "--group"], ["dlq", "list", "--group", ""],
                 ["dlq", "list", "--limit", "1"], ["dlq", "replay", "--frob"],
                 ["dlq", "replay", "--limit", "0"], ["dlq", "replay", "--limit", "-1"],
                 ["dlq", "replay", "--limit", "abc"], ["dlq", "replay", "--limit", "1.5"],
                 ["dlq", "replay", "--limit", " 3"], ["dlq", "replay", "--limit", ""],
                 ["dlq", "replay", "--limit", "99999999999999999999"],
                 ["dlq", "replay", "--rate", "0"], ["dlq", "replay", "--rate", "-2/s"],
                 ["dlq", "replay", "--rate", "abc"], ["dlq", "replay", "--rate", "5/m"],
                 ["dlq", "replay", "--rate", "inf"], ["dlq", "replay", "--rate", "nan"],
                 ["dlq", "replay", "--rate", "1e3"], ["dlq", "replay", "--rate", "/s"],
                 ["dlq", "replay", "--rate", "1..2"], ["dlq", "replay", "--rate", "0.0001"],
                 ["dlq", "replay", "--reason", ""], ["dlq", "replay", "factory"]):
        out = dozenctl(args, env)
        assert out.returncode == 2, f"{args}: {out.returncode} {out.stdout} {out.stderr}"
        assert "usage:" in out.stderr or "--" in out.stderr, f"{args}: {out.stderr}"
        assert out.stdout == "", f"{args}: {out.stdout}"
    assert migrated.query("SELECT count(*) FROM dlq_replays")[0][0] == rows
    for args in (["dlq", "--help"], ["dlq", "replay", "--help"], ["dlq", "list", "-h"]):
        out = dozenctl(args, env)
        assert out.returncode == 0 and "dlq replay" in out.stdout


def test_replay_without_database_url_names_it(broker, tmp_path):
    # A copy of the program, so that neither ./.run/env nor <bin>/../.run/env exists (a
    # developer's own `make up` leaves one next to bin/).
    (tmp_path / "bin").mkdir()
    shutil.copy(os.path.join(BIN, "dozenctl"), tmp_path / "bin" / "dozenctl")
    copies_before = len(replay_copies(broker, "retry.factory"))
    for args in (["dlq", "replay", "--group", "factory"], ["dlq", "replay", "--dry-run"]):
        out = dozenctl(args, clean_env(KAFKA_BOOTSTRAP=broker), cwd=tmp_path,
                       binary=str(tmp_path / "bin" / "dozenctl"))
        assert out.returncode == 1, out.stdout + out.stderr
        assert "DATABASE_URL" in out.stderr
        assert "replayed" not in out.stdout
    assert len(replay_copies(broker, "retry.factory")) == copies_before
    # ... and it is found in ./.run/env like KAFKA_BOOTSTRAP.
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "env").write_text(
        "export DATABASE_URL='postgresql://nobody@127.0.0.1:1/none?connect_timeout=2'\n")
    out = dozenctl(["dlq", "replay", "--dry-run"], clean_env(KAFKA_BOOTSTRAP=broker),
                   cwd=tmp_path, binary=str(tmp_path / "bin" / "dozenctl"))
    assert out.returncode == 1 and "PostgreSQL" in out.stderr, out.stderr
    assert "DATABASE_URL is not set" not in out.stderr
