-- A decision on a resource's pending extension.
-- recorded | approved | rejected | not_found | no_pending | self_approval |
-- not_eligible | already_decided | not_active | over_limit | no_ttl
--
-- p_id is the resource; p_args the decision, with named keys (gw_args says what
-- is wrong with them):
--   approver           who decides (string, required)
--   teams, roles       the approver's (arrays of strings; default none)
--   decision           "approve" or "reject" (string, required)
--   comment            (string)
CREATE OR REPLACE FUNCTION gw_decide_extension(p_id uuid, p_args jsonb)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE plpgsql AS $$
DECLARE
    a jsonb := gw_args(p_args, 'gw_decide_extension', '{
        "approver": "string!", "teams": "array?", "roles": "array?", "decision": "string!",
        "comment": "string?"}');
    p_approver text := a ->> 'approver';
    p_teams text[] := gw_args_texts(a, 'teams');
    p_roles text[] := gw_args_texts(a, 'roles');
    p_decision text := a ->> 'decision';
    p_comment text := a ->> 'comment';
    res gw_resources;
    ext gw_resource_extensions;
    n integer;
    applied record;
BEGIN
    SELECT * INTO res FROM gw_resources WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    SELECT * INTO ext FROM gw_resource_extensions
    WHERE resource_id = p_id AND status = 'pending' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_pending'::text, gw_resource_json(res);
        RETURN;
    END IF;
    IF ext.requested_by = p_approver THEN
        RETURN QUERY SELECT 'self_approval'::text, gw_resource_json(res);
        RETURN;
    END IF;
    IF NOT ((jsonb_array_length(ext.rule -> 'from_teams') = 0
             AND jsonb_array_length(ext.rule -> 'from_roles') = 0)
            OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(ext.rule -> 'from_teams') t
                       WHERE t = ANY (coalesce(p_teams, '{}')))
            OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(ext.rule -> 'from_roles') t
                       WHERE t = ANY (coalesce(p_roles, '{}')))) THEN
        RETURN QUERY SELECT 'not_eligible'::text, gw_resource_json(res);
        RETURN;
    END IF;
    INSERT INTO gw_extension_decisions (extension_id, approver, decision, comment)
    VALUES (ext.id, p_approver, p_decision, p_comment) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'already_decided'::text, gw_resource_json(res);
        RETURN;
    END IF;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_approver, 'resource.extension_' || p_decision, 'resource:' || res.id,
            jsonb_strip_nulls(jsonb_build_object('extension', ext.id, 'comment', p_comment)));
    IF p_decision = 'reject' THEN
        UPDATE gw_resource_extensions SET status = 'rejected', decided_at = clock_timestamp()
        WHERE id = ext.id;
        RETURN QUERY SELECT 'rejected'::text, gw_resource_json(res);
        RETURN;
    END IF;
    SELECT count(*) INTO n FROM gw_extension_decisions WHERE extension_id = ext.id AND decision = 'approve';
    IF n < (ext.rule ->> 'approvals')::integer THEN
        RETURN QUERY SELECT 'recorded'::text, gw_resource_json(res);
        RETURN;
    END IF;
    -- Enough approvals: apply now, bounds and state checked under the lock.
    SELECT * INTO applied FROM gw_apply_extension(res, ext.seconds, ext.requested_by);
    UPDATE gw_resource_extensions
    SET status = CASE WHEN applied.outcome = 'extended' THEN 'approved' ELSE 'failed' END,
        reason = CASE WHEN applied.outcome = 'extended' THEN NULL ELSE applied.outcome END,
        decided_at = clock_timestamp()
    WHERE id = ext.id;
    SELECT * INTO res FROM gw_resources WHERE id = p_id;
    RETURN QUERY SELECT CASE WHEN applied.outcome = 'extended' THEN 'approved' ELSE applied.outcome END,
                        gw_resource_json(res);
END $$;
