-- Lifecycle: resources with TTLs and their teardown, cancellation, retry
-- backoff, delayed outbox rows, webhooks, and change notifications for the
-- live streams.

-- Outbox rows may wait: a retry with backoff is published at not_before.
ALTER TABLE gw_outbox ADD COLUMN not_before timestamptz;

-- NOTIFY takes a database-wide lock from pre-commit to the end of the
-- transaction, which serialised every submission behind the previous one's
-- WAL flush (bench/README.md). The broker that commits a run now wakes its
-- own relay in-process; other replicas find rows by polling.
CREATE OR REPLACE FUNCTION gw_enqueue_run_at(r gw_runs, p_not_before timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload, not_before)
    VALUES (ev, 'gangway.runs.' || r.worker_type, r.resource_key,
        jsonb_build_object(
            'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
            'type', 'dev.gangway.run.requested', 'subject', r.id,
            'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
            'data', jsonb_build_object(
                'run_id', r.id, 'attempt', r.attempt, 'action_id', r.action_id,
                'action_version', r.action_version, 'worker_type', r.worker_type,
                'key', r.resource_key, 'timeout_seconds', r.timeout_seconds,
                'operation', r.operation,
                'requested_at', gw_ts(r.created_at))),
        p_not_before);
END $$;

CREATE OR REPLACE FUNCTION gw_enqueue_run(r gw_runs) RETURNS void LANGUAGE sql AS $$
    SELECT gw_enqueue_run_at(r, NULL)
$$;

-- gw_ts is only as immutable as to_char; STABLE lets the planner inline it.
CREATE OR REPLACE FUNCTION gw_ts(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Foreign keys on the two hottest append-only tables cost a trigger per row;
-- their rows are only ever written by the functions here, next to the run.
ALTER TABLE gw_run_events DROP CONSTRAINT gw_run_events_run_id_fkey;
ALTER TABLE gw_worker_events DROP CONSTRAINT gw_worker_events_run_id_fkey;

CREATE OR REPLACE FUNCTION gw_outbox_lease(p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, topic text, msg_key text, payload text) LANGUAGE sql AS $$
    UPDATE gw_outbox o SET lease_until = clock_timestamp() + p_lease, attempts = o.attempts + 1
    WHERE o.id IN (SELECT i.id FROM gw_outbox i
                   WHERE (i.lease_until IS NULL OR i.lease_until < clock_timestamp())
                     AND (i.not_before IS NULL OR i.not_before <= clock_timestamp())
                   ORDER BY i.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.topic, o.msg_key, o.payload::text
$$;

ALTER TABLE gw_runs
    ADD COLUMN operation text NOT NULL DEFAULT 'create' CHECK (operation IN ('create', 'teardown')),
    ADD COLUMN parent_run_id uuid REFERENCES gw_runs (id),
    ADD COLUMN resource_id uuid,
    ADD COLUMN ttl_seconds integer,
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN retry_backoff_seconds integer NOT NULL DEFAULT 0;

CREATE TABLE gw_resources (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    action_id         text        NOT NULL,
    kind              text        NOT NULL,
    name              text        NOT NULL,
    owner_subject     text        NOT NULL,
    owner_teams       text[]      NOT NULL DEFAULT '{}',
    created_by_run    uuid        NOT NULL REFERENCES gw_runs (id),
    resource_key      text        NOT NULL,
    worker_type       text        NOT NULL,
    outputs           jsonb       NOT NULL DEFAULT '{}',
    status            text        NOT NULL DEFAULT 'active' CHECK (status IN (
                          'active', 'tearing_down', 'teardown_failed', 'deleted')),
    expires_at        timestamptz,
    max_expires_at    timestamptz,  -- created_at + ttl max + extension budget
    warn_before_s     integer     NOT NULL DEFAULT 3600,
    warned_at         timestamptz,
    teardown_run_id   uuid,
    teardown_attempts integer     NOT NULL DEFAULT 0,
    next_teardown_at  timestamptz,
    needs_attention   boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at        timestamptz
);
CREATE UNIQUE INDEX gw_resources_live_name ON gw_resources (action_id, name) WHERE status <> 'deleted';
CREATE INDEX gw_resources_expiry ON gw_resources (expires_at) WHERE status = 'active';
CREATE INDEX gw_resources_retry ON gw_resources (next_teardown_at) WHERE status = 'teardown_failed';
CREATE INDEX gw_resources_list ON gw_resources (created_at DESC, id DESC);

-- Webhooks (expiry warnings, later approvals) leave through their own outbox,
-- drained by the broker with retries, so a slow receiver never blocks a request.
CREATE TABLE gw_webhooks (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts    integer     NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until timestamptz,
    sent_at     timestamptz,
    last_error  text
);
CREATE INDEX gw_webhooks_due ON gw_webhooks (next_at) WHERE sent_at IS NULL;

CREATE FUNCTION gw_resource_json(r gw_resources) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'id', r.id, 'action', r.action_id, 'kind', r.kind, 'name', r.name,
        'owner', jsonb_build_object('subject', r.owner_subject, 'teams', to_jsonb(r.owner_teams)),
        'created_by_run', r.created_by_run, 'outputs', r.outputs, 'status', r.status,
        'expires_at', gw_ts(r.expires_at), 'max_expires_at', gw_ts(r.max_expires_at),
        'teardown_run', r.teardown_run_id, 'teardown_attempts', r.teardown_attempts,
        'needs_attention', r.needs_attention,
        'created_at', gw_ts(r.created_at), 'updated_at', gw_ts(r.updated_at),
        'deleted_at', gw_ts(r.deleted_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text))
$$;

-- A resource change for the portal's catalog, on gangway.catalog keyed by
-- the resource, in the same transaction as the change.
CREATE FUNCTION gw_publish_resource(r gw_resources, p_type text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload)
    VALUES (ev, 'gangway.catalog', r.id::text, jsonb_build_object(
        'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
        'type', 'dev.gangway.resource.' || p_type, 'subject', r.id,
        'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
        'data', gw_resource_json(r)));
END $$;

-- Runs now carry their operation and resource; the claim tells the worker.
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
        'created_at', gw_ts(r.created_at),
        'updated_at', gw_ts(r.updated_at),
        'queued_at', gw_ts(r.queued_at),
        'started_at', gw_ts(r.started_at),
        'finished_at', gw_ts(r.finished_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text))
