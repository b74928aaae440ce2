-- Chains up to p_limit entries whose writing transaction has ended; returns
-- how many it sealed. Every transaction with an id below the snapshot's xmin
-- has ended, and that xmin never moves back, so taking entries with
-- txid < xmin in (txid, id) order after the last sealed one skips no
-- committed entry: one that commits later has txid >= xmin and waits.
-- One sealer at a time: the others return 0 at once instead of queueing
-- behind it; request transactions never take this lock. Each sealed entry
-- also goes to gangway.audit through the outbox, in the same transaction
-- (the SIEM stream, docs/audit.md): one key, so one partition, in seq order.
-- A round's entries share one outbox row, a batch the relay publishes as
-- one message per entry (sql/0019_outbox_batches.sql, decision 0075).
CREATE OR REPLACE FUNCTION gw_audit_seal(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    horizon xid8;
    head record;
    ev uuid;
    v_seq bigint := 0;
    v_prev text := repeat('0', 64);
    v_txid xid8 := '0'::xid8;
    v_id bigint := 0;
    a gw_audit_log;
    h text;
    n integer := 0;
    msgs jsonb[] := '{}';
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('gangway.audit.seal')) THEN
        RETURN 0;
    END IF;
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    -- After a prune the head may be the anchor (gw_audit_head).
    SELECT * INTO head FROM gw_audit_head();
    v_seq := head.seq;
    v_prev := head.hash;
    v_txid := head.audit_txid;
    v_id := head.audit_id;
    FOR a IN SELECT * FROM gw_audit_log l
             WHERE l.txid < horizon AND (l.txid, l.id) > (v_txid, v_id)
             ORDER BY l.txid, l.id LIMIT p_limit LOOP
        v_seq := v_seq + 1;
        h := encode(sha256(convert_to(gw_audit_canonical(v_seq, a, v_prev), 'UTF8')), 'hex');
        INSERT INTO gw_audit_chain (seq, audit_id, audit_txid, prev_hash, hash)
        VALUES (v_seq, a.id, a.txid, v_prev, h);
        ev := gen_random_uuid();
        -- Appending to a local array is amortised O(1) (an expanded array);
        -- jsonb || would copy the whole batch per entry.
        msgs := msgs || jsonb_build_object(
            'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
            'type', 'dev.gangway.audit.entry', 'subject', 'audit:' || v_seq,
            'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
            'data', jsonb_build_object(
                'seq', v_seq, 'id', a.id, 'at', gw_ts(a.at), 'actor', a.actor, 'verb', a.verb,
                'object', a.object, 'detail', a.detail, 'prev_hash', v_prev, 'hash', h));
        v_prev := h;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        INSERT INTO gw_outbox (topic, msg_key, payload, batch)
        VALUES ('gangway.audit', 'audit', to_jsonb(msgs), true);
    END IF;
    RETURN n;
END $$;
