#!/usr/bin/env python3
"""The jenkins worker end to end: broker -> Kafka -> `gangway worker --type
jenkins` -> the fake Jenkins (tests/fakes/jenkins) -> events -> status.
Success with the console in the run's logs and the build in its outputs,
failure, unstable, cancel of a running build, timeout, and an injection
corpus in the inputs that must reach Jenkins as plain parameter values."""
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main  # noqa: E402

FAKE = os.path.join(SRC, "tests", "fakes", "jenkins", "fake_jenkins.py")
TOKEN = "integration-t0ken"
CORPUS = ["-oProxyCommand=touch /tmp/gw-jk-it-pwned", "--upload-pack=x", "$(touch /tmp/gw-jk-it-pwned)",
          "`id`", "a\r\nX-Injected: 1", "../../queue/cancelItem?id=1", "/etc/passwd",
          "&RESULT=FAILURE", "%26RESULT%3DFAILURE", "{{run_id}}"]


def start_fake():
    p = subprocess.Popen([sys.executable, FAKE, "--user", "gangway", "--token", TOKEN,
                          "--job", "platform/deploy service"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        p.kill()
        raise RuntimeError("fake Jenkins did not start: %r" % line)
    return p, "http://127.0.0.1:%d" % int(line.split()[1])


def fake_state(base):
    with urllib.request.urlopen(base + "/_control/state", timeout=10) as r:
        return json.load(r)


def build_params(build):
    for a in build["actions"]:
        if "parameters" in a:
            return {p["name"]: p["value"] for p in a["parameters"]}
    return {}


def write_action(directory, action_id, base, timeout):
    d = {"id": action_id, "title": action_id, "worker_type": "jenkins",
         "backend": {"url": base, "job": "platform/deploy service", "user_env": "JK_USER",
                     "token_env": "JK_TOKEN", "poll_interval_ms": 100},
         "timeout_seconds": timeout,
         "inputs": {"type": "object", "additionalProperties": False,
                    "properties": {"service": {"type": "string"},
                                   "RESULT": {"enum": ["SUCCESS", "FAILURE", "UNSTABLE"]},
                                   "SLEEP": {"type": "string"}, "LINES": {"type": "string"}}}}
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, action_id + ".json"), "w") as f:
        json.dump(d, f)


def logs_of(s, run_id):
    return [l["line"] for l in s.get("/v1/runs/%s/logs" % run_id).json()["items"]]


def test():
    fake, base = start_fake()
    s = Stack("jenkins")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "jk-deploy", base, 60)
    write_action(actions, "jk-short", base, 2)
    s.actions_dir = actions
    try:
        with s:
            s.start_broker()
            s.start_worker(concurrency=4, worker_type="jenkins",
                           extra_env={"JK_USER": "gangway", "JK_TOKEN": TOKEN})

            # Success: console lines in the logs, the build in the outputs.
            r = s.submit("jk-deploy", {"service": "billing", "LINES": "4", "SLEEP": "0.4"})
            check(r.status == 202, "submit is 202", r.status, r.body)
            ok = s.wait_run(r.json()["id"], timeout=60)
            check(ok["status"] == "succeeded", "the Jenkins build succeeds", ok)
            out = ok.get("outputs") or {}
            check(out.get("result") == "SUCCESS" and out.get("build_number") == 1 and
                  "/job/platform/job/deploy%20service/1/" in out.get("build_url", ""),
                  "outputs carry build_url, build_number and result", out)
            lines = logs_of(s, ok["id"])
            check("Finished: SUCCESS" in lines and "line 4 of 4 done" in lines and
                  "param service='billing'" in lines, "the console is in the run's logs", lines)
            check(not any(TOKEN in l for l in lines), "the token is in no log line")

            # Failure and unstable end failed.
            r1 = s.submit("jk-deploy", {"service": "x", "RESULT": "FAILURE"}).json()["id"]
            r2 = s.submit("jk-deploy", {"service": "y", "RESULT": "UNSTABLE"}).json()["id"]
            f1, f2 = s.wait_run(r1, timeout=60), s.wait_run(r2, timeout=60)
            check(f1["status"] == "failed", "a FAILURE build fails the run", f1)
            check(f2["status"] == "failed" and "unstable" in json.dumps(f2.get("reason")),
                  "an UNSTABLE build fails the run with reason unstable", f2)

            # Cancel a running build: Jenkins is asked to stop it.
            rid = s.submit("jk-deploy", {"service": "long", "SLEEP": "30", "LINES": "30"}).json()["id"]
            s.wait_run(rid, timeout=30, until={"running"})
            deadline = time.time() + 20
            while time.time() < deadline and not any("line 1 of 30" in l for l in logs_of(s, rid)):
                time.sleep(0.1)
            c = s.post("/v1/runs/%s/cancel" % rid, {"reason": "test"})
            check(c.status in (200, 202), "cancel is accepted", c.status, c.body)
            done = s.wait_run(rid, timeout=60)
            check(done["status"] == "cancelled", "the cancelled run ends cancelled", done)
            st = fake_state(base)
            stops = [q for q in st["requests"] if q["method"] == "POST" and q["path"].endswith("/stop")]
            check(len(stops) >= 1, "the build was stopped in Jenkins", stops)

            # Timeout: the build is stopped and the run times out.
            rid = s.submit("jk-short", {"service": "slow", "SLEEP": "30", "LINES": "30"}).json()["id"]
            done = s.wait_run(rid, timeout=60)
            check(done["status"] == "timed_out", "an overrunning build times out", done)

            # Injection corpus: every value arrives verbatim as a parameter value.
            before = fake_state(base)["triggers"]
            ids = [s.submit("jk-deploy", {"service": v}).json()["id"] for v in CORPUS]
            for rid in ids:
                done = s.wait_run(rid, timeout=60)
                check(done["status"] == "succeeded", "an injection value stays a parameter", done)
            st = fake_state(base)
            check(st["triggers"] == before + len(CORPUS), "one build per run, nothing else triggered",
                  st["triggers"], before)
            got = {}
            for b in st["builds"]["platform/deploy service"]:
                p = build_params(b)
                got[p.get("GANGWAY_RUN_ID")] = p
            for rid, v in zip(ids, CORPUS):
                p = got.get(rid, {})
                check(p.get("service") == v and "RESULT" not in p,
                      "value %r reached Jenkins verbatim" % v, p)
            check(not os.path.exists("/tmp/gw-jk-it-pwned"), "nothing was executed")
            bad = [q["path"] for q in st["requests"]
                   if not (q["path"].startswith("/job/platform/job/deploy%20service/")
                           or q["path"].startswith("/queue/") or q["path"] == "/crumbIssuer/api/json")]
            check(bad == [], "every request stayed on the job, the queue or the crumb issuer", bad)
            check(TOKEN not in s.log("worker0"), "the token is not in the worker's log")
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    main(test)
