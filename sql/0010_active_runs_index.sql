-- O(1) as the backlog grows (issue 15): an index of the runs that are not
-- over yet, by action. gw_quota_check's max_concurrent count read every run
-- the action ever had (gw_runs_by_action) or, once most rows are of one
-- action, the whole table; with millions of finished runs that is a scan per
-- quota'd submission. This partial index holds only active runs, so the
-- count costs what is active, not what is history.
-- tests/integration/test_sql_plans.py checks every hot path's plans for
-- sequential scans of the big tables against a backlog.
CREATE INDEX gw_runs_active_by_action ON gw_runs (action_id)
    WHERE status IN ('accepted', 'pending_approval', 'queued', 'running');
