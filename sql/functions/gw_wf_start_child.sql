-- Starts one child run of workflow run `p` (docs/workflows.md): step `st`
-- (its definition object) with operation 'create', or its undo with
-- operation 'undo' (p_self: the step's outputs). Inputs are expanded from
-- the parent's inputs (the redacted copy from the redacted inputs) and the
-- finished steps' outputs `p_outs`. A step with an approval whose rule
-- matches waits in pending_approval (gw_decide queues it); anything else is
-- queued through the outbox in this transaction. Returns the child's id.
CREATE OR REPLACE FUNCTION gw_wf_start_child(p gw_runs, st jsonb, p_op text, p_outs jsonb,
                                             p_self jsonb, p_actor text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    c gw_runs;
    call jsonb := CASE WHEN p_op = 'undo' THEN st -> 'undo' ELSE st END;
    rule jsonb;
    apr jsonb;
    retry jsonb := st -> 'retry';
BEGIN
    IF p_op = 'create' AND st ? 'approval' THEN
        FOR rule IN SELECT value FROM jsonb_array_elements(st -> 'approval' -> 'rules') LOOP
            IF gw_wf_when(rule -> 'when', p.inputs, NULL) THEN
                IF coalesce((rule ->> 'approvals')::integer, 0) > 0 THEN
                    apr := jsonb_strip_nulls(jsonb_build_object(
                        'approvals', (rule ->> 'approvals')::integer,
                        'from_teams', rule -> 'from_teams', 'from_roles', rule -> 'from_roles',
                        'expires_after_seconds',
                            coalesce((st -> 'approval' ->> 'expires_after_seconds')::integer, 86400),
                        'any_rejection_rejects',
                            coalesce((st -> 'approval' ->> 'any_rejection_rejects')::boolean, true)));
                END IF;
                EXIT;
            END IF;
        END LOOP;
    END IF;
    INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                         inputs, inputs_redacted, requested_by, requested_teams, timeout_seconds,
                         max_attempts, retryable, queued_at, operation, parent_run_id, step_id,
                         resource_id, approval_rule, approval_expires_at, inputs_hash, secret_paths)
    SELECT gw_uuid_v7(), p.action_id, p.action_version, call ->> 'worker_type',
           CASE WHEN apr IS NULL THEN 'queued' ELSE 'pending_approval' END,
           p.resource_key || '/' || (st ->> 'id'), x.inputs,
           gw_wf_expand(coalesce(call -> 'inputs', '{}'::jsonb), p.inputs_redacted, p_outs, p_self),
           p.requested_by, p.requested_teams,
           coalesce((st ->> 'timeout_seconds')::integer, 600),
           CASE WHEN retry IS NULL THEN 1 ELSE coalesce((retry ->> 'max_attempts')::integer, 3) END,
           retry IS NOT NULL,
           CASE WHEN apr IS NULL THEN clock_timestamp() END, p_op, p.id, st ->> 'id', p.resource_id,
           apr,
           CASE WHEN apr IS NULL THEN NULL ELSE clock_timestamp() + make_interval(secs =>
               (apr ->> 'expires_after_seconds')::integer) END,
           encode(sha256(convert_to(x.inputs::text, 'UTF8')), 'hex'),
           gw_wf_secret_paths(coalesce(call -> 'inputs', '{}'::jsonb), p.secret_paths, '')
    FROM (SELECT gw_wf_expand(coalesce(call -> 'inputs', '{}'::jsonb), p.inputs, p_outs, p_self)
                 AS inputs) x
    RETURNING * INTO c;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (c.id, 1, NULL, 'accepted', 'step:' || c.step_id, p_actor),
           (c.id, 1, 'accepted', c.status, 'step:' || c.step_id, 'gangway');
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('gangway', CASE WHEN p_op = 'undo' THEN 'run.undo_started' ELSE 'run.step_started' END,
            'run:' || p.id,
            jsonb_build_object('step', c.step_id, 'run', c.id, 'status', c.status,
                               'inputs', c.inputs_redacted));
    IF apr IS NULL THEN
        PERFORM gw_enqueue_run(c);
    ELSE
        PERFORM gw_webhook('approval.requested', jsonb_build_object(
            'type', 'approval.requested', 'run', gw_run_json(c),
            'text', format('Gangway: step %s of %s (run %s) waits for %s approval(s). Decide with POST /v1/runs/%s/decisions.',
                           c.step_id, p.action_id, p.id, apr -> 'approvals', c.id)));
    END IF;
    RETURN c.id;
END $$;
