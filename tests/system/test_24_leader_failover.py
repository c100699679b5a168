"""Leadership moves to a standby within the documented bound when the leader falls silent
(docs/reliability.md, "Leader failover"): the outbox relay of sales and the retry
scheduler. The leader is paused with SIGSTOP, the hardest case for the server to notice:
the paused process's kernel still answers TCP, so its session, and the session advisory
lock it holds, would live for ever without the lease. After SIGCONT the old leader must find
that it lost the lock and stand by, and nothing is published twice.

Every paused process is resumed (SIGCONT) in a finally block, so that the stack fixture can
stop it."""

import os
import signal
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import check_exactly_once, events_for, read_topic, wait_assigned, wait_for
from test_13_retry_service import Reader, new_group, now_ms, pending_of, produce, \
    retry_record

# The documented bound at the default DB_LEADER_LEASE of 3 s: the lease, then at most one
# standby retry (1 s), a reconnect, the new leader's reconciliation and first round.
LEASE_S = 3.0
BOUND_S = 6.0


def gauge(svc, name, **labels):
    r = requests.get(svc.url + "/metrics", timeout=5)
    assert r.status_code == 200, r.text
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def relay_leader(svc):
    return gauge(svc, "dozen_outbox_relay_leader", producer="sales")


def published_by(svc):
    return gauge(svc, "dozen_outbox_published_total", producer="sales") or 0


def order(svc, sku):
    r = requests.post(svc.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


def resume(proc):
    if proc.alive():
        os.kill(proc.p.pid, signal.SIGCONT)


def test_relay_standby_publishes_when_the_leader_is_paused(stack, migrated, broker, make_sku):
    sku = make_sku(100)
    first = stack.sales().start()
    wait_for(lambda: relay_leader(first) == 1, 20, "the first relay leading")
    second = stack.sales().start()
    wait_for(lambda: "outbox_relay_standby" in second.log(), 20, "the second one standing by")
    assert relay_leader(second) == 0

    # Both serve orders; the leader publishes them all.
    before = [order(first, sku), order(second, sku)]
    wait_for(lambda: published_by(first) >= 2, 20, "the leader publishing")
    assert published_by(second) == 0
    first_published = published_by(first)

    paused_at = migrated.query("SELECT now()")[0][0]
    os.kill(first.p.pid, signal.SIGSTOP)
    try:
        during = order(second, sku)
        wait_for(lambda: migrated.query(
            "SELECT count(*) FROM outbox WHERE producer = 'sales' AND sent_at IS NULL")[0][0]
            == 0, 30, "the standby to publish the order placed while the leader is paused")
        took = migrated.query(
            "SELECT extract(epoch FROM max(sent_at) - %s) FROM outbox "
            "WHERE producer = 'sales' AND created_at >= %s", (paused_at, paused_at))[0][0]
        assert took is not None
        assert float(took) <= BOUND_S, (
            f"the standby published {float(took):.1f} s after the pause, bound {BOUND_S} s")
        assert float(took) >= LEASE_S * 0.5, "published before the leader's lease could end"
        assert relay_leader(second) == 1
        assert "outbox_relay_leader producer=sales" in second.log()
        recs = read_topic(broker, "orders",
                          until=lambda rs: events_for(rs, "order_id", [during]), timeout=20)
        assert events_for(recs, "order_id", [during])
    finally:
        resume(first)

    # The old leader notices at its next statement (a heartbeat within a third of the lease)
    # that its session, and with it the lock, is gone; it stands by and publishes nothing.
    wait_for(lambda: relay_leader(first) == 0, 10, "the resumed relay giving up leadership")
    assert "outbox_relay_leadership_lost producer=sales" in first.log()
    assert relay_leader(second) == 1
    after = [order(first, sku), order(second, sku)]
    check_exactly_once(migrated, broker, [sku])
    assert published_by(first) == first_published, "the resumed ex-leader published"
    assert relay_leader(first) == 0 and relay_leader(second) == 1
    assert len(set(before + [during] + after)) == 5


def test_retry_standby_redelivers_when_the_active_scheduler_is_paused(stack, migrated, broker):
    group = new_group(broker)
    first = stack.retry().start()
    wait_assigned(first)
    wait_for(lambda: "retry_scheduler_active" in first.log(), 10, "the first scheduler active")
    second = stack.retry().start()
    wait_for(lambda: "retry_scheduler_standby" in second.log(), 10, "the second one standing by")
    wait_assigned(second)

    # Stored before the pause (whichever consumer reads them), due just after it.
    due = now_ms() + 4000
    records = [retry_record(group, due + 10 * i) for i in range(20)]
    want = {r[0] for r in records}
    produce(broker, records)
    wait_for(lambda: pending_of(migrated, group) == 20, 20, "the records stored")
    reader = Reader(broker, "retry." + group)
    try:
        wait_for(lambda: now_ms() >= due - 500, 10, "the pause to come shortly before due")
        reader.poll(0.3)
        assert not reader.of(want), "redelivered before due"
        os.kill(first.p.pid, signal.SIGSTOP)
        try:
            reader.wait(lambda rs: {r["h"].get("ce_id") for r in rs} >= want, 30,
                        "the redeliveries by the standby")
            # Read back at once: an upper bound on when the last one was sent (a record's
            # own timestamp is the original's, kept on redelivery).
            late = now_ms() - (due + 190)
            assert late <= BOUND_S * 1000, (
                f"redelivered {late} ms after due with the active scheduler paused, "
                f"bound {BOUND_S} s")
            assert "retry_scheduler_active" in second.log()
            wait_for(lambda: pending_of(migrated, group) == 0, 20, "the rows deleted")
        finally:
            resume(first)

        # The resumed one finds its session gone and stands by; nothing is sent twice.
        wait_for(lambda: "retry_scheduler_lock_lost" in first.log(), 15,
                 "the resumed scheduler noticing it lost the lock")
        more = [retry_record(group, now_ms() + 1000) for _ in range(10)]
        produce(broker, more)
        reader.wait(lambda rs: len(reader.of(r[0] for r in more)) >= 10, 30,
                    "later redeliveries")
        reader.poll(2.0)
        assert len(reader.of(want)) == 20, "a redelivery sent twice"
        assert len(reader.of(r[0] for r in more)) == 10, "a later redelivery sent twice"
        assert first.log().count("retry_scheduler_active") == 1, \
            "the resumed scheduler took the lock back while the other held it"
    finally:
        reader.close()
