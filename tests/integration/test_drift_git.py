#!/usr/bin/env python3
"""GitOps drift (issue 17 part 3, decision 0068), through the real broker,
Kafka, PostgreSQL and `gangway worker --type git` against real bare
repositories (file://): a git action with `drift: {interval_seconds}` records
the files it wrote ({path, blob}); its drift checks (child runs with
operation `drift`, never pushing) find an untouched resource in_sync, a file
edited by a commit made outside Gangway drifted within an interval or two
(naming the path and how it changed: API filter, CLI, audit, webhook,
catalog event, metric), a deleted branch check_failed, and the edit
reverted in sync again."""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Stack, check, main  # noqa: E402
from test_drift import Hooks, wait_drift  # noqa: E402
from test_git import git  # noqa: E402

INTERVAL = 4


def wait_checked(s, rid, want, since, timeout=120):
    """Polls until a drift check of the resource that started after `since`
    (a database timestamp) has recorded `want` (its audit entry names the
    check), then returns the resource. The resource's drift.run is the
    latest check started, which may still be queued: it cannot tell."""
    deadline = time.time() + timeout
    n = "0"
    while time.time() < deadline:
        n = s.sql("SELECT count(*) FROM gw_audit_log a JOIN gw_runs r"
                  " ON r.id = (a.detail ->> 'drift_run')::uuid"
                  " WHERE a.object = 'resource:%s' AND a.verb = 'resource.drift_%s'"
                  " AND r.started_at > '%s'::timestamptz" % (rid, want, since))
        if int(n) > 0:
            return s.get("/v1/resources/" + rid).json()
        time.sleep(0.3)
    check(False, "drift %s by a check started after %s within %ss" % (want, since, timeout),
          s.get("/v1/resources/" + rid).json())


def refs(remote):
    return git("-C", remote, "for-each-ref", "--format=%(refname) %(objectname)")