$$;

-- Submission now carries the requested TTL (NULL: the action's default; the
-- broker checks it against the action's bounds).
DROP FUNCTION gw_submit_run(uuid, text, text, text, text, jsonb, jsonb, text, text[], text, text,
                            integer, integer, boolean, jsonb);
CREATE FUNCTION gw_submit_run(
    p_id uuid, p_action_id text, p_action_version text, p_worker_type text, p_key text,
    p_inputs jsonb, p_inputs_redacted jsonb, p_subject text, p_teams text[],
    p_idem_key text, p_request_hash text, p_timeout integer, p_max_attempts integer,
    p_retryable boolean, p_secret_paths jsonb, p_ttl integer)
RETURNS TABLE (run jsonb, created boolean, conflict boolean) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
BEGIN
    IF p_idem_key IS NOT NULL THEN
        SELECT * INTO r FROM gw_runs WHERE requested_by = p_subject AND idempotency_key = p_idem_key;
        IF FOUND THEN
            RETURN QUERY SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash;
            RETURN;
        END IF;
    END IF;

    INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                         inputs, inputs_redacted, requested_by, requested_teams,
                         idempotency_key, request_hash, timeout_seconds, max_attempts,
                         retryable, queued_at, secret_paths, ttl_seconds)
    VALUES (p_id, p_action_id, p_action_version, p_worker_type, 'queued', coalesce(p_key, p_id::text),
            p_inputs, p_inputs_redacted, p_subject, coalesce(p_teams, '{}'),
            p_idem_key, p_request_hash, p_timeout, greatest(p_max_attempts, 1),
            p_retryable, clock_timestamp(), coalesce(p_secret_paths, '[]'), p_ttl)
    ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        SELECT * INTO r FROM gw_runs WHERE requested_by = p_subject AND idempotency_key = p_idem_key;
        RETURN QUERY SELECT gw_run_json(r), false, r.request_hash IS DISTINCT FROM p_request_hash;
        RETURN;
    END IF;

    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor)
    VALUES (r.id, 1, NULL, 'accepted', p_subject),
           (r.id, 1, 'accepted', 'queued', 'gangway');
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_subject, 'run.submit', 'run:' || r.id,
            jsonb_build_object('action', p_action_id, 'version', p_action_version,
                               'inputs', p_inputs_redacted));
    PERFORM gw_enqueue_run(r);
    RETURN QUERY SELECT gw_run_json(r), true, false;
END $$;

