-- 0004: a production order can be given up ('failed') when its depletion ran out of
-- retries; it is closed (another depletion may open a new one) and reopened if the dead
-- depletion is replayed.
ALTER TABLE production_orders DROP CONSTRAINT production_orders_status_check;
ALTER TABLE production_orders ADD CONSTRAINT production_orders_status_check
    CHECK (status IN ('pending', 'requested', 'delivered', 'failed'));
