"""The notifier against an SMS provider's real limits (issue 12) and the opt-out and
uncertain-send defects 5 and 6 of issue 11: an opt-out that returned 200 is never followed
by a message, SMS_RATE holds per sender number across instances (measured from the
stand-in's own timestamps), a 429 pauses the number for every sender thread and a 429
storm loses and doubles nothing, an uncertain send whose message is still queued (no
date_sent) is not sent twice, an older identical message is not taken for this one, and
status callbacks update the delivery.

The stand-in (tools/sms-gateway) behaves as Twilio does here: messages queued with a null
date_sent, then sent, then delivered; StatusCallback POSTs; DateSent filters on date_sent;
a rate with 429 + Retry-After; callbacks posted twice when asked."""

import threading
import time

import requests

from conftest import wait_assigned, wait_for
from test_16_notifier import (AUTH, FIGURES, SMS_FROM, SMS_SID, SMS_TOKEN, bulletin_text,
                              feed_env, fresh_notifier_tables, gateway_stats, get_bulletin,
                              insert_subscribers, messages, notifier_stack, run_bulletin,
                              set_mode, subscribe_ok, ts)

assert fresh_notifier_tables  # the autouse fixture, imported so that it applies here


def deliveries(pg, phone=None):
    """Every delivery (of phone's subscribers), as dicts."""
    rows = pg.query(
        "SELECT d.id, s.phone, d.status, d.attempts, d.uncertain, d.gateway_sid, "
        "d.provider_status, d.callback_token::text FROM deliveries d "
        "JOIN subscribers s ON s.id = d.subscriber_id "
        "WHERE %s::text IS NULL OR s.phone = %s ORDER BY d.id", (phone, phone))
    keys = ("id", "phone", "status", "attempts", "uncertain", "sid", "provider_status",
            "token")
    return [dict(zip(keys, r)) for r in rows]


def all_final(pg, n):
    total, open_ = pg.query("SELECT count(*), count(*) FILTER (WHERE status IN "
                            "('pending', 'sending')) FROM deliveries")[0]
    return total >= n and open_ == 0


def wait_final(pg, timeout, n=1, what="every delivery made and final"):
    """Waits until at least n deliveries exist (the day's are made after the feed check,
    through Kafka) and none is pending or sending."""
    wait_for(lambda: all_final(pg, n), timeout, what, interval=0.1)


def msgs_to(gateway, phone):
    return [m for m in messages(gateway) if m["to"] == phone]


# --------------------------------------------------------------------------------------
# Opt-out is final (issue 11, defect 5)

def test_opt_out_while_the_message_is_in_flight_is_never_followed_by_it(stack, migrated):
    """The stand-in takes 1.5 s to accept: the message is claimed and on its way when the
    opt-out comes. The opt-out waits for that send and returns after it; no message is
    accepted after the opt-out returned 200 (before the fix the opt-out returned at once,
    the message was accepted 1.5 s later and the delivery marked sent over cancelled)."""
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_SLOW_MS": "1500"})
    phone = "+821055550001"
    sub = subscribe_ok(s.notifier, phone)
    assert run_bulletin(s.notifier).status_code in (200, 202)
    wait_for(lambda: [d for d in deliveries(migrated, phone) if d["status"] == "sending"],
             20, "the bulletin claimed by a sender")
    r = requests.delete(f"{s.notifier.url}/subscribers/{sub}", headers=AUTH, timeout=10)
    opted_out_at = time.time()
    assert r.status_code == 200, r.text
    # the send either was under way (the stand-in answers it) or saw the opt-out and
    # skipped: wait for one of the two, not just for the row (cancelled at once before
    # the fix, while the message was still on its way)
    wait_for(lambda: sum(gateway_stats(s.gateway).values()) >= 1 or
             "sms_skipped" in s.notifier.log(), 20, "the send answered or skipped")
    wait_final(migrated, 20)
    got = msgs_to(s.gateway, phone)
    late = [m for m in got if ts(m["at"]) > opted_out_at]
    assert not late, (f"accepted {ts(late[0]['at']) - opted_out_at:.3f} s after the opt-out "
                      "returned 200")
    (d,) = deliveries(migrated, phone)
    # what went is recorded as sent, what did not as cancelled
    assert d["status"] == ("sent" if got else "cancelled"), (d, got)
    assert len(got) <= 1


