-- Fixes from review (docs/decisions/0015-review-fixes.md lists them):
-- a repeated claim by the same worker is granted again (a lost reply no
-- longer strands the run); claims check the worker type; a cancel asked for
-- during a plan is honoured; a plan without a hash fails; two runs naming
-- the same resource cannot turn a success into an error; a retry's backoff
-- is not undercut by the requeue sweep; an idempotent replay waiting on the
-- quota lock is answered as a replay; and heartbeats are judged only while
-- every broker replica's event sink is caught up.


DROP FUNCTION gw_claim_run(uuid, integer, text);
CREATE FUNCTION gw_claim_run(p_id uuid, p_attempt integer, p_worker text, p_worker_type text)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    a gw_actions;
    res gw_resources;
    backend jsonb;
    regrant boolean := false;
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
    IF p_worker_type IS NOT NULL AND p_worker_type <> r.worker_type THEN
        RETURN QUERY SELECT 'wrong_worker_type'::text, NULL::jsonb;
        RETURN;
    END IF;
    -- The same worker asking again for the same attempt: its first reply was
    -- lost. Grant it again (no new transition) instead of stranding the run.
    IF r.status = 'running' AND r.worker_id = p_worker THEN
        regrant := true;
    ELSIF r.status <> 'queued' THEN
        RETURN QUERY SELECT (CASE r.status
            WHEN 'running' THEN 'already_claimed'
            WHEN 'cancelled' THEN 'cancelled'
            WHEN 'pending_approval' THEN 'not_approved'
            WHEN 'accepted' THEN 'not_approved'
            ELSE 'ended' END)::text, NULL::jsonb;
        RETURN;
    END IF;
    IF NOT regrant THEN
        UPDATE gw_runs SET status = 'running', worker_id = p_worker, started_at = clock_timestamp(),
                           heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE id = p_id RETURNING * INTO r;
        INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, detail)
        VALUES (r.id, r.attempt, 'queued', 'running', 'worker:' || p_worker, NULL);
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES ('worker:' || p_worker, 'run.claim', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
    END IF;
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

CREATE OR REPLACE FUNCTION gw_finish_run(p_id uuid, p_status text, p_reason text, p_outputs jsonb,
                                         p_actor text, p_reconcile boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old_status text;
    r gw_runs;
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id;
    old_status := r.status;
    IF r.operation = 'plan' AND p_status = 'succeeded' AND r.cancel_requested_at IS NOT NULL THEN
        -- Cancelled while planning: the plan finished first; honour the cancel.
        p_status := 'cancelled';
        p_reason := coalesce(p_reason, 'cancelled during the plan');
    ELSIF r.operation = 'plan' AND p_status = 'succeeded'
          AND coalesce(p_outputs ->> 'plan_sha256', '') !~ '^[0-9a-f]{64}$' THEN
        -- Approvers must see a plan and the apply must be bound to it.
        p_status := 'failed';
        p_reason := 'plan_missing';
    END IF;
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

CREATE OR REPLACE FUNCTION gw_resource_after_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a gw_actions;
    res gw_resources;
    spec jsonb;
    ttl jsonb;
    v_name text;
    v_ttl integer;
    v_max integer;
    v_ext integer;
BEGIN
    SELECT * INTO a FROM gw_actions WHERE id = r.action_id AND version = r.action_version;
    spec := a.definition -> 'resource';
    IF spec IS NULL THEN
        RETURN;
    END IF;
    ttl := a.definition -> 'ttl';

    IF r.operation = 'teardown' THEN
        SELECT * INTO res FROM gw_resources WHERE id = r.resource_id FOR UPDATE;
        IF NOT FOUND OR res.teardown_run_id IS DISTINCT FROM r.id THEN
            RETURN;
        END IF;
        IF r.status = 'succeeded' THEN
            UPDATE gw_resources SET status = 'deleted', deleted_at = clock_timestamp(),
                                    updated_at = clock_timestamp(), needs_attention = false
            WHERE id = res.id RETURNING * INTO res;
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES ('gangway', 'resource.deleted', 'resource:' || res.id,
                    jsonb_build_object('run', r.id));
            PERFORM gw_publish_resource(res, 'deleted');
        ELSE
            -- Retry with backoff (1, 2, 4 ... 60 minutes) and flag it.
            UPDATE gw_resources SET status = 'teardown_failed', needs_attention = true,
                next_teardown_at = clock_timestamp()
                    + least(interval '60 minutes',
                            make_interval(secs => coalesce((ttl ->> 'teardown_retry_seconds')::integer, 60))
                            * power(2, teardown_attempts - 1)),
                updated_at = clock_timestamp()
            WHERE id = res.id RETURNING * INTO res;
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES ('gangway', 'resource.teardown_failed', 'resource:' || res.id,
                    jsonb_build_object('run', r.id, 'status', r.status, 'reason', r.reason));
            PERFORM gw_publish_resource(res, 'updated');
        END IF;
        RETURN;
    END IF;

    IF r.status <> 'succeeded' THEN
        RETURN;
    END IF;
    v_name := coalesce(r.inputs #>> string_to_array(ltrim(coalesce(spec ->> 'name',
                                                   a.definition ->> 'resource_key', ''), '/'), '/'),
                       r.id::text);
    v_ttl := coalesce(r.ttl_seconds, (ttl ->> 'default_seconds')::integer);
    v_max := (ttl ->> 'max_seconds')::integer;
    v_ext := coalesce((ttl ->> 'max_extension_seconds')::integer, 0);
    SELECT * INTO res FROM gw_resources
    WHERE action_id = r.action_id AND name = v_name AND status <> 'deleted' FOR UPDATE;
    IF FOUND THEN
        -- An update of a live resource: new outputs, same lifetime.
        UPDATE gw_resources SET outputs = coalesce(r.outputs, '{}'), updated_at = clock_timestamp()
        WHERE id = res.id RETURNING * INTO res;
        UPDATE gw_runs SET resource_id = res.id WHERE id = r.id;
        PERFORM gw_publish_resource(res, 'updated');
        RETURN;
    END IF;
    -- Two runs naming the same resource may finish at once: the partial
    -- unique index decides, and the loser becomes an update.
    INSERT INTO gw_resources (action_id, kind, name, owner_subject, owner_teams, created_by_run,
                              resource_key, worker_type, outputs, expires_at, max_expires_at,
                              warn_before_s)
    VALUES (r.action_id, coalesce(spec ->> 'kind', r.action_id), v_name, r.requested_by,
            r.requested_teams, r.id, r.resource_key, r.worker_type, coalesce(r.outputs, '{}'),
            CASE WHEN v_ttl IS NULL THEN NULL
                 ELSE clock_timestamp() + make_interval(secs => v_ttl) END,
            CASE WHEN v_max IS NULL THEN NULL
                 ELSE clock_timestamp() + make_interval(secs => v_max + v_ext) END,
            coalesce((ttl ->> 'warn_before_seconds')::integer, 3600))
    ON CONFLICT (action_id, name) WHERE status <> 'deleted' DO NOTHING
    RETURNING * INTO res;
    IF NOT FOUND THEN
        SELECT * INTO res FROM gw_resources
        WHERE action_id = r.action_id AND name = v_name AND status <> 'deleted' FOR UPDATE;
        UPDATE gw_resources SET outputs = coalesce(r.outputs, '{}'), updated_at = clock_timestamp()
        WHERE id = res.id RETURNING * INTO res;
        UPDATE gw_runs SET resource_id = res.id WHERE id = r.id;
        PERFORM gw_publish_resource(res, 'updated');
        RETURN;
    END IF;
    UPDATE gw_runs SET resource_id = res.id WHERE id = r.id;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (r.requested_by, 'resource.created', 'resource:' || res.id,
            jsonb_build_object('run', r.id, 'kind', res.kind, 'name', res.name,
                               'expires_at', gw_ts(res.expires_at)));
    PERFORM gw_publish_resource(res, 'created');
