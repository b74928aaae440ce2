-- The reaper's requeue sweep goes worker type by worker type (decision
-- 0078): a type whose runs topic still holds messages its workers have not
-- consumed is left alone (its queued runs are waiting in line, not lost),
-- and the others' old queued runs are republished. With the index on
-- queued_at alone, skipping a held type meant reading every old queued run
-- of it per sweep (a backlog of a million runs: a million rows a second).
-- Same number of indexes to maintain per status change: this one replaces
-- gw_runs_queued, which only that sweep used.
CREATE INDEX gw_runs_queued_by_type ON gw_runs (worker_type, queued_at) WHERE status = 'queued';
DROP INDEX gw_runs_queued;
