"""System-test harness: a real PostgreSQL server, a real Kafka-protocol broker and the real
service binaries, all started here on 127.0.0.1 and stopped when the tests end.

Which broker: DOZEN_TEST_BROKER=dev (default) starts bin/devbroker (librdkafka's mock
cluster); DOZEN_TEST_BROKER=external uses KAFKA_BOOTSTRAP (an Apache Kafka broker that
`make test` started). DOZEN_BIN points at the binaries (bin/ or bin-asan/).
"""

import ctypes
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import zoneinfo

import psycopg2
import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("DOZEN_BIN", os.path.join(ROOT, "bin"))
PGBIN = sorted(
    (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
    key=lambda p: int(p.split("/")[-2]))[-1]
ADMIN_TOKEN = "test-admin-token-0123456789"
TOPICS = ["orders", "stock.depleted", "stock.replenished", "retry", "dead-letter"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, interval=0.05):
    """Polls cond() until it returns a true value, which is returned; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def as_postgres(cmd, **kw):
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Postgres:
    """A throw-away PostgreSQL cluster in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dozen-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        self.superuser_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/dozen"
        try:
            as_postgres([os.path.join(PGBIN, "initdb"), "-D", self.data, "-A", "trust",
                         "-U", "postgres", "--no-instructions"])
            self.start()
            self.admin("CREATE DATABASE dozen")
        except BaseException:
            self.destroy()  # no server left behind when set-up fails half way
            raise

    def admin(self, sql):
        """Runs a statement outside a transaction (CREATE DATABASE and the like)."""
        c = psycopg2.connect(self.superuser_url)
        try:
            c.autocommit = True
            c.cursor().execute(sql)
        finally:
            c.close()

    def start(self):
        as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-w", "-t", "60",
                     "-l", os.path.join(self.dir, "log"),
                     "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                           "-c fsync=off -c max_connections=200",
                     "start"])

    def stop(self, mode="fast"):
        as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"])

    def destroy(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, sql, params=()):
        with psycopg2.connect(self.url) as c:
            with c.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else None
        c.close()
        return rows

    def execute(self, sql, params=()):
        self.query(sql, params)


