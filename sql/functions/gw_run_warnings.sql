-- What a waiting run should say loudly (gw_run_json's "warnings"): a run
-- that waits for a worker (queued, or pending approval and then queued) of
-- a type no worker has claimed a run of within gw_worker_seen_window()
-- carries {"code": "no_worker", ...}. NULL when there is nothing to say.
CREATE OR REPLACE FUNCTION gw_run_warnings(r gw_runs) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    seen timestamptz;
BEGIN
    IF r.status NOT IN ('accepted', 'pending_approval', 'queued') OR r.worker_type = 'workflow' THEN
        RETURN NULL;
    END IF;
    SELECT s.last_seen_at INTO seen FROM gw_worker_types_seen s WHERE s.worker_type = r.worker_type;
    IF seen IS NOT NULL AND seen > clock_timestamp() - gw_worker_seen_window() THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_array(jsonb_build_object(
        'code', 'no_worker',
        'worker_type', r.worker_type,
        'last_seen_at', gw_ts(seen),
        'message', format('no worker of type %s has claimed a run in the last %s s%s; this run stays queued until one does',
                          r.worker_type, extract(epoch FROM gw_worker_seen_window())::bigint,
                          CASE WHEN seen IS NULL THEN ' (none ever has)' ELSE '' END)));
END $$;
