-- DELETE /v1/resources/{id}: start the teardown now.
CREATE OR REPLACE FUNCTION gw_delete_resource(p_id uuid, p_actor text)
RETURNS TABLE (outcome text, resource jsonb) AS $$
DECLARE
    res gw_resources;
BEGIN
    SELECT * INTO res FROM gw_resources WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    IF res.status NOT IN ('active', 'teardown_failed') THEN
        RETURN QUERY SELECT 'not_active'::text, gw_resource_json(res);
        RETURN;
    END IF;
    PERFORM gw_start_teardown(res, p_actor, 'deleted by ' || p_actor);
    SELECT * INTO res FROM gw_resources WHERE id = p_id;
    RETURN QUERY SELECT 'teardown_started'::text, gw_resource_json(res);
END $$ LANGUAGE plpgsql;
