"""A consumer that crashed resumes its partitions within seconds of its restart (issue 17).

Each consumer service (stock, factory, notifier, retry) runs with the product's own consumer
settings (no test overrides of the session timeout), gets a record every 200 ms, is SIGKILLed
and started again with the same settings; the time from the restart to its first processed
record is measured and bounded. Apache Kafka: static group membership lets the restarted
member take its partitions back at once. The dev broker (librdkafka's mock cluster) has no
static membership: there the dead member's session must expire first, so its bound is the
session timeout plus a rebalance.
"""

import json
import os
import signal
import threading
import time
import uuid

import pytest
import requests
from confluent_kafka import Producer

from conftest import wait_assigned, wait_for

ON_KAFKA = os.environ.get("DOZEN_TEST_BROKER") == "external"
BOUND_S = 10.0 if ON_KAFKA else 20.0
# What the tests' CONSUMER_ENV sets and this test must not: the product's defaults count.
OVERRIDES = ("KAFKA_SESSION_TIMEOUT_MS", "KAFKA_HEARTBEAT_INTERVAL_MS")


def cloudevent(ce_type, value):
    ce = str(uuid.uuid4())
    headers = [("ce_specversion", "1.0"), ("ce_id", ce), ("ce_source", "/test/restart"),
               ("ce_type", ce_type),
               ("ce_time", time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())),
               ("content-type", "application/json")]
    return ce, headers, json.dumps(value).encode()


def retry_record(group, value):
    ce, headers, body = cloudevent("stock.replenished", value)
    now = int(time.time() * 1000)
    headers += [("dozen-original-topic", "stock.replenished"),
                ("dozen-original-partition", "0"), ("dozen-original-offset", "1"),
                ("dozen-group", group), ("dozen-attempt", "1"), ("dozen-max-attempts", "3"),
                ("dozen-not-before", str(now + 3600_000)), ("dozen-reason", "test"),
                ("dozen-first-failed-at", str(now))]
    return ce, headers, body


class Feeder(threading.Thread):
    """Produces one probe record every 200 ms until stopped; remembers each ce_id."""

    def __init__(self, broker, make):
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
        self.make, self.ids, self.stop = make, [], threading.Event()

    def run(self):
        n = 0
        while not self.stop.is_set() and n < 2000:
            topic, key, ce, headers, value = self.make()
            self.producer.produce(topic, key=key, value=value, headers=headers)
            self.producer.poll(0)
            self.ids.append(ce)
            n += 1
            self.stop.wait(0.2)
        self.producer.flush(10)


def processed(pg, table, ids):
    if not ids:
        return set()
    rows = pg.query(f"SELECT ce_id::text FROM {table} WHERE ce_id = ANY(%s::uuid[])",
                    (list(ids),))
    return {r[0] for r in rows}


def product_settings(svc, **extra):
    """The settings `make up` gives: the product's consumer defaults and an INSTANCE_ID."""
    for var in OVERRIDES:
        svc.env.pop(var, None)
    svc.env["INSTANCE_ID"] = "restart-" + uuid.uuid4().hex[:8]
    svc.env.update({k: str(v) for k, v in extra.items()})
    return svc


def measure_restart(svc, pg, broker, table, make):
    svc.start()
    wait_assigned(svc)
    feeder = Feeder(broker, make)
    feeder.start()
    try:
        wait_for(lambda: processed(pg, table, feeder.ids[:3]) and len(feeder.ids) >= 3, 60,
                 f"{svc.name} to process its first records")
        seen = svc.log().count("kafka_partitions_assigned")
        svc.kill(signal.SIGKILL)
        killed_at = len(feeder.ids)
        t0 = time.monotonic()
        svc.start()
        wait_for(lambda: processed(pg, table, feeder.ids[killed_at:]), 90,
                 f"{svc.name} to process a record after its restart", interval=0.05)
        took = time.monotonic() - t0
    finally:
        feeder.stop.set()
        feeder.join(15)
    print(f"\n{svc.name}: first record processed {took:.2f} s after the restart "
          f"(bound {BOUND_S:.0f} s, {'Apache Kafka' if ON_KAFKA else 'dev broker'})")
    assert svc.log().count("kafka_partitions_assigned") > seen or svc.name == "retry"
    assert took < BOUND_S, f"{svc.name} took {took:.1f} s to resume after a restart"


def test_stock_resumes_within_seconds(stack, migrated, broker, make_sku):
    sku = make_sku(0)
    svc = product_settings(stack.stock())
    measure_restart(svc, migrated, broker, "processed_events", lambda: (
        "stock.replenished", sku, *cloudevent(
            "stock.replenished", {"sku": sku, "quantity": 1,
                                  "production_order_id": str(uuid.uuid4()),
                                  "factory_order_id": "fo-restart"})))


