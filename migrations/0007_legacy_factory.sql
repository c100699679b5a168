-- 0007: the shop's Legacy Factory API. Per product, what the factory knows it by (NULL: the
-- factory service's defaults, LEGACY_FACTORY_ID and the SKU); per production order, what was
-- sent; delivery callbacks carry a per-call capability of which only a SHA-256 is kept.

ALTER TABLE inventory
    ADD COLUMN factory_id text
        CHECK (factory_id ~ '^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$'),
    ADD COLUMN factory_product_id text
        CHECK (factory_product_id ~ '^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$');

-- What the last call sent (a callback must name the same product id).
ALTER TABLE production_orders
    ADD COLUMN factory_id text,
    ADD COLUMN factory_product_id text;

-- One row per call made to the factory: sha256 of the token in that call's CallbackUrl.
-- Any of them delivers (a late answer to an earlier call is still accepted, once).
CREATE TABLE production_order_tokens (
    production_order_id uuid NOT NULL REFERENCES production_orders (id) ON DELETE CASCADE,
    token_sha256        bytea NOT NULL CHECK (length(token_sha256) = 32),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (production_order_id, token_sha256)
);

-- The plaintext tokens of the old protocol (POST /deliveries?po=&token=) go: that route is
-- gone, and an order still open is asked for again with a new token after
-- FACTORY_DELIVERY_TIMEOUT.
ALTER TABLE production_orders DROP COLUMN callback_token;
