-- A worker of `p_worker_type` claimed a run: note it for GET /v1/actions and
-- the "no_worker" warning. Written at most every few seconds per type (a
-- plain read first), so busy pools do not all queue on one row lock.
CREATE OR REPLACE FUNCTION gw_worker_seen(p_worker_type text, p_worker text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gw_worker_types_seen
               WHERE worker_type = p_worker_type
                 AND last_seen_at > clock_timestamp() - interval '5 seconds') THEN
        RETURN;
    END IF;
    INSERT INTO gw_worker_types_seen (worker_type, last_seen_at, last_worker)
    VALUES (p_worker_type, clock_timestamp(), p_worker)
    ON CONFLICT (worker_type) DO UPDATE
        SET last_seen_at = greatest(gw_worker_types_seen.last_seen_at, excluded.last_seen_at),
            last_worker = excluded.last_worker;
END $$;
