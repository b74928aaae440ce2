-- The claim document a worker gets for run `r` (already running for it):
-- the one home of its shape, for gw_claim_granted (one claim, any kind of
-- run) and gw_claim_runs' set-based path (plain runs of a batch). The
-- backend and the resource are the caller's: they depend on the kind of run
-- (gw_claim_granted). A single expression, inlined into its callers.
CREATE OR REPLACE FUNCTION gw_claim_doc(r gw_runs, p_backend jsonb, p_resource jsonb)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'run_id', r.id, 'attempt', r.attempt, 'fence', r.attempt,
        'operation', r.operation,
        'resource_key', r.resource_key,
        'resource', p_resource,
        'action', jsonb_build_object('id', r.action_id, 'version', r.action_version,
                                     'worker_type', r.worker_type,
                                     'timeout_seconds', r.timeout_seconds, 'backend', p_backend),
        'inputs', r.inputs,
        'secret_paths', r.secret_paths,
        'requested_by', jsonb_build_object('subject', r.requested_by,
                                           'teams', to_jsonb(r.requested_teams))))
$$;
