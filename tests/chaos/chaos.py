#!/usr/bin/env python3
"""chaos.py: workload, nemesis and checker against a running dozen stack (tests/chaos/run.sh
starts it). Jepsen-style: clients record what they asked and what they were told, a
nemesis injects faults on a seeded schedule and logs each with its time, and after the
workload stops and the system settles (a bounded wait) a checker compares the histories
with the database and the topics. Prints a report; exits 1 on any violation."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg2
import requests
from confluent_kafka import Consumer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import netcut  # noqa: E402  (tests/netcut.py: the `cut` nemesis's namespaces)

RUN = os.environ["RUN_DIR"]
DURATION = int(os.environ["CHAOS_DURATION"])
SEED = int(os.environ["CHAOS_SEED"])
INSTANCES = int(os.environ.get("INSTANCES", "1"))
KAFKA_KIND = os.environ.get("CHAOS_KAFKA", "dev")
REPORT = os.environ.get("CHAOS_REPORT", os.path.join(RUN, "report.txt"))
SERVICES = ["sales", "stock", "factory", "notifier", "retry"]
BASE_PORT = {s: int(os.environ[s.upper() + "_PORT"]) for s in SERVICES}
LEGACY = "http://127.0.0.1:%s" % os.environ["LEGACY_FACTORY_PORT"]
OPEN_DATA = "http://127.0.0.1:%s" % os.environ["OPEN_DATA_PORT"]
SMS = "http://127.0.0.1:%s" % os.environ["SMS_GATEWAY_PORT"]
SETTLE_S = 120           # the checker waits at most this long for the system to settle
MAX_OPS = 200000         # bound on client operations, whatever the duration
OPTOUT_GRACE_S = 6       # see "no message after an opt-out"
TIMEOUT = 10             # client timeout: an unanswered request is "unknown", not an answer


def read_env():
    env = {}
    with open(os.path.join(RUN, "env")) as f:
        for line in f:
            if line.startswith("export ") and "=" in line:
                k, v = line[7:].rstrip("\n").split("=", 1)
                env[k] = v
    return env


ENV = read_env()
AUTH = {"Authorization": "Bearer " + ENV["ADMIN_TOKEN"]}
T0 = time.time()


def now():
    return time.time() - T0


def url(service, k):
    return "http://127.0.0.1:%d" % (BASE_PORT[service] + 100 * (k - 1))


def inst_name(service, k):
    return service if k == 1 else "%s.%d" % (service, k)


class History:
    """Every client operation: kind, start, end, status (None: no answer), request, answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []

    def add(self, **op):
        with self.lock:
            self.ops.append(op)

    def of(self, kind):
        with self.lock:
            return [o for o in self.ops if o["kind"] == kind]


HIST = History()
FAULTS = []            # {"kind", "target", "start", "end", "recovered"}
STOP = threading.Event()


def call(kind, method, u, body=None, headers=None, **meta):
    t = now()
    status, answer = None, None
    try:
        r = requests.request(method, u, json=body, headers=headers, timeout=TIMEOUT)
        status = r.status_code
        try:
            answer = r.json()
        except ValueError:
            answer = r.text[:200]
    except requests.RequestException as e:
        answer = type(e).__name__
    HIST.add(kind=kind, start=t, end=now(), status=status, body=body, answer=answer,
             headers=headers, **meta)
    return status, answer


# ---------------------------------------------------------------------------------------
# Workload

SKUS = ["chaos-%d" % i for i in range(12)]
INITIAL = {}


def setup(rng):
    for sku in SKUS:
        level = rng.randint(0, 8)
        INITIAL[sku] = level
        for _ in range(30):
            st, _ = call("setup", "PUT", url("stock", 1) + "/inventory/" + sku,
                         {"quantity": level}, AUTH)
            if st in (200, 201):
                break
            time.sleep(0.5)
        else:
            raise SystemExit("chaos: could not set up %s" % sku)
    # The legacy factory: quick deliveries, some failures, every callback twice now and then.
    requests.post(LEGACY + "/admin/mode", json={"delay_ms": 300}, timeout=5)


