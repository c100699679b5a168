"""The public SMS sign-up (issue 16) through its API, without a browser: a code by SMS,
its confirmation, wrong codes counted, expiry, unsubscribe, the provider refusing a number,
the STOP webhook, and the limits per number and per client holding when the requests come
all at once (before the fix the counts ran outside the transaction that stored the request:
20 parallel requests for one number all passed and 20 SMS went out).

The notifier sends through the SMS stand-in (tools/sms-gateway), whose list of accepted
messages is what reached the "phone". A client is the connection's source address: the
tests pick one in 127.0.0.0/8 per request where they need many clients."""

import base64
import hashlib
import hmac
import http.client
import json
import re
import threading
import time
import urllib.parse

import pytest
import requests

from conftest import wait_for
from test_16_notifier import (SMS_FROM, SMS_SID, SMS_TOKEN, fresh_notifier_tables, messages,
                              set_mode)

assert fresh_notifier_tables  # the autouse fixture, imported so that it applies here

CODE_RE = re.compile(r"dozen: (\d{6}) is your code to (subscribe|unsubscribe)")
# How long to keep watching for an SMS that must not come (the send follows the 202 at
# once; this is many times that).
SETTLE = 1.5


@pytest.fixture(autouse=True)
def fresh_signup_tables(migrated):
    """The limits count the last hour's requests, in tables the session shares."""
    migrated.execute("TRUNCATE signup_codes, signup_requests")


def signup_stack(stack, **env):
    """The open-data feed (the notifier needs one), the SMS stand-in and the notifier, with
    the sign-up settings in env."""
    src = stack.open_data().start()
    gw = stack.sms_gateway(SMS_ACCOUNT_SID=SMS_SID, SMS_AUTH_TOKEN=SMS_TOKEN).start()
    notifier = stack.notifier(src, gw, SMS_FROM=SMS_FROM, **env).start()
    return gw, notifier


