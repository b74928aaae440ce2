-- API tokens are created and revoked with their audit entry in one
-- transaction. The actor is the database role that did it; `via` says how.
--
-- One jsonb argument with named keys (gw_args says what is wrong with it):
--   hash               sha256 hex of the secret (string, required)
--   subject            (string, required) in its canonical form (lib/gw/subject.h:
--                      "user:default/mia", not "mia"); the CLI normalises it first
--   teams, roles       (arrays of strings; default none)
--   expires_in_seconds (integer; NULL: never expires)
--   description        (string)
--   via                how it was made, e.g. "gangway cli" (string, required)
-- Returns the token's id.
CREATE OR REPLACE FUNCTION gw_token_create(p_args jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    a jsonb := gw_args(p_args, 'gw_token_create', '{
        "hash": "string!", "subject": "string!", "teams": "array?", "roles": "array?",
        "expires_in_seconds": "integer?", "description": "string?", "via": "string!"}');
    p_hash text := a ->> 'hash';
    p_subject text := a ->> 'subject';
    p_teams text[] := gw_args_texts(a, 'teams');
    p_roles text[] := gw_args_texts(a, 'roles');
    p_expires_s bigint := (a ->> 'expires_in_seconds')::bigint;
    p_description text := a ->> 'description';
    p_via text := a ->> 'via';
    t gw_api_tokens;
BEGIN
    IF p_subject IS DISTINCT FROM gw_subject_key(p_subject) THEN
        RAISE EXCEPTION 'gw_token_create: subject % is not canonical (it would be %): see docs/policy.md#subjects',
            quote_literal(p_subject), gw_subject_key(p_subject) USING ERRCODE = '22023';
    END IF;
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
