-- Gangway core schema: actions, runs, their events and logs, the outbox,
-- API tokens and the audit log.
--
-- Multi-step changes live in SQL functions so that the broker sends each
-- one as a single statement: one round trip, atomic, and pipelinable by the
-- asynchronous libpq pool (docs/decisions/0006-async-libpq-pipeline.md).

CREATE TABLE gw_actions (
    id          text        NOT NULL,
    version     text        NOT NULL,  -- sha256 of the canonical definition
    worker_type text        NOT NULL,
    definition  jsonb       NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);

CREATE TABLE gw_runs (
    id                   uuid        PRIMARY KEY,
    action_id            text        NOT NULL,
    action_version       text        NOT NULL,
    worker_type          text        NOT NULL,
    status               text        NOT NULL CHECK (status IN (
                             'accepted', 'pending_approval', 'queued', 'running',
                             'succeeded', 'failed', 'timed_out', 'cancelled',
                             'rejected', 'expired')),
    reason               text,
    attempt              integer     NOT NULL DEFAULT 1,
    max_attempts         integer     NOT NULL DEFAULT 1,
    retryable            boolean     NOT NULL DEFAULT false,
    resource_key         text        NOT NULL,
    inputs               jsonb       NOT NULL,  -- complete, secrets included: reaches the backend only
    inputs_redacted      jsonb       NOT NULL,  -- what responses, events and the audit log show
    outputs              jsonb,
    requested_by         text        NOT NULL,
    requested_teams      text[]      NOT NULL DEFAULT '{}',
    idempotency_key      text,
    request_hash         text,
    timeout_seconds      integer     NOT NULL,
    worker_id            text,
    needs_reconciliation boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    queued_at            timestamptz,
    started_at           timestamptz,
    heartbeat_at         timestamptz,
    finished_at          timestamptz,
    FOREIGN KEY (action_id, action_version) REFERENCES gw_actions (id, version)
);
CREATE UNIQUE INDEX gw_runs_idempotency ON gw_runs (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX gw_runs_by_time ON gw_runs (created_at DESC, id DESC);
CREATE INDEX gw_runs_by_status ON gw_runs (status, created_at DESC, id DESC);
CREATE INDEX gw_runs_by_action ON gw_runs (action_id, created_at DESC, id DESC);
CREATE INDEX gw_runs_running ON gw_runs (heartbeat_at) WHERE status = 'running';
CREATE INDEX gw_runs_queued ON gw_runs (queued_at) WHERE status = 'queued';

-- One row per state transition, written with the transition.
CREATE TABLE gw_run_events (
    id          bigserial   PRIMARY KEY,
    run_id      uuid        NOT NULL REFERENCES gw_runs (id),
    attempt     integer     NOT NULL,
    from_status text,
    to_status   text        NOT NULL,
    reason      text,
    actor       text        NOT NULL,
    detail      jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX gw_run_events_run ON gw_run_events (run_id, id);

-- Every event a worker sent, deduplicated on (run, attempt, seq): Kafka
-- delivers at least once, the broker applies each event once. Log lines
-- are the rows of kind 'log'.
CREATE TABLE gw_worker_events (
    run_id      uuid        NOT NULL REFERENCES gw_runs (id),
    attempt     integer     NOT NULL,
    seq         integer     NOT NULL,
    kind        text        NOT NULL,
    stream      text,
    line        text,
    data        jsonb,
    worker_id   text,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, attempt, seq)
);

-- Messages committed with the state change that produced them, published
-- by the relay and deleted once Kafka acknowledged them. The relay leases
-- rows with SKIP LOCKED, so a row committed "late" (with a lower id than
-- rows already sent) is never skipped.
CREATE TABLE gw_outbox (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    topic       text        NOT NULL,  -- logical topic; the relay adds GW_TOPIC_PREFIX
    msg_key     text        NOT NULL,
    payload     jsonb       NOT NULL,  -- the whole CloudEvent
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until timestamptz,
    attempts    integer     NOT NULL DEFAULT 0
);

CREATE TABLE gw_api_tokens (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   text        NOT NULL UNIQUE,  -- sha256 hex of the secret
    subject      text        NOT NULL,
    teams        text[]      NOT NULL DEFAULT '{}',
    roles        text[]      NOT NULL DEFAULT '{}',
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);

-- Append-only audit trail. The governance work adds the hash chain.
CREATE TABLE gw_audit_log (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text        NOT NULL,
    verb       text        NOT NULL,
    object     text        NOT NULL,
    detail     jsonb
);
CREATE FUNCTION gw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gw_audit_log is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER gw_audit_no_update BEFORE UPDATE OR DELETE ON gw_audit_log
    FOR EACH ROW EXECUTE FUNCTION gw_audit_append_only();

CREATE FUNCTION gw_ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The run as the API shows it.
CREATE FUNCTION gw_run_json(r gw_runs) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'id', r.id,
        'action', jsonb_build_object('id', r.action_id, 'version', r.action_version),
        'worker_type', r.worker_type,
        'status', r.status,
        'reason', r.reason,
        'attempt', r.attempt,
        'inputs', r.inputs_redacted,
        'outputs', r.outputs,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams)),
        'idempotency_key', r.idempotency_key,
        'needs_reconciliation', r.needs_reconciliation,
        'created_at', gw_ts(r.created_at),
        'updated_at', gw_ts(r.updated_at),
        'queued_at', gw_ts(r.queued_at),
        'started_at', gw_ts(r.started_at),
        'finished_at', gw_ts(r.finished_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text))
