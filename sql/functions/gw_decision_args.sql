-- The named arguments of a decision on a run's approval (gw_decide) or on a
-- resource's extension (gw_decide_extension), checked by gw_args and read
-- into their types:
--   approver           who decides (string, required)
--   teams, roles       the approver's (arrays of strings; default none)
--   decision           "approve" or "reject" (string, required)
--   comment            (string)
CREATE OR REPLACE FUNCTION gw_decision_args(p_args jsonb, p_fn text, OUT approver text,
                                            OUT teams text[], OUT roles text[],
                                            OUT decision text, OUT comment text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    a jsonb := gw_args(p_args, p_fn, '{
        "approver": "string!", "teams": "array?", "roles": "array?", "decision": "string!",
        "comment": "string?"}');
BEGIN
    approver := a ->> 'approver';
    teams := gw_args_texts(a, 'teams');
    roles := gw_args_texts(a, 'roles');
    decision := a ->> 'decision';
    comment := a ->> 'comment';
END $$;