def test_opt_outs_racing_the_days_deliveries_are_never_followed_by_a_message(stack,
                                                                              migrated):
    """300 subscribers; the day's deliveries are created and sent (slowly: 150 ms a send,
    8 senders) while 100 of them opt out from 10 threads. Whoever got a 200 gets nothing
    accepted after it; everyone else gets the bulletin once."""
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_SLOW_MS": "150"})
    phones = insert_subscribers(migrated, 300, prefix="+8211")
    ids = dict(migrated.query("SELECT phone, id::text FROM subscribers"))
    leaving = phones[::3]
    out_at = {}
    errors = []

    def leave(chunk):
        for p in chunk:
            r = requests.delete(f"{s.notifier.url}/subscribers/{ids[p]}", headers=AUTH,
                                timeout=20)
            if r.status_code != 200:
                errors.append((p[-4:], r.status_code, r.text))
            out_at[p] = time.time()

    threads = [threading.Thread(target=leave, args=(leaving[i::10],)) for i in range(10)]
    assert run_bulletin(s.notifier).status_code in (200, 202)
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    wait_final(migrated, 90, n=len(phones) - len(leaving))
    by = {}
    for m in messages(s.gateway):
        by.setdefault(m["to"], []).append(ts(m["at"]))
    late = {p[-4:]: max(by[p]) - out_at[p] for p in leaving
            if p in by and max(by[p]) > out_at[p]}
    assert not late, f"messages accepted after the opt-out returned 200 (s late): {late}"
    staying = set(phones) - set(leaving)
    wrong = [p[-4:] for p in staying if len(by.get(p, ())) != 1]
    assert not wrong, f"subscribers still in without exactly one message: {wrong[:10]}"
    assert all(len(by.get(p, ())) <= 1 for p in leaving)


# --------------------------------------------------------------------------------------
# The rate and 429

def test_sms_rate_holds_across_two_notifiers_by_the_stand_ins_clock(stack, migrated):
    """Two notifier instances, SMS_RATE=5 each, one sender number: together no more than
    5 messages a second reach the stand-in (its own acceptance times), and GET
    /bulletins/{date} says when the last one is expected to go."""
    s = notifier_stack(stack, SMS_RATE="5")
    second = stack.notifier(s.feed, s.gateway, SMS_FROM=SMS_FROM, SMS_RATE="5").start()
    wait_assigned(second)
    phones = insert_subscribers(migrated, 20, prefix="+8212")
    t0 = time.time()
    assert run_bulletin(s.notifier).status_code in (200, 202)
    b = wait_for(lambda: (lambda b: b if b and b["state"] == "sent" else None)(
        get_bulletin(s.notifier, s.day)), 20, "the bulletin sent")
    eta = b.get("expected_done_at")
    assert eta is not None, b
    # 20 messages at 5/s: about 4 s from the start
    assert t0 + 2.0 <= ts(eta) <= t0 + 12.0, (eta, t0)
    wait_final(migrated, 40, n=len(phones))
    times = sorted(ts(m["at"]) for m in messages(s.gateway))
    assert len(times) == len(phones)
    # any one second holds at most 5 (+1 for the edges of the window)
    worst = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert worst <= 6, f"{worst} messages in one second at SMS_RATE=5: {times}"
    assert times[-1] - times[0] >= (len(times) - 1) / 5 - 0.5, times
    assert get_bulletin(s.notifier, s.day)["expected_done_at"] is None


