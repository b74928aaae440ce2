-- Authorization filters (broker/policy.h, docs/policy.md).
--
-- gw_visible says whether a run or resource falls in the caller's scope for
-- one permission. The broker resolves the policy into five parameters once
-- per request; this expression then filters lists and single reads inside
-- the query itself, so a caller never learns that a row it may not see
-- exists, and listing costs no extra round trip. It is a single SQL
-- expression, so PostgreSQL inlines it into the calling query.
--   p_subject  the caller
--   p_teams    the caller's teams
--   p_own      actions whose runs the caller sees when it requested them
--   p_team     ... when it or one of its teams requested them
--   p_all      ... whoever requested them
-- In each array '*' stands for every action (action ids cannot contain it).
CREATE OR REPLACE FUNCTION gw_visible(o_subject text, o_teams text[], o_action text,
                           p_subject text, p_teams text[],
                           p_own text[], p_team text[], p_all text[])
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        ('*' = ANY (p_all) OR o_action = ANY (p_all))
        OR ((o_subject = p_subject OR o_teams && p_teams)
            AND ('*' = ANY (p_team) OR o_action = ANY (p_team)))
        OR (o_subject = p_subject AND ('*' = ANY (p_own) OR o_action = ANY (p_own))),
        false)
$$;
