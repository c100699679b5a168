"""The shop's Legacy Factory API: the request dozen sends, every callback shape real
deployments send back, delivery callbacks as capabilities (issue 11, defect 1: a forged
delivery raised stock), and a refusal (4xx) that names an attribute."""

import hashlib
import json
import os
import secrets
import subprocess
import time
import uuid

import requests

from conftest import BIN, events_for, read_topic, service_env, start_restock, wait_for

DELAY_MS = 300


def level(pg, sku):
    return pg.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]


def production_orders(factory, sku):
    r = requests.get(factory.url + "/production-orders", params={"sku": sku}, timeout=5)
    assert r.status_code == 200
    return r.json()["production_orders"]


def manufactures(legacy, product_id):
    r = requests.get(legacy.url + "/admin/manufactures", params={"product_id": product_id},
                     timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def restock_stack(stack, legacy_env=None, factory_env=None):
    return start_restock(stack, legacy_env, factory_env, DELAY_MS)


def sell_out(sales, sku):
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=10)
    assert r.status_code == 409, r.text
    return r


def replenished_in_outbox(pg, sku):
    return pg.query("SELECT count(*) FROM outbox WHERE topic = 'stock.replenished' "
                    "AND msg_key = %s", (sku,))[0][0]


def requested_order(stack, migrated, make_sku, **legacy_env):
    """A product sold out and its production order requested from a factory that takes a
    minute to deliver: (sku, factory, legacy, order)."""
    sku = make_sku(0, batch=5)
    sales, stock, factory, legacy = restock_stack(
        stack, dict({"FACTORY_DELAY_MS": 60000}, **legacy_env))
    sell_out(sales, sku)
    [po] = wait_for(lambda: [p for p in production_orders(factory, sku)
                             if p["status"] == "requested"], 20, "the requested order")
    return sku, factory, legacy, po


# ---------------------------------------------------------------------------------------
# Capabilities (issue 11, defect 1)

def test_forged_deliveries_are_404_and_change_nothing(stack, migrated, make_sku):
    sku, factory, legacy, po = requested_order(stack, migrated, make_sku)
    # The defect as reported: the listing's factory order id, the old route, no token.
    r = requests.post(factory.url + "/deliveries", json={
        "factory_order_id": po.get("factory_order_id") or "fo-guess", "sku": sku,
        "quantity": 1000000}, timeout=5)
    assert r.status_code in (404, 405), f"forged delivery: {r.status_code} {r.text}"
    listing = json.dumps(production_orders(factory, sku))
    # The unauthenticated listing shows no capability and no callback URL.
    assert "token" not in listing and "deliveries" not in listing and "http" not in listing
    [mf] = manufactures(legacy, sku)["manufactures"]
    real_token = mf["callback_url"].split("token=", 1)[1]
    assert len(real_token) == 64 and real_token not in listing

    pid = po["production_order_id"]
    forged = [
        (f"/deliveries/{pid}", None),                                   # no token
        (f"/deliveries/{pid}?token=", None),                            # empty
        (f"/deliveries/{pid}?token={secrets.token_hex(32)}", None),     # guessed
        (f"/deliveries/{pid}?token={real_token[:-1]}", None),           # one short
        (f"/deliveries/{pid}?token={real_token.upper()}", None),        # other case
        (f"/deliveries/{pid}?po={pid}&token={secrets.token_hex(32)}", None),
        (f"/deliveries/{uuid.uuid4()}?token={real_token}", None),       # another order
        (f"/deliveries/not-a-uuid?token={real_token}", None),
    ]
    body = {"MessageAttributeProductId": sku, "MessageAttributeProductCnt": 1000000}
    for path, other in forged:
        r = requests.post(factory.url + path, json=other or body, timeout=5)
        assert r.status_code in (404, 405), f"{path}: {r.status_code} {r.text}"
        assert "delivered" not in r.text
    time.sleep(1)  # a forged stock.replenished would reach the stock service by now
    assert level(migrated, sku) == 0
    assert replenished_in_outbox(migrated, sku) == 0
    [after] = production_orders(factory, sku)
    assert after["status"] == "requested" and "delivered_quantity" not in after


