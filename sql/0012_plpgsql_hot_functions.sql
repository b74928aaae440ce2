-- SQL-language functions that the planner cannot inline (a body with a
-- sub-select or an INSERT) are parsed and planned again at every execution
-- of the statement that calls them (fmgr_sql). gw_run_json is called on
-- every submission, claim, finish and read, so that re-planning was about
-- half of PostgreSQL's CPU per accepted run: bench/run-core phase 1 went
-- from 2,660-2,810 to 5,080 accepts/s with these as PL/pgSQL, which keeps
-- its plans for the session (bench/README.md). They build the same JSON as
-- before. gw_ts, gw_visible, gw_audit_json and gw_audit_canonical stay SQL:
-- they are single expressions the planner inlines into their callers.

CREATE OR REPLACE FUNCTION gw_run_json(r gw_runs) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    decisions jsonb;
BEGIN
    IF r.approval_rule IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'approver', a.approver, 'decision', a.decision, 'comment', a.comment,
                   'plan_sha256', a.plan_sha256, 'at', gw_ts(a.created_at)) ORDER BY a.created_at),
                   '[]'::jsonb)
          INTO decisions FROM gw_approvals a WHERE a.run_id = r.id;
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'id', r.id,
        'action', jsonb_build_object('id', r.action_id, 'version', r.action_version),
        'worker_type', r.worker_type,
        'operation', r.operation,
        'status', r.status,
        'reason', r.reason,
        'attempt', r.attempt,
        'inputs', r.inputs_redacted,
        'outputs', r.outputs,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams)),
        'idempotency_key', r.idempotency_key,
        'needs_reconciliation', r.needs_reconciliation,
        'reconciled_at', gw_ts(r.reconciled_at),
        'parent_run', r.parent_run_id,
        'resource', r.resource_id,
        'ttl_seconds', r.ttl_seconds,
        'cancel_requested_at', gw_ts(r.cancel_requested_at),
        'break_glass', CASE WHEN r.break_glass_reason IS NULL THEN NULL
                            ELSE jsonb_build_object('reason', r.break_glass_reason) END,
        'plan', CASE WHEN r.plan_sha256 IS NULL THEN NULL
                     ELSE jsonb_build_object('sha256', r.plan_sha256, 'summary', r.plan_summary) END,
        'approval', CASE WHEN r.approval_rule IS NULL THEN NULL ELSE jsonb_build_object(
            'required', r.approval_rule -> 'approvals',
            'from_teams', r.approval_rule -> 'from_teams',
            'from_roles', r.approval_rule -> 'from_roles',
            'plan_first', r.approval_rule -> 'plan_first',
            'expires_at', gw_ts(r.approval_expires_at),
            'inputs_hash', r.inputs_hash,
            'decisions', decisions) END,
        'created_at', gw_ts(r.created_at),
        'updated_at', gw_ts(r.updated_at),
        'queued_at', gw_ts(r.queued_at),
        'started_at', gw_ts(r.started_at),
        'finished_at', gw_ts(r.finished_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text));
END $$;

CREATE OR REPLACE FUNCTION gw_resource_json(r gw_resources) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    pending jsonb;
BEGIN
    SELECT jsonb_build_object(
               'id', e.id, 'seconds', e.seconds, 'requested_by', e.requested_by,
               'required', e.rule -> 'approvals', 'from_teams', e.rule -> 'from_teams',
               'from_roles', e.rule -> 'from_roles', 'requested_at', gw_ts(e.created_at),
               'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                       'approver', d.approver, 'decision', d.decision, 'comment', d.comment,
                       'at', gw_ts(d.created_at)) ORDER BY d.created_at)
                   FROM gw_extension_decisions d WHERE d.extension_id = e.id), '[]'::jsonb))
      INTO pending
      FROM gw_resource_extensions e WHERE e.resource_id = r.id AND e.status = 'pending';
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'id', r.id, 'action', r.action_id, 'kind', r.kind, 'name', r.name,
        'owner', jsonb_build_object('subject', r.owner_subject, 'teams', to_jsonb(r.owner_teams)),
        'created_by_run', r.created_by_run, 'outputs', r.outputs, 'status', r.status,
        'expires_at', gw_ts(r.expires_at), 'max_expires_at', gw_ts(r.max_expires_at),
        'teardown_run', r.teardown_run_id, 'teardown_attempts', r.teardown_attempts,
        'needs_attention', r.needs_attention,
        'pending_extension', pending,
        'created_at', gw_ts(r.created_at), 'updated_at', gw_ts(r.updated_at),
        'deleted_at', gw_ts(r.deleted_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text));
END $$;

CREATE OR REPLACE FUNCTION gw_enqueue_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gw_enqueue_run_at(r, NULL);
END $$;

CREATE OR REPLACE FUNCTION gw_webhook(p_kind text, p_payload jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gw_webhooks (kind, payload) VALUES (p_kind, p_payload);
END $$;