def test_429_storm_loses_and_doubles_nothing(stack, migrated):
    """The notifier sends at 100/s, the stand-in takes 10/s and answers 429 + Retry-After
    beyond it. With SMS_MAX_ATTEMPTS=2, a 429 that counted as an attempt would fail
    messages: every subscriber still gets exactly one."""
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_RATE": "10"}, SMS_RATE="100",
                       SMS_MAX_ATTEMPTS="2")
    phones = insert_subscribers(migrated, 15, prefix="+8213")
    assert run_bulletin(s.notifier).status_code in (200, 202)
    wait_final(migrated, 60, n=len(phones))
    stats = gateway_stats(s.gateway)
    assert stats["throttled"] > 0, stats
    got = {}
    for m in messages(s.gateway):
        got[m["to"]] = got.get(m["to"], 0) + 1
    assert got == {p: 1 for p in phones}, got
    assert {d["status"] for d in deliveries(migrated)} == {"sent"}
    assert "sms_throttled" in s.notifier.log()


# How long after a 429 a message may still reach the stand-in: one already on its way when
# the 429 was answered (its sender checked the pause before the 429's sender recorded it).
IN_FLIGHT = 0.25


def throttles(gateway):
    r = requests.get(gateway.url + "/throttles", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["throttles"]


def test_429_pauses_the_number_for_every_sender_thread(stack, migrated):
    """The stand-in takes 2 a second and answers 429 with Retry-After: 2 (longer than its
    rate needs, as Twilio's may be, and it does not refuse a client that comes back
    sooner); the notifier sends at 4 a second from 4 threads, each batch of 8 holding its
    slots ahead. A 429 pauses the number for every thread: no message is accepted within
    Retry-After of a 429 the stand-in answered (by its own clock), beyond one already on
    its way; after a pause the messages are spaced at SMS_RATE again, not sent back to
    back; and every subscriber gets exactly one."""
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_RATE": "2",
                                       "SMS_GATEWAY_RETRY_AFTER": "2"},
                       SMS_RATE="4", SMS_CONCURRENCY="4", SMS_MAX_ATTEMPTS="2")
    phones = insert_subscribers(migrated, 16, prefix="+8214")
    assert run_bulletin(s.notifier).status_code in (200, 202)
    wait_final(migrated, 90, n=len(phones))
    got = {}
    for m in messages(s.gateway):
        got[m["to"]] = got.get(m["to"], 0) + 1
    assert got == {p: 1 for p in phones}, got
    accepted = sorted(ts(m["at"]) for m in messages(s.gateway))
    pauses = [(ts(t["at"]), t["retry_after"]) for t in throttles(s.gateway)]
    assert pauses and all(ra == 2 for _, ra in pauses), pauses
    early = [(round(a - t, 3), ra) for t, ra in pauses for a in accepted
             if t + IN_FLIGHT < a < t + ra]
    assert not early, f"accepted (s after a 429, its Retry-After): {early}"
    # every request that reached the stand-in, accepted or throttled: at SMS_RATE (250 ms
    # apart), allowing for a thread woken late, never back to back
    arrivals = sorted(accepted + [t for t, _ in pauses])
    gaps = [round(b - a, 3) for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 0.075, f"requests closer than 75 ms at SMS_RATE=4: {gaps}"
    log = s.notifier.log()
    # senders holding slots found the number paused and took new ones after the pause
    assert "sms_throttled" in log and "sender_paused" in log
    # the stand-in says Retry-After over HTTP (Twilio's header), not only in its records
    codes = []
    for i in range(4):
        r = requests.post(f"{s.gateway.url}/2010-04-01/Accounts/{SMS_SID}/Messages.json",
                          auth=(SMS_SID, SMS_TOKEN),
                          data={"To": "+821055550010", "From": SMS_FROM, "Body": "x"},
                          timeout=10)
        codes.append(r.status_code)
        if r.status_code == 429:
            assert r.headers.get("Retry-After") == "2", r.headers
            break
    assert codes[-1] == 429, codes


# --------------------------------------------------------------------------------------
# Uncertain sends (issue 11, defect 6)

def test_uncertain_send_still_queued_is_found_and_not_sent_again(stack, migrated):
    """The stand-in takes the message but answers after 3 s (SMS_TIMEOUT is 2 s), and keeps
    it queued (date_sent null) for ten minutes: a DateSent filter would not find it. The
    notifier lists To and From, finds it by its creation time, and does not send again."""
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_HANG_MS": "3000",
                                       "SMS_GATEWAY_QUEUE_MS": "600000"})
    phone = "+821055550002"
    subscribe_ok(s.notifier, phone)
    assert run_bulletin(s.notifier).status_code in (200, 202)
    wait_final(migrated, 30)
    got = msgs_to(s.gateway, phone)
    assert len(got) == 1, f"sent {len(got)} times"
    (d,) = deliveries(migrated, phone)
    assert d["status"] == "sent" and d["sid"] == got[0]["sid"], (d, got)
    assert d["attempts"] >= 2     # the send, then the question
    assert "sms_found_sent" in s.notifier.log()


