"""The notifier on the public data portal's COVID-19 service (issue 12): the request it
makes (the service key URL-encoded, yesterday and today), every reason code from the XML
answer, a refused key, the key never in a log line or the API, the default Korean bulletin
with the changes since the feed's day before, counted as UCS-2, and templates refused at
start. The open-data stand-in serves the same contract (tools/open-data)."""

import datetime
import time
import types

import pytest

from conftest import Proc, wait_assigned
from test_16_notifier import (SETTLE, assert_one_bulletin_each, bulletin_text, feed_env,
                              feed_requests, fresh_notifier_tables, messages,  # noqa: F401
                              run_bulletin, set_mode, subscribe_ok, unavailable_text,
                              wait_bulletin, wait_everyone_messaged)

# A key with the characters that must be escaped in a query: '+', '/', '='.
KEY = "dozen+Test/Key=="
PATH = "/openapi/service/rest/Covid19/getCovid19InfStateJson"
FIGURES = {"confirmed": 345116, "recovered": 300000, "in_treatment": 42258, "deaths": 2858}
# The stand-in's day before: the figures less 1671 confirmed, 70 recovered, 9 deaths.
BEFORE = {"confirmed": 345116 - 1671, "recovered": 300000 - 70, "in_treatment": 42258,
          "deaths": 2858 - 9}


def datagokr_stack(stack, feed=None, key=KEY, **notifier_env):
    """The stand-in taking only KEY, the SMS gateway, the retry service and a notifier
    reading the stand-in's XML service with `key`."""
    src = stack.open_data(**feed_env(FIGURES, OPEN_DATA_SERVICE_KEY=KEY, **(feed or {})))
    src.start()
    gw = stack.sms_gateway(SMS_ACCOUNT_SID="ACdozen25", SMS_AUTH_TOKEN="secret-25-token")
    gw.start()
    retry = stack.retry().start()
    env = dict(BULLETIN_SOURCE_URL=src.url + PATH, BULLETIN_SOURCE_FORMAT="datagokr-covid19",
               BULLETIN_SOURCE_KEY=key, SMS_FROM="Dozen")
    env.update(notifier_env)
    notifier = stack.notifier(src, gw, **env).start()
    wait_assigned(retry)
    wait_assigned(notifier)
    return types.SimpleNamespace(feed=src, gateway=gw, retry=retry, notifier=notifier,
                                 day=stack.today())


def compact(day):
    return day.replace("-", "")


def assert_key_nowhere(s, *texts):
    for name, text in [("notifier log", s.notifier.log())] + list(texts):
        for form in (KEY, "dozen%2BTest", "Test%2FKey", "serviceKey"):
            assert form not in text, f"the service key ({form}) is in the {name}"


def test_request_and_default_bulletin_with_the_days_changes(stack):
    s = datagokr_stack(stack)
    phones = ["+821055525001", "+821055525002"]
    for p in phones:
        subscribe_ok(s.notifier, p)
    assert run_bulletin(s.notifier).status_code == 202
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 20, "the bulletin sent")
    assert b["figures"] == FIGURES
    # The URL shown is the configured one, without the key.
    assert b["source"] == s.feed.url + PATH

    body = bulletin_text(s.day, FIGURES, BEFORE)
    assert "확진 345,116명(▲1,671), 사망 2,858명(▲9)" in body
    wait_everyone_messaged(s.gateway, phones, 15)
    time.sleep(SETTLE)
    assert_one_bulletin_each(s.gateway, phones, body)
    # Korean: UCS-2, one segment of 70 code units (the database counts as the notifier)
    assert len(body) <= 70
    rows = stack.pg.query("SELECT DISTINCT dozen_sms_segments(body) FROM deliveries")
    assert rows == [(1,)]

    # The request: the key escaped (the stand-in took it), page 1 of 10, yesterday..today.
    reqs = [r for r in feed_requests(s.feed) if r["format"] == "xml"]
    assert reqs, feed_requests(s.feed)
    yesterday = (datetime.date.fromisoformat(s.day) - datetime.timedelta(days=1)).isoformat()
    for r in reqs:
        assert r["key_ok"] is True, r
        assert (r["pageNo"], r["numOfRows"]) == ("1", "10"), r
        assert (r["startCreateDt"], r["endCreateDt"]) == (compact(yesterday), compact(s.day))
    bulletin_json = str(b)
    assert_key_nowhere(s, ("GET /bulletins", bulletin_json))


XML_REASONS = [("not_published", "not_published_yet"), ("wrong_date", "stale_date"),
               ("all_zero", "all_zero"), ("decreasing", "decreasing_totals"),
               ("invalid", "invalid_data"), ("refused", "source_refused")]


@pytest.mark.parametrize("mode,reason", XML_REASONS)
def test_each_reason_from_the_xml_feed(stack, mode, reason):
    s = datagokr_stack(stack, feed={"OPEN_DATA_MODE": mode})
    subscribe_ok(s.notifier, "+821055525101")
    assert run_bulletin(s.notifier).status_code == 202
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "retrying", 15,
                      f"a retry for {reason}")
    assert b["reason"] == reason, b
    assert {f["reason"] for f in b["failures"]} == {reason}, b
    assert messages(s.gateway) == [], "an SMS went out while the feed was bad"
    if reason == "source_refused":
        assert "SERVICE_KEY_IS_NOT_REGISTERED_ERROR" in b["error"], b
    # mended: sent, the changes counted from the feed's own day before
    set_mode(s.feed, mode="ok")
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 15, "the bulletin sent")
    wait_everyone_messaged(s.gateway, ["+821055525101"], 15)
    assert_one_bulletin_each(s.gateway, ["+821055525101"], bulletin_text(s.day, FIGURES, BEFORE))
    assert_key_nowhere(s, ("GET /bulletins", str(b)))


