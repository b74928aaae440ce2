-- POST /v1/runs/{id}/resume (docs/workflows.md#resume): a failed (or timed
-- out) workflow runs again from where it stopped. Its steps that succeeded
-- and were not undone keep their runs and outputs; the failed step and any
-- step undone run again. Outcomes: resumed | not_found | not_workflow |
-- step_run (a step of a workflow: resume its parent_run) | not_failed |
-- needs_reconciliation (an undo failed: what exists is unknown) |
-- secrets_dropped (its secret inputs were dropped when it ended and
-- p_inputs does not give them again).
-- p_inputs (NULL: none given): the run's whole inputs with its secret
-- inputs given again, built and checked against the action's input schema
-- by the broker (api_resources.c) from the redacted copy; it replaces the
-- inputs the steps are fed from (decision 0071).
-- The default keeps the two-argument call of brokers older than decision
-- 0071 working during a rolling upgrade (migrate runs first, docs/deploy.md);
-- the old two-argument function must go, or that call would be ambiguous.
DROP FUNCTION IF EXISTS gw_wf_resume(uuid, text);
CREATE OR REPLACE FUNCTION gw_wf_resume(p_id uuid, p_actor text, p_inputs jsonb DEFAULT NULL)
RETURNS TABLE (outcome text, run jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    t timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    IF r.worker_type <> 'workflow' THEN
        RETURN QUERY SELECT CASE WHEN r.parent_run_id IS NOT NULL AND r.step_id IS NOT NULL
                                 THEN 'step_run' ELSE 'not_workflow' END, gw_run_json(r);
        RETURN;
    END IF;
    IF r.status NOT IN ('failed', 'timed_out') THEN
        RETURN QUERY SELECT 'not_failed'::text, gw_run_json(r); RETURN;
    END IF;
    IF r.secrets_dropped_at IS NOT NULL AND p_inputs IS NULL THEN
        -- Its secret inputs went when it ended (decision 0020): the steps
        -- would get the redacted values. The caller must give them again.
        RETURN QUERY SELECT 'secrets_dropped'::text, gw_run_json(r); RETURN;
    END IF;
    IF r.needs_reconciliation THEN
        RETURN QUERY SELECT 'needs_reconciliation'::text, gw_run_json(r); RETURN;
    END IF;
    -- started_at marks the resume: gw_wf_advance ignores the failed and
    -- cancelled step runs from before it; the workflow's own deadline
    -- counts from it again.
    UPDATE gw_runs SET status = 'running', wf_phase = 'forward', wf_failed_step = NULL,
                       wf_skipped = NULL, compensated = NULL, reason = NULL,
                       error_message = NULL, finished_at = NULL, started_at = t,
                       heartbeat_at = t, updated_at = t, wf_timed_out_at = NULL,
                       inputs = coalesce(p_inputs, inputs),
                       secrets_dropped_at = CASE WHEN p_inputs IS NULL THEN secrets_dropped_at END
    WHERE id = p_id;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (r.id, r.attempt, r.status, 'running', 'resumed', p_actor);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'run.resume', 'run:' || r.id,
            jsonb_strip_nulls(jsonb_build_object('failed_step', r.wf_failed_step,
                'from_status', r.status,
                'secret_inputs_given', CASE WHEN p_inputs IS NOT NULL THEN r.secret_paths END)));
    PERFORM gw_wf_advance(r.id, p_actor);
    SELECT * INTO r FROM gw_runs WHERE id = p_id;
    RETURN QUERY SELECT 'resumed'::text, gw_run_json(r);
END $$;
