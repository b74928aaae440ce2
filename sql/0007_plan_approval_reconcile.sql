-- Plan before approval, and reconciliation by an operator.
--
-- An action whose approval says "plan_first" runs a plan (attempt 1, the
-- backend's "plan" operation) before anyone is asked. When the plan
-- succeeds the run waits in pending_approval showing the plan summary;
-- approvals are bound to the plan's sha256 as well as to the inputs; the
-- approved run is applied as attempt 2 with exactly that plan (the backend
-- refuses a plan whose hash differs: "stale_plan").

ALTER TABLE gw_runs DROP CONSTRAINT gw_runs_operation_check;
ALTER TABLE gw_runs ADD CONSTRAINT gw_runs_operation_check
    CHECK (operation IN ('create', 'teardown', 'plan'));
ALTER TABLE gw_runs
    ADD COLUMN plan_sha256 text,
    ADD COLUMN plan_summary jsonb,
    ADD COLUMN reconciled_at timestamptz;
ALTER TABLE gw_approvals ADD COLUMN plan_sha256 text;

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

CREATE OR REPLACE FUNCTION gw_finish_run(p_id uuid, p_status text, p_reason text, p_outputs jsonb,
                                         p_actor text, p_reconcile boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old_status text;
    r gw_runs;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id;
    old_status := r.status;
    IF r.operation = 'plan' AND p_status = 'succeeded' THEN
        -- The plan is ready: now ask for approval, bound to this plan.
        UPDATE gw_runs SET status = 'pending_approval', operation = 'create',
                           attempt = attempt + 1, worker_id = NULL,
                           plan_sha256 = p_outputs ->> 'plan_sha256',
                           plan_summary = p_outputs -> 'plan',
                           approval_expires_at = clock_timestamp() + make_interval(secs =>
                               coalesce((approval_rule ->> 'expires_after_seconds')::integer, 86400)),
                           updated_at = clock_timestamp()
        WHERE id = p_id RETURNING * INTO r;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
        VALUES (r.id, r.attempt, old_status, 'pending_approval', 'plan_ready', p_actor);
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_actor, 'run.planned', 'run:' || r.id,
                jsonb_build_object('plan_sha256', r.plan_sha256, 'plan', r.plan_summary));
        PERFORM gw_webhook('approval.requested', jsonb_build_object(
            'type', 'approval.requested', 'run', gw_run_json(r),
            'text', format('Gangway: %s asks to apply %s (plan %s: %s). Decide with POST /v1/runs/%s/decisions.',
                           r.requested_by, r.action_id, left(r.plan_sha256, 12),
                           coalesce(r.plan_summary::text, 'no summary'), r.id)));
        RETURN;
    END IF;
    UPDATE gw_runs SET status = p_status, reason = p_reason, outputs = coalesce(p_outputs, outputs),
                       finished_at = clock_timestamp(), updated_at = clock_timestamp(),
                       needs_reconciliation = needs_reconciliation OR p_reconcile
    WHERE id = p_id RETURNING * INTO r;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (r.id, r.attempt, old_status, p_status, p_reason, p_actor);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'run.' || p_status, 'run:' || r.id,
            jsonb_strip_nulls(jsonb_build_object('attempt', r.attempt, 'reason', p_reason,
                                                 'needs_reconciliation', r.needs_reconciliation)));
    PERFORM gw_resource_after_run(r);
END $$;

-- Submission: a plan-first approval starts with the plan.
CREATE OR REPLACE FUNCTION gw_submit_run(
    p_id uuid, p_action_id text, p_action_version text, p_worker_type text, p_key text,
    p_inputs jsonb, p_inputs_redacted jsonb, p_subject text, p_teams text[],
    p_idem_key text, p_request_hash text, p_timeout integer, p_max_attempts integer,
    p_retryable boolean, p_secret_paths jsonb, p_ttl integer,
    p_approval jsonb, p_quota jsonb, p_break_glass text)
