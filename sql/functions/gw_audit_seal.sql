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
-- one message per entry (sql/0019_outbox_batches.sql, decision 0075),
-- written as text, a message a line (sql/0021_outbox_batch_lines.sql).
--
-- Cost (bench/run-sqlcost lifecycle, "seal"): the canonical text of the
-- whole round comes from one query; the loop adds the hashes, which are
-- sequential, and writes each message as text around that canonical text (its
-- data is the same fields plus the hash), and the round goes into the outbox
-- as that text. Building each message as jsonb (an envelope, then the data
-- and the hashes merged into it) took a third of the sealer's time
-- (bench/README.md, "Issue 15, part 6"); parsing the round into one jsonb
-- array, two thirds of what was left (part 10). A message holds no raw
-- newline: every part is JSON text (to_jsonb()::text, jsonb's own output,
-- numbers, hex), in which control characters are escaped.
-- test_sql_functions.py checks each message's data against the entry and
-- its chain row, field for field, for entries holding newlines and other
-- control characters.
CREATE OR REPLACE FUNCTION gw_audit_seal(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    horizon xid8;
    head record;
    e record;
    v_prev text;
    h text;
    n integer := 0;
    -- The round, built in the loop and written by one INSERT each at the
    -- end: a statement per entry (its executor start, a WAL record, an index
    -- descent) was most of the sealer's cost (bench/README.md, "Issue 15,
    -- part 5"). Appending to a local array is amortised O(1) (an expanded
    -- array).
    ids bigint[] := '{}';
    txids xid8[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
    msgs text[] := '{}';
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('gangway.audit.seal')) THEN
        RETURN 0;
    END IF;
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    -- After a prune the head may be the anchor (gw_audit_head).
    SELECT * INTO head FROM gw_audit_head();
    v_prev := head.hash;
    FOR e IN SELECT (l.a).id, (l.a).txid, gw_audit_canonical_head(head.seq + l.pos, l.a) AS pre
             FROM (SELECT a, row_number() OVER (ORDER BY a.txid, a.id) AS pos FROM gw_audit_log a
                   WHERE a.txid < horizon AND (a.txid, a.id) > (head.audit_txid, head.audit_id)
                   ORDER BY a.txid, a.id LIMIT p_limit) l
             ORDER BY l.pos LOOP
        h := encode(sha256(convert_to(e.pre || v_prev || '"}', 'UTF8')), 'hex');
        ids := ids || e.id;
        txids := txids || e.txid;
        prevs := prevs || v_prev;
        hashes := hashes || h;
        -- The message's data is the canonical text with the hash added (the
        -- same fields; jsonb orders keys itself when the round is parsed).
        msgs := msgs || ('{"specversion":"1.0","id":"' || gen_random_uuid()
                         || '","source":"gangway/broker","type":"dev.gangway.audit.entry"'
                         || ',"subject":"audit:' || (head.seq + n + 1) || '","time":"'
                         || gw_ts(clock_timestamp()) || '","datacontenttype":"application/json"'
                         || ',"data":' || e.pre || v_prev || '","hash":"' || h || '"}}');
        v_prev := h;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        INSERT INTO gw_audit_chain (seq, audit_id, audit_txid, prev_hash, hash)
        SELECT head.seq + c.pos, c.id, c.txid, c.prev, c.hash
        FROM unnest(ids, txids, prevs, hashes) WITH ORDINALITY AS c(id, txid, prev, hash, pos);
        INSERT INTO gw_outbox (topic, msg_key, payload, batch, lines)
        VALUES ('gangway.audit', 'audit', 'null', true, array_to_string(msgs, E'\n'));
    END IF;
    RETURN n;
END $$;
