-- Reconcile steps (decision 0045): a run flagged needs_reconciliation whose
-- backend can tell what happened gets a child run with operation
-- 'reconcile' (terraform: plan -detailed-exitcode against the same state).
-- The flagged run points at its latest reconcile step, and keeps the plan
-- summary of the drift the step found, if any.
ALTER TABLE gw_runs DROP CONSTRAINT gw_runs_operation_check;
ALTER TABLE gw_runs ADD CONSTRAINT gw_runs_operation_check
    CHECK (operation IN ('create', 'teardown', 'plan', 'reconcile'));
ALTER TABLE gw_runs ADD COLUMN reconcile_run_id uuid REFERENCES gw_runs (id);
ALTER TABLE gw_runs ADD COLUMN reconcile_drift jsonb;
