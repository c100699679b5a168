-- order_hot.sql: pgbench script, the same transaction as order.sql, always on the hot SKU
-- bench-hot (every client waits for the row lock of the one before it). The outbox row is
-- written with producer 'bench' so that the relay of the running sales service leaves it
-- alone; bench.sh runs it with the old per-row NOTIFY trigger, then without it.
BEGIN;
UPDATE inventory SET quantity = quantity - 1, updated_at = now()
    WHERE sku = 'bench-hot' AND quantity >= 1
    RETURNING sku, quantity AS remaining \gset
INSERT INTO orders (id, sku, quantity, status, customer, remaining, available)
    VALUES (gen_random_uuid(), :sku, 1, 'completed', NULL, :remaining, NULL)
    RETURNING id AS order_id \gset
INSERT INTO outbox (producer, topic, msg_key, ce_id, ce_type, ce_source, ce_time, payload)
    VALUES ('bench', 'orders', :sku, gen_random_uuid(), 'order.completed', '/dozen/bench',
            now(), format('{"order_id":"%s","sku":"%s","quantity":1,"remaining":%s}',
                          :order_id::text, :sku::text, :remaining::text));
COMMIT;
