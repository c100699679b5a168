"""Concurrent orders of one SKU are placed together (services/sales/combine.c), and so are
the batches of several SKUs, each order with the answer it would have had alone: no
oversell, levels that follow one serial order, one event per order carrying its own level."""

import random
import threading

import psycopg2
import requests

from conftest import events_for, read_topic, wait_for, unsent_outbox
from test_24_leader_failover import gauge
from test_31_commit_unknown import orders_in_flight

PLACEHOLDER = "7777777777771"  # store.c's level placeholder, spelled by a customer


def post_at_once(sales, orders, in_flight=None):
    """POSTs every order from its own thread, all released together; the answers. With
    in_flight (ready, then): calls then() once ready() is true (or after 30 s, failing),
    before it waits for the answers."""
    n = len(orders)
    barrier = threading.Barrier(n)
    answers = [None] * n

    def order(i):
        barrier.wait(timeout=30)
        with requests.Session() as s:
            answers[i] = s.post(sales.url + "/orders", json=orders[i], timeout=60)

    threads = [threading.Thread(target=order, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    if in_flight is not None:
        ready, then = in_flight
        try:
            wait_for(ready, 30, "the orders to be held up in sales")
        finally:
            then()
    for t in threads:
        t.join(timeout=120)
    assert all(a is not None for a in answers), "some requests did not finish"
    return answers


def sales_busy(sales, n):
    """Whether sales handles at least n requests now: its in-flight gauge says so, or every
    HTTP thread is taken, so that /metrics is not answered within a second."""
    try:
        requests.get(sales.url + "/healthz", timeout=1)
    except requests.RequestException:
        return True
    return orders_in_flight(sales) >= n


def check_serial(migrated, sku, stock, taken, short):
    """One serial order explains every answer of sku: sorted by the level they left, each
    taken order started from the level the one before it left; each refused one saw a
    level of that chain that did not cover it. Returns the level."""
    level = migrated.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]
    assert level == stock - sum(o["quantity"] for o, _ in taken) >= 0
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
    return level


def check_events(migrated, broker, skus, taken, short):
    """One event per answered order, each with its own order's level and customer, and a
    SKU's events on its partition in the order of the levels they carry."""
    wait_for(lambda: unsent_outbox(migrated) == 0, 30, "the outbox to drain")
    want = len(taken) + len(short)
    recs = read_topic(broker, "orders",
                      until=lambda rs: len(events_for(rs, "sku", skus)) >= want, settle=1.0)
    mine = events_for(recs, "sku", skus)
    assert len({r["headers"]["ce_id"] for r in mine}) == len(mine) == want
    done = {r["value"]["order_id"]: r for r in mine
            if r["headers"]["ce_type"] == "order.completed"}
    assert len(done) == len(taken)
    for o, a in taken:
        ev = done[a["order_id"]]["value"]
        assert ev["remaining"] == a["remaining"] and ev["quantity"] == o["quantity"]
        assert ev.get("customer") == o.get("customer")
    rejected = [r for r in mine if r["headers"]["ce_type"] == "order.rejected"]
    assert len(rejected) == len(short)
    for sku in skus:
        levels = [r["value"]["remaining"] for r in mine
                  if r["headers"]["ce_type"] == "order.completed" and
                  r["value"]["sku"] == sku]
        assert levels == sorted(levels, reverse=True), (sku, levels)


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
    answers = post_at_once(sales, orders)
    codes = [a.status_code for a in answers]
    assert set(codes) <= {201, 409}, codes

    taken = [(orders[i], answers[i].json()) for i in range(n) if codes[i] == 201]
    short = [(orders[i], answers[i].json()) for i in range(n) if codes[i] == 409]
    assert taken and short, codes
    check_serial(migrated, sku, stock, taken, short)

    # They were combined: orders placed in one statement share its transaction's start.
    starts = migrated.query("SELECT count(DISTINCT created_at), count(*) FROM orders "
                            "WHERE sku = %s AND status = 'completed'", (sku,))[0]
    assert starts[1] == len(taken)
    assert starts[0] < starts[1], "no two orders were placed together"
    # ... and sales says so: more orders than statements in dozen_orders_batch_size.
    assert gauge(sales, "dozen_orders_batch_size_sum") > gauge(sales,
                                                               "dozen_orders_batch_size_count")
    check_events(migrated, broker, [sku], taken, short)


def test_orders_of_several_skus_share_statements_exactly(sales, migrated, broker, make_sku):
    """Batches of different SKUs go in one statement (COMBINE_STATEMENTS): some SKUs run
    short in it and are placed one by one after it, an unknown SKU is a 404, and every
    other answer is still the one it would have had alone."""
    rnd = random.Random(18)
    stocks = {make_sku(stock): stock for stock in (12, 20, 35, 60, 400, 400, 400, 400)}
    skus = list(stocks)
    unknown = "no-such-" + skus[0]
    orders = []
    for i in range(240):
        body = {"sku": skus[i % len(skus)], "quantity": rnd.randint(1, 3)}
        if i % 5 == 0:
            body["customer"] = f"customer-{i}"
        orders.append(body)
    orders += [{"sku": unknown, "quantity": 1} for _ in range(6)]
    skus_before = (gauge(sales, "dozen_orders_statement_skus_sum"),
                   gauge(sales, "dozen_orders_statement_skus_count"))
    # The SKUs' rows stay locked until every statement sales may run at once
    # (COMBINE_STATEMENTS, 4) waits for them and more orders than that are in sales: the
    # batches behind those statements queue for the next ones.
    lock = psycopg2.connect(migrated.url)

    def held_up():
        waiting = migrated.query("SELECT count(*) FROM pg_stat_activity WHERE "
                                 "wait_event_type = 'Lock' AND pid <> %s",
                                 (lock.get_backend_pid(),))[0][0]
        return waiting >= 4 and sales_busy(sales, 16)

    try:
        lock.cursor().execute("SELECT sku FROM inventory WHERE sku = ANY(%s) FOR UPDATE",
                              (skus,))
        answers = post_at_once(sales, orders, in_flight=(held_up, lock.rollback))
    finally:
        lock.close()
    codes = [a.status_code for a in answers]
    for o, c in zip(orders, codes):
        assert c in ((404,) if o["sku"] == unknown else (201, 409)), (o, c)

    taken_all, short_all = [], []
    for sku, stock in stocks.items():
        taken = [(orders[i], answers[i].json()) for i in range(len(orders))
                 if orders[i]["sku"] == sku and codes[i] == 201]
        short = [(orders[i], answers[i].json()) for i in range(len(orders))
                 if orders[i]["sku"] == sku and codes[i] == 409]
        check_serial(migrated, sku, stock, taken, short)
        if stock < 60:
            assert short, f"{sku} (stock {stock}) never ran short"
        taken_all += taken
        short_all += short
    assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s", (unknown,))[0][0] == 0

    # Statements placed the orders of more than one SKU.
    placed = gauge(sales, "dozen_orders_statement_skus_sum") - skus_before[0]
    statements = gauge(sales, "dozen_orders_statement_skus_count") - skus_before[1]
    assert statements > 0 and placed > statements, (placed, statements)
    check_events(migrated, broker, skus, taken_all, short_all)


def test_a_lone_order_is_not_delayed(sales, make_sku):
    sku = make_sku(10)
    with requests.Session() as s:
        for left in range(9, 4, -1):
            r = s.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
            assert r.status_code == 201 and r.json()["remaining"] == left, r.text
            assert r.elapsed.total_seconds() < 1.0
