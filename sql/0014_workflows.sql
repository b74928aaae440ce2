-- Workflows (docs/workflows.md, decision 0065): an action with steps runs as
-- a parent run (worker_type 'workflow', never claimed) whose steps are
-- child runs (parent_run_id) naming their step; an undo is a child run with
-- operation 'undo'. The parent keeps where the workflow stands.
-- Operation 'undo' is added to gw_runs_operation_check by
-- sql/functions/gw_ensure_run_operation.sql, not here: 0015 redefines the
-- whole list, and either order of the two would lose a value.
-- A child run's step id (NULL for every other run).
ALTER TABLE gw_runs ADD COLUMN step_id text;
-- The parent: 'forward' while steps start, 'compensating' once a step
-- failed or a cancel came (undo steps run), NULL for other runs.
ALTER TABLE gw_runs ADD COLUMN wf_phase text
    CHECK (wf_phase IN ('forward', 'compensating'));
-- The parent: steps whose `when` did not match (not run, not undone).
ALTER TABLE gw_runs ADD COLUMN wf_skipped text[];
-- The parent: the step whose failure stopped the workflow.
ALTER TABLE gw_runs ADD COLUMN wf_failed_step text;
-- The parent, once ended failed or cancelled: every undo that had to run succeeded.
ALTER TABLE gw_runs ADD COLUMN compensated boolean;
CREATE INDEX gw_runs_parent_idx ON gw_runs (parent_run_id, created_at)
    WHERE parent_run_id IS NOT NULL;
