#!/usr/bin/env python3
"""The web console end to end in a real browser: Debian's Chromium driven by
playwright-core (web/e2e/console.e2e.mjs, no browser download) against a real
broker, worker, PostgreSQL and Kafka started here.

The node script walks the pages as three people (bob requests, carol of sre
approves, alice is admin; dan of another team peeks) and checks: token
sign-in (keyboard only for one of them); a too-long echo message shows its
error on that field; a valid one shows its live logs; an approval given in
carol's inbox while bob's own run shows why he cannot approve (and the API
refuses him); a resource's TTL extended; a running run cancelled; another
team's run is "not found"; the audit page's chain status; the dashboard with
data; axe-core finds no serious or critical violation on any page. Issue 17
(data made here through the API, results written by SQL as the broker
records them): a failed, compensated workflow shows its steps in order, its
undo run and Resume (which runs the failed step again); a run whose plan
failed its checks shows the findings in carol's inbox, where Approve waits
for the acknowledgement (the API refuses it without); a drifted resource is
the only one under the Drift filter. Midway it
prints `@@restart-broker`: this script stops and restarts the broker under a
streaming log view and answers `ok`, and the node script checks the view got
every line exactly once.

Screenshots go to $GW_CONSOLE_SCREENSHOTS when set (docs/console/ in the
repository: `GW_CONSOLE_SCREENSHOTS=docs/console meson test ... e2e-console-browser`),
else to the test's temporary directory.

Exits 77 (skipped) when Chromium, node or web/node_modules are missing
(deploy/install-deps and deploy/build-web install them; tests/run runs both),
or when the broker has no console side (no /v1/session and no /ui/)."""
import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SKIP, SRC, Stack, check, main, need_services, write_action, write_lease_action  # noqa: E402

WEB = os.path.join(SRC, "web")
CHROMIUM = os.environ.get("GW_CHROMIUM", "/usr/bin/chromium")

SLOW = r"""#!/bin/sh
# 60 numbered lines, every other one green, while the test restarts the broker.
i=1
while [ $i -le 60 ]; do
  if [ $((i % 2)) -eq 0 ]; then printf '\033[32mline %03d green\033[0m\n' $i; else printf 'line %03d plain\n' $i; fi
  i=$((i + 1))
  sleep 0.25
done
echo '{}' > "$GANGWAY_OUTPUTS"
"""

# A workflow step: "ok" makes a repository (its url as output), "fail" fails.
STEP = r"""#!/bin/sh
cat >/dev/null
case "$1" in
  ok) echo "made repo"; echo '{"url": "https://git.example/svc"}' > "$GANGWAY_OUTPUTS" ;;
  *) echo "job creation failed" >&2; exit 3 ;;
esac
"""

FINDINGS = [
    {"check": "labels", "rule": "required-labels", "severity": "high",
     "address": "terraform_data.env", "message": "labels.owner is missing"},
    {"check": "no-deletions", "rule": "no-deletions", "severity": "medium",
     "address": "terraform_data.old", "message": "the plan deletes terraform_data.old"},
]

SLEEPER = r"""#!/bin/sh
echo started
sleep 120
"""


def skip(why):
    print("skipped: " + why)
    sys.exit(SKIP)


