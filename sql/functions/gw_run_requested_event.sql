-- The run.requested CloudEvent of a run's current attempt, with event id
-- p_event, sent at p_time: the one home of its shape, for gw_enqueue_run_at
-- (one run) and gw_submit_runs (a batch in one INSERT). A single
-- expression, so the planner inlines it into its callers. The time is an
-- argument because gw_ts(clock_timestamp()) is never inlined (a STABLE SQL
-- function over a volatile argument): it would be parsed and planned again
-- for every row (fmgr_sql), ~4x the cost of the expression itself.
CREATE OR REPLACE FUNCTION gw_run_requested_event(r gw_runs, p_event uuid, p_time timestamptz)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'specversion', '1.0', 'id', p_event, 'source', 'gangway/broker',
        'type', 'dev.gangway.run.requested', 'subject', r.id,
        'time', gw_ts(p_time), 'datacontenttype', 'application/json',
        'data', jsonb_build_object(
            'run_id', r.id, 'attempt', r.attempt, 'action_id', r.action_id,
            'action_version', r.action_version, 'worker_type', r.worker_type,
            'key', r.resource_key, 'timeout_seconds', r.timeout_seconds,
            'operation', r.operation,
            'requested_at', gw_ts(r.created_at)))
$$;
