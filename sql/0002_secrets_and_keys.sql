-- Secret inputs (writeOnly in the input schema) are recorded by JSON pointer
-- with the run, so the claim can tell the worker which values to mask in log
-- lines and which inputs a backend must treat as sensitive. The claim also
-- carries the resource key, so backends keep per-resource state.

ALTER TABLE gw_runs ADD COLUMN secret_paths jsonb NOT NULL DEFAULT '[]';

DROP FUNCTION gw_submit_run(uuid, text, text, text, text, jsonb, jsonb, text, text[], text, text,
                            integer, integer, boolean);

CREATE FUNCTION gw_submit_run(
    p_id uuid, p_action_id text, p_action_version text, p_worker_type text, p_key text,
    p_inputs jsonb, p_inputs_redacted jsonb, p_subject text, p_teams text[],
    p_idem_key text, p_request_hash text, p_timeout integer, p_max_attempts integer,
    p_retryable boolean, p_secret_paths jsonb)
RETURNS TABLE (run jsonb, created boolean, conflict boolean) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
BEGIN
    IF p_idem_key IS NOT NULL THEN
        SELECT * INTO r FROM gw_runs WHERE requested_by = p_subject AND idempotency_key = p_idem_key;
        IF FOUND THEN
            RETURN QUERY SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash;
            RETURN;
        END IF;
    END IF;

    INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                         inputs, inputs_redacted, requested_by, requested_teams,
                         idempotency_key, request_hash, timeout_seconds, max_attempts,
                         retryable, queued_at, secret_paths)
    VALUES (p_id, p_action_id, p_action_version, p_worker_type, 'queued', coalesce(p_key, p_id::text),
            p_inputs, p_inputs_redacted, p_subject, coalesce(p_teams, '{}'),
            p_idem_key, p_request_hash, p_timeout, greatest(p_max_attempts, 1),
            p_retryable, clock_timestamp(), coalesce(p_secret_paths, '[]'))
    ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        SELECT * INTO r FROM gw_runs WHERE requested_by = p_subject AND idempotency_key = p_idem_key;
        RETURN QUERY SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash;
        RETURN;
    END IF;

    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor)
    VALUES (r.id, 1, NULL, 'accepted', p_subject),
           (r.id, 1, 'accepted', 'queued', 'gangway');
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_subject, 'run.submit', 'run:' || r.id,
            jsonb_build_object('action', p_action_id, 'version', p_action_version,
                               'inputs', p_inputs_redacted));
    PERFORM gw_enqueue_run(r);
    RETURN QUERY SELECT gw_run_json(r), true, false;
END $$;

CREATE OR REPLACE FUNCTION gw_claim_run(p_id uuid, p_attempt integer, p_worker text)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    a gw_actions;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF r.attempt <> p_attempt THEN
        RETURN QUERY SELECT 'stale_attempt'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF r.status <> 'queued' THEN
        RETURN QUERY SELECT (CASE r.status
            WHEN 'running' THEN 'already_claimed'
            WHEN 'cancelled' THEN 'cancelled'
            WHEN 'pending_approval' THEN 'not_approved'
            WHEN 'accepted' THEN 'not_approved'
            ELSE 'ended' END)::text, NULL::jsonb;
        RETURN;
    END IF;
    UPDATE gw_runs SET status = 'running', worker_id = p_worker, started_at = clock_timestamp(),
                       heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = p_id RETURNING * INTO r;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, detail)
    VALUES (r.id, r.attempt, 'queued', 'running', 'worker:' || p_worker, NULL);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('worker:' || p_worker, 'run.claim', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
    SELECT * INTO a FROM gw_actions WHERE id = r.action_id AND version = r.action_version;
    RETURN QUERY SELECT 'granted'::text, jsonb_build_object(
        'run_id', r.id, 'attempt', r.attempt, 'fence', r.attempt,
        'resource_key', r.resource_key,
        'action', jsonb_build_object('id', a.id, 'version', a.version, 'worker_type', a.worker_type,
                                     'timeout_seconds', r.timeout_seconds,
                                     'backend', a.definition -> 'backend'),
        'inputs', r.inputs,
        'secret_paths', r.secret_paths,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams)));
END $$;
