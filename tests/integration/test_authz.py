#!/usr/bin/env python3
"""Authorization end to end (docs/policy.md): a policy file with roles bound
to teams, an input-scoped grant (deploy to dev yes, prod no), and a matrix of
every run/resource endpoint x caller (admin, developer of team A, teammate,
developer of team B, no binding, SRE reading everything, worker token) x
object (own run, teammate's run, other team's run) checking status codes and
list contents: nothing the caller may not see leaks, not even its existence.
Then SIGHUP reloads the policy under load without dropping a request, and a
bad file leaves the old policy in force."""
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main, write_action  # noqa: E402

CREATE = r'''#!/usr/bin/env python3
import json, os, sys
inputs = json.load(sys.stdin)
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"name": inputs.get("name", "x")}, f)
print("done", flush=True)
'''

POLICY = {
    "version": 1,
    "defaults": {"read_runs": "team", "cancel": "team", "manage_resources": "team"},
    "roles": {
        "developer": {"grants": [
            {"permissions": ["run"], "tags": ["self-service"]},
            {"permissions": ["run"], "actions": ["deploy"],
             "inputs": {"environment": ["dev", "staging"]}},
        ]},
        "sre": {"grants": [
            {"permissions": ["run"], "actions": ["*"]},
            {"permissions": ["read_runs"], "scope": "all"},
            {"permissions": ["read_audit"]},
        ]},
    },
    "bindings": [
        {"roles": ["developer"], "teams": ["team-a", "team-b"]},
        {"roles": ["sre"], "teams": ["sre"]},
    ],
}

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def write_policy(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    os.replace(tmp, path)


def full_log(s):
    with open(os.path.join(s.tmp, "broker.log")) as f:
        return f.read()


# The operations a worker token may call (AUTH_WORKER routes in broker/router.c).
WORKER_OPS = {"claimRun", "claimRuns", "heartbeatRun"}


def test():
    s = Stack("authz")
    actions = os.path.join(s.tmp, "actions")
    prog = s.write_program("create.py", CREATE)
    name_schema = {"type": "object", "required": ["name"], "additionalProperties": False,
                   "properties": {"name": {"type": "string", "pattern": "^[a-z0-9-]+$"}}}
    write_action(actions, "devenv", [prog], name_schema, tags=["self-service"],
                 resource_key="/name", resource={"kind": "devenv", "name": "/name"},
                 ttl={"default_seconds": 3600, "max_seconds": 7200, "max_extension_seconds": 3600},
                 teardown={"backend": {"command": [prog]}})
    write_action(actions, "deploy", [prog],
                 {"type": "object", "additionalProperties": False,
                  "properties": {"environment": {"enum": ["dev", "staging", "prod"],
                                                 "default": "prod"}}})
    write_action(actions, "db-reset", [prog], {"type": "object"}, tags=["dangerous"])
    s.actions_dir = actions
    policy = os.path.join(s.tmp, "policy.json")
    write_policy(policy, POLICY)
    s.broker_args = ["--policy", policy]

    tok = {
        "admin": s.make_token("root", roles=["admin"]),
        "ana": s.make_token("user:default/ana", teams=["team-a"]),
        "abe": s.make_token("user:default/abe", teams=["team-a"]),
        "bob": s.make_token("user:default/bob", teams=["team-b"]),
        "nil": s.make_token("user:default/nil"),
        "sue": s.make_token("user:default/sue", teams=["sre"]),
        "worker": s.worker_token,
    }
    with s:
        s.start_broker()
        s.start_worker(concurrency=4)
        check("policy: loaded %s" % policy in full_log(s), "the broker logs the policy it loaded")

        def as_(who, method, path, body=None, raw=None):
            return s.request(method, path, body=body, raw=raw, token=tok[who])

        # -- submit: run permission, tags, input-scoped grant ---------------
        def submit(who, action, inputs, expect=202):
            r = as_(who, "POST", "/v1/actions/%s/runs" % action, {"inputs": inputs})
            check(r.status == expect, "%s submits %s %s -> %d" % (who, action, inputs, expect),
                  r.status, r.body)
            return r

        run_a = s.wait_run(submit("ana", "devenv", {"name": "ana-env"}).json()["id"])
        run_a2 = s.wait_run(submit("abe", "devenv", {"name": "abe-env"}).json()["id"])
        run_b = s.wait_run(submit("bob", "devenv", {"name": "bob-env"}).json()["id"])
        for run in (run_a, run_a2, run_b):
            check(run["status"] == "succeeded", "the devenv run succeeds", run)
        dep_dev = submit("ana", "deploy", {"environment": "dev"}).json()
        check(dep_dev["requested_by"] == {"subject": "user:default/ana", "teams": ["team-a"]},
              "the run records who asked and for which teams", dep_dev["requested_by"])
        r = submit("ana", "deploy", {"environment": "prod"}, expect=403)
        p = r.json()
        check(p["code"] == "forbidden" and r.headers["content-type"].startswith("application/problem+json"),
              "a forbidden submit is problem+json code forbidden", p)
        check("'run'" in p["detail"] and "'deploy'" in p["detail"] and "environment" in p["detail"],
              "the detail names the permission, the action and the input", p["detail"])
        r = submit("ana", "deploy", {}, expect=403)
        check("prod" in r.json()["detail"], "an omitted input is judged by its default (prod)",
              r.json()["detail"])
        submit("ana", "db-reset", {}, expect=403)
        submit("nil", "devenv", {"name": "nil-env"}, expect=403)
        submit("worker", "devenv", {"name": "w-env"}, expect=403)
        submit("sue", "deploy", {"environment": "prod"})
        submit("admin", "db-reset", {})
        n = s.sql("SELECT count(*) FROM gw_runs WHERE requested_by IN ('user:default/nil', 'user:default/worker-pool')"
                  " OR (action_id = 'deploy' AND requested_by = 'user:default/ana' AND"
                  " inputs->>'environment' = 'prod')")
        check(n == "0", "refused submissions stored nothing", n)

        # -- the action list ----------------------------------------------
        def action_ids(who):
            r = as_(who, "GET", "/v1/actions")
            check(r.status == 200, "GET /v1/actions as %s is 200" % who, r.status)
            return sorted(a["id"] for a in r.json()["items"])

        check(action_ids("ana") == ["deploy", "devenv"], "a developer sees what it may run",
              action_ids("ana"))
        check(action_ids("nil") == [], "a caller without a binding sees no action")
        check(action_ids("sue") == ["db-reset", "deploy", "devenv"], "sre sees every action")
        check(action_ids("admin") == ["db-reset", "deploy", "devenv"], "admin sees every action")
        check(as_("worker", "GET", "/v1/actions").status == 403, "a worker token may not list actions")

        # -- the matrix ------------------------------------------------------
        res_of = {}
        for run in (run_a, run_a2, run_b):
            res_of[run["id"]] = s.sql("SELECT resource_id FROM gw_runs WHERE id = '%s'" % run["id"])
        own, mate, other = run_a["id"], run_a2["id"], run_b["id"]
        # What each caller may see / change, for ana's run, abe's run and bob's run.
        # V = visible, C = may change (cancel/extend/delete); absent = 404.
        expect = {
            "admin": {own: "VC", mate: "VC", other: "VC"},
            "ana": {own: "VC", mate: "VC", other: ""},
            "abe": {own: "VC", mate: "VC", other: ""},
            "bob": {own: "", mate: "", other: "VC"},
            "nil": {own: "", mate: "", other: ""},
            "sue": {own: "V", mate: "V", other: "V"},
        }
        unknown_run = s.get("/v1/runs/" + UNKNOWN)
        for who, objs in expect.items():
            for rid, rights in objs.items():
                res = res_of[rid]
                label = "%s on %s's run" % (who, {own: "ana", mate: "abe", other: "bob"}[rid])
                reads = [("GET", "/v1/runs/" + rid), ("GET", "/v1/runs/%s/events" % rid),
                         ("GET", "/v1/runs/%s/logs" % rid), ("GET", "/v1/resources/" + res)]
                for method, path in reads:
                    r = as_(who, method, path)
                    if "V" in rights:
                        check(r.status == 200, "%s: %s %s is 200" % (label, method, path), r.status, r.body)
                    else:
                        check(r.status == 404, "%s: %s %s is 404" % (label, method, path), r.status, r.body)
                        body = r.json()
                        check(body["code"] in ("run_not_found", "resource_not_found"),
                              "%s: the 404 is the plain not-found" % label, body)
                        if "/runs/" in path and path.count("/") == 3:
                            check(body["detail"].replace(rid, UNKNOWN) == unknown_run.json()["detail"],
                                  "%s: indistinguishable from an unknown id" % label, body)
                changes = [("POST", "/v1/runs/%s/cancel" % rid, {"reason": "matrix"}),
                           ("POST", "/v1/resources/%s/extend" % res, {"seconds": 60})]
                for method, path, body in changes:
                    r = as_(who, method, path, body)
                    if "C" in rights:
                        # The run already ended: 409 says the request was allowed.
                        check(r.status in (200, 202, 409), "%s: %s %s is allowed" % (label, method, path),
                              r.status, r.body)
                    elif "V" in rights:
                        check(r.status == 403 and r.json()["code"] == "forbidden",
                              "%s: %s %s is 403 (seen, not changeable)" % (label, method, path),
                              r.status, r.body)
                    else:
                        check(r.status == 404, "%s: %s %s is 404" % (label, method, path), r.status, r.body)
        # A worker token may claim and nothing else: every authenticated
        # operation of the API document but the claim is 403 for it, on real
        # objects (one rule in the router, before any handler).
        with open(os.path.join(SRC, "schemas", "openapi.json")) as f:
            doc = json.load(f)
        swept = 0
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                # Unauthenticated, or signed otherwise (incoming hooks: HMAC),
                # or one of the worker's own routes (AUTH_WORKER in router.c).
                security = op.get("security")
                if security is not None and not any("bearer" in s_ for s_ in security):
                    continue
                if op["operationId"] in WORKER_OPS:
                    continue
                obj = (res_of[own] if path.startswith("/v1/resources/") else
                       "devenv" if path.startswith("/v1/actions/") else own)
                body = {} if "requestBody" in op else None
                r = as_("worker", method.upper(), path.replace("{id}", obj), body)
                check(r.status == 403 and r.json()["code"] == "forbidden",
                      "worker token: %s %s is 403" % (method.upper(), path), r.status, r.body)
                swept += 1
        check(swept >= 19, "the sweep covered every authenticated operation", swept)
        check(s.get("/healthz", auth=False).status == 200, "the unauthenticated endpoints still answer")
        check(s.get("/v1/resources/" + res_of[own]).json()["status"] == "active"
              and s.get("/v1/runs/" + own).json()["status"] == "succeeded",
              "the worker token's requests changed nothing")
        r = as_("ana", "POST", "/internal/v1/runs/%s/claim" % own, {"attempt": 1, "worker_id": "x"})
        check(r.status == 403, "a user token may not claim", r.status)
        r = as_("worker", "POST", "/internal/v1/runs/%s/claim" % UNKNOWN, {"attempt": 1, "worker_id": "x"})
        check(r.status == 404, "the worker token may claim (unknown run: 404)", r.status)

        # Lists contain exactly what may be seen.
        all_runs = set(s.sql("SELECT string_agg(id::text, ' ') FROM gw_runs").split())
        by = {}
        for row in s.sql("SELECT id, requested_by, array_to_string(requested_teams, ',') FROM gw_runs").splitlines():
            rid, subj, teams = row.split("|")
            by[rid] = (subj, set(t for t in teams.split(",") if t))

        def visible_runs(subject, teams, see_all=False):
            return {rid for rid, (subj, t) in by.items() if see_all or subj == subject or t & teams}

        expected_lists = {
            "admin": all_runs,
            "ana": visible_runs("user:default/ana", {"team-a"}),
            "abe": visible_runs("user:default/abe", {"team-a"}),
            "bob": visible_runs("user:default/bob", {"team-b"}),
            "nil": set(),
            "sue": all_runs,
        }
        for who, want in expected_lists.items():
            got, cursor = [], None
            while True:
                r = as_(who, "GET", "/v1/runs?limit=2" + ("&cursor=" + cursor if cursor else ""))
                check(r.status == 200, "%s lists runs" % who, r.status)
                got += [x["id"] for x in r.json()["items"]]
                cursor = r.json()["next_cursor"]
                if not cursor:
                    break
            check(sorted(got) == sorted(want), "GET /v1/runs as %s lists exactly the runs it may see (%d)"
                  % (who, len(want)), sorted(got), sorted(want))
            # One resource per page, following next_cursor: keyset pagination on resources too.
            res_ids, rcursor = [], None
            for _ in range(20):
                page = as_(who, "GET", "/v1/resources?limit=1" + ("&cursor=" + rcursor if rcursor else "")).json()
                check(len(page["items"]) <= 1, "a page of GET /v1/resources holds at most 'limit' items")
                res_ids += [x["id"] for x in page["items"]]
                rcursor = page["next_cursor"]
                if not rcursor:
                    break
            res_ids.sort()
            want_res = sorted(res_of[rid] for rid in (own, mate, other) if rid in want)
            check(res_ids == want_res, "GET /v1/resources as %s lists exactly its resources" % who,
                  res_ids, want_res)
        check(len(expected_lists["ana"]) >= 3 and other not in expected_lists["ana"],
              "the list check is not vacuous")
        r = as_("bob", "GET", "/v1/runs?action=devenv&status=succeeded")
        check([x["id"] for x in r.json()["items"]] == [other], "filters combine with the scope",
              r.body)

        # Changes by those allowed actually happened; forbidden ones did not.
        cancel_by = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb LIKE 'run.cancel%%' AND"
                          " actor IN ('user:default/sue', 'user:default/bob', 'user:default/nil')"
                          " AND object IN ('run:%s', 'run:%s')" % (own, mate))
        check(cancel_by == "0", "no forbidden cancel reached the database", cancel_by)
        r = as_("bob", "DELETE", "/v1/resources/" + res_of[own])
        check(r.status == 404, "another team's resource cannot be deleted (404)", r.status)
        r = as_("sue", "DELETE", "/v1/resources/" + res_of[own])
        check(r.status == 403, "a reader cannot delete (403)", r.status)
        check(s.get("/v1/resources/" + res_of[own]).json()["status"] == "active",
              "the resource is still active")
        r = as_("abe", "DELETE", "/v1/resources/" + res_of[own])
        check(r.status == 202, "a teammate may tear it down", r.status, r.body)
        # A queued run of ana's, cancelled by her teammate.
        s.stop(s.workers[0])
        q = submit("ana", "deploy", {"environment": "staging"}).json()
        r = as_("bob", "POST", "/v1/runs/%s/cancel" % q["id"], {})
        check(r.status == 404, "bob cannot cancel ana's queued run", r.status)
        check(s.get("/v1/runs/" + q["id"]).json()["status"] == "queued", "which stays queued")
        r = as_("abe", "POST", "/v1/runs/%s/cancel" % q["id"], {"reason": "teammate"})
        check(r.status == 200 and r.json()["status"] == "cancelled", "abe cancels it", r.status, r.body)

        # -- server-owned fields cannot be set through any body --------------
        owned = {"requested_by": "root", "status": "succeeded", "approvals": [], "id": UNKNOWN,
                 "ttl_max_seconds": 999999, "teams": ["sre"]}
        for field, value in owned.items():
            for method, path, base in [("POST", "/v1/actions/devenv/runs", {"inputs": {"name": "zz"}}),
                                       ("POST", "/v1/runs/%s/cancel" % own, {}),
                                       ("POST", "/v1/resources/%s/extend" % res_of[mate], {"seconds": 1}),
                                       ("POST", "/internal/v1/runs/%s/claim" % UNKNOWN,
                                        {"attempt": 1, "worker_id": "w"})]:
                body = dict(base)
                body[field] = value
                who = "worker" if "claim" in path else "admin"
                r = as_(who, method, path, body)
                check(r.status in (400, 422), "%s %s refuses a body with '%s'" % (method, path, field),
                      r.status, r.body)
        check(s.sql("SELECT count(*) FROM gw_runs WHERE inputs->>'name' = 'zz'") == "0",
              "no run was created by those bodies")

        # -- /v1/me --------------------------------------------------------
        me = as_("ana", "GET", "/v1/me").json()
        check(me["subject"] == "user:default/ana" and me["teams"] == ["team-a"]
              and me["roles"] == ["developer"], "/v1/me: identity and roles", me)
        check(me["actions"]["deploy"]["run"] == {"when_inputs": [{"environment": ["dev", "staging"]}]},
              "/v1/me: deploy only for dev and staging", me["actions"]["deploy"])
        check(me["actions"]["devenv"]["run"] == {} and "run" not in me["actions"]["db-reset"],
              "/v1/me: devenv outright, db-reset not at all", me["actions"])
        check(me["actions"]["devenv"]["read_runs"] == {"scope": "team"}, "/v1/me: read scope team")
        me = as_("sue", "GET", "/v1/me").json()
        check(me["actions"]["devenv"]["read_runs"] == {"scope": "all"} and "read_audit" in me["permissions"],
              "/v1/me: sre reads all and the audit", me)
        me = as_("admin", "GET", "/v1/me").json()
        check("admin" in me["roles"] and "admin" in me["permissions"], "/v1/me: admin", me)
        check(me["policy"] == policy, "/v1/me names the policy in force", me["policy"])

        # -- reload on SIGHUP, under load, without dropping a request -------
        stop = threading.Event()
        errors, done = [], [0]

        def hammer():
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
            while not stop.is_set():
                try:
                    c.request("GET", "/v1/me", headers={"Authorization": "Bearer " + tok["ana"]})
                    resp = c.getresponse()
                    resp.read()
                    if resp.status != 200:
                        errors.append(resp.status)
                    done[0] += 1
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    errors.append(repr(e))
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
            c.close()

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        # A request in flight across the reload: headers sent, body not yet.
        body = json.dumps({"inputs": {"environment": "prod"}})
        half = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        half.sendall(("POST /v1/actions/deploy/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % (tok["ana"], len(body))).encode())
        new = json.loads(json.dumps(POLICY))
        new["roles"]["developer"]["grants"][1]["inputs"]["environment"].append("prod")
        write_policy(policy, new)
        before = full_log(s).count("policy: reloaded")
        s.broker.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while full_log(s).count("policy: reloaded") == before and time.time() < deadline:
            time.sleep(0.05)
        check(full_log(s).count("policy: reloaded") == before + 1, "SIGHUP reloads the file")
        half.sendall(body.encode())
        status = half.recv(4096).split(b"\r\n", 1)[0].decode()
        half.close()
        check(status.startswith("HTTP/1.1 202"), "the request in flight across the reload is answered "
              "(under the new policy: prod allowed)", status)
        submit("ana", "deploy", {"environment": "prod"})
        # A bad file: refused, logged, old policy kept.
        write_policy(policy, '{"roles": {"developer": {"grants": [{"permissions": ["runn"]}]}}, "bindings": []}')
        s.broker.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "reload refused" not in full_log(s) and time.time() < deadline:
            time.sleep(0.05)
        log = full_log(s)
        check("reload refused" in log and "unknown permission 'runn'" in log,
              "a bad file is refused and the log says why")
        submit("ana", "deploy", {"environment": "prod"})
        write_policy(policy, POLICY)
        s.broker.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while full_log(s).count("policy: reloaded") < before + 2 and time.time() < deadline:
            time.sleep(0.05)
        submit("ana", "deploy", {"environment": "prod"}, expect=403)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(15)
        check(not errors and done[0] > 20, "no request failed across three reloads (%d served)" % done[0],
              errors[:5])
        check(s.broker.poll() is None, "the broker is still running")


if __name__ == "__main__":
    main(test)