def test_an_older_identical_message_is_not_taken_for_this_one(stack, migrated):
    """The number already got the very same text earlier (two identical alerts in a day).
    This delivery's first try is refused without an answer (uncertain); the list shows the
    older message, created before the claim: it is not this one's, so it is sent."""
    s = notifier_stack(stack)
    phone = "+821055550003"
    subscribe_ok(s.notifier, phone)
    body = bulletin_text(s.day, FIGURES)
    r = requests.post(f"{s.gateway.url}/2010-04-01/Accounts/{SMS_SID}/Messages.json",
                      auth=(SMS_SID, SMS_TOKEN),
                      data={"To": phone, "From": SMS_FROM, "Body": body}, timeout=10)
    assert r.status_code == 201, r.text
    older = r.json()["sid"]
    created = time.time()
    # date_created is to the second, and SMS_FIND_MARGIN (2 s) allows for clocks: the
    # claim must come later than both
    wait_for(lambda: time.time() > created + 3.2, 5, "the clock to move on")
    set_mode(s.gateway, down=True)
    assert run_bulletin(s.notifier).status_code in (200, 202)
    wait_for(lambda: [d for d in deliveries(migrated, phone)
                      if d["status"] == "pending" and d["uncertain"]], 20,
             "an uncertain first try")
    set_mode(s.gateway, down=False)
    wait_final(migrated, 20)
    got = msgs_to(s.gateway, phone)
    assert [m["body"] for m in got] == [body, body], got
    (d,) = deliveries(migrated, phone)
    assert d["status"] == "sent" and d["sid"] != older, (d, older)


# --------------------------------------------------------------------------------------
# Status callbacks

def callback_stack(stack, gateway):
    src = stack.open_data(**feed_env()).start()
    gw = stack.sms_gateway(SMS_ACCOUNT_SID=SMS_SID, SMS_AUTH_TOKEN=SMS_TOKEN,
                           **gateway).start()
    retry = stack.retry().start()
    n = stack.notifier(src, gw, SMS_FROM=SMS_FROM)
    n.env["SMS_STATUS_CALLBACK_URL"] = n.url
    n.start()
    wait_assigned(retry)
    wait_assigned(n)
    return n, gw, stack.today()


def test_status_callbacks_update_the_delivery(stack, migrated):
    """Each send carries its delivery's StatusCallback URL; the stand-in POSTs sent, then
    delivered; the delivery shows the provider's word. A callback without the delivery's
    token is a 404 and changes nothing."""
    n, gw, day = callback_stack(stack, {"SMS_GATEWAY_QUEUE_MS": "300",
                                        "SMS_GATEWAY_DELIVER_MS": "300"})
    phone = "+821055550004"
    subscribe_ok(n, phone)
    assert run_bulletin(n).status_code in (200, 202)
    wait_for(lambda: [d for d in deliveries(migrated, phone)
                      if d["provider_status"] == "delivered"], 20, "a delivered callback")
    (d,) = deliveries(migrated, phone)
    assert d["status"] == "sent" and d["sid"] == msgs_to(gw, phone)[0]["sid"]
    assert gateway_stats(gw)["callbacks_posted"] >= 2
    for token in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", ""):
        r = requests.post(f"{n.url}/sms/status/{d['id']}?token={token}",
                          data={"MessageSid": d["sid"], "MessageStatus": "failed"},
                          timeout=10)
        assert r.status_code == 404, r.text
    r = requests.post(f"{n.url}/sms/status/{d['id']}?token={d['token']}",
                      data={"MessageSid": d["sid"], "MessageStatus": "bogus"}, timeout=10)
    assert r.status_code == 400, r.text
    # statuses never move back
    r = requests.post(f"{n.url}/sms/status/{d['id']}?token={d['token']}",
                      data={"MessageSid": d["sid"], "MessageStatus": "queued"}, timeout=10)
    assert r.status_code == 200, r.text
    assert deliveries(migrated, phone)[0]["provider_status"] == "delivered"


