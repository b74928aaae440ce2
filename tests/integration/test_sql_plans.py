#!/usr/bin/env python3
"""O(1) as the backlog grows: no query of a hot path reads a big table
from end to end. Fills a private database with a backlog (50,000 queued and
200,000 finished runs, their events, audit entries, log lines and some
unsent outbox rows) through generate_series, ANALYZEs it, and then runs each
hot path (submit, claim, apply events, finish, relay lease and delete,
reaper, audit seal, the broker's gauges) with auto_explain logging the plan
of every statement they run, nested ones included, to the client as JSON.
Each call runs 6 times in one session (PL/pgSQL switches to generic plans
after 5) and is rolled back. Fails on any Seq Scan of a big table, naming
the statement. A test of plans, never of timings. Exits 77 (skipped)
without GW_TEST_PG_DSN; needs no Kafka."""
import json
import os
import re
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, check  # noqa: E402
from test_sql_functions import ADMIN, DB, lit  # noqa: E402

BIG = {"gw_runs", "gw_run_events", "gw_worker_events", "gw_outbox", "gw_audit_log"}
QUEUED, FINISHED = 50000, 200000

FILL = """
INSERT INTO gw_actions (id, version, worker_type, definition)
VALUES ('big', 'v1', 'exec', '{"backend": {"command": ["/bin/true"]}}');
INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key, inputs,
                     inputs_redacted, requested_by, requested_teams, timeout_seconds, created_at,
                     updated_at, queued_at, started_at, heartbeat_at, finished_at, worker_id)
SELECT gen_random_uuid(), 'big', 'v1', 'exec',
       CASE WHEN g <= %(fin)d THEN 'succeeded' ELSE 'queued' END, 'big:' || g,
       jsonb_build_object('n', g), jsonb_build_object('n', g), 'user' || (g %% 100),
       ARRAY['team' || (g %% 10)], 60,
       clock_timestamp() - make_interval(secs => (%(all)d - g) / 10.0),
       clock_timestamp(), clock_timestamp() - make_interval(secs => (g %% 300)),
       CASE WHEN g <= %(fin)d THEN clock_timestamp() END,
       CASE WHEN g <= %(fin)d THEN clock_timestamp() END,
       CASE WHEN g <= %(fin)d THEN clock_timestamp() END,
       CASE WHEN g <= %(fin)d THEN 'w' || (g %% 8) END
FROM generate_series(1, %(all)d) g;
INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, actor)
SELECT id, 1, 'accepted', status, 'fill' FROM gw_runs;
INSERT INTO gw_worker_events (run_id, attempt, seq, kind, stream, line)
SELECT id, 1, 1, 'log', 'stdout', 'line' FROM gw_runs WHERE status = 'succeeded';
INSERT INTO gw_audit_log (actor, verb, object, detail)
SELECT requested_by, 'run.submit', 'run:' || id, '{}' FROM gw_runs;
-- An outbox that piled up while Kafka was away, the first rows leased by a
-- relay sending them now.
INSERT INTO gw_outbox (topic, msg_key, payload, lease_until)
SELECT 'gangway.runs.exec', 'k' || g, '{}',
       CASE WHEN g <= 200 THEN clock_timestamp() + interval '30 seconds' END
FROM generate_series(1, 20000) g;
ANALYZE;
""" % {"fin": FINISHED, "all": FINISHED + QUEUED}

AUTO_EXPLAIN = """
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_format = json;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
"""


