-- Queues a run.requested message for the run's current attempt, published
-- not before p_not_before (NULL: at once; a retry's backoff). No NOTIFY:
-- NOTIFY takes a database-wide lock from pre-commit to the end of the
-- transaction, which serialised every submission behind the previous one's
-- WAL flush (bench/README.md). The broker that commits a run now wakes its
-- own relay in-process; other replicas find rows by polling.
CREATE OR REPLACE FUNCTION gw_enqueue_run_at(r gw_runs, p_not_before timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
    t timestamptz := clock_timestamp();
BEGIN
    IF r.worker_type = 'workflow' AND r.operation IN ('create', 'teardown') THEN
        -- A workflow's own run is never claimed: it starts running here and
        -- its first steps are queued in this transaction (gw_wf_advance).
        UPDATE gw_runs SET status = 'running', wf_phase = 'forward', started_at = t,
                           heartbeat_at = t, updated_at = t
        WHERE id = r.id;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
        VALUES (r.id, r.attempt, r.status, 'running', 'workflow', 'gangway');
        -- Through EXECUTE: gw_wf_advance queues steps through this function.
        EXECUTE 'SELECT gw_wf_advance($1, $2)' USING r.id, 'gangway';
        RETURN;
    END IF;
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload, not_before)
    VALUES (ev, 'gangway.runs.' || r.worker_type, r.resource_key, gw_run_requested_event(r, ev, t),
        p_not_before);
END $$;
