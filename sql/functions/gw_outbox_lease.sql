-- Leases up to p_limit unsent outbox rows that are not batches, for
-- p_lease, in id order: the lease of relays from before batch rows
-- (sql/0019_outbox_batches.sql), kept for a rolling upgrade. Today's relay
-- calls gw_outbox_lease_parts.
-- `id = ANY (ARRAY(...))`, not `id IN (...)`: the planner turned the IN into
-- a hash semi join over a sequential scan of the whole outbox, O(backlog)
-- per lease once Kafka has been away (tests/integration/test_sql_plans.py);
-- the array is probed through the primary key.
CREATE OR REPLACE FUNCTION gw_outbox_lease(p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, topic text, msg_key text, payload text) LANGUAGE sql AS $$
    UPDATE gw_outbox o SET lease_until = clock_timestamp() + p_lease, attempts = o.attempts + 1
    WHERE o.id = ANY (ARRAY(SELECT i.id FROM gw_outbox i
                   WHERE (i.lease_until IS NULL OR i.lease_until < clock_timestamp())
                     AND (i.not_before IS NULL OR i.not_before <= clock_timestamp())
                     AND NOT i.batch
                   ORDER BY i.id LIMIT p_limit FOR UPDATE SKIP LOCKED))
    RETURNING o.id, o.topic, o.msg_key, o.payload::text
$$;
