-- A decision on a resource's pending extension.
-- recorded | approved | rejected | not_found | no_pending | self_approval |
-- not_eligible | already_decided | not_active | over_limit | no_ttl
-- p_id is the resource; p_args the decision (gw_decision_args names its keys).
CREATE OR REPLACE FUNCTION gw_decide_extension(p_id uuid, p_args jsonb)
RETURNS TABLE (outcome text, resource jsonb) AS $$
DECLARE
    dec record; -- approver, teams, roles, decision, comment
    res gw_resources;
    ext gw_resource_extensions;
    n integer;
    applied record;
BEGIN
    SELECT * INTO dec FROM gw_decision_args(p_args, 'gw_decide_extension');
    -- Under the resource's row lock, as gw_decide decides under the run's.
    SELECT * INTO res FROM gw_resources WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    SELECT * INTO ext FROM gw_resource_extensions
    WHERE resource_id = p_id AND status = 'pending' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_pending'::text, gw_resource_json(res);
        RETURN;
    END IF;
    -- Neither who asked for the extension nor the resource's owner decides
    -- on it (one's own resource), compared as canonical subjects like
    -- gw_decide (gw_subject_key).
    IF gw_subject_key(dec.approver) IN (gw_subject_key(ext.requested_by),
                                        gw_subject_key(res.owner_subject)) THEN
        RETURN QUERY SELECT 'self_approval'::text, gw_resource_json(res);
        RETURN;
    END IF;
    IF NOT ((jsonb_array_length(ext.rule -> 'from_teams') = 0
             AND jsonb_array_length(ext.rule -> 'from_roles') = 0)
            OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(ext.rule -> 'from_teams') t
                       WHERE t = ANY (coalesce(dec.teams, '{}')))
            OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(ext.rule -> 'from_roles') t
                       WHERE t = ANY (coalesce(dec.roles, '{}')))) THEN
        RETURN QUERY SELECT 'not_eligible'::text, gw_resource_json(res);
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM gw_extension_decisions d WHERE d.extension_id = ext.id
               AND gw_subject_key(d.approver) = gw_subject_key(dec.approver)) THEN
        RETURN QUERY SELECT 'already_decided'::text, gw_resource_json(res); RETURN;
    END IF;
    INSERT INTO gw_extension_decisions (extension_id, approver, decision, comment)
    VALUES (ext.id, dec.approver, dec.decision, dec.comment) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN RETURN QUERY SELECT 'already_decided'::text, gw_resource_json(res); RETURN; END IF;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (dec.approver, 'resource.extension_' || dec.decision, 'resource:' || res.id,
            jsonb_strip_nulls(jsonb_build_object('extension', ext.id, 'comment', dec.comment)));
    IF dec.decision = 'reject' THEN
        UPDATE gw_resource_extensions SET status = 'rejected', decided_at = clock_timestamp()
        WHERE id = ext.id;
        RETURN QUERY SELECT 'rejected'::text, gw_resource_json(res);
        RETURN;
    END IF;
    SELECT count(DISTINCT gw_subject_key(approver)) INTO n FROM gw_extension_decisions
    WHERE extension_id = ext.id AND decision = 'approve';
    IF n < (ext.rule ->> 'approvals')::integer THEN
        RETURN QUERY SELECT 'recorded'::text, gw_resource_json(res);
        RETURN;
    END IF;
    -- Enough approvals: apply now, bounds and state checked under the lock.
    SELECT * INTO applied FROM gw_apply_extension(res, ext.seconds, ext.requested_by, ext.justification);
    UPDATE gw_resource_extensions
    SET status = CASE WHEN applied.outcome = 'extended' THEN 'approved' ELSE 'failed' END,
        reason = CASE WHEN applied.outcome = 'extended' THEN NULL ELSE applied.outcome END,
        decided_at = clock_timestamp()
    WHERE id = ext.id;
    SELECT * INTO res FROM gw_resources WHERE id = p_id;
    RETURN QUERY SELECT CASE WHEN applied.outcome = 'extended' THEN 'approved' ELSE applied.outcome END,
                        gw_resource_json(res);
END $$ LANGUAGE plpgsql;
