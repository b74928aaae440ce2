-- Checks the named arguments of a function that takes one jsonb object
-- instead of a long positional list (gw_submit_run, gw_token_create,
-- gw_decide, gw_decide_extension; decision 0028). p_spec maps every key the
-- function knows to its JSON type, "string", "number", "integer", "boolean",
-- "object" or "array", followed by "!" (required, not null) or "?" (may be
-- missing or null). A missing required key, a value of another type or a key
-- the function does not know (a caller's typo) raises 22023
-- (invalid_parameter_value) naming the function and the key. Returns p_args,
-- so a caller can check in its DECLARE.
CREATE OR REPLACE FUNCTION gw_args(p_args jsonb, p_fn text, p_spec jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
    want text;
    v jsonb;
    got text;
BEGIN
    IF p_args IS NULL OR jsonb_typeof(p_args) <> 'object' THEN
        RAISE EXCEPTION '%: the argument must be a JSON object, not %', p_fn,
            coalesce(jsonb_typeof(p_args), 'NULL') USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_args) LOOP
        IF NOT p_spec ? k THEN
            RAISE EXCEPTION '%: unknown key "%"', p_fn, k USING ERRCODE = '22023';
        END IF;
    END LOOP;
    FOR k, want IN SELECT key, value FROM jsonb_each_text(p_spec) LOOP
        v := p_args -> k;
        got := CASE WHEN v IS NULL THEN NULL ELSE jsonb_typeof(v) END;
        IF got IS NULL OR got = 'null' THEN
            IF right(want, 1) = '!' THEN
                RAISE EXCEPTION '%: key "%" is required (JSON type %)', p_fn, k, left(want, -1)
                    USING ERRCODE = '22023';
            END IF;
            CONTINUE;
        END IF;
        IF left(want, -1) = 'integer' THEN
            IF got = 'number' AND v::text ~ '^-?[0-9]+$' THEN
                CONTINUE;
            END IF;
        ELSIF got = left(want, -1) THEN
            CONTINUE;
        END IF;
        RAISE EXCEPTION '%: key "%" must be of JSON type %, not %', p_fn, k, left(want, -1),
            CASE WHEN got = 'number' THEN 'number ' || v::text ELSE got END
            USING ERRCODE = '22023';
    END LOOP;
    RETURN p_args;
END $$;
