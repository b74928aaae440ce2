-- The resource as the API shows it. PL/pgSQL rather than SQL: see
-- gw_run_json.
CREATE OR REPLACE FUNCTION gw_resource_json(r gw_resources) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    pending jsonb;
BEGIN
    SELECT jsonb_build_object(
               'id', e.id, 'seconds', e.seconds, 'requested_by', e.requested_by,
               'justification', e.justification,
               'required', e.rule -> 'approvals', 'from_teams', e.rule -> 'from_teams',
               'from_roles', e.rule -> 'from_roles', 'requested_at', gw_ts(e.created_at),
               'decisions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                       'approver', d.approver, 'decision', d.decision, 'comment', d.comment,
                       'at', gw_ts(d.created_at)) ORDER BY d.created_at)
                   FROM gw_extension_decisions d WHERE d.extension_id = e.id), '[]'::jsonb))
      INTO pending
      FROM gw_resource_extensions e WHERE e.resource_id = r.id AND e.status = 'pending';
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'id', r.id, 'action', r.action_id, 'kind', r.kind, 'name', r.name,
        'owner', jsonb_build_object('subject', r.owner_subject, 'teams', to_jsonb(r.owner_teams)),
        'created_by_run', r.created_by_run, 'outputs', r.outputs, 'status', r.status,
        'expires_at', gw_ts(r.expires_at), 'max_expires_at', gw_ts(r.max_expires_at),
        'teardown_run', r.teardown_run_id, 'teardown_attempts', r.teardown_attempts,
        'needs_attention', r.needs_attention,
        'drift', CASE WHEN r.drift_status IS NULL THEN NULL ELSE jsonb_build_object(
            'status', r.drift_status, 'summary', r.drift_summary,
            'checked_at', gw_ts(r.drift_checked_at), 'next_at', gw_ts(r.drift_next_at),
            'run', r.drift_run_id) END,
        'pending_extension', pending,
        'created_at', gw_ts(r.created_at), 'updated_at', gw_ts(r.updated_at),
        'deleted_at', gw_ts(r.deleted_at),
        'cursor', gw_ts(r.created_at) || '~' || r.id::text));
END $$;
