-- Group commit of accepts (docs/decisions/0049-group-commit.md): the
-- submissions the broker gathered while its previous batch was in flight,
-- accepted in ONE transaction, so one WAL flush answers many requests.
--
-- One jsonb argument with named keys (decision 0028):
--   runs   array of gw_submit_run's arguments, one object per request,
--          in arrival order (required, 1 to 1000 elements)
--   lease  an interval (optional): publish the new runs' run.requested
--          messages eagerly (docs/decisions/0076-eager-publish.md). Their
--          outbox rows are written already leased for this long, so no relay
--          takes them meanwhile, and are returned, for the caller to produce
--          right after the commit and delete once acknowledged; a caller that
--          dies first leaves them to any relay when the lease ends.
-- Returns one row per element, `i` its index (0-based) in `runs`, and the
-- columns of gw_submit_run, in no particular order; with `lease`, a created
-- run whose outbox row was leased also gets that row's outbox_id, topic,
-- msg_key and payload (else they are NULL, and a relay sends the row).
--
-- Every element is accepted as if gw_submit_run had been called for each
-- in arrival order: a later element sees the earlier ones, so a second
-- request with the same idempotency key is the first one's replay (or its
-- conflict), two requests of one team count each other against the quota,
-- and the audit entries are written in arrival order (gw_audit_seal then
-- chains them in (txid, id) order, all of one batch sharing its txid).
--
-- How: the elements are checked in one query (the spec of
-- gw_submit_run_spec, the messages of gw_args). Then they are taken in
-- order, in segments: a run of consecutive "plain" elements (no quota, no
-- approval, no break-glass: nothing but the run, its two events, its audit
-- entry and its outbox row) is written with one multi-row INSERT per table;
-- any other element goes through gw_submit_run itself. A plain element that
-- its segment's INSERT did not store (its idempotency key was taken, by an
-- earlier element or another transaction) is then a replay: gw_submit_run
-- answers it, writing nothing. tests/integration/test_sql_functions.py checks
-- that both ways store the same rows.
--
-- Before the first element, the quota locks of every action in the batch
-- are taken in one order (sorted by action id), so two batches with two
-- quota'd actions cannot deadlock on them; gw_submit_run takes them again
-- (advisory locks are reentrant).
--
-- No subtransaction per element: an error in any element aborts the whole
-- call, and the broker then retries each element alone, so only the bad
-- one fails (broker/submit_batch.c).
-- gw_submit_runs_eager is the function; gw_submit_runs (its own file) is
-- the same without the four outbox columns, the name brokers before
-- decision 0076 call: a function's result type cannot be changed in place,
-- and a new name lets the previous release's migrate run again unchanged
-- (a rollback) while this one's brokers use the new one.
CREATE OR REPLACE FUNCTION gw_submit_runs_eager(p_args jsonb)
RETURNS TABLE (i integer, run jsonb, created boolean, conflict boolean, refused jsonb,
               outbox_id bigint, topic text, msg_key text, payload text)
LANGUAGE plpgsql AS $$
DECLARE
    a jsonb := gw_args(p_args, 'gw_submit_runs', '{"runs": "array!", "lease": "string?"}');
    runs jsonb := a -> 'runs';
    lease interval := (a ->> 'lease')::interval;
    n integer := jsonb_array_length(a -> 'runs');
    spec jsonb := gw_submit_run_spec();
    bad integer;
    k integer := 0;
    hi integer;
    done integer[];
    made gw_runs[];
    o_ids bigint[];
    o_topics text[];
    o_keys text[];
    o_payloads text[];
    seg_ids uuid[];
    one record;
    l_id bigint;
    l_topic text;
    l_key text;
    l_payload text;
    now_ts timestamptz;
