-- Moves a run to a terminal state with its event and audit entry.
CREATE OR REPLACE FUNCTION gw_finish_run(p_id uuid, p_status text, p_reason text, p_outputs jsonb,
                                         p_actor text, p_reconcile boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old_status text;
    r gw_runs;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id;
    old_status := r.status;
    IF r.operation = 'plan' AND p_status = 'succeeded' AND r.cancel_requested_at IS NOT NULL THEN
        -- Cancelled while planning: the plan finished first; honour the cancel.
        p_status := 'cancelled';
        p_reason := coalesce(p_reason, r.cancel_reason, 'cancelled during the plan');
    ELSIF r.operation = 'plan' AND p_status = 'succeeded'
          AND coalesce(p_outputs ->> 'plan_sha256', '') !~ '^[0-9a-f]{64}$' THEN
        -- Approvers must see a plan and the apply must be bound to it.
        p_status := 'failed';
        p_reason := 'plan_missing';
    END IF;
    IF r.operation = 'plan' AND p_status = 'succeeded' AND p_outputs ? 'plan_checks' THEN
        -- The compliance gate (decision 0066): the findings stay with the run.
        UPDATE gw_runs SET plan_checks = p_outputs -> 'plan_checks' WHERE id = p_id
        RETURNING * INTO r;
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_actor, CASE WHEN r.plan_checks ->> 'passed' = 'true' THEN 'run.plan_checks_passed'
                              ELSE 'run.plan_checks_failed' END, 'run:' || r.id,
                jsonb_build_object('plan_sha256', p_outputs ->> 'plan_sha256',
                                   'findings', r.plan_checks -> 'findings'));
        IF r.plan_checks ->> 'passed' = 'false' THEN
            IF r.approval_rule ? 'plan_checks_override' THEN
                -- Only the override's approvers may let it through, and they
                -- must acknowledge the findings.
                UPDATE gw_runs SET approval_rule = approval_rule
                    || jsonb_build_object(
                           'approvals', coalesce(approval_rule -> 'plan_checks_override' -> 'approvals',
                                                 approval_rule -> 'approvals'),
                           'from_teams', coalesce(approval_rule -> 'plan_checks_override' -> 'from_teams',
                                                  '[]'::jsonb),
                           'from_roles', coalesce(approval_rule -> 'plan_checks_override' -> 'from_roles',
                                                  '[]'::jsonb))
                WHERE id = p_id RETURNING * INTO r;
            ELSE
                p_status := 'failed';
                p_reason := 'policy_check_failed';
            END IF;
        END IF;
    END IF;
    IF r.operation = 'plan' AND p_status = 'succeeded' THEN
        -- The plan is ready: now ask for approval, bound to this plan.
        UPDATE gw_runs SET status = 'pending_approval', operation = 'create',
                           attempt = attempt + 1, worker_id = NULL,
                           plan_sha256 = p_outputs ->> 'plan_sha256',
                           plan_summary = p_outputs -> 'plan',
                           approval_expires_at = clock_timestamp() + make_interval(secs =>
                               coalesce((approval_rule ->> 'expires_after_seconds')::integer, 86400)),
                           updated_at = clock_timestamp()
        WHERE id = p_id RETURNING * INTO r;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
        VALUES (r.id, r.attempt, old_status, 'pending_approval', 'plan_ready', p_actor);
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_actor, 'run.planned', 'run:' || r.id,
                jsonb_build_object('plan_sha256', r.plan_sha256, 'plan', r.plan_summary));
        PERFORM gw_webhook('approval.requested', jsonb_build_object(
            'type', 'approval.requested', 'run', gw_run_json(r),
            'text', format('Gangway: %s asks to apply %s (plan %s: %s).%s%s Decide with POST /v1/runs/%s/decisions.',
                           r.requested_by, r.action_id, left(r.plan_sha256, 12),
                           coalesce(r.plan_summary::text, 'no summary'),
                           CASE WHEN r.justification IS NULL THEN ''
                                ELSE format(' Justification: "%s".', r.justification) END,
                           -- Decision 0066: the approvers see the findings.
                           CASE WHEN r.plan_checks ->> 'passed' = 'false'
                                THEN format(' The plan FAILED its compliance checks (%s finding(s): %s); approving needs acknowledge_findings.',
                                            jsonb_array_length(r.plan_checks -> 'findings'),
                                            (SELECT string_agg(f ->> 'rule' || ' ' || (f ->> 'address'), '; ')
                                             FROM jsonb_array_elements(r.plan_checks -> 'findings') f))
                                ELSE '' END, r.id)));
        RETURN;
    END IF;
    UPDATE gw_runs SET status = p_status, reason = p_reason, outputs = coalesce(p_outputs, outputs),
                       finished_at = clock_timestamp(), updated_at = clock_timestamp(),
                       needs_reconciliation = needs_reconciliation OR p_reconcile
    WHERE id = p_id RETURNING * INTO r;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (r.id, r.attempt, old_status, p_status, p_reason, p_actor);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'run.' || p_status, 'run:' || r.id,
            jsonb_strip_nulls(jsonb_build_object('attempt', r.attempt, 'reason', p_reason,
                                                 'detail', CASE WHEN p_status = 'cancelled'
                                                                THEN r.error_message END,
                                                 'needs_reconciliation', r.needs_reconciliation)));
    IF r.step_id IS NOT NULL AND r.parent_run_id IS NOT NULL THEN
        -- A workflow's step or undo: its end may start the next (docs/workflows.md).
        -- Through EXECUTE: gw_wf_advance calls this function (migrate orders
        -- function files by their calls and refuses a cycle).
        EXECUTE 'SELECT gw_wf_advance($1, $2)' USING r.parent_run_id, p_actor;
    ELSIF r.operation = 'reconcile' THEN
        PERFORM gw_reconcile_after_run(r);
    ELSIF r.operation = 'drift' THEN
        PERFORM gw_drift_after_run(r); -- decision 0067
    ELSE
        PERFORM gw_resource_after_run(r);
        IF p_reconcile AND r.needs_reconciliation THEN
            -- The backend's reconcile step, when it has one (decision 0045).
            PERFORM gw_start_reconcile(r, p_actor);
        END IF;
    END IF;
END $$;
