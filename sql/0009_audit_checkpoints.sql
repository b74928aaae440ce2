-- Signed checkpoints of the audit chain and the record of a pruned prefix
-- (docs/audit.md, docs/decisions/0046-audit-checkpoints.md,
-- 0047-audit-stream-and-retention.md).

-- Every checkpoint a broker signed: the chain head {seq, hash} at `time`,
-- linked to the previous checkpoint by `prev` (its checkpoint_hash, 64 zeros
-- for the first), signed with the Ed25519 key `key_id`. The copies that
-- matter leave through gw_outbox (gangway.audit.checkpoints) in the same
-- transaction; this one serves the API. prev is UNIQUE: two replicas racing
-- to sign the same head cannot fork the list.
CREATE TABLE gw_audit_checkpoints (
    id              bigserial   PRIMARY KEY,
    seq             bigint      NOT NULL CHECK (seq >= 1),
    hash            text        NOT NULL,
    time            text        NOT NULL,  -- exactly as signed
    prev            text        NOT NULL UNIQUE,
    key_id          text        NOT NULL,
    sig             text        NOT NULL,
    checkpoint_hash text        NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row: which replica may sign next, until when (the lease pattern of
-- gw_outbox and gw_webhooks, so one replica at a time does the work).
CREATE TABLE gw_audit_checkpointer (
    id          integer     PRIMARY KEY CHECK (id = 1),
    lease_until timestamptz
);
INSERT INTO gw_audit_checkpointer (id) VALUES (1);

-- The pruned prefix of the chain: entries with seq <= through_seq were
-- archived and deleted; the chain now starts after (through_seq, hash).
-- Append-only like the chain; the latest row is the anchor.
CREATE TABLE gw_audit_anchor (
    through_seq bigint      PRIMARY KEY CHECK (through_seq >= 1),
    hash        text        NOT NULL,
    audit_id    bigint      NOT NULL,
    audit_txid  xid8        NOT NULL,
    actor       text        NOT NULL,
    pruned_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
