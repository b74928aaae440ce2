-- Queues a run.requested message for the run's current attempt, now.
CREATE OR REPLACE FUNCTION gw_enqueue_run(r gw_runs) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gw_enqueue_run_at(r, NULL);
END $$;
