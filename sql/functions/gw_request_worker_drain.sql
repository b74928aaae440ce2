-- Asks one worker process to drain (decision 0044): an audit entry and a
-- dev.gangway.worker.drain message on gangway.control, keyed by the worker
-- id, in one transaction; the outbox relay publishes it. Every worker process
-- reads the control topic and only the one with that id acts. Workers are not
-- registered in PostgreSQL, so whether such a worker is running is not known
-- here: the request is recorded and sent either way.
-- Returns the event id of the drain message.
CREATE OR REPLACE FUNCTION gw_request_worker_drain(p_worker text, p_actor text, p_reason text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'worker.drain_requested', 'worker:' || p_worker,
            jsonb_strip_nulls(jsonb_build_object('reason', p_reason, 'event_id', ev)));
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload)
    VALUES (ev, 'gangway.control', p_worker, jsonb_build_object(
        'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
        'type', 'dev.gangway.worker.drain', 'subject', p_worker,
        'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
        'data', jsonb_strip_nulls(jsonb_build_object('worker_id', p_worker, 'reason', p_reason,
                                                     'requested_by', p_actor))));
    RETURN ev;
END $$;
