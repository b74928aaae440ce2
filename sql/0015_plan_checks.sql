-- The compliance gate on the Terraform plan (issue 17, decision 0066): the
-- worker's verdict on the plan, {"passed": bool, "findings": [{check, rule,
-- severity, address, message}]}, kept with the run so the API, the approvers
-- and the audit log see the same findings. NULL: the action has no checks.
ALTER TABLE gw_runs ADD COLUMN plan_checks jsonb;
