-- 0015: a 429's Retry-After pauses the sender number for every sender thread and
-- instance. Pushing next_slot_at (0008) was not enough: slots that other senders had
-- already reserved went out during the pause. paused_until is when the last pause ends;
-- a sender checks it just before each send whose slot was reserved earlier, and when the
-- number is paused reserves its slots again, after the pause and SMS_RATE apart.
ALTER TABLE sms_senders
    ADD COLUMN paused_until timestamptz NOT NULL DEFAULT '-infinity';
