#!/usr/bin/env python3
"""The action catalog reloads without a restart (issue 12), and says loudly
when no worker consumes a type.

Reload through POST /v1/admin/actions/reload (admin only), through SIGHUP,
and on a second replica through the NOTIFY the first sends; a bad file
(YAML syntax, then a schema error) is refused with 422 naming file, line and
pointer, and the old catalog stays in force; a run accepted before a reload
keeps the definition it was accepted with (its command and its approval
rule). GET /v1/actions says whether a worker of each action's type was seen
(claimed a run recently), and a run waiting for a type no worker has claimed
carries a no_worker warning in the 202 body and in GET /v1/runs/{id}.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Stack, check, free_port, main, write_action  # noqa: E402

PROG = '''#!/bin/sh
cat >/dev/null
echo "this is %s"
'''


def poll(what, fn, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def log_lines(s, run_id):
    r = s.get("/v1/runs/%s/logs" % run_id)
    check(r.status == 200, "logs of " + run_id, r.status, r.body)
    return [x["line"] for x in r.json()["items"]]


def actions_by_id(s, **kw):
    r = s.get("/v1/actions", **kw)
    check(r.status == 200, "GET /v1/actions", r.status, r.body)
    return {a["id"]: a for a in r.json()["items"]}


def metric(s, name):
    body = s.get("/metrics", auth=False).body.decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def test():
    s = Stack("reload", broker_args=["--heartbeat", "1"])
    actions = os.path.join(s.tmp, "actions")
    v1 = s.write_program("v1.sh", PROG % "v1")
    v2 = s.write_program("v2.sh", PROG % "v2")
    write_action(actions, "echoer", [v1], timeout_seconds=30)
    gated = {"rules": [{"approvals": 1, "from_teams": ["sre"]}], "expires_after_seconds": 3600}
    write_action(actions, "gated", ["/bin/cat"], timeout_seconds=30, approval=gated)
    s.actions_dir = actions
    with s:
        s.start_broker()
        bob, carol = s.make_tokens("bob:payments", "carol:sre")

        # No worker yet: seen=false, and a run says so loudly.
        acts = actions_by_id(s)
        check(acts["echoer"]["workers"]["seen"] is False and
              acts["echoer"]["workers"]["last_seen_at"] is None,
              "no worker of type exec seen yet", acts["echoer"])
        one = s.get("/v1/actions/echoer")
        check(one.status == 200 and one.json()["workers"]["seen"] is False,
              "GET /v1/actions/{id} says so too", one.body)
        r = s.submit("echoer", {}, token=bob)
        check(r.status == 202, "echoer v1 accepted", r.status, r.body)
        old_run = r.json()
        warns = old_run.get("warnings") or []
        check(len(warns) == 1 and warns[0]["code"] == "no_worker" and
              warns[0]["worker_type"] == "exec" and "exec" in warns[0]["message"],
              "the 202 body warns that no worker consumes exec", r.body)
        got = s.get("/v1/runs/" + old_run["id"]).json()
        check(got["status"] == "queued" and got["warnings"][0]["code"] == "no_worker",
              "GET /v1/runs/{id} warns while it is queued", got)
        poll("the warning in the broker log",
             lambda: "run accepted with warning no_worker" in s.log("broker"))

        # A run waiting for one approval from sre, under the old rule.
        r = s.submit("gated", {}, token=bob)
        check(r.status == 202 and r.json()["status"] == "pending_approval",
              "gated waits for approval", r.body)
        pending = r.json()

        # The new catalog: echoer runs v2, gated needs no approval, two new
        # actions (one of a worker type nothing serves).
        write_action(actions, "echoer", [v2], timeout_seconds=30)
        write_action(actions, "gated", ["/bin/cat"], timeout_seconds=30,
                     approval={"rules": [{"approvals": 0}]})
        write_action(actions, "fresh", ["/bin/cat"], timeout_seconds=30)
        write_action(actions, "lonely", None, timeout_seconds=30, worker_type="lonely")
        check(s.get("/v1/actions/fresh").status == 404, "fresh is not there before the reload")

        r = s.post("/v1/admin/actions/reload", token=bob)
        check(r.status == 403 and r.json()["code"] == "forbidden",
              "a non-admin may not reload", r.status, r.body)
        check(s.get("/v1/actions/fresh").status == 404, "the refused reload changed nothing")
        r = s.post("/v1/admin/actions/reload", {"force": True})
        check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/force",
              "an unknown body field is refused", r.status, r.body)

        r = s.post("/v1/admin/actions/reload")
        check(r.status == 200, "the admin reloads", r.status, r.body)
        body = r.json()
        check(sorted(body["added"]) == ["fresh", "lonely"] and
              sorted(body["changed"]) == ["echoer", "gated"] and body["removed"] == [] and
              body["actions"] == 4 and body["replicas_notified"] is True,
              "the answer says what changed", body)
        check(s.get("/v1/actions/fresh").status == 200, "the new action is served")
        check(s.get("/v1/actions/echoer").json()["version"] != old_run["action"]["version"],
              "echoer has a new version")

        # The accepted run keeps its approval rule; a new one gets the new rule.
        got = s.get("/v1/runs/" + pending["id"]).json()
        check(got["status"] == "pending_approval" and got["approval"]["required"] == 1 and
              got["action"]["version"] == pending["action"]["version"],
              "the pending run keeps the rule it was accepted with", got)
        r = s.submit("gated", {}, token=bob)
        check(r.status == 202 and r.json()["status"] == "queued",
              "a new gated run needs no approval now", r.body)
        r = s.post("/v1/runs/%s/decisions" % pending["id"], {"decision": "approve"}, token=carol)
        check(r.status == 200 and r.json()["status"] == "queued",
              "the old run is approved under its old rule", r.status, r.body)

        # A worker comes: the old run runs its old command, a new one the new.
        s.start_worker(concurrency=2)
        done = s.wait_run(old_run["id"], timeout=90)
        check(done["status"] == "succeeded", "the run accepted before the reload succeeds", done)
        check("this is v1" in log_lines(s, old_run["id"]),
              "it ran the command it was accepted with (v1)", log_lines(s, old_run["id"]))
        r = s.submit("echoer", {}, token=bob)
        check(r.status == 202, "echoer v2 accepted", r.body)
        new_run = r.json()
        check(not new_run.get("warnings"), "no warning once a worker of the type claimed",
              new_run)
        done = s.wait_run(new_run["id"], timeout=90)
        check(done["status"] == "succeeded" and "this is v2" in log_lines(s, new_run["id"]),
              "a run accepted after the reload runs the new command (v2)", done)
        check(s.wait_run(pending["id"], timeout=90)["status"] == "succeeded",
              "the approved old run finishes")

        acts = actions_by_id(s)
        check(acts["echoer"]["workers"]["seen"] is True and acts["echoer"]["workers"]["last_seen_at"],
              "a worker of type exec was seen after it claimed", acts["echoer"])
        check(acts["lonely"]["workers"]["seen"] is False, "nothing serves lonely", acts["lonely"])
        r = s.submit("lonely", {}, token=bob)
        check(r.status == 202 and r.json()["warnings"][0]["code"] == "no_worker" and
              r.json()["warnings"][0]["worker_type"] == "lonely",
              "a run of a type without a worker is warned about", r.body)
        got = s.get("/v1/runs/" + new_run["id"]).json()
        check("warnings" not in got, "a finished run carries no warning", got)

        # A YAML syntax error: 422 naming the file and line; nothing changes.
        applied = metric(s, 'gangway_catalog_reloads_total{result="applied"}')
        bad = os.path.join(actions, "broken.yaml")
        with open(bad, "w") as f:
            f.write("id: broken\ntitle: broken\nworker_type: [exec\nbackend: {}\n")
        r = s.post("/v1/admin/actions/reload")
        check(r.status == 422, "a syntax error is refused", r.status, r.body)
        p = r.json()
        check(p["code"] == "invalid_action_definition" and p["file"] == bad and
              p["line"] in (3, 4) and p["reason"] and "broken.yaml" in p["detail"],
              "the problem names the file and line", p)
        check(s.get("/v1/actions/fresh").status == 200 and
              s.submit("fresh", {}, token=bob).status == 202,
              "the old catalog is still served")

        # A schema error: the line of the value at fault.
        with open(bad, "w") as f:
            f.write("id: broken\ntitle: broken\nworker_type: exec\n"
                    "backend:\n  command: [/bin/cat]\ninputs:\n  type: object\n"
                    "timeout_seconds: soon\n")
        r = s.post("/v1/admin/actions/reload")
        p = r.json()
        check(r.status == 422 and p["file"] == bad and p["line"] == 8 and
              p["pointer"] == "/timeout_seconds" and p["column"] >= 1,
              "a schema error names file, line and pointer", r.status, p)
        # ... and in a JSON file too.
        os.unlink(bad)
        badjson = os.path.join(actions, "broken.json")
        with open(badjson, "w") as f:
            f.write('{\n  "id": "broken",\n  "title": "broken",\n  "worker_type": "exec",\n'
                    '  "backend": {"command": ["/bin/cat"]},\n  "inputs": {"type": "object"},\n'
                    '  "retry": {"max_attempts": "three"}\n}\n')
        r = s.post("/v1/admin/actions/reload")
        p = r.json()
        check(r.status == 422 and p["file"] == badjson and p["line"] == 7 and
              p["pointer"].startswith("/retry"),
              "a schema error in JSON names its line too", r.status, p)
        check(s.get("/v1/actions/broken").status == 404 and
              s.get("/v1/actions/fresh").status == 200, "still the old catalog")
        check(metric(s, 'gangway_catalog_reloads_total{result="failed"}') >= 3 and
              metric(s, 'gangway_catalog_reloads_total{result="applied"}') == applied,
              "the metrics count the refusals")
        os.unlink(badjson)

        # Reloads racing requests and each other: every request is answered
        # under one catalog or the other, every reload gets its answer.
        import http.client
        import threading

        def hammer(path, method, body, token, out, n):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            for _ in range(n):
                h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
                c.request(method, path, body=body, headers=h)
                r2 = c.getresponse()
                r2.read()
                out.append(r2.status)
            c.close()

        results = {"list": [], "submit": [], "reload": []}
        threads = [threading.Thread(target=hammer, args=("/v1/actions", "GET", None, bob,
                                                         results["list"], 40)),
                   threading.Thread(target=hammer, args=("/v1/actions/fresh/runs", "POST",
                                                         '{"inputs": {}}', bob,
                                                         results["submit"], 20))]
        threads += [threading.Thread(target=hammer, args=("/v1/admin/actions/reload", "POST",
                                                          None, s.token, results["reload"], 3))
                    for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        check(results["list"] == [200] * 40 and results["submit"] == [202] * 20 and
              results["reload"] == [200] * 9,
              "requests and racing reloads are all answered", results)
        check(s.broker.poll() is None, "the broker survived the race")

        # SIGHUP reloads too.
        applied = metric(s, 'gangway_catalog_reloads_total{result="applied"}')
        write_action(actions, "hupped", ["/bin/cat"], timeout_seconds=30)
        s.broker.send_signal(signal.SIGHUP)
        poll("hupped after SIGHUP", lambda: s.get("/v1/actions/hupped").status == 200)
        check(metric(s, 'gangway_catalog_reloads_total{result="applied"}') == applied + 1,
              "the SIGHUP reload is counted")
        check(s.broker.poll() is None, "the broker is still running after SIGHUP")

        # A second replica on the same database reloads on the first's NOTIFY.
        port2 = free_port()
        log2 = open(os.path.join(s.tmp, "broker2.log"), "a")
        b2 = subprocess.Popen([GANGWAY, "broker", "--listen", "127.0.0.1:%d" % port2,
                               "--heartbeat", "1"], env=s.env(), stdout=log2,
                              stderr=subprocess.STDOUT)
        try:
            def get2(path):
                c = http.client.HTTPConnection("127.0.0.1", port2, timeout=10)
                try:
                    c.request("GET", path, headers={"Authorization": "Bearer " + s.token})
                    r2 = c.getresponse()
                    return r2.status, r2.read()
                except OSError:
                    return 0, b""
                finally:
                    c.close()

            poll("the second replica", lambda: get2("/readyz")[0] == 200, timeout=60)
            check(get2("/v1/actions/notified")[0] == 404, "replica 2 does not have it yet")
            # Its listener connects in the background: wait until it listens.
            poll("replica 2 listening", lambda: s.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'LISTEN%'") not in ("", "0", "1"), timeout=30)
            write_action(actions, "notified", ["/bin/cat"], timeout_seconds=30)
            r = s.post("/v1/admin/actions/reload")
            check(r.status == 200 and r.json()["added"] == ["notified"], "replica 1 reloads",
                  r.body)
            poll("replica 2 reloads on NOTIFY",
                 lambda: get2("/v1/actions/notified")[0] == 200, timeout=30)
        finally:
            b2.send_signal(signal.SIGTERM)
            try:
                b2.wait(20)
            except subprocess.TimeoutExpired:
                b2.kill()
        print("catalog reload: all checks passed")


if __name__ == "__main__":
    main(test)
