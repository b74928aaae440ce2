-- The lag of the least fresh report of the last 10 seconds (the window
-- gw_sinks_caught_up uses); 0 when no report carries a horizon (a replica of
-- an earlier version).
CREATE OR REPLACE FUNCTION gw_sinks_lag() RETURNS interval LANGUAGE sql STABLE AS $$
    SELECT greatest(coalesce(clock_timestamp() - min(fresh_at), interval '0'), interval '0')
    FROM gw_sink_states WHERE seen_at > clock_timestamp() - interval '10 seconds'
$$;
