-- Group commit of accepts without eager publish: gw_submit_runs_eager's
-- first five columns. The name and result brokers before decision 0076
-- call (docs/decisions/0076-eager-publish.md); this release's brokers call
-- gw_submit_runs_eager. Same arguments, same checks, same rows.
CREATE OR REPLACE FUNCTION gw_submit_runs(p_args jsonb)
RETURNS TABLE (i integer, run jsonb, created boolean, conflict boolean, refused jsonb)
LANGUAGE sql AS $$
    SELECT e.i, e.run, e.created, e.conflict, e.refused FROM gw_submit_runs_eager(p_args - 'lease') e
$$;
