-- Grants a batch of claims in one transaction (one WAL flush for many runs;
-- docs/decisions/0053): each element {run_id, attempt, worker_id} goes
-- through gw_claim_run exactly as a single claim would, with the same
-- result per run; idx is the claim's 0-based position in p_claims. Runs
-- are taken in run id order (then request order), so two batches that share
-- runs lock them in the same order and cannot deadlock, and a run claimed
-- twice in one batch is decided in the order the worker asked.
CREATE OR REPLACE FUNCTION gw_claim_runs(p_claims jsonb, p_worker_type text)
RETURNS TABLE (idx integer, run_id uuid, result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    i bigint;
    c record;
BEGIN
    FOR e, i IN SELECT value, ordinality FROM jsonb_array_elements(p_claims) WITH ORDINALITY
                ORDER BY (value ->> 'run_id')::uuid, ordinality LOOP
        SELECT * INTO c FROM gw_claim_run((e ->> 'run_id')::uuid, (e ->> 'attempt')::integer,
                                          e ->> 'worker_id', p_worker_type);
        idx := i - 1;
        run_id := (e ->> 'run_id')::uuid;
        result := c.result;
        claim := c.claim;
        RETURN NEXT;
    END LOOP;
END $$;
