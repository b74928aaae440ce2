-- Queues a run.requested message for the run's current attempt, published
-- not before p_not_before (NULL: at once; a retry's backoff). No NOTIFY:
-- NOTIFY takes a database-wide lock from pre-commit to the end of the
-- transaction, which serialised every submission behind the previous one's
-- WAL flush (bench/README.md). The broker that commits a run now wakes its
-- own relay in-process; other replicas find rows by polling.
CREATE OR REPLACE FUNCTION gw_enqueue_run_at(r gw_runs, p_not_before timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload, not_before)
    VALUES (ev, 'gangway.runs.' || r.worker_type, r.resource_key,
        jsonb_build_object(
            'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
            'type', 'dev.gangway.run.requested', 'subject', r.id,
            'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
            'data', jsonb_build_object(
                'run_id', r.id, 'attempt', r.attempt, 'action_id', r.action_id,
                'action_version', r.action_version, 'worker_type', r.worker_type,
                'key', r.resource_key, 'timeout_seconds', r.timeout_seconds,
                'operation', r.operation,
                'requested_at', gw_ts(r.created_at))),
        p_not_before);
END $$;
