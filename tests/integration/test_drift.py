#!/usr/bin/env python3
"""Drift (issue 17 part 3, decision 0067), through the real broker, Kafka,
PostgreSQL and the terraform worker: a resource created by a Terraform action
with `drift: {interval_seconds}` is checked on a timer by a child run with
operation `drift` (plan -detailed-exitcode, never applied); untouched it is
in_sync; after its state is changed behind Gangway's back it is reported
drifted within an interval or two, with the differing addresses, filtered by
GET /v1/resources?drift=drifted and `gangway resources list --drift drifted`,
published as resource.drifted on the catalog topic, sent as a webhook,
audited and counted in /metrics. Skipped (77) without services or a
terraform/tofu binary."""
import glob
import http.server
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Stack, check, main, need_terraform, write_action  # noqa: E402

INTERVAL = 4


class Hooks(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hooks.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_drift(s, rid, want, after_run=None, timeout=120):
    """Polls the resource until a drift check other than `after_run` says `want`."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = s.get("/v1/resources/" + rid).json()
        d = last.get("drift") or {}
        if d.get("status") == want and d.get("run") != after_run:
            return last
        time.sleep(0.3)
    check(False, "drift %s within %ss" % (want, timeout), last)


def test():
    binary = need_terraform()
    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    s = Stack("drift", broker_env={"GW_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % hooks.server_address[1]})
    actions = os.path.join(s.tmp, "actions")
    state = os.path.join(s.tmp, "tfstate")
    write_action(actions, "tf-drift", None,
                 {"type": "object", "required": ["name"],
                  "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,30}$"},
                                 "replicas": {"type": "integer", "default": 1}}},
                 worker_type="terraform", timeout_seconds=300, resource_key="/name",
                 resource={"kind": "environment", "name": "/name"},
                 backend={"module": os.path.join(SRC, "examples", "terraform", "hello")},
                 drift={"interval_seconds": INTERVAL})
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=2, worker_type="terraform",
                       extra_env={"GW_TERRAFORM_BIN": binary, "GW_TERRAFORM_STATE_DIR": state})
        r = s.submit("tf-drift", {"name": "steady"})
        steady_run = s.wait_run(r.json()["id"], timeout=180)
        check(steady_run["status"] == "succeeded", "the apply succeeds", steady_run)
        r = s.submit("tf-drift", {"name": "tampered", "replicas": 2})
        check(s.wait_run(r.json()["id"], timeout=180)["status"] == "succeeded", "the second too")
        items = s.get("/v1/resources").json()["items"]
        res = {i["name"]: i for i in items}
        check(set(res) == {"steady", "tampered"}, "two resources", items)

        # 1. Nothing changed: in_sync, by a drift child run that applied nothing.
        steady = wait_drift(s, res["steady"]["id"], "in_sync")
        # drift.run may already be the next check, still queued: for this
        # untouched resource every check succeeds, so wait for it to end.
        drun = s.wait_run(steady["drift"]["run"], timeout=120)
        check(drun["operation"] == "drift" and drun["status"] == "succeeded"
              and drun.get("parent_run") == steady_run["id"],
              "the check is a run with operation drift", drun)
        check(drun["outputs"]["reconcile"]["changes"] is False, "plan found no changes",
              drun["outputs"])
        tampered = wait_drift(s, res["tampered"]["id"], "in_sync")
        first = tampered["drift"]["run"]

        # 2. Change the state behind Gangway's back: drop the replicas from it.
        path = None
        for f in glob.glob(os.path.join(state, "*", "terraform.tfstate")):
            with open(f) as fh:
                if "tampered" in fh.read():
                    path = f
        check(path is not None, "the resource's state file is found")
        with open(path) as fh:
            st = json.load(fh)
        st["resources"] = [x for x in st["resources"] if x["name"] != "replica"]
        st["serial"] += 1
        with open(path, "w") as fh:
            json.dump(st, fh)
        drifted = wait_drift(s, res["tampered"]["id"], "drifted", after_run=first)
        summ = drifted["drift"]["summary"]
        check(summ.get("add") == 2 and sorted(x["address"] for x in summ["resources"])
              == ["terraform_data.replica[0]", "terraform_data.replica[1]"],
              "the summary names what differs", summ)
        check(s.get("/v1/resources/" + res["steady"]["id"]).json()["drift"]["status"] == "in_sync",
              "the untouched resource stays in sync")
        names = [i["name"] for i in s.get("/v1/resources?drift=drifted").json()["items"]]
        check(names == ["tampered"], "GET /v1/resources?drift=drifted", names)
        names = [i["name"] for i in s.get("/v1/resources?drift=in_sync").json()["items"]]
        check(names == ["steady"], "GET /v1/resources?drift=in_sync", names)
        r = s.get("/v1/resources?drift=sideways")
        check(r.status == 400 and r.json()["code"] == "invalid_parameter", "a bad drift filter: 400",
              r.status, r.body)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": s.tmp,
               "XDG_CONFIG_HOME": os.path.join(s.tmp, "xdg"), "GANGWAY_URL": s.url,
               "GANGWAY_TOKEN": s.token}
        p = subprocess.run([GANGWAY, "resources", "list", "--drift", "drifted"], capture_output=True,
                           text=True, env=env, timeout=60)
        check(p.returncode == 0 and "tampered" in p.stdout and "steady" not in p.stdout
              and "DRIFT" in p.stdout and "drifted" in p.stdout,
              "gangway resources list --drift drifted", p.returncode, p.stdout, p.stderr)
        audit = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'resource.drift_drifted'"
                      " AND object = 'resource:%s'" % res["tampered"]["id"])
        check(int(audit) >= 1, "the drift is audited", audit)
        deadline = time.time() + 60
        while time.time() < deadline and not any(
                h.get("type") == "resource.drifted" for h in Hooks.received):
            time.sleep(0.3)
        hook = [h for h in Hooks.received if h.get("type") == "resource.drifted"]
        check(len(hook) == 1 and hook[0]["resource"]["id"] == res["tampered"]["id"]
              and "drifted" in hook[0]["text"], "one resource.drifted webhook", hook)
        deadline = time.time() + 60
        types = []
        while time.time() < deadline and "dev.gangway.resource.drifted" not in types:
            catalog = subprocess.run(
                ["kcat", "-C", "-b", s.kafka, "-t", s.prefix + "gangway.catalog", "-e", "-q",
                 "-f", "%k %s\n"], capture_output=True, text=True, timeout=60).stdout
            types = [json.loads(line.split(" ", 1)[1])["type"] for line in catalog.splitlines()
                     if line.startswith(res["tampered"]["id"])]
            time.sleep(0.5)
        check(types.count("dev.gangway.resource.drifted") == 1,
              "the catalog topic carries resource.drifted once", types)
        metrics = s.get("/metrics").body.decode()
        deadline = time.time() + 30
        while time.time() < deadline and 'gangway_resources_drift{status="drifted"} 1' not in metrics:
            time.sleep(1)
            metrics = s.get("/metrics").body.decode()
        check('gangway_resources_drift{status="drifted"} 1' in metrics, "the metric counts it",
              [l for l in metrics.splitlines() if "drift" in l])
        # Drift checks never apply: the state still lacks the replicas.
        with open(path) as fh:
            check(not any(x["name"] == "replica" for x in json.load(fh)["resources"]),
                  "the drift check changed nothing")
    hooks.shutdown()


if __name__ == "__main__":
    main(test)
