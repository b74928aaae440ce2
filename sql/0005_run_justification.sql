-- Why a run (or a longer lifetime) was asked for, and why a run was cancelled.
--
-- justification: the requester's optional text on POST /v1/actions/{id}/runs
-- (at most 1000 characters, checked by the broker), shown to approvers in
-- GET /v1/approvals and in approval webhooks, and kept in the audit entry of
-- the submission.
--
-- cancel_reason: what the canceller said (or "cancelled by <subject>") when
-- a running run is asked to stop; the worker's own account of how it stopped
-- ("cancelled; process group killed") goes to error_message, so the run ends
-- with the person's reason and the kill detail beside it (decision 0038).
ALTER TABLE gw_runs ADD COLUMN justification text;
ALTER TABLE gw_runs ADD COLUMN cancel_reason text;

-- The same for an extension of a resource's lifetime
-- (POST /v1/resources/{id}/extend {"seconds", "justification"}): kept with an
-- extension waiting for approval, shown to its approvers, audited.
ALTER TABLE gw_resource_extensions ADD COLUMN justification text;
