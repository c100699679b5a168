-- 0008: an SMS provider's real limits: a send rate per sender number shared by every
-- sender thread and instance, what the provider said about each message (its status
-- callbacks), and what an uncertain send is matched on.

-- One row per sender number (SMS_FROM): next_slot_at is the earliest time the next
-- message from it may go. A sender reserves a slot by pushing it 1/SMS_RATE s ahead
-- (GREATEST(next_slot_at, now()) + interval), in one UPDATE that serialises every sender of
-- that number; a 429 with Retry-After pushes it to now() + Retry-After for all of them.
CREATE TABLE sms_senders (
    sender       text PRIMARY KEY,
    next_slot_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE deliveries
    -- The first claim: every try of this delivery started after it, so a message the
    -- provider created before it is not this delivery's.
    ADD COLUMN first_claimed_at   timestamptz,
    -- The unguessable token of this delivery's StatusCallback URL.
    ADD COLUMN callback_token     uuid NOT NULL DEFAULT gen_random_uuid(),
    -- The provider's last word on the message (queued, accepted, sending, sent, delivered,
    -- undelivered, failed), from its status callbacks.
    ADD COLUMN provider_status    text,
    ADD COLUMN provider_status_at timestamptz;
