"""A consumer group chosen at deployment (STOCK_GROUP): its redelivery topic retry.<group>
follows from the group the stock service consumes as, so a failed record handed to `retry`
for that group is redelivered to it and applied, not dead-lettered as unknown_group."""

import json
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from conftest import read_topic, wait_assigned, wait_for


def now_ms():
    return int(time.time() * 1000)


def level(pg, sku):
    return pg.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]


def handed_over(group, sku, quantity):
    """A stock.replenished record as the stock service hands it to `retry` after a failure:
    its CloudEvents headers, then the dozen-* headers for group. Returns (ce_id, key, value,
    headers)."""
    ce_id = str(uuid.uuid4())
    value = json.dumps({"sku": sku, "quantity": quantity,
                        "production_order_id": str(uuid.uuid4()),
                        "factory_order_id": "fo-t18"}).encode()
    headers = [("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()),
               ("ce_source", b"/dozen/test"), ("ce_type", b"stock.replenished"),
               ("ce_time", b"2026-01-01T00:00:00.000Z"), ("content-type", b"application/json")]
    t = now_ms()
    dozen = [("dozen-original-topic", "stock.replenished"), ("dozen-original-partition", "0"),
             ("dozen-original-offset", "42"), ("dozen-group", group), ("dozen-attempt", "1"),
             ("dozen-max-attempts", "5"), ("dozen-not-before", str(t)),
             ("dozen-reason", "db_unavailable"), ("dozen-error", "the database was down"),
             ("dozen-first-failed-at", str(t - 1000))]
    headers += [(k, v.encode()) for k, v in dozen]
    return ce_id, sku.encode(), value, headers


def test_custom_stock_group_gets_its_redeliveries(stack, migrated, broker, make_sku):
    group = "t18-stock-" + uuid.uuid4().hex[:8]
    topic = "retry." + group
    admin = AdminClient({"bootstrap.servers": broker})
    assert topic not in admin.list_topics(timeout=10).topics

    stack.retry().start()
    stock = stack.stock(STOCK_GROUP=group).start()
    wait_assigned(stock)
    # The stock service made its group's redelivery topic exist, and consumes it.
    wait_for(lambda: topic in admin.list_topics(timeout=5).topics, 15, f"topic {topic}")
    assert f"group={group}" in stock.log()

    sku = make_sku(0)
    ce_id, key, value, headers = handed_over(group, sku, 6)
    p = Producer({"bootstrap.servers": broker})
    p.produce("retry", key=key, value=value, headers=headers)
    assert p.flush(10) == 0

    wait_for(lambda: level(migrated, sku) == 6, 30, "the redelivered record applied")
    redelivered = read_topic(broker, topic,
                             until=lambda rs: any(r["headers"].get("ce_id") == ce_id
                                                  for r in rs))
    [r] = [r for r in redelivered if r["headers"].get("ce_id") == ce_id]
    assert r["headers"]["dozen-group"] == group
    assert r["headers"]["dozen-original-topic"] == "stock.replenished"
    assert r["headers"]["dozen-attempt"] == "1"
    # Nothing of it went to dead-letter (as unknown_group or otherwise).
    dead = read_topic(broker, "dead-letter")
    assert not [d for d in dead if d["headers"].get("ce_id") == ce_id]
    assert stock.healthy()
