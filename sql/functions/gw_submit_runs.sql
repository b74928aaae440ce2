-- Group commit of accepts (docs/decisions/0049-group-commit.md): the
-- submissions the broker gathered while its previous batch was in flight,
-- accepted in ONE transaction, so one WAL flush answers many requests.
--
-- One jsonb argument with named keys (decision 0028):
--   runs   array of gw_submit_run's arguments, one object per request,
--          in arrival order (required, 1 to 1000 elements)
-- Returns one row per element, `i` its index (0-based) in `runs`, and the
-- columns of gw_submit_run. Elements are applied one after another, in
-- order, with gw_submit_run itself (one home for every rule), so within a
-- batch a later element sees the earlier ones: a second request with the
-- same idempotency key is its replay (or its 409), two requests of one team
-- count each other against the quota, and audit entries are written in
-- arrival order (gw_audit_seal chains them in (txid, id) order).
--
-- Before the first element, the quota locks of every action in the batch
-- are taken in one order (sorted by action id), so two batches with two
-- quota'd actions cannot deadlock on them; gw_submit_run takes them again
-- (advisory locks are reentrant).
--
-- No subtransaction per element: an error in any element aborts the whole
-- call, and the broker then retries each element alone, so only the bad
-- one fails (broker/submit_batch.c).
CREATE OR REPLACE FUNCTION gw_submit_runs(p_args jsonb)
RETURNS TABLE (i integer, run jsonb, created boolean, conflict boolean, refused jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    a jsonb := gw_args(p_args, 'gw_submit_runs', '{"runs": "array!"}');
    runs jsonb := a -> 'runs';
    n integer := jsonb_array_length(a -> 'runs');
    k integer;
BEGIN
    IF n < 1 OR n > 1000 THEN
        RAISE EXCEPTION 'gw_submit_runs: "runs" must hold 1 to 1000 elements, not %', n
            USING ERRCODE = '22023';
    END IF;
    IF n > 1 THEN
        PERFORM pg_advisory_xact_lock(hashtext('gangway.quota:' || q.action_id))
        FROM (SELECT DISTINCT e ->> 'action_id' AS action_id
              FROM jsonb_array_elements(runs) e
              WHERE jsonb_typeof(e -> 'quota') = 'object'
              ORDER BY 1) q;
    END IF;
    FOR k IN 0 .. n - 1 LOOP
        RETURN QUERY SELECT k, s.* FROM gw_submit_run(runs -> k) s;
    END LOOP;
END $$;
