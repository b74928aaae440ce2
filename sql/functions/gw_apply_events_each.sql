-- Applies a batch of worker events (a JSON array of
-- {run_id, attempt, seq, kind, worker_id, stream, line, data}) once each,
-- one event at a time in array order: gw_apply_events' general path (it
-- takes the common case for a whole batch at once and hands the rest here).
-- Events of a stale attempt or for a run that is no longer running are
-- ignored. Returns the number of events applied. started and log events
-- refresh heartbeat_at at most once a second (bench/README.md); a failed
-- run keeps its worker's message in error_message (cut at 4000 characters)
-- and, when its plan failed its compliance checks, the findings in plan_checks;
-- so does a run cancelled on request, whose reason stays the canceller's
-- (cancel_reason, gw_cancel_run).
CREATE OR REPLACE FUNCTION gw_apply_events_each(p_events jsonb) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    r gw_runs;
    n integer := 0;
    v_run uuid;
    v_attempt integer;
    v_kind text;
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(p_events) LOOP
        v_run := (e ->> 'run_id')::uuid;
        v_attempt := (e ->> 'attempt')::integer;
        v_kind := e ->> 'kind';
        IF v_kind IN ('heartbeat', 'started', 'log') THEN
            -- These change no status: no row lock (a lock is a WAL record and
            -- a dirtied page per event). A run that ends meanwhile is left
            -- alone by the guarded UPDATEs below; the event row is kept as
            -- for any run.
            SELECT * INTO r FROM gw_runs WHERE id = v_run;
        ELSE
            SELECT * INTO r FROM gw_runs WHERE id = v_run FOR UPDATE;
        END IF;
        CONTINUE WHEN NOT FOUND OR r.attempt <> v_attempt;
        IF v_kind = 'heartbeat' THEN
            IF r.status = 'running' THEN
                UPDATE gw_runs SET heartbeat_at = clock_timestamp()
                WHERE id = v_run AND coalesce(status, '') = 'running' AND attempt = v_attempt;
                n := n + 1;
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO gw_worker_events (run_id, attempt, seq, kind, stream, line, data, worker_id)
        VALUES (v_run, v_attempt, (e ->> 'seq')::integer, v_kind, e ->> 'stream', e ->> 'line',
                e -> 'data', e ->> 'worker_id')
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;  -- a duplicate delivery
        n := n + 1;
        CONTINUE WHEN r.status <> 'running';
        IF v_kind IN ('started', 'log') THEN
            -- Proof of life at most once a second: each UPDATE rewrites the
            -- whole row and its indexes (heartbeat_at is indexed).
            IF r.heartbeat_at IS NULL OR r.heartbeat_at < clock_timestamp() - interval '1 second' THEN
                UPDATE gw_runs SET heartbeat_at = clock_timestamp()
                WHERE id = v_run AND coalesce(status, '') = 'running' AND attempt = v_attempt;
            END IF;
        ELSIF v_kind = 'succeeded' THEN
            PERFORM gw_finish_run(v_run, 'succeeded', NULL,
                                  coalesce(e -> 'data' -> 'outputs', '{}'::jsonb),
                                  'worker:' || coalesce(e ->> 'worker_id', '?'), false);
        ELSIF v_kind IN ('failed', 'timed_out', 'cancelled') THEN
            IF v_kind = 'failed' OR (v_kind = 'cancelled' AND r.cancel_reason IS NOT NULL) THEN
                -- Before gw_finish_run, which reads the row, so that what it
                -- builds from the run carries the message. For a cancel
                -- someone asked for, the worker's message is the detail of
                -- how it stopped; the reason stays the canceller's.
                UPDATE gw_runs SET error_message = left(e -> 'data' ->> 'message', 4000)
                WHERE id = v_run;
            END IF;
            IF v_kind = 'failed' AND jsonb_typeof(e -> 'data' -> 'plan_checks') = 'object' THEN
                -- A plan that failed its compliance checks in a run that is
                -- not plan-first: the findings stay with the run and in the
                -- audit, as for a plan-first run's (gw_finish_run).
                UPDATE gw_runs SET plan_checks = e -> 'data' -> 'plan_checks' WHERE id = v_run;
                INSERT INTO gw_audit_log (actor, verb, object, detail)
                VALUES ('worker:' || coalesce(e ->> 'worker_id', '?'),
                        CASE WHEN e -> 'data' -> 'plan_checks' ->> 'passed' = 'true'
                             THEN 'run.plan_checks_passed' ELSE 'run.plan_checks_failed' END,
                        'run:' || v_run,
                        jsonb_build_object('findings', e -> 'data' -> 'plan_checks' -> 'findings'));
            END IF;
            PERFORM gw_finish_run(v_run, v_kind,
                                  CASE WHEN v_kind = 'cancelled' AND r.cancel_reason IS NOT NULL
                                       THEN r.cancel_reason
                                       ELSE coalesce(e -> 'data' ->> 'reason', e -> 'data' ->> 'message', v_kind) END,
                                  NULL, 'worker:' || coalesce(e ->> 'worker_id', '?'), false);
        END IF;
    END LOOP;
    RETURN n;
END $$;
