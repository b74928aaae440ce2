-- A workflow's own timeout_seconds (docs/workflows.md#timeout, decision
-- 0071): when the reaper found the parent past its deadline. Set once per
-- start or resume; while set, gw_wf_advance compensates and ends the
-- parent timed_out. NULL for every other run.
ALTER TABLE gw_runs ADD COLUMN wf_timed_out_at timestamptz;
-- Runs from before this migration started when a workflow's own timeout
-- was not enforced (and an undeclared one was 600 s, not a day): the
-- reaper leaves them alone rather than compensate a workflow in flight
-- during an upgrade. Every row existing now gets true; new rows false.
ALTER TABLE gw_runs ADD COLUMN wf_deadline_exempt boolean NOT NULL DEFAULT true;
ALTER TABLE gw_runs ALTER COLUMN wf_deadline_exempt SET DEFAULT false;
