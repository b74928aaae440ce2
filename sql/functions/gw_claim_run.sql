-- Grants a worker's claim: queued -> running only for the current attempt
-- and the worker type the run is for; a repeated claim by the same worker is
-- granted again (a lost reply does not strand the run).
-- result: granted | not_found | stale_attempt | cancelled | already_claimed | ended | not_approved
-- The claim says which operation to run: a teardown gets the action's
-- backend config with its "teardown.backend" overrides and the resource; a
-- plan run gets operation "plan"; the approved apply gets the plan it must
-- apply.
CREATE OR REPLACE FUNCTION gw_claim_run(p_id uuid, p_attempt integer, p_worker text, p_worker_type text)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    a gw_actions;
    res gw_resources;
    backend jsonb;
    regrant boolean := false;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    IF r.attempt <> p_attempt THEN
        RETURN QUERY SELECT 'stale_attempt'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF p_worker_type IS NOT NULL AND p_worker_type <> r.worker_type THEN
        RETURN QUERY SELECT 'wrong_worker_type'::text, NULL::jsonb;
        RETURN;
    END IF;
    -- The same worker asking again for the same attempt: its first reply was
    -- lost. Grant it again (no new transition) instead of stranding the run.
    IF r.status = 'running' AND r.worker_id = p_worker THEN
        regrant := true;
    ELSIF r.status <> 'queued' THEN
        RETURN QUERY SELECT (CASE r.status
            WHEN 'running' THEN 'already_claimed'
            WHEN 'cancelled' THEN 'cancelled'
            WHEN 'pending_approval' THEN 'not_approved'
            WHEN 'accepted' THEN 'not_approved'
            ELSE 'ended' END)::text, NULL::jsonb;
        RETURN;
    END IF;
    IF NOT regrant THEN
        UPDATE gw_runs SET status = 'running', worker_id = p_worker, started_at = clock_timestamp(),
                           heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = p_id RETURNING * INTO r;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, detail)
        VALUES (r.id, r.attempt, 'queued', 'running', 'worker:' || p_worker, NULL);
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES ('worker:' || p_worker, 'run.claim', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
        PERFORM gw_worker_seen(r.worker_type, p_worker);
    END IF;
    SELECT * INTO a FROM gw_actions WHERE id = r.action_id AND version = r.action_version;
    IF r.resource_id IS NOT NULL THEN
        SELECT * INTO res FROM gw_resources WHERE id = r.resource_id;
    END IF;
    backend := a.definition -> 'backend';
    IF r.step_id IS NOT NULL THEN
        -- A workflow's step or undo: that call's backend (docs/workflows.md).
        SELECT CASE WHEN r.operation = 'undo' THEN s.value -> 'undo' -> 'backend'
                    ELSE s.value -> 'backend' END
        INTO backend FROM jsonb_array_elements(a.definition -> 'steps') s
        WHERE s.value ->> 'id' = r.step_id;
    ELSIF r.operation = 'teardown' OR (r.operation = 'reconcile' AND EXISTS (
            SELECT 1 FROM gw_runs p WHERE p.id = r.parent_run_id AND p.operation = 'teardown')) THEN
        -- A reconcile step checks what its run did: a teardown's overrides.
        backend := backend || coalesce(a.definition -> 'teardown' -> 'backend', '{}');
    ELSIF r.operation = 'plan' THEN
        backend := backend || '{"operation": "plan"}';
    ELSIF r.plan_sha256 IS NOT NULL THEN
        backend := backend || jsonb_build_object('plan_sha256', r.plan_sha256);
    END IF;
    RETURN QUERY SELECT 'granted'::text, jsonb_strip_nulls(jsonb_build_object(
        'run_id', r.id, 'attempt', r.attempt, 'fence', r.attempt,
        'operation', r.operation,
        'resource_key', r.resource_key,
        'resource', CASE WHEN res.id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', res.id, 'kind', res.kind, 'name', res.name, 'outputs', res.outputs) END,
        'action', jsonb_build_object('id', a.id, 'version', a.version, 'worker_type', r.worker_type,
                                     'timeout_seconds', r.timeout_seconds, 'backend', backend),
        'inputs', r.inputs,
        'secret_paths', r.secret_paths,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams))));
END $$;
