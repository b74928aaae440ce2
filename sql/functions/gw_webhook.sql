-- Queues a webhook delivery (gw_webhooks, drained by the broker).
CREATE OR REPLACE FUNCTION gw_webhook(p_kind text, p_payload jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gw_webhooks (kind, payload) VALUES (p_kind, p_payload);
END $$;
