-- The resource part of the reaper: warn, expire, retry failed teardowns.
CREATE OR REPLACE FUNCTION gw_reap_resources(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    res gw_resources;
    n integer := 0;
BEGIN
    FOR res IN SELECT * FROM gw_resources
               WHERE status = 'active' AND warned_at IS NULL AND expires_at IS NOT NULL
                 AND expires_at - make_interval(secs => warn_before_s) <= clock_timestamp()
                 AND expires_at > clock_timestamp()
               LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        UPDATE gw_resources SET warned_at = clock_timestamp() WHERE id = res.id;
        INSERT INTO gw_webhooks (kind, payload)
        VALUES ('resource.expiring', jsonb_build_object(
            'type', 'resource.expiring', 'resource', gw_resource_json(res),
            'text', format('Gangway: %s "%s" owned by %s expires at %s. Extend it with POST /v1/resources/%s/extend.',
                           res.kind, res.name, res.owner_subject, gw_ts(res.expires_at), res.id)));
        n := n + 1;
    END LOOP;

    FOR res IN SELECT * FROM gw_resources
               WHERE status = 'active' AND expires_at <= clock_timestamp()
               ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        PERFORM gw_start_teardown(res, 'reaper', 'expired');
        n := n + 1;
    END LOOP;

    -- Failed teardowns due for another try (gw_resource_after_run set when).
    FOR res IN SELECT * FROM gw_resources WHERE status = 'teardown_failed'
                   AND next_teardown_at <= clock_timestamp()
               ORDER BY next_teardown_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        PERFORM gw_start_teardown(res, 'reaper', 'teardown retry');
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
