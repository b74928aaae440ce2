-- Records what a succeeded or failed run did to its resource. Called from
-- gw_finish_run with the run already updated.
CREATE OR REPLACE FUNCTION gw_resource_after_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a gw_actions;
    res gw_resources;
    spec jsonb;
    ttl jsonb;
    v_name text;
    v_ttl integer;
    v_max integer;
    v_ext integer;
BEGIN
    SELECT * INTO a FROM gw_actions WHERE id = r.action_id AND version = r.action_version;
    spec := a.definition -> 'resource';
    IF spec IS NULL THEN
        RETURN;
    END IF;
    ttl := a.definition -> 'ttl';

    IF r.operation = 'teardown' THEN
        SELECT * INTO res FROM gw_resources WHERE id = r.resource_id FOR UPDATE;
        IF NOT FOUND OR res.teardown_run_id IS DISTINCT FROM r.id THEN
            RETURN;
        END IF;
        IF r.status = 'succeeded' THEN
            UPDATE gw_resources SET status = 'deleted', deleted_at = clock_timestamp(),
                                    updated_at = clock_timestamp(), needs_attention = false
            WHERE id = res.id RETURNING * INTO res;
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES ('gangway', 'resource.deleted', 'resource:' || res.id,
                    jsonb_build_object('run', r.id));
            PERFORM gw_publish_resource(res, 'deleted');
        ELSE
            -- Retry with backoff (1, 2, 4 ... 60 minutes) and flag it.
            UPDATE gw_resources SET status = 'teardown_failed', needs_attention = true,
                next_teardown_at = clock_timestamp()
                    + least(interval '60 minutes',
                            make_interval(secs => coalesce((ttl ->> 'teardown_retry_seconds')::integer, 60))
                            * power(2, teardown_attempts - 1)),
                updated_at = clock_timestamp()
            WHERE id = res.id RETURNING * INTO res;
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES ('gangway', 'resource.teardown_failed', 'resource:' || res.id,
                    jsonb_build_object('run', r.id, 'status', r.status, 'reason', r.reason));
            PERFORM gw_publish_resource(res, 'updated');
        END IF;
        RETURN;
    END IF;

    IF r.status <> 'succeeded' THEN
        RETURN;
    END IF;
    v_name := coalesce(r.inputs #>> string_to_array(ltrim(coalesce(spec ->> 'name',
                                                   a.definition ->> 'resource_key', ''), '/'), '/'),
                       r.id::text);
    v_ttl := coalesce(r.ttl_seconds, (ttl ->> 'default_seconds')::integer);
    v_max := (ttl ->> 'max_seconds')::integer;
    v_ext := coalesce((ttl ->> 'max_extension_seconds')::integer, 0);
    SELECT * INTO res FROM gw_resources
    WHERE action_id = r.action_id AND name = v_name AND status <> 'deleted' FOR UPDATE;
    IF NOT FOUND THEN
        -- Two runs naming the same resource may finish at once: the partial
        -- unique index decides, and the loser becomes an update.
        INSERT INTO gw_resources (action_id, kind, name, owner_subject, owner_teams, created_by_run,
                                  resource_key, worker_type, outputs, expires_at, max_expires_at,
                                  warn_before_s)
        VALUES (r.action_id, coalesce(spec ->> 'kind', r.action_id), v_name, r.requested_by,
                r.requested_teams, r.id, r.resource_key, r.worker_type, coalesce(r.outputs, '{}'),
                CASE WHEN v_ttl IS NULL THEN NULL
                     ELSE clock_timestamp() + make_interval(secs => v_ttl) END,
                CASE WHEN v_max IS NULL THEN NULL
                     ELSE clock_timestamp() + make_interval(secs => v_max + v_ext) END,
                coalesce((ttl ->> 'warn_before_seconds')::integer, 3600))
        ON CONFLICT (action_id, name) WHERE status <> 'deleted' DO NOTHING
        RETURNING * INTO res;
        IF FOUND THEN
            UPDATE gw_runs SET resource_id = res.id WHERE id = r.id;
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES (r.requested_by, 'resource.created', 'resource:' || res.id,
                    jsonb_build_object('run', r.id, 'kind', res.kind, 'name', res.name,
                                       'expires_at', gw_ts(res.expires_at)));
            PERFORM gw_publish_resource(res, 'created');
            RETURN;
        END IF;
        SELECT * INTO res FROM gw_resources
        WHERE action_id = r.action_id AND name = v_name AND status <> 'deleted' FOR UPDATE;
    END IF;
    -- An update of a live resource: new outputs, same lifetime.
    UPDATE gw_resources SET outputs = coalesce(r.outputs, '{}'), updated_at = clock_timestamp()
    WHERE id = res.id RETURNING * INTO res;
    UPDATE gw_runs SET resource_id = res.id WHERE id = r.id;
    PERFORM gw_publish_resource(res, 'updated');
END $$;
