"""A COMMIT that gets no answer: the connection dies while the order commits. Sales must not
answer 503 ("nothing happened, try again") for an order that may have been placed: it looks
the order up on a fresh connection first (found by the chaos suite: a PostgreSQL crash
between the commit and the answer made a client buy twice)."""

import socket
import threading
import time

import psycopg2
import requests

from conftest import wait_for

KILL = """
CREATE OR REPLACE FUNCTION test_kill_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_terminate_backend(pg_backend_pid());
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_kill_at_commit AFTER INSERT ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.customer = 'kill-at-commit') EXECUTE FUNCTION test_kill_at_commit();
"""


def test_a_commit_that_dies_is_looked_up_before_a_503(stack, migrated, make_sku):
    sku = make_sku(5)
    migrated.execute(KILL)
    try:
        sales = stack.sales().start()
        r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 2,
                                                         "customer": "kill-at-commit"},
                          timeout=30)
        # The backend died at COMMIT, so the order was not placed: a 503 is the truth, and
        # it comes only after sales made sure.
        assert r.status_code == 503, r.text
        wait_for(lambda: "order_commit_unknown" in sales.log(), 10,
                 "sales to say the COMMIT went unanswered")
        assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s", (sku,))[0][0] == 0
        assert migrated.query("SELECT quantity FROM inventory WHERE sku = %s",
                              (sku,))[0][0] == 5
        # The next order goes through on a fresh connection.
        r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 2}, timeout=10)
        assert r.status_code == 201, r.text
    finally:
        migrated.execute("DROP TRIGGER IF EXISTS test_kill_at_commit ON orders")


# Orders without an Idempotency-Key of one SKU that arrive while one of it is being placed
# are placed together, in one statement outside a transaction block (services/sales/
# combine.c): that statement is its own COMMIT, and when the connection dies on its way,
# every order of the batch may or may not be placed. Each must be looked up like a single
# order whose COMMIT got no answer.

BATCH = 3


def batch_size_count_and_sum(sales):
    text = requests.get(sales.url + "/metrics", timeout=5).text
    values = {}
    for line in text.splitlines():
        for name in ("dozen_orders_batch_size_count", "dozen_orders_batch_size_sum"):
            if line.startswith(name):
                values[name] = float(line.split()[-1])
    return (values.get("dozen_orders_batch_size_count", 0),
            values.get("dozen_orders_batch_size_sum", 0))


def orders_in_flight(sales):
    """Requests sales is handling now, less the /metrics request that asks; 0 when that
    request is not answered within a second. (An HTTP worker may have accepted it together
    with an order that now blocks the worker; a new connection goes to another worker.)"""
    try:
        text = requests.get(sales.url + "/metrics", timeout=1).text
    except requests.RequestException:
        return 0
    for line in text.splitlines():
        if line.startswith("dozen_http_requests_in_flight"):
            return float(line.split()[-1]) - 1
    return 0


def post_orders_as_one_batch(pg, sales, sku, customers):
    """One order of sku placed alone while the test holds the SKU's row lock, so that the
    orders for customers, sent meanwhile, queue behind it and are placed as one batch when
    the lock goes. Returns (the first order's answer, the batch's answers in sending order);
    an answer is (status, JSON body)."""
    lock = psycopg2.connect(pg.url)
    answers = {}

    def post(i, customer):
        r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1,
                                                         "customer": customer}, timeout=60)
        answers[i] = (r.status_code, r.json())

    try:
        cur = lock.cursor()
        cur.execute("SELECT quantity FROM inventory WHERE sku = %s FOR UPDATE", (sku,))
        first = threading.Thread(target=post, args=("first", "first"))
        first.start()
        wait_for(lambda: pg.query("SELECT count(*) FROM pg_stat_activity WHERE "
                                  "wait_event_type = 'Lock' AND pid <> %s",
                                  (lock.get_backend_pid(),))[0][0] > 0, 10,
                 "the first order to wait for the row lock")
        # One at a time, each in flight before the next: two sent at once could be taken
        # by one HTTP worker, which would handle the second only after the first.
        rest = [threading.Thread(target=post, args=(i, c)) for i, c in enumerate(customers)]
        for n, t in enumerate(rest, start=2):
            t.start()
            wait_for(lambda: orders_in_flight(sales) >= n, 20,
                     f"order {n} to reach sales")
        # From there to the SKU's slot in combine.c is microseconds of parsing, which
        # nothing shows; the caller checks the batch size.
        time.sleep(0.5)
        lock.commit()
        for t in [first] + rest:
            t.join(timeout=60)
    finally:
        lock.close()
    return answers["first"], [answers[i] for i in range(len(customers))]