def order_worker(seed, deadline):
    rng = random.Random(seed)
    sent_keys = []
    while not STOP.is_set() and now() < deadline and len(HIST.ops) < MAX_OPS:
        k = rng.randint(1, INSTANCES)
        if sent_keys and rng.random() < 0.1:
            key, body = rng.choice(sent_keys)      # a client retrying: same key, same body
        else:
            body = {"sku": rng.choice(SKUS), "quantity": rng.randint(1, 3),
                    "customer": "c-" + uuid.uuid4().hex[:16]}
            key = None
            if rng.random() < 0.3:
                key = "k-" + uuid.uuid4().hex
                sent_keys.append((key, body))
        headers = {"Idempotency-Key": key} if key else None
        call("order", "POST", url("sales", k) + "/orders", body, headers, key=key, inst=k)


def phone(rng):
    return "+8210%08d" % rng.randint(0, 99999999)


def subscriber_worker(seed, deadline):
    rng = random.Random(seed)
    active = []
    used = set()
    while not STOP.is_set() and now() < deadline and len(HIST.ops) < MAX_OPS:
        k = rng.randint(1, INSTANCES)
        if active and rng.random() < 0.35:
            sid, ph = active.pop(rng.randrange(len(active)))
            call("optout", "DELETE", url("notifier", k) + "/subscribers/" + sid, None, AUTH,
                 sid=sid, phone=ph)
        else:
            ph = phone(rng)
            if ph in used:
                continue
            used.add(ph)
            st, ans = call("subscribe", "POST", url("notifier", k) + "/subscribers",
                           {"phone": ph, "name": "chaos", "skus": rng.sample(SKUS, 2)}, AUTH,
                           phone=ph)
            if st == 201 and isinstance(ans, dict):
                active.append((ans["id"], ph))
        time.sleep(rng.uniform(0.2, 1.0))


def bulletin_and_standins(seed, deadline):
    """The day's bulletin with a feed that is late, then valid; the SMS gateway and the
    legacy factory failing, stalling and (the factory) answering twice, on a schedule."""
    rng = random.Random(seed)
    requests.post(OPEN_DATA + "/admin/mode", json={"publish_after": 2}, timeout=5)
    time.sleep(min(10, DURATION / 6))     # some subscribers first
    for _ in range(10):
        st, _ = call("bulletin", "POST", url("notifier", 1) + "/bulletins/run", None, AUTH)
        if st in (200, 202):
            break
        time.sleep(2)
    knobs = [
        (LEGACY, {"fail_next": 2}), (LEGACY, {"slow_ms": 3000}), (LEGACY, {"slow_ms": 0}),
        (LEGACY, {"deliver_twice": True}), (LEGACY, {"deliver_twice": False}),
        (SMS, {"fail_next": 3}), (SMS, {"slow_ms": 4000}), (SMS, {"slow_ms": 0}),
        (SMS, {"fail_rate": 20, "seed": seed % 1000}), (SMS, {"fail_rate": 0}),
        (SMS, {"callback_twice": True}), (SMS, {"callback_twice": False}),
    ]
    while not STOP.is_set() and now() < deadline:
        target, mode = rng.choice(knobs)
        try:
            requests.post(target + "/admin/mode", json=mode, timeout=5)
            HIST.add(kind="knob", start=now(), end=now(), status=200, body=mode,
                     answer=target, headers=None)
        except requests.RequestException:
            pass
        STOP.wait(rng.uniform(3, 8))
    for target, mode in ((LEGACY, {"slow_ms": 0, "deliver_twice": False}),
                         (SMS, {"slow_ms": 0, "fail_rate": 0, "callback_twice": False})):
        try:
            requests.post(target + "/admin/mode", json=mode, timeout=5)
        except requests.RequestException:
            pass


# ---------------------------------------------------------------------------------------
# Nemesis

