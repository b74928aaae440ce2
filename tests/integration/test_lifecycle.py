#!/usr/bin/env python3
"""Resources and TTLs end to end: a create run records a resource, the
reaper warns (webhook), tears it down at expiry as a child run, the catalog
topic follows; extensions within bounds, racing the expiry; DELETE; a failed
teardown retried and flagged; the reaper killed at random and two broker
replicas: every expired resource torn down exactly once, none wrongly."""
import http.server
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, free_port, main, write_action  # noqa: E402

CREATE = r'''#!/usr/bin/env python3
import json, os, sys
inputs = json.load(sys.stdin)
print("creating", inputs["name"], flush=True)
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"url": "https://%s.dev.example" % inputs["name"]}, f)
'''

TEARDOWN = r'''#!/usr/bin/env python3
import json, os, sys
inputs = json.load(sys.stdin)
log = os.environ["TEARDOWN_LOG"]
name = inputs["name"]
if name.startswith("flaky") and not os.path.exists(log + "." + name):
    open(log + "." + name, "w").close()
    print("teardown of", name, "fails once", flush=True)
    sys.exit(1)
with open(log, "a") as f:
    f.write(name + "\n")
print("deleted", name, "op", os.environ.get("GANGWAY_OPERATION"), flush=True)
'''


