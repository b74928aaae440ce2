-- Whether the chain head needs a new signed checkpoint, and if so leases the
-- signing to the caller for p_lease_s seconds and returns what to sign: the
-- head (seq, hash), the time to sign it at and the previous checkpoint's
-- hash. Due when the head moved and either p_every_n entries were sealed
-- since the last checkpoint or p_every_s seconds have passed (the first
-- checkpoint is due as soon as there is a head). Nothing when the head did
-- not move, when another replica holds the lease, or when the chain is
-- empty. The lease makes one replica at a time sign; gw_audit_checkpoint_add
-- releases it.
CREATE OR REPLACE FUNCTION gw_audit_checkpoint_due(p_every_s integer, p_every_n integer,
                                                   p_lease_s integer)
RETURNS TABLE (seq bigint, hash text, "time" text, prev text) LANGUAGE plpgsql AS $$
DECLARE
    h record;
    last gw_audit_checkpoints;
BEGIN
    SELECT * INTO h FROM gw_audit_head();
    IF h.seq = 0 THEN
        RETURN;
    END IF;
    SELECT * INTO last FROM gw_audit_checkpoints c ORDER BY c.id DESC LIMIT 1;
    IF FOUND AND (last.seq >= h.seq
                  OR (h.seq - last.seq < p_every_n
                      AND last.created_at > clock_timestamp() - make_interval(secs => p_every_s))) THEN
        RETURN;
    END IF;
    UPDATE gw_audit_checkpointer l SET lease_until = clock_timestamp() + make_interval(secs => p_lease_s)
    WHERE l.id = 1 AND (l.lease_until IS NULL OR l.lease_until < clock_timestamp());
    IF NOT FOUND THEN
        RETURN;
    END IF;
    seq := h.seq;
    hash := h.hash;
    "time" := gw_ts(clock_timestamp());
    prev := coalesce(last.checkpoint_hash, repeat('0', 64));
    RETURN NEXT;
END $$;