def test_a_combined_batch_that_dies_at_its_commit_is_looked_up_order_by_order(
        stack, migrated, make_sku):
    sku = make_sku(10)
    migrated.execute(KILL)
    try:
        sales = stack.sales().start()
        before = batch_size_count_and_sum(sales)
        first, batch = post_orders_as_one_batch(
            migrated, sales, sku, ["a", "kill-at-commit", "b"][:BATCH])
        assert first[0] == 201, first
        after = batch_size_count_and_sum(sales)
        assert (after[0] - before[0], after[1] - before[1]) == (2, 1 + BATCH), \
            "the orders were not placed as one batch behind the first"
        # The batch's statement died at its commit, so none of its orders was placed: each
        # gets a 503 "try again", and only after sales looked it up.
        for status, body in batch:
            assert status == 503, body
            assert "try again" in body["error"], body
        assert sales.log().count("order_commit_unknown") == BATCH
        assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s", (sku,))[0][0] == 1
        assert migrated.query("SELECT quantity FROM inventory WHERE sku = %s",
                              (sku,))[0][0] == 9
    finally:
        migrated.execute("DROP TRIGGER IF EXISTS test_kill_at_commit ON orders")


def test_a_statement_of_several_skus_that_dies_at_its_commit_is_looked_up_order_by_order(
        stack, migrated, make_sku):
    """Batches of several SKUs share one statement (COMBINE_STATEMENTS): when it dies at its
    commit, every order in it, of every SKU, is looked up, and none is told "placed"."""
    held = [make_sku(10) for _ in range(4)]    # one statement each, waiting for its lock
    queued = [make_sku(10) for _ in range(2)]  # then one statement for both
    migrated.execute(KILL)
    lock = psycopg2.connect(migrated.url)
    answers, threads = {}, []

    def post(key, sku, customer):
        r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1,
                                                         "customer": customer}, timeout=60)
        answers[key] = (r.status_code, r.json())

    def start(key, sku, customer):
        t = threading.Thread(target=post, args=(key, sku, customer))
        t.start()
        threads.append(t)

    def skus_per_statement():
        text = requests.get(sales.url + "/metrics", timeout=5).text
        v = {line.split()[0]: float(line.split()[-1]) for line in text.splitlines()
             if line.startswith("dozen_orders_statement_skus_")}
        return v.get("dozen_orders_statement_skus_sum", 0), \
            v.get("dozen_orders_statement_skus_count", 0)

    try:
        sales = stack.sales().start()
        before = skus_per_statement()
        lock.cursor().execute("SELECT sku FROM inventory WHERE sku = ANY(%s) FOR UPDATE",
                              (held,))
        for i, sku in enumerate(held):
            start(f"held-{i}", sku, f"held-{i}")
        wait_for(lambda: migrated.query(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pid <> %s", (lock.get_backend_pid(),))[0][0] >= len(held), 10,
            "every statement sales may run to wait for a row lock")
        for n, (sku, customer) in enumerate(zip(queued, ["kill-at-commit", "bystander"])):
            start(f"queued-{n}", sku, customer)
            wait_for(lambda: orders_in_flight(sales) >= len(held) + n + 1, 10,
                     f"queued order {n} to reach sales")
        # From there to the statements' queue in combine.c is microseconds of parsing,
        # which nothing shows; the statement count below checks they went together.
        time.sleep(0.5)
        lock.rollback()
        for t in threads:
            t.join(timeout=60)
        after = skus_per_statement()
        assert (after[0] - before[0], after[1] - before[1]) == (len(held) + 2, len(held) + 1), \
            "the two queued orders were not placed in one statement"
        for i in range(len(held)):
            assert answers[f"held-{i}"][0] == 201, answers
        # The shared statement died at its commit: neither order was placed, and each is
        # told so only after sales looked it up.
        for n in range(len(queued)):
            status, body = answers[f"queued-{n}"]
            assert status == 503 and "try again" in body["error"], body
        assert sales.log().count("order_commit_unknown") == len(queued)
        for sku in queued:
            assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s",
                                  (sku,))[0][0] == 0
            assert migrated.query("SELECT quantity FROM inventory WHERE sku = %s",
                                  (sku,))[0][0] == 10
        r = requests.post(sales.url + "/orders", json={"sku": queued[1], "quantity": 1},
                          timeout=10)
        assert r.status_code == 201 and r.json()["remaining"] == 9, r.text
    finally:
        lock.close()
        migrated.execute("DROP TRIGGER IF EXISTS test_kill_at_commit ON orders")