BEGIN
    IF n < 1 OR n > 1000 THEN
        RAISE EXCEPTION 'gw_submit_runs: "runs" must hold 1 to 1000 elements, not %', n
            USING ERRCODE = '22023';
    END IF;
    -- gw_args on the whole batch at once; the first faulty element (if any)
    -- through gw_args itself, for its message.
    SELECT min(e.ord) INTO bad
    FROM jsonb_array_elements(runs) WITH ORDINALITY e(v, ord)
    WHERE jsonb_typeof(e.v) <> 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(e.v) key WHERE NOT spec ? key)
       OR EXISTS (SELECT 1 FROM jsonb_each_text(spec) s(key, want)
                  WHERE CASE WHEN coalesce(jsonb_typeof(e.v -> s.key), 'null') = 'null'
                                  THEN right(s.want, 1) = '!'
                             WHEN left(s.want, -1) = 'integer'
                                  THEN NOT (jsonb_typeof(e.v -> s.key) = 'number'
                                            AND (e.v -> s.key)::text ~ '^-?[0-9]+$')
                             ELSE jsonb_typeof(e.v -> s.key) <> left(s.want, -1) END);
    IF bad IS NOT NULL THEN
        PERFORM gw_args(runs -> (bad - 1), 'gw_submit_run', spec);
    END IF;
    IF n > 1 THEN
        PERFORM pg_advisory_xact_lock(hashtext('gangway.quota:' || q.action_id))
        FROM (SELECT DISTINCT e ->> 'action_id' AS action_id
              FROM jsonb_array_elements(runs) e
              WHERE jsonb_typeof(e -> 'quota') = 'object'
              ORDER BY 1) q;
    END IF;

    WHILE k < n LOOP
        -- The segment [k, hi) of consecutive plain elements.
        hi := k;
        WHILE hi < n AND coalesce(jsonb_typeof(runs -> hi -> 'quota'), 'null') = 'null'
                     AND coalesce(jsonb_typeof(runs -> hi -> 'approval'), 'null') = 'null'
                     AND coalesce(jsonb_typeof(runs -> hi -> 'break_glass'), 'null') = 'null'
                     AND runs -> hi ->> 'worker_type' <> 'workflow' LOOP
            hi := hi + 1;
        END LOOP;
        IF hi = k THEN
            SELECT * INTO one FROM gw_submit_run(runs -> k);
            IF NOT FOUND THEN  -- no answer for it: the broker says so (500)
                k := k + 1;
                CONTINUE;
            END IF;
            l_id := NULL;
            l_topic := NULL;
            l_key := NULL;
            l_payload := NULL;
            IF lease IS NOT NULL AND one.created AND one.run ->> 'status' = 'queued'
               AND runs -> k ->> 'worker_type' <> 'workflow' THEN
                -- Its run.requested row is the last outbox row this session
                -- wrote (gw_enqueue_run_at); checked, not assumed. currval is
                -- read first: volatile in the WHERE, it would scan the outbox.
                l_id := currval('gw_outbox_id_seq');
                UPDATE gw_outbox b SET lease_until = clock_timestamp() + lease
                WHERE b.id = l_id AND b.lease_until IS NULL
                  AND b.not_before IS NULL AND NOT b.batch
                  AND b.payload -> 'data' ->> 'run_id' = one.run ->> 'id'
                RETURNING b.id, b.topic, b.msg_key, b.payload::text
                INTO l_id, l_topic, l_key, l_payload;
            END IF;
            RETURN QUERY SELECT k, one.run, one.created, one.conflict, one.refused,
                                l_id, l_topic, l_key, l_payload;
            k := k + 1;
            CONTINUE;
        END IF;
        -- What gw_submit_run does for a plain element, for the whole segment.
        -- Stored runs find their element by id (array_position: a join on
        -- the jsonb would be planned as a nested loop, n^2 extractions).
        SELECT array_agg((t.v ->> 'id')::uuid ORDER BY t.ord) INTO seg_ids
        FROM jsonb_array_elements(runs) WITH ORDINALITY t(v, ord)
        WHERE t.ord - 1 >= k AND t.ord - 1 < hi;
        now_ts := clock_timestamp();
        WITH e AS (
            SELECT (t.ord - 1)::integer AS i, t.v
            FROM jsonb_array_elements(runs) WITH ORDINALITY t(v, ord)
            WHERE t.ord - 1 >= k AND t.ord - 1 < hi),
        ins AS (
            INSERT INTO gw_runs AS r (id, action_id, action_version, worker_type, status,
                                 resource_key, inputs, inputs_redacted, requested_by,
                                 requested_teams, idempotency_key, request_hash, timeout_seconds,
                                 max_attempts, retryable, queued_at, secret_paths, ttl_seconds,
                                 inputs_hash, justification)
            SELECT (e.v ->> 'id')::uuid, e.v ->> 'action_id', e.v ->> 'action_version',
                   e.v ->> 'worker_type', 'queued', coalesce(e.v ->> 'key', e.v ->> 'id'),
                   e.v -> 'inputs', e.v -> 'inputs_redacted', e.v ->> 'subject',
                   coalesce(gw_args_texts(e.v, 'teams'), '{}'),
                   e.v ->> 'idempotency_key', e.v ->> 'request_hash',
                   (e.v ->> 'timeout_seconds')::integer,
                   greatest((e.v ->> 'max_attempts')::integer, 1), (e.v ->> 'retryable')::boolean,
                   clock_timestamp(), coalesce(nullif(e.v -> 'secret_paths', 'null'), '[]'),
                   (e.v ->> 'ttl_seconds')::integer,
                   encode(sha256(convert_to((e.v -> 'inputs')::text, 'UTF8')), 'hex'),
                   e.v ->> 'justification'
            FROM e ORDER BY e.i
            ON CONFLICT (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING r AS run),
        mine AS (
            SELECT k + array_position(seg_ids, (ins.run).id) - 1 AS i, ins.run AS r FROM ins),
        ev AS (
            INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor, reason)
            SELECT (m.r).id, 1, x.from_status, x.to_status,
                   CASE WHEN x.o = 1 THEN (m.r).requested_by ELSE 'gangway' END, NULL
            FROM mine m, (VALUES (1, NULL, 'accepted'), (2, 'accepted', 'queued'))
                         x(o, from_status, to_status)
            ORDER BY m.i, x.o),
        au AS (
            INSERT INTO gw_audit_log (actor, verb, object, detail)
            SELECT (m.r).requested_by, 'run.submit', 'run:' || (m.r).id,
                   jsonb_build_object('action', (m.r).action_id, 'version', (m.r).action_version,
                                      'inputs', (m.r).inputs_redacted, 'status', (m.r).status)
                   || CASE WHEN (m.r).justification IS NULL THEN '{}'::jsonb
                           ELSE jsonb_build_object('justification', (m.r).justification) END
                   || CASE WHEN runs -> m.i ->> 'via' IS NULL THEN '{}'::jsonb
                           ELSE jsonb_build_object('via', runs -> m.i ->> 'via') END
            FROM mine m ORDER BY m.i),
        -- Each outbox row's id is taken here, in element order (the relay's
        -- publishing order), so the answer needs no join back to the rows
        -- inserted: joined, the CTEs were planned as nested loops, n^2 copies
        -- of the payloads (a batch of 256 cost 1.9 ms per run against 0.26
        -- for 16: bench/README.md, "Issue 15, part 6").
        evs AS (
            SELECT s.i, s.r, s.ev, nextval('gw_outbox_id_seq') AS oid,
                   gw_run_requested_event(s.r, s.ev, now_ts) AS payload
            FROM (SELECT m.i, m.r, gen_random_uuid() AS ev FROM mine m) s
            -- At this level: volatile output expressions are evaluated after
            -- the sort, so nextval follows the element order.
            ORDER BY s.i),
        ob AS (
            INSERT INTO gw_outbox AS b (id, event_id, topic, msg_key, payload, lease_until)
            SELECT o.oid, o.ev, 'gangway.runs.' || (o.r).worker_type, (o.r).resource_key, o.payload,
                   now_ts + lease
            FROM evs o ORDER BY o.i)
        SELECT array_agg(o.i ORDER BY o.i), array_agg(o.r ORDER BY o.i),
               array_agg(CASE WHEN lease IS NOT NULL THEN o.oid END ORDER BY o.i),
               array_agg(CASE WHEN lease IS NOT NULL THEN 'gangway.runs.' || (o.r).worker_type END
                         ORDER BY o.i),
               array_agg(CASE WHEN lease IS NOT NULL THEN (o.r).resource_key END ORDER BY o.i),
               array_agg(CASE WHEN lease IS NOT NULL THEN o.payload::text END ORDER BY o.i)
        INTO done, made, o_ids, o_topics, o_keys, o_payloads
        FROM evs o;
        RETURN QUERY SELECT d.i, gw_run_json(made[d.o]), true, false, NULL::jsonb,
                            o_ids[d.o], o_topics[d.o], o_keys[d.o], o_payloads[d.o]
                     FROM unnest(done) WITH ORDINALITY d(i, o);
        -- Not stored: its key was taken, a replay (gw_submit_run writes nothing for it).
        FOR j IN k .. hi - 1 LOOP
            IF done IS NULL OR NOT j = ANY (done) THEN
                RETURN QUERY SELECT j, r.*, NULL::bigint, NULL::text, NULL::text, NULL::text
                             FROM gw_submit_run(runs -> j) r;
            END IF;
        END LOOP;
        k := hi;
    END LOOP;
END $$;
