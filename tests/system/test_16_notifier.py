"""The notifier's daily bulletin end to end (issue 6), a whole day simulated in seconds: the
open-data feed late, wrong or never valid, retries through the retry service, the fallback
feed, the unavailable notice at the deadline, and one SMS per subscriber per day whatever
happens (the job run twice, the gateway failing, the notifier killed mid-send).

The subscribers API and back-in-stock alerts are in test_17_notifier_api.py; the helpers
both files share are here."""

import collections
import datetime
import signal
import threading
import time
import types

import pytest
import requests

from conftest import ADMIN_TOKEN, read_topic, wait_assigned, wait_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# The primary feed's figures and the fallback feed's: distinct, so that an SMS tells which
# source it came from.
FIGURES = {"confirmed": 31415, "recovered": 27182, "in_treatment": 1414, "deaths": 173}
FALLBACK_FIGURES = {"confirmed": 40001, "recovered": 30002, "in_treatment": 2003, "deaths": 204}
SMS_SID, SMS_TOKEN, SMS_FROM = "ACdozen16", "secret-16-token", "Dozen"
# How long a test keeps watching for a message that must NOT come: several SMS poll rounds
# (200 ms) and feed retry intervals (1 s).
SETTLE = 2.5
# The default notices' words (Korean, services/notifier/bulletin.c).
UNAVAILABLE_WORDS = {
    "source_unreachable": "자료 출처에 연결할 수 없습니다",
    "not_published_yet": "오늘 자료가 아직 발표되지 않았습니다",
    "stale_date": "발표된 자료의 날짜가 맞지 않습니다",
    "all_zero": "발표된 수치가 모두 0입니다",
    "invalid_data": "발표된 자료를 읽을 수 없습니다",
    "decreasing_totals": "누적 수치가 전날보다 줄었습니다",
    "source_refused": "자료 출처가 요청을 거절했습니다",
}


# --------------------------------------------------------------------------------------
# Helpers (test_17 imports them)

@pytest.fixture(autouse=True)
def fresh_notifier_tables(migrated):
    """Each test starts with no subscribers, no bulletin and no notifier retry waiting: the
    tables are shared by the session and every bulletin is today's."""
    migrated.execute("TRUNCATE deliveries, subscriber_skus, subscribers, bulletin_attempts, "
                     "bulletins")
    migrated.execute("DELETE FROM retry_pending WHERE group_id = 'notifier'")


def feed_env(figures=FIGURES, **extra):
    env = {f"OPEN_DATA_{k.upper()}": v for k, v in figures.items()}
    env.update(extra)
    return env


def notifier_stack(stack, feed=None, gateway=None, fallback=None, **notifier_env):
    """Starts the open-data feed (env `feed`), an optional fallback feed, the SMS gateway,
    the retry service and the notifier, and waits until both consumers have partitions."""
    src = stack.open_data(**feed_env(**(feed or {}))).start()
    fb = stack.open_data(**feed_env(**fallback)).start() if fallback is not None else None
    gw = stack.sms_gateway(SMS_ACCOUNT_SID=SMS_SID, SMS_AUTH_TOKEN=SMS_TOKEN,
                           **(gateway or {})).start()
    retry = stack.retry().start()
    notifier = stack.notifier(src, gw, fb, SMS_FROM=SMS_FROM, **notifier_env).start()
    wait_assigned(retry)
    wait_assigned(notifier)
    return types.SimpleNamespace(feed=src, fallback=fb, gateway=gw, retry=retry,
                                 notifier=notifier, day=stack.today())


