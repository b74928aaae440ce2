-- Grants a batch of claims in one transaction (one WAL flush for many runs;
-- docs/decisions/0053): each element {run_id, attempt, worker_id} goes
-- through gw_claim_run exactly as a single claim would, with the same
-- result per run. Runs are taken in run id order, so two batches that
-- share runs lock them in the same order and cannot deadlock.
CREATE OR REPLACE FUNCTION gw_claim_runs(p_claims jsonb, p_worker_type text)
RETURNS TABLE (run_id uuid, result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    c record;
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(p_claims) ORDER BY (value ->> 'run_id')::uuid LOOP
        SELECT * INTO c FROM gw_claim_run((e ->> 'run_id')::uuid, (e ->> 'attempt')::integer,
                                          e ->> 'worker_id', p_worker_type);
        run_id := (e ->> 'run_id')::uuid;
        result := c.result;
        claim := c.claim;
        RETURN NEXT;
    END LOOP;
END $$;
