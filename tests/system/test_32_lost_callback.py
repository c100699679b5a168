"""A production order whose delivery callback never comes (the factory service was down when
the factory called back, or the network lost it) is asked for again after
FACTORY_DELIVERY_TIMEOUT, without waiting for another order of that product: the factory's
sweeper raises the SKU's depletion again (found by the chaos suite: a sold-out product
nobody orders any more never came back)."""

import requests

from conftest import read_topic, start_restock, wait_for
from test_12_restock import legacy_calls, level, production_orders


def test_an_undelivered_order_is_asked_for_again(stack, migrated, broker, make_sku):
    sku = make_sku(1, batch=6)
    # The first call's delivery would come in 10 minutes: for this test, lost.
    sales, stock, factory, legacy = start_restock(stack, factory_env={
        "FACTORY_DELIVERY_TIMEOUT": "2s"}, delay_ms=600000)
    assert requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1},
                         timeout=10).status_code == 201
    assert requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1},
                         timeout=10).status_code == 409
    wait_for(lambda: len(legacy_calls(legacy, sku)[0]) >= 1, 20, "the first factory call")
    # From now on the factory delivers at once; only a second call can bring the stock back.
    r = requests.post(legacy.url + "/admin/mode", json={"delay_ms": 100}, timeout=5)
    assert r.status_code == 200, r.text
    wait_for(lambda: level(migrated, sku) == 6, 30,
             "the stock back through a second call, with no new order")
    calls, _ = legacy_calls(legacy, sku)
    assert len(calls) >= 2
    [po] = production_orders(factory, sku)
    assert po["status"] == "delivered" and po["attempts"] >= 2
    assert "production_order_undelivered" in factory.log()
    # The depletion raised again is an ordinary stock.depleted event from the factory.
    deps = read_topic(broker, "stock.depleted",
                      until=lambda rs: [x for x in rs if x["key"] == sku and
                                        x["headers"].get("ce_source") == "/dozen/factory"])
    assert [x for x in deps if x["key"] == sku and
            x["headers"].get("ce_source") == "/dozen/factory"]
