"""Rows written by an instance whose relay stands by reach Kafka at once: its commits wake
its own relay, which passes the wake on to the leader with one NOTIFY (the per-row NOTIFY
trigger is gone, migration 0014). The backstop poll is set to a minute here, so only that
path can publish within the deadline."""

import requests

from conftest import wait_for
from test_24_leader_failover import order, published_by, relay_leader


def test_orders_taken_by_a_standby_instance_are_published_at_once(stack, migrated, make_sku):
    sku = make_sku(100)
    leader = stack.sales(OUTBOX_POLL_INTERVAL="60s").start()
    wait_for(lambda: relay_leader(leader) == 1, 20, "the first relay leading")
    standby = stack.sales(OUTBOX_POLL_INTERVAL="60s").start()
    wait_for(lambda: relay_leader(standby) == 0, 20, "the second relay standing by")
    # The leader's own orders: its relay is woken by their commit.
    order(leader, sku)
    wait_for(lambda: migrated.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]
             == 0, 10, "the leader's own order published")
    before = published_by(leader)
    ids = [order(standby, sku) for _ in range(5)]
    wait_for(lambda: migrated.query(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND payload::json->>'order_id' "
        "= ANY(%s)", (ids,))[0][0] == 0, 10,
        "the standby instance's orders published by the leader (not by the 60 s poll)",
        interval=0.05)
    assert published_by(leader) >= before + 5
    assert published_by(standby) == 0
    r = requests.get(standby.url + "/readyz", timeout=5)
    assert r.status_code == 200, r.text
