"""Trace context through Kafka: a W3C traceparent on an order request goes with its events
(ce_traceparent and traceparent headers) and on into the consumers, whose log lines carry
its trace_id, and on to the SMS gateway with the back-in-stock alert the restock sends;
LOG_FORMAT=json writes the same lines as JSON objects."""

import json
import random

import requests

from conftest import events_for, read_topic, wait_assigned, wait_for
from test_16_notifier import SMS_FROM, SMS_SID, SMS_TOKEN, subscribe_ok

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TP = f"00-{TRACE}-00f067aa0ba902b7-01"
TRACE2 = "0af7651916cd43dd8448eb211c80319c"
TP2 = f"00-{TRACE2}-b7ad6b7169203331-01"


def trace_of(tp):
    parts = (tp or "").split("-")
    assert len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16, tp
    return parts[1]


def order(sales, sku, quantity, traceparent=None):
    headers = {"traceparent": traceparent} if traceparent else {}
    return requests.post(sales.url + "/orders", json={"sku": sku, "quantity": quantity},
                         headers=headers, timeout=10)


def test_trace_goes_from_the_request_through_kafka_to_the_consumers(stack, broker, make_sku):
    sku = make_sku(2)
    legacy = stack.legacy_factory(FACTORY_DELAY_MS=200).start()
    stock = stack.stock().start()
    factory = stack.factory(legacy, LOG_FORMAT="json").start()
    sales = stack.sales().start()
    # A subscriber of the SKU: the restock's back-in-stock SMS goes on in the same trace.
    gateway = stack.sms_gateway(SMS_ACCOUNT_SID=SMS_SID, SMS_AUTH_TOKEN=SMS_TOKEN).start()
    notifier = stack.notifier(stack.open_data().start(), gateway, SMS_FROM=SMS_FROM,
                              LOG_LEVEL="debug").start()
    phone = "+8210" + "".join(random.choice("0123456789") for _ in range(8))
    subscribe_ok(notifier, phone, skus=[sku])
    wait_assigned(factory)
    wait_assigned(notifier)

    r = order(sales, sku, 2, TP)
    assert r.status_code == 201, r.text
    oid = r.json()["order_id"]
    [rec] = events_for(read_topic(broker, "orders",
                                  until=lambda rs: events_for(rs, "order_id", [oid])),
                       "order_id", [oid])
    assert trace_of(rec["headers"]["ce_traceparent"]) == TRACE
    assert trace_of(rec["headers"]["traceparent"]) == TRACE
    assert rec["headers"]["ce_traceparent"] != TP, "sales' own span, not the caller's"

    # The order that finds the shelf empty: its depletion carries the trace to the factory.
    r = order(sales, sku, 1, TP2)
    assert r.status_code == 409, r.text
    deps = read_topic(broker, "stock.depleted",
                      until=lambda rs: [x for x in rs if x["key"] == sku])
    [dep] = [x for x in deps if x["key"] == sku]
    assert trace_of(dep["headers"]["ce_traceparent"]) == TRACE2

    def factory_lines():
        lines = [json.loads(l) for l in factory.log().splitlines() if l.startswith("{")]
        return [l for l in lines if l.get("trace_id") == TRACE2]
    traced = wait_for(factory_lines, 30, "a factory log line with the order's trace_id")
    assert all(isinstance(l.get("event"), str) for l in traced)
    # Every line the factory wrote is one JSON object.
    for line in factory.log().splitlines():
        if line.startswith("ts=") or not line.strip() or line.startswith("-----"):
            continue
        json.loads(line)

    # The factory's callback does not carry our trace; the delivery goes on in the
    # depletion's trace all the same, and so does the stock service applying it.
    reps = read_topic(broker, "stock.replenished",
                      until=lambda rs: [x for x in rs if x["key"] == sku], timeout=30)
    [rep] = [x for x in reps if x["key"] == sku]
    assert trace_of(rep["headers"]["ce_traceparent"]) == TRACE2
    wait_for(lambda: f"trace_id={TRACE2}" in stock.log(), 30,
             "the stock service's lines for the replenishment with the order's trace_id")

    # The notifier's alert for the replenishment: its row keeps the trace, its request to
    # the gateway carries it (a span of its own), and so does the sender's log line.
    def alerts():
        r = requests.get(gateway.url + "/messages", params={"to": phone}, timeout=5)
        assert r.status_code == 200, r.text
        return [m for m in r.json()["messages"] if sku in m["body"]]
    [sms] = wait_for(alerts, 30, "the back-in-stock SMS at the gateway")
    assert sms["traceparent"] is not None, "the SMS request carried no traceparent"
    assert trace_of(sms["traceparent"]) == TRACE2
    assert sms["traceparent"] not in (TP2, rep["headers"]["ce_traceparent"]), \
        "the sender's own span, not the record's"
    [(row_tp,)] = stack.pg.query(
        "SELECT d.traceparent FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
        "WHERE s.phone = %s AND d.kind = 'restock'", (phone,))
    assert trace_of(row_tp) == TRACE2
    sent = wait_for(lambda: [l for l in notifier.log().splitlines() if "sms_sent " in l], 30,
                    "the notifier's sms_sent line")
    assert f"trace_id={TRACE2}" in sent[0], sent[0]

    # A request without a traceparent starts a trace of its own.
    r = order(sales, make_sku(3), 1)
    assert r.status_code == 201
    oid = r.json()["order_id"]
    [rec] = events_for(read_topic(broker, "orders",
                                  until=lambda rs: events_for(rs, "order_id", [oid])),
                       "order_id", [oid])
    assert trace_of(rec["headers"]["ce_traceparent"]) not in (TRACE, TRACE2)


def test_a_bad_traceparent_starts_a_new_trace(stack, broker, make_sku):
    sales = stack.sales().start()
    sku = make_sku(10)
    for bad in ["garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "ff-" + TRACE + "-00f067aa0ba902b7-01", "00-" + TRACE.upper() + "-00f067aa0ba902b7-01"]:
        r = order(sales, sku, 1, bad)
        assert r.status_code == 201, r.text
        oid = r.json()["order_id"]
        [rec] = events_for(read_topic(broker, "orders",
                                      until=lambda rs: events_for(rs, "order_id", [oid])),
                           "order_id", [oid])
        assert trace_of(rec["headers"]["ce_traceparent"]) != TRACE
