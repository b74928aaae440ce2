-- Pending runs waiting too long expire; part of the reaper's sweep.
CREATE OR REPLACE FUNCTION gw_expire_approvals(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := 0;
    r gw_runs;
BEGIN
    FOR r IN SELECT * FROM gw_runs
             WHERE status = 'pending_approval' AND approval_expires_at <= clock_timestamp()
             LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        PERFORM gw_finish_run(r.id, 'expired', 'approval_expired', NULL, 'reaper', false);
        PERFORM gw_webhook('approval.decided', jsonb_build_object('type', 'approval.decided',
            'decision', 'expired', 'run_id', r.id,
            'text', format('Gangway: the run of %s requested by %s expired without approval.',
                           r.action_id, r.requested_by)));
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
