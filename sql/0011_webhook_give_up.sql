-- Webhook deliveries stop after a bounded number of attempts: a receiver
-- that is gone for good must not be retried (and logged about) forever.
-- failed_at marks the row as given up; last_error keeps the final reason.
-- The broker's GW_WEBHOOK_MAX_ATTEMPTS decides when (default 10, which with
-- the 5 s doubling backoff capped at 15 min spans about 36 minutes).

ALTER TABLE gw_webhooks ADD COLUMN failed_at timestamptz;

DROP INDEX gw_webhooks_due;
CREATE INDEX gw_webhooks_due ON gw_webhooks (next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
