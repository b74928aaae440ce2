-- A workflow's own timeout_seconds (docs/workflows.md#timeout, decision
-- 0071): when the reaper found the parent past its deadline. Set once per
-- start or resume; while set, gw_wf_advance compensates and ends the
-- parent timed_out. NULL for every other run.
ALTER TABLE gw_runs ADD COLUMN wf_timed_out_at timestamptz;
