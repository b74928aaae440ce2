-- Extensions that need approval. An action whose ttl has
-- "extension_approval" turns POST /v1/resources/{id}/extend into a request:
-- one pending extension per resource, decided like a run's approval
-- (distinct approvers from the named teams or roles, never the requester),
-- and applied under the resource's row lock when approved, with the bounds
-- checked again at that moment — so an approval racing the expiry never
-- revives a resource that is already being torn down.

CREATE TABLE gw_resource_extensions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id  uuid        NOT NULL REFERENCES gw_resources (id),
    seconds      integer     NOT NULL,
    requested_by text        NOT NULL,
    rule         jsonb       NOT NULL,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN (
                     'pending', 'approved', 'rejected', 'failed')),
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_at   timestamptz
);
CREATE UNIQUE INDEX gw_resource_extensions_one_pending ON gw_resource_extensions (resource_id)
    WHERE status = 'pending';

CREATE TABLE gw_extension_decisions (
    extension_id uuid        NOT NULL REFERENCES gw_resource_extensions (id),
    approver     text        NOT NULL,
    decision     text        NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment      text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (extension_id, approver)
);

CREATE OR REPLACE FUNCTION gw_resource_json(r gw_resources) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'id', r.id, 'action', r.action_id, 'kind', r.kind, 'name', r.name,
        'owner', jsonb_build_object('subject', r.owner_subject, 'teams', to_jsonb(r.owner_teams)),
        'created_by_run', r.created_by_run, 'outputs', r.outputs, 'status', r.status,
        'expires_at', gw_ts(r.expires_at), 'max_expires_at', gw_ts(r.max_expires_at),
        'teardown_run', r.teardown_run_id, 'teardown_attempts', r.teardown_attempts,
        'needs_attention', r.needs_attention,
        'pending_extension', (SELECT jsonb_build_object(
                'id', e.id, 'seconds', e.seconds, 'requested_by', e.requested_by,
                'required', e.rule -> 'approvals', 'from_teams', e.rule -> 'from_teams',
                'from_roles', e.rule -> 'from_roles', 'requested_at', gw_ts(e.created_at),
                'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'approver', d.approver, 'decision', d.decision, 'comment', d.comment,
                        'at', gw_ts(d.created_at)) ORDER BY d.created_at)
                    FROM gw_extension_decisions d WHERE d.extension_id = e.id), '[]'::jsonb))
            FROM gw_resource_extensions e WHERE e.resource_id = r.id AND e.status = 'pending'),
        'created_at', gw_ts(r.created_at), 'updated_at', gw_ts(r.updated_at),
        'deleted_at', gw_ts(r.deleted_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text))
$$;

-- Applies an extension to a locked, active resource within its bounds.
CREATE FUNCTION gw_apply_extension(res gw_resources, p_seconds integer, p_actor text)
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
            jsonb_build_object('by_seconds', p_seconds, 'expires_at', gw_ts(res.expires_at)));
    PERFORM gw_publish_resource(res, 'updated');
    RETURN QUERY SELECT 'extended'::text, gw_resource_json(res);
END $$;

-- extended | pending | extension_pending | not_found | not_active | no_ttl | over_limit
CREATE OR REPLACE FUNCTION gw_extend_resource(p_id uuid, p_seconds integer, p_actor text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE plpgsql AS $$
DECLARE
    res gw_resources;
    rule jsonb;
BEGIN
    SELECT * INTO res FROM gw_resources WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    SELECT a.definition -> 'ttl' -> 'extension_approval' INTO rule
    FROM gw_runs r JOIN gw_actions a ON a.id = r.action_id AND a.version = r.action_version
    WHERE r.id = res.created_by_run;
    IF rule IS NULL OR coalesce((rule ->> 'approvals')::integer, 0) <= 0 THEN
        RETURN QUERY SELECT * FROM gw_apply_extension(res, p_seconds, p_actor);
        RETURN;
    END IF;
    -- Needs approval: check what can be checked now, then wait.
    IF res.status <> 'active' OR res.expires_at IS NULL
       OR (res.max_expires_at IS NOT NULL
           AND res.expires_at + make_interval(secs => p_seconds) > res.max_expires_at) THEN
        RETURN QUERY SELECT * FROM gw_apply_extension(res, p_seconds, p_actor);
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM gw_resource_extensions WHERE resource_id = res.id AND status = 'pending') THEN
        RETURN QUERY SELECT 'extension_pending'::text, gw_resource_json(res);
        RETURN;
    END IF;
    INSERT INTO gw_resource_extensions (resource_id, seconds, requested_by, rule)
    VALUES (res.id, p_seconds, p_actor,
            jsonb_build_object('approvals', (rule ->> 'approvals')::integer,
                               'from_teams', coalesce(rule -> 'from_teams', '[]'),
                               'from_roles', coalesce(rule -> 'from_roles', '[]')));
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'resource.extend_requested', 'resource:' || res.id,
            jsonb_build_object('by_seconds', p_seconds));
    PERFORM gw_webhook('extension.requested', jsonb_build_object(
        'type', 'extension.requested', 'resource', gw_resource_json(res),
        'text', format('Gangway: %s asks to extend %s "%s" by %s s. Decide with POST /v1/resources/%s/extension/decisions.',
                       p_actor, res.kind, res.name, p_seconds, res.id)));
    RETURN QUERY SELECT 'pending'::text, gw_resource_json(res);
END $$;

-- A decision on a resource's pending extension.
-- recorded | approved | rejected | not_found | no_pending | self_approval |
-- not_eligible | already_decided | not_active | over_limit | no_ttl
CREATE FUNCTION gw_decide_extension(p_id uuid, p_approver text, p_teams text[], p_roles text[],
                                    p_decision text, p_comment text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE plpgsql AS $$
DECLARE
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
