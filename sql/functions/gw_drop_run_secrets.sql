-- A run that ends (terminal status) drops its secret inputs at commit,
-- unless it created a resource that is not deleted yet (decision 0020): the
-- row keeps only the redacted copy. Deferred to commit by its constraint
-- trigger, created below after the function by gw_ensure_trigger.
CREATE OR REPLACE FUNCTION gw_drop_run_secrets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gw_runs r SET inputs = r.inputs_redacted, secrets_dropped_at = clock_timestamp()
    WHERE r.id = NEW.id
      AND r.status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired')
      AND r.inputs IS DISTINCT FROM r.inputs_redacted
      AND NOT EXISTS (SELECT 1 FROM gw_resources res
                      WHERE res.created_by_run = r.id AND res.status <> 'deleted');
    RETURN NULL;
END $$;

SELECT gw_ensure_trigger('gw_runs', 'gw_runs_drop_secrets', $ddl$
CREATE CONSTRAINT TRIGGER gw_runs_drop_secrets
    AFTER INSERT OR UPDATE ON gw_runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.secret_paths <> '[]'::jsonb
          AND NEW.status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired')
          AND NEW.inputs IS DISTINCT FROM NEW.inputs_redacted)
    EXECUTE FUNCTION gw_drop_run_secrets()$ddl$);
