-- Submission: a plan-first approval starts as a queued plan.
CREATE OR REPLACE FUNCTION gw_plan_first_submit(p_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
BEGIN
    UPDATE gw_runs SET status = 'queued', operation = 'plan', queued_at = clock_timestamp(),
                       approval_expires_at = NULL, updated_at = clock_timestamp()
    WHERE id = p_id AND status = 'pending_approval' RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (r.id, r.attempt, 'pending_approval', 'queued', 'plan_first', 'gangway');
    PERFORM gw_enqueue_run(r);
END $$;
