-- The JSON pointers, within a step's (or undo's) inputs template `p_v`,
-- of the strings that reference a secret input of the workflow
-- (`p_secret`: the workflow run's secret_paths, e.g. ["/api_token"]): the
-- step run's own secret_paths, so its worker masks them in log lines and
-- the secrets are dropped from it when it ends (decision 0020).
CREATE OR REPLACE FUNCTION gw_wf_secret_paths(p_v jsonb, p_secret jsonb, p_at text)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out jsonb := '[]'::jsonb;
    k text;
    x jsonb;
    i integer := 0;
BEGIN
    IF p_secret IS NULL OR p_secret = '[]'::jsonb THEN
        RETURN '[]'::jsonb;
    END IF;
    CASE jsonb_typeof(p_v)
    WHEN 'object' THEN
        FOR k, x IN SELECT key, value FROM jsonb_each(p_v) LOOP
            out := out || gw_wf_secret_paths(x, p_secret,
                              p_at || '/' || replace(replace(k, '~', '~0'), '/', '~1'));
        END LOOP;
    WHEN 'array' THEN
        FOR x IN SELECT value FROM jsonb_array_elements(p_v) LOOP
            out := out || gw_wf_secret_paths(x, p_secret, p_at || '/' || i);
            i := i + 1;
        END LOOP;
    WHEN 'string' THEN
        IF EXISTS (SELECT 1 FROM regexp_matches(p_v #>> '{}', '\$\{inputs\.([A-Za-z0-9_-]+)[.}]', 'g') m
                   WHERE p_secret ? ('/' || m[1])) THEN
            out := jsonb_build_array(p_at);
        END IF;
    ELSE
    END CASE;
    RETURN out;
END $$;
