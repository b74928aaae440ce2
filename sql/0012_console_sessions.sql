-- Console sign-in (issue 13, docs/decisions/0054-console-sessions.md).
--
-- gw_sessions: one row per browser session. The cookie holds a random
-- 256-bit id; only its SHA-256 is stored, so a copy of this table does not
-- let anyone in. The principal is a snapshot taken at sign-in (subject,
-- teams, roles); a session made from an API token also names that token, so
-- revoking the token ends the session too.
CREATE TABLE gw_sessions (
    id_hash       text        PRIMARY KEY,
    subject       text        NOT NULL,
    teams         text[]      NOT NULL DEFAULT '{}',
    roles         text[]      NOT NULL DEFAULT '{}',
    method        text        NOT NULL CHECK (method IN ('token', 'jwt', 'oidc', 'dev')),
    issuer        text,                        -- the auth-config issuer entry (jwt, oidc)
    token_hash    text,                        -- the API token it was made from (token, dev)
    csrf_token    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,        -- absolute end
    idle_seconds  integer     NOT NULL CHECK (idle_seconds > 0),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    user_agent    text
);
CREATE INDEX gw_sessions_expiry ON gw_sessions (expires_at);
CREATE INDEX gw_sessions_subject ON gw_sessions (subject) WHERE revoked_at IS NULL;

-- gw_login_flows: what a sign-in in progress must find again, single use
-- and short-lived: the OIDC state (hashed) with its nonce, PKCE verifier
-- and return path; or a dev-mode login code (hashed) naming the API token
-- whose identity it signs in as.
CREATE TABLE gw_login_flows (
    key_hash      text        PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('oidc', 'dev')),
    issuer        text,
    nonce         text,
    verifier      text,
    return_to     text,
    token_hash    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX gw_login_flows_expiry ON gw_login_flows (expires_at);

-- The dashboard's aggregates (GET /v1/dashboard) read runs by creation
-- time with their status, action and requester; gw_runs_by_time covers the
-- range, this one lets the per-day counts run as an index-only scan.
CREATE INDEX gw_runs_dashboard ON gw_runs (created_at, status, action_id);

-- Notification routing (docs/webhooks.md "Routing", decision 0056): a
-- notification as written (target NULL) is expanded by the broker into one
-- delivery per destination (the default URL and every matching route of the
-- policy's "notifications"), each retried on its own.
ALTER TABLE gw_webhooks ADD COLUMN target text;          -- the URL; NULL = not routed yet
ALTER TABLE gw_webhooks ADD COLUMN format text NOT NULL DEFAULT 'gangway'
    CHECK (format IN ('gangway', 'slack'));
ALTER TABLE gw_webhooks ADD COLUMN route text;           -- the route's name ("default" for GW_WEBHOOK_URL)
ALTER TABLE gw_webhooks ADD COLUMN parent_id bigint;     -- the notification it was routed from
