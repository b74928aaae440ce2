-- The compliance gate on the Terraform plan (issue 17, decision 0066): the
-- worker's verdict on the plan, {"passed": bool, "findings": [{check, rule,
-- severity, address, message}]}, kept with the run so the API, the approvers
-- and the audit log see the same findings. NULL: the action has no checks.
ALTER TABLE gw_runs ADD COLUMN plan_checks jsonb;

-- Drift (issue 17 part 3, decision 0067): a scheduled check of each live
-- resource of an action that declares `drift`, run as a child run with
-- operation 'drift' (the reconcile machinery of decision 0045, on a timer).
ALTER TABLE gw_runs DROP CONSTRAINT gw_runs_operation_check;
ALTER TABLE gw_runs ADD CONSTRAINT gw_runs_operation_check
    CHECK (operation IN ('create', 'teardown', 'plan', 'reconcile', 'drift'));
ALTER TABLE gw_resources
    ADD COLUMN drift_status text CHECK (drift_status IN ('in_sync', 'drifted', 'check_failed')),
    ADD COLUMN drift_summary jsonb,          -- what the last check found (plan summary, addresses)
    ADD COLUMN drift_checked_at timestamptz,
    ADD COLUMN drift_next_at timestamptz,    -- NULL: not scheduled yet
    ADD COLUMN drift_run_id uuid REFERENCES gw_runs (id);
CREATE INDEX gw_resources_drift_due ON gw_resources (drift_next_at) WHERE status = 'active';
CREATE INDEX gw_resources_drift ON gw_resources (drift_status) WHERE status <> 'deleted';