def set_mode(svc, **mode):
    r = requests.post(svc.url + "/admin/mode", json=mode, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def subscribe(notifier, phone, name=None, skus=None, headers=AUTH):
    body = {"phone": phone}
    if name is not None:
        body["name"] = name
    if skus is not None:
        body["skus"] = skus
    return requests.post(notifier.url + "/subscribers", json=body, headers=headers, timeout=10)


def subscribe_ok(notifier, phone, **kw):
    r = subscribe(notifier, phone, **kw)
    assert r.status_code == 201, f"POST /subscribers {phone[:4]}...: {r.status_code} {r.text}"
    return r.json()["id"]


def opt_out(notifier, sid):
    r = requests.delete(f"{notifier.url}/subscribers/{sid}", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def insert_subscribers(pg, n, first=1, prefix="+8210"):
    """n subscribers straight into PostgreSQL (as the spec's table has them); their numbers."""
    rows = pg.query(
        "INSERT INTO subscribers (id, phone, name) "
        "SELECT gen_random_uuid(), %s || lpad(g::text, 8, '0'), 'load ' || g "
        "FROM generate_series(%s, %s) g RETURNING phone", (prefix, first, first + n - 1))
    return [r[0] for r in rows]


def run_bulletin(notifier, headers=AUTH):
    return requests.post(notifier.url + "/bulletins/run", headers=headers, timeout=10)


def get_bulletin(notifier, day):
    r = requests.get(f"{notifier.url}/bulletins/{day}", timeout=10)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, f"GET /bulletins/{day}: {r.status_code} {r.text}"
    return r.json()


def wait_bulletin(notifier, day, cond, timeout, what):
    """Polls GET /bulletins/{day} until cond(bulletin); the last bulletin seen is in the
    failure message."""
    last = [None]

    def check():
        last[0] = get_bulletin(notifier, day)
        return last[0] if last[0] is not None and cond(last[0]) else None
    try:
        return wait_for(check, timeout, what, interval=0.1)
    except AssertionError as e:
        raise AssertionError(f"{e}; last bulletin: {last[0]}") from None


def messages(gateway):
    r = requests.get(gateway.url + "/messages", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def bodies_by_number(gateway):
    out = collections.defaultdict(list)
    for m in messages(gateway):
        out[m["to"]].append(m["body"])
    return out


def gateway_stats(gateway):
    return requests.get(gateway.url + "/admin/stats", timeout=10).json()


def wait_everyone_messaged(gateway, phones, timeout, count=1):
    """Waits until each number has at least `count` accepted messages; returns the bodies."""
    phones = set(phones)

    def check():
        got = bodies_by_number(gateway)
        return got if all(len(got.get(p, ())) >= count for p in phones) else None
    try:
        return wait_for(check, timeout, f"{len(phones)} numbers to get {count} message(s)",
                        interval=0.2)
    except AssertionError as e:
        got = bodies_by_number(gateway)
        short = len([p for p in phones if len(got.get(p, ())) < count])
        raise AssertionError(f"{e}: {short} numbers still short") from None


def feed_requests(feed):
    return requests.get(feed.url + "/admin/requests", timeout=10).json()["requests"]


def change(f, prev, key):
    """A figure's change as the default template shows it: ▲n, ▼n, 0, or - (unknown)."""
    if prev is None:
        return "-"
    d = f[key] - prev[key]
    return "0" if d == 0 else ("▲" if d > 0 else "▼") + f"{abs(d):,}"


def bulletin_text(day, f, prev=None):
    """The default (Korean) bulletin: today's cumulative figures and the change since prev
    (the feed's day before, or the last stored day; None: unknown)."""
    return (f"[dozen] {int(day[5:7])}월 {int(day[8:10])}일 코로나19 확진 {f['confirmed']:,}명"
            f"({change(f, prev, 'confirmed')}), 사망 {f['deaths']:,}명({change(f, prev, 'deaths')})")


def unavailable_text(day, reason):
    return (f"[dozen] {int(day[5:7])}월 {int(day[8:10])}일 현황을 보내드리지 못합니다: "
            f"{UNAVAILABLE_WORDS[reason]}.")


def ts(text):
    """An RFC 3339 time as seconds since the epoch."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def assert_no_full_number_logged(svc, phones):
    log = svc.log()
    for p in phones:
        assert p not in log and p[1:] not in log, \
            f"{svc.name}'s log shows a full subscriber number ({p[:4]}...{p[-4:]})"


def notifier_retries(broker, day, since_ms, reason, count):
    """The bulletin's records on `retry` (owner group notifier, key = the day) produced
    since since_ms with dozen-reason `reason`, once there are at least `count`."""
    def mine(rs):
        return [r for r in rs if r["key"] == day and r["timestamp"] >= since_ms
                and r["headers"].get("dozen-group") == "notifier"
                and r["headers"].get("dozen-reason") == reason]
    return mine(read_topic(broker, "retry", until=lambda rs: len(mine(rs)) >= count,
                           timeout=20))


def assert_one_bulletin_each(gateway, phones, body):
    got = bodies_by_number(gateway)
    wrong = {p[-4:]: got.get(p) for p in phones if got.get(p) != [body]}
    assert not wrong, f"numbers (last 4 digits) without exactly one '{body}': {wrong}"
    strangers = set(got) - set(phones)
    assert not strangers, f"{len(strangers)} numbers that should get nothing got messages"


def counts(bulletin):
    return bulletin["messages"]


# --------------------------------------------------------------------------------------
# The daily bulletin

def test_feed_published_on_the_third_request_is_sent_once_to_every_subscriber(stack, broker):
    # LOG_LEVEL=debug: not even a debug line may show a subscriber's number.
    s = notifier_stack(stack, feed={"OPEN_DATA_PUBLISH_AFTER": 2}, LOG_LEVEL="debug")
    phones = ["+821055510001", "+821055510002", "+14155550123", "+447700900123"]
    for p in phones:
        subscribe_ok(s.notifier, p, name="Kim")
    gone = subscribe_ok(s.notifier, "+821055510009")
    opt_out(s.notifier, gone)

    since_ms = int(time.time() * 1000)
    r = run_bulletin(s.notifier)
    assert r.status_code == 202, r.text
    assert r.json()["started"] is True
    b = r.json()["bulletin"]
    assert b["date"] == s.day and b["trigger"] == "manual"
    assert b["state"] in ("scheduled", "retrying")

    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 20, "the bulletin sent")
    assert b["attempts"] == 3 and b["retries"] == 2, b
    assert b["figures"] == FIGURES
    assert b["source"] == s.feed.url + "/daily"
    assert b["finished_at"] is not None
    fails = b["failures"]
    assert [f["attempt"] for f in fails] == [1, 2], fails
    assert {f["reason"] for f in fails} == {"not_published_yet"}
    assert {f["source"] for f in fails} == {s.feed.url + "/daily"}
    assert all(f["error"] for f in fails)
    gap = ts(fails[1]["at"]) - ts(fails[0]["at"])
    assert 0.8 <= gap <= 3.0, f"retries {gap:.2f} s apart, want about 1 s"

    # The feed saw exactly three checks, about 1 s apart.
    reqs = feed_requests(s.feed)
    assert [q["served"] for q in reqs] == ["not_published", "not_published", "ok"], reqs
    gaps = [ts(b2["at"]) - ts(a["at"]) for a, b2 in zip(reqs, reqs[1:])]
    assert all(0.8 <= g <= 3.0 for g in gaps), f"feed checks {gaps} s apart, want about 1 s"

    # The retries went through the retry service, carrying the reason and the deadline.
    recs = notifier_retries(broker, s.day, since_ms, "not_published_yet", 2)
    assert len(recs) == 2, [r["headers"] for r in recs]
    for rec in recs:
        h = rec["headers"]
        assert h["dozen-original-topic"] == "bulletins"
        assert 800 <= int(h["dozen-not-before"]) - rec["timestamp"] <= 1500, h
        assert abs(int(h["dozen-deadline"]) / 1000 - ts(b["deadline_at"])) < 1.0, h
    assert 59 <= ts(b["deadline_at"]) - ts(b["scheduled_at"]) <= 61, b
    # The run itself is one bulletin.requested event on `bulletins`, keyed by the day.
    runs = [r for r in read_topic(broker, "bulletins") if r["key"] == s.day
            and r["timestamp"] >= since_ms - 1000]
    assert len(runs) == 1, runs
    h, data = runs[0]["headers"], runs[0]["value"]
    assert h["ce_type"] == "bulletin.requested" and h["ce_source"] == "/dozen/notifier"
    assert data["date"] == s.day and data["trigger"] == "manual"
    assert ts(data["scheduled_at"]) == pytest.approx(ts(b["scheduled_at"]), abs=1)
    assert ts(data["deadline_at"]) == pytest.approx(ts(b["deadline_at"]), abs=1)

    body = bulletin_text(s.day, FIGURES)
    assert len(body) <= 160
    wait_everyone_messaged(s.gateway, phones, 15)
    time.sleep(SETTLE)  # a second message to anyone would have come by now
    assert_one_bulletin_each(s.gateway, phones, body)
    assert {m["from"] for m in messages(s.gateway)} == {SMS_FROM}
    b = wait_bulletin(s.notifier, s.day, lambda b: counts(b)["sent"] == 4, 10, "sent = 4")
    assert counts(b) == {"total": 4, "sent": 4, "pending": 0, "failed": 0, "cancelled": 0}
    assert_no_full_number_logged(s.notifier, phones + ["+821055510009"])


def insert_yesterday(pg, day, figures):
    """Yesterday's bulletin as the notifier would have stored it: the last stored day that
    today's cumulative figures are compared with."""
    pg.execute(
        "INSERT INTO bulletins (day, state, trigger, scheduled_at, deadline_at, attempts, "
        "source, confirmed, recovered, in_treatment, deaths, finished_at) "
        "VALUES (%s::date - 1, 'sent', 'schedule', now() - interval '1 day', "
        "now() - interval '23 hours', 1, 'http://127.0.0.1:9/daily', %s, %s, %s, %s, "
        "now() - interval '1 day')",
        (day, figures["confirmed"], figures["recovered"], figures["in_treatment"],
         figures["deaths"]))


# Yesterday's stored figures: the primary's `decreasing` (confirmed 100 below FIGURES)
# goes below them, FIGURES and FALLBACK_FIGURES do not.
YESTERDAY = {"confirmed": FIGURES["confirmed"] - 50, "recovered": FIGURES["recovered"],
             "in_treatment": 1500, "deaths": FIGURES["deaths"]}


BAD_FEEDS = [("wrong_date", "stale_date"), ("all_zero", "all_zero"),
             ("decreasing", "decreasing_totals")]


@pytest.mark.parametrize("mode,reason", BAD_FEEDS + [("invalid", "invalid_data")])
def test_bad_feed_is_retried_with_its_reason_until_it_is_mended(stack, migrated, broker,
                                                                mode, reason):
    s = notifier_stack(stack, feed={"OPEN_DATA_MODE": mode})
    insert_yesterday(migrated, s.day, YESTERDAY)
    phones = ["+821055520001", "+821055520002", "+821055520003"]
    for p in phones:
        subscribe_ok(s.notifier, p)
    primary = s.feed.url + "/daily"

    since_ms = int(time.time() * 1000)
    assert run_bulletin(s.notifier).status_code == 202
    b = wait_bulletin(s.notifier, s.day,
                      lambda b: b["state"] == "retrying" and b["retries"] >= 2, 15,
                      f"two retries for {reason}")
    assert b["reason"] == reason and b["error"], b
    assert b["figures"] is None and b["source"] is None
    assert {(f["source"], f["reason"]) for f in b["failures"]} == {(primary, reason)}, b
    # The reason travels with each retry through the retry service.
    recs = notifier_retries(broker, s.day, since_ms, reason, 2)
    assert all(r["headers"]["dozen-error"] for r in recs)
    assert messages(s.gateway) == [], "an SMS went out while the feed was bad"

    set_mode(s.feed, mode="ok")
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 10, "the bulletin sent")
    assert b["figures"] == FIGURES and b["source"] == primary
    wait_everyone_messaged(s.gateway, phones, 15)
    time.sleep(SETTLE)
    assert_one_bulletin_each(s.gateway, phones, bulletin_text(s.day, FIGURES, YESTERDAY))
    # Yesterday's row is history: it is left as it was.
    assert migrated.query("SELECT confirmed, state FROM bulletins WHERE day = %s::date - 1",
                          (s.day,)) == [(YESTERDAY["confirmed"], "sent")]


@pytest.mark.parametrize("mode,reason", BAD_FEEDS)
def test_bad_feed_with_a_fallback_sends_the_fallbacks_figures(stack, migrated, mode, reason):
    s = notifier_stack(stack, feed={"OPEN_DATA_MODE": mode},
                       fallback={"figures": FALLBACK_FIGURES, "OPEN_DATA_MODE": "ok"})
    insert_yesterday(migrated, s.day, YESTERDAY)
    phones = ["+821055530001", "+821055530002"]
    for p in phones:
        subscribe_ok(s.notifier, p)
    primary, fallback = s.feed.url + "/daily", s.fallback.url + "/daily"

    assert run_bulletin(s.notifier).status_code == 202
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 10,
                      "the fallback's figures sent")
    assert b["figures"] == FALLBACK_FIGURES and b["source"] == fallback, b
    # The primary failed once, the fallback was asked in the same attempt: no retry.
    assert b["attempts"] == 1 and b["retries"] == 0, b
    assert [(f["attempt"], f["source"], f["reason"]) for f in b["failures"]] == \
        [(1, primary, reason)], b
    assert len(feed_requests(s.feed)) == 1 and len(feed_requests(s.fallback)) == 1
    wait_everyone_messaged(s.gateway, phones, 15)
    time.sleep(SETTLE)
    # the changes are counted from yesterday's stored figures
    assert_one_bulletin_each(s.gateway, phones,
                             bulletin_text(s.day, FALLBACK_FIGURES, YESTERDAY))


@pytest.mark.parametrize("mode,reason", [("wrong_date", "stale_date"),
                                         ("down", "source_unreachable")])
def test_never_valid_before_the_deadline_sends_one_unavailable_notice(stack, mode, reason):
    s = notifier_stack(stack, feed={"OPEN_DATA_MODE": mode}, BULLETIN_DEADLINE="5s")
    phones = ["+821055540001", "+821055540002", "+821055540003"]
    for p in phones:
        subscribe_ok(s.notifier, p)
    gone = "+821055540009"
    opt_out(s.notifier, subscribe_ok(s.notifier, gone))

    assert run_bulletin(s.notifier).status_code == 202
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "unavailable", 25,
                      "the bulletin given up at its deadline")
    assert b["reason"] == reason and b["error"]
    assert b["figures"] is None and b["source"] is None
    assert 4.5 <= ts(b["deadline_at"]) - ts(b["scheduled_at"]) <= 5.5, b
    assert ts(b["finished_at"]) >= ts(b["deadline_at"]) - 0.5, "given up before the deadline"
    assert ts(b["finished_at"]) <= ts(b["deadline_at"]) + 5, "given up long after the deadline"
    assert 4 <= b["attempts"] <= 7, b
    assert b["retries"] >= 3, b
    assert {f["reason"] for f in b["failures"]} == {reason}

    body = unavailable_text(s.day, reason)
    assert len(body) <= 160
    wait_everyone_messaged(s.gateway, phones, 15)
    b = wait_bulletin(s.notifier, s.day, lambda b: counts(b)["sent"] == 3, 10, "sent = 3")
    assert counts(b) == {"total": 3, "sent": 3, "pending": 0, "failed": 0, "cancelled": 0}

    # The feed is mended and the job asked for again: nothing more goes out today, and the
    # feed is not even asked.
    checks = len(feed_requests(s.feed))
    set_mode(s.feed, mode="ok")
    r = run_bulletin(s.notifier)
    assert r.status_code == 200, r.text
    assert r.json()["started"] is False and r.json()["bulletin"]["state"] == "unavailable"
    time.sleep(SETTLE)
    assert_one_bulletin_each(s.gateway, phones, body)
    assert len(feed_requests(s.feed)) == checks
    assert get_bulletin(s.notifier, s.day)["state"] == "unavailable"
    assert_no_full_number_logged(s.notifier, phones + [gone])


