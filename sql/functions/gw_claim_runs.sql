-- Grants a batch of claims in one transaction (one WAL flush for many runs;
-- docs/decisions/0053): each element {run_id, attempt, worker_id} gets the
-- result gw_claim_run would give it; idx is the claim's 0-based position in
-- p_claims.
--
-- Group commit inside the batch too (issue 15; like gw_submit_runs'
-- plain path): the common case, a queued plain run (operation create, not a
-- workflow step, no resource, no plan) asked for once in the batch with its
-- current attempt and worker type, is granted for the whole batch with one
-- UPDATE, one INSERT of its events, one of its audit entries (in claim
-- order) and one claim document each (gw_claim_doc, as gw_claim_granted
-- builds it). Every other claim then goes through gw_claim_run itself, in
-- run id order (then request order): a refusal, a repeated claim, a run
-- asked for twice, a teardown or a plan. tests/integration/
-- test_sql_functions.py checks that both ways store and answer the same.
--
-- Audit entries: the set-based grants' in claim order, then the others' in
-- run id order (the sealer chains them by transaction and id).
--
-- Locks: each pass takes its runs in run id order, but the two passes are
-- two sequences, so two batches that share two runs (a repeated or stale
-- claim in one of them: duplicates are rare) can deadlock. PostgreSQL's
-- check then fails one batch after deadlock_timeout with 40P01, which the
-- broker answers 503 and the worker retries (claims are idempotent). Locking
-- every run of the batch first, in one order, would cost a lock record per
-- run on every claim to avoid a rare one-second retry.
CREATE OR REPLACE FUNCTION gw_claim_runs(p_claims jsonb, p_worker_type text)
RETURNS TABLE (idx integer, run_id uuid, result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    i bigint;
    c record;
    g_idx integer[];
    g_ids uuid[];
    g_docs jsonb[];
    g_types text[];
    g_workers text[];
BEGIN
    WITH req AS (
        SELECT (x.v ->> 'run_id')::uuid AS id, (x.v ->> 'attempt')::integer AS att,
               x.v ->> 'worker_id' AS w, (x.o - 1)::integer AS ix
        FROM jsonb_array_elements(p_claims) WITH ORDINALITY x(v, o)),
    once AS (
        SELECT q.id, min(q.att) AS att, min(q.w) AS w, min(q.ix) AS ix
        FROM req q GROUP BY q.id HAVING count(*) = 1 ORDER BY q.id),
    upd AS (
        UPDATE gw_runs r SET status = 'running', worker_id = o.w, started_at = clock_timestamp(),
                             heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
        FROM once o
        -- By id only: the ids as an array for the index, the status through
        -- coalesce() so that no index on status is chosen when the
        -- statistics say no run is queued (test_sql_plans.py).
        WHERE r.id = o.id AND r.id = ANY (ARRAY(SELECT q.id FROM once q))
          AND coalesce(r.status, '') = 'queued' AND r.attempt = o.att AND o.w IS NOT NULL
          AND (p_worker_type IS NULL OR r.worker_type = p_worker_type)
          AND r.operation = 'create' AND r.step_id IS NULL AND r.resource_id IS NULL
          AND r.plan_sha256 IS NULL
        RETURNING r AS run, o.ix, o.w),
    ev AS (
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, detail)
        SELECT (u.run).id, (u.run).attempt, 'queued', 'running', 'worker:' || u.w, NULL
        FROM upd u ORDER BY u.ix),
    au AS (
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        SELECT 'worker:' || u.w, 'run.claim', 'run:' || (u.run).id,
               jsonb_build_object('attempt', (u.run).attempt)
        FROM upd u ORDER BY u.ix)
    SELECT array_agg(u.ix ORDER BY u.ix), array_agg((u.run).id ORDER BY u.ix),
           array_agg(gw_claim_doc(u.run, a.definition -> 'backend', NULL) ORDER BY u.ix),
           array_agg((u.run).worker_type ORDER BY u.ix), array_agg(u.w ORDER BY u.ix)
    INTO g_idx, g_ids, g_docs, g_types, g_workers
    FROM upd u LEFT JOIN gw_actions a
         ON a.id = (u.run).action_id AND a.version = (u.run).action_version;
    IF g_idx IS NOT NULL THEN
        PERFORM gw_worker_seen(s.wt, s.w)
        FROM (SELECT DISTINCT ON (x.wt) x.wt, x.w
              FROM unnest(g_types, g_workers) WITH ORDINALITY x(wt, w, o) ORDER BY x.wt, x.o) s;
        RETURN QUERY SELECT g.i, g.id, 'granted'::text, g.doc
                     FROM unnest(g_idx, g_ids, g_docs) g(i, id, doc);
    END IF;
    FOR e, i IN SELECT value, ordinality FROM jsonb_array_elements(p_claims) WITH ORDINALITY
                ORDER BY (value ->> 'run_id')::uuid, ordinality LOOP
        CONTINUE WHEN g_idx IS NOT NULL AND (i - 1)::integer = ANY (g_idx);
        SELECT * INTO c FROM gw_claim_run((e ->> 'run_id')::uuid, (e ->> 'attempt')::integer,
                                          e ->> 'worker_id', p_worker_type);
        idx := i - 1;
        run_id := (e ->> 'run_id')::uuid;
        result := c.result;
        claim := c.claim;
        RETURN NEXT;
    END LOOP;
END $$;
