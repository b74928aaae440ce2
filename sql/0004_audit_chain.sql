-- Tamper-evident audit trail (docs/decisions/0014-audit-hash-chain.md).
--
-- Entries are still inserted, unchained, by the SQL functions that make each
-- change, in the change's transaction: the hot path takes no global lock. A
-- sealer (gw_audit_seal, called by every broker replica on a timer) chains
-- them shortly after into gw_audit_chain, in (txid, id) order, sealing only
-- entries whose writing transaction has ended.

-- The top-level transaction id of the writer. Rows written before this
-- migration all get the migration's own id, so they are sealed in id order.
ALTER TABLE gw_audit_log ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
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

CREATE OR REPLACE FUNCTION gw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;
CREATE TRIGGER gw_audit_no_truncate BEFORE TRUNCATE ON gw_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gw_audit_append_only();
CREATE TRIGGER gw_audit_chain_no_update BEFORE UPDATE OR DELETE ON gw_audit_chain
    FOR EACH ROW EXECUTE FUNCTION gw_audit_append_only();
CREATE TRIGGER gw_audit_chain_no_truncate BEFORE TRUNCATE ON gw_audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION gw_audit_append_only();

-- The canonical encoding of an entry at chain position p_seq after p_prev:
-- fixed-order JSON text, no whitespace,
--   {"seq":N,"id":N,"at":"YYYY-MM-DDTHH:MM:SS.ffffffZ","actor":S,"verb":S,
--    "object":S,"detail":J,"prev_hash":"<64 hex>"}
-- S is a JSON string as jsonb prints it (\" \\ \b \f \n \r \t, other
-- characters below U+0020 as \u00xx, everything else verbatim), J is the
-- jsonb's own text (or null). `gangway audit verify` rebuilds this in C
-- from the raw columns; keep the two in step.
CREATE FUNCTION gw_audit_canonical(p_seq bigint, a gw_audit_log, p_prev text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '{"seq":' || p_seq || ',"id":' || a.id
        || ',"at":"' || to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
        || ',"actor":' || to_jsonb(a.actor)::text
        || ',"verb":' || to_jsonb(a.verb)::text
        || ',"object":' || to_jsonb(a.object)::text
        || ',"detail":' || coalesce(a.detail::text, 'null')
        || ',"prev_hash":"' || p_prev || '"}'
$$;

-- Chains up to p_limit entries whose writing transaction has ended; returns
-- how many it sealed. Every transaction with an id below the snapshot's xmin
-- has ended, and that xmin never moves back, so taking entries with
-- txid < xmin in (txid, id) order after the last sealed one skips no
-- committed entry: one that commits later has txid >= xmin and waits.
-- One sealer at a time: the others return 0 at once instead of queueing
-- behind it; request transactions never take this lock.
CREATE FUNCTION gw_audit_seal(p_limit integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    horizon xid8;
    head gw_audit_chain;
    v_seq bigint := 0;
    v_prev text := repeat('0', 64);
    v_txid xid8 := '0'::xid8;
    v_id bigint := 0;
    a gw_audit_log;
    h text;
    n integer := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('gangway.audit.seal')) THEN
        RETURN 0;
    END IF;
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    SELECT * INTO head FROM gw_audit_chain ORDER BY seq DESC LIMIT 1;
    IF FOUND THEN
        v_seq := head.seq;
        v_prev := head.hash;
        v_txid := head.audit_txid;
        v_id := head.audit_id;
    END IF;
    FOR a IN SELECT * FROM gw_audit_log l
             WHERE l.txid < horizon AND (l.txid, l.id) > (v_txid, v_id)
             ORDER BY l.txid, l.id LIMIT p_limit LOOP
        v_seq := v_seq + 1;
        h := encode(sha256(convert_to(gw_audit_canonical(v_seq, a, v_prev), 'UTF8')), 'hex');
        INSERT INTO gw_audit_chain (seq, audit_id, audit_txid, prev_hash, hash)
        VALUES (v_seq, a.id, a.txid, v_prev, h);
        v_prev := h;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- An entry as GET /v1/audit shows it; seq, hash and prev_hash are null
-- until it is sealed.
CREATE FUNCTION gw_audit_json(a gw_audit_log, c gw_audit_chain) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', a.id, 'at', gw_ts(a.at), 'actor', a.actor, 'verb', a.verb, 'object', a.object,
        'detail', a.detail, 'seq', c.seq, 'prev_hash', c.prev_hash, 'hash', c.hash,
        'sealed_at', gw_ts(c.sealed_at))
$$;

-- API tokens are created and revoked with their audit entry in one
-- transaction. The actor is the database role that did it; `via` says how.
CREATE FUNCTION gw_token_create(p_hash text, p_subject text, p_teams text[], p_roles text[],
                                p_expires_s bigint, p_description text, p_via text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    t gw_api_tokens;
BEGIN
    INSERT INTO gw_api_tokens (token_hash, subject, teams, roles, expires_at, description)
    VALUES (p_hash, p_subject, coalesce(p_teams, '{}'), coalesce(p_roles, '{}'),
            now() + make_interval(secs => p_expires_s), p_description)
    RETURNING * INTO t;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('db:' || session_user, 'token.create', 'token:' || t.id,
            jsonb_strip_nulls(jsonb_build_object(
                'subject', t.subject, 'teams', to_jsonb(t.teams), 'roles', to_jsonb(t.roles),
                'expires_at', gw_ts(t.expires_at), 'description', t.description, 'via', p_via)));
    RETURN t.id;
END $$;

-- Returns false when there is no active token with that id (nothing audited).
CREATE FUNCTION gw_token_revoke(p_id uuid, p_via text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    t gw_api_tokens;
BEGIN
    UPDATE gw_api_tokens SET revoked_at = now() WHERE id = p_id AND revoked_at IS NULL
    RETURNING * INTO t;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('db:' || session_user, 'token.revoke', 'token:' || t.id,
            jsonb_strip_nulls(jsonb_build_object('subject', t.subject, 'via', p_via)));
    RETURN true;
END $$;