def test():
    work = tempfile.mkdtemp(prefix="gw-git-drift-")
    remote = os.path.join(work, "remote.git")
    git("init", "-q", "--bare", "-b", "main", remote)
    seed = os.path.join(work, "seed")
    git("clone", "-q", remote, seed)
    git("checkout", "-q", "-b", "main", cwd=seed)
    with open(os.path.join(seed, "README.md"), "w") as f:
        f.write("platform config\n")
    git("add", "README.md", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)

    actions = os.path.join(work, "actions")
    os.makedirs(actions)
    with open(os.path.join(SRC, "examples", "actions", "gitops-service.json")) as f:
        action = json.load(f)
    # Straight to main (no pull request), a resource per service, checked
    # every INTERVAL seconds.
    action["id"] = "git-drift"
    action["backend"]["repository"] = "file://" + remote
    action["backend"]["templates_dir"] = os.path.join(SRC, "examples", "gitops")
    del action["backend"]["push_branch"]
    action["resource"] = {"kind": "service", "name": "/name"}
    action["drift"] = {"interval_seconds": INTERVAL}
    with open(os.path.join(actions, "git-drift.json"), "w") as f:
        json.dump(action, f)
    # The same on a branch of its own, which is then deleted.
    branched = json.loads(json.dumps(action))
    branched["id"] = "git-drift-branch"
    branched["backend"]["push_branch"] = "gangway/{{ inputs.name | slug }}"
    with open(os.path.join(actions, "git-drift-branch.json"), "w") as f:
        json.dump(branched, f)

    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    s = Stack("drift_git", actions_dir=actions,
              broker_env={"GW_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % hooks.server_address[1]})
    try:
        with s:
            s.start_broker()
            s.start_worker(concurrency=2, worker_type="git",
                           extra_env={"GW_GIT_CACHE_DIR": os.path.join(work, "cache")})
            runs = {}
            for action_id, name in (("git-drift", "steady"), ("git-drift", "edited"),
                                    ("git-drift-branch", "gone")):
                r = s.submit(action_id, {"name": name, "team": "payments", "image": "img:" + name})
                check(r.status == 202, "submit is 202", r.status, r.body)
                runs[name] = s.wait_run(r.json()["id"], timeout=90)
                check(runs[name]["status"] == "succeeded", "the %s run succeeds" % name, runs[name])

            # 1. What the run wrote is recorded: each path with its blob.
            files = runs["edited"]["outputs"]["files"]
            check(sorted(f["path"] for f in files)
                  == ["apps/edited/values.yaml", "argocd/apps/edited.yaml"],
                  "the outputs record the written files", files)
            for f in files:
                check(f["blob"] == git("-C", remote, "rev-parse", "main:" + f["path"]),
                      "the recorded blob is the one on main", f)
            res = {i["name"]: i for i in s.get("/v1/resources").json()["items"]}
            check(set(res) == {"steady", "edited", "gone"}, "three resources", res)

            # 2. Untouched: in sync, by a drift child run that pushed nothing.
            before = refs(remote)
            for name in res:
                wait_drift(s, res[name]["id"], "in_sync")
            drun = s.get("/v1/runs/" + s.sql(
                "SELECT id FROM gw_runs WHERE operation = 'drift' AND status = 'succeeded'"
                " AND resource_id = '%s' LIMIT 1" % res["steady"]["id"])).json()
            check(drun["operation"] == "drift" and drun["status"] == "succeeded"
                  and drun.get("parent_run") == runs["steady"]["id"]
                  and drun["outputs"]["reconcile"]["changes"] is False,
                  "the check is a run with operation drift that found no changes", drun)
            check(refs(remote) == before, "drift checks push nothing")

            # 3. Outside Gangway: edit one written file on main; delete the
            # branch the third resource was written to.
            git("pull", "-q", "origin", "main", cwd=seed)
            path = os.path.join(seed, "apps", "edited", "values.yaml")
            with open(path) as f:
                original = f.read()
            with open(path, "a") as f:
                f.write("# hand edit\n")
            git("commit", "-q", "-am", "hand edit", cwd=seed)
            git("push", "-q", "origin", "main", cwd=seed)
            git("-C", remote, "update-ref", "-d", "refs/heads/gangway/gone")
            head = git("-C", remote, "rev-parse", "main")
            since = s.sql("SELECT clock_timestamp()")

            drifted = wait_checked(s, res["edited"]["id"], "drifted", since)
            summ = drifted["drift"]["summary"]
            check(summ.get("files") == [{"path": "apps/edited/values.yaml", "change": "modified"}]
                  and summ.get("branch") == "main" and summ.get("commit") == head,
                  "the summary names the edited file and the head compared", summ)
            # A check of the untouched resource that started after the edit.
            wait_checked(s, res["steady"]["id"], "in_sync", since)
            gone = wait_checked(s, res["gone"]["id"], "check_failed", since)
            summ = gone["drift"]["summary"]
            check(summ.get("run_status") == "failed" and summ.get("reason") == "backend_error"
                  and "branch 'gangway/gone' not found" in summ.get("message", ""),
                  "a deleted branch: check_failed, saying why", summ)

            # 4. Where it shows: API filter, CLI, audit, webhook, catalog, metric.
            names = [i["name"] for i in s.get("/v1/resources?drift=drifted").json()["items"]]
            check(names == ["edited"], "GET /v1/resources?drift=drifted", names)
            names = [i["name"] for i in s.get("/v1/resources?drift=check_failed").json()["items"]]
            check(names == ["gone"], "GET /v1/resources?drift=check_failed", names)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": s.tmp,
                   "XDG_CONFIG_HOME": os.path.join(s.tmp, "xdg"), "GANGWAY_URL": s.url,
                   "GANGWAY_TOKEN": s.token}
            p = subprocess.run([GANGWAY, "resources", "list", "--drift", "drifted"],
                               capture_output=True, text=True, env=env, timeout=60)
            check(p.returncode == 0 and "edited" in p.stdout and "steady" not in p.stdout
                  and "DRIFT" in p.stdout and "drifted" in p.stdout,
                  "gangway resources list --drift drifted", p.returncode, p.stdout, p.stderr)
            p = subprocess.run([GANGWAY, "resources", "show", res["edited"]["id"]],
                               capture_output=True, text=True, env=env, timeout=60)
            line = [x for x in p.stdout.splitlines() if x.startswith("drift")]
            check(p.returncode == 0 and len(line) == 1 and "drifted" in line[0]
                  and "apps/edited/values.yaml" in line[0] and "modified" in line[0],
                  "gangway resources show: the drift line names the file", p.stdout, p.stderr)
            audit = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'resource.drift_drifted'"
                          " AND object = 'resource:%s'" % res["edited"]["id"])
            check(int(audit) >= 1, "the drift is audited", audit)
            deadline = time.time() + 60
            while time.time() < deadline and not any(
                    h.get("type") == "resource.drifted" for h in Hooks.received):
                time.sleep(0.3)
            hook = [h for h in Hooks.received if h.get("type") == "resource.drifted"]
            check(len(hook) == 1 and hook[0]["resource"]["id"] == res["edited"]["id"]
                  and "apps/edited/values.yaml" in hook[0]["text"],
                  "one resource.drifted webhook naming the file", hook)
            deadline = time.time() + 60
            types = []
            while time.time() < deadline and "dev.gangway.resource.drifted" not in types:
                catalog = subprocess.run(
                    ["kcat", "-C", "-b", s.kafka, "-t", s.prefix + "gangway.catalog", "-e", "-q",
                     "-f", "%k %s\n"], capture_output=True, text=True, timeout=60).stdout
                types = [json.loads(line.split(" ", 1)[1])["type"] for line in catalog.splitlines()
                         if line.startswith(res["edited"]["id"])]
                time.sleep(0.5)
            check(types.count("dev.gangway.resource.drifted") == 1,
                  "the catalog topic carries resource.drifted once", types)
            metrics = s.get("/metrics").body.decode()
            deadline = time.time() + 30
            while time.time() < deadline and 'gangway_resources_drift{status="drifted"} 1' not in metrics:
                time.sleep(1)
                metrics = s.get("/metrics").body.decode()
            check('gangway_resources_drift{status="drifted"} 1' in metrics, "the metric counts it",
                  [line for line in metrics.splitlines() if "drift" in line])
            check(git("-C", remote, "rev-parse", "main") == head,
                  "the drift checks changed nothing on main")

            # 5. The edit reverted outside Gangway: in sync again.
            with open(path, "w") as f:
                f.write(original)
            git("commit", "-q", "-am", "revert the hand edit", cwd=seed)
            git("push", "-q", "origin", "main", cwd=seed)
            wait_checked(s, res["edited"]["id"], "in_sync", s.sql("SELECT clock_timestamp()"))
    finally:
        hooks.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(test)
