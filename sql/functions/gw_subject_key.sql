-- The canonical subject (lib/gw/subject.h, decision 0031) of a subject
-- stored before subjects were canonical: lower case, the kind "user" and the
-- namespace "default" added when missing. 'mia', 'User:Default/Mia' and
-- 'user:default/mia' all give 'user:default/mia'.
--
-- Subjects written since are canonical already and come back unchanged. The
-- separation-of-duties checks (gw_decide, gw_decide_extension, the approvals
-- list) compare through it, so a requester recorded in any older spelling
-- still cannot approve their own run, nor one person approve twice. It does
-- not validate: lower() may fold more than A-Z on an old row, which can only
-- make two rows look like one person (a refusal), never two people.
CREATE OR REPLACE FUNCTION gw_subject_key(s text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN strpos(rest, '/') = 0 THEN kind || ':default/' || rest
                ELSE kind || ':' || rest END
    FROM (SELECT CASE WHEN strpos(t, ':') = 0 THEN 'user' ELSE split_part(t, ':', 1) END AS kind,
                 CASE WHEN strpos(t, ':') = 0 THEN t ELSE substr(t, strpos(t, ':') + 1) END AS rest
          FROM (SELECT lower(s) AS t) l) p
$$;
