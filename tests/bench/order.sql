-- order.sql: pgbench script, the SQL transaction sales' POST /orders ran before issue 15
-- for one of the 100 SKUs bench-000..bench-099, quantity 1. The outbox row is written with
-- producer 'bench' so that the relay of the running sales service leaves it alone (it
-- reads only rows of producer 'sales'). bench.sh runs it with the outbox's old per-row NOTIFY
-- trigger put back (the transaction sales ran before issue 15), then without it.
\set n random(0, 99)
BEGIN;
UPDATE inventory SET quantity = quantity - 1, updated_at = now()
    WHERE sku = 'bench-' || lpad(:n::text, 3, '0') AND quantity >= 1
    RETURNING sku, quantity AS remaining \gset
INSERT INTO orders (id, sku, quantity, status, customer, remaining, available)
    VALUES (gen_random_uuid(), :sku, 1, 'completed', NULL, :remaining, NULL)
    RETURNING id AS order_id \gset
INSERT INTO outbox (producer, topic, msg_key, ce_id, ce_type, ce_source, ce_time, payload)
    VALUES ('bench', 'orders', :sku, gen_random_uuid(), 'order.completed', '/dozen/bench',
            now(), format('{"order_id":"%s","sku":"%s","quantity":1,"remaining":%s}',
                          :order_id::text, :sku::text, :remaining::text));
COMMIT;
