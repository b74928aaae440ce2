#!/usr/bin/env python3
"""Direct tests of the SQL functions in sql/functions/ against the real
PostgreSQL (never mocked): quota edges, idempotency, stale attempts and
fences, approval counting, TTL bounds, the named-argument checks, and that
re-applying the function files changes nothing. Each run has a private
database, migrated by `gangway migrate`; psql is the client (stdlib only).
Exits 77 (skipped) without GW_TEST_PG_DSN; needs no Kafka."""
import json
import os
import subprocess
import sys
import time
import uuid

from harness import GANGWAY, SKIP, SRC, check, dsn_with_db

ADMIN = os.environ.get("GW_TEST_PG_DSN")


def psql(dsn, sql, ok=True):
    p = subprocess.run(["psql", dsn, "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise RuntimeError("psql failed: %s\n%s" % (sql, p.stderr))
    return p if not ok else p.stdout.strip()


class DB:
    def __init__(self):
        self.name = "gwtest_sqlfn_%d" % os.getpid()
        psql(ADMIN, "DROP DATABASE IF EXISTS %s" % self.name)
        psql(ADMIN, "CREATE DATABASE %s" % self.name)
        self.dsn = dsn_with_db(ADMIN, self.name)
        self.migrate()

    def migrate(self):
        subprocess.run([GANGWAY, "migrate", "--pg", self.dsn, "--sql-dir", os.path.join(SRC, "sql")],
                       check=True, capture_output=True, text=True)

    def q(self, sql):
        return psql(self.dsn, sql)

    def j(self, sql):
        out = self.q(sql)
        return json.loads(out) if out else None

    def error(self, sql):
        """Runs sql that must fail; returns its error text."""
        p = psql(self.dsn, sql, ok=False)
        check(p.returncode != 0, "refused: " + sql[:60])
        return p.stderr

    def drop(self):
        psql(ADMIN, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)


def lit(v):
    """A SQL literal of a JSON value, as jsonb."""
    return "'%s'::jsonb" % json.dumps(v).replace("'", "''")


def action(db, aid, definition=None, worker_type="exec"):
    db.q("INSERT INTO gw_actions (id, version, worker_type, definition) VALUES ('%s', 'v1', '%s', %s)"
         % (aid, worker_type, lit(definition or {})))


def submit(db, aid, subject="alice", teams=("dev",), **extra):
    args = {"id": str(uuid.uuid4()), "action_id": aid, "action_version": "v1",
            "worker_type": "exec", "inputs": {"n": 1}, "inputs_redacted": {"n": 1},
            "subject": subject, "teams": list(teams), "request_hash": "h1",
            "timeout_seconds": 60, "max_attempts": 1, "retryable": False}
    args.update(extra)
    out = db.q("SELECT json_build_object('run', run, 'created', created, 'conflict', conflict,"
               " 'refused', refused) FROM gw_submit_run(%s)" % lit(args))
    return json.loads(out)


def claim(db, run_id, attempt=1, worker="w1", worker_type="exec"):
    return db.q("SELECT result FROM gw_claim_run('%s', %d, '%s', '%s')"
                % (run_id, attempt, worker, worker_type))


def status(db, run_id):
    return db.q("SELECT status FROM gw_runs WHERE id = '%s'" % run_id)


def decide(db, run_id, approver, decision="approve", teams=(), roles=()):
    return db.q("SELECT outcome FROM gw_decide('%s', %s)" % (run_id, lit(
        {"approver": approver, "teams": list(teams), "roles": list(roles), "decision": decision})))


def test_reapply_changes_nothing(db):
    before = subprocess.run([os.path.join(SRC, "tools", "sql-catalog"), db.dsn], check=True,
                            capture_output=True, text=True).stdout
    db.migrate()
    after = subprocess.run([os.path.join(SRC, "tools", "sql-catalog"), db.dsn], check=True,
                           capture_output=True, text=True).stdout
    check(before == after and "gw_submit_run(p_args jsonb)" in after,
          "a second migrate re-applies the function files without changing the catalog")
    files = [f for f in os.listdir(os.path.join(SRC, "sql", "functions")) if f.endswith(".sql")]
    check(db.q("SELECT count(*) FROM gw_schema_functions WHERE length(sha256) = 64") == str(len(files)),
          "one checksum row per function file")
    check(db.q("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == "8",
          "the eight triggers exist once each after re-applying")


def test_triggers_kept_when_unchanged(db):
    oids = "SELECT string_agg(oid::text, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal"
    before = db.q(oids)
    db.migrate()
    check(db.q(oids) == before,
          "an unchanged trigger is not dropped and created again (no ACCESS EXCLUSIVE per start)")
    db.q("ALTER TABLE gw_audit_log DISABLE TRIGGER gw_audit_no_update")
    db.migrate()
    check(db.q("SELECT tgenabled FROM pg_trigger WHERE tgname = 'gw_audit_no_update'") == "O",
          "a disabled trigger is enabled again by the next migrate")
    db.q("DROP TRIGGER gw_runs_drop_secrets ON gw_runs")
    db.migrate()
    check(db.q("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == "8",
          "a dropped trigger is created again by the next migrate")


def test_named_arguments(db):
    action(db, "args")
    good = {"id": str(uuid.uuid4()), "action_id": "args", "action_version": "v1",
            "worker_type": "exec", "inputs": {}, "inputs_redacted": {}, "subject": "alice",
            "teams": [], "timeout_seconds": 60, "max_attempts": 1, "retryable": False}
    for mutate, want in (
            (lambda a: a.pop("subject"), 'gw_submit_run: key "subject" is required'),
            (lambda a: a.update(subject=None), 'gw_submit_run: key "subject" is required'),
            (lambda a: a.update(teams="dev"), 'key "teams" must be of JSON type array, not string'),
            (lambda a: a.update(timeout_seconds=1.5), 'key "timeout_seconds" must be of JSON type integer'),
            (lambda a: a.update(retryable="false"), 'key "retryable" must be of JSON type boolean'),
            (lambda a: a.update(idempotency_kye="k"), 'gw_submit_run: unknown key "idempotency_kye"')):
        a = dict(good)
        mutate(a)
        err = db.error("SELECT * FROM gw_submit_run(%s)" % lit(a))
        check(want in err, "submit refuses bad arguments: " + want, err)
    check("must be a JSON object, not array" in db.error("SELECT * FROM gw_submit_run('[]')"),
          "submit refuses a non-object")
    check(db.q("SELECT count(*) FROM gw_runs WHERE action_id = 'args'") == "0",
          "refused arguments store nothing")
    r = submit(db, "args", teams=[], ttl_seconds=None, approval=None)
    check(r["created"] and r["run"]["status"] == "queued", "optional keys may be null", r)
    err = db.error("SELECT gw_token_create(%s)" % lit({"hash": "x", "subject": "s"}))
    check('gw_token_create: key "via" is required' in err, "token_create names the missing key", err)
    tid = db.q("SELECT gw_token_create(%s)" % lit(
        {"hash": "abc", "subject": "user:default/bob", "teams": ["t1", "t2"], "roles": ["admin"],
         "expires_in_seconds": 3600, "description": "d", "via": "test"}))
    row = db.q("SELECT subject, teams, roles, expires_at > now() + interval '59 minutes' AND"
               " expires_at <= now() + interval '1 hour', description FROM gw_api_tokens"
               " WHERE id = '%s'" % tid)
    check(row == "user:default/bob|{t1,t2}|{admin}|t|d", "token_create stores every named argument", row)
    for bad in ("bob", "User:Default/Bob", "user:bob"):
        err = db.error("SELECT gw_token_create(%s)" % lit({"hash": "b" + bad, "subject": bad, "via": "test"}))
        check("is not canonical (it would be user:default/bob)" in err,
              "token_create refuses a non-canonical subject: " + bad, err)
    tid = db.q("SELECT gw_token_create(%s)" % lit({"hash": "def", "subject": "user:default/carol",
                                                    "via": "test"}))
    check(db.q("SELECT teams, roles, expires_at IS NULL FROM gw_api_tokens WHERE id = '%s'" % tid)
          == "{}|{}|t", "token_create defaults: no teams, no roles, no expiry")
    err = db.error("SELECT * FROM gw_decide(gen_random_uuid(), %s)" % lit({"approver": "a"}))
    check('gw_decide: key "decision" is required' in err, "gw_decide names the missing key", err)


def test_quota_per_user(db):
    action(db, "q_user")
    quota = {"per_user": {"max_runs": 2, "window_seconds": 3600}}
    for i in range(2):
        r = submit(db, "q_user", quota=quota)
        check(r["refused"] is None and r["created"], "per_user: run %d of 2 is accepted" % (i + 1), r)
    r = submit(db, "q_user", quota=quota)
    check(r["refused"] is not None and r["refused"]["limit"] == "per_user" and r["refused"]["max"] == 2
          and r["run"] is None and 1 <= r["refused"]["retry_after"] <= 3600,
          "per_user: the third run in the window is refused", r)
    check(db.q("SELECT count(*) FROM gw_runs WHERE action_id = 'q_user'") == "2",
          "per_user: the refused run is not stored")
    check(db.q("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.denied' AND"
               " object = 'action:q_user'") == "1", "per_user: the refusal is audited")
    r = submit(db, "q_user", subject="bob", quota=quota)
    check(r["refused"] is None, "per_user: another user has a quota of their own", r)
    # Runs outside the window do not count.
    db.q("UPDATE gw_runs SET created_at = created_at - interval '2 hours'"
         " WHERE action_id = 'q_user' AND requested_by = 'alice'")
    r = submit(db, "q_user", quota=quota)
    check(r["refused"] is None, "per_user: runs older than the window do not count", r)


def test_quota_per_team_and_concurrent(db):
    action(db, "q_team")
    quota = {"per_team": {"max_runs": 1, "window_seconds": 3600}}
    r = submit(db, "q_team", subject="alice", teams=["red"], quota=quota)
    check(r["refused"] is None, "per_team: the team's first run is accepted", r)
    r = submit(db, "q_team", subject="bob", teams=["red"], quota=quota)
    check(r["refused"] is not None and r["refused"]["limit"] == "per_team"
          and r["refused"]["team"] == "red", "per_team: a teammate's run over the limit is refused", r)
    r = submit(db, "q_team", subject="bob", teams=["blue"], quota=quota)
    check(r["refused"] is None, "per_team: another team is not counted", r)

    action(db, "q_conc")
    quota = {"max_concurrent": 2}
    ids = []
    for i in range(2):
        r = submit(db, "q_conc", quota=quota)
        check(r["refused"] is None, "max_concurrent: run %d of 2 is accepted" % (i + 1), r)
        ids.append(r["run"]["id"])
    r = submit(db, "q_conc", subject="bob", quota=quota)
    check(r["refused"] is not None and r["refused"]["limit"] == "max_concurrent",
          "max_concurrent: a third active run is refused, whoever asks", r)
    db.q("SELECT gw_finish_run('%s', 'failed', 'test', NULL, 'test', false)" % ids[0])
    r = submit(db, "q_conc", subject="bob", quota=quota)
    check(r["refused"] is None, "max_concurrent: a finished run frees its slot", r)


def test_idempotency(db):
    action(db, "idem")
    first = submit(db, "idem", idempotency_key="k1", request_hash="h1")
    check(first["created"] and not first["conflict"], "idempotency: the first request creates", first)
    again = submit(db, "idem", idempotency_key="k1", request_hash="h1")
    check(not again["created"] and not again["conflict"] and again["run"]["id"] == first["run"]["id"],
          "idempotency: the same key and body return the same run", again)
    other = submit(db, "idem", idempotency_key="k1", request_hash="h2")
    check(not other["created"] and other["conflict"] and other["run"]["id"] == first["run"]["id"],
          "idempotency: the same key with another body is a conflict", other)
    check(db.q("SELECT count(*) FROM gw_runs WHERE action_id = 'idem'") == "1",
          "idempotency: replays store nothing")
    bob = submit(db, "idem", subject="bob", idempotency_key="k1", request_hash="h1")
    check(bob["created"] and bob["run"]["id"] != first["run"]["id"],
          "idempotency: keys are per requester", bob)
    # A replay over the quota is still a replay, not a refusal.
    quota = {"per_user": {"max_runs": 1, "window_seconds": 3600}}
    again = submit(db, "idem", idempotency_key="k1", request_hash="h1", quota=quota)
    check(again["refused"] is None and not again["created"], "idempotency: a replay is not refused by the quota",
          again)


def seal_all(db):
    """Seals every audit entry; returns how many this call sealed. The sealer
    takes only entries older than every open transaction of the cluster
    (another database's long transaction holds it back): retry."""
    sealed, deadline = 0, time.time() + 120
    while time.time() < deadline:
        sealed += int(db.q("SELECT gw_audit_seal(100000)"))
        if db.q("SELECT count(*) FROM gw_audit_log a WHERE NOT EXISTS"
                " (SELECT 1 FROM gw_audit_chain c WHERE c.audit_id = a.id)") == "0":
            break
        time.sleep(0.5)
    return sealed


def submit_batch(db, elems):
    """gw_submit_runs over elems (dicts of overrides, as submit() takes):
    its rows in order of `i`."""
    runs = []
    for e in elems:
        e = dict(e)
        aid = e.pop("action_id")
        a = {"id": str(uuid.uuid4()), "action_id": aid, "action_version": "v1",
             "worker_type": "exec", "inputs": {"n": 1}, "inputs_redacted": {"n": 1},
             "subject": "alice", "teams": ["dev"], "request_hash": "h1",
             "timeout_seconds": 60, "max_attempts": 1, "retryable": False}
        a.update(e)
        runs.append(a)
    out = db.q("SELECT json_agg(json_build_object('i', i, 'run', run, 'created', created,"
               " 'conflict', conflict, 'refused', refused) ORDER BY i)"
               " FROM gw_submit_runs(%s)" % lit({"runs": runs}))
    return json.loads(out), runs


def test_submit_batch(db):
    """Group commit: one call, one transaction, each element as if alone and
    in order (decision 0049)."""
    action(db, "batch")
    action(db, "batch_q")
    quota = {"per_team": {"max_runs": 2, "window_seconds": 3600}}
    rows, sent = submit_batch(db, [
        {"action_id": "batch", "idempotency_key": "bk", "request_hash": "h1"},   # 0 created
        {"action_id": "batch", "idempotency_key": "bk", "request_hash": "h1"},   # 1 replay of 0
        {"action_id": "batch", "idempotency_key": "bk", "request_hash": "h2"},   # 2 conflict
        {"action_id": "batch_q", "quota": quota, "teams": ["red"]},              # 3 created
        {"action_id": "batch_q", "quota": quota, "subject": "bob", "teams": ["red"]},  # 4 created
        {"action_id": "batch_q", "quota": quota, "subject": "carol", "teams": ["red"]},  # 5 refused
        {"action_id": "batch"},                                                  # 6 created
    ])
    check([r["i"] for r in rows] == list(range(7)), "batch: one row per element, in order", rows)
    check(rows[0]["created"] and rows[0]["run"]["id"] == sent[0]["id"], "batch: the first key creates", rows[0])
    check(not rows[1]["created"] and not rows[1]["conflict"] and rows[1]["run"]["id"] == sent[0]["id"],
          "batch: the same key later in the same batch is a replay of the first", rows[1])
    check(rows[2]["conflict"] and not rows[2]["created"],
          "batch: the same key with another body in the same batch is a conflict", rows[2])
    check(rows[3]["created"] and rows[4]["created"] and rows[5]["refused"]["limit"] == "per_team",
          "batch: teammates in one batch count each other against the quota", rows[3:6])
    check(rows[6]["created"] and rows[6]["refused"] is None, "batch: a plain run after them", rows[6])
    made = [sent[i]["id"] for i in (0, 3, 4, 6)]
    inlist = ",".join("'%s'" % i for i in made)
    check(db.q("SELECT count(*) FROM gw_runs WHERE action_id IN ('batch', 'batch_q')") == "4",
          "batch: four runs stored")
    check(db.q("SELECT count(*) FROM gw_outbox WHERE (payload -> 'data' ->> 'run_id')::uuid IN (%s)"
               % inlist) == "4", "batch: one outbox row per run")
    check(db.q("SELECT count(*) FROM gw_run_events WHERE run_id IN (%s)" % inlist) == "8",
          "batch: two events per run")
    audit = db.q("SELECT string_agg(verb || ' ' || object, ',' ORDER BY id) FROM gw_audit_log"
                 " WHERE object IN (%s) OR object = 'action:batch_q'"
                 % ",".join("'run:%s'" % i for i in made))
    want = ",".join(["run.submit run:%s" % sent[0]["id"], "run.submit run:%s" % sent[3]["id"],
                     "run.submit run:%s" % sent[4]["id"], "run.denied action:batch_q",
                     "run.submit run:%s" % sent[6]["id"]])
    check(audit == want, "batch: one audit entry per element, in arrival order", audit)
    check(db.q("SELECT count(DISTINCT txid) FROM gw_audit_log WHERE object IN (%s)"
               % ",".join("'run:%s'" % i for i in made)) == "1", "batch: all in one transaction")
    sealed = seal_all(db)
    order = db.q("SELECT string_agg(a.verb, ',' ORDER BY c.seq) FROM gw_audit_chain c"
                 " JOIN gw_audit_log a ON a.id = c.audit_id WHERE a.object IN (%s)"
                 " OR a.object = 'action:batch_q'" % ",".join("'run:%s'" % i for i in made))
    check(sealed > 0 and order == "run.submit,run.submit,run.submit,run.denied,run.submit",
          "batch: the audit chain seals the batch's entries in arrival order", order)
    # A bad element fails the whole call, atomically (the broker then sends
    # each element alone).
    before = db.q("SELECT count(*) FROM gw_runs")
    bad = {"id": str(uuid.uuid4()), "action_id": "batch"}
    ok = {"id": str(uuid.uuid4()), "action_id": "batch", "action_version": "v1", "worker_type": "exec",
          "inputs": {}, "inputs_redacted": {}, "subject": "alice", "teams": [],
          "timeout_seconds": 60, "max_attempts": 1, "retryable": False}
    err = db.error("SELECT * FROM gw_submit_runs(%s)" % lit({"runs": [ok, bad]}))
    check('gw_submit_run: key "' in err and 'is required' in err, "batch: a bad element names its fault", err)
    check(db.q("SELECT count(*) FROM gw_runs") == before, "batch: nothing of a failed call is stored")
    for mutate, want in (
            (lambda a: a.update(teams="dev"), 'gw_submit_run: key "teams" must be of JSON type array, not string'),
            (lambda a: a.update(timeout_seconds=1.5), 'key "timeout_seconds" must be of JSON type integer'),
            (lambda a: a.update(idempotency_kye="k"), 'gw_submit_run: unknown key "idempotency_kye"')):
        b = dict(ok, id=str(uuid.uuid4()))
        mutate(b)
        err = db.error("SELECT * FROM gw_submit_runs(%s)" % lit({"runs": [dict(ok, id=str(uuid.uuid4())), b]}))
        check(want in err, "batch: the batch check says what gw_args says: " + want, err)

    # The plain path (multi-row INSERTs) stores what gw_submit_run stores.
    action(db, "same")
    extra = {"inputs": {"n": 2, "s": "x"}, "inputs_redacted": {"n": 2, "s": "[redacted]"},
             "secret_paths": ["/s"], "key": "same:k", "ttl_seconds": 300, "teams": ["a", "b"],
             "max_attempts": 0, "retryable": True, "idempotency_key": None,
             "justification": "for the test"}
    one = submit(db, "same", **extra)["run"]["id"]
    rows, sent = submit_batch(db, [dict(extra, action_id="same")])
    two = sent[0]["id"]
    # Every column but the id and the clocks: a column added to gw_runs that
    # one path fills and the other does not fails here.
    cols = "(to_jsonb(r) - 'id' - 'created_at' - 'updated_at' - 'queued_at')::text"
    r1, r2 = (db.q("SELECT %s FROM gw_runs r WHERE id = '%s'" % (cols, x)) for x in (one, two))
    check(r1 == r2, "batch: the plain path stores the run gw_submit_run stores", r1, r2)
    ev = "SELECT string_agg(concat_ws('/', attempt, from_status, to_status, actor, reason), ',' ORDER BY id)" \
         " FROM gw_run_events WHERE run_id = '%s'"
    check(db.q(ev % one) == db.q(ev % two), "batch: ... and the same events", db.q(ev % two))
    au = "SELECT actor || verb || detail::text FROM gw_audit_log WHERE object = 'run:%s'"
    check(db.q(au % one) == db.q(au % two), "batch: ... and the same audit entry", db.q(au % two))
    ob = ("SELECT topic || msg_key || (payload - 'id' - 'time' - 'subject' #- '{data,run_id}'"
          " #- '{data,requested_at}')::text FROM gw_outbox WHERE payload ->> 'subject' = '%s'")
    check(db.q(ob % one) == db.q(ob % two) and db.q(ob % two) != "",
          "batch: ... and the same outbox message", db.q(ob % two))
    j1 = json.loads(db.q("SELECT gw_run_json(r) FROM gw_runs r WHERE id = '%s'" % one))
    strip = ("id", "created_at", "updated_at", "queued_at", "cursor")
    check({k: v for k, v in j1.items() if k not in strip}
          == {k: v for k, v in rows[0]["run"].items() if k not in strip},
          "batch: ... and answers with the same run document", rows[0]["run"])
    check("1 to 1000 elements" in db.error("SELECT * FROM gw_submit_runs('{\"runs\": []}')"),
          "batch: an empty batch is refused")
    check('unknown key "run"' in db.error("SELECT * FROM gw_submit_runs('{\"run\": []}')"),
          "batch: the argument object is checked")


def test_submit_eager_lease(db):
    """Eager publish (decision 0076): with `lease`, each created run's outbox
    row comes back with it, already leased, so no relay takes it while the
    broker sends it; through either path; nothing comes back for a replay, a
    refusal or a call without `lease`, and those rows stay for any relay."""
    action(db, "eager")
    action(db, "eager_q")
    quota = {"per_team": {"max_runs": 1, "window_seconds": 3600}}
    runs = []
    for e in ({}, {"idempotency_key": "ek"}, {"idempotency_key": "ek"},
              {"action_id": "eager_q", "quota": quota}, {"action_id": "eager_q", "quota": quota}):
        a = {"id": str(uuid.uuid4()), "action_id": "eager", "action_version": "v1",
             "worker_type": "exec", "inputs": {"n": 1}, "inputs_redacted": {"n": 1},
             "subject": "erin", "teams": ["eager"], "request_hash": "h1",
             "timeout_seconds": 60, "max_attempts": 1, "retryable": False}
        a.update(e)
        runs.append(a)
    rows = json.loads(db.q(
        "SELECT json_agg(json_build_object('i', i, 'created', created, 'refused', refused,"
        " 'outbox_id', outbox_id, 'topic', topic, 'msg_key', msg_key, 'payload', payload) ORDER BY i)"
        " FROM gw_submit_runs_eager(%s)" % lit({"lease": "30 seconds", "runs": runs})))
    got = [(r["created"], r["outbox_id"] is not None) for r in rows]
    check(got == [(True, True), (True, True), (False, False), (True, True), (False, False)],
          "eager: created runs (plain path and quota path) come back with their outbox row;"
          " a replay and a refusal do not", got)
    for r in (rows[0], rows[1], rows[3]):
        run_id = runs[r["i"]]["id"]
        p = json.loads(r["payload"])
        check(r["topic"] == "gangway.runs.exec" and p["type"] == "dev.gangway.run.requested"
              and p["data"]["run_id"] == run_id and r["msg_key"] == run_id,
              "eager: the row returned is that run's run.requested", r)
        row = db.q("SELECT lease_until > clock_timestamp() + interval '25 seconds', payload::text = '%s'"
                   " FROM gw_outbox WHERE id = %d" % (r["payload"].replace("'", "''"), r["outbox_id"]))
        check(row == "t|t", "eager: the row is stored leased for the lease given, as returned", row)
    leased = db.q("SELECT count(*) FROM gw_outbox_lease_parts(1000, '30 seconds')"
                  " WHERE id IN (%s)" % ",".join(str(rows[i]["outbox_id"]) for i in (0, 1, 3)))
    check(leased == "0", "eager: a relay does not lease the rows meanwhile", leased)
    db.q("UPDATE gw_outbox SET lease_until = NULL WHERE lease_until IS NOT NULL")
    rows, sent = submit_batch(db, [{"action_id": "eager"}])
    row = db.q("SELECT lease_until IS NULL FROM gw_outbox WHERE payload -> 'data' ->> 'run_id' = '%s'"
               % sent[0]["id"])
    check(row == "t", "eager: without `lease` the row is left unleased, for the relay", row)
    # gw_submit_runs, the name of brokers before decision 0076, never leases:
    # its caller would not know to send the row.
    a = dict(runs[0], id=str(uuid.uuid4()), idempotency_key=None)
    db.q("SELECT count(*) FROM gw_submit_runs(%s)" % lit({"lease": "30 seconds", "runs": [a]}))
    row = db.q("SELECT lease_until IS NULL FROM gw_outbox WHERE payload -> 'data' ->> 'run_id' = '%s'" % a["id"])
    check(row == "t", "eager: gw_submit_runs (five columns) leaves the row to the relay even when asked", row)
    # A batch of plain runs (one segment): each row's id follows the element
    # order (the relay's publishing order, per key too), with and without
    # `lease`, and the rows stored are the ones returned.
    for lease in ("30 seconds", None):
        many = [dict(runs[0], id=str(uuid.uuid4()), idempotency_key=None, key="same-key") for _ in range(40)]
        args = {"runs": many}
        if lease:
            args["lease"] = lease
        db.q("SELECT count(*) FROM gw_submit_runs_eager(%s)" % lit(args))
        order = db.q("SELECT string_agg(payload -> 'data' ->> 'run_id', ',' ORDER BY id) FROM gw_outbox"
                     " WHERE payload -> 'data' ->> 'run_id' IN (%s)" % ",".join("'%s'" % m["id"] for m in many))
        check(order.split(",") == [m["id"] for m in many],
              "eager: outbox ids follow the element order (lease %s)" % lease, order[:80])
        if lease:
            ids = json.loads(db.q("SELECT json_agg(outbox_id ORDER BY i) FROM gw_submit_runs_eager(%s)" % lit(
                {"lease": lease, "runs": [dict(m, id=str(uuid.uuid4())) for m in many]})))
            again = [dict(m, id=str(uuid.uuid4())) for m in many]
            got = json.loads(db.q("SELECT json_agg(json_build_object('id', outbox_id, 'p', payload) ORDER BY i)"
                                  " FROM gw_submit_runs_eager(%s)" % lit({"lease": lease, "runs": again})))
            ids = [g["id"] for g in got]
            stored = json.loads(db.q("SELECT json_object_agg(id, payload -> 'data' ->> 'run_id') FROM gw_outbox"
                                     " WHERE id IN (%s) AND lease_until IS NOT NULL" % ",".join(map(str, ids))))
            check(ids == sorted(ids) and len(set(ids)) == 40
                  and [stored.get(str(i)) for i in ids] == [m["id"] for m in again]
                  and all(json.loads(g["p"])["data"]["run_id"] == m["id"] for g, m in zip(got, again)),
                  "eager: each returned id is its element's stored, leased row", ids[:3])
    check("invalid input syntax for type interval" in db.error(
        "SELECT * FROM gw_submit_runs_eager(%s)" % lit({"lease": "soon", "runs": [dict(runs[0], id=str(uuid.uuid4()))]})),
        "eager: a lease that is not an interval is refused")


def test_claim_batch(db):
    """gw_claim_runs' set-based path (plain queued runs asked for once) grants
    and stores exactly what gw_claim_run does, and every other claim in the
    batch gets gw_claim_run's own answer, by its position."""
    action(db, "cb", {"backend": {"command": ["/bin/true"]}})
    def queued(**extra):
        return submit(db, "cb", inputs={"n": 1, "z": None}, inputs_redacted={"n": 1, "z": None},
                      secret_paths=["/n"], teams=["t1", "t2"], **extra)["run"]["id"]
    one, fast = queued(), queued()
    cols = ("(to_jsonb(r) - 'id' - 'created_at' - 'updated_at' - 'queued_at' - 'started_at'"
            " - 'heartbeat_at' - 'resource_key')::text")
    c1 = json.loads(db.q("SELECT claim FROM gw_claim_run('%s', 1, 'w1', 'exec')" % one))
    rows = json.loads(db.q("SELECT json_agg(json_build_object('idx', idx, 'run_id', run_id, 'result', result,"
                           " 'claim', claim) ORDER BY idx) FROM gw_claim_runs(%s, 'exec')"
                           % lit([{"run_id": fast, "attempt": 1, "worker_id": "w1"}])))
    c2 = rows[0]["claim"]
    check(rows[0]["result"] == "granted" and rows[0]["idx"] == 0, "claims: the batch path grants", rows)
    check({k: v for k, v in c1.items() if k not in ("run_id", "resource_key")}
          == {k: v for k, v in c2.items() if k not in ("run_id", "resource_key")}
          and c2["run_id"] == fast, "claims: ... the same claim document as gw_claim_run", c1, c2)
    r1, r2 = (db.q("SELECT %s FROM gw_runs r WHERE id = '%s'" % (cols, x)) for x in (one, fast))
    check(r1 == r2, "claims: ... stores the same run", r1, r2)
    ev = ("SELECT string_agg(concat_ws('/', attempt, from_status, to_status, actor, reason, detail), ','"
          " ORDER BY id) FROM gw_run_events WHERE run_id = '%s'")
    check(db.q(ev % one) == db.q(ev % fast), "claims: ... the same events", db.q(ev % fast))
    au = "SELECT string_agg(actor || verb || detail::text, ',' ORDER BY id) FROM gw_audit_log WHERE object = 'run:%s'"
    check(db.q(au % one) == db.q(au % fast), "claims: ... the same audit entries", db.q(au % fast))

    # A mixed batch: each claim gets what gw_claim_run alone would say.
    a, b, c, d = queued(), queued(), queued(), queued()
    db.q("UPDATE gw_runs SET status = 'cancelled' WHERE id = '%s'" % d)
    batch = [{"run_id": a, "attempt": 1, "worker_id": "w1"},       # 0 granted (set-based)
             {"run_id": b, "attempt": 2, "worker_id": "w1"},       # 1 stale_attempt
             {"run_id": c, "attempt": 1, "worker_id": "w1"},       # 2 granted, asked twice:
             {"run_id": c, "attempt": 1, "worker_id": "w2"},       # 3 ... already_claimed
             {"run_id": d, "attempt": 1, "worker_id": "w1"},       # 4 cancelled
             {"run_id": fast, "attempt": 1, "worker_id": "w1"},    # 5 the same worker again: granted
             {"run_id": str(uuid.uuid4()), "attempt": 1, "worker_id": "w1"}]  # 6 not_found
    rows = json.loads(db.q("SELECT json_agg(json_build_object('idx', idx, 'result', result) ORDER BY idx)"
                           " FROM gw_claim_runs(%s, 'exec')" % lit(batch)))
    got = [r["result"] for r in rows]
    check(got == ["granted", "stale_attempt", "granted", "already_claimed", "cancelled", "granted", "not_found"],
          "claims: a mixed batch answers each claim as gw_claim_run would, by position", got)
    check(db.q("SELECT worker_id FROM gw_runs WHERE id = '%s'" % c) == "w1",
          "claims: a run asked for twice goes to the first asker")
    # The plain ones did take the set-based path: gw_claim_run ran only for
    # the others (function calls counted in this transaction).
    e1, e2 = queued(), queued()
    calls = db.q("SET track_functions = 'pl'; SELECT count(*) FROM gw_claim_runs(%s, 'exec');"
                 " SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions"
                 " WHERE funcname = 'gw_claim_run'), 0)"
                 % lit([{"run_id": e1, "attempt": 1, "worker_id": "w1"},
                        {"run_id": e2, "attempt": 1, "worker_id": "w1"},
                        {"run_id": b, "attempt": 2, "worker_id": "w1"}]))
    check(calls.split()[-1] == "1", "claims: two plain runs granted without gw_claim_run, one refusal through it",
          calls)
    n = db.q("SELECT count(*) FROM gw_run_events WHERE to_status = 'running' AND run_id IN ('%s', '%s', '%s')"
             % (a, c, fast))
    check(n == "3", "claims: one transition per run granted, none for a repeated grant", n)
    rows = json.loads(db.q("SELECT json_agg(result) FROM gw_claim_runs(%s, 'git')"
                           % lit([{"run_id": b, "attempt": 1, "worker_id": "w1"}])))
    check(rows == ["wrong_worker_type"], "claims: another worker type is refused in a batch too", rows)


def test_apply_batch(db):
    """gw_apply_events' set-based path (plain running runs whose events are
    started, log and a last succeeded) stores exactly what the one-event-at-
    a-time path, gw_apply_events_each, stores for the same batch, a batch that
    mixes the common case with everything else; and the common case never
    calls gw_apply_events_each."""
    action(db, "ab", {"backend": {"command": ["/bin/true"]}})
    action(db, "abr", {"backend": {"command": ["/bin/true"]},
                       "resource": {"kind": "bucket", "name": "/name"}})

    def running(aid="ab", **inputs):
        run = submit(db, aid, inputs=inputs or {"n": 1}, inputs_redacted=inputs or {"n": 1},
                     secret_paths=["/n"] if not inputs else [])["run"]["id"]
        check(claim(db, run) == "granted", "apply batch: a run to apply events to is running")
        return run

    def scenario(tag):
        """One run of each shape and the batch of their events, interleaved."""
        r = {k: running() for k in ("plain", "lines", "dup", "failed", "beat", "stale", "late")}
        r["res"] = running("abr", name="bkt-" + tag)
        # lines' and plain's heartbeats are old: a new line refreshes them (at
        # most once a second), also in a run the batch ends.
        db.q("UPDATE gw_runs SET heartbeat_at = heartbeat_at - interval '5 seconds' WHERE id IN ('%s', '%s')"
             % (r["lines"], r["plain"]))
        def ev(k, seq, kind, **kw):
            e = {"run_id": r[k], "attempt": kw.pop("attempt", 1), "seq": seq, "kind": kind,
                 "worker_id": "w1"}
            e.update(kw)
            return e
        batch = [ev("plain", 1, "started", data={"pid": 7}),
                 ev("lines", 1, "started"),
                 ev("plain", 2, "log", stream="stdout", line="hello"),
                 ev("res", 1, "started"),
                 ev("dup", 1, "succeeded", data={"outputs": {"a": 1}}),
                 ev("failed", 1, "started"),
                 ev("lines", 2, "log", stream="stderr", line="warn"),
                 ev("beat", 0, "heartbeat"),
                 ev("stale", 1, "succeeded", attempt=2, data={"outputs": {}}),
                 ev("late", 1, "succeeded", data={}),
                 ev("late", 2, "log", stream="stdout", line="after the end"),
                 ev("failed", 2, "failed", data={"message": "boom", "reason": "exit_1"}),
                 ev("res", 2, "succeeded", data={"outputs": {"url": "s3://x"}}),
                 ev("plain", 3, "succeeded", data={"outputs": {"message": "hi"}}),
                 {"run_id": str(uuid.uuid4()), "attempt": 1, "seq": 1, "kind": "started", "worker_id": "w1"}]
        # dup's succeeded was delivered once before: the batch's copy is a duplicate.
        db.q("SELECT gw_apply_events_each(%s)" % lit([batch[4]]))
        return r, batch

    r1, b1 = scenario("one")
    r2, b2 = scenario("two")
    t0 = db.q("SELECT clock_timestamp()")
    n1 = db.q("SELECT gw_apply_events(%s)" % lit(b1))
    n2 = db.q("SELECT gw_apply_events_each(%s)" % lit(b2))
    check(n1 == n2 == "12", "apply batch: both ways count the same events applied", n1, n2)
    cols = ("(to_jsonb(r) - 'id' - 'created_at' - 'updated_at' - 'queued_at' - 'started_at'"
            " - 'heartbeat_at' - 'finished_at' - 'resource_key' - 'resource_id' - 'inputs' - 'inputs_hash'"
            " - 'inputs_redacted')::text")
    wev = ("SELECT string_agg(concat_ws('/', attempt, seq, kind, stream, line, data, worker_id), ','"
           " ORDER BY attempt, seq) FROM gw_worker_events WHERE run_id = '%s'")
    tev = ("SELECT string_agg(concat_ws('/', attempt, from_status, to_status, actor, reason, detail), ','"
           " ORDER BY id) FROM gw_run_events WHERE run_id = '%s'")
    au = "SELECT string_agg(actor || verb || detail::text, ',' ORDER BY id) FROM gw_audit_log WHERE object = 'run:%s'"
    for k in r1:
        for what, sql in (("run", "SELECT %s FROM gw_runs r WHERE id = '%%s'" % cols), ("worker events", wev),
                          ("transitions", tev), ("audit entries", au)):
            a, b = db.q(sql % r1[k]), db.q(sql % r2[k]).replace("bkt-two", "bkt-one")
            check(a == b, "apply batch: %s: the same %s both ways" % (k, what), a, b)
    expect = {"plain": "succeeded", "lines": "running", "dup": "succeeded", "failed": "failed",
              "beat": "running", "stale": "running", "late": "succeeded", "res": "succeeded"}
    got = {k: status(db, v) for k, v in r1.items()}
    check(got == expect, "apply batch: each run ends as its events say", got)
    fresh = "SELECT heartbeat_at >= '%s' FROM gw_runs WHERE id = '%%s'" % t0
    check(db.q(fresh % r1["lines"]) == db.q(fresh % r2["lines"]) == "t",
          "apply batch: new lines refresh an old heartbeat both ways")
    check(db.q(fresh % r1["plain"]) == db.q(fresh % r2["plain"]) == "t",
          "apply batch: ... also in a run the batch ends")
    res = ("SELECT concat_ws('/', kind, status, owner_subject, outputs, worker_type) FROM gw_resources"
           " WHERE created_by_run = '%s'")
    a, b = db.q(res % r1["res"]), db.q(res % r2["res"])
    check(a == b and a.startswith("bucket/active/alice/"), "apply batch: the resource is recorded both ways", a, b)
    check(db.q("SELECT resource_id IS NOT NULL FROM gw_runs WHERE id = '%s'" % r1["res"]) == "t",
          "apply batch: ... and linked to its run")
    # A second delivery of the whole batch changes nothing but the heartbeat.
    n1 = db.q("SELECT gw_apply_events(%s)" % lit(b1))
    n2 = db.q("SELECT gw_apply_events_each(%s)" % lit(b2))
    check(n1 == n2 == "1", "apply batch: a redelivered batch applies only its heartbeat", n1, n2)
    ends = "SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'succeeded'"
    check(db.q(ends % r1["plain"]) == db.q(ends % r2["plain"]) == "1", "apply batch: ... and no second transition")
    # Only plain runs: gw_apply_events_each is never called.
    x, y = running(), running()
    calls = db.q("SET track_functions = 'pl'; SELECT gw_apply_events(%s);"
                 " SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions"
                 " WHERE funcname = 'gw_apply_events_each'), 0)"
                 % lit([{"run_id": x, "attempt": 1, "seq": 1, "kind": "started", "worker_id": "w1"},
                        {"run_id": y, "attempt": 1, "seq": 1, "kind": "started", "worker_id": "w1"},
                        {"run_id": x, "attempt": 1, "seq": 2, "kind": "succeeded", "worker_id": "w1"},
                        {"run_id": y, "attempt": 1, "seq": 2, "kind": "succeeded", "worker_id": "w1"}]))
    check(calls.split() == ["4", "0"] and status(db, x) == status(db, y) == "succeeded",
          "apply batch: plain runs end without gw_apply_events_each", calls)
    # A run of an action that records a resource goes one event at a time:
    # its end may share a resource with another run's (a teardown, a
    # re-creation), and the batch's order decides.
    z = running("abr", name="bkt-three")
    calls = db.q("SET track_functions = 'pl'; SELECT gw_apply_events(%s);"
                 " SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions"
                 " WHERE funcname = 'gw_apply_events_each'), 0)"
                 % lit([{"run_id": z, "attempt": 1, "seq": 1, "kind": "succeeded", "worker_id": "w1"}]))
    check(calls.split() == ["1", "1"] and status(db, z) == "succeeded",
          "apply batch: a resource's run goes through gw_apply_events_each", calls)


def test_apply_requeued_meanwhile(db):
    """A run the reaper requeues while gw_apply_events is ending it: the
    requeue's transaction holds the run when the apply looks (the run is
    still running attempt 1 to it), then commits. The apply must not end
    the run, store the stale attempt's events or count them, as the
    one-event-at-a-time loop does not."""
    action(db, "rq", {"backend": {"command": ["/bin/true"]}})
    run = submit(db, "rq")["run"]["id"]
    check(claim(db, run) == "granted", "requeued meanwhile: the run is running")
    reaper = subprocess.Popen(
        ["psql", db.dsn, "-X", "-qAt", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reaper.stdin.write("BEGIN;\nUPDATE gw_runs SET attempt = 2, status = 'queued', worker_id = NULL"
                       " WHERE id = '%s';\nSELECT 'locked';\nSELECT pg_sleep(1.5);\nCOMMIT;\n" % run)
    reaper.stdin.close()
    check(reaper.stdout.readline().strip() == "locked", "requeued meanwhile: the requeue holds the run")
    t0 = time.time()
    n = db.q("SELECT gw_apply_events(%s)"
             % lit([{"run_id": run, "attempt": 1, "seq": 1, "kind": "started", "worker_id": "w1"},
                    {"run_id": run, "attempt": 1, "seq": 2, "kind": "succeeded", "worker_id": "w1",
                     "data": {"outputs": {"x": 1}}}]))
    waited = time.time() - t0
    reaper.wait(10)
    check(waited > 0.5, "requeued meanwhile: the apply waited for the requeue's commit (%.2f s)" % waited)
    got = (n, status(db, run), db.q("SELECT attempt FROM gw_runs WHERE id = '%s'" % run),
           db.q("SELECT count(*) FROM gw_worker_events WHERE run_id = '%s'" % run),
           db.q("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'succeeded'" % run))
    check(got == ("0", "queued", "2", "0", "0"),
          "requeued meanwhile: the stale attempt's events are neither applied nor stored", got)


def test_stale_attempts(db):
    action(db, "stale")
    run = submit(db, "stale")["run"]["id"]
    check(claim(db, run, attempt=2) == "stale_attempt", "claim: a future attempt is refused")
    check(claim(db, run, worker_type="git") == "wrong_worker_type", "claim: another worker type is refused")
    check(claim(db, run) == "granted" and status(db, run) == "running", "claim: the current attempt is granted")
    check(claim(db, run, worker="w2") == "already_claimed", "claim: a second worker is refused")
    check(claim(db, run) == "granted", "claim: the same worker asking again is granted again")
    check(db.q("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'" % run) == "1",
          "claim: a repeated grant writes no second transition")
    # The reaper's requeue makes attempt 2: attempt 1's events and claims are stale.
    db.q("UPDATE gw_runs SET attempt = 2, status = 'queued', worker_id = NULL WHERE id = '%s'" % run)
    check(claim(db, run, attempt=1) == "stale_attempt", "claim: an old attempt is refused (fence)")
    ev = [{"run_id": run, "attempt": 1, "seq": 1, "kind": "succeeded", "worker_id": "w1",
           "data": {"outputs": {}}}]
    check(db.q("SELECT gw_apply_events(%s)" % lit(ev)) == "0" and status(db, run) == "queued",
          "events: a stale attempt's result is ignored")
    check(claim(db, run, attempt=2, worker="w2") == "granted", "claim: the new attempt is granted")
    ev[0].update(attempt=2, worker_id="w2")
    check(db.q("SELECT gw_apply_events(%s)" % lit(ev)) == "1" and status(db, run) == "succeeded",
          "events: the current attempt's result is applied")
    check(db.q("SELECT gw_apply_events(%s)" % lit(ev)) == "0", "events: a duplicate is applied once")
    check(claim(db, run, attempt=2, worker="w2") == "ended", "claim: an ended run is refused")
    # started, log and heartbeat events take no row lock (bench/README.md,
    # "Claim and finish cost"): on an ended run they change nothing.
    hb = "SELECT heartbeat_at::text FROM gw_runs WHERE id = '%s'" % run
    before = db.q(hb)
    late = [{"run_id": run, "attempt": 2, "seq": 0, "kind": "heartbeat", "worker_id": "w2"},
            {"run_id": run, "attempt": 2, "seq": 7, "kind": "log", "worker_id": "w2",
             "stream": "stdout", "line": "late"}]
    db.q("SELECT pg_sleep(1.1)")
    check(db.q("SELECT gw_apply_events(%s)" % lit(late)) == "1" and db.q(hb) == before
          and status(db, run) == "succeeded",
          "events: a late heartbeat or log line of an ended run is kept as an event, nothing more",
          db.q(hb), before)
    run = submit(db, "stale")["run"]["id"]
    db.q("SELECT * FROM gw_cancel_run('%s', 'alice', NULL)" % run)
    check(claim(db, run) == "cancelled", "claim: a run cancelled while queued never runs")


def test_approval_counting(db):
    action(db, "appr")
    rule = {"approvals": 2, "from_teams": ["approvers"], "from_roles": ["approver"]}
    run = submit(db, "appr", approval=rule)["run"]["id"]
    check(status(db, run) == "pending_approval", "approval: the run waits")
    check(claim(db, run) == "not_approved", "approval: a pending run cannot be claimed")
    check(decide(db, run, "alice", teams=["approvers"]) == "self_approval", "approval: never the requester")
    check(decide(db, run, "mallory", teams=["dev"]) == "not_eligible",
          "approval: an approver outside the named teams and roles is refused")
    check(decide(db, run, "ann", teams=["approvers"]) == "recorded"
          and status(db, run) == "pending_approval", "approval: one of two approvals is recorded")
    check(decide(db, run, "ann", teams=["approvers"]) == "already_decided",
          "approval: the same approver counts once")
    check(db.q("SELECT count(*) FROM gw_approvals WHERE run_id = '%s'" % run) == "1",
          "approval: a duplicate decision is not stored")
    check(decide(db, run, "rob", roles=["approver"]) == "approved" and status(db, run) == "queued",
          "approval: the second distinct approval (by role) queues the run")
    check(decide(db, run, "zed", teams=["approvers"]) == "not_pending", "approval: a queued run is decided")
    # Approvals bind to the inputs: one given for other inputs does not count.
    run = submit(db, "appr", approval=rule)["run"]["id"]
    check(decide(db, run, "ann", teams=["approvers"]) == "recorded", "approval: first of two recorded")
    db.q("UPDATE gw_runs SET inputs_hash = 'changed' WHERE id = '%s'" % run)
    check(decide(db, run, "rob", teams=["approvers"]) == "recorded" and status(db, run) == "pending_approval",
          "approval: only approvals for these exact inputs count")
    run = submit(db, "appr", approval=rule)["run"]["id"]
    check(decide(db, run, "ann", "reject", teams=["approvers"]) == "rejected" and status(db, run) == "rejected",
          "approval: one rejection rejects by default")
    run = submit(db, "appr", approval=rule, break_glass="the site is down, paging")["run"]["id"]
    check(status(db, run) == "queued", "approval: break-glass skips the approval")


def test_subject_key(db):
    """gw_subject_key: the SQL twin of gw_subject_canonical for rows written
    before subjects were canonical; separation of duties compares through it."""
    for raw, want in (("mia", "user:default/mia"), ("User:Default/Mia", "user:default/mia"),
                      ("user:mia", "user:default/mia"), ("ops/Mia", "user:ops/mia"),
                      ("user:default/mia", "user:default/mia"), ("svc:backstage", "svc:default/backstage"),
                      ("Mia@Example.com", "user:default/mia@example.com")):
        got = db.q("SELECT gw_subject_key(%s)" % ("'%s'" % raw))
        check(got == want, "gw_subject_key(%r) = %r" % (raw, want), got)
    check(db.q("SELECT gw_subject_key(NULL) IS NULL") == "t", "gw_subject_key(NULL) is NULL")
    action(db, "sod")
    rule = {"approvals": 2, "from_teams": ["approvers"]}
    # A run recorded under an old spelling of the requester.
    run = submit(db, "sod", subject="mia", approval=rule)["run"]["id"]
    for spelling in ("user:default/mia", "User:Default/Mia", "mia", "MIA"):
        check(decide(db, run, spelling, teams=["approvers"]) == "self_approval",
              "sod: the requester recorded as 'mia' cannot approve as %r" % spelling)
    # One approver, two spellings: counted once.
    check(decide(db, run, "ann", teams=["approvers"]) == "recorded", "sod: ann (old spelling) approves")
    check(decide(db, run, "user:default/ann", teams=["approvers"]) == "already_decided",
          "sod: ann approving again in the canonical spelling is already_decided")
    check(status(db, run) == "pending_approval", "sod: one person, one approval: still pending")
    # Rows that predate the check (two spellings of one approver already
    # stored) still count once.
    db.q("INSERT INTO gw_approvals (run_id, approver, decision, inputs_hash)"
         " SELECT id, 'Ann', 'approve', inputs_hash FROM gw_runs WHERE id = '%s'" % run)
    check(decide(db, run, "user:default/rob", "approve", teams=["approvers"]) == "approved",
          "sod: a second person's approval completes it")
    run = submit(db, "sod", subject="user:default/mia", approval={"approvals": 2, "from_teams": ["approvers"]})["run"]["id"]
    db.q("INSERT INTO gw_approvals (run_id, approver, decision, inputs_hash)"
         " SELECT id, a, 'approve', inputs_hash FROM gw_runs, unnest(ARRAY['ann', 'user:default/ann']) a"
         " WHERE id = '%s'" % run)
    check(decide(db, run, "user:default/zoe", teams=["approvers"]) == "approved",
          "sod: rows 'ann' and 'user:default/ann' are one approval; zoe's makes two")
    run = submit(db, "sod", subject="user:default/mia", approval={"approvals": 3, "from_teams": ["approvers"]})["run"]["id"]
    db.q("INSERT INTO gw_approvals (run_id, approver, decision, inputs_hash)"
         " SELECT id, a, 'approve', inputs_hash FROM gw_runs, unnest(ARRAY['ann', 'user:default/ann']) a"
         " WHERE id = '%s'" % run)
    check(decide(db, run, "user:default/zoe", teams=["approvers"]) == "recorded" and
          status(db, run) == "pending_approval",
          "sod: 'ann' and 'user:default/ann' count as one of three approvals")


def test_ttl_bounds(db):
    ttl = {"default_seconds": 3600, "max_seconds": 7200, "max_extension_seconds": 1800}
    action(db, "ttl", {"resource": {"kind": "env", "name": "/name"}, "ttl": ttl})

    def make(name, **extra):
        r = submit(db, "ttl", inputs={"name": name}, inputs_redacted={"name": name}, **extra)
        run = r["run"]["id"]
        check(claim(db, run) == "granted", "ttl: the run is claimed")
        db.q("SELECT gw_apply_events(%s)" % lit([{"run_id": run, "attempt": 1, "seq": 1,
                                                   "kind": "succeeded", "worker_id": "w1",
                                                   "data": {"outputs": {}}}]))
        return db.q("SELECT id FROM gw_resources WHERE created_by_run = '%s'" % run)

    def seconds(res, col):
        return float(db.q("SELECT extract(epoch FROM %s - created_at) FROM gw_resources WHERE id = '%s'"
                          % (col, res)))

    res = make("a")
    check(abs(seconds(res, "expires_at") - 3600) < 5, "ttl: the default lifetime applies")
    check(abs(seconds(res, "max_expires_at") - 9000) < 5, "ttl: the bound is max + extension budget")
    res_b = make("b", ttl_seconds=600)
    check(abs(seconds(res_b, "expires_at") - 600) < 5, "ttl: a requested ttl_seconds applies")

    def extend(res, s):
        return db.q("SELECT outcome FROM gw_extend_resource('%s', %d, 'alice')" % (res, s))

    db.q("UPDATE gw_resources SET expires_at = max_expires_at - interval '100 seconds' WHERE id = '%s'" % res)
    check(extend(res, 101) == "over_limit", "ttl: an extension one second past the bound is refused")
    check(extend(res, 100) == "extended", "ttl: an extension exactly to the bound is granted")
    check(db.q("SELECT expires_at = max_expires_at FROM gw_resources WHERE id = '%s'" % res) == "t",
          "ttl: the extension moved expires_at to the bound")
    check(extend(res, 1) == "over_limit", "ttl: nothing more past the bound")
    db.q("UPDATE gw_resources SET status = 'tearing_down' WHERE id = '%s'" % res_b)
    check(extend(res_b, 1) == "not_active", "ttl: a resource being torn down is not extended")


def test_outbox_batches(db):
    """The audit seal writes one batch row per round; gw_outbox_lease_parts
    gives its entries as messages in order, with the row's id and how many
    parts it has; the lease of older relays leaves batch rows alone."""
    action(db, "obx")
    db.q("DELETE FROM gw_outbox")
    for _ in range(3):
        submit(db, "obx")
    db.q("DELETE FROM gw_outbox WHERE topic <> 'gangway.audit'")
    sealed = seal_all(db)
    check(sealed >= 3, "outbox batches: the seal took the three entries", sealed)
    rows = db.q("SELECT count(*) || '/' || bool_and(batch AND payload = 'null') || '/'"
                " || sum(cardinality(string_to_array(lines, E'\\n'))) FROM gw_outbox WHERE topic = 'gangway.audit'")
    check(rows.split("/")[1] == "true" and rows.split("/")[2] == str(sealed)
          and int(rows.split("/")[0]) <= sealed and int(rows.split("/")[0]) >= 1,
          "outbox batches: one batch row per sealing round, one line per entry", rows, sealed)
    # A plain row after the batch rows: ids keep publishing order.
    db.q("INSERT INTO gw_outbox (topic, msg_key, payload) VALUES ('gangway.t', 'k', '{\"n\": 1}')")
    check(db.q("SELECT count(*) FROM gw_outbox_lease(100, '30 seconds')") == "1",
          "outbox batches: the old lease takes the plain row only")
    db.q("UPDATE gw_outbox SET lease_until = NULL")
    got = db.q("SELECT string_agg(id || ':' || parts || ':' || coalesce((payload::jsonb -> 'data' ->> 'seq'),"
               " payload::jsonb ->> 'n'), ',') FROM gw_outbox_lease_parts(100, '30 seconds')").split(",")
    want_rows = db.q("SELECT string_agg(id::text, ',' ORDER BY id) FROM gw_outbox").split(",")
    ids = [g.split(":")[0] for g in got]
    check(sorted(set(ids), key=int) == want_rows and ids == sorted(ids, key=int),
          "outbox batches: every row leased, in id order", got, want_rows)
    seqs = [int(g.split(":")[2]) for g in got[:-1]]
    check(seqs == sorted(seqs) and len(seqs) == sealed and got[-1].endswith(":1:1"),
          "outbox batches: the entries in seq order, then the plain row as one part", got)
    parts = {}
    for g in got:
        parts.setdefault(g.split(":")[0], []).append(int(g.split(":")[1]))
    check(all(len(v) == v[0] and len(set(v)) == 1 for v in parts.values()),
          "outbox batches: `parts` is the number of messages of the row", parts)
    check(db.q("SELECT count(*) FROM gw_outbox_lease_parts(100, '30 seconds')") == "0",
          "outbox batches: leased rows are not leased again")
    db.q("DELETE FROM gw_outbox")
    # A batch row of a sealer from before sql/0021: its messages in a jsonb
    # array (a rolling upgrade leaves such rows to the new relay).
    db.q("INSERT INTO gw_outbox (topic, msg_key, payload, batch) VALUES ('gangway.audit', 'audit',"
         " '[{\"data\": {\"seq\": 7}}, {\"data\": {\"seq\": 8}}]', true)")
    got = db.q("SELECT string_agg(parts || ':' || (payload::jsonb -> 'data' ->> 'seq'), ',')"
               " FROM gw_outbox_lease_parts(100, '30 seconds')")
    check(got == "2:7,2:8", "outbox batches: a jsonb-array batch row still gives its elements, in order", got)
    db.q("DELETE FROM gw_outbox")


def test_audit_seal_messages(db):
    """Each sealed entry's gangway.audit message is a CloudEvent whose data
    is the entry with its chain position and hashes, field for field (the
    sealer writes it as text; decision 0075's batch row), for any text an
    entry may hold."""
    seal_all(db)
    db.q("DELETE FROM gw_outbox")
    odd = ["quote \" back\\slash", "line\nbreak\ttab", "ctl \u0001\u001f", "caf\u00e9 \u2603 \U0001f600",
           "</script>&<", ""]
    for i, t in enumerate(odd):
        db.q("INSERT INTO gw_audit_log (actor, verb, object, detail) VALUES (%s, 'test.odd', %s, %s)"
             % ("'%s'" % t.replace("'", "''"), "'obj:%d'" % i,
                "NULL" if i == 0 else lit({"text": t, "n": i, "nested": {"a": [1, None, True]}})))
    check(seal_all(db) == len(odd), "audit messages: the entries are sealed")
    msgs = json.loads(db.q("SELECT jsonb_agg(m ORDER BY (m -> 'data' ->> 'seq')::bigint)"
                           " FROM gw_outbox, unnest(string_to_array(lines, E'\\n')) t,"
                           " LATERAL (SELECT t::jsonb) j(m) WHERE topic = 'gangway.audit'"))
    want = json.loads(db.q(
        "SELECT jsonb_agg(jsonb_build_object('seq', c.seq, 'id', a.id, 'at', gw_ts(a.at), 'actor', a.actor,"
        " 'verb', a.verb, 'object', a.object, 'detail', a.detail, 'prev_hash', c.prev_hash, 'hash', c.hash)"
        " ORDER BY c.seq) FROM gw_audit_log a JOIN gw_audit_chain c ON c.audit_id = a.id"
        " WHERE a.verb = 'test.odd'"))
    check([m["data"] for m in msgs] == want, "audit messages: data is the entry, field for field",
          [m["data"] for m in msgs][:2], want[:2])
    check(all(set(m) == {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
              and m["specversion"] == "1.0" and m["type"] == "dev.gangway.audit.entry"
              and m["source"] == "gangway/broker" and m["subject"] == "audit:%d" % m["data"]["seq"]
              and m["datacontenttype"] == "application/json" and len(m["id"]) == 36
              and m["time"].endswith("Z") for m in msgs),
          "audit messages: the CloudEvents envelope", msgs[0])
    check(len({m["id"] for m in msgs}) == len(msgs), "audit messages: one event id each")
    db.q("DELETE FROM gw_outbox")


def test_uuid_v7(db):
    """gw_uuid_v7 (the ids of the runs PostgreSQL starts) has the layout of
    lib/core/crypto.c's (the ids of requested runs; core-uuid checks the same
    instants): RFC 9562's example millisecond 0x017F22E279B0, the fraction in
    1/4096ths, version 7, variant 10, and ids in time order sort in order."""
    rows = db.q("SELECT gw_uuid_v7('2022-02-22 19:22:22+00'), gw_uuid_v7('2022-02-22 19:22:22.0005+00'),"
                " gw_uuid_v7('2022-02-22 19:22:22+00')").split("|")
    check(rows[0].startswith("017f22e2-79b0-7000-") and rows[0][19] in "89ab", "v7: the RFC's instant", rows[0])
    check(rows[1].startswith("017f22e2-79b0-7800-"), "v7: half a millisecond is rand_a 0x800", rows[1])
    check(rows[0] != rows[2], "v7: the same instant, different random bits", rows)
    out = db.q("SELECT count(*) FILTER (WHERE id < lag), count(*) FROM ("
               " SELECT id, lag(id) OVER (ORDER BY g) FROM ("
               "  SELECT g, gw_uuid_v7(timestamptz '2030-01-01' + g * interval '1 microsecond') AS id"
               "  FROM generate_series(1, 5000) g) s) t WHERE lag IS NOT NULL")
    check(out == "0|4999", "v7: ids a microsecond apart sort in time order", out)
    now = db.q("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,"
               " gw_uuid_v7(), (extract(epoch FROM clock_timestamp()) * 1000)::bigint").split("|")
    ms = int(now[1].replace("-", "")[:12], 16)
    check(int(now[0]) - 1 <= ms <= int(now[2]) + 1 and now[1][14] == "7", "v7: now, by default", now)
    first = db.q("SELECT gw_uuid_v7('1970-01-01 00:00:00.0005+00')")
    check(first.startswith("00000000-0000-7800-"), "v7: the first millisecond of 1970", first)
    for bad in ("1969-12-31 23:59:59.9995+00", "1900-01-01+00", "10890-01-01+00"):
        err = db.error("SELECT gw_uuid_v7('%s')" % bad)
        check("outside what a version 7 UUID can hold" in err, "v7: %s is refused, not wrapped" % bad, err)


def main():
    if not ADMIN:
        print("skipped: GW_TEST_PG_DSN is not set")
        sys.exit(SKIP)
    db = DB()
    try:
        for name, fn in sorted(globals().items()):
            if name.startswith("test_") and callable(fn):
                print("--", name)
                fn(db)
    finally:
        db.drop()
    print("sql functions: all checks passed")


if __name__ == "__main__":
    main()
