-- Decisions now also bind to the plan (when there is one).
-- p_id is the run; p_args the decision (gw_decision_args names its keys).
CREATE OR REPLACE FUNCTION gw_decide(p_id uuid, p_args jsonb)
RETURNS TABLE (outcome text, run jsonb) LANGUAGE plpgsql AS $$
DECLARE
    -- acknowledge_findings (boolean, decision 0066) is gw_decide's own: the
    -- extension decisions that share gw_decision_args have no plan.
    dec record := gw_decision_args(p_args - 'acknowledge_findings', 'gw_decide'); -- approver, teams, roles, ...
    ack boolean := CASE WHEN jsonb_typeof(p_args -> 'acknowledge_findings') = 'boolean'
                        THEN (p_args ->> 'acknowledge_findings')::boolean ELSE false END;
    r gw_runs;
    rule jsonb;
    approvals integer;
    eligible boolean;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RETURN QUERY SELECT 'not_found'::text, NULL::jsonb; RETURN; END IF;
    IF r.status <> 'pending_approval' THEN
        RETURN QUERY SELECT 'not_pending'::text, gw_run_json(r);
        RETURN;
    END IF;
    -- Separation of duties compares canonical subjects (gw_subject_key): the
    -- broker's are canonical, a row from before may not be.
    IF gw_subject_key(r.requested_by) = gw_subject_key(dec.approver) THEN
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (dec.approver, 'approval.denied', 'run:' || r.id, jsonb_build_object('why', 'self_approval'));
        RETURN QUERY SELECT 'self_approval'::text, gw_run_json(r);
        RETURN;
    END IF;
    rule := r.approval_rule;
    eligible := (jsonb_array_length(coalesce(rule -> 'from_teams', '[]')) = 0
                 AND jsonb_array_length(coalesce(rule -> 'from_roles', '[]')) = 0)
        OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(rule -> 'from_teams', '[]')) t
                   WHERE t = ANY (coalesce(dec.teams, '{}')))
        OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(rule -> 'from_roles', '[]')) t
                   WHERE t = ANY (coalesce(dec.roles, '{}')));
    IF NOT eligible THEN
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (dec.approver, 'approval.denied', 'run:' || r.id, jsonb_build_object('why', 'not_eligible'));
        RETURN QUERY SELECT 'not_eligible'::text, gw_run_json(r);
        RETURN;
    END IF;
    -- A plan that failed its compliance checks is approved only by someone
    -- who says they saw the findings (decision 0066).
    IF dec.decision = 'approve' AND r.plan_checks ->> 'passed' = 'false'
       AND NOT ack THEN
        RETURN QUERY SELECT 'findings_not_acknowledged'::text, gw_run_json(r);
        RETURN;
    END IF;
    -- One decision per person, whatever spelling an earlier one was recorded in.
    IF EXISTS (SELECT 1 FROM gw_approvals a WHERE a.run_id = r.id
               AND gw_subject_key(a.approver) = gw_subject_key(dec.approver)) THEN
        RETURN QUERY SELECT 'already_decided'::text, gw_run_json(r); RETURN;
    END IF;
    INSERT INTO gw_approvals (run_id, approver, decision, comment, inputs_hash, plan_sha256)
    VALUES (r.id, dec.approver, dec.decision, dec.comment, r.inputs_hash, r.plan_sha256)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN RETURN QUERY SELECT 'already_decided'::text, gw_run_json(r); RETURN; END IF;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (dec.approver, 'approval.' || dec.decision, 'run:' || r.id,
            jsonb_strip_nulls(jsonb_build_object('comment', dec.comment, 'inputs_hash', r.inputs_hash,
                                                 'plan_sha256', r.plan_sha256,
                                                 'acknowledged_findings',
                                                 CASE WHEN dec.decision = 'approve'
                                                           AND r.plan_checks ->> 'passed' = 'false'
                                                      THEN r.plan_checks -> 'findings' END)));

    IF dec.decision = 'reject' AND coalesce((rule ->> 'any_rejection_rejects')::boolean, true) THEN
        PERFORM gw_finish_run(r.id, 'rejected', 'rejected by ' || dec.approver, NULL, dec.approver, false);
        SELECT * INTO r FROM gw_runs WHERE id = p_id;
        PERFORM gw_webhook('approval.decided', jsonb_build_object('type', 'approval.decided',
            'decision', 'rejected', 'run', gw_run_json(r),
            'text', format('Gangway: %s rejected the run of %s requested by %s.', dec.approver,
                           r.action_id, r.requested_by)));
        RETURN QUERY SELECT 'rejected'::text, gw_run_json(r);
        RETURN;
    END IF;
    -- Only approvals given for these exact inputs (and this exact plan) count.
    SELECT count(DISTINCT gw_subject_key(approver)) INTO approvals FROM gw_approvals
    WHERE run_id = r.id AND decision = 'approve' AND inputs_hash = r.inputs_hash
      AND plan_sha256 IS NOT DISTINCT FROM r.plan_sha256;
    IF approvals >= coalesce((rule ->> 'approvals')::integer, 1) THEN
        UPDATE gw_runs SET status = 'queued', queued_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = r.id RETURNING * INTO r;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
        VALUES (r.id, r.attempt, 'pending_approval', 'queued', 'approved', dec.approver);
        PERFORM gw_enqueue_run(r);
        PERFORM gw_webhook('approval.decided', jsonb_build_object('type', 'approval.decided',
            'decision', 'approved', 'run', gw_run_json(r),
            'text', format('Gangway: the run of %s requested by %s is approved and queued.',
                           r.action_id, r.requested_by)));
        RETURN QUERY SELECT 'approved'::text, gw_run_json(r);
        RETURN;
    END IF;
    RETURN QUERY SELECT 'recorded'::text, gw_run_json(r);
END $$;
