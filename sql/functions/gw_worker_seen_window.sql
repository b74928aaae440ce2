-- How recent a worker's claim must be for its type to count as served
-- (docs/decisions/0036): the one place the window is set.
CREATE OR REPLACE FUNCTION gw_worker_seen_window() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '600 seconds' $$;
