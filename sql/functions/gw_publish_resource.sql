-- A resource change for the portal's catalog, on gangway.catalog keyed by
-- the resource, in the same transaction as the change.
CREATE OR REPLACE FUNCTION gw_publish_resource(r gw_resources, p_type text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload)
    VALUES (ev, 'gangway.catalog', r.id::text, jsonb_build_object(
        'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
        'type', 'dev.gangway.resource.' || p_type, 'subject', r.id,
        'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
        'data', gw_resource_json(r)));
END $$;
