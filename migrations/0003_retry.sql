-- 0003: the retry service: records waiting for their redelivery, and its dead letters.
-- Times are bigint milliseconds since the epoch, exactly as the dozen-* headers carry them.

-- One row per record consumed from `retry`, written before its offset is committed and
-- deleted once its redelivery (or its give-up) was acknowledged by the broker.
CREATE TABLE retry_pending (
    id                 bigserial PRIMARY KEY,
    group_id           text NOT NULL,     -- dozen-group: redelivered to retry.<group_id>
    original_topic     text NOT NULL,     -- dozen-original-topic/-partition/-offset
    original_partition integer NOT NULL CHECK (original_partition >= 0),
    original_offset    bigint NOT NULL CHECK (original_offset >= 0),
    -- Where the record sits on `retry`. Its Kafka timestamp is part of the key so that a
    -- topic deleted and created again (offsets from 0 again, as on a restarted dev broker)
    -- cannot pass its records off as ones stored before.
    retry_partition    integer NOT NULL,
    retry_offset       bigint NOT NULL,
    retry_timestamp    bigint NOT NULL,   -- -1 when the record had none
    msg_key            bytea,             -- NULL: the record had no key
    msg_value          bytea,             -- NULL: a null value
    -- The record's headers but the dozen-* ones, in order: a byte 0x01, then per header
    -- a 2-byte big-endian name length, the name, a 4-byte big-endian value length
    -- (0xFFFFFFFF for a null value) and the value (services/retry/record.c).
    headers            bytea NOT NULL,
    ce_id              uuid,              -- for people: NULL when absent or not a UUID
    attempt            integer NOT NULL CHECK (attempt >= 1),
    max_attempts       integer NOT NULL CHECK (max_attempts >= 0),
    not_before         bigint NOT NULL,
    deadline           bigint,            -- NULL: none
    reason             text NOT NULL,     -- the owner's dozen-reason
    error              text NOT NULL,     -- dozen-error ('' when absent)
    first_failed_at    bigint NOT NULL,
    -- LEAST(not_before, deadline) when stored; moved later when a delivery failed.
    due_at             bigint NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (retry_partition, retry_offset, retry_timestamp)
);
CREATE INDEX retry_pending_due ON retry_pending (due_at, id);

-- Every record the retry service sent to `dead-letter`, for GET /stats and for people:
-- given up (max_attempts, deadline_exceeded), unknown_group (no retry.<group> topic), or
-- invalid_record (its dozen-* headers were missing or bad; provenance = its place on
-- `retry`). Unique like retry_pending, so a record seen twice is counted once.
CREATE TABLE retry_dead_letters (
    id                 bigserial PRIMARY KEY,
    group_id           text NOT NULL,
    reason             text NOT NULL,
    last_reason        text,              -- the owner's last reason (NULL for invalid_record)
    error              text NOT NULL,
    original_topic     text NOT NULL,
    original_partition integer NOT NULL,
    original_offset    bigint NOT NULL,
    retry_partition    integer NOT NULL,
    retry_offset       bigint NOT NULL,
    retry_timestamp    bigint NOT NULL,
    ce_id              uuid,
    dead_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (retry_partition, retry_offset, retry_timestamp)
);
