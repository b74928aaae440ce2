-- gw_ts is only as immutable as to_char; STABLE lets the planner inline it.
CREATE OR REPLACE FUNCTION gw_ts(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
