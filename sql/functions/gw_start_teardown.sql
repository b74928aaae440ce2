-- Starts a teardown child run of `res` (locked by the caller).
CREATE OR REPLACE FUNCTION gw_start_teardown(res gw_resources, p_actor text, p_why text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    parent gw_runs;
    child gw_runs;
    new_id uuid := gw_uuid_v7();
BEGIN
    SELECT * INTO parent FROM gw_runs WHERE id = res.created_by_run;
    INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                         inputs, inputs_redacted, requested_by, requested_teams, timeout_seconds,
                         max_attempts, retryable, queued_at, secret_paths, operation,
                         parent_run_id, resource_id)
    VALUES (new_id, parent.action_id, parent.action_version, parent.worker_type, 'queued',
            parent.resource_key, parent.inputs, parent.inputs_redacted, res.owner_subject,
            res.owner_teams, parent.timeout_seconds, 1, false, clock_timestamp(),
            parent.secret_paths, 'teardown', parent.id, res.id)
    RETURNING * INTO child;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (new_id, 1, NULL, 'accepted', p_why, p_actor),
           (new_id, 1, 'accepted', 'queued', p_why, 'gangway');
    UPDATE gw_resources SET status = 'tearing_down', teardown_run_id = new_id,
                            teardown_attempts = teardown_attempts + 1, next_teardown_at = NULL,
                            updated_at = clock_timestamp()
    WHERE id = res.id RETURNING * INTO res;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'resource.teardown', 'resource:' || res.id,
            jsonb_build_object('run', new_id, 'why', p_why, 'attempt', res.teardown_attempts));
    PERFORM gw_enqueue_run(child);
    PERFORM gw_publish_resource(res, 'updated');
    RETURN new_id;
END $$;
