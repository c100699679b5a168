"""Sales killed with SIGKILL under load and restarted: every committed order has exactly one
event and no event lacks an order."""

import signal
import threading
import time
from collections import Counter

import requests

from conftest import events_for, read_topic, wait_for, unsent_outbox


def run_load(url, skus, stop, results, max_orders):
    """Posts orders until stop is set or max_orders were sent; records every answer."""
    i = 0
    with requests.Session() as s:
        while not stop.is_set() and i < max_orders:
            sku = skus[i % len(skus)]
            i += 1
            try:
                r = s.post(url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
                results.append(r.status_code)
            except requests.RequestException:
                results.append("error")
                time.sleep(0.01)


def check_exactly_once(pg, broker, skus):
    committed = {str(r[0]) for r in pg.query(
        "SELECT id FROM orders WHERE sku = ANY(%s)", (skus,))}
    assert committed, "no order was committed"
    wait_for(lambda: unsent_outbox(pg) == 0, 60, "the outbox to drain")
    recs = read_topic(broker, "orders",
                      until=lambda rs: {r["value"]["order_id"]
                                        for r in events_for(rs, "sku", skus)} >= committed,
                      settle=1.0, timeout=60)
    mine = events_for(recs, "sku", skus)
    per_order = Counter(r["value"]["order_id"] for r in mine)
    dupes = {k: v for k, v in per_order.items() if v > 1}
    assert not dupes, f"orders with more than one event: {dupes}"
    assert set(per_order) == committed, (
        f"events without order: {set(per_order) - committed}, "
        f"orders without event: {committed - set(per_order)}")
    return len(committed)


def test_sigkill_under_load_then_restart(stack, migrated, broker, make_sku):
    skus = [make_sku(100000, "crash") for _ in range(4)]
    sales = stack.sales().start()
    stop, results = threading.Event(), []
    workers = [threading.Thread(target=run_load,
                                args=(sales.url, skus, stop, results, 3000))
               for _ in range(8)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: results.count(201) >= 200, 60, "200 orders before the kill")
        sales.kill(signal.SIGKILL)
        killed_at = len(results)
        sales.start()
        wait_for(lambda: len(results) >= killed_at + 200 and results[-1] == 201, 60,
                 "orders after the restart")
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    n = check_exactly_once(migrated, broker, skus)
    assert n >= 400


def test_crash_between_broker_ack_and_mark_publishes_once(stack, migrated, broker, make_sku):
    """OUTBOX_DEBUG_CRASH_AFTER_ACK makes the relay die right after the broker acknowledged
    a batch and before it marked the rows sent: the worst moment for a duplicate."""
    skus = [make_sku(1000, "ack")]
    crashing = stack.sales(OUTBOX_DEBUG_CRASH_AFTER_ACK="1")
    crashing.start()
    for _ in range(20):
        try:
            r = requests.post(crashing.url + "/orders", json={"sku": skus[0], "quantity": 1},
                              timeout=5)
        except requests.ConnectionError:
            break  # the relay took the process down
        assert r.status_code == 201
    wait_for(lambda: not crashing.alive(), 30, "the relay's deliberate crash")
    assert migrated.query("SELECT count(*) FROM outbox o JOIN orders d ON "
                          "o.payload::json->>'order_id' = d.id::text "
                          "WHERE d.sku = %s AND o.sent_at IS NULL", (skus[0],))[0][0] > 0
    healthy = stack.sales().start()
    for _ in range(5):
        r = requests.post(healthy.url + "/orders", json={"sku": skus[0], "quantity": 1},
                          timeout=5)
        assert r.status_code == 201
    check_exactly_once(migrated, broker, skus)