class CutConnection:
    """A TCP proxy in front of PostgreSQL that, once a client sends bytes containing
    `marker`, closes that connection: at="answer" drops the server's next answer first (the
    statement ran and, outside a transaction block, committed, but its client never hears
    of it); at="request" right after passing the request on (the server runs it all the
    same, and a statement waiting for a lock commits when it gets it)."""

    def __init__(self, port, marker, at="answer"):
        self.target, self.marker, self.at = port, marker.encode(), at
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            state = {"armed": False, "seen": b""}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state),
                             daemon=True).start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _up(self, client, server, state):
        try:
            while data := client.recv(65536):
                state["seen"] = (state["seen"] + data)[-65536:]
                if self.marker in state["seen"]:
                    state["armed"] = True
                server.sendall(data)
                if state["armed"] and self.at == "request":
                    self.cuts += 1
                    break
        except OSError:
            pass
        self._close(client, server)

    def _down(self, server, client, state):
        try:
            while data := server.recv(65536):
                if state["armed"]:
                    self.cuts += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        self._close(client, server)

    def close(self):
        self.listener.close()


def test_a_combined_batch_committed_without_an_answer_gets_its_201s(stack, migrated,
                                                                   make_sku):
    sku = make_sku(10)
    proxy = CutConnection(migrated.port, "cut-after-commit")
    try:
        sales = stack.sales(
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{proxy.port}/dozen").start()
        before = batch_size_count_and_sum(sales)
        first, batch = post_orders_as_one_batch(
            migrated, sales, sku, ["a", "cut-after-commit", "b"][:BATCH])
        assert first[0] == 201, first
        assert first[1]["remaining"] == 9
        after = batch_size_count_and_sum(sales)
        assert (after[0] - before[0], after[1] - before[1]) == (2, 1 + BATCH), \
            "the orders were not placed as one batch behind the first"
        assert proxy.cuts == 1
        # The batch was committed, its answer lost: every order of it gets the 201 it has,
        # with its own level as stored, never the placeholder nor a 503.
        stored = dict(migrated.query("SELECT id::text, remaining FROM orders WHERE sku = %s",
                                     (sku,)))
        assert len(stored) == 1 + BATCH
        for status, body in batch:
            assert status == 201, body
            assert body["remaining"] == stored[body["order_id"]], (body, stored)
        assert sorted(body["remaining"] for _, body in batch) == list(range(9 - BATCH, 9))
        assert sales.log().count("order_commit_unknown") == BATCH
        assert migrated.query("SELECT quantity FROM inventory WHERE sku = %s",
                              (sku,))[0][0] == 9 - BATCH
    finally:
        proxy.close()


def test_an_order_cut_off_while_it_waits_for_the_row_lock_is_not_told_to_try_again(
        stack, migrated, make_sku):
    """The one statement of a key-less order is its own COMMIT, and it can wait for the
    SKU's row lock (another instance's batch) for as long as that is held. When its
    connection dies meanwhile, the server process goes on waiting and commits once it has
    the lock: a lookup on a fresh connection that finds no order yet proves nothing while
    that process runs. Sales must wait for it to end before it says "not placed"."""
    sku = make_sku(10)
    proxy = CutConnection(migrated.port, "cut-while-waiting", at="request")
    lock = psycopg2.connect(migrated.url)
    answer = {}

    def post():
        r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1,
                                                         "customer": "cut-while-waiting"},
                          timeout=60)
        answer["r"] = (r.status_code, r.json())

    try:
        sales = stack.sales(
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{proxy.port}/dozen").start()
        cur = lock.cursor()
        cur.execute("SELECT quantity FROM inventory WHERE sku = %s FOR UPDATE", (sku,))
        t = threading.Thread(target=post)
        t.start()
        wait_for(lambda: "order_commit_unknown" in sales.log(), 10,
                 "sales to lose the order's connection")
        assert proxy.cuts == 1
        # The order's server process still waits for the lock: no order row yet.
        time.sleep(1.0)
        assert "r" not in answer, answer
        assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s", (sku,))[0][0] == 0
        lock.commit()
        t.join(timeout=30)
        status, body = answer["r"]
        assert status == 201, body
        assert body["remaining"] == 9
        assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s", (sku,))[0][0] == 1
    finally:
        lock.close()
        proxy.close()
