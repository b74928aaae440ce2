-- Approvals, quotas and break-glass.
--
-- An action's approval rule (chosen by the broker from the inputs) travels
-- with the run; decisions are rows in gw_approvals, unique per approver, and
-- the run leaves pending_approval under its row lock, so concurrent
-- approvals move it to queued exactly once. Quotas are counted inside the
-- submission transaction under a per-action advisory lock, so concurrent
-- submissions cannot both take the last slot.

ALTER TABLE gw_runs
    ADD COLUMN approval_rule jsonb,          -- {"approvals": n, "from_teams": [...], "from_roles": [...], "any_rejection_rejects": bool}
    ADD COLUMN approval_expires_at timestamptz,
    ADD COLUMN inputs_hash text,
    ADD COLUMN break_glass_reason text;
CREATE INDEX gw_runs_pending ON gw_runs (approval_expires_at) WHERE status = 'pending_approval';
CREATE INDEX gw_runs_quota ON gw_runs (action_id, requested_by, created_at);

CREATE TABLE gw_approvals (
    run_id      uuid        NOT NULL REFERENCES gw_runs (id),
    approver    text        NOT NULL,
    decision    text        NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     text,
    inputs_hash text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, approver)
);

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
        'parent_run', r.parent_run_id,
        'resource', r.resource_id,
        'ttl_seconds', r.ttl_seconds,
        'cancel_requested_at', gw_ts(r.cancel_requested_at),
        'break_glass', CASE WHEN r.break_glass_reason IS NULL THEN NULL
                            ELSE jsonb_build_object('reason', r.break_glass_reason) END,
        'approval', CASE WHEN r.approval_rule IS NULL THEN NULL ELSE jsonb_build_object(
            'required', r.approval_rule -> 'approvals',
            'from_teams', r.approval_rule -> 'from_teams',
            'from_roles', r.approval_rule -> 'from_roles',
            'expires_at', gw_ts(r.approval_expires_at),
            'inputs_hash', r.inputs_hash,
            'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'approver', a.approver, 'decision', a.decision, 'comment', a.comment,
                    'at', gw_ts(a.created_at)) ORDER BY a.created_at)
                FROM gw_approvals a WHERE a.run_id = r.id), '[]'::jsonb)) END,
        'created_at', gw_ts(r.created_at),
        'updated_at', gw_ts(r.updated_at),
        'queued_at', gw_ts(r.queued_at),
        'started_at', gw_ts(r.started_at),
        'finished_at', gw_ts(r.finished_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text))
$$;

-- Counts the action's quota for this requester. Returns NULL when within
-- bounds, else {"limit": "...", "retry_after": seconds}.
CREATE FUNCTION gw_quota_check(p_action text, p_subject text, p_teams text[], p_quota jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    lim integer;
    win integer;
    n integer;
    oldest timestamptz;
    t text;
BEGIN
    IF p_quota IS NULL THEN
        RETURN NULL;
    END IF;
    -- One submission at a time per action while it counts: no two requests
    -- can both take the last slot.
    PERFORM pg_advisory_xact_lock(hashtext('gangway.quota:' || p_action));

    lim := (p_quota ->> 'max_concurrent')::integer;
    IF lim IS NOT NULL THEN
        SELECT count(*) INTO n FROM gw_runs
        WHERE action_id = p_action
          AND status IN ('accepted', 'pending_approval', 'queued', 'running');
        IF n >= lim THEN
            RETURN jsonb_build_object('limit', 'max_concurrent', 'max', lim, 'retry_after', 5);
        END IF;
    END IF;

    lim := (p_quota -> 'per_user' ->> 'max_runs')::integer;
    win := (p_quota -> 'per_user' ->> 'window_seconds')::integer;
    IF lim IS NOT NULL THEN
        SELECT count(*), min(created_at) INTO n, oldest FROM (
            SELECT created_at FROM gw_runs
            WHERE action_id = p_action AND requested_by = p_subject
              AND created_at > clock_timestamp() - make_interval(secs => win)
            ORDER BY created_at DESC LIMIT lim) recent;
        IF n >= lim THEN
            RETURN jsonb_build_object('limit', 'per_user', 'max', lim, 'window_seconds', win,
                'retry_after', greatest(1, ceil(extract(epoch FROM
                    oldest + make_interval(secs => win) - clock_timestamp()))::integer));
        END IF;
    END IF;

    lim := (p_quota -> 'per_team' ->> 'max_runs')::integer;
    win := (p_quota -> 'per_team' ->> 'window_seconds')::integer;
    IF lim IS NOT NULL THEN
        FOREACH t IN ARRAY coalesce(p_teams, '{}') LOOP
            SELECT count(*), min(created_at) INTO n, oldest FROM (
                SELECT created_at FROM gw_runs
                WHERE action_id = p_action AND t = ANY (requested_teams)
                  AND created_at > clock_timestamp() - make_interval(secs => win)
                ORDER BY created_at DESC LIMIT lim) recent;
            IF n >= lim THEN
                RETURN jsonb_build_object('limit', 'per_team', 'team', t, 'max', lim,
                    'window_seconds', win,
                    'retry_after', greatest(1, ceil(extract(epoch FROM
                        oldest + make_interval(secs => win) - clock_timestamp()))::integer));
            END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION gw_webhook(p_kind text, p_payload jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO gw_webhooks (kind, payload) VALUES (p_kind, p_payload)
$$;

-- Submission with approval, quota and break-glass. `refused` is NULL when
-- the run was accepted (or replayed), else the quota verdict.
DROP FUNCTION gw_submit_run(uuid, text, text, text, text, jsonb, jsonb, text, text[], text, text,
                            integer, integer, boolean, jsonb, integer);
CREATE FUNCTION gw_submit_run(
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
    IF pending THEN
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

-- A decision on a pending run. outcome: recorded | approved | rejected |
-- not_found | not_pending | self_approval | not_eligible | already_decided
CREATE FUNCTION gw_decide(p_id uuid, p_approver text, p_teams text[], p_roles text[],
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
    INSERT INTO gw_approvals (run_id, approver, decision, comment, inputs_hash)
    VALUES (r.id, p_approver, p_decision, p_comment, r.inputs_hash)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'already_decided'::text, gw_run_json(r);
        RETURN;
    END IF;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_approver, 'approval.' || p_decision, 'run:' || r.id,
            jsonb_strip_nulls(jsonb_build_object('comment', p_comment, 'inputs_hash', r.inputs_hash)));

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
    -- Only approvals given for these exact inputs count.
    SELECT count(*) INTO approvals FROM gw_approvals
    WHERE run_id = r.id AND decision = 'approve' AND inputs_hash = r.inputs_hash;
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

-- Pending runs waiting too long expire; part of the reaper's sweep.
CREATE FUNCTION gw_expire_approvals(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    n integer := 0;
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
