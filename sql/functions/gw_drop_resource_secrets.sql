-- A resource that becomes 'deleted' drops the secrets of the run that
-- created it and of its teardown runs (decision 0020). Deferred to commit
-- by its constraint trigger, created below after the function.
CREATE OR REPLACE FUNCTION gw_drop_resource_secrets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gw_runs r SET inputs = r.inputs_redacted, secrets_dropped_at = clock_timestamp()
    WHERE (r.id = NEW.created_by_run OR r.resource_id = NEW.id)
      AND r.status IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'expired')
      AND r.secret_paths <> '[]'::jsonb
      AND r.inputs IS DISTINCT FROM r.inputs_redacted;
    RETURN NULL;
END $$;

SELECT gw_ensure_trigger('gw_resources', 'gw_resources_drop_secrets', $ddl$
CREATE CONSTRAINT TRIGGER gw_resources_drop_secrets
    AFTER UPDATE OF status ON gw_resources
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.status = 'deleted' AND OLD.status IS DISTINCT FROM 'deleted')
    EXECUTE FUNCTION gw_drop_resource_secrets()$ddl$);