def test_repeated_callbacks_are_taken_once(stack, migrated):
    """Twilio's status callbacks are at least once: with callback_twice the stand-in posts
    sent, sent, delivered, delivered. The notifier answers every one 2xx (a refusal would
    make the real Twilio retry it), the delivery ends sent and delivered, and nothing is
    sent again."""
    n, gw, day = callback_stack(stack, {"SMS_GATEWAY_QUEUE_MS": "200",
                                        "SMS_GATEWAY_DELIVER_MS": "200",
                                        "SMS_GATEWAY_CALLBACK_TWICE": "1"})
    phone = "+821055550014"
    subscribe_ok(n, phone)
    assert run_bulletin(n).status_code in (200, 202)
    wait_for(lambda: gateway_stats(gw)["callbacks_posted"]
             + gateway_stats(gw)["callbacks_failed"] >= 4, 20, "four callbacks posted")
    stats = gateway_stats(gw)
    assert stats["callbacks_posted"] == 4 and stats["callbacks_failed"] == 0, stats
    (d,) = deliveries(migrated, phone)
    assert d["status"] == "sent" and d["provider_status"] == "delivered", d
    assert d["attempts"] == 1, d
    assert len(msgs_to(gw, phone)) == 1


def test_a_callback_settles_an_uncertain_send(stack, migrated):
    """The answer to the send never comes in time, but the message's own status callback
    does: the delivery is sent, with that SID, and nothing is sent again."""
    n, gw, day = callback_stack(stack, {"SMS_GATEWAY_HANG_MS": "3000",
                                        "SMS_GATEWAY_QUEUE_MS": "200"})
    phone = "+821055550005"
    subscribe_ok(n, phone)
    assert run_bulletin(n).status_code in (200, 202)
    wait_final(migrated, 30)
    got = msgs_to(gw, phone)
    assert len(got) == 1, f"sent {len(got)} times"
    (d,) = deliveries(migrated, phone)
    assert d["status"] == "sent" and d["sid"] == got[0]["sid"], d


def test_21610_from_the_provider_opts_the_number_out(stack, migrated):
    """Twilio answers 21610 ("Attempt to send to unsubscribed recipient") to a number that
    replied STOP to the sender: the subscriber is opted out by the provider
    (opted_out_by = 'provider'), the rest of the day goes on, and nothing more is tried for
    that number (issue 16)."""
    s = notifier_stack(stack)
    stopped, other = "+821055550099", "+821055550098"
    subscribe_ok(s.notifier, stopped)
    subscribe_ok(s.notifier, other)
    set_mode(s.gateway, opted_out=stopped)
    assert run_bulletin(s.notifier).status_code in (200, 202)
    wait_final(migrated, 60, n=2)
    assert migrated.query("SELECT opted_out_at IS NOT NULL, opted_out_by FROM subscribers "
                          "WHERE phone = %s", (stopped,))[0] == (True, "provider")
    assert migrated.query("SELECT opted_out_at FROM subscribers WHERE phone = %s",
                          (other,))[0][0] is None
    (d,) = deliveries(migrated, stopped)
    assert d["status"] == "failed" and d["attempts"] == 1, d
    assert "sms_opted_out_at_provider" in s.notifier.log()
    assert not msgs_to(s.gateway, stopped)
    assert len(msgs_to(s.gateway, other)) == 1
