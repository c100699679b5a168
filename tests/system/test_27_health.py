"""/livez, /readyz and /healthz (issue 13, Health): live while the process runs; ready only
when PostgreSQL answers, Kafka metadata is fresh, the consumer has its assignment and the
relay works, with the reason in the body when not; /healthz is an alias of /readyz."""

import requests

from conftest import wait_for, wait_assigned


def get(svc, path):
    r = requests.get(svc.url + path, timeout=5)
    return r.status_code, r.json()


def test_live_and_ready(stack):
    sales = stack.sales().start()
    stock = stack.stock().start()
    wait_assigned(stock)
    for svc in (sales, stock):
        assert get(svc, "/livez") == (200, {"status": "live"})
        assert get(svc, "/readyz") == (200, {"status": "ok"})
        assert get(svc, "/healthz") == (200, {"status": "ok"})
        r = requests.post(svc.url + "/readyz", json={}, timeout=5)
        assert r.status_code == 405 and r.json()["error"] == "method not allowed"


def test_not_ready_with_the_reason_while_postgres_is_down(stack, migrated):
    sales = stack.sales().start()
    stock = stack.stock().start()
    wait_assigned(stock)
    migrated.stop("fast")
    try:
        for svc in (sales, stock):
            wait_for(lambda: get(svc, "/readyz")[0] == 503, 20,
                     f"{svc.name} /readyz to say not ready")
            status, body = get(svc, "/readyz")
            assert body["status"] == "unavailable"
            assert "database" in body["reason"].lower() or \
                "postgres" in body["reason"].lower(), body
            # the alias says the same; liveness does not depend on the database
            assert get(svc, "/healthz")[0] == 503
            assert get(svc, "/livez") == (200, {"status": "live"})
    finally:
        migrated.start()
    for svc in (sales, stock):
        wait_for(lambda: get(svc, "/readyz")[0] == 200, 30, f"{svc.name} to be ready again")


def test_not_ready_while_the_relay_fails(stack, migrated):
    """PostgreSQL answers and Kafka is there, but the relay's own query fails (its table
    renamed away under it): /readyz names the relay, and is ready again once the relay
    works."""
    sales = stack.sales().start()
    assert get(sales, "/readyz") == (200, {"status": "ok"})
    migrated.execute("ALTER TABLE outbox RENAME TO outbox_away")
    try:
        wait_for(lambda: get(sales, "/readyz")[0] == 503, 20, "sales /readyz to say not ready")
        status, body = get(sales, "/readyz")
        assert body["status"] == "unavailable"
        assert body["reason"].startswith("outbox relay"), body
        assert get(sales, "/livez") == (200, {"status": "live"})
    finally:
        migrated.execute("ALTER TABLE outbox_away RENAME TO outbox")
    wait_for(lambda: get(sales, "/readyz")[0] == 200, 30, "sales to be ready again")


def test_not_ready_when_kafka_is_gone(migrated, workdir):
    """A broker of this test's own, stopped under a running stock service: /readyz turns 503
    with a reason naming Kafka within the metadata bound (15 s, plus a check interval),
    /livez stays 200."""
    import os
    import uuid
    from conftest import Proc, Service, free_port, service_env, CONSUMER_ENV

    addr_file = os.path.join(workdir, f"devbroker-{uuid.uuid4().hex[:8]}.addr")
    broker = Proc("devbroker", dict(os.environ), ["--addr-file", addr_file], workdir).start()
    stock = None
    try:
        wait_for(lambda: os.path.exists(addr_file) and open(addr_file).read().strip(), 10,
                 "the dev broker's address")
        bootstrap = open(addr_file).read().strip()
        port = free_port()
        stock = Service("stock", service_env(migrated, bootstrap, STOCK_PORT=port,
                                             STOCK_GROUP="health-" + uuid.uuid4().hex[:8],
                                             **CONSUMER_ENV), port, workdir).start()
        assert get(stock, "/readyz") == (200, {"status": "ok"})
        broker.stop()
        wait_for(lambda: get(stock, "/readyz")[0] == 503, 30, "stock to say Kafka is gone")
        body = get(stock, "/readyz")[1]
        assert "kafka" in body["reason"].lower() or "consumer group" in body["reason"], body
        assert get(stock, "/livez") == (200, {"status": "live"})
    finally:
        if stock is not None:
            stock.stop()
        broker.stop()
