-- Each broker reports its event sink every reaper tick (gw_sink_states).
-- The four-argument form carries the age of the sink's least recent own
-- probe that came back through its apply queue, so fresh_at = report time -
-- that age (decision 0019). The three-argument form, without a horizon, is
-- the one replicas before decision 0019 call.
CREATE OR REPLACE FUNCTION gw_sink_report(p_instance text, p_partitions integer, p_caught_up boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gw_sink_states (instance, partitions, caught_up, seen_at)
    VALUES (p_instance, p_partitions, p_caught_up, clock_timestamp())
    ON CONFLICT (instance) DO UPDATE
        SET partitions = excluded.partitions, caught_up = excluded.caught_up,
            seen_at = excluded.seen_at;
    DELETE FROM gw_sink_states WHERE seen_at < clock_timestamp() - interval '1 hour';
END $$;

CREATE OR REPLACE FUNCTION gw_sink_report(p_instance text, p_partitions integer, p_caught_up boolean,
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
