-- Applies a batch of worker events (a JSON array of
-- {run_id, attempt, seq, kind, worker_id, stream, line, data}) once each
-- and returns the number applied; the rules are gw_apply_events_each's.
--
-- Group commit inside the batch (issue 15; like gw_claim_runs' plain path):
-- the common case is taken for the whole batch with one statement, not one
-- event at a time. A run is in the common case when it is running a plain
-- operation (create, not a workflow's step) of an action that records no
-- resource, and all of its events in the batch are started, log or
-- succeeded lines of its current attempt with distinct seqs, a succeeded one
-- (at most one) coming last. For those runs, one INSERT stores the events (a
-- duplicate delivery is dropped, as ever), one UPDATE ends the runs whose
-- succeeded event is new, as gw_finish_run would (then one INSERT of their
-- transitions and one of their audit entries, in event order), and one
-- UPDATE refreshes heartbeat_at, at most once a second, of the others that
-- got a new line. Every other run's events (a heartbeat, a failure, a stale
-- attempt, a plan, a teardown, a workflow step, a resource, an unknown
-- run ...) then go through gw_apply_events_each in their order in the batch.
--
-- The split changes no outcome: a common-case run shares nothing with the
-- others (no resource, no parent, no reconcile), and the two ways never share
-- a run; only the order of different runs' transitions and audit entries
-- within the transaction differs. A run the batch ends is locked first, in run
-- id order, and checked again under its lock, as the loop does: one the
-- reaper requeued meanwhile goes to the loop, which ignores its stale events.
-- tests/integration/test_sql_functions.py checks that both ways store the
-- same.
--
-- Plans: the runs are found by id only. Their status is tested through
-- coalesce() so that no index on status can be chosen for these UPDATEs: with
-- stale statistics (few running runs when last analysed) the planner took
-- gw_runs_by_status and read every running run per call (bench/README.md,
-- "Issue 15, part 6").
--
CREATE OR REPLACE FUNCTION gw_apply_events(p_events jsonb) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    fast uuid[];
    ending uuid[];
    ending_att integer[];
    n integer := 0;
    rest jsonb;
BEGIN
    SELECT array_agg(p.run_id ORDER BY p.run_id) FILTER (WHERE p.n_end = 0),
           array_agg(p.run_id ORDER BY p.run_id) FILTER (WHERE p.n_end = 1),
           array_agg(p.att ORDER BY p.run_id) FILTER (WHERE p.n_end = 1)
    INTO fast, ending, ending_att
    FROM (SELECT (x.v ->> 'run_id')::uuid AS run_id,
                 min((x.v ->> 'attempt')::integer) AS att, max((x.v ->> 'attempt')::integer) AS att_max,
                 bool_and(coalesce(x.v ->> 'kind' IN ('started', 'log', 'succeeded'), false)) AS kinds,
                 count(*) FILTER (WHERE x.v ->> 'kind' = 'succeeded') AS n_end,
                 max(x.o) AS last_o, max(x.o) FILTER (WHERE x.v ->> 'kind' = 'succeeded') AS end_o,
                 count(DISTINCT (x.v ->> 'seq')::integer) AS n_seq, count(*) AS n_ev
          FROM jsonb_array_elements(p_events) WITH ORDINALITY x(v, o)
          GROUP BY 1) p
    WHERE p.kinds AND p.att = p.att_max AND p.n_seq = p.n_ev
      AND (p.n_end = 0 OR (p.n_end = 1 AND p.end_o = p.last_o))
      -- One lookup by id per run, as a subquery: a join here was planned,
      -- with statistics taken while few runs were running, as a scan of
      -- every running run (gw_runs_by_status) per call.
      AND (SELECT r.attempt = p.att AND r.status = 'running' AND r.operation = 'create'
                  AND r.step_id IS NULL AND r.parent_run_id IS NULL
                  AND NOT coalesce((SELECT a.definition ? 'resource' FROM gw_actions a
                                    WHERE a.id = r.action_id AND a.version = r.action_version), false)
           FROM gw_runs r WHERE r.id = p.run_id);
    IF ending IS NOT NULL THEN
        -- The runs the batch ends: locked in run id order and checked again
        -- (the reaper may have requeued one since the look above).
        SELECT array_cat(fast, array_agg(l.id ORDER BY l.id)) INTO fast
        FROM (SELECT r.id, r.attempt, r.status FROM gw_runs r WHERE r.id = ANY (ending)
              ORDER BY r.id FOR UPDATE) l
        JOIN unnest(ending, ending_att) AS w(id, att) ON w.id = l.id
        WHERE l.attempt = w.att AND coalesce(l.status, '') = 'running';
    END IF;

    IF fast IS NOT NULL THEN
        WITH ev AS (
            SELECT x.o, x.v, (x.v ->> 'run_id')::uuid AS run_id, (x.v ->> 'attempt')::integer AS att,
                   (x.v ->> 'seq')::integer AS seq, x.v ->> 'kind' AS kind
            FROM jsonb_array_elements(p_events) WITH ORDINALITY x(v, o)
            WHERE (x.v ->> 'run_id')::uuid = ANY (fast)),
        ins AS (
            INSERT INTO gw_worker_events (run_id, attempt, seq, kind, stream, line, data, worker_id)
            SELECT e.run_id, e.att, e.seq, e.kind, e.v ->> 'stream', e.v ->> 'line', e.v -> 'data',
                   e.v ->> 'worker_id'
            FROM ev e ORDER BY e.o
            ON CONFLICT DO NOTHING
            RETURNING run_id, seq, kind),
        upd AS (
            -- gw_finish_run(run, 'succeeded', NULL, outputs, 'worker:' || w, false)
            -- heartbeat_at as the loop leaves it: refreshed by a new started
            -- or log line of the batch when older than a second.
            UPDATE gw_runs r SET status = 'succeeded', reason = NULL,
                                 outputs = coalesce(e.v -> 'data' -> 'outputs', '{}'::jsonb),
                                 finished_at = clock_timestamp(), updated_at = clock_timestamp(),
                                 heartbeat_at = CASE
                                     WHEN (r.heartbeat_at IS NULL
                                           OR r.heartbeat_at < clock_timestamp() - interval '1 second')
                                          AND EXISTS (SELECT 1 FROM ins j
                                                      WHERE j.run_id = r.id AND j.kind <> 'succeeded')
                                     THEN clock_timestamp() ELSE r.heartbeat_at END
            FROM ins i JOIN ev e ON e.run_id = i.run_id AND e.seq = i.seq
            WHERE i.kind = 'succeeded' AND r.id = i.run_id AND r.id = ANY (fast)
              AND coalesce(r.status, '') = 'running' AND r.attempt = e.att
            RETURNING r AS run, e.o, 'worker:' || coalesce(e.v ->> 'worker_id', '?') AS actor),
        hb AS (
            UPDATE gw_runs r SET heartbeat_at = clock_timestamp()
            FROM (SELECT DISTINCT e.run_id, e.att FROM ev e
                  WHERE NOT EXISTS (SELECT 1 FROM ev f WHERE f.run_id = e.run_id AND f.kind = 'succeeded')
                    AND EXISTS (SELECT 1 FROM ins i WHERE i.run_id = e.run_id)) h
            WHERE r.id = h.run_id AND r.id = ANY (fast)
              AND coalesce(r.status, '') = 'running' AND r.attempt = h.att
              AND (r.heartbeat_at IS NULL OR r.heartbeat_at < clock_timestamp() - interval '1 second')
            RETURNING 1),
        tr AS (
            INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
            SELECT (u.run).id, (u.run).attempt, 'running', 'succeeded', NULL, u.actor
            FROM upd u ORDER BY u.o),
        au AS (
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            SELECT u.actor, 'run.succeeded', 'run:' || (u.run).id,
                   jsonb_strip_nulls(jsonb_build_object('attempt', (u.run).attempt,
                                                        'needs_reconciliation',
                                                        (u.run).needs_reconciliation))
            FROM upd u ORDER BY u.o)
        SELECT count(*) INTO n FROM ins;
    END IF;

    SELECT jsonb_agg(x.v ORDER BY x.o) INTO rest
    FROM jsonb_array_elements(p_events) WITH ORDINALITY x(v, o)
    WHERE fast IS NULL OR ((x.v ->> 'run_id')::uuid = ANY (fast)) IS NOT TRUE;
    IF rest IS NOT NULL THEN
        n := n + gw_apply_events_each(rest);
    END IF;
    RETURN n;
END $$;
