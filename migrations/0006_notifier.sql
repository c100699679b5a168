-- 0006: the notifier: subscribers, the daily bulletin and every SMS it sends.

-- A subscriber. Opting out keeps the row (deliveries refer to it) and sets opted_out_at;
-- the same number may subscribe again, as a new subscriber.
CREATE TABLE subscribers (
    id           uuid PRIMARY KEY,
    phone        text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),  -- E.164
    name         text NOT NULL DEFAULT '' CHECK (char_length(name) <= 100),
    created_at   timestamptz NOT NULL DEFAULT now(),
    opted_out_at timestamptz
);
-- One active subscription per number.
CREATE UNIQUE INDEX subscribers_active_phone ON subscribers (phone) WHERE opted_out_at IS NULL;
CREATE INDEX subscribers_created ON subscribers (created_at, id);

-- The products a subscriber wants back-in-stock alerts for.
CREATE TABLE subscriber_skus (
    subscriber_id uuid NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    sku           text NOT NULL,
    PRIMARY KEY (subscriber_id, sku)
);
CREATE INDEX subscriber_skus_sku ON subscriber_skus (sku);

-- One bulletin per local day (BULLETIN_TZ). Its state moves scheduled -> retrying ->
-- sent | unavailable, and never leaves sent or unavailable: the day's messages are created
-- in the transaction that makes that move.
CREATE TABLE bulletins (
    day          date PRIMARY KEY,
    state        text NOT NULL DEFAULT 'scheduled'
                 CHECK (state IN ('scheduled', 'retrying', 'sent', 'unavailable')),
    trigger      text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    scheduled_at timestamptz NOT NULL,
    deadline_at  timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- feed checks so far
    last_reason  text,         -- the last failure's reason code
    last_error   text,
    source       text,         -- the URL the sent figures came from
    confirmed    bigint CHECK (confirmed >= 0),
    recovered    bigint CHECK (recovered >= 0),
    in_treatment bigint CHECK (in_treatment >= 0),
    deaths       bigint CHECK (deaths >= 0),
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every failed feed check, for GET /bulletins/{date}.
CREATE TABLE bulletin_attempts (
    day     date NOT NULL REFERENCES bulletins (day) ON DELETE CASCADE,
    attempt integer NOT NULL CHECK (attempt >= 1),
    source  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    reason  text NOT NULL,
    error   text NOT NULL,
    PRIMARY KEY (day, attempt, source)
);

-- One row per SMS to send: at most one per subscriber and message key ('day:YYYY-MM-DD'
-- for the day's bulletin or its unavailable notice, 'restock:<ce_id>' for a back-in-stock
-- alert). status: pending (due at next_attempt_at) -> sending (claimed at claimed_at) ->
-- sent | failed (gave up) | cancelled (opted out); a failed send goes back to pending.
-- uncertain: the last try may have reached the gateway, so the gateway is asked before
-- sending again.
CREATE TABLE deliveries (
    id              bigserial PRIMARY KEY,
    subscriber_id   uuid NOT NULL REFERENCES subscribers (id),
    message_key     text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('bulletin', 'unavailable', 'restock')),
    body            text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 160),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    uncertain       boolean NOT NULL DEFAULT false,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz,
    last_error      text,
    gateway_sid     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (subscriber_id, message_key)
);
CREATE INDEX deliveries_open ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'sending');
CREATE INDEX deliveries_key ON deliveries (message_key, status);
