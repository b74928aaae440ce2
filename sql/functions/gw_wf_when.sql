-- Whether a `when` object matches (docs/workflows.md): every key, a
-- top-level input name or one reference "${...}", has a value among the
-- allowed ones. NULL or empty: true.
CREATE OR REPLACE FUNCTION gw_wf_when(p_when jsonb, p_inputs jsonb, p_steps jsonb)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
    allowed jsonb;
    v jsonb;
    m text[];
BEGIN
    FOR k, allowed IN SELECT key, value FROM jsonb_each(coalesce(p_when, '{}'::jsonb)) LOOP
        m := regexp_match(k, '^\$\{([^}]*)\}$');
        v := CASE WHEN m IS NOT NULL THEN gw_wf_ref(m[1], p_inputs, p_steps, NULL)
                  ELSE p_inputs -> k END;
        IF v IS NULL OR NOT allowed @> jsonb_build_array(v) THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END $$;
