-- 0002: production orders, the factory service's record of what it asked the legacy
-- factory for. At most one open order per SKU.

CREATE TABLE production_orders (
    id                 uuid PRIMARY KEY,
    sku                text NOT NULL REFERENCES inventory (sku),
    quantity           integer NOT NULL CHECK (quantity > 0),
    status             text NOT NULL CHECK (status IN ('pending', 'requested', 'delivered')),
    attempts           integer NOT NULL DEFAULT 0,  -- calls made to the legacy factory
    last_error         text,                         -- why the last call failed
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    factory_order_id   text UNIQUE,
    callback_token     text NOT NULL,                -- proves a delivery callback is ours
    depletion_ce_id    uuid,                         -- the stock.depleted event that opened it
    created_at         timestamptz NOT NULL DEFAULT now(),
    requested_at       timestamptz,
    delivered_at       timestamptz,
    delivered_quantity integer CHECK (delivered_quantity > 0)
);

CREATE UNIQUE INDEX production_orders_one_open ON production_orders (sku)
    WHERE status IN ('pending', 'requested');
CREATE INDEX production_orders_due ON production_orders (next_attempt_at)
    WHERE status IN ('pending', 'requested');
CREATE INDEX production_orders_sku_delivered ON production_orders (sku, delivered_at)
    WHERE status = 'delivered';
