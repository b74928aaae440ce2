-- How far back every event is known to be applied (issue 10, decision 0019).
-- Each sink's report now carries the age of its least recent own probe that
-- came back through its apply queue: every event sent before
-- fresh_at = report time - that age is in PostgreSQL, on every partition the
-- replica owns. The reaper adds the lag of the least fresh recent report to
-- the heartbeat timeout, so a replica that died just after saying "caught
-- up" holds its last horizon still (its partitions are not applied until
-- another replica takes them) instead of letting the others judge runs
-- whose heartbeats sit unapplied in its partitions.

ALTER TABLE gw_sink_states ADD COLUMN fresh_at timestamptz;

CREATE FUNCTION gw_sink_report(p_instance text, p_partitions integer, p_caught_up boolean,
                               p_fresh_age_ms integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gw_sink_states (instance, partitions, caught_up, seen_at, fresh_at)
    VALUES (p_instance, p_partitions, p_caught_up, clock_timestamp(),
            clock_timestamp() - make_interval(secs => p_fresh_age_ms / 1000.0))
    ON CONFLICT (instance) DO UPDATE
        SET partitions = excluded.partitions, caught_up = excluded.caught_up,
            seen_at = excluded.seen_at, fresh_at = excluded.fresh_at;
    DELETE FROM gw_sink_states WHERE seen_at < clock_timestamp() - interval '1 hour';
END $$;

-- The lag of the least fresh report of the last 10 seconds (the window
-- gw_sinks_caught_up uses); 0 when no report carries a horizon (a replica of
-- an earlier version).
CREATE FUNCTION gw_sinks_lag() RETURNS interval LANGUAGE sql STABLE AS $$
    SELECT greatest(coalesce(clock_timestamp() - min(fresh_at), interval '0'), interval '0')
    FROM gw_sink_states WHERE seen_at > clock_timestamp() - interval '10 seconds'
$$;