def test():
    need_services()
    node = shutil.which("node")
    if not node:
        skip("node not found (deploy/install-deps)")
    if not os.access(CHROMIUM, os.X_OK):
        skip("%s not found (deploy/install-deps installs Debian's chromium)" % CHROMIUM)
    for mod in ("playwright-core", "axe-core"):
        if not os.path.isdir(os.path.join(WEB, "node_modules", mod)):
            skip("web/node_modules/%s missing (deploy/build-web runs npm ci)" % mod)
    if not os.path.isfile(os.path.join(WEB, "dist", "index.html")):
        skip("web/dist not built (deploy/build-web)")

    s = Stack("console")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "echo", [os.path.join(SRC, "examples", "programs", "echo.py")],
                 {"type": "object", "required": ["message"], "additionalProperties": False,
                  "properties": {"message": {"type": "string", "title": "Message", "minLength": 1, "maxLength": 200},
                                 "shout": {"type": "boolean", "title": "Upper-case it", "default": False}}},
                 title="Echo a message", description="Writes the message to the log.", tags=["example"],
                 timeout_seconds=30)
    write_action(actions, "slow-log", [s.write_program("slow.sh", SLOW)], title="Slow log",
                 tags=["test"], timeout_seconds=120)
    write_action(actions, "sleeper", [s.write_program("sleeper.sh", SLEEPER)], title="Sleeper",
                 timeout_seconds=300)
    write_action(actions, "deploy", ["/bin/cat"],
                 {"type": "object", "required": ["environment"],
                  "properties": {"environment": {"enum": ["staging", "prod"], "title": "Environment"}}},
                 title="Deploy", tags=["deploy"], timeout_seconds=30,
                 approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}], "expires_after_seconds": 3600})
    write_lease_action(actions, "lease", "sandbox",
                       {"default_seconds": 3600, "max_seconds": 7200, "max_extension_seconds": 86400})
    # Issue 17: a workflow whose second step fails, so its first is undone.
    step = s.write_program("step.sh", STEP)
    with open(os.path.join(actions, "scaffold.json"), "w") as f:
        json.dump({"id": "scaffold", "title": "Scaffold a service", "tags": ["workflow"],
                   "inputs": {"type": "object", "required": ["name"],
                              "properties": {"name": {"type": "string"}}},
                   "steps": [
                       {"id": "repo", "worker_type": "exec", "backend": {"command": [step, "ok"]},
                        "inputs": {"name": "${inputs.name}"}, "timeout_seconds": 30,
                        "undo": {"worker_type": "exec", "backend": {"command": ["/bin/cat"]},
                                 "inputs": {"url": "${self.outputs.url}"}}},
                       {"id": "job", "worker_type": "exec", "backend": {"command": [step, "fail"]},
                        "inputs": {"repo": "${steps.repo.outputs.url}"}, "timeout_seconds": 30}]}, f)
    s.actions_dir = actions
    shots = os.environ.get("GW_CONSOLE_SCREENSHOTS") or os.path.join(s.tmp, "shots")
    if not os.path.isabs(shots):
        shots = os.path.join(SRC, shots)
    os.makedirs(shots, exist_ok=True)

    with s:
        s.start_broker({"GW_WEB_DIR": os.path.join(WEB, "dist")})
        s.start_worker(concurrency=4)
        has_session = s.post("/v1/session", {"token": s.token}, auth=False).status != 404
        has_ui = s.get("/ui/", auth=False).status != 404
        if not has_session and not has_ui:
            skip("this broker serves no console yet (POST /v1/session and GET /ui/ are 404)")
        check(has_session and has_ui, "the broker serves /ui/ and the session API",
              has_session, has_ui)
        bob = s.make_token("bob", teams=["payments"])
        carol = s.make_token("carol", teams=["sre"])
        dan = s.make_token("dan", teams=["marketing"])
        # Some history for the dashboard and the audit trail.
        for i in range(3):
            r = s.submit("echo", {"message": "seed %d" % i}, token=bob)
            check(r.status == 202, "seed run accepted", r.body)
        s.wait_run(r.json()["id"])
        # Issue 17 data. A workflow that failed and was compensated.
        r = s.submit("scaffold", {"name": "svc"}, token=bob)
        check(r.status == 202, "workflow run accepted", r.body)
        wf = s.wait_run(r.json()["id"], until=("failed",))
        check(wf.get("compensated") is True and [(x["id"], x["operation"]) for x in wf["steps"]] ==
              [("repo", "create"), ("job", "create"), ("repo", "undo")],
              "the workflow failed at its second step and undid the first", wf)
        # A plan that failed its checks, overridable by approval: the worker
        # side (decision 0066) is test_plan_checks.py's; here its verdict is
        # written onto a waiting run as the broker stores it.
        r = s.submit("deploy", {"environment": "staging"}, token=bob)
        check(r.status == 202, "deploy run accepted", r.body)
        checked = r.json()["id"]
        s.wait_run(checked, until=("pending_approval",))
        s.sql("UPDATE gw_runs SET plan_checks = '%s'::jsonb WHERE id = '%s'"
              % (json.dumps({"passed": False, "findings": FINDINGS}).replace("'", "''"), checked))
        check(s.get("/v1/runs/" + checked).json().get("approval", {}).get("findings_to_acknowledge") is True,
              "the run asks approvers to acknowledge its findings")
        # A drifted resource: a drift check's result as gw_drift_after_run
        # records it (the check itself is test_drift.py's).
        r = s.submit("lease", {"name": "sbx-drift"}, token=bob)
        check(r.status == 202, "lease run accepted", r.body)
        done = s.wait_run(r.json()["id"])
        check(done["status"] == "succeeded", "the lease run succeeded", done)
        drifted = s.sql("SELECT id FROM gw_resources WHERE created_by_run = '%s'" % done["id"])
        summary = {"add": 1, "change": 0, "destroy": 0, "by_type": {"terraform_data": 1},
                   "resources": [{"address": "terraform_data.replica[0]", "actions": ["create"]}]}
        s.sql("UPDATE gw_resources SET drift_status = 'drifted', drift_summary = '%s'::jsonb,"
              " drift_checked_at = now(), drift_next_at = now() + interval '1 hour' WHERE id = '%s'"
              % (json.dumps(summary), drifted))

        env = dict(os.environ)
        env.update({"GW_URL": s.url, "GW_TOKEN_ALICE": s.token, "GW_TOKEN_BOB": bob,
                    "GW_TOKEN_CAROL": carol, "GW_TOKEN_DAN": dan, "GW_CHROMIUM": CHROMIUM,
                    "GW_SCREENSHOTS": shots, "GW_WORKFLOW_RUN": wf["id"], "GW_CHECKED_RUN": checked,
                    "GW_DRIFTED_RESOURCE": drifted})
        p = subprocess.Popen([node, os.path.join(WEB, "e2e", "console.e2e.mjs")], cwd=WEB, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        timer = threading.Timer(600, p.kill)
        timer.start()
        done = False
        try:
            for line in p.stdout:
                line = line.rstrip("\n")
                print(line, flush=True)
                if line == "@@restart-broker":
                    s.stop(s.broker)
                    s.start_broker({"GW_WEB_DIR": os.path.join(WEB, "dist")})
                    p.stdin.write("ok\n")
                    p.stdin.flush()
                elif line == "@@done":
                    done = True
            rc = p.wait()
        finally:
            timer.cancel()
            if p.poll() is None:
                p.kill()
        check(rc == 0 and done, "the browser walk passed (node exit status %s)" % rc)
        print("screenshots in", shots)


if __name__ == "__main__":
    main(test)
