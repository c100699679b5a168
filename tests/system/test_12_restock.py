"""The restock loop: a depletion becomes one call to the legacy factory, and the factory's
delivery raises stock exactly once."""

import json
import random
import signal
import threading
import time
import uuid

import requests
from confluent_kafka import Producer

from conftest import events_for, read_topic, start_restock, wait_assigned, wait_for

DELAY_MS = 1000


def level(pg, sku):
    return pg.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]


def legacy_calls(legacy, sku):
    """What the legacy factory stand-in received for sku (its product id by default)."""
    body = requests.get(legacy.url + "/admin/manufactures", params={"product_id": sku},
                        timeout=5).json()
    calls = [c for c in body["calls"] if c["product_id"] == sku]
    orders = [o for o in body["manufactures"] if o["product_id"] == sku]
    return calls, orders


def production_orders(factory, sku):
    r = requests.get(factory.url + "/production-orders", params={"sku": sku}, timeout=5)
    assert r.status_code == 200
    return r.json()["production_orders"]


def restock_stack(stack, legacy_env=None, factory_env=None):
    return start_restock(stack, legacy_env, factory_env, DELAY_MS)


def order(sales, sku, quantity=1):
    return requests.post(sales.url + "/orders", json={"sku": sku, "quantity": quantity},
                         timeout=10)


def test_sell_out_then_restock_within_the_factory_delay(stack, migrated, make_sku):
    sku = make_sku(2, batch=25)
    sales, stock, factory, legacy = restock_stack(stack)
    assert order(sales, sku, 2).status_code == 201
    r = order(sales, sku)
    assert r.status_code == 409 and r.json()["restock_requested"] is True
    wait_for(lambda: level(migrated, sku) == 25, DELAY_MS / 1000 + 3,
             "stock to be restored to one batch")
    assert order(sales, sku).status_code == 201
    [po] = production_orders(factory, sku)
    assert po["status"] == "delivered" and po["quantity"] == 25
    assert po["delivered_quantity"] == 25 and po["attempts"] == 1


def test_50_concurrent_out_of_stock_orders_make_one_factory_call(stack, migrated, make_sku):
    sku = make_sku(0, batch=30)
    sales, stock, factory, legacy = restock_stack(stack)
    barrier = threading.Barrier(50)
    codes = []

    def one():
        barrier.wait(timeout=30)
        codes.append(order(sales, sku).status_code)
    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert codes.count(409) == 50
    wait_for(lambda: level(migrated, sku) == 30, DELAY_MS / 1000 + 10, "the restock")
    # Every depletion was consumed before we look at what reached the factory.
    wait_for(lambda: migrated.query(
        "SELECT count(*) FROM processed_events e JOIN outbox o ON o.ce_id = e.ce_id "
        "WHERE e.consumer = 'factory' AND o.msg_key = %s", (sku,))[0][0] == 50, 30,
        "the factory to consume all 50 depletions")
    calls, orders = legacy_calls(legacy, sku)
    assert [c["outcome"] for c in calls] == ["accepted"]
    assert len(orders) == 1
    assert len(production_orders(factory, sku)) == 1
    assert level(migrated, sku) == 30, "stock rose by more than one batch"


def test_double_delivery_and_replayed_event_raise_stock_once(stack, migrated, broker, make_sku):
    sku = make_sku(0, batch=12)
    sales, stock, factory, legacy = restock_stack(stack, {"LEGACY_FACTORY_DELIVER_TWICE": "1"})
    assert order(sales, sku).status_code == 409
    wait_for(lambda: level(migrated, sku) == 12, DELAY_MS / 1000 + 10, "the restock")
    wait_for(lambda: (legacy_calls(legacy, sku)[1] or [{}])[0].get("deliveries") == 2, 15,
             "the factory's second delivery")
    assert "delivery_repeated" in factory.log()

    recs = read_topic(broker, "stock.replenished",
                      until=lambda rs: events_for(rs, "sku", [sku]))
    [ev] = events_for(recs, "sku", [sku])
    p = Producer({"bootstrap.servers": broker})
    p.produce("stock.replenished", key=sku, value=json.dumps(ev["value"]).encode(),
              headers=list(ev["headers"].items()))
    assert p.flush(10) == 0
    wait_for(lambda: f"stock_replenish_duplicate sku={sku} ce_id={ev['headers']['ce_id']}"
             in stock.log(), 30, "the stock service to see the replayed record")
    assert level(migrated, sku) == 12


