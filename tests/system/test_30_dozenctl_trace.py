"""dozenctl trace: one order's whole story from PostgreSQL and the topics, in time order: an
order that finds its product sold out, the depletion, the production order and the legacy
factory's calls (a failed one retried through the retry service), the delivery,
stock.replenished and the stock change; by order id, by ce_id and by SKU with --since."""

import json
import os
import subprocess
import uuid

from conftest import BIN, wait_assigned, wait_for
from test_12_restock import level, order, restock_stack
from test_14_dlq import Dead, produce_dead
from test_16_notifier import SMS_FROM, SMS_SID, SMS_TOKEN, subscribe_ok

PHONE = "+821055501234"

TIME_COLUMN = 24  # the human form: time, kind, where, then key=value details


def trace(pg, broker, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KAFKA_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=pg.url, KAFKA_BOOTSTRAP=broker)
    return subprocess.run([os.path.join(BIN, "dozenctl"), "trace", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def trace_json(pg, broker, *args):
    out = trace(pg, broker, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def kinds(steps):
    return [s["kind"] for s in steps]


def first(steps, kind, **fields):
    for i, s in enumerate(steps):
        if s["kind"] == kind and all(s["fields"].get(k) == v for k, v in fields.items()):
            return i, s
    raise AssertionError(f"no {kind} {fields} in {json.dumps(steps, indent=1)}")


def sold_out_and_restocked(stack, migrated, batch, legacy_env=None, subscriber=None):
    """An order of 2 of an SKU with 1 left: rejected, so the SKU is depleted, and restocked
    by the factory (with a subscriber of the SKU: a notifier that alerts them). Returns
    (sku, order id) once the stock service has applied it."""
    sku = stack_sku(migrated, 1, batch)
    sales, stock, factory, legacy = restock_stack(stack, legacy_env)
    if subscriber is not None:
        feed = stack.open_data().start()
        gw = stack.sms_gateway(SMS_ACCOUNT_SID=SMS_SID, SMS_AUTH_TOKEN=SMS_TOKEN).start()
        notifier = stack.notifier(feed, gw, SMS_FROM=SMS_FROM).start()
        wait_assigned(notifier)
        subscribe_ok(notifier, subscriber, skus=[sku])
    r = order(sales, sku, 2)
    assert r.status_code == 409, r.text
    order_id = r.json()["order_id"]
    wait_for(lambda: level(migrated, sku) == batch + 1, 30, "the restock")
    return sku, order_id


def stack_sku(migrated, quantity, batch):
    sku = "t27-" + uuid.uuid4().hex[:12]
    migrated.execute("INSERT INTO inventory (sku, quantity, restock_batch) VALUES (%s, %s, %s)",
                     (sku, quantity, batch))
    return sku


def test_trace_of_a_sold_out_order_tells_the_whole_restock(stack, migrated, broker):
    sku, order_id = sold_out_and_restocked(stack, migrated, 7, subscriber=PHONE)
    wait_for(lambda: migrated.query(
        "SELECT d.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
        "WHERE s.phone = %s AND d.kind = 'restock' AND d.body LIKE %s",
        (PHONE, f"%{sku}%")) == [("sent",)], 30, "the back-in-stock SMS")
    steps = trace_json(migrated, broker, order_id)

    times = [s["time"] for s in steps]
    assert times == sorted(times), "steps are not in time order"
    io, o = first(steps, "order", order_id=order_id)
    assert o["fields"]["status"] == "out_of_stock" and o["fields"]["sku"] == sku
    ir, rejected = first(steps, "event", ce_type="order.rejected")
    idp, depleted = first(steps, "event", ce_type="stock.depleted")
    for ev, topic in ((rejected, "orders"), (depleted, "stock.depleted")):
        f = ev["fields"]
        assert f["topic"] == topic and f["key"] == sku
        assert isinstance(f["partition"], int) and isinstance(f["offset"], int)
        assert f["publish_delay_ms"] >= 0
        assert f["on_topic"] == "yes" and f["record_timestamp"]
        row = migrated.query("SELECT kafka_partition, kafka_offset FROM outbox "
                             "WHERE ce_id = %s", (f["ce_id"],))
        assert row == [(f["partition"], f["offset"])]
        assert ev["where"] == f"{topic}[{f['partition']}]@{f['offset']}"
    ipo, po = first(steps, "production_order", sku=sku)
    assert po["fields"]["depletion_ce_id"] == depleted["fields"]["ce_id"]
    assert po["fields"]["quantity"] == 7 and po["fields"]["status"] == "delivered"
    assert "token" not in json.dumps(steps)
    icall, call = first(steps, "legacy_call", outcome="accepted")
    idl, delivery = first(steps, "delivery", quantity=7)
    irep, rep = first(steps, "event", ce_type="stock.replenished")
    assert rep["fields"]["data"]["production_order_id"] == po["fields"]["production_order_id"]
    assert rep["fields"]["on_topic"] == "yes"
    ich, change = first(steps, "stock_change", consumer="stock")
    assert change["fields"]["added"] == 7 and change["fields"]["ce_id"] == rep["fields"]["ce_id"]
    ial, alert = first(steps, "alert", status="sent")
    assert alert["fields"]["to"] == "+82******1234"
    assert alert["fields"]["message_key"] == "restock:" + rep["fields"]["ce_id"]
    assert change["fields"]["level_now"] == level(migrated, sku)
    assert io < idp < ipo < icall < idl < irep < ich, kinds(steps)
    assert irep < ial, kinds(steps)
    assert ir < idp or steps[ir]["time"] == steps[idp]["time"]

    # The same story, one line per step.
    out = trace(migrated, broker, order_id)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(steps)
    for line, step in zip(lines, steps):
        assert line[:TIME_COLUMN].strip() == step["time"]
        assert line.split()[1] == step["kind"]
    assert f"order_id={order_id}" in lines[io]
    assert PHONE[3:] not in out.stdout + json.dumps(steps), "a full phone number is shown"

    # Any of its events leads to the same order.
    by_ce = trace_json(migrated, broker, rep["fields"]["ce_id"])
    assert first(by_ce, "order", order_id=order_id)
    assert len(by_ce) == len(steps)


def test_a_failed_legacy_call_shows_its_retries(stack, migrated, broker):
    sku, order_id = sold_out_and_restocked(stack, migrated, 5,
                                           {"LEGACY_FACTORY_FAIL_NEXT": "2"})
    steps = trace_json(migrated, broker, order_id)
    _, depleted = first(steps, "event", ce_type="stock.depleted")
    retries = [s for s in steps if s["kind"] == "retry"]
    assert [r["fields"]["attempt"] for r in retries] == [1, 2], kinds(steps)
    for r in retries:
        f = r["fields"]
        assert f["group"] == "factory" and f["reason"] == "factory_unavailable"
        assert "503" in f["error"] and f["ce_id"] == depleted["fields"]["ce_id"]
        assert r["where"].startswith("retry[")
    _, po = first(steps, "production_order", sku=sku)
    assert po["fields"]["attempts"] == 3
    icall, _ = first(steps, "legacy_call", outcome="accepted")
    assert all(steps.index(r) < icall for r in retries)
    calls = [i for i, s in enumerate(steps) if s["kind"] == "legacy_call" and
             s["fields"]["outcome"] == "sent"]
    assert [steps[i]["fields"]["call"] for i in calls] == [1, 2, 3], kinds(steps)
    # Each failed call is followed by its retry record, then the next call.
    assert calls[0] < steps.index(retries[0]) < calls[1] < steps.index(retries[1]) < calls[2]
    assert "token" not in json.dumps(steps)
    assert not [s for s in steps if s["kind"] == "dead_letter"]

    # A dead letter of the depletion is part of the story; one of another event of the
    # same SKU is not.
    ours, other = Dead("factory", "max_attempts"), Dead("factory", "max_attempts", key=sku.encode())
    dep = depleted["fields"]["ce_id"].encode()
    ours.headers = [(k, dep if k == "ce_id" else v) for k, v in ours.headers]
    produce_dead(broker, [ours, other])
    steps = trace_json(migrated, broker, order_id)
    [dead] = [s for s in steps if s["kind"] == "dead_letter"]
    assert dead["where"] == f"dead-letter[{ours.partition}]@{ours.offset}"
    assert dead["fields"]["reason"] == "max_attempts" and dead["fields"]["group"] == "factory"
    assert dead["fields"]["ce_id"] == dep.decode()


def test_covered_depletion_sku_since_unknown_ids_and_bad_arguments(stack, migrated, broker):
    sku = stack_sku(migrated, 1, 3)
    sales, stock, factory, legacy = restock_stack(stack)
    first_order, second_order = (order(sales, sku, 2), order(sales, sku, 2))
    assert first_order.status_code == 409 and second_order.status_code == 409
    order_id, second_id = first_order.json()["order_id"], second_order.json()["order_id"]
    wait_for(lambda: level(migrated, sku) == 4, 30, "the restock")
    wait_for(lambda: migrated.query(
        "SELECT count(*) FROM processed_events e JOIN outbox o ON o.ce_id = e.ce_id "
        "WHERE e.consumer = 'factory' AND o.msg_key = %s", (sku,))[0][0] == 2, 30,
        "the factory to handle both depletions")

    # One production order answered both depletions: the second order's trace shows it.
    [po_id] = [r[0] for r in migrated.query(
        "SELECT id::text FROM production_orders WHERE sku = %s", (sku,))]
    _, po = first(trace_json(migrated, broker, order_id), "production_order",
                  production_order_id=po_id)
    assert "covered" not in po["fields"]
    second = trace_json(migrated, broker, second_id)
    _, covered = first(second, "production_order", production_order_id=po_id)
    assert covered["fields"]["covered"] is True
    first(second, "stock_change", consumer="stock")

    steps = trace_json(migrated, broker, sku, "--since", "10m")
    first(steps, "order", order_id=order_id)
    first(steps, "order", order_id=second_id)
    assert len([s for s in steps if s["kind"] == "production_order"]) == 1
    first(steps, "stock_change", consumer="stock")
    future = trace_json(migrated, broker, sku, "--since", "2999-01-01T00:00:00Z")
    assert future == []

    out = trace(migrated, broker, str(uuid.uuid4()))
    assert out.returncode == 1 and "knows" in out.stderr and out.stdout == ""
    out = trace(migrated, broker, "no-such-sku-" + uuid.uuid4().hex[:6], "--since", "1h")
    assert out.returncode == 1 and "unknown SKU" in out.stderr

    for args in ([], [sku], ["not a uuid"], [order_id, "extra"], [sku, "--since"],
                 [sku, "--since", "yesterday"], [sku, "--since", "-5m"], ["--bogus", order_id],
                 ["bad sku!", "--since", "1h"]):
        out = trace(migrated, broker, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stdout == ""


def test_trace_survives_changed_columns(stack, migrated, broker):
    """Another branch's migration may add, rename or drop columns of the tables the trace
    reads: it goes on, showing what is still there."""
    sku, order_id = sold_out_and_restocked(stack, migrated, 2)
    migrated.execute("ALTER TABLE production_orders ADD COLUMN t27_extra text DEFAULT 'x'")
    migrated.execute("ALTER TABLE production_orders RENAME COLUMN last_error TO t27_last_error")
    try:
        steps = trace_json(migrated, broker, order_id)
    finally:
        migrated.execute("ALTER TABLE production_orders RENAME COLUMN t27_last_error TO last_error")
        migrated.execute("ALTER TABLE production_orders DROP COLUMN t27_extra")
    _, po = first(steps, "production_order", sku=sku)
    assert po["fields"]["status"] == "delivered" and "t27_extra" not in po["fields"]
    first(steps, "stock_change", consumer="stock")
