-- The value of one workflow reference (the text between "${" and "}",
-- docs/workflows.md#expressions): inputs.NAME, steps.ID.outputs.KEY or
-- self.outputs.KEY, each optionally followed by .SUB.SUB... into nested
-- objects. NULL when it names nothing (a skipped step's output).
CREATE OR REPLACE FUNCTION gw_wf_ref(p_ref text, p_inputs jsonb, p_steps jsonb, p_self jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    m text[];
BEGIN
    m := regexp_match(p_ref, '^inputs\.([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$');
    IF m IS NOT NULL THEN RETURN p_inputs #> string_to_array(m[1], '.'); END IF;
    m := regexp_match(p_ref, '^steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$');
    IF m IS NOT NULL THEN RETURN p_steps -> m[1] #> string_to_array(m[2], '.'); END IF;
    m := regexp_match(p_ref, '^self\.outputs\.([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$');
    IF m IS NOT NULL THEN RETURN p_self #> string_to_array(m[1], '.'); END IF;
    RETURN NULL;
END $$;
