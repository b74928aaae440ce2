-- Cancels a run. Returns the outcome: cancelled (it had not started),
-- cancel_requested (running: the worker is told through gangway.control),
-- already_requested, ended, not_found. A run that had not started ends with
-- the reason given (or "cancelled by <actor>"); a running one keeps it in
-- cancel_reason until its worker's cancelled event ends it (gw_apply_events).
CREATE OR REPLACE FUNCTION gw_cancel_run(p_id uuid, p_actor text, p_reason text)
RETURNS TABLE (outcome text, run jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    ev uuid := gen_random_uuid();
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    IF r.status IN ('accepted', 'pending_approval', 'queued') THEN
        PERFORM gw_finish_run(r.id, 'cancelled', coalesce(p_reason, 'cancelled by ' || p_actor),
                              NULL, p_actor, false);
        SELECT * INTO r FROM gw_runs WHERE id = p_id;
        RETURN QUERY SELECT 'cancelled'::text, gw_run_json(r);
        RETURN;
    END IF;
    IF r.status <> 'running' THEN
        RETURN QUERY SELECT 'ended'::text, gw_run_json(r);
        RETURN;
    END IF;
    IF r.cancel_requested_at IS NOT NULL THEN
        RETURN QUERY SELECT 'already_requested'::text, gw_run_json(r);
        RETURN;
    END IF;
    IF r.worker_type = 'workflow' THEN
        -- No worker holds a workflow's run: its steps still going are
        -- cancelled and the finished ones undone (gw_wf_advance).
        UPDATE gw_runs SET cancel_requested_at = clock_timestamp(), updated_at = clock_timestamp(),
                           cancel_reason = coalesce(p_reason, 'cancelled by ' || p_actor)
        WHERE id = p_id;
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_actor, 'run.cancel_requested', 'run:' || r.id,
                jsonb_build_object('attempt', r.attempt, 'reason', p_reason));
        -- Through EXECUTE: gw_wf_advance cancels steps through this function.
        EXECUTE 'SELECT gw_wf_advance($1, $2)' USING r.id, p_actor;
        SELECT * INTO r FROM gw_runs WHERE id = p_id;
        RETURN QUERY SELECT 'cancel_requested'::text, gw_run_json(r);
        RETURN;
    END IF;
    -- The canceller's reason is kept on the run: the worker's event that
    -- ends it brings only how it stopped, which goes beside it (decision 0038).
    UPDATE gw_runs SET cancel_requested_at = clock_timestamp(), updated_at = clock_timestamp(),
                       cancel_reason = coalesce(p_reason, 'cancelled by ' || p_actor)
    WHERE id = p_id RETURNING * INTO r;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'run.cancel_requested', 'run:' || r.id,
            jsonb_build_object('attempt', r.attempt, 'reason', p_reason));
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload)
    VALUES (ev, 'gangway.control', r.id::text, jsonb_build_object(
        'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
        'type', 'dev.gangway.run.cancel', 'subject', r.id,
        'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
        'data', jsonb_build_object('run_id', r.id, 'attempt', r.attempt,
                                   'worker_type', r.worker_type, 'worker_id', r.worker_id,
                                   'reason', p_reason)));
    RETURN QUERY SELECT 'cancel_requested'::text, gw_run_json(r);
END $$;
