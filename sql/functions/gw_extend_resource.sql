-- extended | pending | extension_pending | not_found | not_active | no_ttl | over_limit
-- p_justification (may be NULL): why, kept with a pending extension for its
-- approvers and in the audit entries. The three-argument form is kept.
CREATE OR REPLACE FUNCTION gw_extend_resource(p_id uuid, p_seconds integer, p_actor text,
                                              p_justification text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE plpgsql AS $$
DECLARE
    res gw_resources;
    rule jsonb;
BEGIN
    SELECT * INTO res FROM gw_resources WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    SELECT a.definition -> 'ttl' -> 'extension_approval' INTO rule
    FROM gw_runs r JOIN gw_actions a ON a.id = r.action_id AND a.version = r.action_version
    WHERE r.id = res.created_by_run;
    IF rule IS NULL OR coalesce((rule ->> 'approvals')::integer, 0) <= 0 THEN
        RETURN QUERY SELECT * FROM gw_apply_extension(res, p_seconds, p_actor, p_justification);
        RETURN;
    END IF;
    -- Needs approval: check what can be checked now, then wait.
    IF res.status <> 'active' OR res.expires_at IS NULL
       OR (res.max_expires_at IS NOT NULL
           AND res.expires_at + make_interval(secs => p_seconds) > res.max_expires_at) THEN
        RETURN QUERY SELECT * FROM gw_apply_extension(res, p_seconds, p_actor, p_justification);
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM gw_resource_extensions WHERE resource_id = res.id AND status = 'pending') THEN
        RETURN QUERY SELECT 'extension_pending'::text, gw_resource_json(res);
        RETURN;
    END IF;
    INSERT INTO gw_resource_extensions (resource_id, seconds, requested_by, rule, justification)
    VALUES (res.id, p_seconds, p_actor,
            jsonb_build_object('approvals', (rule ->> 'approvals')::integer,
                               'from_teams', coalesce(rule -> 'from_teams', '[]'),
                               'from_roles', coalesce(rule -> 'from_roles', '[]')),
            p_justification);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'resource.extend_requested', 'resource:' || res.id,
            jsonb_strip_nulls(jsonb_build_object('by_seconds', p_seconds,
                                                 'justification', p_justification)));
    PERFORM gw_webhook('extension.requested', jsonb_build_object(
        'type', 'extension.requested', 'resource', gw_resource_json(res),
        'text', format('Gangway: %s asks to extend %s "%s" by %s s.%s Decide with POST /v1/resources/%s/extension/decisions.',
                       p_actor, res.kind, res.name, p_seconds,
                       CASE WHEN p_justification IS NULL THEN ''
                            ELSE format(' Justification: "%s".', p_justification) END, res.id)));
    RETURN QUERY SELECT 'pending'::text, gw_resource_json(res);
END $$;

CREATE OR REPLACE FUNCTION gw_extend_resource(p_id uuid, p_seconds integer, p_actor text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE sql AS $$
    SELECT * FROM gw_extend_resource(p_id, p_seconds, p_actor, NULL::text)
$$;
