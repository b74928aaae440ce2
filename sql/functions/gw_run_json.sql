-- The run as the API shows it.
--
-- PL/pgSQL, not SQL: an SQL-language function that the planner cannot
-- inline (a body with a sub-select or an INSERT) is parsed and planned again
-- at every execution of the statement that calls it (fmgr_sql). gw_run_json
-- is called on every submission, claim, finish and read, so that re-planning
-- was about half of PostgreSQL's CPU per accepted run: bench/run-core phase 1
-- went from 2,660-2,810 to 5,080 accepts/s (bench/README.md). gw_ts,
-- gw_visible, gw_audit_json and gw_audit_canonical stay SQL: they are single
-- expressions the planner inlines into their callers.
--
-- The RETURN expression holds no sub-select (the steps and the decisions
-- are read into variables first, only for the runs that have them): an
-- expression with a sub-select leaves PL/pgSQL's simple-expression path and
-- goes through the executor's start and end at every call: 194 -> 42 µs a
-- call (10,000 queued runs on a scratch database).
CREATE OR REPLACE FUNCTION gw_run_json(r gw_runs) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    decisions jsonb;
    counted integer;
    steps jsonb;
BEGIN
    IF r.worker_type = 'workflow' THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.step_id, 'run_id', c.id,
                                                     'status', c.status, 'operation', c.operation)
                                  ORDER BY c.created_at), '[]'::jsonb)
          INTO steps FROM gw_runs c WHERE c.parent_run_id = r.id AND c.step_id IS NOT NULL;
    END IF;
    IF r.approval_rule IS NOT NULL THEN
        -- `counted` is gw_decide's count: approvals for these exact inputs
        -- (and this exact plan), so `remaining` says what still has to come.
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'approver', a.approver, 'decision', a.decision, 'comment', a.comment,
                   'plan_sha256', a.plan_sha256, 'at', gw_ts(a.created_at)) ORDER BY a.created_at),
                   '[]'::jsonb),
               count(*) FILTER (WHERE a.decision = 'approve' AND a.inputs_hash = r.inputs_hash
                                AND a.plan_sha256 IS NOT DISTINCT FROM r.plan_sha256)
          INTO decisions, counted FROM gw_approvals a WHERE a.run_id = r.id;
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'id', r.id,
        'action', jsonb_build_object('id', r.action_id, 'version', r.action_version),
        'worker_type', r.worker_type,
        'operation', r.operation,
        'status', r.status,
        'reason', r.reason,
        'error', CASE WHEN r.status <> 'failed' OR r.error_message IS NULL THEN NULL
                      ELSE jsonb_build_object('code', r.reason, 'message', r.error_message) END,
        'attempt', r.attempt,
        'inputs', r.inputs_redacted,
        'outputs', r.outputs,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams)),
        'idempotency_key', r.idempotency_key,
        'needs_reconciliation', r.needs_reconciliation,
        'reconciled_at', gw_ts(r.reconciled_at),
        'reconcile_run', r.reconcile_run_id,
        'reconcile_drift', r.reconcile_drift,
        'parent_run', r.parent_run_id,
        'step', r.step_id,
        'steps', steps,
        'skipped_steps', to_jsonb(r.wf_skipped),
        'failed_step', r.wf_failed_step,
        'compensated', r.compensated,
        'resource', r.resource_id,
        'ttl_seconds', r.ttl_seconds,
        'justification', r.justification,
        'secret_inputs', CASE WHEN r.secret_paths = '[]'::jsonb THEN NULL ELSE r.secret_paths END,
        'cancel_requested_at', gw_ts(r.cancel_requested_at),
        'cancel_reason', r.cancel_reason,
        'cancel_detail', CASE WHEN r.status = 'cancelled' THEN r.error_message END,
        'break_glass', CASE WHEN r.break_glass_reason IS NULL THEN NULL
                            ELSE jsonb_build_object('reason', r.break_glass_reason) END,
        'plan', CASE WHEN r.plan_sha256 IS NULL THEN NULL
                     ELSE jsonb_build_object('sha256', r.plan_sha256, 'summary', r.plan_summary) END,
        'plan_checks', r.plan_checks,
        'approval', CASE WHEN r.approval_rule IS NULL THEN NULL ELSE jsonb_build_object(
            'required', r.approval_rule -> 'approvals',
            'from_teams', r.approval_rule -> 'from_teams',
            'from_roles', r.approval_rule -> 'from_roles',
            'plan_first', r.approval_rule -> 'plan_first',
            -- Findings of a failed compliance check: approving needs
            -- acknowledge_findings (gw_decide).
            'findings_to_acknowledge', CASE WHEN r.plan_checks ->> 'passed' = 'false'
                                            THEN true END,
            'expires_at', gw_ts(r.approval_expires_at),
            -- Approvals still needed from the rule's teams or roles: 0 once
            -- approved; while the plan of a plan-first run is being made,
            -- what the plan will need.
            'remaining', greatest(coalesce((r.approval_rule ->> 'approvals')::integer, 1)
                                  - counted, 0),
            'inputs_hash', r.inputs_hash,
            'decisions', decisions) END,
        'created_at', gw_ts(r.created_at),
        'updated_at', gw_ts(r.updated_at),
        'queued_at', gw_ts(r.queued_at),
        'started_at', gw_ts(r.started_at),
        'finished_at', gw_ts(r.finished_at),
        'warnings', gw_run_warnings(r),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text));
END $$;