$$;

-- Queues a run.requested message for the run's current attempt.
CREATE FUNCTION gw_enqueue_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev uuid := gen_random_uuid();
BEGIN
    INSERT INTO gw_outbox (event_id, topic, msg_key, payload)
    VALUES (ev, 'gangway.runs.' || r.worker_type, r.resource_key,
        jsonb_build_object(
            'specversion', '1.0', 'id', ev, 'source', 'gangway/broker',
            'type', 'dev.gangway.run.requested', 'subject', r.id,
            'time', gw_ts(clock_timestamp()), 'datacontenttype', 'application/json',
            'data', jsonb_build_object(
                'run_id', r.id, 'attempt', r.attempt, 'action_id', r.action_id,
                'action_version', r.action_version, 'worker_type', r.worker_type,
                'key', r.resource_key, 'timeout_seconds', r.timeout_seconds,
                'requested_at', gw_ts(r.created_at))));
    PERFORM pg_notify('gw_outbox', '');
END $$;

-- Accepts a run: the run, its events, its audit entry and its outbox row in
-- one transaction. With an idempotency key, a repeat returns the first run
-- (created = false) and says whether the request body differed (conflict).
CREATE FUNCTION gw_submit_run(
    p_id uuid, p_action_id text, p_action_version text, p_worker_type text, p_key text,
    p_inputs jsonb, p_inputs_redacted jsonb, p_subject text, p_teams text[],
    p_idem_key text, p_request_hash text, p_timeout integer, p_max_attempts integer,
    p_retryable boolean)
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
                         retryable, queued_at)
    VALUES (p_id, p_action_id, p_action_version, p_worker_type, 'queued', coalesce(p_key, p_id::text),
            p_inputs, p_inputs_redacted, p_subject, coalesce(p_teams, '{}'),
            p_idem_key, p_request_hash, p_timeout, greatest(p_max_attempts, 1),
            p_retryable, clock_timestamp())
    ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING * INTO r;
    IF NOT FOUND THEN
        -- A concurrent request with the same key won the race.
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

-- Grants a worker's claim: queued -> running only for the current attempt.
-- result: granted | not_found | stale_attempt | cancelled | already_claimed | ended | not_approved
CREATE FUNCTION gw_claim_run(p_id uuid, p_attempt integer, p_worker text)
RETURNS TABLE (result text, claim jsonb) LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    a gw_actions;
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
    RETURN QUERY SELECT 'granted'::text, jsonb_build_object(
        'run_id', r.id, 'attempt', r.attempt, 'fence', r.attempt,
        'action', jsonb_build_object('id', a.id, 'version', a.version, 'worker_type', a.worker_type,
                                     'timeout_seconds', r.timeout_seconds,
                                     'backend', a.definition -> 'backend'),
        'inputs', r.inputs,
        'requested_by', jsonb_build_object('subject', r.requested_by, 'teams', to_jsonb(r.requested_teams)));
