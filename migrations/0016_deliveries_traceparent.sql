-- 0016: the trace a delivery was created in (W3C traceparent: the stock.replenished record
-- of a back-in-stock alert, the bulletin.requested run of a day's bulletin), so that the
-- sender's SMS request and log lines continue it. NULL: created outside a trace, or before
-- this migration; the send then starts a trace of its own.
ALTER TABLE deliveries ADD COLUMN traceparent text;
