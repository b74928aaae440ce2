-- Whether an approver may see a run it is not in the read scope of
-- (docs/policy.md): the run's approval rule names one of the caller's teams
-- or roles (or names none: any holder of decide_approvals), or the caller
-- already decided on it. The caller's decide_approvals on the run's action
-- is checked by the query that uses this. One SQL expression, inlined.
CREATE OR REPLACE FUNCTION gw_approver_sees(p_rule jsonb, p_run uuid, p_subject text,
                                            p_teams text[], p_roles text[])
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (p_rule IS NOT NULL AND (
               (jsonb_array_length(coalesce(p_rule -> 'from_teams', '[]')) = 0
                AND jsonb_array_length(coalesce(p_rule -> 'from_roles', '[]')) = 0)
               OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(p_rule -> 'from_teams', '[]')) t
                          WHERE t = ANY (p_teams))
               OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(p_rule -> 'from_roles', '[]')) t
                          WHERE t = ANY (p_roles))))
           OR EXISTS (SELECT 1 FROM gw_approvals a WHERE a.run_id = p_run AND a.approver = p_subject)
$$;
