-- Stores a checkpoint the broker signed (gw_audit_checkpoint_due gave it
-- seq, hash, time and prev) and queues its outside copies in the same
-- transaction: gangway.audit.checkpoints through the outbox (the bare
-- checkpoint JSON, schemas/events/audit.checkpoint.schema.json) and, with
-- p_webhook, a webhook of kind audit.checkpoint. Returns false (and stores
-- nothing) when the list moved on meanwhile (prev is no longer the latest
-- checkpoint) or the head at seq no longer has that hash; either way the
-- lease is released.
CREATE OR REPLACE FUNCTION gw_audit_checkpoint_add(p_seq bigint, p_hash text, p_time text,
                                                   p_prev text, p_key_id text, p_sig text,
                                                   p_checkpoint_hash text, p_webhook boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    latest text;
    cp jsonb;
BEGIN
    UPDATE gw_audit_checkpointer SET lease_until = NULL WHERE id = 1;
    SELECT c.checkpoint_hash INTO latest FROM gw_audit_checkpoints c ORDER BY c.id DESC LIMIT 1;
    IF coalesce(latest, repeat('0', 64)) <> p_prev
       OR NOT EXISTS (SELECT 1 FROM gw_audit_head() h WHERE h.seq = p_seq AND h.hash = p_hash
                      UNION ALL
                      SELECT 1 FROM gw_audit_chain c WHERE c.seq = p_seq AND c.hash = p_hash) THEN
        RETURN false;
    END IF;
    INSERT INTO gw_audit_checkpoints (seq, hash, time, prev, key_id, sig, checkpoint_hash)
    VALUES (p_seq, p_hash, p_time, p_prev, p_key_id, p_sig, p_checkpoint_hash)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    cp := jsonb_build_object('format', 'gangway.audit.checkpoint/1', 'seq', p_seq, 'hash', p_hash,
                             'time', p_time, 'prev', p_prev, 'key_id', p_key_id, 'sig', p_sig,
                             'checkpoint_hash', p_checkpoint_hash);
    INSERT INTO gw_outbox (topic, msg_key, payload)
    VALUES ('gangway.audit.checkpoints', 'checkpoint', cp);
    IF p_webhook THEN
        PERFORM gw_webhook('audit.checkpoint', cp || jsonb_build_object(
            'type', 'audit.checkpoint',
            'text', format('Gangway audit checkpoint: seq %s, hash %s..., key %s', p_seq,
                           left(p_hash, 12), p_key_id)));
    END IF;
    RETURN true;
END $$;
