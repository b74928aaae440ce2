-- gw_submit_run's answer to a request whose idempotency key this requester
-- used before: the first run, not created, and whether the request body
-- differed (conflict). No row when the key is new.
CREATE OR REPLACE FUNCTION gw_submit_replay(p_subject text, p_idem_key text, p_request_hash text)
RETURNS TABLE (run jsonb, created boolean, conflict boolean, refused jsonb) LANGUAGE sql AS $$
    SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash, NULL::jsonb
    FROM gw_runs r WHERE r.requested_by = p_subject AND r.idempotency_key = p_idem_key
$$;
