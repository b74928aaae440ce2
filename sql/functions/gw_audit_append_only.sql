-- gw_audit_log and gw_audit_chain are append-only: updates, deletes and
-- truncation are refused (decision 0014). The triggers live here, after the
-- function they call, dropped and created again on every migrate (CREATE OR
-- REPLACE TRIGGER needs PostgreSQL 14; decision 0021).
CREATE OR REPLACE FUNCTION gw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;

DROP TRIGGER IF EXISTS gw_audit_no_update ON gw_audit_log;
DROP TRIGGER IF EXISTS gw_audit_no_truncate ON gw_audit_log;
DROP TRIGGER IF EXISTS gw_audit_chain_no_update ON gw_audit_chain;
DROP TRIGGER IF EXISTS gw_audit_chain_no_truncate ON gw_audit_chain;
CREATE TRIGGER gw_audit_no_update BEFORE UPDATE OR DELETE ON gw_audit_log
    FOR EACH ROW EXECUTE FUNCTION gw_audit_append_only();
CREATE TRIGGER gw_audit_no_truncate BEFORE TRUNCATE ON gw_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gw_audit_append_only();
CREATE TRIGGER gw_audit_chain_no_update BEFORE UPDATE OR DELETE ON gw_audit_chain
    FOR EACH ROW EXECUTE FUNCTION gw_audit_append_only();
CREATE TRIGGER gw_audit_chain_no_truncate BEFORE TRUNCATE ON gw_audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION gw_audit_append_only();
