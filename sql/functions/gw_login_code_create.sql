-- A one-time console login code (`gangway dev`'s GANGWAY_CONSOLE_URL,
-- docs/console.md): its hash, the API token whose identity it signs in as,
-- and how long it may wait to be used. Accepted only by a broker started
-- with --dev-login (broker/session.c), once.
CREATE OR REPLACE FUNCTION gw_login_code_create(p_code_hash text, p_token_hash text, p_ttl_s integer)
RETURNS void LANGUAGE sql AS $$
    DELETE FROM gw_login_flows WHERE expires_at < now() - interval '1 hour';
    INSERT INTO gw_login_flows (key_hash, kind, token_hash, expires_at)
    VALUES (p_code_hash, 'dev', p_token_hash, now() + make_interval(secs => p_ttl_s));
$$;
