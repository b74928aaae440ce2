-- gw_audit_log, gw_audit_chain and gw_audit_anchor are append-only: updates,
-- deletes and truncation are refused (decision 0014). The one exception is
-- the pruned prefix (decision 0047): a DELETE of a chain row at or below the
-- anchor (gw_audit_anchor's highest through_seq), or of the audit entry such
-- a row seals, is let through; gw_audit_prune records the anchor first. The
-- triggers live here, after the function they call, created by
-- gw_ensure_trigger only when missing, changed or disabled (decision 0021).
CREATE OR REPLACE FUNCTION gw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    anchor bigint;
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME IN ('gw_audit_chain', 'gw_audit_log') THEN
        SELECT max(through_seq) INTO anchor FROM gw_audit_anchor;
        -- Nested: plpgsql resolves OLD's fields even when AND could stop early.
        IF TG_TABLE_NAME = 'gw_audit_chain' THEN
            IF OLD.seq <= anchor THEN
                RETURN OLD;
            END IF;
        ELSIF EXISTS (SELECT 1 FROM gw_audit_chain c
                      WHERE c.audit_id = OLD.id AND c.seq <= anchor) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;

SELECT gw_ensure_trigger(tbl::regclass, name,
                         format('CREATE TRIGGER %I BEFORE %s ON %I FOR EACH %s'
                                ' EXECUTE FUNCTION gw_audit_append_only()', name, ev, tbl, lvl))
FROM (VALUES ('gw_audit_log', 'gw_audit_no_update', 'UPDATE OR DELETE', 'ROW'),
             ('gw_audit_log', 'gw_audit_no_truncate', 'TRUNCATE', 'STATEMENT'),
             ('gw_audit_chain', 'gw_audit_chain_no_update', 'UPDATE OR DELETE', 'ROW'),
             ('gw_audit_chain', 'gw_audit_chain_no_truncate', 'TRUNCATE', 'STATEMENT'),
             ('gw_audit_anchor', 'gw_audit_anchor_no_update', 'UPDATE OR DELETE', 'ROW'),
             ('gw_audit_anchor', 'gw_audit_anchor_no_truncate', 'TRUNCATE', 'STATEMENT'))
     AS t(tbl, name, ev, lvl);
