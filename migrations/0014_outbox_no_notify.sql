-- The relay is woken by the committing thread of its own process (outbox_wake, issue 15),
-- not by a NOTIFY per row: a transaction that has notified holds a cluster-wide lock from
-- its pre-commit until its commit record is flushed, so every order's commit ran alone and
-- group commit never happened. Rows of other instances reach the leader through the
-- standby's one NOTIFY per pass, and anything else through the relay's short poll.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