class Hooks(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hooks.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def torn_down(path):
    try:
        return open(path).read().split()
    except OSError:
        return []


def test():
    hook_port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", hook_port), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    s = Stack("lifecycle", broker_args=["--heartbeat", "1"],
              broker_env={"GW_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % hook_port})
    actions = os.path.join(s.tmp, "actions")
    log = os.path.join(s.tmp, "teardown.log")
    s.write_program("create.py", CREATE)
    s.write_program("teardown.py", TEARDOWN)
    write_action(actions, "devenv", [os.path.join(s.tmp, "create.py")],
                 {"type": "object", "required": ["name"],
                  "properties": {"name": {"type": "string", "pattern": "^[a-z0-9-]+$"}}},
                 timeout_seconds=30, resource_key="/name",
                 resource={"kind": "devenv", "name": "/name"},
                 ttl={"default_seconds": 4, "max_seconds": 60, "max_extension_seconds": 30,
                      "warn_before_seconds": 2, "teardown_retry_seconds": 1},
                 teardown={"backend": {"command": [os.path.join(s.tmp, "teardown.py")],
                                       "env": {"TEARDOWN_LOG": log}}})
    s.actions_dir = actions
    with s:
        try:
            s.start_broker()
            s.start_worker(concurrency=8, extra_env={"GW_KAFKA_PROPS": "session.timeout.ms=6000"})

            def create(name, **extra):
                body = {"inputs": {"name": name}}
                body.update(extra)
                r = s.post("/v1/actions/devenv/runs", body)
                check(r.status == 202, "create %s accepted" % name, r.status, r.body)
                run = s.wait_run(r.json()["id"])
                check(run["status"] == "succeeded", "create %s succeeded" % name, run)
                return run

            def resource_of(run):
                return s.get("/v1/resources/" + s.sql("SELECT resource_id FROM gw_runs WHERE id = '%s'" % run["id"])).json()

            def wait_status(rid, status, timeout=30):
                deadline = time.time() + timeout
                while time.time() < deadline:
                    r = s.get("/v1/resources/" + rid).json()
                    if r["status"] == status:
                        return r
                    time.sleep(0.1)
                raise AssertionError("resource %s not %s: %s" % (rid, status, r))

            # Bounds are checked at submit.
            r = s.post("/v1/actions/devenv/runs", {"inputs": {"name": "x"}, "ttl_seconds": 61})
            check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/ttl_seconds",
                  "a TTL over the maximum is 422 at /ttl_seconds", r.body)
            r = s.post("/v1/actions/echo/runs", {"inputs": {"message": "x"}, "ttl_seconds": 5})
            check(r.status in (404, 422), "a TTL on an action without one is refused", r.status)

            # 1. Expiry -> warning -> teardown child run -> deleted, on the catalog topic.
            res = resource_of(create("alpha"))
            check(res["status"] == "active" and res["kind"] == "devenv" and res["name"] == "alpha",
                  "a successful create records an active resource", res)
            check(res["outputs"] == {"url": "https://alpha.dev.example"}, "with the run's outputs")
            listed = s.get("/v1/resources?kind=devenv").json()["items"]
            check(any(x["id"] == res["id"] for x in listed), "it is listed")
            gone = wait_status(res["id"], "deleted", timeout=30)
            check(torn_down(log).count("alpha") == 1, "the teardown ran once", torn_down(log))
            child = s.get("/v1/runs/" + gone["teardown_run"]).json()
            check(child["operation"] == "teardown" and child["status"] == "succeeded",
                  "as a child run of the same action", child)
            check(any(h.get("type") == "resource.expiring" and h["resource"]["id"] == res["id"]
                      for h in Hooks.received), "the owners were warned by webhook before expiry",
                  Hooks.received[:2])
            catalog = subprocess.run(
                ["kcat", "-C", "-b", s.kafka, "-t", s.prefix + "gangway.catalog", "-e", "-q",
                 "-f", "%k %s\n"], capture_output=True, text=True, timeout=60).stdout
            types = [json.loads(line.split(" ", 1)[1])["type"] for line in catalog.splitlines()
                     if line.startswith(res["id"])]
            check(types[0] == "dev.gangway.resource.created" and types[-1] == "dev.gangway.resource.deleted",
                  "the catalog topic carries created ... deleted, keyed by resource", types)

            # 2. Extension within bounds keeps it alive; over the bound is 422.
            res = resource_of(create("beta", ttl_seconds=3))
            r = s.post("/v1/resources/%s/extend" % res["id"], {"seconds": 20})
            check(r.status == 200, "an extension within bounds is accepted", r.body)
            r = s.post("/v1/resources/%s/extend" % res["id"], {"seconds": 3600})
            check(r.status == 422 and r.json()["code"] == "extension_over_limit",
                  "an extension past the maximum lifetime is 422", r.body)
            time.sleep(5)
            check(s.get("/v1/resources/" + res["id"]).json()["status"] == "active",
                  "an extended resource survives its original expiry")

            # 3. DELETE starts the teardown now; a second DELETE is 409.
            r = s.request("DELETE", "/v1/resources/" + res["id"])
            check(r.status == 202, "DELETE starts the teardown", r.body)
            wait_status(res["id"], "deleted")
            r = s.request("DELETE", "/v1/resources/" + res["id"])
            check(r.status == 409 and r.json()["code"] == "resource_not_active",
                  "deleting a deleted resource is 409")

            # 4. A failing teardown is retried with backoff and flagged.
            res = resource_of(create("flaky-1", ttl_seconds=1))
            wait_status(res["id"], "teardown_failed", timeout=20)
            r = s.get("/v1/resources/" + res["id"]).json()
            check(r["needs_attention"] is True, "a failed teardown is flagged", r)
            wait_status(res["id"], "deleted", timeout=30)
            check(torn_down(log).count("flaky-1") == 1, "and retried until it succeeds")

            # 5. Extensions racing expiry: either the extension wins (resource
            #    lives on) or it is refused (409) and the teardown runs; never both.
            racers = [resource_of(create("race-%d" % i, ttl_seconds=2)) for i in range(6)]
            outcomes = {}
            deadline = time.time() + 4
            while time.time() < deadline and len(outcomes) < len(racers):
                for rr in racers:
                    if rr["id"] in outcomes:
                        continue
                    r = s.post("/v1/resources/%s/extend" % rr["id"], {"seconds": 25})
                    if r.status in (200, 409):
                        outcomes[rr["id"]] = r.status
                time.sleep(0.05)
            time.sleep(4)
            for rr in racers:
                st = s.get("/v1/resources/" + rr["id"]).json()["status"]
                n = torn_down(log).count(rr["name"])
                if outcomes.get(rr["id"]) == 200:
                    check(st == "active" and n == 0, "%s extended in time stays, untouched" % rr["name"], st, n)
                else:
                    check(n <= 1, "%s expired: torn down at most once" % rr["name"], n)

            # 6. Reaper killed at random and restarted, with two broker replicas.
            names = ["chaos-%d" % i for i in range(10)]
            chaos = [resource_of(create(n, ttl_seconds=random.randint(2, 6))) for n in names]
            second = Stack.__new__(Stack)
            second.__dict__.update(s.__dict__)
            port2 = free_port()
            env2 = s.env({"GW_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % hook_port})
            b2log = open(os.path.join(s.tmp, "broker2.log"), "a")
            b2 = subprocess.Popen([s.broker.args[0], "broker", "--listen", "127.0.0.1:%d" % port2,
                                   "--heartbeat", "1"], env=env2, stdout=b2log, stderr=subprocess.STDOUT)
            end = time.time() + 12
            while time.time() < end:
                time.sleep(random.uniform(0.5, 2.0))
                s.broker.kill()
                s.broker.wait()
                time.sleep(random.uniform(0.1, 1.0))
                s.start_broker()
            deadline = time.time() + 60
            while time.time() < deadline:
                states = [s.get("/v1/resources/" + c["id"]).json()["status"] for c in chaos]
                if all(x == "deleted" for x in states):
                    break
                time.sleep(0.5)
            check(all(x == "deleted" for x in states), "every expired resource was torn down", states)
            counts = {n: torn_down(log).count(n) for n in names}
            check(all(v == 1 for v in counts.values()), "each exactly once, across kills and replicas", counts)
            b2.send_signal(signal.SIGTERM)
            check(b2.wait(20) == 0, "the second replica stops cleanly")
        finally:
            server.shutdown()


if __name__ == "__main__":
    main(test)
