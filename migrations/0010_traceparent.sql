-- W3C Trace Context: the traceparent of the request or record that wrote an event, sent
-- with it as ce_traceparent and traceparent (NULL: the event carries none).
ALTER TABLE outbox ADD COLUMN traceparent text;

-- The trace of the depletion that ordered a production order: its delivery continues it.
ALTER TABLE production_orders ADD COLUMN traceparent text;
