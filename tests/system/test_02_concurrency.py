"""200 concurrent orders of 1 against a stock of 100: no oversell, one event per order."""

import threading

import requests

from conftest import events_for, read_topic, wait_for, unsent_outbox


def test_200_concurrent_orders_against_stock_100(sales, migrated, broker, make_sku):
    sku = make_sku(100)
    n = 200
    barrier = threading.Barrier(n)
    answers = [None] * n

    def order(i):
        barrier.wait(timeout=30)
        with requests.Session() as s:
            answers[i] = s.post(sales.url + "/orders", json={"sku": sku, "quantity": 1},
                                timeout=60)

    threads = [threading.Thread(target=order, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(a is not None for a in answers), "some requests did not finish"

    codes = [a.status_code for a in answers]
    assert codes.count(201) == 100, codes
    assert codes.count(409) == 100, codes
    assert migrated.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0] == 0
    completed = {a.json()["order_id"] for a in answers if a.status_code == 201}
    assert len(completed) == 100
    # Every rejection saw the shelf empty.
    assert all(a.json()["available"] == 0 for a in answers if a.status_code == 409)
    remaining = sorted(a.json()["remaining"] for a in answers if a.status_code == 201)
    assert remaining == list(range(100)), "each completed order saw a distinct level"

    wait_for(lambda: unsent_outbox(migrated) == 0, 30, "the outbox to drain")
    recs = read_topic(broker, "orders",
                      until=lambda rs: len(events_for(rs, "sku", [sku])) >= 200, settle=1.0)
    mine = events_for(recs, "sku", [sku])
    done = [r for r in mine if r["headers"]["ce_type"] == "order.completed"]
    rejected = [r for r in mine if r["headers"]["ce_type"] == "order.rejected"]
    assert sorted(r["value"]["order_id"] for r in done) == sorted(completed)
    assert len(rejected) == 100
    assert len({r["headers"]["ce_id"] for r in mine}) == 200
