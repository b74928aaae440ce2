-- What a finished drift check (operation 'drift', decisions 0067 and 0068)
-- records on its resource, under the resource's row lock: in_sync (the
-- check's outputs.reconcile.changes is false: terraform's plan exit 0, or
-- every file the git backend wrote still has its blob at the branch's head),
-- drifted (changes true: the summary of the differences, terraform's plan
-- summary and addresses or git's branch, head commit and changed files),
-- check_failed (the check failed, timed out or was cancelled: its status,
-- reason and error message). A change to drifted publishes the
-- catalog event resource.drifted and sends the resource.drifted webhook, and
-- every result is audited. A check that is no longer the resource's latest
-- is ignored. Called from gw_finish_run.
CREATE OR REPLACE FUNCTION gw_drift_after_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    res gw_resources;
    was text;
    verdict text;
    changes jsonb := r.outputs #> '{reconcile,changes}';
BEGIN
    SELECT * INTO res FROM gw_resources WHERE id = r.resource_id FOR UPDATE;
    IF NOT FOUND OR res.drift_run_id IS DISTINCT FROM r.id THEN
        RETURN;
    END IF;
    was := res.drift_status;
    verdict := CASE WHEN r.status = 'succeeded' AND changes = 'false'::jsonb THEN 'in_sync'
                    WHEN r.status = 'succeeded' AND changes = 'true'::jsonb THEN 'drifted'
                    ELSE 'check_failed' END;
    UPDATE gw_resources
    SET drift_status = verdict,
        drift_summary = CASE verdict
            WHEN 'drifted' THEN CASE WHEN r.worker_type = 'git' THEN
                    jsonb_build_object('branch', r.outputs #> '{reconcile,branch}',
                                       'commit', r.outputs #> '{reconcile,commit}',
                                       'files', coalesce(r.outputs #> '{reconcile,files}', '[]'))
                ELSE coalesce(r.outputs -> 'plan', '{}'::jsonb)
                     || jsonb_build_object('resources', coalesce(r.outputs #> '{reconcile,resources}', '[]'))
                END
            WHEN 'check_failed' THEN jsonb_strip_nulls(jsonb_build_object(
                'run_status', r.status, 'reason', r.reason,
                'message', left(r.error_message, 500)))
            END,
        drift_checked_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = res.id RETURNING * INTO res;
    INSERT INTO gw_audit_log (actor, verb, object, detail)
    VALUES ('gangway', 'resource.drift_' || verdict, 'resource:' || res.id,
            jsonb_strip_nulls(jsonb_build_object('drift_run', r.id, 'summary', res.drift_summary)));
    IF verdict = 'drifted' AND was IS DISTINCT FROM 'drifted' THEN
        PERFORM gw_publish_resource(res, 'drifted');
        PERFORM gw_webhook('resource.drifted', jsonb_build_object(
            'type', 'resource.drifted', 'resource', gw_resource_json(res),
            'text', format('Gangway: %s %s (%s) has drifted from what Gangway applied: %s. Drift run %s.',
                           res.kind, res.name, res.action_id,
                           coalesce((res.drift_summary - 'by_type')::text, 'no summary'), r.id)));
    ELSIF verdict <> 'drifted' AND was = 'drifted' THEN
        PERFORM gw_publish_resource(res, 'updated');
    END IF;
END $$;
