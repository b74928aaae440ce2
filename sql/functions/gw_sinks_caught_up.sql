-- Heartbeats are judged only when the recent reports cover as many
-- partitions as the group has ever had and every one of them is caught up.
CREATE OR REPLACE FUNCTION gw_sinks_caught_up() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    total integer;
    lagging integer;
    known integer;
BEGIN
    SELECT coalesce(sum(partitions), 0), count(*) FILTER (WHERE NOT caught_up)
    INTO total, lagging
    FROM gw_sink_states WHERE seen_at > clock_timestamp() - interval '10 seconds';
    INSERT INTO gw_sink_partitions_seen (id, max) VALUES (1, total)
    ON CONFLICT (id) DO UPDATE SET max = greatest(gw_sink_partitions_seen.max, excluded.max)
    RETURNING max INTO known;
    RETURN total > 0 AND lagging = 0 AND total >= known;
END $$;
