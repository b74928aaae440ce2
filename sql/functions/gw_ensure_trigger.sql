-- Creates trigger p_name on p_table from p_ddl (a whole CREATE [CONSTRAINT]
-- TRIGGER statement) unless the live trigger already is that statement and
-- enabled. Every migrate re-applies the function files (decision 0021), but
-- DROP/CREATE TRIGGER take an ACCESS EXCLUSIVE lock on the table: re-creating
-- unchanged triggers on every broker start would queue every request behind
-- any long query on gw_runs. The statement's md5 is kept as the trigger's
-- comment; a trigger that is missing, disabled (ALTER TABLE ... DISABLE
-- TRIGGER) or made from another statement is dropped and created again.
CREATE OR REPLACE FUNCTION gw_ensure_trigger(p_table regclass, p_name text, p_ddl text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_tag text := 'gangway:' || md5(p_ddl);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger t
               WHERE t.tgrelid = p_table AND t.tgname = p_name AND t.tgenabled <> 'D'
                 AND obj_description(t.oid, 'pg_trigger') = v_tag) THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', p_name, p_table);
    EXECUTE p_ddl;
    EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', p_name, p_table, v_tag);
    RETURN true;
END $$;