def plans_of(db, setup, call, times=6, analyze=False, prelude=""):
    """The JSON plans auto_explain reports for `call` (after `setup`), run
    `times` times in one session, each rolled back; with `analyze`, with the
    rows each node actually returned. `prelude` runs once first (a PREPARE:
    the sixth EXECUTE of a prepared statement may take its generic plan)."""
    script = AUTO_EXPLAIN + ("SET auto_explain.log_analyze = on;\n" if analyze else "") + prelude + "".join(
        "BEGIN;\n%s\nSELECT 'CALL-START';\n%s\nROLLBACK;\n" % (setup, call) for _ in range(times))
    p = subprocess.run(["psql", db.dsn, "-X", "-qAt", "-v", "ON_ERROR_STOP=1"], input=script,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("psql failed: %s\n%s" % (call, p.stderr[-3000:]))
    out = []
    dec = json.JSONDecoder()
    # Only what the call ran: setup statements come before the marker.
    for chunk in p.stderr.split("CALL-START")[1:] if "CALL-START" in p.stderr else [p.stderr]:
        for m in re.finditer(r"plan:\s*\n?", chunk):
            try:
                doc, _ = dec.raw_decode(chunk[m.end():].lstrip())
            except ValueError:
                continue
            out.append(doc)
    return out


def seq_scans(node, found):
    if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in BIG:
        found.append(node["Relation Name"])
    for child in node.get("Plans", []):
        seq_scans(child, found)
    return found


def check_plans(db, what, call, setup, finder, rule, prelude=""):
    """Runs `call` under auto_explain and fails, naming each statement, when
    `finder` (node, found) reports anything in one of its plans."""
    plans = plans_of(db, setup, call, prelude=prelude)
    check(len(plans) >= 6, "%s: auto_explain reported its plans" % what, len(plans))
    bad = []
    for doc in plans:
        found = finder(doc["Plan"], [])
        if found:
            bad.append("%s in: %s" % (",".join(found), " ".join(doc.get("Query Text", "").split())[:300]))
    check(not bad, "%s: %s in %d statement plans" % (what, rule, len(plans)),
          "\n  " + "\n  ".join(sorted(set(bad))))


def check_no_seq_scan(db, what, call, setup="", prelude=""):
    check_plans(db, what, call, setup, seq_scans, "no sequential scan of a big table", prelude)


def broker_query(path, name):
    """The SQL the broker sends as query `name`: the C string literals
    between the name and the parameter count in broker/<path>, joined."""
    src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "broker", path)).read()
    start = src.index('"%s",' % name) + len(name) + 3
    region = src[start:src.index("params", start)]
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', region))


def runs_not_by_id(node, found):
    """Scans of gw_runs through anything but its primary key. In a path that
    handles given runs, an index on status reads every run in that status:
    O(backlog) like a sequential scan, and chosen when the statistics were
    taken while that status was rare (bench/README.md, "Issue 15, part 6")."""
    if node.get("Relation Name") == "gw_runs" and "Scan" in node.get("Node Type", "") \
            and node.get("Node Type") != "Bitmap Heap Scan" and node.get("Index Name") != "gw_runs_pkey":
        found.append("%s%s" % (node.get("Node Type"), " using " + node["Index Name"] if node.get("Index Name") else ""))
    if node.get("Node Type") == "Bitmap Index Scan" and node.get("Index Name", "").startswith("gw_runs_") \
            and node.get("Index Name") != "gw_runs_pkey":
        found.append("Bitmap Index Scan using " + node["Index Name"])
    for child in node.get("Plans", []):
        runs_not_by_id(child, found)
    return found


def check_runs_by_id(db, what, call, setup=""):
    """Every statement of `call` that reads gw_runs reads it by id."""
    check_plans(db, what, call, setup, runs_not_by_id, "gw_runs read by id only")


def run_args(**extra):
    a = {"id": str(uuid.uuid4()), "action_id": "big", "action_version": "v1", "worker_type": "exec",
         "inputs": {"n": 1}, "inputs_redacted": {"n": 1}, "subject": "user1", "teams": ["team1"],
         "request_hash": "h1", "timeout_seconds": 60, "max_attempts": 1, "retryable": False}
    a.update(extra)
    return a


