#!/usr/bin/env python3
"""Workflows: the three gaps closed by decision 0071 (docs/workflows.md),
through the real broker, PostgreSQL, Kafka and an exec worker:

- a workflow's own timeout_seconds: with a step held running past it, the
  reaper times the workflow out; the running step is cancelled, the
  finished step's undo runs, the step after never starts; the parent ends
  timed_out (reason deadline_exceeded), compensated, audited, with exactly
  one move to timed_out; a timed-out workflow can be resumed; a run from
  before the upgrade that brought the deadline (wf_deadline_exempt) is left
  alone;
- a step run is not a request: `gangway rerun STEP` refuses (exit 1) naming
  the workflow run to rerun or resume and starts nothing, and
  POST /v1/runs/{step}/resume answers 409 not_resumable, why step_run, with
  parent_run;
- resume after the secret inputs were dropped: without them 422
  secret_inputs_required names /inputs/token; a field that is not a secret
  input, or a secret that does not match the schema, is 422
  validation_failed at its pointer; `gangway resume RUN -i token=...`
  resumes it, the step gets the new secret, the secret is never shown and
  is dropped again when the workflow ends.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Stack, check, main  # noqa: E402

STEP = r'''#!/usr/bin/env python3
import json, os, sys, time
name, marks = sys.argv[1], sys.argv[2]
inputs = json.load(sys.stdin)
op = os.environ.get("GANGWAY_OPERATION", "?")
with open(os.path.join(marks, "log"), "a") as f:
    f.write("%s %s %s\n" % (name, op, json.dumps(inputs, sort_keys=True)))
if inputs.get("hold"):
    open(os.path.join(marks, name + ".started"), "w").close()
    while not os.path.exists(os.path.join(marks, name + ".go")):
        time.sleep(0.1)
if "gate" in inputs and not os.path.exists(inputs["gate"]):
    print("step %s: %s is not there yet" % (name, inputs["gate"]))
    sys.exit(1)
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"url": "%s-of-%s" % (name, inputs.get("name", "")), "n": len(name)}, f)
'''


def marks_of(marks):
    p = os.path.join(marks, "log")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [(ln.split(" ", 2)[0], ln.split(" ", 2)[1], json.loads(ln.split(" ", 2)[2]))
                for ln in f.read().splitlines()]


def poll(what, fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    check(False, "timed out waiting for " + what)


def test():
    s = Stack("workflow_gaps", broker_args=["--heartbeat", "1"])
    actions = os.path.join(s.tmp, "actions")
    os.makedirs(actions)
    prog = s.write_program("step.py", STEP)
    m = {k: os.path.join(s.tmp, "marks-" + k) for k in ("slow", "legacy", "secret")}
    for d in m.values():
        os.makedirs(d)

    def call(name, marks, inputs):
        return {"worker_type": "exec", "backend": {"command": [prog, name, marks]},
                "inputs": inputs}

    def step(sid, marks, inputs, undo=None, **extra):
        d = {"id": sid, **call(sid, marks, inputs), "timeout_seconds": 120}
        if undo is not None:
            d["undo"] = call("undo-" + sid, marks, undo)
        d.update(extra)
        return d

    # The workflow's own deadline (3 s) is far shorter than its steps' (120 s):
    # b holds until told to go, which nobody does.
    for aid in ("slow", "legacy"):
        with open(os.path.join(actions, aid + ".json"), "w") as f:
            json.dump({"id": aid, "title": aid, "timeout_seconds": 3,
                       "inputs": {"type": "object", "properties": {"name": {"type": "string"}}},
                       "steps": [step("a", m[aid], {"name": "${inputs.name}"},
                                      {"url": "${self.outputs.url}"}),
                                 step("b", m[aid], {"name": "${inputs.name}", "hold": True},
                                      {"url": "${self.outputs.url}"}),
                                 step("c", m[aid], {"name": "${inputs.name}"})]}, f)
    gate = os.path.join(m["secret"], "gate")
    with open(os.path.join(actions, "secretive.json"), "w") as f:
        json.dump({"id": "secretive", "title": "secretive",
                   "inputs": {"type": "object", "properties": {
                       "name": {"type": "string"},
                       "token": {"type": "string", "minLength": 8, "writeOnly": True}}},
                   "steps": [step("s1", m["secret"], {"auth": "Bearer ${inputs.token}",
                                                      "name": "${inputs.name}", "gate": gate})]},
                  f)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=4)
        cli_env = dict(os.environ, GANGWAY_URL=s.url, GANGWAY_TOKEN=s.token,
                       HOME=s.tmp, XDG_CONFIG_HOME=s.tmp)

        # 1. The workflow's own timeout_seconds.
        r = s.submit("slow", {"name": "t1"})
        check(r.status == 202, "the slow workflow is accepted", r.status, r.body)
        rid = r.json()["id"]
        done = s.wait_run(rid, timeout=120)
        check(done["status"] == "timed_out" and done["reason"] == "deadline_exceeded"
              and done["compensated"] is True and not done.get("needs_reconciliation"),
              "past its own timeout_seconds the workflow ends timed_out, compensated", done)
        msg = s.sql("SELECT error_message FROM gw_runs WHERE id = '%s'" % rid)
        check("timeout_seconds (3)" in msg, "its message says it ran past its timeout_seconds", msg)
        st = [(x["id"], x["operation"], x["status"]) for x in done["steps"]]
        check(("a", "create", "succeeded") in st and ("b", "create", "cancelled") in st
              and ("a", "undo", "succeeded") in st
              and not any(x[0] == "c" for x in st)
              and not any(x[0] == "b" and x[1] == "undo" for x in st),
              "the running step was cancelled, the finished one undone, the next never started",
              st)
        check([(x[0], x[1]) for x in marks_of(m["slow"])] ==
              [("a", "create"), ("b", "create"), ("undo-a", "undo")],
              "what ran: a, b (cancelled), then a's undo", marks_of(m["slow"]))
        n = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.deadline_exceeded'"
                  " AND object = 'run:%s' AND (detail ->> 'timeout_seconds')::int = 3" % rid)
        check(n == "1", "the deadline is audited once", n)
        n = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.compensating'"
                  " AND object = 'run:%s' AND detail ->> 'timed_out' = 'true'" % rid)
        check(n == "1", "the compensation says it follows the timeout", n)
        n = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s'"
                  " AND to_status IN ('timed_out', 'failed')" % rid)
        check(n == "1", "the parent ended once (the reaper's backstop did not also end it)", n)
        time.sleep(3)  # a few more reaper sweeps: nothing more may happen to it
        again = s.get("/v1/runs/" + rid).json()
        check(again["status"] == "timed_out" and again["steps"] == done["steps"],
              "later sweeps leave the timed-out workflow alone", again)

        # 1b. A run from before migration 0018 (wf_deadline_exempt: a workflow in
        # flight during the upgrade) keeps running past the deadline.
        lid = s.submit("legacy", {"name": "t0"}).json()["id"]
        s.sql("UPDATE gw_runs SET wf_deadline_exempt = true WHERE id = '%s'" % lid)
        poll("legacy step b running",
             lambda: os.path.exists(os.path.join(m["legacy"], "b.started")))
        time.sleep(5)  # past its 3 s, and several reaper sweeps
        check(s.get("/v1/runs/" + lid).json()["status"] == "running",
              "an exempt (pre-upgrade) workflow is not timed out")
        open(os.path.join(m["legacy"], "b.go"), "w").close()
        check(s.wait_run(lid, timeout=120)["status"] == "succeeded",
              "... and finishes normally")

        # 2. A step run is not a request: rerun and resume name its workflow.
        step_a = [x["run_id"] for x in done["steps"] if x["id"] == "a" and x["operation"] == "create"][0]
        before = s.sql("SELECT count(*) FROM gw_runs")
        p = subprocess.run([GANGWAY, "rerun", step_a], capture_output=True, text=True,
                           env=cli_env, timeout=60)
        check(p.returncode == 1 and rid in p.stderr and "gangway resume %s" % rid in p.stderr
              and "step 'a'" in p.stderr,
              "gangway rerun of a step run exits 1 naming the workflow to rerun or resume",
              p.returncode, p.stdout, p.stderr)
        after = s.sql("SELECT count(*) FROM gw_runs")
        check(before == after, "the refused rerun started nothing", before, after)
        r = s.post("/v1/runs/%s/resume" % step_a)
        check(r.status == 409 and r.json()["code"] == "not_resumable"
              and r.json()["why"] == "step_run" and r.json()["parent_run"] == rid
              and rid in r.json()["detail"],
              "resuming a step run answers 409 step_run with its parent_run", r.status, r.body)
        r = s.post("/v1/runs/%s/resume" % step_a, {"inputs": {}})
        check(r.status == 409 and r.json()["why"] == "step_run",
              "... also when secret inputs are given", r.status, r.body)

        # 3. A timed-out workflow can be resumed (its deadline counts again).
        r = s.post("/v1/runs/%s/resume" % rid)
        check(r.status == 202 and r.json()["status"] == "running",
              "a timed-out workflow is resumed", r.status, r.body)

        # 4. Resume after the secret inputs were dropped.
        rid = s.submit("secretive", {"name": "svc", "token": "canary-111"}).json()["id"]
        done = s.wait_run(rid, timeout=120)
        check(done["status"] == "failed" and done["failed_step"] == "s1",
              "the secretive workflow fails at s1 (its gate is not there)", done)
        held = s.sql("SELECT inputs ->> 'token' FROM gw_runs WHERE id = '%s'" % rid)
        check(held == "[redacted]", "its secret was dropped when it ended", held)
        r = s.post("/v1/runs/%s/resume" % rid)
        check(r.status == 422 and r.json()["code"] == "secret_inputs_required"
              and [e["pointer"] for e in r.json()["errors"]] == ["/inputs/token"]
              and r.json()["errors"][0]["keyword"] == "required"
              and "give it again" in r.json()["errors"][0]["message"],
              "without the secret, the refusal names /inputs/token and says what to do",
              r.status, r.body)
        r = s.post("/v1/runs/%s/resume" % rid, {"inputs": {}})
        check(r.status == 422 and r.json()["code"] == "secret_inputs_required"
              and [e["pointer"] for e in r.json()["errors"]] == ["/inputs/token"],
              "an empty inputs object names the missing secret too", r.status, r.body)
        r = s.post("/v1/runs/%s/resume" % rid, {"inputs": {"token": "canary-222", "name": "x"}})
        check(r.status == 422 and r.json()["code"] == "validation_failed"
              and [e["pointer"] for e in r.json()["errors"]] == ["/inputs/name"],
              "an input that is not secret cannot be changed by a resume", r.status, r.body)
        r = s.post("/v1/runs/%s/resume" % rid, {"inputs": {"token": "short"}})
        check(r.status == 422 and r.json()["code"] == "validation_failed"
              and [e["pointer"] for e in r.json()["errors"]] == ["/inputs/token"],
              "a secret the schema refuses is 422 at its pointer", r.status, r.body)
        r = s.post("/v1/runs/%s/resume" % rid, {"inputs": "canary"})
        check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/inputs",
              "inputs must be an object", r.status, r.body)
        r = s.post("/v1/runs/%s/resume" % rid, {"secrets": {}})
        check(r.status in (400, 422), "an unknown body field is refused", r.status, r.body)
        # A run that still holds its secrets (a live resource of the workflow
        # keeps them; made so here by SQL) takes no replacement secrets.
        s.sql("UPDATE gw_runs SET secrets_dropped_at = NULL WHERE id = '%s'" % rid)
        r = s.post("/v1/runs/%s/resume" % rid, {"inputs": {"token": "canary-444"}})
        check(r.status == 422 and r.json()["code"] == "validation_failed"
              and r.json()["errors"][0]["pointer"] == "/inputs",
              "secrets are not replaced on a run that still holds them", r.status, r.body)
        s.sql("UPDATE gw_runs SET secrets_dropped_at = clock_timestamp() WHERE id = '%s'" % rid)
        check(s.get("/v1/runs/" + rid).json()["status"] == "failed",
              "the refused resumes changed nothing")
        p = subprocess.run([GANGWAY, "resume", rid], capture_output=True, text=True,
                           env=cli_env, timeout=60)
        check(p.returncode == 2 and "/inputs/token" in p.stderr,
              "gangway resume without the secret exits 2 naming it", p.returncode, p.stderr)
        open(gate, "w").close()
        p = subprocess.run([GANGWAY, "resume", rid, "-i", "token=canary-333"],
                           capture_output=True, text=True, env=cli_env, timeout=60)
        check(p.returncode == 0 and ("run %s resumed (running)" % rid) in p.stdout,
              "gangway resume -i token=... resumes it", p.returncode, p.stdout, p.stderr)
        done = s.wait_run(rid, timeout=120)
        log = marks_of(m["secret"])
        check(done["status"] == "succeeded" and [x[2]["auth"] for x in log] ==
              ["Bearer canary-111", "Bearer canary-333"],
              "the step ran again with the secret given at resume", done, log)
        shown = json.dumps(done) + json.dumps(s.get("/v1/runs?parent=" + rid).json())
        check("canary-333" not in shown and done["inputs"]["token"] == "[redacted]",
              "the secret is never shown", shown)
        held = s.sql("SELECT inputs ->> 'token' FROM gw_runs WHERE id = '%s'" % rid)
        check(held == "[redacted]", "the secret is dropped again when it ends", held)
        audit = s.sql("SELECT detail::text FROM gw_audit_log WHERE verb = 'run.resume'"
                      " AND object = 'run:%s'" % rid)
        check('"/token"' in audit and "canary" not in audit,
              "the resume is audited with the secret inputs given (names only)", audit)


if __name__ == "__main__":
    main(test)
