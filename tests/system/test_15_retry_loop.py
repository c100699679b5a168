"""The retry topic and dead letters seen end to end through the factory and stock services:
growing gaps, give-ups by attempts and by deadline, poison records, replay, and a second
consumer group that never sees a retry."""

import json
import os
import subprocess
import time
import uuid

import requests
from confluent_kafka import Consumer, Producer

from conftest import BIN, events_for, message_headers, read_topic, wait_assigned, wait_for

DELAY_MS = 500


def level(pg, sku):
    return pg.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]


def order(sales, sku):
    return requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=10)


def loop(stack, legacy_env=None, factory_env=None):
    legacy = stack.legacy_factory(FACTORY_DELAY_MS=DELAY_MS, **(legacy_env or {})).start()
    retry = stack.retry().start()
    stock = stack.stock().start()
    factory = stack.factory(legacy, **(factory_env or {})).start()
    sales = stack.sales().start()
    wait_assigned(stock)
    wait_assigned(factory)
    return sales, stock, factory, legacy, retry


def set_mode(legacy, **mode):
    r = requests.post(legacy.url + "/admin/mode", json=mode, timeout=5)
    assert r.status_code == 200, r.text


def headers_of(rec):
    return rec["headers"]


def test_factory_down_for_a_while_retries_with_growing_gaps(stack, migrated, broker, make_sku):
    down, fine = make_sku(0, batch=7), make_sku(0, batch=9)
    group = "analytics-" + uuid.uuid4().hex[:8]
    other = Consumer({"bootstrap.servers": broker, "group.id": group,
                      "auto.offset.reset": "latest", "enable.auto.commit": False,
                      "session.timeout.ms": 6000})
    other.subscribe(["stock.depleted"])
    try:
        wait_for(lambda: other.poll(0.2) is None and other.assignment(), 30,
                 "the second group's assignment")
        sales, stock, factory, legacy, retry = loop(
            stack, {"LEGACY_FACTORY_FAIL_SKUS": down},
            {"RETRY_INITIAL": "300ms", "RETRY_FACTOR": "2", "RETRY_MAX": "10s"})
        assert order(sales, down).status_code == 409
        assert order(sales, fine).status_code == 409
        wait_for(lambda: level(migrated, fine) == 9, DELAY_MS / 1000 + 3,
                 "the other SKU's restock")
        recs = read_topic(broker, "retry",
                          until=lambda rs: len(events_for(rs, "sku", [down])) >= 4)
        mine = sorted(events_for(recs, "sku", [down]),
                      key=lambda r: int(headers_of(r)["dozen-attempt"]))[:4]
        assert [int(headers_of(r)["dozen-attempt"]) for r in mine] == [1, 2, 3, 4]
        gaps = [int(headers_of(r)["dozen-not-before"]) - r["timestamp"] for r in mine]
        for want, gap in zip([300, 600, 1200, 2400], gaps):
            assert want - 100 <= gap <= want + 400, f"gaps {gaps}"
        for r in mine:
            h = headers_of(r)
            assert h["dozen-reason"] == "factory_unavailable"
            assert h["dozen-group"] == "factory"
            assert h["dozen-original-topic"] == "stock.depleted"
            assert "503" in h["dozen-error"]
        assert level(migrated, down) == 0
        set_mode(legacy, fail_skus=[])
        wait_for(lambda: level(migrated, down) == 7, 15, "the restock after the factory is back")

        # The second group saw each depletion once, as it was published: never a retry.
        seen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = other.poll(0.2)
            if m is not None and not m.error():
                seen.append(m)
        mine = [m for m in seen if json.loads(m.value())["sku"] in (down, fine)]
        assert len(mine) == 2
        for m in mine:
            assert not [k for k, _ in message_headers(m) if k.startswith("dozen-")]
    finally:
        other.close()


def test_deadline_gives_up_and_tells_the_owner_once(stack, migrated, broker, make_sku):
    sku = make_sku(0, batch=5)
    sales, stock, factory, legacy, retry = loop(
        stack, {"LEGACY_FACTORY_FAIL_SKUS": sku},
        {"RETRY_BACKOFF": "fixed", "RETRY_INITIAL": "1s", "RETRY_MAX_ATTEMPTS": "100",
         "FACTORY_RETRY_DEADLINE": "5s"})
    assert order(sales, sku).status_code == 409
    dead = read_topic(broker, "dead-letter",
                      until=lambda rs: events_for(rs, "sku", [sku]), timeout=30)
    [d] = events_for(dead, "sku", [sku])
    h = d["headers"]
    assert h["dozen-reason"] == "deadline_exceeded"
    assert h["dozen-last-reason"] == "factory_unavailable"
    assert 4 <= int(h["dozen-attempt"]) <= 6
    ce = h["ce_id"]
    wait_for(lambda: f"production_order_given_up depletion={ce}" in factory.log(), 15,
             "the factory to be told")
    calls = [c for c in requests.get(legacy.url + "/admin/manufactures", timeout=5)
             .json()["calls"] if c["product_id"] == sku]
    assert 4 <= len(calls) <= 6
    [po] = requests.get(factory.url + "/production-orders", params={"sku": sku},
                        timeout=5).json()["production_orders"]
    assert po["status"] == "failed" and "deadline_exceeded" in po["last_error"]
    time.sleep(2)  # a second notice would arrive within the retry service's next round
    assert factory.log().count(f"production_order_given_up depletion={ce}") == 1


