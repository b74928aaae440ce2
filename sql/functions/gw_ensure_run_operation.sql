-- Makes sure gw_runs_operation_check accepts operation p_op, keeping every
-- operation it already accepts. Workflows need 'undo' (docs/workflows.md,
-- sql/0014_workflows.sql), but migrations on other branches redefine the
-- whole list (0015 added 'drift' to the list it knew): a migration written
-- before or after theirs would drop the other's value, whichever order a
-- database applied them in. Function files are applied after every
-- migration on every migrate (decision 0021), so this runs last; it takes
-- the table lock only when the value is missing.
CREATE OR REPLACE FUNCTION gw_ensure_run_operation(p_op text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    def text;
    ops text[];
BEGIN
    SELECT pg_get_constraintdef(c.oid) INTO def FROM pg_constraint c
    WHERE c.conrelid = 'gw_runs'::regclass AND c.conname = 'gw_runs_operation_check';
    IF def IS NULL THEN
        RETURN false;
    END IF;
    SELECT array_agg(DISTINCT m[1]) INTO ops FROM regexp_matches(def, '''([a-z_]+)''', 'g') m;
    IF p_op = ANY (ops) THEN
        RETURN false;
    END IF;
    ops := array_append(ops, p_op);
    EXECUTE 'ALTER TABLE gw_runs DROP CONSTRAINT gw_runs_operation_check';
    EXECUTE format('ALTER TABLE gw_runs ADD CONSTRAINT gw_runs_operation_check CHECK (operation IN (%s))',
                   (SELECT string_agg(quote_literal(o), ', ' ORDER BY o) FROM unnest(ops) o));
    RETURN true;
END $$;

SELECT gw_ensure_run_operation('undo');
