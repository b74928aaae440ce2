-- API tokens are created and revoked with their audit entry in one
-- transaction. The actor is the database role that did it; `via` says how.
CREATE OR REPLACE FUNCTION gw_token_create(p_hash text, p_subject text, p_teams text[], p_roles text[],
                                p_expires_s bigint, p_description text, p_via text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    t gw_api_tokens;
BEGIN
    INSERT INTO gw_api_tokens (token_hash, subject, teams, roles, expires_at, description)
    VALUES (p_hash, p_subject, coalesce(p_teams, '{}'), coalesce(p_roles, '{}'),
            now() + make_interval(secs => p_expires_s), p_description)
    RETURNING * INTO t;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('db:' || session_user, 'token.create', 'token:' || t.id,
            jsonb_strip_nulls(jsonb_build_object(
                'subject', t.subject, 'teams', to_jsonb(t.teams), 'roles', to_jsonb(t.roles),
                'expires_at', gw_ts(t.expires_at), 'description', t.description, 'via', p_via)));
    RETURN t.id;
END $$;
