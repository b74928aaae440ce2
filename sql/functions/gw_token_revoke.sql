-- Returns false when there is no active token with that id (nothing audited).
CREATE OR REPLACE FUNCTION gw_token_revoke(p_id uuid, p_via text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    t gw_api_tokens;
BEGIN
    UPDATE gw_api_tokens SET revoked_at = now() WHERE id = p_id AND revoked_at IS NULL
    RETURNING * INTO t;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('db:' || session_user, 'token.revoke', 'token:' || t.id,
            jsonb_strip_nulls(jsonb_build_object('subject', t.subject, 'via', p_via)));
    RETURN true;
END $$;
