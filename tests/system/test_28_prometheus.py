"""A real Prometheus server (Debian's prometheus package) scraping every service once a
second, asked through its HTTP API for what an operator's dashboard asks: every target up,
a consumer lag series per partition, and a latency quantile (histogram_quantile) of the
orders route."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
from confluent_kafka import Producer

from conftest import free_port, wait_for
from test_20_metrics import start_everything

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def prometheus(request):
    """Starts Prometheus on 127.0.0.1 in a temporary directory; start(targets) writes the
    scrape configuration (one job per service, 1 s interval) and waits until it is ready.
    Killed in teardown, pass or fail."""
    if PROMETHEUS is None:
        pytest.fail("no prometheus binary: run `make deps` (Debian package prometheus)")
    tmp = tempfile.mkdtemp(prefix="dozen-prom-")
    state = {"p": None, "url": None, "log": os.path.join(tmp, "prometheus.log")}

    def start(targets):
        jobs = [{"job_name": name, "scrape_interval": "1s", "scrape_timeout": "900ms",
                 "static_configs": [{"targets": [addr]}]} for name, addr in targets.items()]
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:  # JSON is YAML
            json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                       "scrape_configs": jobs}, f)
        port = free_port()
        with open(state["log"], "ab") as log:
            state["p"] = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + tmp + "/data",
                 "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp)
        state["url"] = "http://127.0.0.1:%d" % port

        def ready():
            assert state["p"].poll() is None, open(state["log"]).read()[-3000:]
            try:
                return requests.get(state["url"] + "/-/ready", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_for(ready, 60, "Prometheus to be ready")
        return state["url"]

    yield start
    p = state["p"]
    if p is not None and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        try:
            print("----- prometheus log -----\n" + open(state["log"]).read()[-4000:])
        except OSError:
            pass
    shutil.rmtree(tmp, ignore_errors=True)


def query(url, expr):
    r = requests.get(url + "/api/v1/query", params={"query": expr}, timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


# The 90th percentile of sales' POST /orders latency over the last 5 s, as Prometheus
# computes it from the histogram.
ORDERS_P90 = ('histogram_quantile(0.9, sum by (le) (rate('
              'dozen_http_request_duration_seconds_bucket{job="sales",route="/orders"}'
              '[5s])))')


def orders_p90(url):
    """ORDERS_P90 as a number, or None while Prometheus has no finite value for it."""
    q = query(url, ORDERS_P90)
    if q and q[0]["value"][1] not in ("NaN", "+Inf"):
        return float(q[0]["value"][1])
    return None


def test_prometheus_scrapes_every_service(stack, migrated, broker, make_sku, prometheus):
    svcs, _, _ = start_everything(stack)
    url = prometheus({name: "127.0.0.1:%d" % svc.port for name, svc in svcs.items()})

    def all_up():
        up = {r["metric"]["job"]: r["value"][1] for r in query(url, "up")}
        return up if up == {name: "1" for name in svcs} else None
    wait_for(all_up, 30, "every service's target to be up")

    # Orders for the latency quantile and records for the stock consumer's lag, while
    # Prometheus scrapes: a bounded loop, polled with a deadline.
    sku = make_sku(1000)
    p = Producer({"bootstrap.servers": broker})
    lag_q = ('max by (partition) (dozen_consumer_lag_records{job="stock",'
             'topic="stock.replenished"})')
    found = {}
    deadline = time.monotonic() + 45
    for i in range(400):
        if time.monotonic() > deadline or ("lag" in found and "quantile" in found):
            break
        r = requests.post(svcs["sales"].url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
        assert r.status_code in (201, 409), r.text
        headers = [("ce_specversion", "1.0"), ("ce_id", str(uuid.uuid4())),
                   ("ce_source", "/test"), ("ce_type", "stock.replenished"),
                   ("ce_time", time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())),
                   ("content-type", "application/json")]
        p.produce("stock.replenished", key=sku, headers=headers, value=json.dumps(
            {"sku": sku, "quantity": 1, "production_order_id": str(uuid.uuid4()),
             "factory_order_id": "fo-prom"}).encode())
        p.poll(0)
        if i % 10 == 0:
            lag = query(url, lag_q)
            if lag:
                found["lag"] = lag
            if (p90 := orders_p90(url)) is not None:
                found["quantile"] = p90
        time.sleep(0.05)  # pacing of the load, not synchronisation
    assert p.flush(10) == 0
    assert "lag" in found, "no dozen_consumer_lag_records series for the stock group"
    assert all(float(s["value"][1]) >= 0 for s in found["lag"])
    assert {s["metric"]["partition"] for s in found["lag"]}, found["lag"]
    assert "quantile" in found, "histogram_quantile of the orders route gave nothing"
    assert 0 < found["quantile"] < 10, found

    # A gauge read from PostgreSQL at scrape time, through Prometheus too.
    stock_q = 'dozen_stock_quantity{job="stock",sku="%s"}' % sku
    wait_for(lambda: query(url, stock_q), 15, "the stock level per SKU in Prometheus")
