-- The filter of an audit listing (GET /v1/audit and `gangway audit list`):
-- each argument left NULL matches every entry. p_verb ending in ".*" matches
-- the verbs it prefixes ("token.*": token.create, token.revoke). p_since is
-- inclusive, p_until exclusive. A plain SQL expression, so the planner
-- inlines it and still uses the object, actor and at indexes.
CREATE OR REPLACE FUNCTION gw_audit_match(a gw_audit_log, p_run text, p_actor text, p_verb text,
                                          p_since timestamptz, p_until timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (p_run IS NULL OR a.object = 'run:' || p_run)
       AND (p_actor IS NULL OR a.actor = p_actor)
       AND (p_verb IS NULL OR a.verb = p_verb
            OR (right(p_verb, 2) = '.*' AND starts_with(a.verb, left(p_verb, -1))))
       AND (p_since IS NULL OR a.at >= p_since)
       AND (p_until IS NULL OR a.at < p_until)
$$;
