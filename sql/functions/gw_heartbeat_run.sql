-- A supervisor's heartbeat for one attempt of a run it executes on behalf of
-- the worker that claimed it (docs/reattach.md): proof of life written
-- straight to heartbeat_at, and the answer tells the supervisor what it must
-- do. Only the claimant (the same worker id and attempt) may heartbeat.
-- result: running | cancel_requested | not_found | stale_attempt | ended | not_yours
CREATE OR REPLACE FUNCTION gw_heartbeat_run(p_id uuid, p_attempt integer, p_worker text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN 'not_found'; END IF;
    IF r.attempt <> p_attempt THEN RETURN 'stale_attempt'; END IF;
    IF r.status <> 'running' THEN RETURN 'ended'; END IF;
    IF r.worker_id IS DISTINCT FROM p_worker THEN RETURN 'not_yours'; END IF;
    UPDATE gw_runs SET heartbeat_at = clock_timestamp() WHERE id = p_id;
    IF r.cancel_requested_at IS NOT NULL THEN RETURN 'cancel_requested'; END IF;
    RETURN 'running';
END $$;