END $$;

-- Each broker reports its event sink every reaper tick: how many partitions
-- of gangway.events it holds and whether it is caught up. Heartbeats are
-- judged only when the recent reports cover as many partitions as the group
-- has ever had and every one of them is caught up.
CREATE TABLE gw_sink_states (
    instance   text        PRIMARY KEY,
    partitions integer     NOT NULL,
    caught_up  boolean     NOT NULL,
    seen_at    timestamptz NOT NULL
);
CREATE TABLE gw_sink_partitions_seen (
    id  integer PRIMARY KEY CHECK (id = 1),
    max integer NOT NULL
);

CREATE FUNCTION gw_sink_report(p_instance text, p_partitions integer, p_caught_up boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gw_sink_states (instance, partitions, caught_up, seen_at)
    VALUES (p_instance, p_partitions, p_caught_up, clock_timestamp())
    ON CONFLICT (instance) DO UPDATE
        SET partitions = excluded.partitions, caught_up = excluded.caught_up,
            seen_at = excluded.seen_at;
    DELETE FROM gw_sink_states WHERE seen_at < clock_timestamp() - interval '1 hour';
END $$;

CREATE FUNCTION gw_sinks_caught_up() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    total integer;
    lagging integer;
    known integer;
BEGIN
    SELECT coalesce(sum(partitions), 0), count(*) FILTER (WHERE NOT caught_up)
    INTO total, lagging
    FROM gw_sink_states WHERE seen_at > clock_timestamp() - interval '10 seconds';
    INSERT INTO gw_sink_partitions_seen (id, max) VALUES (1, total)
    ON CONFLICT (id) DO UPDATE SET max = greatest(gw_sink_partitions_seen.max, excluded.max)
    RETURNING max INTO known;
    RETURN total > 0 AND lagging = 0 AND total >= known;
END $$;


CREATE OR REPLACE FUNCTION gw_reap(p_heartbeat_timeout interval, p_requeue_after interval, p_limit integer,
                        p_check_heartbeats boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    n integer := 0;
    backoff integer;
BEGIN
    -- Every replica's sink must be current, not just this one's: events of
    -- a run may sit in a partition another replica owns.
    IF p_check_heartbeats AND NOT gw_sinks_caught_up() THEN
        p_check_heartbeats := false;
    END IF;
    IF p_check_heartbeats THEN
        FOR r IN SELECT * FROM gw_runs
                 WHERE status = 'running' AND heartbeat_at < clock_timestamp() - p_heartbeat_timeout
                 ORDER BY heartbeat_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
            IF r.cancel_requested_at IS NOT NULL THEN
                -- Asked to stop and gone: it is stopped, whatever it did.
                PERFORM gw_finish_run(r.id, 'cancelled', 'worker_lost_after_cancel', NULL,
                                      'reaper', NOT r.retryable);
            ELSIF r.retryable AND r.attempt < r.max_attempts THEN
                SELECT coalesce((a.definition -> 'retry' ->> 'backoff_seconds')::integer, 0)
                INTO backoff FROM gw_actions a
                WHERE a.id = r.action_id AND a.version = r.action_version;
                -- queued_at is when it may be picked up, so the requeue sweep
                -- does not undercut the backoff.
                UPDATE gw_runs SET status = 'queued', attempt = attempt + 1, worker_id = NULL,
                                   cancel_requested_at = NULL,
                                   queued_at = clock_timestamp() + make_interval(secs =>
                                       CASE WHEN coalesce(backoff, 0) = 0 THEN 0
                                            ELSE backoff * power(2, attempt - 1) END),
                                   updated_at = clock_timestamp()
                WHERE id = r.id RETURNING * INTO r;
                INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
                VALUES (r.id, r.attempt, 'running', 'queued', 'worker_lost_retry', 'reaper');
                INSERT INTO gw_audit_log (actor, verb, object, detail)
                VALUES ('reaper', 'run.retry', 'run:' || r.id,
                        jsonb_build_object('attempt', r.attempt));
                -- Exponential backoff from the action's retry.backoff_seconds.
                PERFORM gw_enqueue_run_at(r, CASE WHEN coalesce(backoff, 0) = 0 THEN NULL
                    ELSE clock_timestamp() + make_interval(secs => backoff * power(2, r.attempt - 2)) END);
            ELSE
                -- Lost mid-execution: what it did is unknown. A retryable action
                -- is idempotent by declaration; anything else needs reconciling.
                PERFORM gw_finish_run(r.id, 'failed', 'worker_lost', NULL, 'reaper', NOT r.retryable);
            END IF;
            n := n + 1;
        END LOOP;

        -- Backstop for a worker that heartbeats but never enforces the timeout.
        FOR r IN SELECT * FROM gw_runs
                 WHERE status = 'running'
                   AND started_at + make_interval(secs => timeout_seconds) + 2 * p_heartbeat_timeout
                       < clock_timestamp()
                 LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
            PERFORM gw_finish_run(r.id, 'timed_out', 'deadline_exceeded', NULL, 'reaper',
                                  NOT r.retryable);
            n := n + 1;
        END LOOP;
    END IF;

    FOR r IN SELECT * FROM gw_runs
             WHERE status = 'queued' AND queued_at < clock_timestamp() - p_requeue_after
             ORDER BY queued_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        UPDATE gw_runs SET queued_at = clock_timestamp() WHERE id = r.id;
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES ('reaper', 'run.requeue', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
        PERFORM gw_enqueue_run(r);
        n := n + 1;
    END LOOP;
    RETURN n + gw_reap_resources(p_limit);
END $$;

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
    IF verdict IS NOT NULL AND p_idem_key IS NOT NULL THEN
        -- A retry that waited on the quota lock behind its own first request
        -- is a replay, not a new run over the quota.
        SELECT * INTO r FROM gw_runs WHERE requested_by = p_subject AND idempotency_key = p_idem_key;
        IF FOUND THEN
            RETURN QUERY SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash,
                                NULL::jsonb;
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