class Proc:
    """A service or tool started from DOZEN_BIN, its output kept in a log file."""

    def __init__(self, name, env, args=(), workdir=None):
        self.name = name
        self.env = env
        self.args = list(args)
        self.workdir = workdir or tempfile.gettempdir()
        self.log_path = os.path.join(self.workdir, f"{name}-{uuid.uuid4().hex[:8]}.log")
        self.p = None

    def start(self):
        log = open(self.log_path, "ab")
        self.p = subprocess.Popen([os.path.join(BIN, self.name)] + self.args, env=self.env,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        log.close()
        return self

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.p.send_signal(sig)
            self.p.wait(timeout=30)

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL if it does not exit; returns the exit code."""
        if self.p is None:
            return None
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Service(Proc):
    def __init__(self, name, env, port, workdir=None):
        super().__init__(name, env, workdir=workdir)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout=30):
        super().start()
        wait_for(self.healthy, timeout, f"{self.name} /healthz")
        return self

    def healthy(self):
        if not self.alive():
            raise AssertionError(f"{self.name} exited with {self.p.returncode}:\n{self.log()}")
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="dozen-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    server = Postgres()
    try:
        yield server
    finally:
        server.destroy()


# What the session saw of the broker before and after the first service started: on a
# fresh Apache Kafka broker the project's topics exist only because sales created them.
BROKER_FACTS = {"kind": None, "topics_before": None}


def existing_topics(bootstrap):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {name for name in md.topics if not name.startswith("__")}


@pytest.fixture(scope="session")
def broker(workdir, migrated):
    """The bootstrap address of the broker the system tests run against."""
    kind = os.environ.get("DOZEN_TEST_BROKER", "dev")
    BROKER_FACTS["kind"] = kind
    if kind == "external":
        bootstrap = os.environ["KAFKA_BOOTSTRAP"]
        print(f"\nsystem tests on the external Kafka broker at {bootstrap}")
        # A real broker starts without our topics; the first sales start creates them.
        BROKER_FACTS["topics_before"] = existing_topics(bootstrap)
        port = free_port()
        first = Service("sales", service_env(migrated, bootstrap, SALES_PORT=port), port,
                        workdir)
        try:
            first.start(timeout=90)
        finally:
            code = first.stop()
        assert code == 0, f"sales exited with {code}:\n{first.log()}"
        yield bootstrap
        return
    addr_file = os.path.join(workdir, "devbroker.addr")
    proc = Proc("devbroker", dict(os.environ), ["--addr-file", addr_file], workdir).start()
    try:
        wait_for(lambda: os.path.exists(addr_file) and open(addr_file).read().strip(), 10,
                 "the dev broker's address")
        bootstrap = open(addr_file).read().strip()
        print(f"\nsystem tests on the dev broker (librdkafka mock cluster) at {bootstrap}")
        yield bootstrap
    finally:
        code = proc.stop()
        assert code == 0, f"devbroker exited with {code} on SIGTERM:\n{proc.log()}"


@pytest.fixture(scope="session")
def migrated(pg):
    out = subprocess.run([os.path.join(BIN, "dozen-migrate"), "--dir",
                          os.path.join(ROOT, "migrations")],
                         env=dict(os.environ, DATABASE_URL=pg.url), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return pg


def service_env(pg, broker, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    env.update(DATABASE_URL=pg.url, KAFKA_BOOTSTRAP=broker, ADMIN_TOKEN=ADMIN_TOKEN,
               HTTP_BIND="127.0.0.1", LOG_LEVEL="info", OUTBOX_POLL_INTERVAL="1s")
    env.update({k: str(v) for k, v in extra.items()})
    return env


# Consumers killed in a test come back sooner when the broker gives up on the dead member
# quickly (librdkafka's default session timeout is 45 s).
CONSUMER_ENV = {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
if os.environ.get("DOZEN_TEST_BROKER", "dev") == "dev":
    # The mock cluster holds an empty fetch for the whole fetch.wait.max.ms (default 500 ms)
    # instead of answering when data arrives.
    CONSUMER_ENV["KAFKA_FETCH_WAIT_MAX_MS"] = "20"


def wait_assigned(svc, seen=0, timeout=60):
    """Waits until the service's consumer has joined its group and got partitions more than
    `seen` times (pass the count from before a restart: the log file is appended to)."""
    wait_for(lambda: svc.log().count("kafka_partitions_assigned") > seen, timeout,
             f"{svc.name}'s consumer to get partitions")


class Stack:
    """The services of one test, each on its own port; stopped by the fixture."""

    def __init__(self, pg, broker, workdir):
        self.pg, self.broker, self.workdir = pg, broker, workdir
        self.procs = []

    def service(self, name, port_var, **extra):
        port = free_port()
        env = service_env(self.pg, self.broker, **{port_var: port}, **extra)
        svc = Service(name, env, port, self.workdir)
        self.procs.append(svc)
        return svc

    def sales(self, **extra):
        return self.service("sales", "SALES_PORT", **extra)

    def stock(self, **extra):
        return self.service("stock", "STOCK_PORT", **dict(CONSUMER_ENV, **extra))

    def legacy_factory(self, **extra):
        return self.service("legacy-factory", "LEGACY_FACTORY_PORT", **extra)

    def retry(self, **extra):
        return self.service("retry", "RETRY_PORT", **dict(CONSUMER_ENV, **extra))

    def factory(self, legacy, **extra):
        port = free_port()
        env = dict(CONSUMER_ENV, LEGACY_FACTORY_URL=legacy.url,
                   FACTORY_CALLBACK_URL=f"http://127.0.0.1:{port}",
                   RETRY_INITIAL="200ms", RETRY_MAX="2s")
        env.update(extra)
        svc = Service("factory", service_env(self.pg, self.broker, FACTORY_PORT=port, **env),
                      port, self.workdir)
        self.procs.append(svc)
        return svc

    def bulletin_tz(self):
        """The zone the notifier and the open-data feed share in this stack, so that both
        mean the same "today": Asia/Seoul, or UTC when Seoul is within 15 minutes of
        midnight (the two are 9 hours apart, so one of them is always far from it)."""
        if getattr(self, "_bulletin_tz", None) is None:
            self._bulletin_tz = "Asia/Seoul"
            now = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Seoul"))
            minutes = now.hour * 60 + now.minute
            if minutes < 15 or minutes >= 24 * 60 - 15:
                self._bulletin_tz = "UTC"
        return self._bulletin_tz

    def today(self):
        """Today's date ("YYYY-MM-DD") in bulletin_tz()."""
        return datetime.datetime.now(zoneinfo.ZoneInfo(self.bulletin_tz())).date().isoformat()

    def open_data(self, **extra):
        """The open-data feed stand-in (tools/open-data); the feed is svc.url + "/daily"."""
        return self.service("open-data", "OPEN_DATA_PORT",
                            **dict({"OPEN_DATA_TZ": self.bulletin_tz()}, **extra))

    def sms_gateway(self, **extra):
        """The Twilio-compatible SMS stand-in (tools/sms-gateway)."""
        return self.service("sms-gateway", "SMS_GATEWAY_PORT", **extra)

    def notifier(self, source, gateway, fallback=None, **extra):
        """The notifier reading the feed of the open-data stand-in `source` (and `fallback`)
        and sending through `gateway` with the gateway's credentials. Timings suit tests:
        1 s between feed checks, a 60 s deadline, quick SMS retries, 1000 messages a second,
        and a schedule that does not fire while the tests run."""
        genv = gateway.env
        env = dict(CONSUMER_ENV,
                   BULLETIN_SOURCE_URL=source.url + "/daily",
                   BULLETIN_FALLBACK_URL=fallback.url + "/daily" if fallback else "",
                   BULLETIN_TZ=self.bulletin_tz(), BULLETIN_CRON="0 0 1 1 *",
                   BULLETIN_RETRY_INTERVAL="1s", BULLETIN_DEADLINE="60s",
                   BULLETIN_FETCH_TIMEOUT="3s",
                   SMS_GATEWAY_URL=gateway.url,
                   SMS_ACCOUNT_SID=genv.get("SMS_ACCOUNT_SID", "ACtest"),
                   SMS_AUTH_TOKEN=genv.get("SMS_AUTH_TOKEN", "test-token"),
                   SMS_TIMEOUT="2s", SMS_SEND_LEASE="3s", SMS_RETRY_INITIAL="200ms",
                   SMS_RETRY_MAX="1s", SMS_POLL_INTERVAL="200ms",
                   # a long code's 1/s would make bulk tests slow: the rate's own tests
                   # set theirs
                   SMS_RATE="1000")
        env.update(extra)
        return self.service("notifier", "NOTIFIER_PORT", **env)

    def stop_all(self):
        failures = []
        for p in self.procs:
            was_alive = p.alive()
            code = p.stop()
            if was_alive and code != 0:
                failures.append(f"{p.name} exited with {code} on SIGTERM:\n{p.log()[-4000:]}")
        return failures


@pytest.fixture
def stack(migrated, broker, workdir, request):
    s = Stack(migrated, broker, workdir)
    yield s
    failures = s.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for p in s.procs:
            print(f"----- {p.name} log -----\n{p.log()[-6000:]}")
    assert not failures, "\n".join(failures)


# Which broker each file runs on in `make test` (DOZEN_TEST_SPLIT=1, set by
# tests/system/both.sh, which runs the two passes side by side). A file whose subject is
# Kafka's own behaviour (consumer groups and their offsets, rebalancing, redelivery through
# the retry topics, dead-letter, the broker going away, records read back as the broker
# keeps them: hostile ones, traces, the notifier's consumers) runs on Apache Kafka; a file whose
# subject does not depend on which broker carries the records (HTTP, configuration,
# compose, PostgreSQL, the outside systems' contracts, the schedule) runs on the dev broker;
# ON_BOTH files run on both. A file run alone (`make test-system T=...`), or any run with
# DOZEN_TEST_SPLIT unset, runs everything it is given. Listed here, in one place, so that
# a new file is placed on purpose: with the split on, an unlisted file stops the run.
ON_KAFKA = {
    "test_03_crash", "test_05_dozenctl", "test_08_reconnect", "test_11_broker_restart",
    "test_12_restock", "test_13_retry_service", "test_14_dlq", "test_15_retry_loop",
    "test_16_notifier", "test_18_custom_group", "test_19_consumer_restart", "test_20_metrics",
    "test_21_hostile_records", "test_26_trace", "test_27_health",
    "test_30_dozenctl_trace", "test_45_standby_wake",
}
ON_DEV = {
    "test_02_concurrency", "test_04_stock", "test_06_migrate", "test_07_config",
    "test_09_make_up", "test_10_compose", "test_17_notifier_api", "test_22_slow_clients",
    "test_23_bad_http", "test_24_leader_failover", "test_28_prometheus",
    "test_29_legacy_factory", "test_31_commit_unknown", "test_32_lost_callback",
    "test_35_open_data_feed", "test_36_schedule", "test_37_sms_provider",
    "test_44_order_combining", "test_46_signup", "test_47_pg_blackhole",
}
# test_25: dozenctl groups says what the dev broker cannot show and reads the services'
# /metrics instead, which only a dev-broker pass checks.
ON_BOTH = {"test_00_topics", "test_01_orders", "test_25_dozenctl_groups"}


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DOZEN_TEST_SPLIT") != "1":
        return
    external = os.environ.get("DOZEN_TEST_BROKER", "dev") == "external"
    other, where = (ON_DEV, "the dev broker") if external else (ON_KAFKA, "Apache Kafka")
    skip = pytest.mark.skip(reason=f"make test runs this file on {where} only "
                                   "(ON_KAFKA/ON_DEV in tests/system/conftest.py)")
    assert not (ON_KAFKA & ON_DEV or ON_KAFKA & ON_BOTH or ON_DEV & ON_BOTH)
    for item in items:
        name = item.module.__name__.rsplit(".", 1)[-1]
        if name not in ON_KAFKA | ON_DEV | ON_BOTH:
            raise pytest.UsageError(f"{name} is in none of ON_KAFKA, ON_DEV, ON_BOTH "
                                    "(tests/system/conftest.py): say where it runs")
        if name in other:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def sales(stack):
    return stack.sales().start()


@pytest.fixture
def stock(stack):
    return stack.stock().start()


def new_sku(prefix="t"):
    """A SKU no other test uses, so that events on shared topics can be told apart."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_sku(migrated):
    def make(quantity, prefix="t", batch=50):
        sku = new_sku(prefix)
        migrated.execute("INSERT INTO inventory (sku, quantity, restock_batch) VALUES (%s, %s, %s)",
                         (sku, quantity, batch))
        return sku
    return make


def start_restock(stack, legacy_env=None, factory_env=None, delay_ms=1000):
    """The restock loop of one test: the legacy-factory stand-in (delivering after delay_ms
    unless legacy_env says otherwise), retry, stock, factory and sales, with the consumers
    assigned. Returns (sales, stock, factory, legacy)."""
    legacy = stack.legacy_factory(**dict({"FACTORY_DELAY_MS": delay_ms},
                                         **(legacy_env or {}))).start()
    stack.retry().start()
    stock = stack.stock().start()
    factory = stack.factory(legacy, **(factory_env or {})).start()
    sales = stack.sales().start()
    wait_assigned(stock)
    wait_assigned(factory)
    return sales, stock, factory, legacy


_py_incref = ctypes.pythonapi.Py_IncRef
_py_incref.argtypes = [ctypes.py_object]
_py_incref.restype = None


def message_headers(m):
    """A consumed record's headers as a list of (name, value-or-None).

    python3-confluent-kafka 1.7.0 (Debian 12) builds each header tuple with a borrowed
    reference to None for a header without a value, so every such header that is read costs
    None one reference; after a few thousand hostile records (test_21 sends valueless
    headers, and the services copy them to dead-letter) the interpreter aborts at exit with
    "none_dealloc: deallocating None". The message parses its headers once and keeps them,
    so giving back one reference per valueless header on the first read balances the count
    exactly. Call this once per message, and never m.headers() directly."""
    headers = m.headers() or []
    for _, v in headers:
        if v is None:
            _py_incref(None)
    return headers


def read_topic(bootstrap, topic, until=None, timeout=20.0, settle=0.0):
    """Reads every record of a topic from the beginning. Stops when until(records) is true
    (then keeps reading for `settle` seconds, to catch duplicates), or at the end of every
    partition when until is None. Returns dicts with partition, offset, key, headers, value."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = list(md.topics[topic].partitions)
        assert parts, f"topic {topic} has no partitions"
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        records, eof = [], set()
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline:
            # In batches, and `until` once a batch: called once a record, it made reading a
            # topic of some thousand records quadratic (20 s for 8,000 under load).
            for m in c.consume(1000, 0.2):
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        eof.add(m.partition())
                    else:
                        raise AssertionError(f"consume error: {m.error()}")
                else:
                    eof.discard(m.partition())
                    headers = {}
                    for k, v in message_headers(m):
                        headers[k] = v.decode(errors="replace") if v is not None else None
                    records.append({
                        "partition": m.partition(), "offset": m.offset(),
                        "timestamp": m.timestamp()[1],
                        "key": m.key().decode(errors="replace") if m.key() is not None else None,
                        "headers": headers,
                        "value": parse_json(m.value()),
                    })
            if until is None:
                if len(eof) == len(parts):
                    return records
            elif settle_until is None and until(records):
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until and \
                    len(eof) == len(parts):
                return records
        if until is not None and settle_until is None:
            raise AssertionError(f"timed out reading {topic}: condition not met with "
                                 f"{len(records)} records")
        return records
    finally:
        c.close()


def parse_json(raw):
    """The record's value as JSON, or {"_raw": text} when it is not JSON (poison records)."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw": raw.decode(errors="replace")}
    return value if isinstance(value, dict) else {"_raw": value}


def events_for(records, field, values):
    values = set(values)
    # Records of other tests (test_21's hostile ones) may hold any JSON under field.
    return [r for r in records if r["value"] and isinstance(r["value"].get(field), (str, int))
            and r["value"].get(field) in values]


def unsent_outbox(pg):
    return pg.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0]


def check_exactly_once(pg, broker, skus, timeout=60):
    """Every committed order of these SKUs has exactly one event on `orders`, and every event
    of these SKUs belongs to a committed order. Returns the number of orders."""
    from collections import Counter
    committed = {str(r[0]) for r in pg.query(
        "SELECT id FROM orders WHERE sku = ANY(%s)", (list(skus),))}
    assert committed, "no order was committed"
    wait_for(lambda: unsent_outbox(pg) == 0, timeout, "the outbox to drain")
    recs = read_topic(broker, "orders",
                      until=lambda rs: {r["value"]["order_id"]
                                        for r in events_for(rs, "sku", skus)} >= committed,
                      settle=1.0, timeout=timeout)
    mine = events_for(recs, "sku", skus)
    per_order = Counter(r["value"]["order_id"] for r in mine)
    dupes = {k: v for k, v in per_order.items() if v > 1}
    assert not dupes, f"orders with more than one event: {dupes}"
    assert set(per_order) == committed, (
        f"events without order: {set(per_order) - committed}, "
        f"orders without event: {committed - set(per_order)}")
    return len(committed)


def run_load(url, skus, stop, results, max_orders):
    """Posts orders until stop is set or max_orders were sent; records every answer."""
    i = 0
    with requests.Session() as s:
        while not stop.is_set() and i < max_orders:
            sku = skus[i % len(skus)]
            i += 1
            try:
                r = s.post(url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5)
                results.append(r.status_code)
            except requests.RequestException:
                results.append("error")
                time.sleep(0.01)