def test_gateway_failing_30_percent_of_sends_still_gives_everyone_one_message(stack, migrated):
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_FAIL_RATE": 30, "SMS_GATEWAY_SEED": 16},
                       SMS_RETRY_INITIAL="100ms", SMS_RETRY_MAX="400ms",
                       SMS_POLL_INTERVAL="100ms", LOG_LEVEL="debug")
    phones = insert_subscribers(migrated, 60)
    assert run_bulletin(s.notifier).status_code == 202
    wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 15, "the bulletin sent")
    wait_everyone_messaged(s.gateway, phones, 30)
    b = wait_bulletin(s.notifier, s.day, lambda b: counts(b)["sent"] == 60, 10, "sent = 60")
    time.sleep(SETTLE)
    assert_one_bulletin_each(s.gateway, phones, bulletin_text(s.day, FIGURES))
    st = gateway_stats(s.gateway)
    assert st["failed"] >= 10, f"the gateway hardly failed, nothing was tested: {st}"
    assert st["accepted"] == 60, st
    b = get_bulletin(s.notifier, s.day)
    assert counts(b) == {"total": 60, "sent": 60, "pending": 0, "failed": 0, "cancelled": 0}
    # Each failure was retried for its own subscriber only.
    assert migrated.query("SELECT sum(attempts) FROM deliveries WHERE message_key = %s",
                          ("day:" + s.day,))[0][0] == st["accepted"] + st["failed"]
    assert_no_full_number_logged(s.notifier, phones)


