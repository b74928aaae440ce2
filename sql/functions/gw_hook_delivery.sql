-- Records delivery `p_delivery` of incoming webhook `p_hook` (broker/hooks.c).
-- True the first time; false when it was already received within its
-- window (a replay). Deliveries past their window (twice the hook's timestamp
-- tolerance, `p_tolerance_s`, so clock skew in either direction is covered)
-- are forgotten first: a request that old fails its timestamp check anyway.
CREATE OR REPLACE FUNCTION gw_hook_delivery(p_hook text, p_delivery text, p_tolerance_s int)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    fresh boolean;
BEGIN
    DELETE FROM gw_hook_deliveries WHERE forget_after < now();
    INSERT INTO gw_hook_deliveries (hook, delivery_id, forget_after)
    VALUES (p_hook, p_delivery, now() + make_interval(secs => 2 * p_tolerance_s))
    ON CONFLICT (hook, delivery_id) DO NOTHING
    RETURNING true INTO fresh;
    RETURN coalesce(fresh, false);
END $$;
