-- 0005: `dozenctl dlq replay`: which dead letters were replayed, so that each one is
-- replayed at most once however often the command runs.

-- One row per record of `dead-letter` that a replay started on. 'replaying' is written
-- before the copy is produced to retry.<group_id> and turned into 'replayed' once the broker
-- acknowledged it: a row left 'replaying' (the run died in between) is replayed again by the
-- next run, since a duplicate is harmless (consumers dedupe by ce_id) and a loss is not.
CREATE TABLE dlq_replays (
    dead_partition     integer NOT NULL CHECK (dead_partition >= 0),
    dead_offset        bigint NOT NULL CHECK (dead_offset >= 0),
    -- The dead record's Kafka timestamp (-1 when it had none). A dead-letter topic created
    -- again (offsets from 0, as on a restarted dev broker) reuses positions: a row whose
    -- timestamp differs from the record now at its position describes a record that is
    -- gone, and a replay of the new record takes the row over.
    dead_timestamp     bigint NOT NULL,
    original_topic     text NOT NULL,     -- dozen-original-topic/-partition/-offset
    original_partition integer NOT NULL CHECK (original_partition >= 0),
    original_offset    bigint NOT NULL CHECK (original_offset >= 0),
    group_id           text NOT NULL,     -- dozen-group: the copy went to retry.<group_id>
    ce_id              text,              -- NULL when the record had none
    status             text NOT NULL CHECK (status IN ('replaying', 'replayed')),
    started_at         timestamptz NOT NULL DEFAULT now(),  -- the latest attempt
    replayed_at        timestamptz,       -- the broker's acknowledgement; NULL while replaying
    PRIMARY KEY (dead_partition, dead_offset),
    CHECK ((status = 'replayed') = (replayed_at IS NOT NULL))
);
