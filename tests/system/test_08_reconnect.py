"""PostgreSQL restarts under the services: /healthz says so, and they recover by themselves."""

import requests

from conftest import events_for, read_topic, wait_for


def test_services_recover_after_postgres_restart(stack, migrated, broker, make_sku):
    sku = make_sku(50)
    sales = stack.sales().start()
    stock = stack.stock().start()
    assert requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1},
                         timeout=5).status_code == 201

    migrated.stop("fast")
    try:
        wait_for(lambda: requests.get(sales.url + "/healthz", timeout=5).status_code == 503,
                 20, "sales to report the database down")
        r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=15)
        assert r.status_code == 503 and "database" in r.json()["error"]
        assert requests.get(f"{stock.url}/inventory/{sku}", timeout=15).status_code == 503
    finally:
        migrated.start()

    wait_for(lambda: requests.get(sales.url + "/healthz", timeout=5).status_code == 200, 30,
             "sales to be healthy again")
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 2}, timeout=5)
    assert r.status_code == 201, r.text
    oid = r.json()["order_id"]
    assert requests.get(f"{stock.url}/inventory/{sku}", timeout=5).json()["quantity"] == 47
    # The relay reconnected too: the new order's event is published.
    read_topic(broker, "orders", until=lambda rs: events_for(rs, "order_id", [oid]))