def test_factory_resumes_within_seconds(stack, migrated, broker, make_sku):
    sku = make_sku(0)
    legacy = stack.legacy_factory(FACTORY_DELAY_MS=60000).start()
    svc = product_settings(stack.factory(legacy))
    measure_restart(svc, migrated, broker, "processed_events", lambda: (
        "stock.depleted", sku, *cloudevent("stock.depleted", {"sku": sku, "requested": 1,
                                                              "available": 0,
                                                              "order_id": str(uuid.uuid4())})))


def test_notifier_resumes_within_seconds(stack, migrated, broker, make_sku):
    sku = make_sku(0)
    source, gateway = stack.open_data().start(), stack.sms_gateway().start()
    svc = product_settings(stack.notifier(source, gateway))
    measure_restart(svc, migrated, broker, "processed_events", lambda: (
        "stock.replenished", sku, *cloudevent(
            "stock.replenished", {"sku": sku, "quantity": 1,
                                  "production_order_id": str(uuid.uuid4()),
                                  "factory_order_id": "fo-restart"})))


def test_retry_service_resumes_within_seconds(stack, migrated, broker):
    svc = product_settings(stack.retry())
    measure_restart(svc, migrated, broker, "retry_pending", lambda: (
        "retry", "restart-key", *retry_record("stock", {"sku": "glazed", "quantity": 1})))


def test_restarted_sales_publishes_its_backlog_within_seconds(stack, migrated, broker, make_sku):
    """Rows a killed sales left unsent go out within seconds of its restart: the dead
    relay's advisory lock went with its connection, so the new one leads at once."""
    sku = make_sku(1000)
    sales = stack.sales().start()
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
    assert r.status_code == 201, r.text
    wait_for(lambda: migrated.query("SELECT count(*) FROM outbox WHERE producer = 'sales' "
                                    "AND sent_at IS NULL")[0][0] == 0, 30, "the first event")
    sales.kill(signal.SIGKILL)
    # What a relay that died mid-round leaves: committed rows, not yet published.
    ids = [str(uuid.uuid4()) for _ in range(50)]
    for ce in ids:
        migrated.execute(
            "INSERT INTO outbox (producer, topic, msg_key, ce_id, ce_type, ce_source, ce_time, "
            "payload) VALUES ('sales', 'orders', %s, %s, 'order.completed', '/dozen/sales', "
            "now(), %s)", (sku, ce, json.dumps({"order_id": ce, "sku": sku, "quantity": 1,
                                                  "remaining": 1})))
    t0 = time.monotonic()
    sales.start()
    wait_for(lambda: migrated.query("SELECT count(*) FROM outbox WHERE ce_id = ANY(%s::uuid[]) "
                                    "AND sent_at IS NULL", (ids,))[0][0] == 0, 60,
             "the backlog to be published", interval=0.05)
    took = time.monotonic() - t0
    print(f"\nsales: a backlog of 50 published {took:.2f} s after the restart")
    assert took < 10.0, f"the restarted relay took {took:.1f} s to publish its backlog"


@pytest.mark.skipif(not ON_KAFKA, reason="the dev broker has no static membership to fence")
def test_a_fenced_member_joins_again(stack, migrated, broker, make_sku):
    """A static member whose group.instance.id another member took is fenced: librdkafka
    makes that a fatal error, after which the client never consumes again. The chaos suite
    met it after a broker restart (the session timed out, the member rejoined, a commit
    with its old member id was fenced): the instance stayed "no partition assignment" for
    the rest of the run. Here a second stock with the same INSTANCE_ID fences the first;
    the first must close its client, join again, and once the second is gone be ready
    and process records."""
    sku = make_sku(0)
    first = product_settings(stack.stock())
    first.start()
    wait_assigned(first)
    second = stack.stock()
    second.env.update({k: v for k, v in first.env.items() if k not in ("STOCK_PORT",)})
    second.start()
    wait_for(lambda: "kafka_consumer_fatal" in first.log(), 60,
             "the first stock to be fenced (kafka_consumer_fatal)")
    wait_for(lambda: "kafka_consumer_rejoined" in first.log(), 30,
             "the first stock to join again")
    second.stop()
    wait_for(lambda: requests.get(first.url + "/readyz", timeout=5).status_code == 200, 60,
             "the first stock to be ready again")
    feeder = Feeder(broker, lambda: ("stock.replenished", sku, *cloudevent(
        "stock.replenished", {"sku": sku, "quantity": 1,
                              "production_order_id": str(uuid.uuid4()),
                              "factory_order_id": "fo-fenced"})))
    feeder.start()
    try:
        wait_for(lambda: processed(migrated, "processed_events", feeder.ids[:3])
                 and len(feeder.ids) >= 3, 60, "the first stock to process records again")
    finally:
        feeder.stop.set()
        feeder.join(15)