def test():
    if not ADMIN:
        print("skipped: GW_TEST_PG_DSN is not set")
        sys.exit(SKIP)
    db = DB()
    try:
        if db.q("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") != "t":
            print("skipped: LOAD 'auto_explain' needs a superuser")
            sys.exit(SKIP)
        p = subprocess.run(["psql", db.dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1"], input=FILL,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("fill failed: " + p.stderr)
        counts = db.q("SELECT count(*) FILTER (WHERE status = 'queued') || ' ' ||"
                      " count(*) FILTER (WHERE status = 'succeeded') FROM gw_runs")
        check(counts == "%d %d" % (QUEUED, FINISHED), "the backlog is in place", counts)
        queued = db.q("SELECT id FROM gw_runs WHERE status = 'queued' ORDER BY queued_at LIMIT 1")
        running = db.q("SELECT id FROM gw_runs WHERE status = 'queued' ORDER BY queued_at DESC LIMIT 1")
        to_running = ("UPDATE gw_runs SET status = 'running', worker_id = 'w1', started_at = clock_timestamp(),"
                      " heartbeat_at = clock_timestamp() - interval '1 minute' WHERE id = '%s';" % running)
        # Every check of the quota runs and none refuses: the fill puts ~6 runs
        # of user1 and ~60 of team1 in the last minute, and 50,000 active.
        quota = {"max_concurrent": 1000000, "per_user": {"max_runs": 50, "window_seconds": 60},
                 "per_team": {"max_runs": 100, "window_seconds": 60}}

        check_no_seq_scan(db, "submit (gw_submit_runs_eager: plain, idempotency key, every quota;"
                          " rows leased for eager publish)",
                          "SELECT * FROM gw_submit_runs_eager(%s);" % lit({"lease": "30 seconds", "runs": [
                              run_args(), run_args(idempotency_key="k1"),
                              run_args(idempotency_key="k1"), run_args(quota=quota)]}))
        # max_concurrent is counted up to its limit only: with 50,000 runs of
        # the action active and a limit of 2 (refused), no scan of gw_runs in
        # the count returns more than 2 rows.
        plans = plans_of(db, "", "SELECT * FROM gw_submit_runs_eager(%s);" % lit(
            {"runs": [run_args(quota={"max_concurrent": 2})]}), times=1, analyze=True)
        counted = []

        def run_rows(node):
            # Every node that reads gw_runs or one of its indexes: an index
            # scan whose rows stop at the limit, nothing filtered away (a
            # Seq Scan or a Bitmap Index Scan would read them all first).
            if node.get("Relation Name") == "gw_runs" or node.get("Index Name", "").startswith("gw_runs"):
                filtered = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
                ok_kind = node.get("Node Type") in ("Index Scan", "Index Only Scan")
                counted.append(node.get("Actual Rows") if ok_kind and not filtered
                               else "%s removing %d" % (node.get("Node Type"), filtered))
            for child in node.get("Plans", []):
                run_rows(child)
        for doc in plans:
            if "p_action" in doc.get("Query Text", "") and "pending_approval" in doc.get("Query Text", ""):
                run_rows(doc["Plan"])
        check(counted and all(isinstance(n, int) and n <= 2 for n in counted),
              "quota max_concurrent: 50,000 active runs, limit 2: the count reads at most 2", counted)
        refused = db.q("SELECT refused ->> 'limit' FROM gw_submit_runs_eager(%s)" % lit(
            {"runs": [run_args(quota={"max_concurrent": 2})]}))
        check(refused == "max_concurrent", "... and the submission is refused", refused)
        check_no_seq_scan(db, "claim (gw_claim_run)",
                          "SELECT * FROM gw_claim_run('%s', 1, 'w1', 'exec');" % queued)
        check_no_seq_scan(db, "batch claim (gw_claim_runs: set-based grant, a refusal one by one)",
                          "SELECT * FROM gw_claim_runs(%s, 'exec');" % lit([
                              {"run_id": queued, "attempt": 1, "worker_id": "w1"},
                              {"run_id": running, "attempt": 2, "worker_id": "w1"}]))
        events = [{"run_id": running, "attempt": 1, "seq": 1, "kind": "started", "worker_id": "w1"},
                  {"run_id": running, "attempt": 1, "seq": 2, "kind": "log", "worker_id": "w1",
                   "stream": "stdout", "line": "hi"},
                  {"run_id": running, "attempt": 1, "seq": 3, "kind": "heartbeat", "worker_id": "w1"},
                  {"run_id": running, "attempt": 1, "seq": 4, "kind": "succeeded", "worker_id": "w1",
                   "data": {"outputs": {}}}]
        check_no_seq_scan(db, "apply events (gw_apply_events: started, log, heartbeat, succeeded)",
                          "SELECT gw_apply_events(%s);" % lit(events), setup=to_running)
        # The set-based path (decision 0077's neighbour in gw_apply_events):
        # the fill's statistics were taken with no run running, the case in
        # which a join on gw_runs was planned as a scan of gw_runs_by_status.
        plain = [e for e in events if e["kind"] != "heartbeat"]
        check_no_seq_scan(db, "apply events, set-based (gw_apply_events: started, log, succeeded)",
                          "SELECT gw_apply_events(%s);" % lit(plain), setup=to_running)
        check_runs_by_id(db, "apply events, set-based (gw_apply_events: started, log, succeeded)",
                         "SELECT gw_apply_events(%s);" % lit(plain), setup=to_running)
        check_runs_by_id(db, "batch claim, set-based (gw_claim_runs: two plain runs)",
                         "SELECT * FROM gw_claim_runs(%s, 'exec');" % lit([
                             {"run_id": queued, "attempt": 1, "worker_id": "w1"},
                             {"run_id": running, "attempt": 1, "worker_id": "w1"}]))
        check_no_seq_scan(db, "finish (gw_finish_run)",
                          "SELECT gw_finish_run('%s', 'failed', 'test', NULL, 'test', false);" % running,
                          setup=to_running)
        check_no_seq_scan(db, "relay lease (gw_outbox_lease)",
                          "SELECT count(*) FROM gw_outbox_lease(100, '30 seconds');")
        check_no_seq_scan(db, "relay lease with batch rows (gw_outbox_lease_parts)",
                          "SELECT count(*) FROM gw_outbox_lease_parts(100, '30 seconds');")
        check_no_seq_scan(db, "relay delete of sent rows",
                          "DELETE FROM gw_outbox WHERE id = ANY('{1,2,3}'::bigint[]);")
        check_no_seq_scan(db, "reaper (gw_reap, heartbeats judged)",
                          "SELECT gw_reap('15 seconds', '600 seconds', 100, true);",
                          setup=to_running + "INSERT INTO gw_sink_states VALUES"
                          " ('plans', 8, true, clock_timestamp(), clock_timestamp());")
        # The requeue sweep with every queued run old enough: type by type
        # through gw_runs_queued_by_type, with no type held and with the
        # backlog's type held (decision 0078).
        for held in ("{}", "{exec}"):
            check_no_seq_scan(db, "reaper requeue sweep (gw_reap, types held: %s)" % held,
                              "SELECT gw_reap('15 seconds', '0 seconds', 100, false, '%s');" % held)
        check_no_seq_scan(db, "audit seal (gw_audit_seal)", "SELECT gw_audit_seal(100);")
        # Three terraform resources of an action with drift, due: two checks
        # start (K = 2), the third waits for a slot.
        drift_setup = ("INSERT INTO gw_actions (id, version, worker_type, definition) VALUES"
                       " ('tfd', 'v1', 'terraform', '{\"drift\": {\"interval_seconds\": 60}}');"
                       "INSERT INTO gw_resources (action_id, kind, name, owner_subject, created_by_run,"
                       " resource_key, worker_type, drift_next_at)"
                       " SELECT 'tfd', 'env', 'e' || g, 'user1', '%s', 'e' || g, 'terraform',"
                       " clock_timestamp() - interval '1 minute' FROM generate_series(1, 3) g;" % queued)
        check_no_seq_scan(db, "drift checks due (gw_drift_due, decision 0067)",
                          "SELECT gw_drift_due(2);", setup=drift_setup)
        # GET /v1/runs (broker/api_runs.c's own SQL, prepared as the pool
        # prepares it, so the sixth call may take the generic plan): newest
        # first and after a cursor, for an admin and for a caller who sees
        # only its own runs of one action. sql/0022 left one index by time.
        listing = broker_query("api_runs.c", "runs_list")
        check("ORDER BY r.created_at DESC, r.id DESC" in listing and "$11" in listing,
              "the run listing's SQL is read from broker/api_runs.c", listing[:80])
        cursor = db.q("SELECT created_at || '|' || id FROM gw_runs ORDER BY created_at DESC, id DESC"
                      " OFFSET 100 LIMIT 1").split("|")
        for who, scope in (("an admin", "'user1', '{team1}', '{}', '{}', '{*}'"),
                           ("a caller seeing its own runs", "'user1', '{team1}', '{big}', '{}', '{}'")):
            for page, after in (("first page", "NULL, NULL"),
                                ("after a cursor", "'%s', '%s'" % (cursor[0], cursor[1]))):
                check_no_seq_scan(db, "run listing, %s, %s (GET /v1/runs)" % (page, who),
                                  "EXECUTE runs_list(NULL, NULL, %s, 51, %s, NULL);" % (after, scope),
                                  prelude="PREPARE runs_list AS %s;\n" % listing)
        check_no_seq_scan(db, "the broker's gauges (broker.c stats query)",
                          "SELECT (SELECT count(*) FROM gw_runs WHERE status = 'accepted'),"
                          " (SELECT count(*) FROM gw_runs WHERE status = 'pending_approval'),"
                          " (SELECT count(*) FROM gw_runs WHERE status = 'queued'),"
                          " (SELECT count(*) FROM gw_runs WHERE status = 'running'),"
                          " (SELECT count(*) FROM gw_resources WHERE status <> 'deleted'"
                          " AND drift_status = 'drifted');")
    finally:
        db.drop()
    test_stale_statistics()
    print("PASS", flush=True)


STALE = """
ALTER TABLE gw_runs SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
INSERT INTO gw_actions (id, version, worker_type, definition)
VALUES ('big', 'v1', 'exec', '{"backend": {"command": ["/bin/true"]}}');
INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key, inputs,
                     inputs_redacted, requested_by, requested_teams, timeout_seconds, queued_at,
                     finished_at)
SELECT gen_random_uuid(), 'big', 'v1', 'exec', 'succeeded', 'k' || g, '{}', '{}', 'user1',
       ARRAY['team1'], 60, clock_timestamp(), clock_timestamp()
FROM generate_series(1, 2000) g;
ANALYZE gw_runs;
INSERT INTO gw_runs (id, action_id, action_version, worker_type, status, resource_key, inputs,
                     inputs_redacted, requested_by, requested_teams, timeout_seconds, queued_at,
                     started_at, heartbeat_at, worker_id)
SELECT gen_random_uuid(), 'big', 'v1', 'exec', CASE WHEN g %% 2 = 0 THEN 'queued' ELSE 'running' END,
       'q' || g, '{}', '{}', 'user1', ARRAY['team1'], 60, clock_timestamp(),
       CASE WHEN g %% 2 = 1 THEN clock_timestamp() END,
       CASE WHEN g %% 2 = 1 THEN clock_timestamp() - interval '1 minute' END,
       CASE WHEN g %% 2 = 1 THEN 'w1' END
FROM generate_series(1, %d) g;
"""


def test_stale_statistics():
    """The backlog grew after the last ANALYZE (a new database under load,
    autovacuum not yet round): the statistics say no run is queued or
    running while thousands are. The paths that handle given runs must still
    find them by id: with an index on status they read every queued or
    running run per call, and a burst at 1,000 req/s built a queue that
    drained only once autovacuum had analysed the table (bench/README.md,
    "Issue 15, part 6")."""
    db = DB()
    try:
        p = subprocess.run(["psql", db.dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1"], input=STALE % 20000,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError("stale fill failed: " + p.stderr)
        queued = db.q("SELECT string_agg(id::text, ',') FROM (SELECT id FROM gw_runs WHERE status = 'queued'"
                      " LIMIT 3) x").split(",")
        running = db.q("SELECT string_agg(id::text, ',') FROM (SELECT id FROM gw_runs WHERE status = 'running'"
                       " LIMIT 3) x").split(",")
        check(db.q("SELECT count(*) FROM pg_stats WHERE tablename = 'gw_runs' AND attname = 'status'"
                   " AND NOT most_common_vals::text::text[] && '{queued,running}'") == "1",
              "stale statistics: they know of no queued or running run")
        check_runs_by_id(db, "stale statistics: claim (gw_claim_run)",
                         "SELECT * FROM gw_claim_run('%s', 1, 'w1', 'exec');" % queued[0])
        check_runs_by_id(db, "stale statistics: batch claim (gw_claim_runs)",
                         "SELECT * FROM gw_claim_runs(%s, 'exec');" % lit([
                             {"run_id": queued[1], "attempt": 1, "worker_id": "w1"},
                             {"run_id": queued[2], "attempt": 1, "worker_id": "w1"},
                             {"run_id": running[2], "attempt": 2, "worker_id": "w1"}]))
        ev = []
        for i, kind in enumerate(("started", "log", "heartbeat", "succeeded")):
            ev.append({"run_id": running[0], "attempt": 1, "seq": i + 1, "kind": kind, "worker_id": "w1",
                       "stream": "stdout", "line": "x", "data": {"outputs": {}}})
        ev.append({"run_id": running[1], "attempt": 1, "seq": 1, "kind": "started", "worker_id": "w1"})
        ev.append({"run_id": running[1], "attempt": 1, "seq": 2, "kind": "failed", "worker_id": "w1",
                   "data": {"message": "boom"}})
        ev.append({"run_id": running[2], "attempt": 1, "seq": 1, "kind": "log", "worker_id": "w1",
                   "stream": "stdout", "line": "x"})
        check_runs_by_id(db, "stale statistics: apply events (both paths, heartbeat, failure)",
                         "SELECT gw_apply_events(%s);" % lit(ev))
        check_runs_by_id(db, "stale statistics: finish (gw_finish_run)",
                         "SELECT gw_finish_run('%s', 'succeeded', NULL, '{}', 'test', false);" % running[0])
    finally:
        db.drop()


if __name__ == "__main__":
    try:
        test()
    except AssertionError as e:
        print("FAIL -", e, flush=True)
        sys.exit(1)