def test_poison_records_go_to_dead_letter_and_the_next_are_processed(stack, migrated, broker,
                                                                    make_sku):
    sku = make_sku(0)
    stock = stack.stock().start()
    legacy = stack.legacy_factory(FACTORY_DELAY_MS=DELAY_MS).start()
    factory = stack.factory(legacy).start()
    wait_assigned(stock)
    wait_assigned(factory)
    token = uuid.uuid4().hex
    p = Producer({"bootstrap.servers": broker})
    ce = [("ce_specversion", "1.0"), ("ce_source", "/test"),
          ("ce_time", "2026-11-22T00:00:00.000Z"), ("content-type", "application/json")]
    # No CloudEvents headers at all, and valid headers with a value that is not JSON.
    p.produce("stock.depleted", key=sku, value=f"poison-{token}-1".encode())
    p.produce("stock.depleted", key=sku, value=f"poison-{token}-2".encode(),
              headers=ce + [("ce_id", str(uuid.uuid4())), ("ce_type", "stock.depleted")])
    p.produce("stock.replenished", key=sku, value=f"poison-{token}-3".encode(),
              headers=ce + [("ce_id", str(uuid.uuid4())), ("ce_type", "stock.replenished")])
    good = json.dumps({"sku": sku, "quantity": 4, "production_order_id": str(uuid.uuid4()),
                       "factory_order_id": "fo-x"}).encode()
    p.produce("stock.replenished", key=sku, value=good,
              headers=ce + [("ce_id", str(uuid.uuid4())), ("ce_type", "stock.replenished")])
    assert p.flush(10) == 0
    wait_for(lambda: level(migrated, sku) == 4, 30, "the valid record after the poison")
    dead = read_topic(broker, "dead-letter", until=lambda rs: len(
        [r for r in rs if token in json.dumps(r["value"])]) >= 3)
    mine = {r["value"]["_raw"]: r["headers"] for r in dead if token in json.dumps(r["value"])}
    assert set(mine) == {f"poison-{token}-{i}" for i in (1, 2, 3)}
    for raw, h in mine.items():
        assert h["dozen-reason"] == "invalid_record"
        assert h["dozen-error"]
    assert mine[f"poison-{token}-1"]["dozen-group"] == "factory"
    assert mine[f"poison-{token}-3"]["dozen-group"] == "stock"
    assert mine[f"poison-{token}-3"]["dozen-original-topic"] == "stock.replenished"


def dozenctl(args, env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    clean.update(env)
    return subprocess.run([os.path.join(BIN, "dozenctl")] + args, env=clean,
                          capture_output=True, text=True, timeout=120)


def test_factory_down_for_good_then_replay_restores_once(stack, migrated, broker, make_sku):
    sku = make_sku(0, batch=6)
    sales, stock, factory, legacy, retry = loop(
        stack, {"LEGACY_FACTORY_FAIL_SKUS": sku},
        {"RETRY_INITIAL": "200ms", "RETRY_MAX": "400ms", "RETRY_MAX_ATTEMPTS": "3"})
    assert order(sales, sku).status_code == 409
    dead = read_topic(broker, "dead-letter",
                      until=lambda rs: events_for(rs, "sku", [sku]), timeout=30)
    [d] = events_for(dead, "sku", [sku])
    h = d["headers"]
    assert h["dozen-reason"] == "max_attempts"
    assert "503" in h["dozen-error"]
    assert h["dozen-original-topic"] == "stock.depleted"
    assert h["dozen-group"] == "factory" and int(h["dozen-attempt"]) == 4
    assert {"dozen-original-partition", "dozen-original-offset",
            "dozen-first-failed-at"} <= set(h)
    wait_for(lambda: f"production_order_given_up depletion={h['ce_id']}" in factory.log(),
             15, "the factory to be told")

    set_mode(legacy, fail_skus=[])
    env = {"KAFKA_BOOTSTRAP": broker, "DATABASE_URL": migrated.url}
    out = dozenctl(["dlq", "replay", "--group", "factory", "--reason", "max_attempts"], env)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: level(migrated, sku) == 6, 20, "the restock after the replay")
    out = dozenctl(["dlq", "replay", "--group", "factory", "--reason", "max_attempts"], env)
    assert out.returncode == 0, out.stderr
    assert "replayed 0" in out.stdout
    time.sleep(DELAY_MS / 1000 + 1)  # a second delivery would have raised the level by now
    assert level(migrated, sku) == 6
