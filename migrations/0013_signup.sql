-- 0013: SMS sign-up with double opt-in (issue 16). A number subscribes or unsubscribes on
-- the public page only with the code sent to it; the code is kept as a salted SHA-256,
-- never in clear. Rate limits count the requests of the last hour per number and per
-- client address in signup_requests.

CREATE TABLE signup_codes (
    phone      text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    purpose    text NOT NULL CHECK (purpose IN ('subscribe', 'unsubscribe')),
    salt       text NOT NULL,
    code_hash  text NOT NULL,               -- hex SHA-256 of salt ':' code
    name       text NOT NULL DEFAULT '' CHECK (char_length(name) <= 100),
    skus       jsonb NOT NULL DEFAULT '[]',  -- what the subscription will alert on
    attempts   integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- wrong codes so far
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (phone, purpose)
);

-- One row per code asked for and per wrong code typed, for the limits; pruned after a day.
CREATE TABLE signup_requests (
    at     timestamptz NOT NULL DEFAULT now(),
    phone  text NOT NULL,
    client text NOT NULL,                   -- the client's IP address
    kind   text NOT NULL CHECK (kind IN ('code', 'wrong'))
);
CREATE INDEX signup_requests_phone ON signup_requests (phone, at);
CREATE INDEX signup_requests_client ON signup_requests (client, at);

-- Who ended a subscription: the admin API, the page (with a code), a STOP reply, or the
-- provider's "this number opted out" error (Twilio 21610). NULL: the admin API, or older rows.
ALTER TABLE subscribers ADD COLUMN opted_out_by text
    CHECK (opted_out_by IN ('admin', 'page', 'stop', 'provider'));
