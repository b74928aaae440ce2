-- gw_audit_log and gw_audit_chain are append-only: updates, deletes and
-- truncation are refused (decision 0014). The triggers live here, after the
-- function they call, created by gw_ensure_trigger only when missing, changed
-- or disabled (decision 0021).
CREATE OR REPLACE FUNCTION gw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;

SELECT gw_ensure_trigger(tbl::regclass, name,
                         format('CREATE TRIGGER %I BEFORE %s ON %I FOR EACH %s'
                                ' EXECUTE FUNCTION gw_audit_append_only()', name, ev, tbl, lvl))
FROM (VALUES ('gw_audit_log', 'gw_audit_no_update', 'UPDATE OR DELETE', 'ROW'),
             ('gw_audit_log', 'gw_audit_no_truncate', 'TRUNCATE', 'STATEMENT'),
             ('gw_audit_chain', 'gw_audit_chain_no_update', 'UPDATE OR DELETE', 'ROW'),
             ('gw_audit_chain', 'gw_audit_chain_no_truncate', 'TRUNCATE', 'STATEMENT'))
     AS t(tbl, name, ev, lvl);
