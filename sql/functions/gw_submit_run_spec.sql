-- The named arguments of gw_submit_run (the gw_args spec, decision 0028):
-- one home for gw_submit_run, which checks one submission, and
-- gw_submit_runs, which checks a whole batch in one query.
CREATE OR REPLACE FUNCTION gw_submit_run_spec() RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT '{
        "id": "string!", "action_id": "string!", "action_version": "string!",
        "worker_type": "string!", "key": "string?", "inputs": "object!",
        "inputs_redacted": "object!", "subject": "string!", "teams": "array!",
        "idempotency_key": "string?", "request_hash": "string?",
        "timeout_seconds": "integer!", "max_attempts": "integer!", "retryable": "boolean!",
        "secret_paths": "array?", "ttl_seconds": "integer?", "approval": "object?",
        "quota": "object?", "break_glass": "string?", "justification": "string?",
        "via": "string?"}'::jsonb
$$;
