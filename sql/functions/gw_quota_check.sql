-- Counts the action's quota for this requester. Returns NULL when within
-- bounds, else {"limit": "...", "retry_after": seconds}.
CREATE OR REPLACE FUNCTION gw_quota_check(p_action text, p_subject text, p_teams text[], p_quota jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    lim integer;
    win integer;
    n integer;
    oldest timestamptz;
    t text;
BEGIN
    IF p_quota IS NULL THEN
        RETURN NULL;
    END IF;
    -- One submission at a time per action while it counts: no two requests
    -- can both take the last slot.
    PERFORM pg_advisory_xact_lock(hashtext('gangway.quota:' || p_action));

    lim := (p_quota ->> 'max_concurrent')::integer;
    IF lim IS NOT NULL THEN
        -- Counted up to the limit only: n >= lim either way, and an action
        -- with a million runs queued (accepted before a lower limit, say)
        -- costs lim index entries per submission, not a million.
        SELECT count(*) INTO n FROM (
            SELECT 1 FROM gw_runs
            WHERE action_id = p_action
              AND status IN ('accepted', 'pending_approval', 'queued', 'running')
            LIMIT lim) active;
        IF n >= lim THEN
            RETURN jsonb_build_object('limit', 'max_concurrent', 'max', lim, 'retry_after', 5);
        END IF;
    END IF;

    lim := (p_quota -> 'per_user' ->> 'max_runs')::integer;
    win := (p_quota -> 'per_user' ->> 'window_seconds')::integer;
    IF lim IS NOT NULL THEN
        SELECT count(*), min(created_at) INTO n, oldest FROM (
            SELECT created_at FROM gw_runs
            WHERE action_id = p_action AND requested_by = p_subject
              AND created_at > clock_timestamp() - make_interval(secs => win)
            ORDER BY created_at DESC LIMIT lim) recent;
        IF n >= lim THEN
            RETURN jsonb_build_object('limit', 'per_user', 'max', lim, 'window_seconds', win,
                'retry_after', greatest(1, ceil(extract(epoch FROM
                    oldest + make_interval(secs => win) - clock_timestamp()))::integer));
        END IF;
    END IF;

    lim := (p_quota -> 'per_team' ->> 'max_runs')::integer;
    win := (p_quota -> 'per_team' ->> 'window_seconds')::integer;
    IF lim IS NOT NULL THEN
        FOREACH t IN ARRAY coalesce(p_teams, '{}') LOOP
            SELECT count(*), min(created_at) INTO n, oldest FROM (
                SELECT created_at FROM gw_runs
                WHERE action_id = p_action AND t = ANY (requested_teams)
                  AND created_at > clock_timestamp() - make_interval(secs => win)
                ORDER BY created_at DESC LIMIT lim) recent;
            IF n >= lim THEN
                RETURN jsonb_build_object('limit', 'per_team', 'team', t, 'max', lim,
                    'window_seconds', win,
                    'retry_after', greatest(1, ceil(extract(epoch FROM
                        oldest + make_interval(secs => win) - clock_timestamp()))::integer));
            END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
