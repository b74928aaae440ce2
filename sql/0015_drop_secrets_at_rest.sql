-- Secret inputs (writeOnly in the action's input schema) are kept in
-- gw_runs.inputs only while something may still need them: the run's own
-- attempts and retries, and the teardown of the resource it created (a
-- teardown run starts from its parent's inputs, gw_start_teardown). Then the
-- row keeps only the redacted copy (issue 10; decision 0020):
--   * a run that ends (terminal status) drops its secrets at commit, unless
--     it created a resource that is not deleted yet;
--   * a resource that becomes 'deleted' drops the secrets of the run that
--     created it and of its teardown runs.
-- Deferred to commit, so a run that succeeds and records its resource in
-- one transaction is judged with the resource in place. secrets_dropped_at
-- says when (NULL: still held, or there were none).

ALTER TABLE gw_runs ADD COLUMN secrets_dropped_at timestamptz;

CREATE FUNCTION gw_drop_run_secrets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gw_runs r SET inputs = r.inputs_redacted, secrets_dropped_at = clock_timestamp()
    WHERE r.id = NEW.id
      AND r.status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired')
      AND r.inputs IS DISTINCT FROM r.inputs_redacted
      AND NOT EXISTS (SELECT 1 FROM gw_resources res
                      WHERE res.created_by_run = r.id AND res.status <> 'deleted');
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER gw_runs_drop_secrets
    AFTER INSERT OR UPDATE ON gw_runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.secret_paths <> '[]'::jsonb
          AND NEW.status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired')
          AND NEW.inputs IS DISTINCT FROM NEW.inputs_redacted)
    EXECUTE FUNCTION gw_drop_run_secrets();

CREATE FUNCTION gw_drop_resource_secrets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gw_runs r SET inputs = r.inputs_redacted, secrets_dropped_at = clock_timestamp()
    WHERE (r.id = NEW.created_by_run OR r.resource_id = NEW.id)
      AND r.status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired')
      AND r.secret_paths <> '[]'::jsonb
      AND r.inputs IS DISTINCT FROM r.inputs_redacted;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER gw_resources_drop_secrets
    AFTER UPDATE OF status ON gw_resources
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.status = 'deleted' AND OLD.status IS DISTINCT FROM 'deleted')
    EXECUTE FUNCTION gw_drop_resource_secrets();

-- Runs that ended before this migration.
UPDATE gw_runs r SET inputs = r.inputs_redacted, secrets_dropped_at = clock_timestamp()
WHERE r.secret_paths <> '[]'::jsonb
  AND r.status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired')
  AND r.inputs IS DISTINCT FROM r.inputs_redacted
  AND NOT EXISTS (SELECT 1 FROM gw_resources res
                  WHERE res.created_by_run = r.id AND res.status <> 'deleted');
