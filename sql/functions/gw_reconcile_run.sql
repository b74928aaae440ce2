-- An operator clears needs_reconciliation after checking the target system.
-- outcome: reconciled | not_found | not_needed
CREATE OR REPLACE FUNCTION gw_reconcile_run(p_id uuid, p_actor text, p_note text)
RETURNS TABLE (outcome text, run jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
BEGIN
    -- Under the run's row lock: two operators clearing it at once audit once.
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    IF NOT r.needs_reconciliation THEN
        RETURN QUERY SELECT 'not_needed'::text, gw_run_json(r);
        RETURN;
    END IF;
    UPDATE gw_runs SET needs_reconciliation = false, reconciled_at = clock_timestamp(),
                       updated_at = clock_timestamp()
    WHERE id = p_id RETURNING * INTO r;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'run.reconciled', 'run:' || r.id, jsonb_build_object('note', p_note));
    RETURN QUERY SELECT 'reconciled'::text, gw_run_json(r);
END $$;
