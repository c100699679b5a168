"""Sales killed with SIGKILL under load and restarted: every committed order has exactly one
event and no event lacks an order."""

import signal
import threading

import requests

from conftest import check_exactly_once, run_load, wait_for


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
        # 200 answered orders after the restart: the connection errors while sales was
        # down (each worker retries every 10 ms) do not count towards them.
        wait_for(lambda: results[killed_at:].count(201) >= 200, 60,
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