RETURNS TABLE (run jsonb, created boolean, conflict boolean, refused jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    verdict jsonb;
    pending boolean := p_approval IS NOT NULL AND p_break_glass IS NULL;
    plan_first boolean := pending AND coalesce((p_approval ->> 'plan_first')::boolean, false);
BEGIN
    IF p_idem_key IS NOT NULL THEN
        SELECT * INTO r FROM gw_runs WHERE requested_by = p_subject AND idempotency_key = p_idem_key;
        IF FOUND THEN
            RETURN QUERY SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash,
                                NULL::jsonb;
            RETURN;
        END IF;
    END IF;

    verdict := gw_quota_check(p_action_id, p_subject, p_teams, p_quota);
    IF verdict IS NOT NULL THEN
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_subject, 'run.denied', 'action:' || p_action_id,
                jsonb_build_object('why', 'quota', 'quota', verdict, 'inputs', p_inputs_redacted));
        RETURN QUERY SELECT NULL::jsonb, false, false, verdict;
        RETURN;
    END IF;

    INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                         inputs, inputs_redacted, requested_by, requested_teams,
                         idempotency_key, request_hash, timeout_seconds, max_attempts,
                         retryable, queued_at, secret_paths, ttl_seconds, approval_rule,
                         approval_expires_at, inputs_hash, break_glass_reason)
    VALUES (p_id, p_action_id, p_action_version, p_worker_type,
            CASE WHEN pending THEN 'pending_approval' ELSE 'queued' END,
            coalesce(p_key, p_id::text), p_inputs, p_inputs_redacted, p_subject,
            coalesce(p_teams, '{}'), p_idem_key, p_request_hash, p_timeout,
            greatest(p_max_attempts, 1), p_retryable,
            CASE WHEN pending THEN NULL ELSE clock_timestamp() END,
            coalesce(p_secret_paths, '[]'), p_ttl,
            CASE WHEN pending THEN p_approval END,
            CASE WHEN pending THEN clock_timestamp() + make_interval(secs =>
                coalesce((p_approval ->> 'expires_after_seconds')::integer, 86400)) END,
            encode(sha256(convert_to(p_inputs::text, 'UTF8')), 'hex'), p_break_glass)
    ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        SELECT * INTO r FROM gw_runs WHERE requested_by = p_subject AND idempotency_key = p_idem_key;
        RETURN QUERY SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash,
                            NULL::jsonb;
        RETURN;
    END IF;

    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, reason)
    VALUES (r.id, 1, NULL, 'accepted', p_subject, NULL),
           (r.id, 1, 'accepted', r.status, 'gangway',
            CASE WHEN p_break_glass IS NOT NULL THEN 'break_glass' END);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_subject, 'run.submit', 'run:' || r.id,
            jsonb_build_object('action', p_action_id, 'version', p_action_version,
                               'inputs', p_inputs_redacted, 'status', r.status));
    IF p_break_glass IS NOT NULL THEN
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_subject, 'run.break_glass', 'run:' || r.id,
                jsonb_build_object('action', p_action_id, 'reason', p_break_glass,
                                   'skipped_approval', p_approval IS NOT NULL));
        PERFORM gw_webhook('run.break_glass', jsonb_build_object(
            'type', 'run.break_glass', 'run', gw_run_json(r),
            'text', format('Gangway: %s used break-glass to run %s without approval: %s',
                           p_subject, p_action_id, p_break_glass)));
    END IF;
    IF plan_first THEN
        -- The approvers will see the plan: make it first.
        PERFORM gw_plan_first_submit(r.id);
        SELECT * INTO r FROM gw_runs WHERE id = r.id;
    ELSIF pending THEN
        PERFORM gw_webhook('approval.requested', jsonb_build_object(
            'type', 'approval.requested', 'run', gw_run_json(r),
            'text', format('Gangway: %s asks to run %s; %s approval(s) needed from %s. Decide with POST /v1/runs/%s/decisions.',
                           p_subject, p_action_id, p_approval -> 'approvals',
                           coalesce(p_approval -> 'from_teams', '[]'::jsonb)
                               || coalesce(p_approval -> 'from_roles', '[]'::jsonb), r.id)));
    ELSE
        PERFORM gw_enqueue_run(r);
    END IF;
    RETURN QUERY SELECT gw_run_json(r), true, false, NULL::jsonb;
END $$;

