-- A step's inputs with their references replaced (docs/workflows.md#expressions):
-- a string that is exactly one "${...}" becomes the referenced value (any
-- JSON type; null when it names nothing); any other string has each
-- reference replaced by its text (a string as is, null as "", anything
-- else as JSON text). Object keys are left alone.
CREATE OR REPLACE FUNCTION gw_wf_expand(p_v jsonb, p_inputs jsonb, p_steps jsonb, p_self jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s text;
    m text[];
    out text := '';
    i integer;
    j integer;
    v jsonb;
BEGIN
    CASE jsonb_typeof(p_v)
    WHEN 'object' THEN
        RETURN coalesce((SELECT jsonb_object_agg(e.key, gw_wf_expand(e.value, p_inputs, p_steps, p_self))
                         FROM jsonb_each(p_v) e), '{}'::jsonb);
    WHEN 'array' THEN
        RETURN coalesce((SELECT jsonb_agg(gw_wf_expand(e.value, p_inputs, p_steps, p_self) ORDER BY e.ord)
                         FROM jsonb_array_elements(p_v) WITH ORDINALITY e(value, ord)), '[]'::jsonb);
    WHEN 'string' THEN
        s := p_v #>> '{}';
        m := regexp_match(s, '^\$\{([^}]*)\}$');
        IF m IS NOT NULL THEN
            RETURN coalesce(gw_wf_ref(m[1], p_inputs, p_steps, p_self), 'null'::jsonb);
        END IF;
        LOOP
            i := strpos(s, '${');
            EXIT WHEN i = 0;
            j := strpos(substr(s, i + 2), '}');
            EXIT WHEN j = 0;
            v := gw_wf_ref(substr(s, i + 2, j - 1), p_inputs, p_steps, p_self);
            out := out || left(s, i - 1) || CASE WHEN v IS NULL OR jsonb_typeof(v) = 'null' THEN ''
                                                 WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}'
                                                 ELSE v::text END;
            s := substr(s, i + 2 + j);
        END LOOP;
        RETURN to_jsonb(out || s);
    ELSE
        RETURN p_v;
    END CASE;
END $$;
