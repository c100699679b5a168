"""The notifier's subscribers API (tokens, E.164 checks, duplicates, masked numbers, SKUs,
opting out) and back-in-stock alerts on stock.replenished (issue 6). The shared helpers
live in test_16_notifier.py."""

import json
import time
import uuid

import requests
from confluent_kafka import Producer

from conftest import ADMIN_TOKEN, new_sku, wait_for
from test_16_notifier import (AUTH, FIGURES, SETTLE, assert_no_full_number_logged,
                              assert_one_bulletin_each, bodies_by_number, bulletin_text,
                              counts, fresh_notifier_tables, gateway_stats, get_bulletin,
                              notifier_stack, opt_out, run_bulletin, set_mode, subscribe,
                              subscribe_ok, wait_bulletin, wait_everyone_messaged)

__all__ = ["fresh_notifier_tables"]  # the autouse fixture, imported to apply here too


def get(notifier, path, headers=AUTH):
    return requests.get(notifier.url + path, headers=headers, timeout=10)


def assert_masked(entry, phone):
    assert entry["phone"] != phone and phone[1:] not in entry["phone"], entry
    assert entry["phone"].endswith(phone[-4:]), entry
    assert "*" in entry["phone"], entry


def test_subscribers_api(stack):
    s = notifier_stack(stack)
    n = s.notifier
    kim, lee, park = "+821055560001", "+14155550199", "+447700900555"

    # No token, a wrong token, a token without "Bearer": 401 on every admin route.
    some = str(uuid.uuid4())
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": ADMIN_TOKEN}, {"Authorization": "Basic " + ADMIN_TOKEN}):
        assert subscribe(n, kim, headers=headers).status_code == 401
        assert get(n, "/subscribers", headers=headers).status_code == 401
        assert get(n, f"/subscribers/{some}", headers=headers).status_code == 401
        assert requests.delete(f"{n.url}/subscribers/{some}", headers=headers,
                               timeout=10).status_code == 401
        assert requests.put(f"{n.url}/subscribers/{some}/skus/glazed", headers=headers,
                            timeout=10).status_code == 401
        assert requests.delete(f"{n.url}/subscribers/{some}/skus/glazed", headers=headers,
                               timeout=10).status_code == 401
    assert get(n, "/subscribers").json()["total"] == 0, "a refused POST subscribed someone"

    # Numbers that are not E.164, and other bad fields: 400 with an error, nothing stored.
    bad_phones = ["", "821055560001", "+0821055560001", "+1234567", "+1234567890123456",
                  "+82 1055560001", "+82-10-5556-0001", "+82105556000a", " +821055560001",
                  "+821055560001 ", "++821055560001", 821055560001, None, ["+821055560001"]]
    for phone in bad_phones:
        r = subscribe(n, phone)
        assert r.status_code == 400, (phone, r.status_code, r.text)
        assert r.json().get("error"), r.text
    for body in ({}, {"name": "Kim"}, {"phone": kim, "name": "x" * 101},
                 {"phone": kim, "name": 7}, {"phone": kim, "skus": ["bad sku!"]},
                 {"phone": kim, "skus": "glazed"}, {"phone": kim, "skus": [1]},
                 {"phone": kim, "skus": [f"s{i}" for i in range(101)]}):
        r = requests.post(n.url + "/subscribers", json=body, headers=AUTH, timeout=10)
        assert r.status_code == 400, (body, r.status_code, r.text)
    r = requests.post(n.url + "/subscribers", data="{not json", headers=AUTH, timeout=10)
    assert r.status_code == 400
    assert get(n, "/subscribers").json()["total"] == 0

    # The shortest and longest E.164 numbers are fine.
    for phone in ("+12345678", "+123456789012345"):
        opt_out(n, subscribe_ok(n, phone))

    r = subscribe(n, kim, name="Kim", skus=["glazed", "cruller"])
    assert r.status_code == 201, r.text
    body = r.json()
    kim_id = body["id"]
    uuid.UUID(kim_id)
    assert_masked(body, kim)
    assert body["name"] == "Kim" and sorted(body["skus"]) == ["cruller", "glazed"]
    assert body["created_at"]
    lee_id = subscribe_ok(n, lee)
    park_id = subscribe_ok(n, park, name="Park", skus=["glazed"])

    # A duplicate of an active number: 409 naming the subscriber that has it.
    r = subscribe(n, kim, name="Kim again")
    assert r.status_code == 409, r.text
    assert r.json()["id"] == kim_id and r.json()["error"]

    # Lists and single subscribers show masked numbers only, oldest first.
    r = get(n, "/subscribers")
    assert r.status_code == 200
    listing = r.json()
    assert listing["total"] == 3
    assert [x["id"] for x in listing["subscribers"]] == [kim_id, lee_id, park_id]
    for x, phone in zip(listing["subscribers"], (kim, lee, park)):
        assert_masked(x, phone)
    for phone in (kim, lee, park):
        assert phone[1:] not in r.text, "GET /subscribers shows a full number"
    page = get(n, "/subscribers?limit=1&offset=1").json()
    assert [x["id"] for x in page["subscribers"]] == [lee_id] and page["total"] == 3
    r = get(n, f"/subscribers/{kim_id}")
    assert r.status_code == 200 and r.json()["id"] == kim_id
    assert_masked(r.json(), kim)
    assert kim[1:] not in r.text
    assert get(n, f"/subscribers/{uuid.uuid4()}").status_code == 404

    # SKUs: add, remove, refuse a bad one, 404 for an unknown subscriber or SKU.
    r = requests.put(f"{n.url}/subscribers/{lee_id}/skus/maple-bar", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == lee_id and r.json()["skus"] == ["maple-bar"], r.text
    r = requests.put(f"{n.url}/subscribers/{lee_id}/skus/glazed", headers=AUTH, timeout=10)
    assert r.status_code == 200 and sorted(r.json()["skus"]) == ["glazed", "maple-bar"]
    r = requests.delete(f"{n.url}/subscribers/{lee_id}/skus/maple-bar", headers=AUTH,
                        timeout=10)
    assert r.status_code == 200 and r.json()["skus"] == ["glazed"], r.text
    r = requests.delete(f"{n.url}/subscribers/{lee_id}/skus/maple-bar", headers=AUTH,
                        timeout=10)
    assert r.status_code == 404, r.text
    r = requests.put(f"{n.url}/subscribers/{lee_id}/skus/{'x' * 65}", headers=AUTH, timeout=10)
    assert r.status_code == 400, r.text
    r = requests.put(f"{n.url}/subscribers/{lee_id}/skus/bad%20sku", headers=AUTH, timeout=10)
    assert r.status_code == 400, r.text
    r = requests.put(f"{n.url}/subscribers/{uuid.uuid4()}/skus/glazed", headers=AUTH,
                     timeout=10)
    assert r.status_code == 404, r.text
    assert sorted(get(n, f"/subscribers/{lee_id}").json()["skus"]) == ["glazed"]

    # Opting out: gone from the list, a second opt-out is 404, the number may come back.
    body = opt_out(n, park_id)
    assert body["id"] == park_id and body["opted_out_at"]
    r = requests.delete(f"{n.url}/subscribers/{park_id}", headers=AUTH, timeout=10)
    assert r.status_code == 404
    assert requests.delete(f"{n.url}/subscribers/{uuid.uuid4()}", headers=AUTH,
                           timeout=10).status_code == 404
    listing = get(n, "/subscribers").json()
    assert listing["total"] == 2
    assert [x["id"] for x in listing["subscribers"]] == [kim_id, lee_id]
    again = subscribe_ok(n, park)
    assert again != park_id

    assert_no_full_number_logged(n, [kim, lee, park, "+12345678", "+123456789012345"])


def test_opted_out_subscribers_get_nothing_even_with_a_delivery_pending(stack, migrated):
    # The gateway refuses everything at first, so every delivery waits for a retry.
    s = notifier_stack(stack, gateway={"SMS_GATEWAY_FAIL_NEXT": 1000000},
                       SMS_MAX_ATTEMPTS=1000)
    stays = ["+821055570001", "+821055570002"]
    for p in stays:
        subscribe_ok(s.notifier, p)
    leaves = "+821055570003"
    leaves_id = subscribe_ok(s.notifier, leaves)
    before = "+821055570004"  # opted out before the run
    opt_out(s.notifier, subscribe_ok(s.notifier, before))

    assert run_bulletin(s.notifier).status_code == 202
    b = wait_bulletin(s.notifier, s.day, lambda b: b["state"] == "sent", 15, "the bulletin sent")
    assert counts(b)["total"] == 3, "an opted-out subscriber has a delivery"
    wait_for(lambda: gateway_stats(s.gateway)["failed"] >= 6, 15, "failed sends to retry")
    opt_out(s.notifier, leaves_id)
    b = wait_bulletin(s.notifier, s.day, lambda b: counts(b)["cancelled"] == 1, 10,
                      "the opted-out subscriber's delivery cancelled")
    set_mode(s.gateway, fail_next=0)
    wait_everyone_messaged(s.gateway, stays, 15)
    time.sleep(SETTLE)
    assert_one_bulletin_each(s.gateway, stays, bulletin_text(s.day, FIGURES))
    b = get_bulletin(s.notifier, s.day)
    assert counts(b) == {"total": 3, "sent": 2, "pending": 0, "failed": 0, "cancelled": 1}


def replenished(sku, ce_id=None):
    """A stock.replenished CloudEvent as the stock service publishes it."""
    ce_id = ce_id or str(uuid.uuid4())
    headers = [("ce_specversion", "1.0"), ("ce_id", ce_id), ("ce_source", "/dozen/stock"),
               ("ce_type", "stock.replenished"),
               ("ce_time", time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())),
               ("content-type", "application/json")]
    value = {"sku": sku, "quantity": 12, "production_order_id": str(uuid.uuid4()),
             "factory_order_id": "fo-test"}
    return ce_id, headers, json.dumps(value).encode()


