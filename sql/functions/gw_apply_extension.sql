-- Applies an extension to a locked, active resource within its bounds;
-- p_justification (may be NULL) goes into the audit entry. The
-- three-argument form (no justification) is kept for callers of before.
CREATE OR REPLACE FUNCTION gw_apply_extension(res gw_resources, p_seconds integer, p_actor text,
                                              p_justification text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE plpgsql AS $$
DECLARE
    new_exp timestamptz;
BEGIN
    IF res.status <> 'active' THEN
        RETURN QUERY SELECT 'not_active'::text, gw_resource_json(res);
        RETURN;
    END IF;
    IF res.expires_at IS NULL THEN
        RETURN QUERY SELECT 'no_ttl'::text, gw_resource_json(res);
        RETURN;
    END IF;
    new_exp := res.expires_at + make_interval(secs => p_seconds);
    IF res.max_expires_at IS NOT NULL AND new_exp > res.max_expires_at THEN
        RETURN QUERY SELECT 'over_limit'::text, gw_resource_json(res);
        RETURN;
    END IF;
    UPDATE gw_resources SET expires_at = new_exp, warned_at = NULL, updated_at = clock_timestamp()
    WHERE id = res.id RETURNING * INTO res;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'resource.extend', 'resource:' || res.id,
            jsonb_strip_nulls(jsonb_build_object('by_seconds', p_seconds,
                                                 'expires_at', gw_ts(res.expires_at),
                                                 'justification', p_justification)));
    PERFORM gw_publish_resource(res, 'updated');
    RETURN QUERY SELECT 'extended'::text, gw_resource_json(res);
END $$;

CREATE OR REPLACE FUNCTION gw_apply_extension(res gw_resources, p_seconds integer, p_actor text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE sql AS $$
    SELECT * FROM gw_apply_extension(res, p_seconds, p_actor, NULL::text)
$$;
