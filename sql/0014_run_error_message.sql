-- A failed run says why in its own document. run.failed carries a reason
-- (a closed set: schemas/events/run.failed.schema.json) and a message; the
-- reason became gw_runs.reason, but the message reached only
-- gw_worker_events, which no endpoint shows, so a run whose git path was
-- refused read "backend_error" and nothing more. The message is now kept with
-- the run and shown next to the reason:
--   "reason": "invalid_path",
--   "error": {"code": "invalid_path", "message": "files[0].path: destination path ..."}
-- only for failed runs whose worker sent a message (runs failed by the broker,
-- e.g. worker_lost, have no "error"). timed_out and cancelled already show
-- their message as the reason. Workers mask secrets in messages before they
-- send them; the message is cut at 4000 characters.
--
-- gw_apply_events is 0013's with the UPDATE of error_message; gw_run_json is
-- 0012's with "error".

ALTER TABLE gw_runs ADD COLUMN error_message text;

CREATE OR REPLACE FUNCTION gw_apply_events(p_events jsonb) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    r gw_runs;
    n integer := 0;
    v_run uuid;
    v_attempt integer;
    v_kind text;
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(p_events) LOOP
        v_run := (e ->> 'run_id')::uuid;
        v_attempt := (e ->> 'attempt')::integer;
        v_kind := e ->> 'kind';
        SELECT * INTO r FROM gw_runs WHERE id = v_run FOR UPDATE;
        CONTINUE WHEN NOT FOUND OR r.attempt <> v_attempt;
        IF v_kind = 'heartbeat' THEN
            IF r.status = 'running' THEN
                UPDATE gw_runs SET heartbeat_at = clock_timestamp() WHERE id = v_run;
                n := n + 1;
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO gw_worker_events (run_id, attempt, seq, kind, stream, line, data, worker_id)
        VALUES (v_run, v_attempt, (e ->> 'seq')::integer, v_kind, e ->> 'stream', e ->> 'line',
                e -> 'data', e ->> 'worker_id')
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;  -- a duplicate delivery
        n := n + 1;
        CONTINUE WHEN r.status <> 'running';
        IF v_kind IN ('started', 'log') THEN
            -- Proof of life at most once a second: each UPDATE rewrites the
            -- whole row and its indexes (heartbeat_at is indexed).
            IF r.heartbeat_at IS NULL OR r.heartbeat_at < clock_timestamp() - interval '1 second' THEN
                UPDATE gw_runs SET heartbeat_at = clock_timestamp() WHERE id = v_run;
            END IF;
        ELSIF v_kind = 'succeeded' THEN
            PERFORM gw_finish_run(v_run, 'succeeded', NULL,
                                  coalesce(e -> 'data' -> 'outputs', '{}'::jsonb),
                                  'worker:' || coalesce(e ->> 'worker_id', '?'), false);
        ELSIF v_kind IN ('failed', 'timed_out', 'cancelled') THEN
            IF v_kind = 'failed' THEN
                -- Before gw_finish_run, which reads the row, so that what it
                -- builds from the run carries the message.
                UPDATE gw_runs SET error_message = left(e -> 'data' ->> 'message', 4000)
                WHERE id = v_run;
            END IF;
            PERFORM gw_finish_run(v_run, v_kind,
                                  coalesce(e -> 'data' ->> 'reason', e -> 'data' ->> 'message', v_kind),
                                  NULL, 'worker:' || coalesce(e ->> 'worker_id', '?'), false);
        END IF;
    END LOOP;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION gw_run_json(r gw_runs) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    decisions jsonb;
BEGIN
    IF r.approval_rule IS NOT NULL THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'approver', a.approver, 'decision', a.decision, 'comment', a.comment,
                   'plan_sha256', a.plan_sha256, 'at', gw_ts(a.created_at)) ORDER BY a.created_at),
                   '[]'::jsonb)
          INTO decisions FROM gw_approvals a WHERE a.run_id = r.id;
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'id', r.id,
        'action', jsonb_build_object('id', r.action_id, 'version', r.action_version),
        'worker_type', r.worker_type,
        'operation', r.operation,
        'status', r.status,
        'reason', r.reason,
        'error', CASE WHEN r.status <> 'failed' OR r.error_message IS NULL THEN NULL
                      ELSE jsonb_build_object('code', r.reason, 'message', r.error_message) END,
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
            'decisions', decisions) END,
        'created_at', gw_ts(r.created_at),
        'updated_at', gw_ts(r.updated_at),
        'queued_at', gw_ts(r.queued_at),
        'started_at', gw_ts(r.started_at),
        'finished_at', gw_ts(r.finished_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text));
END $$;
