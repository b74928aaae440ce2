-- An entry as GET /v1/audit shows it; seq, hash and prev_hash are null
-- until it is sealed.
CREATE OR REPLACE FUNCTION gw_audit_json(a gw_audit_log, c gw_audit_chain) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.id, 'at', gw_ts(a.at), 'actor', a.actor, 'verb', a.verb, 'object', a.object,
        'detail', a.detail, 'seq', c.seq, 'prev_hash', c.prev_hash, 'hash', c.hash,
        'sealed_at', gw_ts(c.sealed_at))
$$;