END $$;

-- Moves a run to a terminal state with its event and audit entry.
CREATE FUNCTION gw_finish_run(p_id uuid, p_status text, p_reason text, p_outputs jsonb,
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
END $$;

-- Applies a batch of worker events (a JSON array of
-- {run_id, attempt, seq, kind, worker_id, stream, line, data}) once each.
-- Events of a stale attempt or for a run that is no longer running are
-- ignored. Returns the number of events applied.
CREATE FUNCTION gw_apply_events(p_events jsonb) RETURNS integer LANGUAGE plpgsql AS $$
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
            UPDATE gw_runs SET heartbeat_at = clock_timestamp() WHERE id = v_run;
        ELSIF v_kind = 'succeeded' THEN
            PERFORM gw_finish_run(v_run, 'succeeded', NULL,
                                  coalesce(e -> 'data' -> 'outputs', '{}'::jsonb),
                                  'worker:' || coalesce(e ->> 'worker_id', '?'), false);
        ELSIF v_kind IN ('failed', 'timed_out', 'cancelled') THEN
            PERFORM gw_finish_run(v_run, v_kind,
                                  coalesce(e -> 'data' ->> 'reason', e -> 'data' ->> 'message', v_kind),
                                  NULL, 'worker:' || coalesce(e ->> 'worker_id', '?'), false);
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- Leases up to p_limit unsent outbox rows for p_lease.
CREATE FUNCTION gw_outbox_lease(p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, topic text, msg_key text, payload text) LANGUAGE sql AS $$
    UPDATE gw_outbox o SET lease_until = clock_timestamp() + p_lease, attempts = o.attempts + 1
    WHERE o.id IN (SELECT i.id FROM gw_outbox i
                   WHERE i.lease_until IS NULL OR i.lease_until < clock_timestamp()
                   ORDER BY i.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING o.id, o.topic, o.msg_key, o.payload::text
$$;

-- The reaper's sweep: runs whose worker stopped sending heartbeats, runs far
-- past their deadline, and runs queued for too long (their message is
-- published again; a duplicate claim is refused). Shared by every broker
-- replica through SKIP LOCKED. Returns the number of runs it changed.
CREATE FUNCTION gw_reap(p_heartbeat_timeout interval, p_requeue_after interval, p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r gw_runs;
    n integer := 0;
BEGIN
    FOR r IN SELECT * FROM gw_runs
             WHERE status = 'running' AND heartbeat_at < clock_timestamp() - p_heartbeat_timeout
             ORDER BY heartbeat_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        IF r.retryable AND r.attempt < r.max_attempts THEN
            UPDATE gw_runs SET status = 'queued', attempt = attempt + 1, worker_id = NULL,
                               queued_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = r.id RETURNING * INTO r;
            INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)
            VALUES (r.id, r.attempt, 'running', 'queued', 'worker_lost_retry', 'reaper');
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            VALUES ('reaper', 'run.retry', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
            PERFORM gw_enqueue_run(r);
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
        PERFORM gw_finish_run(r.id, 'timed_out', 'deadline_exceeded', NULL, 'reaper', NOT r.retryable);
        n := n + 1;
    END LOOP;

    FOR r IN SELECT * FROM gw_runs
             WHERE status = 'queued' AND queued_at < clock_timestamp() - p_requeue_after
             ORDER BY queued_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
        UPDATE gw_runs SET queued_at = clock_timestamp() WHERE id = r.id;
        INSERT INTO gw_audit_log (actor, verb, object, detail)
        VALUES ('reaper', 'run.requeue', 'run:' || r.id, jsonb_build_object('attempt', r.attempt));
        PERFORM gw_enqueue_run(r);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
