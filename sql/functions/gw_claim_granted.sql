-- The claim gw_claim_run grants for run `r`, already running for
-- `p_worker`; `p_new` when this claim made it running (its event, audit
-- entry and the worker type's last-seen mark are written then, not on a
-- repeated claim). The claim says which operation to run: a teardown gets
-- the action's backend config with its "teardown.backend" overrides and the
-- resource; a plan run gets operation "plan"; the approved apply gets the
-- plan it must apply; a workflow's step or undo gets that call's backend.
CREATE OR REPLACE FUNCTION gw_claim_granted(r gw_runs, p_worker text, p_new boolean)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    a gw_actions;
    res gw_resources;
    backend jsonb;
BEGIN
    IF p_new THEN
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
    RETURN QUERY SELECT 'granted'::text, gw_claim_doc(r, backend, CASE WHEN res.id IS NULL THEN NULL
        ELSE jsonb_build_object('id', res.id, 'kind', res.kind, 'name', res.name,
                                'outputs', res.outputs) END);
END $$;