def test_notifier_killed_mid_send_to_2000_then_each_has_exactly_one(stack, migrated):
    n = 2000
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_SLOW_MS": 40})
    phones = insert_subscribers(migrated, n)
    assert run_bulletin(s.notifier).status_code == 202
    wait_for(lambda: gateway_stats(s.gateway)["accepted"] >= 150, 30,
             "the first 150 messages", interval=0.02)
    seen = s.notifier.log().count("kafka_partitions_assigned")
    s.notifier.kill(signal.SIGKILL)
    db = dict(migrated.query("SELECT status, count(*) FROM deliveries WHERE message_key = %s "
                             "GROUP BY status", ("day:" + s.day,)))
    assert sum(db.values()) == n, db
    # The sends in flight at the kill still land at the gateway (40 ms each): messages it
    # took that the notifier did not record as sent. The restarted notifier must ask the
    # gateway about those before sending them again.
    accepted = wait_for(lambda: (lambda a: a if a > db.get("sent", 0) else 0)(
        gateway_stats(s.gateway)["accepted"]), 3,
        f"a send in flight at the kill to land (recorded: {db})")
    assert accepted < n, "the kill came too late to test anything"
    print(f"\nkilled with gateway accepted={accepted}, deliveries {db}")

    set_mode(s.gateway, slow_ms=0)
    s.notifier.start()
    wait_assigned(s.notifier, seen)
    wait_everyone_messaged(s.gateway, phones, 90)
    b = wait_bulletin(s.notifier, s.day, lambda b: counts(b)["sent"] == n, 30,
                      f"sent = {n}")
    time.sleep(SETTLE)
    got = bodies_by_number(s.gateway)
    dupes = {p[-4:]: len(v) for p, v in got.items() if len(v) != 1}
    assert not dupes, f"{len(dupes)} numbers got more than one message: {list(dupes)[:10]}"
    assert set(got) == set(phones)
    assert gateway_stats(s.gateway)["accepted"] == n
    assert counts(get_bulletin(s.notifier, s.day)) == {
        "total": n, "sent": n, "pending": 0, "failed": 0, "cancelled": 0}
    assert b["state"] == "sent"
    assert_no_full_number_logged(s.notifier, phones)


