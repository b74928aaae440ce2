-- Moves workflow run `p_parent` on (docs/workflows.md, decision 0065):
-- called when it starts and, in the same transaction, whenever one of its
-- child runs ends (gw_finish_run) or it is cancelled (gw_cancel_run), so
-- the next steps' outbox rows commit with the event that made them ready
-- and a broker crash loses nothing.
--
-- forward:      start every step whose needs are done (succeeded or
--               skipped) and whose `when` matches (else it is skipped);
--               all done: the parent succeeds with {steps: {id: outputs}}.
-- a step ended otherwise, or the parent was cancelled: cancel the steps
-- still going, then compensating: once nothing is going, the undo of the
-- succeeded steps, one at a time, the last finished first; then the parent
-- ends failed (or cancelled) with compensated = every undo succeeded; a
-- failed undo flags it needs_reconciliation. Past its own deadline
-- (wf_timed_out_at, set by gw_wf_timeouts) it compensates the same way and
-- ends timed_out.
CREATE OR REPLACE FUNCTION gw_wf_advance(p_parent uuid, p_actor text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p gw_runs;
    steps jsonb;
    st jsonb;
    outs jsonb;
    c gw_runs;
    started boolean;
    pending boolean;
    failed_step text;
    failed_run gw_runs;
    undo_failed boolean;
    undo_any boolean;
BEGIN
    -- Children ended by what this function does (a cancelled queued step)
    -- call back through gw_finish_run: the loop below sees their end.
    IF current_setting('gw.wf_busy', true) = p_parent::text THEN
        RETURN;
    END IF;
    PERFORM set_config('gw.wf_busy', p_parent::text, true);
    LOOP
        SELECT * INTO p FROM gw_runs WHERE id = p_parent FOR UPDATE;
        EXIT WHEN NOT FOUND OR p.status <> 'running';
        SELECT a.definition -> 'steps' INTO steps FROM gw_actions a
        WHERE a.id = p.action_id AND a.version = p.action_version;

        IF p.operation = 'teardown' THEN
            -- The teardown of a workflow's resource (TTL, delete): the undo
            -- of each step the creating run (p.parent_run_id) finished, one
            -- at a time, the last finished first; an undo that succeeded in
            -- an earlier teardown attempt is not run again.
            EXIT WHEN EXISTS (SELECT 1 FROM gw_runs u WHERE u.parent_run_id = p.id
                              AND u.status IN ('accepted', 'pending_approval', 'queued', 'running'));
            SELECT coalesce(jsonb_object_agg(l.step_id, coalesce(l.outputs, '{}'::jsonb)), '{}'::jsonb)
            INTO outs FROM (SELECT DISTINCT ON (step_id) * FROM gw_runs
                            WHERE parent_run_id = p.parent_run_id AND operation = 'create'
                              AND step_id IS NOT NULL
                            ORDER BY step_id, created_at DESC) l
            WHERE l.status = 'succeeded';
            SELECT * INTO c FROM (SELECT DISTINCT ON (step_id) * FROM gw_runs
                                  WHERE parent_run_id = p.parent_run_id AND operation = 'create'
                                    AND step_id IS NOT NULL
                                  ORDER BY step_id, created_at DESC) l
            WHERE l.status = 'succeeded'
              AND EXISTS (SELECT 1 FROM jsonb_array_elements(steps) s
                          WHERE s.value ->> 'id' = l.step_id AND s.value ? 'undo')
              AND NOT EXISTS (SELECT 1 FROM gw_runs u
                              WHERE u.parent_run_id = p.id AND u.step_id = l.step_id)
              AND NOT EXISTS (SELECT 1 FROM gw_runs u JOIN gw_runs t ON t.id = u.parent_run_id
                              WHERE t.parent_run_id = p.parent_run_id AND t.operation = 'teardown'
                                AND u.step_id = l.step_id AND u.status = 'succeeded')
            ORDER BY l.finished_at DESC, l.created_at DESC LIMIT 1;
            IF c.id IS NOT NULL THEN
                SELECT s.value INTO st FROM jsonb_array_elements(steps) s
                WHERE s.value ->> 'id' = c.step_id;
                PERFORM gw_wf_start_child(p, st, 'undo', outs, coalesce(c.outputs, '{}'::jsonb), p_actor);
                EXIT;
            END IF;
            undo_failed := EXISTS (SELECT 1 FROM gw_runs u WHERE u.parent_run_id = p.id
                                   AND u.status <> 'succeeded');
            UPDATE gw_runs SET compensated = NOT undo_failed WHERE id = p.id;
            IF undo_failed THEN
                PERFORM gw_finish_run(p.id, 'failed', 'undo_failed', NULL, p_actor, false);
            ELSE
                PERFORM gw_finish_run(p.id, 'succeeded', NULL, '{}'::jsonb, p_actor, false);
            END IF;
            EXIT;
        END IF;

        -- The latest run of each step (a resumed workflow has several). A
        -- step succeeded and then undone, or one that did not succeed before
        -- a resume (started_at), is as if it never ran.
        CREATE TEMP TABLE IF NOT EXISTS gw_wf_latest (LIKE gw_runs) ON COMMIT DROP;
        TRUNCATE gw_wf_latest;
        INSERT INTO gw_wf_latest
        SELECT * FROM (SELECT DISTINCT ON (step_id) * FROM gw_runs
                       WHERE parent_run_id = p.id AND operation = 'create' AND step_id IS NOT NULL
                       ORDER BY step_id, created_at DESC) l
        WHERE (l.created_at >= p.started_at OR l.status = 'succeeded')
          AND NOT EXISTS (SELECT 1 FROM gw_runs u
                          WHERE u.parent_run_id = p.id AND u.operation = 'undo'
                            AND u.step_id = l.step_id AND u.created_at > l.created_at
                            AND u.status = 'succeeded');
        SELECT coalesce(jsonb_object_agg(step_id, coalesce(outputs, '{}'::jsonb)), '{}'::jsonb)
        INTO outs FROM gw_wf_latest WHERE status = 'succeeded';
        pending := EXISTS (SELECT 1 FROM gw_wf_latest
                           WHERE status IN ('accepted', 'pending_approval', 'queued', 'running'));

        IF p.wf_phase = 'forward' THEN
            SELECT * INTO failed_run FROM gw_wf_latest
            WHERE status IN ('failed', 'timed_out', 'cancelled', 'rejected', 'expired')
            ORDER BY finished_at LIMIT 1;
            IF failed_run.id IS NOT NULL OR p.cancel_requested_at IS NOT NULL
               OR p.wf_timed_out_at IS NOT NULL THEN
                UPDATE gw_runs SET wf_phase = 'compensating', wf_failed_step = failed_run.step_id,
                                   error_message = CASE
                                       WHEN p.wf_timed_out_at IS NOT NULL
                                       THEN format('the workflow ran past its timeout_seconds (%s)',
                                                   p.timeout_seconds)
                                       WHEN failed_run.id IS NULL THEN error_message
                                       ELSE left(format('step %s ended %s: %s', failed_run.step_id,
                                                        failed_run.status,
                                                        coalesce(failed_run.error_message,
                                                                 failed_run.reason, '')), 4000) END,
                                   updated_at = clock_timestamp()
                WHERE id = p.id;
                INSERT INTO gw_audit_log (actor, verb, object, detail)
                VALUES (p_actor, 'run.compensating', 'run:' || p.id,
                        jsonb_strip_nulls(jsonb_build_object('failed_step', failed_run.step_id,
                            'cancelled', p.cancel_requested_at IS NOT NULL,
                            'timed_out', p.wf_timed_out_at IS NOT NULL)));
                FOR c IN SELECT * FROM gw_wf_latest
                         WHERE status IN ('accepted', 'pending_approval', 'queued', 'running') LOOP
                    PERFORM gw_cancel_run(c.id, 'gangway',
                        CASE WHEN p.wf_timed_out_at IS NOT NULL
                             THEN format('workflow timed out after %s s', p.timeout_seconds)
                             WHEN failed_run.id IS NULL THEN 'workflow cancelled'
                             ELSE format('step %s ended %s', failed_run.step_id, failed_run.status) END);
                END LOOP;
                CONTINUE;
            END IF;
            started := false;
            FOR st IN SELECT value FROM jsonb_array_elements(steps) WITH ORDINALITY e(value, ord)
                      ORDER BY ord LOOP
                CONTINUE WHEN EXISTS (SELECT 1 FROM gw_wf_latest l WHERE l.step_id = st ->> 'id')
                           OR (st ->> 'id') = ANY (coalesce(p.wf_skipped, '{}'));
                -- needs: absent = the previous step; each must have succeeded or been skipped.
                CONTINUE WHEN EXISTS (
                    SELECT 1 FROM jsonb_array_elements_text(coalesce(st -> 'needs',
                        (SELECT CASE WHEN e.ord = 1 THEN '[]'::jsonb
                                     ELSE jsonb_build_array(steps -> (e.ord::integer - 2) -> 'id') END
                         FROM jsonb_array_elements(steps) WITH ORDINALITY e(value, ord)
                         WHERE e.value ->> 'id' = st ->> 'id'))) n(id)
                    WHERE n.id <> ALL (coalesce(p.wf_skipped, '{}'))
                      AND NOT EXISTS (SELECT 1 FROM gw_wf_latest l
                                      WHERE l.step_id = n.id AND l.status = 'succeeded'));
                IF NOT gw_wf_when(st -> 'when', p.inputs, outs) THEN
                    UPDATE gw_runs SET wf_skipped = array_append(coalesce(wf_skipped, '{}'), st ->> 'id'),
                                       updated_at = clock_timestamp()
                    WHERE id = p.id RETURNING * INTO p;
                    INSERT INTO gw_audit_log (actor, verb, object, detail)
                    VALUES ('gangway', 'run.step_skipped', 'run:' || p.id,
                            jsonb_build_object('step', st ->> 'id'));
                ELSE
                    PERFORM gw_wf_start_child(p, st, 'create', outs, NULL, p_actor);
                END IF;
                started := true;
            END LOOP;
            CONTINUE WHEN started;  -- a skip may make later steps ready
            IF NOT pending THEN
                PERFORM gw_finish_run(p.id, 'succeeded', NULL, jsonb_build_object('steps', outs),
                                      'gangway', false);
            END IF;
            EXIT;
        END IF;

        -- compensating: wait for the steps (and any undo) still going.
        EXIT WHEN pending OR EXISTS (SELECT 1 FROM gw_runs
                                     WHERE parent_run_id = p.id AND operation = 'undo'
                                       AND status IN ('accepted', 'pending_approval', 'queued', 'running'));
        -- The next undo: the succeeded step finished last whose undo has not run since.
        SELECT * INTO c FROM gw_wf_latest l
        WHERE l.status = 'succeeded'
          AND EXISTS (SELECT 1 FROM jsonb_array_elements(steps) s
                      WHERE s.value ->> 'id' = l.step_id AND s.value ? 'undo')
          AND NOT EXISTS (SELECT 1 FROM gw_runs u
                          WHERE u.parent_run_id = p.id AND u.operation = 'undo'
                            AND u.step_id = l.step_id AND u.created_at > l.created_at)
        ORDER BY l.finished_at DESC, l.created_at DESC LIMIT 1;
        IF c.id IS NOT NULL THEN
            SELECT s.value INTO st FROM jsonb_array_elements(steps) s WHERE s.value ->> 'id' = c.step_id;
            PERFORM gw_wf_start_child(p, st, 'undo', outs, coalesce(c.outputs, '{}'::jsonb), p_actor);
            EXIT;
        END IF;
        -- Every undo ran: the undo of each succeeded step, since its run.
        SELECT bool_or(u.status <> 'succeeded'), count(*) > 0 INTO undo_failed, undo_any
        FROM gw_wf_latest l JOIN gw_runs u
          ON u.parent_run_id = p.id AND u.operation = 'undo' AND u.step_id = l.step_id
         AND u.created_at > l.created_at
        WHERE l.status = 'succeeded';
        undo_failed := coalesce(undo_failed, false);
        UPDATE gw_runs SET compensated = NOT undo_failed WHERE id = p.id;
        failed_step := p.wf_failed_step;
        IF p.wf_timed_out_at IS NOT NULL THEN
            -- Its own deadline passed (gw_wf_timeouts, decision 0071).
            PERFORM gw_finish_run(p.id, 'timed_out', 'deadline_exceeded', NULL, p_actor,
                                  undo_failed);
        ELSIF p.cancel_requested_at IS NOT NULL AND failed_step IS NULL THEN
            PERFORM gw_finish_run(p.id, 'cancelled', coalesce(p.cancel_reason, 'cancelled'), NULL,
                                  p_actor, undo_failed);
        ELSE
            PERFORM gw_finish_run(p.id, 'failed', 'step_failed', NULL, p_actor, undo_failed);
        END IF;
        EXIT;
    END LOOP;
    PERFORM set_config('gw.wf_busy', '', true);
END $$;
