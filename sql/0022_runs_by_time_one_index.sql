-- One index of the runs by creation time instead of two (issue 15).
-- gw_runs_by_time (created_at DESC, id DESC) served the run and resource
-- listings, whose keyset pages go backwards by (created_at, id);
-- gw_runs_dashboard (created_at, status, action_id) let the dashboard count
-- runs per day and status from the index. Both are full indexes, and no
-- status change of a run is a HOT update (status is indexed), so each got an
-- entry at the accept, the claim and the finish of every run.
-- This one serves both: a backward scan of (created_at, id) gives the
-- listings' order and their (created_at, id) < (t, id) cursor, and the
-- included status and action_id keep the dashboard's reads index-only.
-- bench/README.md, "Issue 15, part 12", has the WAL and CPU per run it saves;
-- tests/integration/test_sql_plans.py checks the listing's plan.
CREATE INDEX gw_runs_by_time_cover ON gw_runs (created_at, id) INCLUDE (status, action_id);
DROP INDEX gw_runs_by_time;
DROP INDEX gw_runs_dashboard;
