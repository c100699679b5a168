"""GET /metrics on every service: the Prometheus text format (read back with the
prometheus_client parser from Debian's python3-prometheus-client), the HTTP, outbox and
consumer series with their values, and the process_* series."""

import json
import subprocess
import time
import uuid

import requests
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_assigned, wait_for


def scrape(svc):
    r = requests.get(svc.url + "/metrics", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    return families, r.text


def samples(families, name, **labels):
    # The parser names a counter family without its _total suffix.
    fam = families.get(name) or families.get(name.removesuffix("_total"))
    assert fam is not None, f"no {name} in {sorted(families)}"
    return [s for s in fam.samples if all(s.labels.get(k) == v for k, v in labels.items())]


def value(families, family, sample, **labels):
    found = [s.value for s in samples(families, family, **labels) if s.name == sample]
    return found[0] if found else None


def test_sales_counts_requests_and_publishes(stack, migrated, make_sku):
    sku = make_sku(5)
    sales = stack.sales().start()
    for _ in range(3):
        r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
        assert r.status_code == 201, r.text
    assert requests.get(sales.url + "/orders/" + str(uuid.uuid4()), timeout=5).status_code == 404
    wait_for(lambda: migrated.query("SELECT count(*) FROM outbox WHERE producer = 'sales' "
                                    "AND sent_at IS NULL")[0][0] == 0, 30, "the events")

    def published():
        fams, _ = scrape(sales)
        return value(fams, "dozen_outbox_publish_latency_seconds",
                     "dozen_outbox_publish_latency_seconds_count", producer="sales") or 0
    wait_for(lambda: published() >= 3, 10, "the relay's histogram to count the events")
    fams, text = scrape(sales)
    # The route template, never the id; the status class.
    assert value(fams, "dozen_http_request_duration_seconds",
                 "dozen_http_request_duration_seconds_count", route="/orders", method="POST",
                 code="2xx") == 3
    assert value(fams, "dozen_http_request_duration_seconds",
                 "dozen_http_request_duration_seconds_count", route="/orders/{id}",
                 method="GET", code="4xx") == 1
    assert "/orders/" + sku not in text and sku not in text, "an id in a label"
    assert value(fams, "dozen_outbox_relay_leader", "dozen_outbox_relay_leader",
                 producer="sales") == 1
    buckets = [s for s in samples(fams, "dozen_outbox_publish_latency_seconds", producer="sales")
               if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value >= 3
    assert all(a.value <= b.value for a, b in zip(buckets, buckets[1:])), "buckets not cumulative"
    assert value(fams, "process_resident_memory_bytes", "process_resident_memory_bytes") > 1e6
    assert value(fams, "process_open_fds", "process_open_fds") > 3
    start = value(fams, "process_start_time_seconds", "process_start_time_seconds")
    assert abs(start - time.time()) < 600


def test_stock_counts_its_records_and_lag(stack, migrated, broker, make_sku):
    sku = make_sku(0)
    stock = stack.stock().start()
    wait_assigned(stock)
    p = Producer({"bootstrap.servers": broker})
    for q in (2, 3):
        headers = [("ce_specversion", "1.0"), ("ce_id", str(uuid.uuid4())),
                   ("ce_source", "/test"), ("ce_type", "stock.replenished"),
                   ("ce_time", time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())),
                   ("content-type", "application/json")]
        p.produce("stock.replenished", key=sku, headers=headers, value=json.dumps(
            {"sku": sku, "quantity": q, "production_order_id": str(uuid.uuid4()),
             "factory_order_id": "fo-metrics"}).encode())
    p.produce("stock.replenished", key=sku, value=b"not an event")  # no ce_* headers
    assert p.flush(10) == 0
    wait_for(lambda: migrated.query("SELECT quantity FROM inventory WHERE sku = %s",
                                    (sku,))[0][0] == 5, 30, "the replenishments")

    def counted():
        fams, _ = scrape(stock)
        done = value(fams, "dozen_consumer_records_total", "dozen_consumer_records_total",
                     group="stock", topic="stock.replenished", verdict="done") or 0
        bad = value(fams, "dozen_consumer_records_total", "dozen_consumer_records_total",
                    group="stock", topic="stock.replenished", verdict="invalid") or 0
        lag = "dozen_consumer_lag_records" in fams  # refreshed every 2 s
        return fams if done >= 2 and bad >= 1 and lag else None
    fams = wait_for(counted, 15, "the consumer's counters")
    assert value(fams, "dozen_consumer_processing_seconds",
                 "dozen_consumer_processing_seconds_count", group="stock",
                 topic="stock.replenished") >= 2
    lags = samples(fams, "dozen_consumer_lag_records", group="stock", topic="stock.replenished")
    assert lags, "no lag series for the assigned partitions"
    assert all(s.value >= 0 for s in lags)

    # The committed offset per partition: behind the position or at it, and at it once the
    # auto-commit (every 5 s) has written what was read.
    def committed_caught_up():
        f, _ = scrape(stock)
        pos = {s.labels["partition"]: s.value for s in samples(
            f, "dozen_consumer_position", group="stock", topic="stock.replenished")}
        com = {s.labels["partition"]: s.value for s in samples(
            f, "dozen_consumer_committed_offset", group="stock", topic="stock.replenished")
            } if "dozen_consumer_committed_offset" in f else {}
        assert all(0 <= v <= pos[k] for k, v in com.items()), (com, pos)
        return any(v > 0 and v == pos[k] for k, v in com.items())
    wait_for(committed_caught_up, 20, "a committed offset that reached the position")
    assert requests.post(stock.url + "/metrics", timeout=5).status_code == 405


def promtool_check(text, who):
    """`promtool check metrics` (Debian's prometheus package) on one scrape: the exposition
    parses and passes Prometheus' own lint (names, units, HELP, counters' _total)."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0 and out.strip() == "", f"{who}: promtool says:\n{out}"


def start_everything(stack):
    """All five services and the three stand-ins of one stack, started and healthy."""
    legacy = stack.legacy_factory().start()
    src, gw = stack.open_data().start(), stack.sms_gateway().start()
    svcs = {"sales": stack.sales().start(), "stock": stack.stock().start(),
            "factory": stack.factory(legacy).start(), "retry": stack.retry().start(),
            "notifier": stack.notifier(src, gw).start()}
    for name in ("stock", "factory", "notifier"):
        wait_assigned(svcs[name])
    return svcs, legacy, gw


def test_domain_series_and_promtool_on_every_service(stack, migrated, make_sku):
    sku, full = make_sku(1, batch=4), make_sku(7)
    svcs, legacy, gw = start_everything(stack)
    sales = svcs["sales"]
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5,
                      headers={"Idempotency-Key": "m-" + sku})
    assert r.status_code == 201, r.text
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5,
                      headers={"Idempotency-Key": "m-" + sku})
    assert r.status_code == 201, r.text  # the stored answer
    # The legacy factory refuses the first call (503): the factory hands the depletion to
    # the retry service (verdict retry_later), which redelivers it.
    assert requests.post(legacy.url + "/admin/mode", json={"fail_next": 1},
                         timeout=5).status_code == 200
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
    assert r.status_code == 409, r.text  # rejected: the depletion reaches the factory

    # One SMS through the notifier's sender: the gateway fails it once (500), then takes it.
    assert requests.post(gw.url + "/admin/mode", json={"fail_next": 1},
                         timeout=5).status_code == 200
    sub = str(uuid.uuid4())
    migrated.execute("INSERT INTO subscribers (id, phone, name) VALUES (%s, '+821099990020', "
                     "'m')", (sub,))
    migrated.execute("INSERT INTO deliveries (subscriber_id, message_key, kind, body) "
                     "VALUES (%s, %s, 'restock', 'metrics test')", (sub, "m:" + sub))

    def sales_counted():
        fams, _ = scrape(sales)
        return fams if (value(fams, "dozen_orders_total", "dozen_orders_total",
                              outcome="rejected") == 1) else None
    fams = wait_for(sales_counted, 10, "the rejected order in dozen_orders_total")
    assert value(fams, "dozen_orders_total", "dozen_orders_total", outcome="completed") == 1
    assert value(fams, "dozen_orders_idempotent_replays_total",
                 "dozen_orders_idempotent_replays_total") == 1
    assert value(fams, "dozen_outbox_backlog_rows", "dozen_outbox_backlog_rows",
                 producer="sales") is not None
    assert value(fams, "dozen_outbox_oldest_unsent_age_seconds",
                 "dozen_outbox_oldest_unsent_age_seconds", producer="sales") >= 0
    assert value(fams, "dozen_outbox_publish_errors_total", "dozen_outbox_publish_errors_total",
                 producer="sales") == 0

    fams = wait_for(lambda: (lambda f: f if value(f, "dozen_stock_quantity",
                                                  "dozen_stock_quantity", sku=sku) == 0
                             else None)(scrape(svcs["stock"])[0]), 10, "stock per SKU")
    assert value(fams, "dozen_stock_quantity", "dozen_stock_quantity", sku=full) == 7

    def factory_called():
        f, _ = scrape(svcs["factory"])
        n = value(f, "dozen_legacy_call_duration_seconds",
                  "dozen_legacy_call_duration_seconds_count", outcome="accepted") or 0
        return f if n >= 1 and value(f, "dozen_production_orders", "dozen_production_orders",
                                     state="requested") >= 1 else None
    fams = wait_for(factory_called, 30, "the legacy call and the requested production order")
    assert {s.labels["state"] for s in samples(fams, "dozen_production_orders")} == \
        {"pending", "requested", "delivered", "failed"}
    assert value(fams, "dozen_consumer_records_total", "dozen_consumer_records_total",
                 group="factory", topic="stock.depleted", verdict="retry_later") == 1
    assert value(fams, "dozen_consumer_records_total", "dozen_consumer_records_total",
                 group="factory", topic="stock.depleted", verdict="done") >= 1

    def sms_counted():
        f, _ = scrape(svcs["notifier"])
        sent = value(f, "dozen_sms_sends_total", "dozen_sms_sends_total", outcome="sent") or 0
        return f if sent >= 1 else None
    fams = wait_for(sms_counted, 30, "the SMS send in dozen_sms_sends_total")
    assert value(fams, "dozen_sms_sends_total", "dozen_sms_sends_total", outcome="error") == 1
    assert value(fams, "dozen_sms_sends_total", "dozen_sms_sends_total",
                 outcome="rate_limited") == 0
    assert value(fams, "dozen_sms_sends_total", "dozen_sms_sends_total", outcome="uncertain") == 0
    assert {s.labels["outcome"] for s in samples(fams, "dozen_sms_sends_total")} == \
        {"sent", "failed", "rate_limited", "error", "uncertain"}
    assert value(fams, "dozen_sms_send_duration_seconds",
                 "dozen_sms_send_duration_seconds_count") == 2
    assert value(fams, "dozen_subscribers_active", "dozen_subscribers_active") >= 1
    states = {s.labels["state"]: s.value for s in samples(fams, "dozen_bulletin_state")}
    assert set(states) == {"scheduled", "retrying", "sent", "unavailable"}, states
    assert sum(states.values()) <= 1

    # The retry service's gauges come from its tables: one row waiting (due in an hour, so
    # the scheduler leaves it alone) and one dead letter, for a group of this test only.
    group = "metrics-" + uuid.uuid4().hex[:8]
    gone = "metrics-gone-" + uuid.uuid4().hex[:8]
    far = int(time.time() * 1000) + 3600 * 1000
    try:
        migrated.execute(
            "INSERT INTO retry_pending (group_id, original_topic, original_partition, "
            "original_offset, retry_partition, retry_offset, retry_timestamp, headers, attempt, "
            "max_attempts, not_before, reason, error, first_failed_at, due_at) VALUES "
            "(%s, 'stock.depleted', 0, 1, 0, 900000001, 1, '\\x01', 1, 5, %s, "
            "'factory_unavailable', '', %s, %s)", (group, far, far, far))
        migrated.execute(
            "INSERT INTO retry_dead_letters (group_id, reason, error, original_topic, "
            "original_partition, original_offset, retry_partition, retry_offset, "
            "retry_timestamp) VALUES (%s, 'max_attempts', 'e', 'stock.depleted', 0, 1, 0, "
            "900000002, 1)", (group,))

        def retry_read():
            f, _ = scrape(svcs["retry"])
            pending = value(f, "dozen_retry_pending", "dozen_retry_pending", group=group,
                            reason="factory_unavailable")
            return f if pending == 1 else None
        fams = wait_for(retry_read, 10, "the pending row in dozen_retry_pending")
        assert value(fams, "dozen_retry_dead_letters", "dozen_retry_dead_letters", group=group,
                     reason="max_attempts") == 1
        assert value(fams, "dozen_retry_overdue_seconds", "dozen_retry_overdue_seconds") == 0

        # A row due now, past its attempts: the scheduler gives it up at once.
        now = int(time.time() * 1000)
        migrated.execute(
            "INSERT INTO retry_pending (group_id, original_topic, original_partition, "
            "original_offset, retry_partition, retry_offset, retry_timestamp, headers, attempt, "
            "max_attempts, not_before, reason, error, first_failed_at, due_at) VALUES "
            "(%s, 'stock.depleted', 0, 1, 0, 900000003, 1, '\\x01', 6, 5, %s, "
            "'factory_unavailable', '', %s, %s)", (gone, now, now, now))

        def retry_outcomes():
            f, _ = scrape(svcs["retry"])
            if "dozen_retry_given_up" not in f:  # made by the first give-up
                return None
            return f if value(f, "dozen_retry_given_up_total", "dozen_retry_given_up_total",
                              group=gone, reason="max_attempts") == 1 else None
        fams = wait_for(retry_outcomes, 15, "the given-up row in dozen_retry_given_up_total")
        # The factory's depletion, redelivered once after the legacy factory's 503.
        assert value(fams, "dozen_retry_redelivered_total", "dozen_retry_redelivered_total",
                     group="factory") >= 1
        assert value(fams, "dozen_retry_lateness_seconds",
                     "dozen_retry_lateness_seconds_count") >= 2
        late = [x for x in samples(fams, "dozen_retry_lateness_seconds")
                if x.name.endswith("_bucket")]
        assert late and late[-1].labels["le"] == "+Inf" and late[-1].value >= 2
    finally:
        migrated.execute("DELETE FROM retry_pending WHERE group_id = %s", (group,))
        migrated.execute("DELETE FROM retry_dead_letters WHERE group_id = %s", (group,))
        migrated.execute("DELETE FROM retry_pending WHERE group_id = %s", (gone,))
        migrated.execute("DELETE FROM retry_dead_letters WHERE group_id = %s", (gone,))
    # Gone from the table: the series drops to 0 instead of keeping its last value.
    wait_for(lambda: value(scrape(svcs["retry"])[0], "dozen_retry_pending",
                           "dozen_retry_pending", group=group,
                           reason="factory_unavailable") == 0, 10, "the pending gauge at 0")

    for name, svc in svcs.items():
        promtool_check(scrape(svc)[1], name)
