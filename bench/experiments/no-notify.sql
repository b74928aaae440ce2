-- What-if for bench/run-core (GW_BENCH_SQL): gw_enqueue_run without
-- pg_notify. NOTIFY takes a database-wide lock from pre-commit to the end of
-- the transaction, so every committing submit waits for the previous one's
-- WAL flush; without it commits can share flushes (group commit). The relay
-- then finds rows by its 500 ms poll only, so this is for the throughput
-- phase, not for latency.
CREATE OR REPLACE FUNCTION gw_enqueue_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload)
    VALUES (ev, 'gangway.runs.' || r.worker_type, r.resource_key,
        jsonb_build_object(
            'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
            'type', 'dev.gangway.run.requested', 'subject', r.id,
            'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
            'data', jsonb_build_object(
                'run_id', r.id, 'attempt', r.attempt, 'action_id', r.action_id,
                'action_version', r.action_version, 'worker_type', r.worker_type,
                'key', r.resource_key, 'timeout_seconds', r.timeout_seconds,
                'requested_at', gw_ts(r.created_at))));
END $$;