-- Decisions now also bind to the plan (when there is one).
CREATE OR REPLACE FUNCTION gw_decide(p_id uuid, p_approver text, p_teams text[], p_roles text[],
                                     p_decision text, p_comment text)
RETURNS TABLE (outcome text, run jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    rule jsonb;
    approvals integer;
    eligible boolean;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF r.status <> 'pending_approval' THEN
        RETURN QUERY SELECT 'not_pending'::text, gw_run_json(r);
        RETURN;
    END IF;
    IF r.requested_by = p_approver THEN
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_approver, 'approval.denied', 'run:' || r.id, jsonb_build_object('why', 'self_approval'));
        RETURN QUERY SELECT 'self_approval'::text, gw_run_json(r);
        RETURN;
    END IF;
    rule := r.approval_rule;
    eligible := (jsonb_array_length(coalesce(rule -> 'from_teams', '[]')) = 0
                 AND jsonb_array_length(coalesce(rule -> 'from_roles', '[]')) = 0)
        OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(rule -> 'from_teams', '[]')) t
                   WHERE t = ANY (coalesce(p_teams, '{}')))
        OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(rule -> 'from_roles', '[]')) t
                   WHERE t = ANY (coalesce(p_roles, '{}')));
    IF NOT eligible THEN
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES (p_approver, 'approval.denied', 'run:' || r.id, jsonb_build_object('why', 'not_eligible'));
        RETURN QUERY SELECT 'not_eligible'::text, gw_run_json(r);
        RETURN;
    END IF;
    INSERT INTO gw_approvals (run_id, approver, decision, comment, inputs_hash, plan_sha256)
    VALUES (r.id, p_approver, p_decision, p_comment, r.inputs_hash, r.plan_sha256)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'already_decided'::text, gw_run_json(r);
        RETURN;
    END IF;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_approver, 'approval.' || p_decision, 'run:' || r.id,
            jsonb_strip_nulls(jsonb_build_object('comment', p_comment, 'inputs_hash', r.inputs_hash,
                                                 'plan_sha256', r.plan_sha256)));

    IF p_decision = 'reject' AND coalesce((rule ->> 'any_rejection_rejects')::boolean, true) THEN
        PERFORM gw_finish_run(r.id, 'rejected', 'rejected by ' || p_approver, NULL, p_approver, false);
        SELECT * INTO r FROM gw_runs WHERE id = p_id;
        PERFORM gw_webhook('approval.decided', jsonb_build_object('type', 'approval.decided',
            'decision', 'rejected', 'run', gw_run_json(r),
            'text', format('Gangway: %s rejected the run of %s requested by %s.', p_approver,
                           r.action_id, r.requested_by)));
        RETURN QUERY SELECT 'rejected'::text, gw_run_json(r);
        RETURN;
    END IF;
    -- Only approvals given for these exact inputs (and this exact plan) count.
    SELECT count(*) INTO approvals FROM gw_approvals
    WHERE run_id = r.id AND decision = 'approve' AND inputs_hash = r.inputs_hash
      AND plan_sha256 IS NOT DISTINCT FROM r.plan_sha256;
    IF approvals >= coalesce((rule ->> 'approvals')::integer, 1) THEN
        UPDATE gw_runs SET status = 'queued', queued_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = r.id RETURNING * INTO r;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
        VALUES (r.id, r.attempt, 'pending_approval', 'queued', 'approved', p_approver);
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

