-- 0001: inventory, orders, idempotency keys, the transactional outbox.

CREATE TABLE inventory (
    sku           text PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    quantity      integer NOT NULL CHECK (quantity >= 0),
    restock_batch integer NOT NULL DEFAULT 50 CHECK (restock_batch > 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id         uuid PRIMARY KEY,
    sku        text NOT NULL REFERENCES inventory (sku),
    quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    status     text NOT NULL CHECK (status IN ('completed', 'out_of_stock')),
    customer   text,
    remaining  integer,  -- stock left after a completed order
    available  integer,  -- stock seen by a rejected order
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The first answer to a POST carrying an Idempotency-Key, returned again for repeats.
CREATE TABLE idempotency_keys (
    key         text PRIMARY KEY,
    request     text NOT NULL,     -- canonical form of the first request's body
    status_code integer NOT NULL,
    response    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Events written in the same transaction as the change they describe; the relay of
-- `producer` publishes them and sets sent_at after the broker acknowledged them.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    producer        text NOT NULL,
    topic           text NOT NULL,
    msg_key         text,
    ce_id           uuid NOT NULL UNIQUE,
    ce_type         text NOT NULL,
    ce_source       text NOT NULL,
    ce_time         timestamptz NOT NULL,
    payload         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    kafka_partition integer,
    kafka_offset    bigint
);
CREATE INDEX outbox_unsent ON outbox (producer, id) WHERE sent_at IS NULL;

-- Per producer and partition: the offset just after the last record the relay saw
-- acknowledged. After a crash the relay reads the topic from here to find events that
-- reached the broker but were not yet marked sent.
CREATE TABLE outbox_position (
    producer    text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (producer, topic, partition)
);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dozen_outbox', NEW.producer);
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_notify();

-- Consumers record each event they applied, in the same transaction as its effect.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    ce_id        uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, ce_id)
);
