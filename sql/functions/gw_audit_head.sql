-- The chain's head: its last sealed entry or, when everything was pruned,
-- the anchor (seq 0 and 64 zeros for an empty chain). The sealer continues
-- after it and the checkpointer signs it.
CREATE OR REPLACE FUNCTION gw_audit_head(OUT seq bigint, OUT hash text, OUT audit_txid xid8,
                                         OUT audit_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT * FROM (
        (SELECT c.seq, c.hash, c.audit_txid, c.audit_id FROM gw_audit_chain c
         ORDER BY c.seq DESC LIMIT 1)
        UNION ALL
        (SELECT a.through_seq, a.hash, a.audit_txid, a.audit_id FROM gw_audit_anchor a
         ORDER BY a.through_seq DESC LIMIT 1)
        UNION ALL
        SELECT 0::bigint, repeat('0', 64), '0'::xid8, 0::bigint
    ) h ORDER BY 1 DESC LIMIT 1
$$;
