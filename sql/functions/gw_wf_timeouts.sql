-- A workflow's own timeout_seconds (docs/workflows.md#timeout, decision
-- 0071), enforced by the reaper's sweep (gw_reap): a workflow still going
-- forward past started_at + timeout_seconds (started_at is its start or its
-- last resume) is marked timed out; gw_wf_advance then cancels its steps
-- still going, runs the finished steps' undo in reverse and ends it
-- timed_out (reason deadline_exceeded) with compensated. One already
-- compensating (a step failed, or cancelled) finishes that as it is.
-- A teardown run (operation 'teardown') has no deadline of its own: its
-- undo steps each have theirs. Runs from before migration 0018
-- (wf_deadline_exempt) have no deadline. Returns the number timed out.
CREATE OR REPLACE FUNCTION gw_wf_timeouts(p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    n integer := 0;
BEGIN
    FOR r IN SELECT * FROM gw_runs
             WHERE status = 'running' AND worker_type = 'workflow' AND operation <> 'teardown'
               AND wf_phase = 'forward' AND wf_timed_out_at IS NULL AND NOT wf_deadline_exempt
               AND cancel_requested_at IS NULL
               AND started_at + make_interval(secs => timeout_seconds) < clock_timestamp()
             ORDER BY started_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        -- Parent, then its steps (gw_wf_advance cancels them); a step's end
        -- locks step, then parent. A step ending at this very moment may
        -- deadlock with us: only this workflow's part is undone (a
        -- savepoint) and the next sweep takes it again, so the rest of the
        -- reaper's tick (heartbeats, requeues, resources) stands.
        BEGIN
            UPDATE gw_runs SET wf_timed_out_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = r.id;
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES ('reaper', 'run.deadline_exceeded', 'run:' || r.id,
                    jsonb_build_object('timeout_seconds', r.timeout_seconds,
                                       'started_at', gw_ts(r.started_at)));
            -- Through EXECUTE, as gw_cancel_run does: gw_wf_advance reaches
            -- gw_reap's callees through gw_finish_run.
            EXECUTE 'SELECT gw_wf_advance($1, $2)' USING r.id, 'reaper';
            n := n + 1;
        EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
            RAISE NOTICE 'gw_wf_timeouts: workflow % left for the next sweep: %', r.id, SQLERRM;
        END;
    END LOOP;
    RETURN n;
END $$;
