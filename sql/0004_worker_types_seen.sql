-- When a worker of each type was last seen taking work: the claim of a run
-- (gw_claim_run) records it. GET /v1/actions shows it per action, and a run
-- waiting for a type no worker has claimed for recently carries a
-- "no_worker" warning (gw_run_warnings; docs/decisions/0036).
CREATE TABLE gw_worker_types_seen (
    worker_type  text        PRIMARY KEY,
    last_seen_at timestamptz NOT NULL,
    last_worker  text        NOT NULL
);
