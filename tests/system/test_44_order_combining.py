"""Concurrent orders of one SKU are placed together (services/sales/combine.c), each with
the answer it would have had alone: no oversell, levels that follow one serial order, one
event per order carrying its own level."""

import random
import threading

import requests

from conftest import events_for, read_topic, wait_for, unsent_outbox
from test_24_leader_failover import gauge

PLACEHOLDER = "7777777777771"  # store.c's level placeholder, spelled by a customer


def test_concurrent_orders_of_one_sku_are_combined_exactly(sales, migrated, broker, make_sku):
    stock = 150
    sku = make_sku(stock)
    rnd = random.Random(15)
    n = 120
    orders = []
    for i in range(n):
        body = {"sku": sku, "quantity": rnd.randint(1, 3)}
        if i % 7 == 0:
            body["customer"] = f"customer-{i}"
        if i == 5:
            body["customer"] = PLACEHOLDER  # must not be mistaken for the level
        orders.append(body)
    barrier = threading.Barrier(n)
    answers = [None] * n

    def order(i):
        barrier.wait(timeout=30)
        with requests.Session() as s:
            answers[i] = s.post(sales.url + "/orders", json=orders[i], timeout=60)

    threads = [threading.Thread(target=order, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(a is not None for a in answers), "some requests did not finish"
    codes = [a.status_code for a in answers]
    assert set(codes) <= {201, 409}, codes

    taken = [(orders[i], answers[i].json()) for i in range(n) if codes[i] == 201]
    short = [(orders[i], answers[i].json()) for i in range(n) if codes[i] == 409]
    assert taken and short, codes
    level = migrated.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]
    assert level == stock - sum(o["quantity"] for o, _ in taken) >= 0

    # One serial order explains every answer: sorted by the level they left, each taken
    # order started from the level the one before it left.
    chain = sorted(taken, key=lambda t: -t[1]["remaining"])
    before = stock
    seen_levels = {stock}
    for o, a in chain:
        assert a["quantity"] == o["quantity"] and a["sku"] == sku
        assert a["remaining"] == before - o["quantity"], (before, o, a)
        before = a["remaining"]
        seen_levels.add(before)
    assert before == level
    for o, a in short:
        assert a["available"] < o["quantity"], (o, a)
        assert a["available"] in seen_levels, (o, a, sorted(seen_levels))

    # They were combined: orders placed in one statement share its transaction's start.
    starts = migrated.query("SELECT count(DISTINCT created_at), count(*) FROM orders "
                            "WHERE sku = %s AND status = 'completed'", (sku,))[0]
    assert starts[1] == len(taken)
    assert starts[0] < starts[1], "no two orders were placed together"
    # ... and sales says so: more orders than statements in dozen_orders_batch_size.
    assert gauge(sales, "dozen_orders_batch_size_sum") > gauge(sales,
                                                               "dozen_orders_batch_size_count")

    # One event per order, each with its own order's level and customer.
    wait_for(lambda: unsent_outbox(migrated) == 0, 30, "the outbox to drain")
    want = len(taken) + len(short)
    recs = read_topic(broker, "orders",
                      until=lambda rs: len(events_for(rs, "sku", [sku])) >= want, settle=1.0)
    mine = events_for(recs, "sku", [sku])
    assert len({r["headers"]["ce_id"] for r in mine}) == len(mine) == len(taken) + len(short)
    done = {r["value"]["order_id"]: r for r in mine
            if r["headers"]["ce_type"] == "order.completed"}
    assert len(done) == len(taken)
    for o, a in taken:
        ev = done[a["order_id"]]["value"]
        assert ev["remaining"] == a["remaining"] and ev["quantity"] == o["quantity"]
        assert ev.get("customer") == o.get("customer")
    rejected = [r for r in mine if r["headers"]["ce_type"] == "order.rejected"]
    assert len(rejected) == len(short)


def test_a_lone_order_is_not_delayed(sales, make_sku):
    sku = make_sku(10)
    with requests.Session() as s:
        for left in range(9, 4, -1):
            r = s.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
            assert r.status_code == 201 and r.json()["remaining"] == left, r.text
            assert r.elapsed.total_seconds() < 1.0
