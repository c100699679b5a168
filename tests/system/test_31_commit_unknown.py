"""A COMMIT that gets no answer: the connection dies while the order commits. Sales must not
answer 503 ("nothing happened, try again") for an order that may have been placed: it looks
the order up on a fresh connection first (found by the chaos suite: a PostgreSQL crash
between the commit and the answer made a client buy twice)."""

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
