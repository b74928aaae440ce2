-- Applies a batch of worker events (a JSON array of
-- {run_id, attempt, seq, kind, worker_id, stream, line, data}) once each
-- and returns the number applied; the rules are gw_apply_events_each's.
--
-- Group commit inside the batch (issue 15; like gw_claim_runs' plain path):
-- the common case is taken for the whole batch with at most two statements,
-- not one event at a time. A run is in the common case when it is running a plain
-- operation (create, not a workflow's step) of an action that records no
-- resource, and all of its events in the batch are started, log or
-- succeeded lines of its current attempt with distinct seqs, a succeeded one
-- (at most one) coming last. For those runs two statements do the work. The
-- first takes the runs the batch ends: one UPDATE ends each run whose
-- succeeded event is new, as gw_finish_run would, then one INSERT stores
-- their events, one their transitions and one their audit entries, in event
-- order. The UPDATE comes first and stands for the loop's SELECT ... FOR
-- UPDATE: its row lock and its check of the run's newest version leave alone
-- a run the reaper requeued since the look, whose events then go to the loop
-- (which ignores a stale attempt's end). The second statement stores the
-- other runs' lines (a duplicate delivery is dropped, as ever) and refreshes
-- heartbeat_at, at most once a second, of those that got a new one. Every
-- other run's events (a heartbeat, a failure, a stale attempt, a plan, a
-- teardown, a workflow step, a resource, an unknown run, a duplicate end ...)
-- then go through gw_apply_events_each in their order in the batch.
--
-- The split changes no outcome: a common-case run shares nothing with the
-- others (no resource, no parent, no reconcile), and the two ways never share
-- a run; only the order of different runs' transitions and audit entries
-- within the transaction differs. The ended runs are locked in the order of
-- the primary key's scan of their ids (ascending).
-- tests/integration/test_sql_functions.py checks that both ways store the
-- same.
--
-- Plans: the runs are found by id only. Their status is tested through
-- coalesce() so that no index on status can be chosen for these UPDATEs: with
-- stale statistics (few running runs when last analysed) the planner took
-- gw_runs_by_status and read every running run per call (bench/README.md,
-- "Issue 15, part 6"). Each statement runs only when its list of runs is not
-- empty: for "id = ANY ('{}')" the planner expects no row and may take any
-- index of gw_runs (it took gw_runs_parent_idx, reading every run it holds).
--
CREATE OR REPLACE FUNCTION gw_apply_events(p_events jsonb) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    fast uuid[];
    ending uuid[];
    ended uuid[];
    n integer := 0;
    rest jsonb;
BEGIN
    SELECT array_agg(p.run_id ORDER BY p.run_id) FILTER (WHERE p.n_end = 0),
           array_agg(p.run_id ORDER BY p.run_id) FILTER (WHERE p.n_end = 1)
    INTO fast, ending
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
        -- The runs the batch ends. Each is ended before its events are
        -- stored, when its succeeded event is new: the UPDATE's row lock and
        -- its check of the run's newest version (one the reaper requeued since
        -- the look above is left alone) stand for the loop's SELECT ... FOR
        -- UPDATE, without a statement of its own (a row lock is a WAL record:
        -- ~140 us a call at one run a call). A run not ended here goes to
        -- the loop with all its events.
        WITH ev AS (
            SELECT x.o, x.v, (x.v ->> 'run_id')::uuid AS run_id, (x.v ->> 'attempt')::integer AS att,
                   (x.v ->> 'seq')::integer AS seq, x.v ->> 'kind' AS kind
            FROM jsonb_array_elements(p_events) WITH ORDINALITY x(v, o)
            WHERE (x.v ->> 'run_id')::uuid = ANY (ending)),
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
                                          AND r.id IN (SELECT f.run_id FROM ev f
                                                       WHERE f.kind <> 'succeeded'
                                                         AND (SELECT 1 FROM gw_worker_events w
                                                              WHERE w.run_id = f.run_id
                                                                AND w.attempt = f.att
                                                                AND w.seq = f.seq) IS NULL)
                                     THEN clock_timestamp() ELSE r.heartbeat_at END
            FROM ev e
            WHERE e.kind = 'succeeded' AND r.id = e.run_id AND r.id = ANY (ending)
              AND coalesce(r.status, '') = 'running' AND r.attempt = e.att
              -- A scalar subquery, not NOT EXISTS: that became a hash anti
              -- join over all of gw_worker_events in big batches (the
              -- burn-down ran 30 % slower); this is one probe of its key.
              AND (SELECT 1 FROM gw_worker_events w
                   WHERE w.run_id = e.run_id AND w.attempt = e.att AND w.seq = e.seq) IS NULL
            RETURNING r AS run, e.o, 'worker:' || coalesce(e.v ->> 'worker_id', '?') AS actor),
        ins AS (
            INSERT INTO gw_worker_events (run_id, attempt, seq, kind, stream, line, data, worker_id)
            SELECT e.run_id, e.att, e.seq, e.kind, e.v ->> 'stream', e.v ->> 'line', e.v -> 'data',
                   e.v ->> 'worker_id'
            FROM ev e WHERE e.run_id IN (SELECT (u.run).id FROM upd u) ORDER BY e.o
            ON CONFLICT DO NOTHING
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
        SELECT (SELECT count(*) FROM ins), (SELECT array_agg((u.run).id) FROM upd u) INTO n, ended;
    END IF;

    IF fast IS NOT NULL THEN
        -- The runs the batch does not end: their lines, and heartbeat_at
        -- refreshed (at most once a second) for a run that got a new one.
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
            RETURNING run_id, attempt),
        hb AS (
            UPDATE gw_runs r SET heartbeat_at = clock_timestamp()
            FROM (SELECT DISTINCT i.run_id, i.attempt FROM ins i) h
            WHERE r.id = h.run_id AND r.id = ANY (fast)
              AND coalesce(r.status, '') = 'running' AND r.attempt = h.attempt
              AND (r.heartbeat_at IS NULL OR r.heartbeat_at < clock_timestamp() - interval '1 second')
            RETURNING 1)
        SELECT n + count(*) INTO n FROM ins;
    END IF;
    fast := array_cat(fast, ended);

    SELECT jsonb_agg(x.v ORDER BY x.o) INTO rest
    FROM jsonb_array_elements(p_events) WITH ORDINALITY x(v, o)
    WHERE fast IS NULL OR ((x.v ->> 'run_id')::uuid = ANY (fast)) IS NOT TRUE;
    IF rest IS NOT NULL THEN
        n := n + gw_apply_events_each(rest);
    END IF;
    RETURN n;
END $$;
