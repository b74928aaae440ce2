-- The canonical encoding of an entry at chain position p_seq after p_prev:
-- fixed-order JSON text, no whitespace,
--   {"seq":N,"id":N,"at":"YYYY-MM-DDTHH:MM:SS.ffffffZ","actor":S,"verb":S,
--    "object":S,"detail":J,"prev_hash":"<64 hex>"}
-- S is a JSON string as jsonb prints it (\" \\ \b \f \n \r \t, other
-- characters below U+0020 as \u00xx, everything else verbatim), J is the
-- jsonb's own text (or null). `gangway audit verify` rebuilds this in C
-- from the raw columns; keep the two in step.
-- gw_audit_canonical_head is everything before the previous hash, which
-- the sealer computes for a whole round in one query (it does not depend
-- on the chain); gw_audit_canonical is the whole text.
CREATE OR REPLACE FUNCTION gw_audit_canonical_head(p_seq bigint, a gw_audit_log)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '{"seq":' || p_seq || ',"id":' || a.id
        || ',"at":"' || to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
        || ',"actor":' || to_jsonb(a.actor)::text
        || ',"verb":' || to_jsonb(a.verb)::text
        || ',"object":' || to_jsonb(a.object)::text
        || ',"detail":' || coalesce(a.detail::text, 'null')
        || ',"prev_hash":"'
$$;

CREATE OR REPLACE FUNCTION gw_audit_canonical(p_seq bigint, a gw_audit_log, p_prev text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT gw_audit_canonical_head(p_seq, a) || p_prev || '"}'
$$;