def pid_of(name):
    try:
        with open(os.path.join(RUN, "pids", name + ".pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def stack_up():
    return subprocess.run([os.path.join(ROOT, "tools", "stack.sh"), "up"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=300).returncode


def unready():
    """None when every instance answers /healthz 200, else the first that does not and
    why (its reason, or the error of the request)."""
    for s in SERVICES:
        for k in range(1, INSTANCES + 1):
            try:
                r = requests.get(url(s, k) + "/healthz", timeout=2)
            except requests.RequestException as e:
                return "%s: %s" % (inst_name(s, k), type(e).__name__)
            if r.status_code != 200:
                return "%s: %d %s" % (inst_name(s, k), r.status_code, r.text.strip()[:160])
    return None


def wait_recovered(limit=120, probe=1):
    """(seconds until every instance is ready and an order is answered by sales instance
    probe, None), or (None, what was still wrong at the limit)."""
    t = time.time()
    why = None
    while time.time() - t < limit:
        why = unready()
        if why is None:
            why = "the probe order to %s got no 201/409" % inst_name("sales", probe)
            try:
                r = requests.post(url("sales", probe) + "/orders", timeout=5,
                                  json={"sku": SKUS[0], "quantity": 1,
                                        "customer": "probe-" + uuid.uuid4().hex[:12]})
                HIST.add(kind="order", start=now(), end=now(), status=r.status_code,
                         body=json.loads(r.request.body), answer=r.json(), headers=None,
                         key=None, inst=probe)
                if r.status_code in (201, 409):
                    return round(time.time() - t, 1), None
            except (requests.RequestException, ValueError):
                pass
        time.sleep(0.5)
    return None, why


def fault(kind, target, action, undo, hold, probe=1):
    f = {"kind": kind, "target": target, "start": round(now(), 1)}
    print("chaos: t=%6.1fs fault %s %s (hold %.0fs)" % (now(), kind, target, hold), flush=True)
    action()
    STOP.wait(hold) if kind != "sigstop" else time.sleep(hold)
    undo()
    f["end"] = round(now(), 1)
    f["recovered"], f["not_ready"] = wait_recovered(probe=probe)
    print("chaos: t=%6.1fs healed %s %s, recovered in %s s%s" % (
        now(), kind, target, f["recovered"],
        "" if f["not_ready"] is None else " (still: %s)" % f["not_ready"]), flush=True)
    FAULTS.append(f)


def pg_ctl(*args):
    pgbin = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
    cmd = ["/usr/lib/postgresql/%s/bin/pg_ctl" % pgbin, "-D", os.path.join(RUN, "pg", "data")]
    cmd += list(args)
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def kafka_cluster(*args):
    subprocess.run([os.path.join(ROOT, "tools", "kafka", "kafka.sh"), "cluster"] + list(args),
                   env=dict(os.environ, KAFKA_CLUSTER_DIR=os.path.join(RUN, "kafka-cluster")),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


def controller_node():
    """The id of the node kcat names as the controller, or None."""
    try:
        out = subprocess.run(["kcat", "-b", ENV["KAFKA_BOOTSTRAP"], "-L", "-m", "5"],
                             capture_output=True, text=True, timeout=15).stdout
    except subprocess.TimeoutExpired:
        return None
    for line in out.splitlines():
        if "(controller)" in line:
            return int(line.split()[1])
    return None


def nemesis(seed, deadline):
    rng = random.Random(seed)
    # "cut" is drawn whether or not this machine can make one (then it is passed over), so
    # that a seed means the same schedule everywhere.
    kinds = ["sigkill", "sigstop", "postgres", "cut"]
    if KAFKA_KIND == "cluster":
        kinds += ["broker", "broker-controller"]
    # The first fault after a quiet start, then one after another with gaps.
    STOP.wait(min(15, DURATION / 8))
    while not STOP.is_set() and now() < deadline - 20:
        kind = rng.choice(kinds)
        if kind in ("sigkill", "sigstop"):
            svc, k = rng.choice(SERVICES), rng.randint(1, INSTANCES)
            name = inst_name(svc, k)
            pid = pid_of(name)
            if pid is None:
                continue
            if kind == "sigkill":
                fault(kind, name, lambda: os.kill(pid, signal.SIGKILL), stack_up,
                      rng.uniform(1, 5))
            else:
                # Longer than the consumer session (6 s) and the leader lease (3 s + 3 s).
                fault(kind, name, lambda: os.kill(pid, signal.SIGSTOP),
                      lambda: os.kill(pid, signal.SIGCONT), rng.uniform(8, 15))
        elif kind == "cut":
            if CUT.pg is None:
                continue
            # Longer than tcp_user_timeout (10 s) now and then: the instance's connections
            # fail, not just wait, and it must make new ones once the way is back.
            fault(kind, CUT.name, lambda: CUT.pg.blackhole(True),
                  lambda: CUT.pg.blackhole(False), rng.uniform(8, 15), probe=CUT.k)
        elif kind == "postgres":
            fault(kind, "postgresql", lambda: pg_ctl("stop", "-m", "immediate"), stack_up,
                  rng.uniform(2, 8))
        else:
            node = controller_node() if kind == "broker-controller" else rng.randint(1, 3)
            node = node or rng.randint(1, 3)
            pid = pid_of_broker(node)
            # A crash (SIGKILL) of the node: partition leaders and perhaps the controller.
            fault(kind, "kafka-node-%d" % node,
                  lambda: pid and os.kill(pid, signal.SIGKILL),
                  lambda: kafka_cluster("start", str(node)), rng.uniform(5, 15))
        STOP.wait(rng.uniform(5, 15))


class Cuttable:
    """The instance the `cut` nemesis cuts off from PostgreSQL: the last sales instance
    (the only one when INSTANCES=1, so that every order meets the cut and the checker sees
    its 503s and timeouts), restarted by tools/stack.sh inside a namespace of
    tests/netcut.py's. The NETNS_* variables stay in this process's environment, so every
    later `stack.sh up` (the sigkill and postgres nemeses' heal) starts it there again.
    pg is None when the cut is skipped; why says why."""

    def __init__(self):
        self.k = INSTANCES
        self.name = inst_name("sales", self.k)
        self.pg = None
        self.why = None

    def setup(self):
        self.why = netcut.available()
        if self.why:
            print("chaos: cut skipped: %s" % self.why, flush=True)
            return
        c = Consumer({"bootstrap.servers": ENV["KAFKA_BOOTSTRAP"], "group.id": "chaos-cut"})
        try:
            md = c.list_topics(timeout=30)
            brokers = sorted({(b.host, b.port) for b in md.brokers.values()} |
                             set(netcut.brokers_of(ENV["KAFKA_BOOTSTRAP"])))
        finally:
            c.close()
        self.pg = netcut.PgCut(int(os.environ["PGPORT"]), brokers)
        stop_pid(self.name)       # it holds the port the forwarder is to listen on
        self.pg.expose(BASE_PORT["sales"] + 100 * (self.k - 1))
        os.environ.update(NETNS_INSTANCE=self.name, NETNS_PATH=self.pg.svc_ns.path,
                          NETNS_DATABASE_URL=self.pg.database_url(ENV["DATABASE_URL"]))
        if stack_up() != 0:
            raise SystemExit("chaos: %s did not start in its namespace: see %s" % (
                self.name, os.path.join(RUN, "logs", self.name + ".log")))
        pid = pid_of(self.name)
        if os.readlink("/proc/%d/ns/net" % pid) != os.readlink(self.pg.svc_ns.path):
            raise SystemExit("chaos: %s (pid %d) is not in its namespace" % (self.name, pid))
        print("chaos: %s (pid %d) runs in a network namespace of its own, reaching "
              "PostgreSQL at %s: the cut nemesis can cut it off" % (
                  self.name, pid, netcut.DB_IP), flush=True)

    def teardown(self):
        """Stops the instance (while Kafka still reaches it, so that it stops cleanly), then
        the forwarders and the namespaces. run.sh's `stack.sh down` finds it gone."""
        if self.pg is None:
            return
        self.pg.blackhole(False)
        stop_pid(self.name)
        self.pg.close()
        self.pg = None
        for v in ("NETNS_INSTANCE", "NETNS_PATH", "NETNS_DATABASE_URL"):
            os.environ.pop(v, None)


CUT = Cuttable()


def stop_pid(name, wait_s=15):
    """SIGTERM to the instance's pid (if it runs a dozen program), SIGKILL after wait_s."""
    pid = pid_of(name)
    if pid is None:
        return
    try:
        if os.path.basename(os.readlink("/proc/%d/exe" % pid)) != name.split(".")[0]:
            return
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def pid_of_broker(node):
    try:
        with open(os.path.join(RUN, "kafka-cluster", "node-%d" % node, "kafka.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------
# Checker

def db():
    c = psycopg2.connect(ENV["DATABASE_URL"])
    c.autocommit = True
    return c


def q(conn, sql, params=()):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def read_topic(topic):
    """Every record of topic: (ce_id, ce_type, payload dict, partition, offset)."""
    c = Consumer({"bootstrap.servers": ENV["KAFKA_BOOTSTRAP"], "group.id": "chaos-checker",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        md = c.list_topics(topic, timeout=30)
        parts = list(md.topics[topic].partitions)
        tps = []
        ends = {}
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if hi > lo:
                tps.append(TopicPartition(topic, p, lo))
                ends[p] = hi
        c.assign(tps)
        out = []
        done = set(p for p in parts if p not in ends)
        limit = time.time() + 120
        while len(done) < len(parts) and time.time() < limit:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                continue
            h = dict((k, v.decode() if v else "") for k, v in (m.headers() or []))
            try:
                payload = json.loads(m.value())
            except (TypeError, ValueError):
                payload = None
            out.append((h.get("ce_id"), h.get("ce_type"), payload, m.partition(), m.offset()))
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
        if len(done) < len(parts):
            raise RuntimeError("could not read all of %s" % topic)
        return out
    finally:
        c.close()


def groups_caught_up():
    """On Apache Kafka: every dozen consumer group has committed up to the end of every
    partition it reads (`dozenctl groups --max-lag 0`). A group that was without members
    for a while (its coordinator restarting just before the workload stopped) still has
    records to handle when the database already looks quiet. The dev broker has no
    DescribeGroups, and dozenctl's fallback there reads the services' own gauges, which
    keep a partition's last value after it moved: not asked there."""
    if KAFKA_KIND == "dev":
        return True
    env = dict(os.environ, KAFKA_BOOTSTRAP=ENV["KAFKA_BOOTSTRAP"])
    try:
        return subprocess.run([os.path.join(os.environ["DOZEN_BIN"], "dozenctl"), "groups",
                               "--max-lag", "0"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def settle(conn):
    """Waits (bounded) until nothing is in flight: outboxes sent, retries drained, no open
    production order with stock still wanted, no pending SMS, and (Apache Kafka) every
    consumer group caught up. Returns seconds waited."""
    t = time.time()
    while time.time() - t < SETTLE_S:
        busy = q(conn, """SELECT
            (SELECT count(*) FROM outbox WHERE sent_at IS NULL),
            (SELECT count(*) FROM retry_pending),
            (SELECT count(*) FROM production_orders WHERE status <> 'delivered'),
            (SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending'))""")[0]
        if not any(busy) and groups_caught_up():
            return round(time.time() - t, 1)
        time.sleep(1)
    return None


def check(report):
    v = []                      # violations: (property, detail)
    conn = db()
    report["settle_s"] = settle(conn)
    if report["settle_s"] is None:
        busy = q(conn, """SELECT 'outbox', count(*) FROM outbox WHERE sent_at IS NULL
            UNION ALL SELECT 'retry_pending', count(*) FROM retry_pending
            UNION ALL SELECT 'open production orders', count(*) FROM production_orders
                      WHERE status <> 'delivered'
            UNION ALL SELECT 'pending SMS', count(*) FROM deliveries
                      WHERE status IN ('pending', 'sending')""")
        v.append(("settles within %d s" % SETTLE_S, repr(busy)))

    orders = {str(r[0]): r for r in q(conn, "SELECT id, sku, quantity, status, customer FROM orders")}
    # 1. Stock conservation per SKU, never negative.
    for sku in SKUS:
        level = q(conn, "SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]
        sold = q(conn, "SELECT coalesce(sum(quantity), 0) FROM orders WHERE sku = %s AND "
                       "status = 'completed'", (sku,))[0][0]
        delivered = q(conn, "SELECT coalesce(sum(delivered_quantity), 0) FROM production_orders "
                            "WHERE sku = %s AND status = 'delivered'", (sku,))[0][0]
        if INITIAL[sku] + delivered - sold != level:
            v.append(("stock conservation", "%s: initial %d + delivered %d - sold %d = %d, "
                      "level %d" % (sku, INITIAL[sku], delivered, sold,
                                    INITIAL[sku] + delivered - sold, level)))
        if level < 0:
            v.append(("never negative", "%s: %d" % (sku, level)))

    # 2. Every 201 has its row; no order completed twice; idempotent repeats agree.
    by_key = {}
    order_ops = HIST.of("order")
    seen_ids = {}
    for o in order_ops:
        st, a = o["status"], o["answer"]
        if st in (201, 409) and isinstance(a, dict):
            oid = a.get("order_id")
            row = orders.get(oid)
            want = "completed" if st == 201 else "out_of_stock"
            if row is None or row[3] != want or row[1] != o["body"]["sku"]:
                v.append(("every acknowledged order has its row",
                          "%s %s -> %s, row %r" % (st, o["body"], oid, row)))
            if o["key"]:
                first = by_key.setdefault(o["key"], (oid, st))
                if first != (oid, st):
                    v.append(("Idempotency-Key repeats get the first answer",
                              "key %s: %r then %r" % (o["key"], first, (oid, st))))
            else:
                if oid in seen_ids and seen_ids[oid] != o["body"]["customer"]:
                    v.append(("no order completed twice", "order %s answered to two requests"
                              % oid))
                seen_ids[oid] = o["body"]["customer"]
    customers_rows = {}
    for r in orders.values():
        customers_rows.setdefault(r[4], []).append(r)
    keyed_customers = {o["body"]["customer"] for o in order_ops if o["key"]}
    for cust, rows in customers_rows.items():
        if cust and cust.startswith("c-") and len(rows) > 1 and cust in keyed_customers:
            v.append(("an Idempotency-Key takes effect once", "customer %s: %d rows %r"
                      % (cust, len(rows), [str(r[0]) for r in rows])))
    # 5xx without effect: a request that got a 5xx (and never a 2xx/409 for the same body)
    # must have left no order row. One exception, sales' own: a 503 that carries an
    # order_id says the database went away with the COMMIT on its way (outcome unknown,
    # look it up); then the only row allowed is that order's.
    acked = {o["body"]["customer"] for o in order_ops if o["status"] in (201, 409)}
    for o in order_ops:
        if o["status"] is not None and o["status"] >= 500:
            cust = o["body"]["customer"]
            told = o["answer"].get("order_id") if isinstance(o["answer"], dict) else None
            if told is not None and all(str(r[0]) == told for r in customers_rows.get(cust, ())):
                continue
            if cust not in acked and cust in customers_rows:
                v.append(("every 5xx without effect", "%s %s -> %s but rows %r" % (
                    o["status"], o["body"], o["answer"],
                    [str(r[0]) for r in customers_rows[cust]])))

    # 3. Events on orders: exactly one per committed order (by ce_id), each for a real row.
    ev = read_topic("orders")
    report["orders_events"] = len(ev)
    per_order = {}
    for ce_id, ce_type, payload, p, off in ev:
        oid = payload.get("order_id") if isinstance(payload, dict) else None
        row = orders.get(oid)
        want = {"order.completed": "completed", "order.rejected": "out_of_stock"}.get(ce_type)
        if row is None or row[3] != want:
            v.append(("every event corresponds to a committed row",
                      "orders[%d]@%d %s %s order %s: row %r" % (p, off, ce_type, ce_id, oid, row)))
        per_order.setdefault(oid, set()).add(ce_id)
    for oid in orders:
        ids = per_order.get(oid, set())
        if len(ids) != 1:
            v.append(("exactly one event per committed order",
                      "order %s (%s): ce_ids %r" % (oid, orders[oid][3], sorted(ids))))

    # 4. Production orders: at most one open per SKU, every delivery applied once.
    open_per_sku = q(conn, "SELECT sku, count(*) FROM production_orders WHERE status <> "
                           "'delivered' GROUP BY sku HAVING count(*) > 1")
    for sku, n in open_per_sku:
        v.append(("at most one open production order per SKU", "%s: %d open" % (sku, n)))
    if not q(conn, "SELECT 1 FROM pg_indexes WHERE indexname = 'production_orders_one_open'"):
        v.append(("at most one open production order per SKU", "the unique index is missing"))
    rep = read_topic("stock.replenished")
    report["replenished_events"] = len(rep)
    delivered = {str(r[0]): r for r in q(conn, "SELECT id, sku, delivered_quantity FROM "
                                                "production_orders WHERE status = 'delivered'")}
    rep_ids = {}
    for ce_id, ce_type, payload, p, off in rep:
        po = payload.get("production_order_id") if isinstance(payload, dict) else None
        if po not in delivered:
            v.append(("every replenishment is a delivered production order",
                      "stock.replenished[%d]@%d %s: %r" % (p, off, ce_id, payload)))
        rep_ids.setdefault(po, set()).add(ce_id)
    for po in delivered:
        if len(rep_ids.get(po, ())) != 1:
            v.append(("every delivery applied once", "production order %s: stock.replenished "
                      "ce_ids %r" % (po, sorted(rep_ids.get(po, ())))))

    # 5. Consumed records: processed once (the inbox) or dead-lettered with a reason.
    consumers = {"stock.replenished": ["stock"], "stock.depleted": ["factory"]}
    dead = {str(r[0]): r[1] for r in q(conn, "SELECT ce_id, reason FROM retry_dead_letters "
                                             "WHERE ce_id IS NOT NULL")}
    inbox = {}
    for consumer, ce_id in q(conn, "SELECT consumer, ce_id FROM processed_events"):
        inbox.setdefault(consumer, set()).add(str(ce_id))
    names = set(inbox)
    dep = read_topic("stock.depleted")
    report["depleted_events"] = len(dep)
    for topic, records in (("stock.replenished", rep), ("stock.depleted", dep)):
        for want in consumers[topic]:
            cons = [n for n in names if n == want or n.startswith(want)]
            for ce_id, ce_type, payload, p, off in records:
                if not any(ce_id in inbox[c] for c in cons) and ce_id not in dead:
                    v.append(("every consumed record processed or dead-lettered",
                              "%s[%d]@%d %s: not in %s's inbox %r, not dead-lettered" %
                              (topic, p, off, ce_id, want, cons)))
    for ce_id, reason in dead.items():
        if not reason:
            v.append(("dead letters have a reason", ce_id))
    report["dead_letters"] = len(dead)
    overdue = q(conn, "SELECT id, group_id, original_topic, due_at FROM retry_pending WHERE "
                      "due_at < (extract(epoch from now()) * 1000)::bigint - 10000")
    for r in overdue:
        v.append(("nothing overdue in the retry service", repr(r)))

    # 6. SMS: no two messages for one key, none after an opt-out that returned.
    try:
        msgs = requests.get(SMS + "/messages", timeout=30).json()["messages"]
    except (requests.RequestException, ValueError, KeyError) as e:
        msgs = []
        v.append(("the SMS gateway lists its messages", repr(e)))
    report["sms"] = len(msgs)
    # The gateway's list has no message key; a key is one deliveries row, so a subscriber
    # with more accepted messages than rows ever tried got some key twice.
    sent = {}
    for phone_, n in q(conn, "SELECT s.phone, count(*) FROM deliveries d JOIN subscribers s "
                             "ON s.id = d.subscriber_id WHERE d.attempts > 0 GROUP BY 1"):
        sent[phone_] = n
    got = {}
    for m in msgs:
        got.setdefault(m["to"], []).append(m)
    for ph, ms in got.items():
        if not ph.startswith("+8210"):
            continue
        if len(ms) > sent.get(ph, 0):
            v.append(("no subscriber got two messages for one key",
                      "%s: gateway accepted %d, deliveries tried %d: %r" % (
                          ph[:5] + "***", len(ms), sent.get(ph, 0),
                          [(x["sid"], x["at"], x["body"][:40]) for x in ms])))
        day = [x for x in ms if x["body"].startswith("dozen ")]
        if len(day) > 1:
            v.append(("one bulletin per subscriber per day", "%s: %r" % (ph[:5] + "***",
                      [(x["sid"], x["at"]) for x in day])))
    # An opt-out that returned 200 at time T (seconds since T0): nothing sent after it.
    t0_epoch = T0
    for o in HIST.of("optout"):
        if o["status"] != 200:
            continue
        cutoff = t0_epoch + o["end"]
        for m in got.get(o["phone"], []):
            at = parse_time(m["at"])
            # A send already at the gateway when the opt-out returned may land during the
            # gateway's stall (slow_ms up to 4 s): grace OPTOUT_GRACE_S.
            if at is not None and at > cutoff + OPTOUT_GRACE_S:
                v.append(("no message after an opt-out that returned",
                          "subscriber %s opted out at %.1f s, message %s at %s" % (
                              o["sid"], o["end"], m["sid"], m["at"])))
        row = q(conn, "SELECT opted_out_at FROM subscribers WHERE id = %s", (o["sid"],))
        if not row or row[0][0] is None:
            v.append(("every acknowledged request's effect is visible",
                      "opt-out of %s returned 200, row %r" % (o["sid"], row)))
    for o in HIST.of("subscribe"):
        if o["status"] == 201 and isinstance(o["answer"], dict):
            if not q(conn, "SELECT 1 FROM subscribers WHERE id = %s", (o["answer"]["id"],)):
                v.append(("every acknowledged request's effect is visible",
                          "subscriber %s answered 201, no row" % o["answer"]["id"]))
        elif o["status"] is not None and o["status"] >= 500:
            if q(conn, "SELECT 1 FROM subscribers WHERE phone = %s", (o["phone"],)) and \
               not any(x["phone"] == o["phone"] and x["status"] in (201, 409)
                       for x in HIST.of("subscribe")):
                v.append(("every 5xx without effect", "subscribe %s*** -> %s, row exists" %
                          (o["phone"][:5], o["status"])))
    b = q(conn, "SELECT day, state, attempts FROM bulletins ORDER BY day")
    report["bulletins"] = [(str(d), s, a) for d, s, a in b]
    if not b or b[-1][1] not in ("sent", "unavailable"):
        v.append(("the bulletin run finishes", repr(report["bulletins"])))
    conn.close()
    return v


def parse_time(text):
    import datetime
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(text, fmt).replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except (ValueError, TypeError):
            pass
    try:
        import email.utils
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def percentile(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def main():
    try:
        CUT.setup()
        return run()
    finally:
        CUT.teardown()


def run():
    rng = random.Random(SEED)
    setup(rng)
    deadline = now() + DURATION
    threads = [threading.Thread(target=order_worker, args=(rng.random(), deadline))
               for _ in range(4)]
    threads.append(threading.Thread(target=subscriber_worker, args=(rng.random(), deadline)))
    threads.append(threading.Thread(target=bulletin_and_standins, args=(SEED + 1, deadline)))
    nem = threading.Thread(target=nemesis, args=(SEED + 2, deadline))
    for t in threads + [nem]:
        t.daemon = True
        t.start()
    for t in threads:
        t.join(DURATION + 120)
    STOP.set()
    nem.join(600)
    if unready() is not None:
        stack_up()        # a fault that was healing when the workload stopped
    work_end = now()
    report = {"seed": SEED, "duration_s": DURATION, "instances": INSTANCES,
              "kafka": KAFKA_KIND}
    violations = check(report)
    ops = [o for o in HIST.ops if o["kind"] in ("order", "subscribe", "optout", "bulletin")]
    ok = [o for o in ops if o["status"] is not None and o["status"] < 500]
    in_fault = [o for o in ops if any(f["start"] <= o["start"] <= f["end"] + (f["recovered"] or 0)
                                      for f in FAULTS)]
    lat = [o["end"] - o["start"] for o in ok]
    lat_f = [o["end"] - o["start"] for o in in_fault
             if o["status"] is not None and o["status"] < 500]
    statuses = {}
    for o in ops:
        statuses[str(o["status"])] = statuses.get(str(o["status"]), 0) + 1
    kinds = {}
    for f in FAULTS:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    lines = [
        "chaos report: seed %d, %d s of workload, %d instance(s) each, Kafka %s" % (
            SEED, DURATION, INSTANCES, KAFKA_KIND),
        "ops: %d (%.1f/s), answered below 500: %d, by status: %s" % (
            len(ops), len(ops) / max(work_end, 1), len(ok), json.dumps(statuses, sort_keys=True)),
        "latency (answered): p50 %.3f s, p99 %.3f s, max %.3f s; during faults and recovery: "
        "p50 %.3f s, p99 %.3f s (%d ops)" % (percentile(lat, 50), percentile(lat, 99),
                                              max(lat or [0]), percentile(lat_f, 50),
                                              percentile(lat_f, 99), len(lat_f)),
        "faults: %d %s" % (len(FAULTS), json.dumps(kinds, sort_keys=True)),
        "cut: %s" % ("skipped (%s)" % CUT.why if CUT.why else
                     "%s runs in a namespace of its own" % CUT.name),
    ]
    for f in FAULTS:
        lines.append("  t=%7.1f..%7.1f s  %-17s %-16s recovered in %s s%s" % (
            f["start"], f["end"], f["kind"], f["target"], f["recovered"],
            "" if f["not_ready"] is None else " (still: %s)" % f["not_ready"]))
    lines.append("settled in %s s; events: orders %s, stock.depleted %s, stock.replenished %s; "
                 "dead letters %s; SMS accepted %s; bulletins %s" % (
                     report.get("settle_s"), report.get("orders_events"),
                     report.get("depleted_events"), report.get("replenished_events"),
                     report.get("dead_letters"), report.get("sms"), report.get("bulletins")))
    lines.append("violations: %d" % len(violations))
    for prop, detail in violations:
        lines.append("  VIOLATION %s: %s" % (prop, detail))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(REPORT, "w") as f:
        f.write(text)
    with open(os.path.join(RUN, "history.json"), "w") as f:
        json.dump({"ops": HIST.ops, "faults": FAULTS}, f, default=str)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