-- Starts a teardown child run of `res` (locked by the caller).
CREATE FUNCTION gw_start_teardown(res gw_resources, p_actor text, p_why text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    parent gw_runs;
    child gw_runs;
    new_id uuid := gen_random_uuid();
BEGIN
    SELECT * INTO parent FROM gw_runs WHERE id = res.created_by_run;
    INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key,
                         inputs, inputs_redacted, requested_by, requested_teams, timeout_seconds,
                         max_attempts, retryable, queued_at, secret_paths, operation,
                         parent_run_id, resource_id)
    VALUES (new_id, parent.action_id, parent.action_version, parent.worker_type, 'queued',
            parent.resource_key, parent.inputs, parent.inputs_redacted, res.owner_subject,
            res.owner_teams, parent.timeout_seconds, 1, false, clock_timestamp(),
            parent.secret_paths, 'teardown', parent.id, res.id)
    RETURNING * INTO child;
    INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
    VALUES (new_id, 1, NULL, 'accepted', p_why, p_actor),
           (new_id, 1, 'accepted', 'queued', p_why, 'gangway');
    UPDATE gw_resources SET status = 'tearing_down', teardown_run_id = new_id,
                            teardown_attempts = teardown_attempts + 1, next_teardown_at = NULL,
                            updated_at = clock_timestamp()
    WHERE id = res.id RETURNING * INTO res;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'resource.teardown', 'resource:' || res.id,
            jsonb_build_object('run', new_id, 'why', p_why, 'attempt', res.teardown_attempts));
    PERFORM gw_enqueue_run(child);
    PERFORM gw_publish_resource(res, 'updated');
    RETURN new_id;
END $$;

-- Records what a succeeded or failed run did to its resource. Called from
-- gw_finish_run with the run already updated.
CREATE FUNCTION gw_resource_after_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
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
    RETURNING * INTO res;
    UPDATE gw_runs SET resource_id = res.id WHERE id = r.id;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (r.requested_by, 'resource.created', 'resource:' || res.id,
            jsonb_build_object('run', r.id, 'kind', res.kind, 'name', res.name,
                               'expires_at', gw_ts(res.expires_at)));
    PERFORM gw_publish_resource(res, 'created');
END $$;

CREATE OR REPLACE FUNCTION gw_finish_run(p_id uuid, p_status text, p_reason text, p_outputs jsonb,
                                         p_actor text, p_reconcile boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    old_status text;
    r gw_runs;
BEGIN
    SELECT status INTO old_status FROM gw_runs WHERE id = p_id;
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

-- Cancels a run. Returns the outcome: cancelled (it had not started),
-- cancel_requested (running: the worker is told through gangway.control),
-- already_requested, ended, not_found.
CREATE FUNCTION gw_cancel_run(p_id uuid, p_actor text, p_reason text)
RETURNS TABLE (outcome text, run jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    ev uuid := gen_random_uuid();
BEGIN
    SELECT * INTO r FROM gw_runs WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF r.status IN ('accepted', 'pending_approval', 'queued') THEN
        PERFORM gw_finish_run(r.id, 'cancelled', coalesce(p_reason, 'cancelled by ' || p_actor),
                              NULL, p_actor, false);
        SELECT * INTO r FROM gw_runs WHERE id = p_id;
        RETURN QUERY SELECT 'cancelled'::text, gw_run_json(r);
        RETURN;
    END IF;
    IF r.status <> 'running' THEN
        RETURN QUERY SELECT 'ended'::text, gw_run_json(r);
        RETURN;
    END IF;
    IF r.cancel_requested_at IS NOT NULL THEN
        RETURN QUERY SELECT 'already_requested'::text, gw_run_json(r);
        RETURN;
    END IF;
    UPDATE gw_runs SET cancel_requested_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = p_id RETURNING * INTO r;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'run.cancel_requested', 'run:' || r.id,
            jsonb_build_object('attempt', r.attempt, 'reason', p_reason));
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload)
    VALUES (ev, 'gangway.control', r.id::text, jsonb_build_object(
        'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
        'type', 'dev.gangway.run.cancel', 'subject', r.id,
        'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
        'data', jsonb_build_object('run_id', r.id, 'attempt', r.attempt,
                                   'worker_type', r.worker_type, 'worker_id', r.worker_id,
                                   'reason', p_reason)));
    RETURN QUERY SELECT 'cancel_requested'::text, gw_run_json(r);
END $$;