-- The claim: a plan run gets operation "plan" in its backend config; the
-- approved apply gets the plan it must apply.
CREATE OR REPLACE FUNCTION gw_claim_run(p_id uuid, p_attempt integer, p_worker text)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    a gw_actions;
    res gw_resources;
    backend jsonb;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF r.attempt <> p_attempt THEN
        RETURN QUERY SELECT 'stale_attempt'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF r.status <> 'queued' THEN
        RETURN QUERY SELECT (CASE r.status
            WHEN 'running' THEN 'already_claimed'
            WHEN 'cancelled' THEN 'cancelled'
            WHEN 'pending_approval' THEN 'not_approved'
            WHEN 'accepted' THEN 'not_approved'
            ELSE 'ended' END)::text, NULL::jsonb;
        RETURN;
    END IF;
    UPDATE gw_runs SET status = 'running', worker_id = p_worker, started_at = clock_timestamp(),
                       heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = p_id RETURNING * INTO r;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, detail)
    VALUES (r.id, r.attempt, 'queued', 'running', 'worker:' || p_worker, NULL);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('worker:' || p_worker, 'run.claim', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
    SELECT * INTO a FROM gw_actions WHERE id = r.action_id AND version = r.action_version;
    IF r.resource_id IS NOT NULL THEN
        SELECT * INTO res FROM gw_resources WHERE id = r.resource_id;
    END IF;
    backend := a.definition -> 'backend';
    IF r.operation = 'teardown' THEN
        backend := backend || coalesce(a.definition -> 'teardown' -> 'backend', '{}');
    ELSIF r.operation = 'plan' THEN
        backend := backend || '{"operation": "plan"}';
    ELSIF r.plan_sha256 IS NOT NULL THEN
        backend := backend || jsonb_build_object('plan_sha256', r.plan_sha256);
    END IF;
    RETURN QUERY SELECT 'granted'::text, jsonb_strip_nulls(jsonb_build_object(
        'run_id', r.id, 'attempt', r.attempt, 'fence', r.attempt,
        'operation', r.operation,
        'resource_key', r.resource_key,
        'resource', CASE WHEN res.id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', res.id, 'kind', res.kind, 'name', res.name, 'outputs', res.outputs) END,
        'action', jsonb_build_object('id', a.id, 'version', a.version, 'worker_type', a.worker_type,
                                     'timeout_seconds', r.timeout_seconds, 'backend', backend),
        'inputs', r.inputs,
        'secret_paths', r.secret_paths,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams))));
END $$;

-- An operator clears needs_reconciliation after checking the target system.
-- outcome: reconciled | not_found | not_needed
CREATE FUNCTION gw_reconcile_run(p_id uuid, p_actor text, p_note text)
RETURNS TABLE (outcome text, run jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
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

CREATE OR REPLACE FUNCTION gw_run_json(r gw_runs) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'id', r.id,
        'action', jsonb_build_object('id', r.action_id, 'version', r.action_version),
        'worker_type', r.worker_type,
        'operation', r.operation,
        'status', r.status,
        'reason', r.reason,
        'attempt', r.attempt,
        'inputs', r.inputs_redacted,
        'outputs', r.outputs,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams)),
        'idempotency_key', r.idempotency_key,
        'needs_reconciliation', r.needs_reconciliation,
        'reconciled_at', gw_ts(r.reconciled_at),
        'parent_run', r.parent_run_id,
        'resource', r.resource_id,
        'ttl_seconds', r.ttl_seconds,
        'cancel_requested_at', gw_ts(r.cancel_requested_at),
        'break_glass', CASE WHEN r.break_glass_reason IS NULL THEN NULL
                            ELSE jsonb_build_object('reason', r.break_glass_reason) END,
        'plan', CASE WHEN r.plan_sha256 IS NULL THEN NULL
                     ELSE jsonb_build_object('sha256', r.plan_sha256, 'summary', r.plan_summary) END,
        'approval', CASE WHEN r.approval_rule IS NULL THEN NULL ELSE jsonb_build_object(
            'required', r.approval_rule -> 'approvals',
            'from_teams', r.approval_rule -> 'from_teams',
            'from_roles', r.approval_rule -> 'from_roles',
            'plan_first', r.approval_rule -> 'plan_first',
            'expires_at', gw_ts(r.approval_expires_at),
            'inputs_hash', r.inputs_hash,
            'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'approver', a.approver, 'decision', a.decision, 'comment', a.comment,
                    'plan_sha256', a.plan_sha256, 'at', gw_ts(a.created_at)) ORDER BY a.created_at)
                FROM gw_approvals a WHERE a.run_id = r.id), '[]'::jsonb)) END,
        'created_at', gw_ts(r.created_at),
        'updated_at', gw_ts(r.updated_at),
        'queued_at', gw_ts(r.queued_at),
        'started_at', gw_ts(r.started_at),
        'finished_at', gw_ts(r.finished_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text))
$$;
