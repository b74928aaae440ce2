-- Starts the drift checks that are due (issue 17, decision 0067), called by
-- every broker's reaper tick; rows taken with SKIP LOCKED so replicas share.
-- A live terraform or git resource whose action (its latest loaded definition)
-- declares drift.interval_seconds is first scheduled at a jittered point
-- within one interval, then checked every interval (jittered 80-100 %, so
-- checks of resources created together spread out and never come later than
-- one interval). At most p_max_per_type drift runs of a worker type are
-- active at once; a resource whose check is still active is not checked
-- again. Each check is a child run of the run that created the resource,
-- operation 'drift', through the outbox like every run. Returns how many
-- checks it started.
CREATE OR REPLACE FUNCTION gw_drift_due(p_max_per_type integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    rec record;
    p gw_runs;
    child gw_runs;
    new_id uuid;
    active integer;
    started integer := 0;
BEGIN
    FOR rec IN
        -- The actions whose latest definition asks for drift checks (a small
        -- table), then their live resources by the action index: a catalog
        -- without drift costs one look at gw_actions per tick.
        WITH drift_actions AS (
            SELECT id, interval_s FROM (
                SELECT DISTINCT ON (id) id,
                       CASE WHEN jsonb_typeof(definition #> '{drift,interval_seconds}') = 'number'
                            THEN (definition #>> '{drift,interval_seconds}')::integer END AS interval_s
                FROM gw_actions ORDER BY id, loaded_at DESC) latest
            WHERE interval_s IS NOT NULL)
        SELECT r.id, r.worker_type, r.drift_next_at, r.drift_run_id, r.created_by_run, a.interval_s
        FROM drift_actions a
        JOIN gw_resources r ON r.action_id = a.id AND r.status <> 'deleted'
        WHERE r.status = 'active' AND r.worker_type IN ('terraform', 'git')
          AND (r.drift_next_at IS NULL OR r.drift_next_at <= clock_timestamp())
        ORDER BY r.drift_next_at NULLS FIRST
        LIMIT 100
        FOR UPDATE OF r SKIP LOCKED
    LOOP
        IF rec.drift_next_at IS NULL THEN
            UPDATE gw_resources
            SET drift_next_at = clock_timestamp()
                                + make_interval(secs => rec.interval_s * (0.5 + 0.5 * random()))
            WHERE id = rec.id;
            CONTINUE;
        END IF;
        IF rec.drift_run_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM gw_runs d WHERE d.id = rec.drift_run_id
                AND d.status IN ('accepted', 'queued', 'running')) THEN
            CONTINUE;
        END IF;
        -- Active runs are few (gw_runs_active_by_action, migration 0010).
        SELECT count(*) INTO active FROM gw_runs
        WHERE status IN ('accepted', 'pending_approval', 'queued', 'running')
          AND operation = 'drift' AND worker_type = rec.worker_type;
        IF active >= p_max_per_type THEN
            CONTINUE; -- due, and taken at a later tick
        END IF;
        SELECT * INTO p FROM gw_runs WHERE id = rec.created_by_run;
        new_id := gw_uuid_v7();
        INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                             inputs, inputs_redacted, requested_by, requested_teams,
                             timeout_seconds, max_attempts, retryable, queued_at, secret_paths,
                             operation, parent_run_id, resource_id)
        VALUES (new_id, p.action_id, p.action_version, p.worker_type, 'queued', p.resource_key,
                p.inputs, p.inputs_redacted, p.requested_by, p.requested_teams,
                p.timeout_seconds, 1, false, clock_timestamp(), p.secret_paths, 'drift', p.id,
                rec.id)
        RETURNING * INTO child;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
        VALUES (new_id, 1, NULL, 'accepted', 'drift', 'gangway'),
               (new_id, 1, 'accepted', 'queued', 'drift', 'gangway');
        UPDATE gw_resources
        SET drift_run_id = new_id,
            drift_next_at = clock_timestamp()
                            + make_interval(secs => rec.interval_s * (0.8 + 0.2 * random()))
        WHERE id = rec.id;
        PERFORM gw_enqueue_run(child);
        started := started + 1;
    END LOOP;
    RETURN started;
END $$;