-- Extends a resource's expiry by p_seconds within its bounds. Returns
-- extended | not_found | not_active | no_ttl | over_limit, and the resource.
CREATE FUNCTION gw_extend_resource(p_id uuid, p_seconds integer, p_actor text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE plpgsql AS $$
DECLARE
    res gw_resources;
    new_exp timestamptz;
BEGIN
    SELECT * INTO res FROM gw_resources WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    -- The reaper flips active -> tearing_down under this same row lock, so an
    -- extension either lands before the expiry or is refused after it.
    IF res.status <> 'active' THEN
        RETURN QUERY SELECT 'not_active'::text, gw_resource_json(res);
        RETURN;
    END IF;
    IF res.expires_at IS NULL THEN
        RETURN QUERY SELECT 'no_ttl'::text, gw_resource_json(res);
        RETURN;
    END IF;
    new_exp := res.expires_at + make_interval(secs => p_seconds);
    IF res.max_expires_at IS NOT NULL AND new_exp > res.max_expires_at THEN
        RETURN QUERY SELECT 'over_limit'::text, gw_resource_json(res);
        RETURN;
    END IF;
    UPDATE gw_resources SET expires_at = new_exp, warned_at = NULL, updated_at = clock_timestamp()
    WHERE id = p_id RETURNING * INTO res;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES (p_actor, 'resource.extend', 'resource:' || res.id,
            jsonb_build_object('by_seconds', p_seconds, 'expires_at', gw_ts(res.expires_at)));
    PERFORM gw_publish_resource(res, 'updated');
    RETURN QUERY SELECT 'extended'::text, gw_resource_json(res);
END $$;

-- DELETE /v1/resources/{id}: start the teardown now.
CREATE FUNCTION gw_delete_resource(p_id uuid, p_actor text)
RETURNS TABLE (outcome text, resource jsonb) LANGUAGE plpgsql AS $$
DECLARE
    res gw_resources;
BEGIN
    SELECT * INTO res FROM gw_resources WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::jsonb;
        RETURN;
    END IF;
    IF res.status NOT IN ('active', 'teardown_failed') THEN
        RETURN QUERY SELECT 'not_active'::text, gw_resource_json(res);
        RETURN;
    END IF;
    PERFORM gw_start_teardown(res, p_actor, 'deleted by ' || p_actor);
    SELECT * INTO res FROM gw_resources WHERE id = p_id;
    RETURN QUERY SELECT 'teardown_started'::text, gw_resource_json(res);
END $$;

-- The resource part of the reaper: warn, expire, retry failed teardowns.
CREATE FUNCTION gw_reap_resources(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    res gw_resources;
    n integer := 0;
BEGIN
    FOR res IN SELECT * FROM gw_resources
               WHERE status = 'active' AND warned_at IS NULL AND expires_at IS NOT NULL
                 AND expires_at - make_interval(secs => warn_before_s) <= clock_timestamp()
                 AND expires_at > clock_timestamp()
               LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        UPDATE gw_resources SET warned_at = clock_timestamp() WHERE id = res.id;
        INSERT INTO gw_webhooks (kind, payload)
        VALUES ('resource.expiring', jsonb_build_object(
            'type', 'resource.expiring', 'resource', gw_resource_json(res),
            'text', format('Gangway: %s "%s" owned by %s expires at %s. Extend it with POST /v1/resources/%s/extend.',
                           res.kind, res.name, res.owner_subject, gw_ts(res.expires_at), res.id)));
        n := n + 1;
    END LOOP;

    FOR res IN SELECT * FROM gw_resources
               WHERE status = 'active' AND expires_at <= clock_timestamp()
               ORDER BY expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        PERFORM gw_start_teardown(res, 'reaper', 'expired');
        n := n + 1;
    END LOOP;

    FOR res IN SELECT * FROM gw_resources
               WHERE status = 'teardown_failed' AND next_teardown_at <= clock_timestamp()
               ORDER BY next_teardown_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        PERFORM gw_start_teardown(res, 'reaper', 'teardown retry');
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- The run part of the reaper. p_check_heartbeats is false while this
-- broker's event sink is behind: then a stale heartbeat may only mean events
-- not applied yet, and nobody is declared lost.
DROP FUNCTION gw_reap(interval, interval, integer);
CREATE FUNCTION gw_reap(p_heartbeat_timeout interval, p_requeue_after interval, p_limit integer,
                        p_check_heartbeats boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    n integer := 0;
    backoff integer;
BEGIN
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
                UPDATE gw_runs SET status = 'queued', attempt = attempt + 1, worker_id = NULL,
                                   queued_at = clock_timestamp(), updated_at = clock_timestamp()
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

-- The claim now says which operation to run; a teardown gets the action's
-- backend config with its "teardown.backend" overrides, and the resource.
CREATE OR REPLACE FUNCTION gw_claim_run(p_id uuid, p_attempt integer, p_worker text)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    a gw_actions;
    res gw_resources;
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
    RETURN QUERY SELECT 'granted'::text, jsonb_strip_nulls(jsonb_build_object(
        'run_id', r.id, 'attempt', r.attempt, 'fence', r.attempt,
        'operation', r.operation,
        'resource_key', r.resource_key,
        'resource', CASE WHEN res.id IS NULL THEN NULL ELSE jsonb_build_object(
            'id', res.id, 'kind', res.kind, 'name', res.name, 'outputs', res.outputs) END,
        'action', jsonb_build_object('id', a.id, 'version', a.version, 'worker_type', a.worker_type,
                                     'timeout_seconds', r.timeout_seconds,
                                     'backend', CASE WHEN r.operation = 'teardown'
                                         THEN (a.definition -> 'backend')
                                              || coalesce(a.definition -> 'teardown' -> 'backend', '{}')
                                         ELSE a.definition -> 'backend' END),
        'inputs', r.inputs,
        'secret_paths', r.secret_paths,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams))));
END $$;
