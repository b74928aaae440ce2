-- A JSON array of strings as text[] (NULL for a missing or null key).
CREATE OR REPLACE FUNCTION gw_args_texts(p_args jsonb, p_key text)
RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p_args -> p_key) = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(p_args -> p_key)) END
$$;
