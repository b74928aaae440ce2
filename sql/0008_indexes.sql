-- Indexes for the live feeds and the approval list: /v1/events polls
-- resources changed since its last look, and approvers list pending runs.
CREATE INDEX gw_resources_updated ON gw_resources (updated_at);
CREATE INDEX gw_runs_pending_created ON gw_runs (created_at) WHERE status = 'pending_approval';
