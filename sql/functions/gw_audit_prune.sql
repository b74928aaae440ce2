-- Deletes the sealed audit entries with seq <= p_through (archive them first:
-- `gangway audit archive`), recording (p_through, its hash) in
-- gw_audit_anchor as the chain's new starting point, so `gangway audit
-- verify` checks what remains from there. Audited itself (verb
-- audit.prune). Returns how many entries were deleted. Refuses (22023) a
-- p_through not above the current anchor or beyond the sealed head. One
-- pruner at a time, and never beside a sealer (the seal lock).
CREATE OR REPLACE FUNCTION gw_audit_prune(p_through bigint, p_actor text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    c gw_audit_chain;
    anchor bigint;
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('gangway.audit.seal'));
    SELECT coalesce(max(through_seq), 0) INTO anchor FROM gw_audit_anchor;
    IF p_through IS NULL OR p_through <= anchor THEN
        RAISE EXCEPTION 'through: must be above the current anchor (seq %)', anchor
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO c FROM gw_audit_chain WHERE seq = p_through;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'through: seq % is not sealed', p_through USING ERRCODE = '22023';
    END IF;
    INSERT INTO gw_audit_anchor (through_seq, hash, audit_id, audit_txid, actor)
    VALUES (c.seq, c.hash, c.audit_id, c.audit_txid, p_actor);
    DELETE FROM gw_audit_log a USING gw_audit_chain ch
    WHERE ch.audit_id = a.id AND ch.seq > anchor AND ch.seq <= p_through;
    DELETE FROM gw_audit_chain WHERE seq > anchor AND seq <= p_through;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'audit.prune', 'audit:' || p_through,
            jsonb_build_object('through_seq', p_through, 'hash', c.hash, 'entries', n));
    RETURN n;
END $$;