def test_refused_key_gives_the_portal_words_and_the_notice_at_the_deadline(stack):
    s = datagokr_stack(stack, key="not-the-key", BULLETIN_DEADLINE="4s")
    subscribe_ok(s.notifier, "+821055525201")
    assert run_bulletin(s.notifier).status_code == 202
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "unavailable", 30,
                      "the day given up")
    assert b["reason"] == "source_refused", b
    assert "SERVICE_KEY_IS_NOT_REGISTERED_ERROR" in b["error"] and "30" in b["error"], b
    assert all(not r["key_ok"] for r in feed_requests(s.feed) if r["format"] == "xml")
    wait_everyone_messaged(s.gateway, ["+821055525201"], 15)
    assert_one_bulletin_each(s.gateway, ["+821055525201"],
                             unavailable_text(s.day, "source_refused"))
    log = s.notifier.log()
    assert "not-the-key" not in log and "serviceKey" not in log


def start_refused(stack, **env):
    """A notifier that must refuse to start: its exit code and log."""
    src = stack.open_data()
    gw = stack.sms_gateway()
    n = stack.notifier(src, gw, **env)
    Proc.start(n)
    n.p.wait(timeout=20)
    return n.p.returncode, n.log()


def test_templates_and_settings_refused_at_start(stack):
    # The Korean default is UCS-2: with the largest figures it needs two segments.
    code, log = start_refused(stack, SMS_MAX_SEGMENTS="1")
    assert code != 0
    assert "BULLETIN_TEMPLATE" in log and "UCS-2" in log and "SMS_MAX_SEGMENTS=1" in log, log
    code, log = start_refused(stack, BULLETIN_TEMPLATE="오늘 {confirmd}")
    assert code != 0 and "unknown field {confirmd}" in log, log
    code, log = start_refused(stack, BULLETIN_UNAVAILABLE_STALE_DATE="{date} {deaths}")
    assert code != 0 and "BULLETIN_UNAVAILABLE_STALE_DATE" in log, log
    code, log = start_refused(stack, BULLETIN_SOURCE_FORMAT="xml")
    assert code != 0 and "BULLETIN_SOURCE_FORMAT" in log, log
    code, log = start_refused(stack, BULLETIN_SOURCE_FORMAT="datagokr-covid19")
    assert code != 0 and "BULLETIN_SOURCE_KEY" in log, log
    code, log = start_refused(stack, BULLETIN_SOURCE_URL=f"http://127.0.0.1:1{PATH}?serviceKey=s3cret")
    assert code != 0 and "BULLETIN_SOURCE_KEY" in log and "s3cret" not in log, log


def test_a_gsm_template_fits_one_segment(stack):
    src = stack.open_data(**feed_env(FIGURES)).start()
    gw = stack.sms_gateway(SMS_ACCOUNT_SID="ACdozen25", SMS_AUTH_TOKEN="secret-25-token").start()
    retry = stack.retry().start()
    notifier = stack.notifier(src, gw, SMS_FROM="Dozen", SMS_MAX_SEGMENTS="1",
                              BULLETIN_TEMPLATE="dozen {date}: confirmed {confirmed}",
                              **{f"BULLETIN_UNAVAILABLE_{r.upper()}": "dozen {date}: {reason}"
                                 for _, r in XML_REASONS + [("", "source_unreachable")]},
                              BULLETIN_UNAVAILABLE_TEMPLATE="dozen {date}: n/a").start()
    wait_assigned(retry)
    wait_assigned(notifier)
    day = stack.today()
    subscribe_ok(notifier, "+821055525301")
    assert run_bulletin(notifier).status_code == 202
    wait_bulletin(notifier, day, lambda b: b["state"] == "sent", 20, "the bulletin sent")
    wait_everyone_messaged(gw, ["+821055525301"], 15)
    assert_one_bulletin_each(gw, ["+821055525301"], f"dozen {day}: confirmed 345,116")
    assert stack.pg.query("SELECT dozen_sms_segments(body) FROM deliveries") == [(1,)]


def test_database_counts_segments_like_the_notifier(migrated):
    q = lambda text: migrated.query("SELECT dozen_sms_segments(%s)", (text,))[0][0]  # noqa: E731
    assert q("a" * 160) == 1 and q("a" * 161) == 2 and q("a" * 306) == 2 and q("a" * 307) == 3
    assert q("€" * 80) == 1 and q("€" * 81) == 2
    assert q("a" * 152 + "[" + "a" * 152) == 3
    assert q("확" * 70) == 1 and q("확" * 71) == 2 and q("확" * 134) == 2 and q("확" * 135) == 3
    assert q("😀" * 35) == 1 and q("😀" * 36) == 2
    assert q("`") == 1
    # the constraint: at most 10 segments (the highest SMS_MAX_SEGMENTS), not 160 characters
    sid = migrated.query("INSERT INTO subscribers (id, phone) VALUES (gen_random_uuid(), "
                         "'+821055525999') RETURNING id")[0][0]
    migrated.execute("INSERT INTO deliveries (subscriber_id, message_key, kind, body) "
                     "VALUES (%s, 'day:t1', 'bulletin', %s)", (sid, "확" * 300))
    with pytest.raises(Exception, match="deliveries_body_check"):
        migrated.execute("INSERT INTO deliveries (subscriber_id, message_key, kind, body) "
                         "VALUES (%s, 'day:t2', 'bulletin', %s)", (sid, "확" * 671))
    with pytest.raises(Exception, match="deliveries_body_check"):
        migrated.execute("INSERT INTO deliveries (subscriber_id, message_key, kind, body) "
                         "VALUES (%s, 'day:t3', 'bulletin', '')", (sid,))