def post(notifier, path, body, source="127.0.0.1"):
    """POST path with a JSON body from the source address `source`; (status, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", notifier.port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def codes_to(gateway, phone):
    """The codes of the SMS the stand-in accepted for phone, oldest first, as (code, purpose)."""
    out = []
    for m in messages(gateway):
        if m["to"] == phone:
            match = CODE_RE.search(m["body"])
            assert match, f"an SMS to the number without a code: {m['body']!r}"
            out.append(match.groups())
    return out


def next_code(gateway, phone, seen, purpose="subscribe"):
    """Waits for the SMS after the `seen` first ones to phone; its code."""
    got = wait_for(lambda: codes_to(gateway, phone)[seen:], 10, f"SMS {seen + 1} with a code")
    assert got[0][1] == purpose, got
    return got[0][0]


def other_than(code):
    return "000000" if code != "000000" else "111111"


def subscriber(pg, phone):
    rows = pg.query("SELECT opted_out_at IS NULL, opted_out_by, name FROM subscribers "
                    "WHERE phone = %s", (phone,))
    return rows[0] if rows else None


def fire(n, request):
    """Runs request(i) for i in 0..n-1 on n threads released together; the answers."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait(10)
        try:
            out[i] = request(i)
        except Exception as e:  # noqa: BLE001 - reported below, with the others
            out[i] = (None, repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a request did not finish in 60 s"
    return out


# --------------------------------------------------------------------------------------
# The limits, under concurrency

def assert_limited(answers, accepted, refusal):
    """Of parallel code requests' answers, exactly `accepted` were 202 and every other one
    a 429 whose error names the limit (refusal)."""
    statuses = sorted(a[0] for a in answers)
    assert set(statuses) <= {202, 429}, answers
    assert statuses.count(202) == accepted, statuses
    for status, body in answers:
        if status == 429:
            assert refusal in body["error"], body


def test_parallel_code_requests_for_one_number_send_no_more_than_its_limit(stack, migrated):
    """20 requests for one number at once, each from a client of its own (so that only the
    number's limit can refuse them): exactly SIGNUP_CODES_PER_NUMBER (5) are accepted and
    5 SMS reach the number, no more."""
    gw, notifier = signup_stack(stack, SIGNUP_CODES_PER_NUMBER="5", SIGNUP_PER_CLIENT="100")
    phone = "+821046000001"
    answers = fire(20, lambda i: post(notifier, "/signup", {"phone": phone},
                                      source=f"127.0.0.{10 + i}"))
    assert_limited(answers, 5, "too many codes for this number")
    wait_for(lambda: len(codes_to(gw, phone)) >= 5, 10, "the 5 accepted codes' SMS")
    time.sleep(SETTLE)
    assert len(codes_to(gw, phone)) == 5
    assert migrated.query("SELECT count(*) FROM signup_requests WHERE phone = %s "
                          "AND kind = 'code'", (phone,))[0][0] == 5


def test_parallel_code_requests_from_one_client_send_no_more_than_its_limit(stack,
                                                                            migrated):
    """20 requests at once from one client, each for a number of its own: exactly
    SIGNUP_PER_CLIENT (6) are accepted and 6 SMS go out."""
    gw, notifier = signup_stack(stack, SIGNUP_CODES_PER_NUMBER="5", SIGNUP_PER_CLIENT="6")
    phones = [f"+8210460001{i:02d}" for i in range(20)]
    answers = fire(20, lambda i: post(notifier, "/signup", {"phone": phones[i]},
                                      source="127.0.0.7"))
    assert_limited(answers, 6, "too many requests from this address")
    wait_for(lambda: len([m for m in messages(gw) if m["to"] in phones]) >= 6, 10,
             "the 6 accepted codes' SMS")
    time.sleep(SETTLE)
    assert len([m for m in messages(gw) if m["to"] in phones]) == 6
    # another client is not held back by this one
    assert post(notifier, "/signup", {"phone": phones[0]}, source="127.0.0.8")[0] == 202


# --------------------------------------------------------------------------------------
# The double opt-in

def test_sign_up_with_the_code_from_the_sms(stack, migrated):
    """A code by SMS; the subscription is active only with it; a wrong code is refused and
    counted; the code is spent once used."""
    gw, notifier = signup_stack(stack)
    phone = "+821046000201"
    status, body = post(notifier, "/signup", {"phone": phone, "name": "Mina"})
    assert status == 202, body
    assert body["status"] == "code_sent" and body["phone"] == "+82******0201", body
    assert body["expires_in_s"] == 600, body
    code = next_code(gw, phone, 0)
    assert subscriber(migrated, phone) is None, "subscribed before the code was typed"
    # the code is kept hashed, never in clear
    (stored,) = migrated.query("SELECT code_hash, attempts FROM signup_codes "
                               "WHERE phone = %s AND purpose = 'subscribe'", (phone,))
    assert code not in stored[0] and stored[1] == 0

    status, body = post(notifier, "/signup/confirm", {"phone": phone, "code": other_than(code)})
    assert status == 400 and "wrong code; 4 more tries" in body["error"], body
    assert subscriber(migrated, phone) is None, "a wrong code subscribed"
    assert migrated.query("SELECT attempts FROM signup_codes WHERE phone = %s",
                          (phone,))[0][0] == 1

    status, body = post(notifier, "/signup/confirm", {"phone": phone, "code": code})
    assert status == 201, body
    assert body["status"] == "subscribed" and body["phone"] == "+82******0201", body
    assert subscriber(migrated, phone) == (True, None, "Mina")
    # spent
    status, body = post(notifier, "/signup/confirm", {"phone": phone, "code": code})
    assert status == 410, body
    # the number alone, without its code, cannot confirm a new request: a new code is sent
    # to the number, not to whoever asked
    assert post(notifier, "/signup", {"phone": phone})[0] == 202
    assert len(wait_for(lambda: codes_to(gw, phone)[1:], 10, "the second code")) == 1


def test_wrong_codes_are_counted_and_the_last_voids_the_code(stack, migrated):
    """SIGNUP_MAX_ATTEMPTS (3) wrong codes: each answer says how many tries are left, the
    last says so, and then even the right code is refused until a new one is asked."""
    gw, notifier = signup_stack(stack, SIGNUP_MAX_ATTEMPTS="3")
    phone = "+821046000301"
    assert post(notifier, "/signup", {"phone": phone})[0] == 202
    code = next_code(gw, phone, 0)
    wrong = other_than(code)
    answers = [post(notifier, "/signup/confirm", {"phone": phone, "code": wrong})
               for _ in range(3)]
    assert [a[0] for a in answers] == [400, 400, 400], answers
    assert "2 more tries" in answers[0][1]["error"], answers
    assert "1 more try" in answers[1][1]["error"], answers
    assert "that was the last try" in answers[2][1]["error"], answers
    status, body = post(notifier, "/signup/confirm", {"phone": phone, "code": code})
    assert status == 429 and "too many wrong codes" in body["error"], body
    assert subscriber(migrated, phone) is None
    assert migrated.query("SELECT count(*) FROM signup_requests WHERE phone = %s "
                          "AND kind = 'wrong'", (phone,))[0][0] == 3
    # a new code works
    assert post(notifier, "/signup", {"phone": phone})[0] == 202
    code = next_code(gw, phone, 1)
    assert post(notifier, "/signup/confirm", {"phone": phone, "code": code})[0] == 201
    assert subscriber(migrated, phone)[0] is True


def test_an_expired_code_is_refused_even_the_right_one(stack, migrated):
    gw, notifier = signup_stack(stack, SIGNUP_CODE_TTL="1s")
    phone = "+821046000401"
    status, body = post(notifier, "/signup", {"phone": phone})
    assert status == 202 and body["expires_in_s"] == 1, body
    code = next_code(gw, phone, 0)
    # the condition under test is time itself: wait until the code's life is over
    wait_for(lambda: migrated.query("SELECT count(*) FROM signup_codes WHERE phone = %s "
                                    "AND expires_at < now()", (phone,))[0][0] == 1, 10,
             "the code's expiry")
    status, body = post(notifier, "/signup/confirm", {"phone": phone, "code": code})
    assert status == 410 and "expired" in body["error"], body
    assert subscriber(migrated, phone) is None


def test_unsubscribe_with_a_code(stack, migrated):
    gw, notifier = signup_stack(stack)
    phone = "+821046000501"
    assert post(notifier, "/signup", {"phone": phone})[0] == 202
    assert post(notifier, "/signup/confirm",
                {"phone": phone, "code": next_code(gw, phone, 0)})[0] == 201
    assert post(notifier, "/unsubscribe", {"phone": phone})[0] == 202
    code = next_code(gw, phone, 1, purpose="unsubscribe")
    # a subscribe code is no unsubscribe code, and a wrong one changes nothing
    assert post(notifier, "/unsubscribe/confirm",
                {"phone": phone, "code": other_than(code)})[0] == 400
    assert subscriber(migrated, phone)[0] is True
    status, body = post(notifier, "/unsubscribe/confirm", {"phone": phone, "code": code})
    assert status == 200 and body == {"status": "unsubscribed", "was_subscribed": True}, body
    assert subscriber(migrated, phone)[:2] == (False, "page")


def test_a_number_the_provider_refuses_is_a_422(stack, migrated):
    """The stand-in answers Twilio's 21610 (the number opted out at the provider)."""
    gw, notifier = signup_stack(stack)
    phone = "+821046000601"
    set_mode(gw, opted_out=phone)
    status, body = post(notifier, "/signup", {"phone": phone})
    assert status == 422 and "refused this number" in body["error"], body
    assert codes_to(gw, phone) == []


# --------------------------------------------------------------------------------------
# STOP replies (Twilio's inbound-message webhook)

def twilio_signature(token, url, form):
    data = url + "".join(k + v for k, v in sorted(form.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
                            ).decode()


def inbound(notifier, form, signature):
    return requests.post(notifier.url + "/sms/inbound", data=urllib.parse.urlencode(form),
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "X-Twilio-Signature": signature}, timeout=10)


def test_a_signed_stop_reply_opts_the_number_out(stack, migrated):
    gw, notifier = signup_stack(stack)
    phone = "+821046000701"
    assert post(notifier, "/signup", {"phone": phone})[0] == 202
    assert post(notifier, "/signup/confirm",
                {"phone": phone, "code": next_code(gw, phone, 0)})[0] == 201
    url = notifier.url + "/sms/inbound"
    form = {"From": phone, "To": "+15005550006", "Body": " Stop all ", "MessageSid": "SM1"}
    # unsigned, or signed with another token: refused, nothing changes
    assert inbound(notifier, form, "").status_code == 403
    assert inbound(notifier, form, twilio_signature("not-the-token", url, form)
                   ).status_code == 403
    assert subscriber(migrated, phone)[0] is True
    # a reply that is not a stop word: received, nothing changes
    hello = dict(form, Body="hello")
    r = inbound(notifier, hello, twilio_signature(SMS_TOKEN, url, hello))
    assert r.status_code == 200 and "<Response></Response>" in r.text, r.text
    assert subscriber(migrated, phone)[0] is True
    r = inbound(notifier, form, twilio_signature(SMS_TOKEN, url, form))
    assert r.status_code == 200, r.text
    assert subscriber(migrated, phone)[:2] == (False, "stop")


# --------------------------------------------------------------------------------------
# Back-in-stock alerts: the products to choose from, and only those

def test_the_products_route_lists_the_inventory_without_a_token(stack, migrated, make_sku):
    """GET /signup/products, public: {"products": [{"sku": ...}]}, sorted, from inventory.
    The prefix sorts early, so that the SKUs of other tests in the session cannot push
    these past the list's limit of 500."""
    _, notifier = signup_stack(stack)
    made = sorted([make_sku(5, prefix="a46"), make_sku(0, prefix="a46")])
    r = requests.get(notifier.url + "/signup/products", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    products = r.json()["products"]
    assert all(set(p) == {"sku"} for p in products), products
    skus = [p["sku"] for p in products]
    assert skus == sorted(skus) and len(skus) <= 500, skus
    # a sold-out product is still one to be alerted about
    assert [s for s in skus if s in made] == made, skus


def test_an_unknown_sku_is_a_422_and_no_code_is_sent(stack, migrated, make_sku):
    gw, notifier = signup_stack(stack)
    phone = "+821046000801"
    known = make_sku(5, prefix="a46")
    status, body = post(notifier, "/signup",
                        {"phone": phone, "skus": [known, "no-such-doughnut", "glazd", "glazd"]})
    assert status == 422, body
    assert body["unknown_skus"] == ["glazd", "no-such-doughnut"], body
    assert "glazd" in body["error"] and "no-such-doughnut" in body["error"], body
    assert known not in body["error"], body
    time.sleep(SETTLE)
    assert codes_to(gw, phone) == [], "an SMS went out for a refused sign-up"
    assert migrated.query("SELECT count(*) FROM signup_codes WHERE phone = %s",
                          (phone,))[0][0] == 0
    # nor did it count against the number's hourly codes
    assert migrated.query("SELECT count(*) FROM signup_requests WHERE phone = %s",
                          (phone,))[0][0] == 0


def test_a_known_sku_is_on_the_subscriber_after_the_code(stack, migrated, make_sku):
    """A repeated SKU counts once; the subscription carries the SKU once confirmed."""
    gw, notifier = signup_stack(stack)
    phone = "+821046000901"
    known = make_sku(5, prefix="a46")
    status, body = post(notifier, "/signup", {"phone": phone, "skus": [known, known]})
    assert status == 202, body
    assert migrated.query("SELECT skus FROM signup_codes WHERE phone = %s",
                          (phone,))[0][0] == [known]
    status, body = post(notifier, "/signup/confirm",
                        {"phone": phone, "code": next_code(gw, phone, 0)})
    assert status == 201 and body["skus"] == [known], body
    assert migrated.query("SELECT k.sku FROM subscriber_skus k JOIN subscribers s "
                          "ON s.id = k.subscriber_id WHERE s.phone = %s "
                          "AND s.opted_out_at IS NULL", (phone,)) == [(known,)]
