-- Accepts a run: the run, its events, its audit entry and its outbox row in
-- one transaction. With an idempotency key, a repeat returns the first run
-- (created = false) and says whether the request body differed (conflict).
-- A plan-first approval starts with the plan. `refused` is NULL when the
-- run was accepted (or replayed), else the quota verdict.
--
-- One jsonb argument with named keys (gw_args says what is wrong with it):
--   id                 uuid of the new run (string, required)
--   action_id, action_version, worker_type   the action (strings, required)
--   key                resource key (string; default: the run id)
--   inputs, inputs_redacted   the inputs with and without secrets (objects, required)
--   subject, teams     the requester (string, array of strings; required)
--   idempotency_key, request_hash   replay detection (strings)
--   timeout_seconds, max_attempts   (integers, required)
--   retryable          (boolean, required)
--   secret_paths       JSON pointers of the secret inputs (array; default [])
--   ttl_seconds        the requested TTL (integer; NULL: the action's default)
--   approval           the approval rule chosen for these inputs (object)
--   quota              the action's quota (object)
--   break_glass        the break-glass reason (string)
--   justification      why the requester asks (string; shown to approvers, audited)
--   via                who really called for `subject`: a service token acting
--                      on behalf (Gangway-On-Behalf-Of), a Backstage plugin
--                      (obo), an incoming webhook (hook:<name>); audited
CREATE OR REPLACE FUNCTION gw_submit_run(p_args jsonb)
RETURNS TABLE (run jsonb, created boolean, conflict boolean, refused jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    a jsonb := gw_args(p_args, 'gw_submit_run', gw_submit_run_spec());
    p_id uuid := (a ->> 'id')::uuid;
    p_action_id text := a ->> 'action_id';
    p_action_version text := a ->> 'action_version';
    p_worker_type text := a ->> 'worker_type';
    p_key text := a ->> 'key';
    p_inputs jsonb := a -> 'inputs';
    p_inputs_redacted jsonb := a -> 'inputs_redacted';
    p_subject text := a ->> 'subject';
    p_teams text[] := gw_args_texts(a, 'teams');
    p_idem_key text := a ->> 'idempotency_key';
    p_request_hash text := a ->> 'request_hash';
    p_timeout integer := (a ->> 'timeout_seconds')::integer;
    p_max_attempts integer := (a ->> 'max_attempts')::integer;
    p_retryable boolean := (a ->> 'retryable')::boolean;
    p_secret_paths jsonb := nullif(a -> 'secret_paths', 'null');
    p_ttl integer := (a ->> 'ttl_seconds')::integer;
    p_approval jsonb := nullif(a -> 'approval', 'null');
    p_quota jsonb := nullif(a -> 'quota', 'null');
    p_break_glass text := a ->> 'break_glass';
    p_justification text := a ->> 'justification';
    p_via text := a ->> 'via';
    r gw_runs;
    verdict jsonb;
    pending boolean := p_approval IS NOT NULL AND p_break_glass IS NULL;
    plan_first boolean := pending AND coalesce((p_approval ->> 'plan_first')::boolean, false);
BEGIN
    IF p_idem_key IS NOT NULL THEN
        RETURN QUERY SELECT * FROM gw_submit_replay(p_subject, p_idem_key, p_request_hash);
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    verdict := gw_quota_check(p_action_id, p_subject, p_teams, p_quota);
    IF verdict IS NOT NULL AND p_idem_key IS NOT NULL THEN
        -- A retry that waited on the quota lock behind its own first request
        -- is a replay, not a new run over the quota.
        RETURN QUERY SELECT * FROM gw_submit_replay(p_subject, p_idem_key, p_request_hash);
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
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
                         approval_expires_at, inputs_hash, break_glass_reason, justification)
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
            encode(sha256(convert_to(p_inputs::text, 'UTF8')), 'hex'), p_break_glass, p_justification)
    ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        -- A concurrent request with the same key won the insert: a replay.
        RETURN QUERY SELECT * FROM gw_submit_replay(p_subject, p_idem_key, p_request_hash);
        RETURN;
    END IF;

    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, reason)
    VALUES (r.id, 1, NULL, 'accepted', p_subject, NULL),
           (r.id, 1, 'accepted', r.status, 'gangway',
            CASE WHEN p_break_glass IS NOT NULL THEN 'break_glass' END);
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_subject, 'run.submit', 'run:' || r.id,
            jsonb_build_object('action', p_action_id, 'version', p_action_version,
                               'inputs', p_inputs_redacted, 'status', r.status)
            || CASE WHEN p_justification IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('justification', p_justification) END
            || CASE WHEN p_via IS NULL THEN '{}'::jsonb
                    ELSE jsonb_build_object('via', p_via) END);
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
            'text', format('Gangway: %s asks to run %s; %s approval(s) needed from %s.%s Decide with POST /v1/runs/%s/decisions.',
                           p_subject, p_action_id, p_approval -> 'approvals',
                           coalesce(p_approval -> 'from_teams', '[]'::jsonb)
                               || coalesce(p_approval -> 'from_roles', '[]'::jsonb),
                           CASE WHEN p_justification IS NULL THEN ''
                                ELSE format(' Justification: "%s".', p_justification) END, r.id)));
    ELSE
        PERFORM gw_enqueue_run(r);
        IF r.worker_type = 'workflow' THEN
            -- Started at once (gw_enqueue_run_at): answer with what it is now.
            SELECT * INTO r FROM gw_runs WHERE id = r.id;
        END IF;
    END IF;
    RETURN QUERY SELECT gw_run_json(r), true, false, NULL::jsonb;
END $$;
