#!/usr/bin/env python3
"""The CLI for the three kinds of users (docs/cli.md) against a real broker:

- a requester: `run --ttl 8h --justification ...` (bad TTLs and a too-long
  justification refused before or by the broker), `run --wait` saying whom it
  waits for, `rerun` (same action, inputs and TTL; refused while a secret
  input is not given again), `cancel --reason` on a running run keeps the
  reason, with the worker's kill detail beside it;
- an approver: `approvals` shows the TTL, what is still needed ("1 more from
  role manager") and the justification, which is also in the audit entry of
  the submission and in the approval webhook; `approve`/`reject` several runs
  at once, each reported, exit 1 when one was refused;
- an owner: `resources` list/show/extend/delete against /v1/resources."""
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Stack, check, main, write_action  # noqa: E402


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    check(False, what + " (timed out after %ss)" % timeout)


def test():
    s = Stack("clipeople")
    actions = os.path.join(s.tmp, "actions")
    # A lease that needs one manager's approval, with a TTL of 1h by default,
    # 5 days at most, 1 more day of extensions.
    write_action(actions, "lease", ["/bin/cat"],
                 {"type": "object", "required": ["name"],
                  "properties": {"name": {"type": "string"}}},
                 timeout_seconds=30, resource_key="/name", resource={"kind": "lease", "name": "/name"},
                 ttl={"default_seconds": 3600, "max_seconds": 5 * 86400,
                      "max_extension_seconds": 86400},
                 teardown={"backend": {"command": ["/bin/cat"]}},
                 approval={"rules": [{"approvals": 1, "from_roles": ["manager"]}],
                           "expires_after_seconds": 3600})
    # A lease whose extensions a manager approves.
    write_action(actions, "guarded", ["/bin/cat"],
                 {"type": "object", "required": ["name"],
                  "properties": {"name": {"type": "string"}}},
                 timeout_seconds=30, resource_key="/name", resource={"kind": "guarded", "name": "/name"},
                 ttl={"default_seconds": 3600, "max_seconds": 86400, "max_extension_seconds": 86400,
                      "extension_approval": {"approvals": 1, "from_roles": ["manager"]}},
                 teardown={"backend": {"command": ["/bin/cat"]}})
    write_action(actions, "secretive", ["/bin/cat"],
                 {"type": "object", "required": ["name", "password"],
                  "properties": {"name": {"type": "string"},
                                 "password": {"type": "string", "writeOnly": True}}},
                 timeout_seconds=30)
    sleepy = s.write_program("sleepy.sh", "#!/bin/sh\nsleep 300 &\nwait\n")
    write_action(actions, "sleepy", [sleepy], timeout_seconds=300)
    with open(os.path.join(actions, "sleepy.json")) as f:
        doc = json.load(f)
    doc["backend"]["kill_grace_seconds"] = 2
    with open(os.path.join(actions, "sleepy.json"), "w") as f:
        json.dump(doc, f)
    s.actions_dir = actions
    # The built-in policy, plus a manager role bound to mia and max.
    policy = os.path.join(s.tmp, "policy.json")
    with open(policy, "w") as f:
        json.dump({"version": 1,
                   "defaults": {"read_runs": "team", "cancel": "team", "manage_resources": "team"},
                   "roles": {"everyone": {"grants": [{"permissions": ["run", "decide_approvals"]}]},
                             "manager": {"grants": [{"permissions": ["decide_approvals"]}]}},
                   "bindings": [{"roles": ["everyone"], "subjects": ["*"]},
                                {"roles": ["manager"],
                                 "subjects": ["user:default/mia", "user:default/max"]}]}, f)
    s.broker_env = {"GW_POLICY_FILE": policy}

    with s:
        s.start_broker()
        s.start_worker(concurrency=3)
        bob = s.make_token("bob", teams=["payments"])
        mia = s.make_token("mia")
        max_ = s.make_token("max")

        def cli(token, *args, timeout=90):
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": s.tmp,
                   "XDG_CONFIG_HOME": os.path.join(s.tmp, "xdg"),
                   "GANGWAY_URL": s.url, "GANGWAY_TOKEN": token}
            for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
                if k in os.environ:
                    env[k] = os.environ[k]
            p = subprocess.run([GANGWAY] + list(args), capture_output=True, text=True, env=env,
                               input="", timeout=timeout)
            return p.returncode, p.stdout, p.stderr

        def nruns():
            return int(s.sql("SELECT count(*) FROM gw_runs"))

        # -- run --ttl / --justification ------------------------------------
        rc, out, err = cli(bob, "run", "lease", "-i", "name=alpha", "--ttl", "8h",
                           "--justification", "incident 42 needs a sandbox")
        check(rc == 0 and "pending_approval" in out and
              "(waiting for approval: 1 more from role manager)" in out,
              "run --ttl --justification: pending, and says whom it waits for", rc, out, err)
        alpha = out.split()[1]
        run = s.get("/v1/runs/" + alpha).json()
        check(run.get("ttl_seconds") == 8 * 3600 and
              run.get("justification") == "incident 42 needs a sandbox" and
              run["approval"]["remaining"] == 1 and run["approval"]["from_roles"] == ["manager"],
              "GET /v1/runs: the TTL (8h = 28800 s), the justification, 1 approval remaining", run)
        for form, secs in (("3600", 3600), ("90m", 5400), ("5d", 5 * 86400)):
            rc, out, err = cli(bob, "run", "lease", "-i", "name=t" + form, "--ttl", form, "--json")
            doc = json.loads(out) if rc == 0 else {}
            check(rc == 0 and doc.get("ttl_seconds") == secs, "--ttl %s is %d s" % (form, secs),
                  rc, out[:300], err)
        before = nruns()
        for bad in ("8x", "0", "h", "-5", "1.5h", "99999999999999d"):
            rc, out, err = cli(bob, "run", "lease", "-i", "name=bad", "--ttl", bad)
            check(rc == 2 and "--ttl wants a duration" in err and ("'%s'" % bad) in err,
                  "--ttl %s is refused before anything is sent" % bad, rc, err)
        rc, out, err = cli(bob, "run", "lease", "-i", "name=long", "--ttl", "6d")
        check(rc == 2 and "/ttl_seconds" in err and "validation_failed" in err,
              "a TTL past the action's maximum: the broker's 422 names /ttl_seconds", rc, err)
        rc, out, err = cli(bob, "run", "lease", "-i", "name=why", "--justification", "x" * 1001)
        check(rc == 2 and "/justification" in err and "longer than 1000" in err,
              "a justification over 1000 characters: 422 naming /justification", rc, err)
        rc, out, err = cli(bob, "run", "lease", "-i", "name=why", "--justification", "   ")
        check(rc == 2 and "/justification" in err, "a blank justification is refused", rc, err)
        r = s.post("/v1/actions/lease/runs", {"inputs": {"name": "n"}, "justification": 42})
        p = r.json() if r.status == 422 else {}
        check(r.status == 422 and p.get("code") == "validation_failed" and
              p["errors"][0]["pointer"] == "/justification",
              "the API: a justification that is not a string is a 422 at /justification",
              r.status, r.body)
        check(nruns() == before, "none of the refused requests made a run", nruns(), before)

        audit = s.sql("SELECT detail->>'justification' FROM gw_audit_log WHERE verb = 'run.submit'"
                      " AND object = 'run:%s'" % alpha)
        check(audit == "incident 42 needs a sandbox", "the justification is in run.submit's audit entry",
              audit)
        hook = json.loads(s.sql("SELECT payload FROM gw_webhooks WHERE kind = 'approval.requested'"
                                " AND payload->'run'->>'id' = '%s'" % alpha) or "{}")
        check('Justification: "incident 42 needs a sandbox"' in hook.get("text", "") and
              hook["run"].get("justification") == "incident 42 needs a sandbox",
              "the approval webhook carries the justification (text and run)", hook)

        # -- approvals: TTL, what is still needed, justification ----------------
        rc, out, err = cli(mia, "approvals")
        head = out.splitlines()[0] if out else ""
        row = [l for l in out.splitlines() if alpha in l]
        check(rc == 0 and "NEEDS" in head and "TTL" in head and "JUSTIFICATION" in head and row,
              "approvals: NEEDS, TTL and JUSTIFICATION columns", rc, out, err)
        check("1 more from role manager" in row[0] and " 8h " in row[0] and
              "incident 42 needs a sandbox" in row[0] and " 0/1 " in row[0],
              "the row: 0/1, 1 more from role manager, 8h, the justification", row[0])
        rc, out, err = cli(mia, "approvals", "--json")
        items = {x["id"]: x for x in json.loads(out)["items"]} if rc == 0 else {}
        check(alpha in items and items[alpha]["justification"] == "incident 42 needs a sandbox" and
              items[alpha]["approval"]["remaining"] == 1,
              "GET /v1/approvals: justification and approval.remaining", out[:500])
        rc, out, err = cli(bob, "run", "lease", "-i", "name=dflt", "--json")
        dflt = json.loads(out)["id"] if rc == 0 else ""
        rc, out, err = cli(mia, "approvals")
        row = [l for l in out.splitlines() if dflt in l]
        check(row and "1h (default)" in row[0], "no --ttl: the action's default, said so", out)

        # -- run --wait says whom it waits for; approve several -----------------
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": s.tmp,
               "XDG_CONFIG_HOME": os.path.join(s.tmp, "xdg"), "GANGWAY_URL": s.url,
               "GANGWAY_TOKEN": bob}
        waiter = subprocess.Popen([GANGWAY, "run", "lease", "-i", "name=waited", "--wait"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            first = waiter.stdout.readline()
            second = waiter.stdout.readline()
            check("pending_approval, waiting..." in first and
                  second.strip() == "waiting for approval: 1 more from role manager",
                  "run --wait says whom it waits for", first, second)
            waited = first.split()[1]
            bogus = str(uuid.uuid4())
            rc, out, err = cli(mia, "approve", waited, bogus, dflt, "-m", "fine")
            check(rc == 1 and ("run %s queued" % waited) in out and ("run %s queued" % dflt) in out
                  and ("run %s: no run with id" % bogus) in err and "2 of 3 approvals; 1 refused" in out,
                  "approve RUN RUN RUN: each reported, exit 1 because one was refused", rc, out, err)
            rest, errs = waiter.communicate(timeout=90)
            check(waiter.returncode == 0 and ("run %s succeeded" % waited) in rest,
                  "the waiting run then succeeds", waiter.returncode, rest, errs)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait()
        rc, out, err = cli(max_, "approve", alpha, "--json")
        check(rc == 0 and json.loads(out)["status"] == "queued", "one run: the document as before",
              rc, out[:200], err)
        rc, out, err = cli(bob, "run", "lease", "-i", "name=r1")
        r1 = out.split()[1]
        rc, out, err = cli(bob, "run", "lease", "-i", "name=r2")
        r2 = out.split()[1]
        rc, out, err = cli(max_, "reject", r1, r2, "-m", "not now")
        check(rc == 0 and ("run %s rejected" % r1) in out and ("run %s rejected" % r2) in out and
              "2 of 2 rejections; 0 refused" in out, "reject RUN RUN: both rejected, exit 0",
              rc, out, err)
        rc, out, err = cli(max_, "approve", r1, alpha)
        check(rc == 1 and "not_pending_approval" in err and ("run %s:" % r1) in err,
              "approving runs no longer pending: refused per run, exit 1", rc, out, err)
        rc, out, err = cli(max_, "approve")
        check(rc == 2 and "which run?" in err, "approve without a run is a usage error", rc, err)

        # -- resources -----------------------------------------------------------
        done = s.wait_run(alpha)
        check(done["status"] == "succeeded" and done.get("resource"), "alpha made its resource", done)
        res_id = done["resource"]
        rc, out, err = cli(bob, "resources")
        row = [l for l in out.splitlines() if res_id in l]
        check(rc == 0 and out.startswith("ID ") and row and " lease " in row[0] and
              " alpha " in row[0] and " active " in row[0] and
              ("(in 7h59m)" in row[0] or "(in 8h00m)" in row[0]),
              "resources: the table, with the expiry in 8 hours", rc, out, err)
        rc, out, err = cli(bob, "resources", "list", "--kind", "nope", "--json")
        check(rc == 0 and json.loads(out)["items"] == [], "list --kind filters (API's kind)", rc, out)
        rc, out, err = cli(bob, "resources", "list", "--expiring-within", "2h")
        check(rc == 0 and res_id not in out, "--expiring-within 2h: not this one", rc, out)
        rc, out, err = cli(bob, "resources", "list", "--expiring-within", "9h", "--status", "active")
        check(rc == 0 and res_id in out, "--expiring-within 9h: this one", rc, out)
        rc, out, err = cli(bob, "resources", "list", "--status", "bogus")
        check(rc == 2 and "status" in err, "a bad --status is the API's 400", rc, err)
        rc, out, err = cli(bob, "resources", "show", res_id)
        check(rc == 0 and "name      alpha" in out and "created_by_run" not in out and
              ("by run %s" % alpha) in out and "expires   " in out,
              "resources show: the resource for people", rc, out, err)
        old_exp = s.get("/v1/resources/" + res_id).json()["expires_at"]
        rc, out, err = cli(bob, "resources", "extend", res_id, "--ttl", "2h")
        new_exp = s.get("/v1/resources/" + res_id).json()["expires_at"]
        check(rc == 0 and "extended" in out and new_exp > old_exp,
              "resources extend --ttl 2h moves the expiry", rc, out, err, old_exp, new_exp)
        ext = json.loads(s.sql("SELECT detail FROM gw_audit_log WHERE verb = 'resource.extend'"
                               " AND object = 'resource:%s'" % res_id) or "{}")
        check(ext.get("by_seconds") == 7200 and "justification" not in ext,
              "its audit entry: by 7200 s, no justification given", ext)
        rc, out, err = cli(bob, "resources", "extend", res_id, "--ttl", "1h", "--justification",
                           "demo on friday")
        ext = s.sql("SELECT detail->>'justification' FROM gw_audit_log WHERE verb ="
                    " 'resource.extend' AND object = 'resource:%s' ORDER BY id DESC LIMIT 1" % res_id)
        check(rc == 0 and ext == "demo on friday", "extend --justification: in the audit entry",
              rc, out, err, ext)
        rc, out, err = cli(bob, "resources", "extend", res_id, "--ttl", "1h", "--justification",
                           "y" * 1001)
        check(rc == 2 and "/justification" in err, "extend: a justification too long is a 422",
              rc, err)
        rc, out, err = cli(bob, "resources", "extend", res_id, "--ttl", "soon")
        check(rc == 2 and "--ttl wants a duration" in err, "extend with a bad duration: 2", rc, err)
        rc, out, err = cli(bob, "resources", "extend", res_id)
        check(rc == 2 and "how much longer" in err, "extend without --ttl: 2", rc, err)
        rc, out, err = cli(bob, "resources", "extend", res_id, "--ttl", "30d")
        check(rc == 2 and "extension_over_limit" in err, "past the maximum lifetime: refused", rc, err)
        rc, out, err = cli(bob, "resources", "show", str(uuid.uuid4()))
        check(rc == 1 and "no resource" in err, "an unknown resource exits 1", rc, err)
        rc, out, err = cli(bob, "resources", "frob")
        check(rc == 2 and "unknown subcommand" in err, "an unknown subcommand exits 2", rc, err)
        rc, out, err = cli(bob, "resources", "delete", res_id)
        check(rc == 0 and "tearing_down" in out and "teardown run" in out,
              "resources delete starts the teardown", rc, out, err)
        wait_for("the resource is deleted",
                 lambda: s.get("/v1/resources/" + res_id).json()["status"] == "deleted")
        rc, out, err = cli(bob, "resources", "delete", res_id)
        check(rc == 1 and "resource_not_active" in err, "deleting it again exits 1", rc, err)
        td = s.sql("SELECT id FROM gw_runs WHERE resource_id = '%s' AND operation = 'teardown'" % res_id)
        before_td = s.sql("SELECT count(*) FROM gw_runs")
        rc, out, err = cli(bob, "rerun", td)
        check(rc == 1 and "is the teardown of resource" in err and "resources delete" in err
              and s.sql("SELECT count(*) FROM gw_runs") == before_td,
              "rerun of a teardown run: refused, pointing to resources delete, nothing started", rc, err)

        # An extension that waits for a manager: its justification is shown.
        rc, out, err = cli(bob, "run", "guarded", "-i", "name=g1", "--wait")
        gres = s.get("/v1/runs/" + out.split()[1]).json().get("resource", "") if rc == 0 else ""
        check(rc == 0 and gres, "a guarded lease", rc, out, err)
        rc, out, err = cli(bob, "resources", "extend", gres, "--ttl", "2h", "--justification",
                           "load test runs late")
        check(rc == 0 and "waits for approval (1 more from role manager)" in out,
              "an extension that needs approval says whom it waits for", rc, out, err)
        rc, out, err = cli(bob, "resources", "show", gres)
        check(rc == 0 and "justification: load test runs late" in out,
              "resources show: the pending extension and its justification", rc, out, err)
        hook = s.sql("SELECT payload->>'text' FROM gw_webhooks WHERE kind = 'extension.requested'")
        check('Justification: "load test runs late"' in hook,
              "the approvers' webhook quotes the justification", hook)
        r = s.post("/v1/resources/%s/extension/decisions" % gres, {"decision": "approve"}, token=mia)
        ext = s.sql("SELECT detail->>'justification' FROM gw_audit_log WHERE verb ="
                    " 'resource.extend' AND object = 'resource:%s'" % gres)
        check(r.status == 200 and ext == "load test runs late",
              "approved: applied, its audit entry carries the justification", r.status, r.body, ext)

        # -- rerun ------------------------------------------------------------------
        rc, out, err = cli(bob, "run", "secretive", "-i", "name=x", "-i", "password=hunter2",
                           "--wait")
        check(rc == 0 and "succeeded" in out, "a run with a secret input", rc, out, err)
        sec = out.split()[1]
        before = nruns()
        rc, out, err = cli(bob, "rerun", sec)
        check(rc == 2 and "/password" in err and
              "give them again (-i password=..., or -f FILE)" in err and nruns() == before,
              "rerun without the secret again: refused, naming /password, nothing started",
              rc, out, err)
        rc, out, err = cli(bob, "rerun", sec, "-i", "password=again", "--wait", "--json")
        new = json.loads(out) if rc == 0 else {}
        check(rc == 0 and new.get("id") not in (None, sec) and new["status"] == "succeeded" and
              new["action"]["id"] == "secretive" and
              new["inputs"] == {"name": "x", "password": "[redacted]"},
              "rerun -i password=...: a new run of the same action with the same inputs",
              rc, out[:400], err)
        rc, out, err = cli(bob, "rerun", waited, "--json")
        again = json.loads(out) if rc == 0 else {}
        first_run = s.get("/v1/runs/" + waited).json()
        check(rc == 0 and again["id"] != waited and again["inputs"] == first_run["inputs"] and
              again["status"] == "pending_approval",
              "rerun of a lease: new run, same inputs, waiting for approval again", rc, out[:300], err)
        rc, out, err = cli(bob, "rerun", alpha, "--json")
        again = json.loads(out) if rc == 0 else {}
        check(rc == 0 and again.get("ttl_seconds") == 8 * 3600 and "justification" not in again,
              "rerun keeps the TTL asked for, not the justification", rc, out[:300], err)
        rc, out, err = cli(bob, "rerun", str(uuid.uuid4()))
        check(rc == 1 and "no run with id" in err, "rerun of an unknown run exits 1", rc, err)

        # -- cancel --reason on a running run ----------------------------------------
        rc, out, err = cli(bob, "run", "sleepy")
        sl = out.split()[1]
        s.wait_run(sl, until={"running"})
        time.sleep(0.5)
        rc, out, err = cli(bob, "cancel", sl, "--reason", "wrong branch")
        check(rc == 0 and "cancel requested" in out, "cancel --reason of a running run", rc, out, err)
        end = s.wait_run(sl, timeout=60)
        check(end["status"] == "cancelled" and end.get("reason") == "wrong branch" and
              end.get("cancel_reason") == "wrong branch" and
              end.get("cancel_detail") == "cancelled; process group killed",
              "the run ends with the canceller's reason, the kill detail beside it", end)
        ev = s.sql("SELECT reason FROM gw_run_events WHERE run_id = '%s' AND to_status = 'cancelled'"
                   % sl)
        check(ev == "wrong branch", "its last event carries the reason", ev)
        detail = json.loads(s.sql("SELECT detail FROM gw_audit_log WHERE verb = 'run.cancelled'"
                                  " AND object = 'run:%s'" % sl))
        check(detail.get("reason") == "wrong branch" and
              detail.get("detail") == "cancelled; process group killed",
              "and so does its audit entry, with the detail", detail)
        rc, out, err = cli(bob, "run", "sleepy")
        sl2 = out.split()[1]
        s.wait_run(sl2, until={"running"})
        time.sleep(0.5)
        rc, out, err = cli(bob, "cancel", sl2)
        end = s.wait_run(sl2, timeout=60)
        check(end["status"] == "cancelled" and end.get("reason") == "cancelled by user:default/bob",
              "without --reason: 'cancelled by user:default/bob'", end)


if __name__ == "__main__":
    main(test)
