-- Starts the reconcile step of a run just flagged needs_reconciliation
-- (decision 0045), when its backend has one: a child run with operation
-- 'reconcile' of the same action, inputs and resource key, through the
-- normal outbox and Kafka path. Read-only by contract, so it may be retried
-- like any retryable run. Returns the child's id, or NULL when the backend
-- has no reconcile step (the operator's POST /v1/runs/{id}/reconcile is then
-- the only way).
CREATE OR REPLACE FUNCTION gw_start_reconcile(p gw_runs, p_actor text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    child gw_runs;
    new_id uuid := gw_uuid_v7();
BEGIN
    -- Backends that can tell what happened without changing anything.
    IF p.worker_type NOT IN ('terraform') OR p.operation = 'reconcile' THEN
        RETURN NULL;
    END IF;
    INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                         inputs, inputs_redacted, requested_by, requested_teams, timeout_seconds,
                         max_attempts, retryable, queued_at, secret_paths, operation,
                         parent_run_id, resource_id)
    VALUES (new_id, p.action_id, p.action_version, p.worker_type, 'queued', p.resource_key,
            p.inputs, p.inputs_redacted, p.requested_by, p.requested_teams, p.timeout_seconds,
            3, true, clock_timestamp(), p.secret_paths, 'reconcile', p.id, p.resource_id)
    RETURNING * INTO child;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (new_id, 1, NULL, 'accepted', 'reconcile', p_actor),
           (new_id, 1, 'accepted', 'queued', 'reconcile', 'gangway');
    UPDATE gw_runs SET reconcile_run_id = new_id, updated_at = clock_timestamp() WHERE id = p.id;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('gangway', 'run.reconcile_started', 'run:' || p.id,
            jsonb_build_object('reconcile_run', new_id));
    PERFORM gw_enqueue_run(child);
    RETURN new_id;
END $$;
