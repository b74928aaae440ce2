-- What a finished reconcile step (decision 0045) does to the run it checks,
-- under that run's row lock: no changes left -> the flag is cleared, with an
-- audit entry; drift -> the flag stays and the plan summary is kept on the
-- run (reconcile_drift), audited; the step failed -> audited, the flag
-- stays. A step that is no longer the run's latest, or a run an operator
-- cleared meanwhile, is left alone. Called from gw_finish_run.
CREATE OR REPLACE FUNCTION gw_reconcile_after_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p gw_runs;
    changes jsonb := r.outputs #> '{reconcile,changes}';
BEGIN
    SELECT * INTO p FROM gw_runs WHERE id = r.parent_run_id FOR UPDATE;
    IF NOT FOUND OR p.reconcile_run_id IS DISTINCT FROM r.id OR NOT p.needs_reconciliation THEN
        RETURN;
    END IF;
    IF r.status = 'succeeded' AND changes = 'false'::jsonb THEN
        UPDATE gw_runs SET needs_reconciliation = false, reconciled_at = clock_timestamp(),
                           reconcile_drift = NULL, updated_at = clock_timestamp()
        WHERE id = p.id;
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES ('gangway', 'run.reconciled', 'run:' || p.id,
                jsonb_strip_nulls(jsonb_build_object('reconcile_run', r.id, 'result', 'no_changes',
                                                     'plan', r.outputs -> 'plan')));
    ELSIF r.status = 'succeeded' AND changes = 'true'::jsonb THEN
        UPDATE gw_runs SET reconcile_drift = coalesce(r.outputs -> 'plan', '{}'),
                           updated_at = clock_timestamp()
        WHERE id = p.id;
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES ('gangway', 'run.reconcile_drift', 'run:' || p.id,
                jsonb_strip_nulls(jsonb_build_object('reconcile_run', r.id, 'result', 'changes',
                                                     'plan', r.outputs -> 'plan')));
    ELSE
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES ('gangway', 'run.reconcile_failed', 'run:' || p.id,
                jsonb_strip_nulls(jsonb_build_object('reconcile_run', r.id, 'status', r.status,
                                                     'reason', r.reason)));
    END IF;
END $$;
