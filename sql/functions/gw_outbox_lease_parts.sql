-- Leases up to p_limit unsent outbox rows for p_lease and returns their
-- messages in publishing order: one row per message, ordered by outbox id
-- then position. A batch row (sql/0019_outbox_batches.sql) gives one
-- message per line of its `lines` (sql/0021_outbox_batch_lines.sql) or,
-- written before that, per element of its payload array, each carrying the
-- row's id, topic and key; `parts` is how many messages its row has, so the relay
-- deletes the row only once all of them are acknowledged.
-- `parts` is a window count, not jsonb_array_length(payload): an expression
-- on the payload in the select list is evaluated per output row, and each
-- evaluation detoasts (decompresses) the whole row again, 2,000 times 2 MB
-- for one audit round (370 ms a lease, measured).
-- At most 2 batch rows a lease, beside up to p_limit plain rows: a batch
-- row holds up to 2,000 messages (an audit round), and 1,000 of them after
-- a Kafka outage would be 2 million messages in one answer, past the
-- producer's queue. Order is kept per key as long as a key's rows are all
-- batch rows or all plain (today: the audit stream's key `audit` only has
-- batch rows); each kind is taken lowest id first.
-- `id = ANY (ARRAY(...))`, not `id IN (...)`: see gw_outbox_lease.
CREATE OR REPLACE FUNCTION gw_outbox_lease_parts(p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, topic text, msg_key text, payload text, parts integer)
LANGUAGE sql AS $$
    WITH l AS (
        UPDATE gw_outbox o SET lease_until = clock_timestamp() + p_lease,
                               attempts = o.attempts + 1
        WHERE o.id = ANY (ARRAY(SELECT i.id FROM gw_outbox i
                           WHERE (i.lease_until IS NULL OR i.lease_until < clock_timestamp())
                             AND (i.not_before IS NULL OR i.not_before <= clock_timestamp())
                             AND NOT i.batch
                           ORDER BY i.id LIMIT p_limit FOR UPDATE SKIP LOCKED)
                          || ARRAY(SELECT i.id FROM gw_outbox i
                           WHERE (i.lease_until IS NULL OR i.lease_until < clock_timestamp())
                             AND (i.not_before IS NULL OR i.not_before <= clock_timestamp())
                             AND i.batch
                           ORDER BY i.id LIMIT 2 FOR UPDATE SKIP LOCKED))
        RETURNING o.id, o.topic, o.msg_key, o.payload, o.batch, o.lines)
    SELECT l.id, l.topic, l.msg_key, m.v,
           (count(*) OVER (PARTITION BY l.id))::integer
    FROM l CROSS JOIN LATERAL (
             SELECT e.v::text, e.ord
             FROM jsonb_array_elements(CASE WHEN l.lines IS NOT NULL THEN '[]'::jsonb
                                            WHEN l.batch THEN l.payload
                                            ELSE jsonb_build_array(l.payload) END)
                  WITH ORDINALITY e(v, ord)
             UNION ALL
             SELECT t.v, t.ord
             FROM unnest(string_to_array(l.lines, E'\n')) WITH ORDINALITY t(v, ord)) m(v, ord)
    ORDER BY l.id, m.ord
$$;
