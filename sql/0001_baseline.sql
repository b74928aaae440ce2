-- Gangway's schema: tables, indexes and constraints. The baseline of the
-- numbered migrations (0001-0016 before the first release, squashed; the
-- history is in git). Functions and triggers are not here: each function
-- lives in sql/functions/<name>.sql, re-applied on every migrate after the
-- numbered files (docs/decisions/0021-sql-functions-repeatable.md). A later
-- schema change is a new numbered file; a change to a function is an edit of
-- its file.
--
-- Multi-step changes live in SQL functions so that the broker sends each
-- one as a single statement: one round trip, atomic, and pipelinable by the
-- asynchronous libpq pool (docs/decisions/0006-async-libpq-pipeline.md).
--
-- Column order matters to nobody's SQL (every INSERT names its columns) but
-- is kept as the migrations left it, so a database made by the old files and
-- one made by this one dump the same.

CREATE TABLE gw_actions (
    id          text        NOT NULL,
    version     text        NOT NULL,  -- sha256 of the canonical definition
    worker_type text        NOT NULL,
    definition  jsonb       NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version)
);

CREATE TABLE gw_runs (
    id                    uuid        PRIMARY KEY,
    action_id             text        NOT NULL,
    action_version        text        NOT NULL,
    worker_type           text        NOT NULL,
    status                text        NOT NULL CHECK (status IN (
                              'accepted', 'pending_approval', 'queued', 'running',
                              'succeeded', 'failed', 'timed_out', 'cancelled',
                              'rejected', 'expired')),
    reason                text,
    attempt               integer     NOT NULL DEFAULT 1,
    max_attempts          integer     NOT NULL DEFAULT 1,
    retryable             boolean     NOT NULL DEFAULT false,
    resource_key          text        NOT NULL,
    inputs                jsonb       NOT NULL,  -- complete, secrets included: reaches the backend only
    inputs_redacted       jsonb       NOT NULL,  -- what responses, events and the audit log show
    outputs               jsonb,
    requested_by          text        NOT NULL,
    requested_teams       text[]      NOT NULL DEFAULT '{}',
    idempotency_key       text,
    request_hash          text,
    timeout_seconds       integer     NOT NULL,
    worker_id             text,
    needs_reconciliation  boolean     NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    queued_at             timestamptz,
    started_at            timestamptz,
    heartbeat_at          timestamptz,
    finished_at           timestamptz,
    -- Secret inputs (writeOnly in the input schema) by JSON pointer, so the
    -- claim can tell the worker which values to mask in log lines and which
    -- inputs a backend must treat as sensitive.
    secret_paths          jsonb       NOT NULL DEFAULT '[]',
    -- 'plan': attempt 1 of a plan_first run (plan before approval).
    operation             text        NOT NULL DEFAULT 'create'
                              CONSTRAINT gw_runs_operation_check
                              CHECK (operation IN ('create', 'teardown', 'plan')),
    parent_run_id         uuid        REFERENCES gw_runs (id),
    resource_id           uuid,
    ttl_seconds           integer,
    cancel_requested_at   timestamptz,
    retry_backoff_seconds integer     NOT NULL DEFAULT 0,
    -- The approval rule chosen by the broker from the inputs travels with the
    -- run: {"approvals": n, "from_teams": [...], "from_roles": [...],
    -- "any_rejection_rejects": bool}.
    approval_rule         jsonb,
    approval_expires_at   timestamptz,
    inputs_hash           text,
    break_glass_reason    text,
    -- plan_first: approvals are bound to the plan's sha256 as well as to the
    -- inputs; the approved run is applied as attempt 2 with exactly that plan.
    plan_sha256           text,
    plan_summary          jsonb,
    reconciled_at         timestamptz,
    -- A failed run's message from its worker (cut at 4000 characters), shown
    -- next to the reason.
    error_message         text,
    -- When the secrets in `inputs` were dropped (NULL: still held, or there
    -- were none): see gw_drop_run_secrets (decision 0020).
    secrets_dropped_at    timestamptz,
    FOREIGN KEY (action_id, action_version) REFERENCES gw_actions (id, version)
);
CREATE UNIQUE INDEX gw_runs_idempotency ON gw_runs (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX gw_runs_by_time ON gw_runs (created_at DESC, id DESC);
CREATE INDEX gw_runs_by_status ON gw_runs (status, created_at DESC, id DESC);
CREATE INDEX gw_runs_by_action ON gw_runs (action_id, created_at DESC, id DESC);
CREATE INDEX gw_runs_running ON gw_runs (heartbeat_at) WHERE status = 'running';
CREATE INDEX gw_runs_queued ON gw_runs (queued_at) WHERE status = 'queued';
CREATE INDEX gw_runs_pending ON gw_runs (approval_expires_at) WHERE status = 'pending_approval';
CREATE INDEX gw_runs_quota ON gw_runs (action_id, requested_by, created_at);
-- The approvers' list of pending runs.
CREATE INDEX gw_runs_pending_created ON gw_runs (created_at) WHERE status = 'pending_approval';

-- One row per state transition, written with the transition. No foreign key
-- on this and gw_worker_events, the two hottest append-only tables: a key
-- costs a trigger per row, and their rows are only ever written by the
-- functions, next to the run.
CREATE TABLE gw_run_events (
    id          bigserial   PRIMARY KEY,
    run_id      uuid        NOT NULL,
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
    run_id      uuid        NOT NULL,
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
-- rows already sent) is never skipped. A retry with backoff waits for
-- not_before.
CREATE TABLE gw_outbox (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
    topic       text        NOT NULL,  -- logical topic; the relay adds GW_TOPIC_PREFIX
    msg_key     text        NOT NULL,
    payload     jsonb       NOT NULL,  -- the whole CloudEvent
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until timestamptz,
    attempts    integer     NOT NULL DEFAULT 0,
    not_before  timestamptz
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

-- Tamper-evident audit trail (docs/decisions/0014-audit-hash-chain.md).
-- Entries are inserted, unchained, by the SQL functions that make each
-- change, in the change's transaction: the hot path takes no global lock. A
-- sealer (gw_audit_seal, called by every broker replica on a timer) chains
-- them shortly after into gw_audit_chain, in (txid, id) order, sealing only
-- entries whose writing transaction has ended. Both tables are append-only
-- (gw_audit_append_only's triggers). txid is the writer's top-level
-- transaction id.
CREATE TABLE gw_audit_log (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text        NOT NULL,
    verb       text        NOT NULL,
    object     text        NOT NULL,
    detail     jsonb,
    txid       xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX gw_audit_log_seal_order ON gw_audit_log (txid, id);
CREATE INDEX gw_audit_log_by_object ON gw_audit_log (object, id);
CREATE INDEX gw_audit_log_by_actor ON gw_audit_log (actor, id);
CREATE INDEX gw_audit_log_by_at ON gw_audit_log (at, id);

-- One row per sealed entry. seq is dense from 1; audit_txid repeats the
-- entry's txid so the sealer finds where it stopped without reading the
-- (possibly tampered) log. hash = sha256 hex of gw_audit_canonical().
CREATE TABLE gw_audit_chain (
    seq        bigint      PRIMARY KEY CHECK (seq >= 1),
    audit_id   bigint      NOT NULL UNIQUE,
    audit_txid xid8        NOT NULL,
    prev_hash  text        NOT NULL,
    hash       text        NOT NULL,
    sealed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Resources a run created, with their TTL and teardown.
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
-- /v1/events polls resources changed since its last look.
CREATE INDEX gw_resources_updated ON gw_resources (updated_at);

-- Webhooks (expiry warnings, approvals) leave through their own outbox,
-- drained by the broker with retries, so a slow receiver never blocks a
-- request. Deliveries stop after GW_WEBHOOK_MAX_ATTEMPTS (default 10, about
-- 36 minutes with the 5 s doubling backoff capped at 15 min): failed_at marks
-- the row as given up, last_error keeps the final reason.
CREATE TABLE gw_webhooks (
    id          bigserial   PRIMARY KEY,
    kind        text        NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts    integer     NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until timestamptz,
    sent_at     timestamptz,
    last_error  text,
    failed_at   timestamptz
);
CREATE INDEX gw_webhooks_due ON gw_webhooks (next_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- Approval decisions, unique per approver; the run leaves pending_approval
-- under its row lock, so concurrent approvals move it to queued exactly
-- once. Bound to the inputs' hash and, for plan_first, the plan's.
CREATE TABLE gw_approvals (
    run_id      uuid        NOT NULL REFERENCES gw_runs (id),
    approver    text        NOT NULL,
    decision    text        NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     text,
    inputs_hash text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    plan_sha256 text,
    PRIMARY KEY (run_id, approver)
);

-- Each broker reports its event sink every reaper tick: how many partitions
-- of gangway.events it holds, whether it is caught up, and (fresh_at) how far
-- back every event is known to be applied (decision 0019). Heartbeats are
-- judged only when the recent reports cover as many partitions as the group
-- has ever had and every one of them is caught up.
CREATE TABLE gw_sink_states (
    instance   text        PRIMARY KEY,
    partitions integer     NOT NULL,
    caught_up  boolean     NOT NULL,
    seen_at    timestamptz NOT NULL,
    fresh_at   timestamptz
);

CREATE TABLE gw_sink_partitions_seen (
    id  integer PRIMARY KEY CHECK (id = 1),
    max integer NOT NULL
);

-- Extensions that need approval. An action whose ttl has
-- "extension_approval" turns POST /v1/resources/{id}/extend into a request:
-- one pending extension per resource, decided like a run's approval
-- (distinct approvers from the named teams or roles, never the requester),
-- and applied under the resource's row lock when approved, with the bounds
-- checked again at that moment — so an approval racing the expiry never
-- revives a resource that is already being torn down.
CREATE TABLE gw_resource_extensions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_id  uuid        NOT NULL REFERENCES gw_resources (id),
    seconds      integer     NOT NULL,
    requested_by text        NOT NULL,
    rule         jsonb       NOT NULL,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN (
                     'pending', 'approved', 'rejected', 'failed')),
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    decided_at   timestamptz
);
CREATE UNIQUE INDEX gw_resource_extensions_one_pending ON gw_resource_extensions (resource_id)
    WHERE status = 'pending';

CREATE TABLE gw_extension_decisions (
    extension_id uuid        NOT NULL REFERENCES gw_resource_extensions (id),
    approver     text        NOT NULL,
    decision     text        NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment      text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (extension_id, approver)
);