def test_only_a_hash_of_each_token_is_stored(stack, migrated, make_sku):
    sku, factory, legacy, po = requested_order(stack, migrated, make_sku)
    [mf] = manufactures(legacy, sku)["manufactures"]
    token = mf["callback_url"].split("token=", 1)[1]
    cols = migrated.query("SELECT column_name FROM information_schema.columns "
                          "WHERE table_name = 'production_orders'")
    assert "callback_token" not in {c[0] for c in cols}
    dump = migrated.query("SELECT row_to_json(t)::text FROM production_orders t WHERE sku = %s "
                          "UNION ALL SELECT row_to_json(k)::text FROM production_order_tokens k "
                          "WHERE production_order_id = %s", (sku, po["production_order_id"]))
    assert len(dump) == 2 and all(token not in d[0] for d in dump)
    [[stored]] = migrated.query("SELECT encode(token_sha256, 'hex') FROM production_order_tokens "
                                "WHERE production_order_id = %s", (po["production_order_id"],))
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in factory.log() and token not in legacy.log()


def test_a_valid_capability_with_a_bad_body_is_refused_and_changes_nothing(stack, migrated,
                                                                            make_sku):
    sku, factory, legacy, po = requested_order(stack, migrated, make_sku)
    [mf] = manufactures(legacy, sku)["manufactures"]
    url = mf["callback_url"]
    assert url.startswith(factory.url + "/deliveries/" + po["production_order_id"] + "?token=")
    bad = [
        (400, "not json", "text/plain"),
        (400, json.dumps({"MessageAttributeProductId": sku}), "application/json"),
        (400, json.dumps({"MessageAttributeProductId": sku, "MessageAttributeProductCnt": 0}),
         "application/json"),
        (400, json.dumps({"MessageAttributeProductId": sku,
                          "MessageAttributeProductCnt": "ten"}), "application/json"),
        (400, json.dumps({"MessageAttributeProductId": sku,
                          "MessageAttributeProductCnt": 2.5}), "application/json"),
        (400, json.dumps({"MessageAttributeProductId": sku,
                          "MessageAttributeProductCnt": 10000001}), "application/json"),
        (400, json.dumps([sku, 5]), "application/json"),
        (400, json.dumps(json.dumps(json.dumps({"MessageAttributeProductId": sku,
                                                "MessageAttributeProductCnt": 5}))),
         "application/json"),                                      # encoded twice
        (409, json.dumps({"MessageAttributeProductId": sku + "-other",
                          "MessageAttributeProductCnt": 5}), "application/json"),
    ]
    for code, body, ctype in bad:
        r = requests.post(url, data=body.encode(), headers={"Content-Type": ctype}, timeout=5)
        assert r.status_code == code, f"{body}: {r.status_code} {r.text}"
        assert "error" in r.json()
    time.sleep(1)
    assert level(migrated, sku) == 0 and replenished_in_outbox(migrated, sku) == 0
    assert production_orders(factory, sku)[0]["status"] == "requested"
    # The same capability still delivers once, then never again.
    good = {"MessageAttributeProductId": sku, "MessageAttributeProductCnt": 5}
    r = requests.post(url, json=good, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "delivered", r.text
    wait_for(lambda: level(migrated, sku) == 5, 20, "the delivery")
    r = requests.post(url, json=dict(good, MessageAttributeProductCnt=50), timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "already_delivered", r.text
    r = requests.post(url, data=b"garbage", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "already_delivered", r.text
    time.sleep(1)
    assert level(migrated, sku) == 5 and replenished_in_outbox(migrated, sku) == 1


# ---------------------------------------------------------------------------------------
# The request and every callback shape

def test_the_request_carries_the_six_attributes_and_product_settings(stack, migrated,
                                                                      make_sku):
    plain, custom = make_sku(0, batch=7), make_sku(0, batch=3)
    migrated.execute("UPDATE inventory SET factory_id = 'FF-777', factory_product_id = %s "
                     "WHERE sku = %s", ("CP-" + custom, custom))
    sales, stock, factory, legacy = restock_stack(
        stack, factory_env={"LEGACY_FACTORY_REQUESTER": "ops-team"})
    sell_out(sales, plain)
    sell_out(sales, custom)
    wait_for(lambda: level(migrated, plain) == 7 and level(migrated, custom) == 3, 20,
             "both restocks")
    [a] = manufactures(legacy, plain)["manufactures"]
    [b] = manufactures(legacy, "CP-" + custom)["manufactures"]
    assert (a["factory_id"], a["requester"], a["group_id"], a["count"]) == \
        ("FF-500293", "ops-team", "stock-arrival-group", 7)
    assert (b["factory_id"], b["product_id"], b["count"]) == ("FF-777", "CP-" + custom, 3)
    [po] = production_orders(factory, custom)
    assert po["factory_id"] == "FF-777" and po["factory_product_id"] == "CP-" + custom
    assert po["quantity"] == 3 and po["delivered_quantity"] == 3


def shape_case(stack, migrated, make_sku, batch, **mode):
    sku = make_sku(0, batch=batch)
    env = {"LEGACY_FACTORY_" + k.upper(): str(v) for k, v in mode.items()}
    sales, stock, factory, legacy = restock_stack(stack, env)
    sell_out(sales, sku)
    return sku, factory, legacy


def test_each_callback_shape_delivers(stack, migrated, make_sku):
    # One stack, the stand-in's shape changed between products (taken at acceptance).
    skus = {}
    sales, stock, factory, legacy = restock_stack(stack)
    for i, (shape, as_string) in enumerate([("object", 0), ("json_string", 0),
                                            ("text_plain", 0), ("object", 1),
                                            ("json_string", 1), ("text_plain", 1)]):
        r = requests.post(legacy.url + "/admin/mode", json={
            "callback_shape": shape, "count_as_string": bool(as_string)}, timeout=5)
        assert r.status_code == 200, r.text
        sku = make_sku(0, batch=10 + i)
        skus[sku] = 10 + i
        sell_out(sales, sku)
        wait_for(lambda: manufactures(legacy, sku)["manufactures"], 20, "the call")
    wait_for(lambda: all(level(migrated, s) == n for s, n in skus.items()), 30,
             "every shape's delivery")
    for sku, n in skus.items():
        [po] = production_orders(factory, sku)
        assert po["status"] == "delivered" and po["delivered_quantity"] == n
    assert factory.log().count("delivery_applied") == len(skus)


def test_delivered_count_different_from_requested(stack, migrated, broker, make_sku):
    sku, factory, legacy = shape_case(stack, migrated, make_sku, 10, deliver_count=7,
                                      count_as_string=1, callback_shape="text_plain")
    wait_for(lambda: level(migrated, sku) == 7, 20, "the short delivery")
    [po] = production_orders(factory, sku)
    assert po["quantity"] == 10 and po["delivered_quantity"] == 7
    recs = read_topic(broker, "stock.replenished",
                      until=lambda rs: events_for(rs, "sku", [sku]))
    [ev] = events_for(recs, "sku", [sku])
    assert ev["value"]["quantity"] == 7
    assert ev["value"]["production_order_id"] == po["production_order_id"]


def test_repeated_callback_changes_nothing(stack, migrated, make_sku):
    sku, factory, legacy = shape_case(stack, migrated, make_sku, 9, deliver_twice=1,
                                      callback_shape="json_string")
    wait_for(lambda: (manufactures(legacy, sku)["manufactures"] or [{}])[0]
             .get("deliveries") == 2, 20, "both callbacks")
    wait_for(lambda: level(migrated, sku) == 9, 10, "the delivery")
    assert "delivery_repeated" in factory.log()
    time.sleep(1)
    assert level(migrated, sku) == 9 and replenished_in_outbox(migrated, sku) == 1


# ---------------------------------------------------------------------------------------
# Refusals

def test_the_stand_in_names_the_missing_attribute(stack):
    legacy = stack.legacy_factory().start()
    full = {"MessageGroupId": "stock-arrival-group", "MessageAttributeProductId": "CP-502101",
            "MessageAttributeProductCnt": 10, "MessageAttributeFactoryId": "FF-500293",
            "MessageAttributeRequester": "ops-team",
            "CallbackUrl": "http://127.0.0.1:1/deliveries/x?token=y"}
    for attr in full:
        for value in (None, ""):
            body = dict(full)
            if value is None:
                del body[attr]
            else:
                body[attr] = value
            r = requests.post(legacy.url + "/api/manufactures", json=body, timeout=5)
            assert r.status_code == 400, (attr, r.text)
            assert f"'{attr}'" in r.json()["message"], r.text
    r = requests.post(legacy.url + "/api/manufactures", json=full, timeout=5)
    assert r.status_code == 200 and r.json()["message"], r.text
    assert requests.post(legacy.url + "/production-orders", json=full,
                         timeout=5).status_code in (404, 405)


def test_a_4xx_is_dead_lettered_with_the_factorys_message(stack, migrated, broker, make_sku):
    sku = make_sku(0, batch=4)
    sales, stock, factory, legacy = restock_stack(stack, {"LEGACY_FACTORY_REJECT_NEXT": "1"})
    sell_out(sales, sku)
    dead = read_topic(broker, "dead-letter", until=lambda rs: events_for(rs, "sku", [sku]),
                      timeout=30)
    [d] = events_for(dead, "sku", [sku])
    h = d["headers"]
    assert h["dozen-reason"] == "factory_rejected", h
    assert "HTTP 400" in h["dozen-error"] and "'MessageAttributeFactoryId'" in h["dozen-error"]
    [po] = production_orders(factory, sku)
    assert po["status"] == "failed" and "MessageAttributeFactoryId" in po["last_error"]
    calls = manufactures(legacy, sku)["calls"]
    assert [c["outcome"] for c in calls] == ["rejected"], calls  # not retried
    # The SKU is not blocked: the next depletion orders again, and is delivered.
    sell_out(sales, sku)
    wait_for(lambda: level(migrated, sku) == 4, 20, "the next depletion's restock")
    # Replaying the refused depletion now finds it answered by that newer delivery.
    out = subprocess.run([os.path.join(BIN, "dozenctl"), "dlq", "replay", "--group", "factory",
                          "--reason", "factory_rejected"], capture_output=True, text=True,
                         timeout=120, env=dict({k: v for k, v in os.environ.items()
                                                if not k.startswith("KAFKA_")},
                                               KAFKA_BOOTSTRAP=broker,
                                               DATABASE_URL=migrated.url))
    assert out.returncode == 0, out.stderr
    wait_for(lambda: migrated.query(
        "SELECT count(*) FROM processed_events WHERE consumer = 'factory' AND ce_id = %s",
        (h["ce_id"],))[0][0] == 1, 30, "the replayed depletion to be handled")
    assert level(migrated, sku) == 4
    assert len(production_orders(factory, sku)) == 2


# ---------------------------------------------------------------------------------------
# Settings

def run(name, env):
    return subprocess.run([os.path.join(BIN, name)], env=env, capture_output=True, text=True,
                          timeout=30)


def test_bad_settings_name_the_variable(migrated, broker):
    bad = [("LEGACY_FACTORY_ID", " FF-1"), ("LEGACY_FACTORY_ID", "F" * 129),
           ("LEGACY_FACTORY_REQUESTER", "ops\nteam"), ("LEGACY_FACTORY_GROUP_ID", "g\x7f"),
           ("LEGACY_FACTORY_URL", "ftp://factory"), ("FACTORY_CALLBACK_URL", "shop/")]
    for var, value in bad:
        out = run("factory", service_env(migrated, broker, **{var: value}))
        assert out.returncode == 1 and var in out.stderr, (var, out.stderr)
    out = run("legacy-factory", service_env(migrated, broker, LEGACY_FACTORY_PORT="1",
                                            LEGACY_FACTORY_CALLBACK_SHAPE="xml"))
    assert out.returncode == 1 and "LEGACY_FACTORY_CALLBACK_SHAPE" in out.stderr, out.stderr