def test_gateway_slower_than_the_lease_still_sends_each_message_once(stack, migrated):
    # 12 messages of 700 ms each take one sender ~8 s, far past its 3 s lease (SMS_SEND_LEASE,
    # SMS_TIMEOUT 2 s): unless the sender renews the lease of what it still holds, the
    # other sender takes those over after 3 s as abandoned and, the gateway knowing
    # nothing of them yet, sends them a second time.
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_SLOW_MS": 700}, SMS_CONCURRENCY=2,
                       SMS_POLL_INTERVAL="100ms")
    phones = insert_subscribers(migrated, 12)
    assert run_bulletin(s.notifier).status_code == 202
    wait_everyone_messaged(s.gateway, phones, 40)
    wait_bulletin(s.notifier, s.day, lambda b: counts(b)["sent"] == 12, 10, "sent = 12")
    time.sleep(SETTLE)
    assert_one_bulletin_each(s.gateway, phones, bulletin_text(s.day, FIGURES))
    assert gateway_stats(s.gateway)["accepted"] == 12
    assert "sms_found_sent" not in s.notifier.log()


def test_bulletin_triggered_twice_and_after_a_restart_is_sent_once(stack):
    s = notifier_stack(stack)
    phones = ["+821055550001", "+821055550002", "+821055550003", "+821055550004"]
    for p in phones:
        subscribe_ok(s.notifier, p)

    barrier = threading.Barrier(5)
    answers = []

    def trigger():
        barrier.wait(timeout=10)
        r = run_bulletin(s.notifier)
        answers.append((r.status_code, r.json()))
    threads = [threading.Thread(target=trigger) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    codes = sorted(code for code, _ in answers)
    assert codes == [200, 200, 200, 200, 202], answers
    for code, body in answers:
        assert body["started"] is (code == 202)
        assert body["bulletin"]["date"] == s.day

    wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 15, "the bulletin sent")
    wait_everyone_messaged(s.gateway, phones, 15)
    r = run_bulletin(s.notifier)
    assert r.status_code == 200 and r.json()["started"] is False
    assert r.json()["bulletin"]["state"] == "sent"

    # A restarted notifier sees the same day again and sends nothing.
    seen = s.notifier.log().count("kafka_partitions_assigned")
    assert s.notifier.stop() == 0, s.notifier.log()[-3000:]
    s.notifier.start()
    wait_assigned(s.notifier, seen)
    r = run_bulletin(s.notifier)
    assert r.status_code == 200 and r.json()["started"] is False
    time.sleep(SETTLE)
    assert_one_bulletin_each(s.gateway, phones, bulletin_text(s.day, FIGURES))
    assert gateway_stats(s.gateway)["accepted"] == 4
    assert len(feed_requests(s.feed)) == 1, "the feed was checked for a second run"
    b = get_bulletin(s.notifier, s.day)
    assert b["state"] == "sent" and b["attempts"] == 1 and b["retries"] == 0
    assert counts(b) == {"total": 4, "sent": 4, "pending": 0, "failed": 0, "cancelled": 0}


def test_bulletin_routes_check_token_and_date(stack):
    s = notifier_stack(stack)
    assert run_bulletin(s.notifier, headers={}).status_code == 401
    assert run_bulletin(s.notifier, headers={"Authorization": "Bearer wrong-token-0123456789"}
                        ).status_code == 401
    assert run_bulletin(s.notifier, headers={"Authorization": ADMIN_TOKEN}).status_code == 401
    assert get_bulletin(s.notifier, s.day) is None, "a refused run created a bulletin"
    for bad in ("2026-13-01", "2026-02-30", "yesterday", "20261122"):
        r = requests.get(f"{s.notifier.url}/bulletins/{bad}", timeout=10)
        assert r.status_code == 400, (bad, r.status_code, r.text)
        assert "error" in r.json()
    r = requests.get(f"{s.notifier.url}/bulletins/2001-01-01", timeout=10)
    assert r.status_code == 404 and "error" in r.json()
    assert feed_requests(s.feed) == []