def test_503_three_times_then_restocked(stack, migrated, make_sku):
    sku = make_sku(0, batch=8)
    sales, stock, factory, legacy = restock_stack(stack, {"LEGACY_FACTORY_FAIL_NEXT": "3"})
    assert order(sales, sku).status_code == 409
    wait_for(lambda: level(migrated, sku) == 8, DELAY_MS / 1000 + 15, "the restock")
    calls, _ = legacy_calls(legacy, sku)
    assert [c["outcome"] for c in calls] == ["unavailable"] * 3 + ["accepted"]
    [po] = production_orders(factory, sku)
    assert po["attempts"] == 4 and po["status"] == "delivered"
    assert factory.log().count(f"factory_call_failed production_order_id={po['production_order_id']}") == 3
    assert "HTTP 503" in factory.log()


def replenished_record(sku, quantity):
    ce = str(uuid.uuid4())
    headers = [("ce_specversion", "1.0"), ("ce_id", ce), ("ce_source", "/test"),
               ("ce_type", "stock.replenished"),
               ("ce_time", time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())),
               ("content-type", "application/json")]
    value = {"sku": sku, "quantity": quantity, "production_order_id": str(uuid.uuid4()),
             "factory_order_id": "fo-test"}
    return headers, json.dumps(value).encode()


def test_stock_killed_while_applying_replenishments(stack, migrated, broker, make_sku):
    sku = make_sku(0)
    rng = random.Random(7)
    quantities = [rng.randint(1, 5) for _ in range(2000)]
    ce_ids = []
    p = Producer({"bootstrap.servers": broker, "enable.idempotence": True})
    for q in quantities:
        headers, value = replenished_record(sku, q)
        ce_ids.append(dict(headers)["ce_id"])
        p.produce("stock.replenished", key=sku, value=value, headers=headers)
    assert p.flush(30) == 0

    stock = stack.stock().start()
    wait_for(lambda: level(migrated, sku) > 0, 60, "the first replenishments")
    seen = stock.log().count("kafka_partitions_assigned")
    stock.kill(signal.SIGKILL)
    partial = level(migrated, sku)
    assert partial < sum(quantities), "the kill came too late to test anything"
    stock.start()
    wait_assigned(stock, seen)

    def applied():
        return migrated.query("SELECT count(*) FROM processed_events WHERE consumer = 'stock' "
                              "AND ce_id = ANY(%s::uuid[])", (ce_ids,))[0][0]
    wait_for(lambda: applied() == len(ce_ids), 120, "every replenishment to be applied")
    # Each event's effect and its record commit together: all recorded means all applied,
    # and no later duplicate can add anything.
    assert level(migrated, sku) == sum(quantities)


def test_one_skus_failures_do_not_delay_another(stack, migrated, make_sku):
    failing, fine = make_sku(0, batch=5), make_sku(0, batch=6)
    sales, stock, factory, legacy = restock_stack(
        stack, {"LEGACY_FACTORY_FAIL_SKUS": failing})
    assert order(sales, failing).status_code == 409
    assert order(sales, fine).status_code == 409
    wait_for(lambda: level(migrated, fine) == 6, DELAY_MS / 1000 + 3,
             "the healthy SKU's restock")
    [po] = production_orders(factory, failing)
    assert po["status"] == "pending" and po["last_error"] == "HTTP 503"
    assert level(migrated, failing) == 0


# ---------------------------------------------------------------------------------------
# The factory's bad days: no answer at all, or an answer later than FACTORY_TIMEOUT

