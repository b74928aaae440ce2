-- The reaper's sweep: runs whose worker stopped sending heartbeats, runs far
-- past their deadline, and runs queued for too long (their message is
-- published again; a duplicate claim is refused). Shared by every broker
-- replica through SKIP LOCKED. Returns the number of runs it changed.
-- p_check_heartbeats is false while this broker's event sink is behind: then
-- a stale heartbeat may only mean events not applied yet, and nobody is
-- declared lost.
-- p_hold_types: worker types whose runs topic still holds messages their
-- workers have not consumed (the broker asks Kafka, decision 0078). Their
-- queued runs are waiting in line, not lost: none is republished, however
-- long it has waited; NULL holds every type. The sweep goes type by type
-- through gw_runs_queued_by_type, so a held type's backlog is never read.
CREATE OR REPLACE FUNCTION gw_reap(p_heartbeat_timeout interval, p_requeue_after interval, p_limit integer,
                        p_check_heartbeats boolean, p_hold_types text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    n integer := 0;
    backoff integer;
    t text;
BEGIN
    -- Every replica's sink must be current, not just this one's: events of
    -- a run may sit in a partition another replica owns.
    IF p_check_heartbeats AND NOT gw_sinks_caught_up() THEN
        p_check_heartbeats := false;
    END IF;
    IF p_check_heartbeats THEN
        FOR r IN SELECT * FROM gw_runs
                 WHERE status = 'running' AND heartbeat_at < clock_timestamp() - p_heartbeat_timeout
                   AND worker_type <> 'workflow'  -- no worker: its steps are the runs reaped
                 ORDER BY heartbeat_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
            IF r.cancel_requested_at IS NOT NULL THEN
                -- Asked to stop and gone: it is stopped, whatever it did.
                PERFORM gw_finish_run(r.id, 'cancelled', 'worker_lost_after_cancel', NULL,
                                      'reaper', NOT r.retryable);
            ELSIF r.retryable AND r.attempt < r.max_attempts THEN
                SELECT coalesce((a.definition -> 'retry' ->> 'backoff_seconds')::integer, 0)
                INTO backoff FROM gw_actions a
                WHERE a.id = r.action_id AND a.version = r.action_version;
                -- queued_at is when it may be picked up, so the requeue sweep
                -- does not undercut the backoff.
                UPDATE gw_runs SET status = 'queued', attempt = attempt + 1, worker_id = NULL,
                                   cancel_requested_at = NULL,
                                   queued_at = clock_timestamp() + make_interval(secs =>
                                       CASE WHEN coalesce(backoff, 0) = 0 THEN 0
                                            ELSE backoff * power(2, attempt - 1) END),
                                   updated_at = clock_timestamp()
                WHERE id = r.id RETURNING * INTO r;
                INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
                VALUES (r.id, r.attempt, 'running', 'queued', 'worker_lost_retry', 'reaper');
                INSERT INTO gw_audit_log (actor, verb, object, detail)
                VALUES ('reaper', 'run.retry', 'run:' || r.id,
                        jsonb_build_object('attempt', r.attempt));
                -- Exponential backoff from the action's retry.backoff_seconds.
                PERFORM gw_enqueue_run_at(r, CASE WHEN coalesce(backoff, 0) = 0 THEN NULL
                    ELSE clock_timestamp() + make_interval(secs => backoff * power(2, r.attempt - 2)) END);
            ELSE
                -- Lost mid-execution: what it did is unknown. A retryable action
                -- is idempotent by declaration; anything else needs reconciling.
                PERFORM gw_finish_run(r.id, 'failed', 'worker_lost', NULL, 'reaper', NOT r.retryable);
            END IF;
            n := n + 1;
        END LOOP;

        -- Backstop for a worker that heartbeats but never enforces the timeout.
        FOR r IN SELECT * FROM gw_runs
                 WHERE status = 'running' AND worker_type <> 'workflow'
                   AND started_at + make_interval(secs => timeout_seconds) + 2 * p_heartbeat_timeout
                       < clock_timestamp()
                 LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
            PERFORM gw_finish_run(r.id, 'timed_out', 'deadline_exceeded', NULL, 'reaper',
                                  NOT r.retryable);
            n := n + 1;
        END LOOP;
    END IF;

    -- Every worker type a run can have comes from an action (a teardown's
    -- and a workflow step's too). NULL holds every type (the broker does not
    -- know the backlogs yet).
    FOR t IN SELECT DISTINCT a.worker_type FROM gw_actions a
             WHERE a.worker_type <> ALL (p_hold_types) ORDER BY 1 LOOP
        FOR r IN SELECT * FROM gw_runs
                 WHERE status = 'queued' AND worker_type = t
                   AND queued_at < clock_timestamp() - p_requeue_after
                 ORDER BY queued_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
            UPDATE gw_runs SET queued_at = clock_timestamp() WHERE id = r.id;
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES ('reaper', 'run.requeue', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
            PERFORM gw_enqueue_run(r);
            n := n + 1;
        END LOOP;
    END LOOP;
    -- A workflow's own deadline (decision 0071): no worker enforces it.
    RETURN n + gw_reap_resources(p_limit) + gw_wf_timeouts(p_limit);
END $$;

-- Brokers of earlier versions (a rolling upgrade) hold no type.
CREATE OR REPLACE FUNCTION gw_reap(p_heartbeat_timeout interval, p_requeue_after interval, p_limit integer,
                        p_check_heartbeats boolean)
RETURNS integer LANGUAGE sql AS $$
    SELECT gw_reap(p_heartbeat_timeout, p_requeue_after, p_limit, p_check_heartbeats, '{}'::text[])
$$;