def restock_deliveries(pg, ce_id):
    return pg.query("SELECT count(*) FROM deliveries WHERE message_key = %s",
                    ("restock:" + ce_id,))[0][0]


def test_replenishment_alerts_that_skus_subscribers_once(stack, migrated, broker):
    s = notifier_stack(stack)
    a, b = new_sku("alert"), new_sku("alert")
    only_a, both, only_b, none, gone = ("+821055580001", "+821055580002", "+821055580003",
                                        "+821055580004", "+821055580005")
    subscribe_ok(s.notifier, only_a, skus=[a])
    subscribe_ok(s.notifier, both, skus=[a, b])
    subscribe_ok(s.notifier, only_b, skus=[b])
    subscribe_ok(s.notifier, none)
    opt_out(s.notifier, subscribe_ok(s.notifier, gone, skus=[a]))

    p = Producer({"bootstrap.servers": broker})
    # The first event for a twice (a redelivery of the same record), then a second event for
    # a and one for b. Records with one key keep their order on their partition, so when
    # the second event's alerts exist, the duplicate has been processed too.
    first, headers, value = replenished(a)
    p.produce("stock.replenished", key=a, value=value, headers=headers)
    p.produce("stock.replenished", key=a, value=value, headers=headers)
    second, headers2, value2 = replenished(a)
    p.produce("stock.replenished", key=a, value=value2, headers=headers2)
    for_b, headers3, value3 = replenished(b)
    p.produce("stock.replenished", key=b, value=value3, headers=headers3)
    assert p.flush(10) == 0

    wait_for(lambda: restock_deliveries(migrated, second) == 2
             and restock_deliveries(migrated, for_b) == 2, 60,
             "the alerts of the second event for one SKU and the event for the other")
    assert restock_deliveries(migrated, first) == 2, "the repeated event made more alerts"
    alert_a, alert_b = f"dozen: {a} is back in stock.", f"dozen: {b} is back in stock."
    wait_for(lambda: len(bodies_by_number(s.gateway).get(both, ())) >= 3, 15,
             "the alerts to be sent")
    wait_everyone_messaged(s.gateway, [only_a], 15, count=2)
    wait_everyone_messaged(s.gateway, [only_b], 15, count=1)
    time.sleep(SETTLE)
    got = bodies_by_number(s.gateway)
    assert got.get(only_a) == [alert_a, alert_a]
    assert sorted(got.get(both)) == sorted([alert_a, alert_a, alert_b])
    assert got.get(only_b) == [alert_b]
    assert none not in got and gone not in got
    assert set(got) == {only_a, both, only_b}
    # Alerts are not bulletins: no bulletin was started for today.
    assert get_bulletin(s.notifier, s.day) is None
    assert_no_full_number_logged(s.notifier, [only_a, both, only_b, none, gone])