def set_legacy_mode(legacy, **mode):
    r = requests.post(legacy.url + "/admin/mode", json=mode, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def replenished(pg, sku):
    return pg.query("SELECT count(*) FROM outbox WHERE topic = 'stock.replenished' "
                    "AND msg_key = %s", (sku,))[0][0]


def test_factory_down_is_retried_then_restocked_once(stack, migrated, make_sku):
    """The factory closes every call without an answer (`down`): the call is retried
    through the retry topic, the order stays pending, stock stays at 0. Once the factory
    answers again, one call is accepted and stock rises by one batch, once."""
    sku = make_sku(0, batch=7)
    sales, stock, factory, legacy = restock_stack(stack, {"LEGACY_FACTORY_DOWN": "1"})
    assert order(sales, sku).status_code == 409
    wait_for(lambda: [c["outcome"] for c in legacy_calls(legacy, sku)[0]].count("refused")
             >= 2, 30, "two calls refused")
    [po] = wait_for(lambda: [p for p in production_orders(factory, sku)
                             if p["last_error"]], 20, "the failed call recorded")
    assert po["status"] == "pending", po
    assert level(migrated, sku) == 0
    set_legacy_mode(legacy, down=False)
    wait_for(lambda: level(migrated, sku) == 7, DELAY_MS / 1000 + 20, "the restock")
    calls, orders = legacy_calls(legacy, sku)
    outcomes = [c["outcome"] for c in calls]
    refused = outcomes.count("refused")
    assert outcomes == ["refused"] * refused + ["accepted"], outcomes
    assert len(orders) == 1
    [po] = production_orders(factory, sku)
    assert po["status"] == "delivered" and po["attempts"] == refused + 1, po
    # nothing more comes: no second call, no second batch
    time.sleep(DELAY_MS / 1000 + 1)
    assert len(legacy_calls(legacy, sku)[0]) == refused + 1
    assert level(migrated, sku) == 7 and replenished(migrated, sku) == 1
    assert len(production_orders(factory, sku)) == 1


def test_factory_slower_than_factory_timeout_is_retried_then_restocked_once(
        stack, migrated, make_sku):
    """The factory answers after 1.5 s, FACTORY_TIMEOUT is 0.5 s: each call times out and
    is retried. The factory still takes those calls (it accepts once its sleep is over,
    whether or not anyone listens), so it manufactures more than once and calls back
    more than once: every callback names the same production order, which is delivered
    once. Once the factory is quick again, the next call is placed; stock rises by one
    batch, once, and dozen has one production order."""
    sku = make_sku(0, batch=9)
    sales, stock, factory, legacy = restock_stack(
        stack, {"LEGACY_FACTORY_SLOW_MS": "1500", "FACTORY_DELAY_MS": "3000"},
        {"FACTORY_TIMEOUT": "500ms"})
    assert order(sales, sku).status_code == 409
    pid = wait_for(lambda: (production_orders(factory, sku) or [{}])[0].get(
        "production_order_id"), 20, "the production order")
    failed = f"factory_call_failed production_order_id={pid}"
    wait_for(lambda: factory.log().count(failed) >= 2, 30, "two calls timed out")
    assert "timed out" in factory.log().split(failed, 1)[1].split("\n", 1)[0].lower()
    assert level(migrated, sku) == 0
    set_legacy_mode(legacy, slow_ms=0)
    wait_for(lambda: level(migrated, sku) == 9, 30, "the restock")
    wait_for(lambda: "factory_order_placed production_order_id=" + pid in factory.log(), 30,
             "a call answered in time")
    # every manufacture the factory took calls back, all to the one order
    wait_for(lambda: (lambda o: o and all(m["status"] == "delivered" for m in o))(
        legacy_calls(legacy, sku)[1]), 30, "every manufacture's callback made")
    calls, orders = legacy_calls(legacy, sku)
    assert len(orders) >= 2, orders          # taken after their callers had timed out
    assert all(f"/deliveries/{pid}?token=" in m["callback_url"] for m in orders), orders
    [po] = production_orders(factory, sku)
    assert po["status"] == "delivered" and po["attempts"] >= 3, po
    assert level(migrated, sku) == 9 and replenished(migrated, sku) == 1
