-- Grants a worker's claim: queued -> running only for the current attempt
-- and the worker type the run is for; a repeated claim by the same worker is
-- granted again (a lost reply does not strand the run).
-- result: granted | not_found | stale_attempt | wrong_worker_type | cancelled | already_claimed
--         | ended | not_approved
-- A granted claim's document is built by gw_claim_granted.
CREATE OR REPLACE FUNCTION gw_claim_run(p_id uuid, p_attempt integer, p_worker text, p_worker_type text)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    regrant boolean := false;
BEGIN
    -- The common case first, in one statement: a queued run of this attempt
    -- and worker type becomes running. The UPDATE locks the row itself, so
    -- no separate SELECT ... FOR UPDATE (one heap access and one WAL record
    -- fewer per claim; bench/README.md "Claim and finish cost").
    UPDATE gw_runs SET status = 'running', worker_id = p_worker, started_at = clock_timestamp(),
                       heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
    -- The status through coalesce(): a test no index on status can serve, so
    -- the row comes by id even when the statistics say no run is queued
    -- (test_sql_plans.py, "stale statistics").
    WHERE id = p_id AND coalesce(status, '') = 'queued' AND attempt = p_attempt
      AND (p_worker_type IS NULL OR worker_type = p_worker_type)
    RETURNING * INTO r;
    IF FOUND THEN
        RETURN QUERY SELECT * FROM gw_claim_granted(r, p_worker, true);
        RETURN;
    END IF;
    -- Everything else: read the row under its lock and say why (or grant a
    -- repeated claim, or a run requeued since the UPDATE looked).
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    IF r.attempt <> p_attempt THEN
        RETURN QUERY SELECT 'stale_attempt'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF p_worker_type IS NOT NULL AND p_worker_type <> r.worker_type THEN
        RETURN QUERY SELECT 'wrong_worker_type'::text, NULL::jsonb;
        RETURN;
    END IF;
    -- The same worker asking again for the same attempt: its first reply was
    -- lost. Grant it again (no new transition) instead of stranding the run.
    IF r.status = 'running' AND r.worker_id = p_worker THEN
        regrant := true;
    ELSIF r.status <> 'queued' THEN
        RETURN QUERY SELECT (CASE r.status
            WHEN 'running' THEN 'already_claimed'
            WHEN 'cancelled' THEN 'cancelled'
            WHEN 'pending_approval' THEN 'not_approved'
            WHEN 'accepted' THEN 'not_approved'
            ELSE 'ended' END)::text, NULL::jsonb;
        RETURN;
    END IF;
    IF NOT regrant THEN
        UPDATE gw_runs SET status = 'running', worker_id = p_worker, started_at = clock_timestamp(),
                           heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = p_id RETURNING * INTO r;
    END IF;
    RETURN QUERY SELECT * FROM gw_claim_granted(r, p_worker, NOT regrant);
END $$;
