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
    e record;
    v_prev text;
    h text;
    n integer := 0;
    -- The round, built in the loop and written by one INSERT each at the
    -- end: the hash chain is sequential, but a statement per entry (its
    -- executor start, a WAL record, an index descent) was most of the
    -- sealer's cost (bench/README.md, "Issue 15, part 5"). Appending to a
    -- local array is amortised O(1) (an expanded array).
    ids bigint[] := '{}';
    txids xid8[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
    msgs jsonb[] := '{}';
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('gangway.audit.seal')) THEN
        RETURN 0;
    END IF;
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    -- After a prune the head may be the anchor (gw_audit_head).
    SELECT * INTO head FROM gw_audit_head();
    v_prev := head.hash;
    -- Everything but the previous hash is computed for the whole round in
    -- this one query: the canonical text up to the hash and the message
    -- without prev_hash and hash.
    FOR e IN SELECT (l.a).id, (l.a).txid, gw_audit_canonical_head(head.seq + l.pos, l.a) AS pre,
                    jsonb_build_object(
                        'specversion', '1.0', 'id', gen_random_uuid(), 'source', 'gangway/broker',
                        'type', 'dev.gangway.audit.entry', 'subject', 'audit:' || (head.seq + l.pos),
                        'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json') AS env,
                    jsonb_build_object(
                        'seq', head.seq + l.pos, 'id', (l.a).id, 'at', gw_ts((l.a).at),
                        'actor', (l.a).actor, 'verb', (l.a).verb, 'object', (l.a).object,
                        'detail', (l.a).detail) AS data
             FROM (SELECT a, row_number() OVER (ORDER BY a.txid, a.id) AS pos FROM gw_audit_log a
                   WHERE a.txid < horizon AND (a.txid, a.id) > (head.audit_txid, head.audit_id)
                   ORDER BY a.txid, a.id LIMIT p_limit) l
             ORDER BY l.pos LOOP
        h := encode(sha256(convert_to(e.pre || v_prev || '"}', 'UTF8')), 'hex');
        ids := ids || e.id;
        txids := txids || e.txid;
        prevs := prevs || v_prev;
        hashes := hashes || h;
        msgs := msgs || (e.env || jsonb_build_object(
            'data', e.data || jsonb_build_object('prev_hash', v_prev, 'hash', h)));
        v_prev := h;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        INSERT INTO gw_audit_chain (seq, audit_id, audit_txid, prev_hash, hash)
        SELECT head.seq + c.pos, c.id, c.txid, c.prev, c.hash
        FROM unnest(ids, txids, prevs, hashes) WITH ORDINALITY AS c(id, txid, prev, hash, pos);
        INSERT INTO gw_outbox (topic, msg_key, payload, batch)
        VALUES ('gangway.audit', 'audit', to_jsonb(msgs), true);
    END IF;
    RETURN n;
END $$;
