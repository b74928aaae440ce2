#!/usr/bin/env python3
"""Workflows (issue 17 part 1, docs/workflows.md) through the real broker,
PostgreSQL, Kafka and an exec worker. Every step is the same small program
that appends "<step> <operation> <inputs>" to a marks file, so the test sees
what ran, in which order, with which inputs:

- three steps succeed, each fed from the previous one's outputs; the parent
  ends succeeded with {steps: {id: outputs}} and lists its child runs;
- the third step fails: the first two are undone in reverse order (undo
  inputs from ${self.outputs.x}), the parent ends failed, compensated;
- a failing undo: the parent ends failed, compensated false,
  needs_reconciliation;
- cancel mid-workflow: the running step is cancelled, the finished one undone;
- an approval between steps: the second step waits in pending_approval
  until approved, then the workflow goes on; a step whose `when` does not
  match is skipped and the step after it still runs;
- steps without a mutual dependency run side by side (both running at once);
- resume: a failed workflow runs again from the failed step, the steps done
  before are not run again (their programs' starts are counted); 409
  not_resumable for a succeeded workflow and for one whose undo failed;
  GET /v1/runs?parent=ID lists the child runs;
- a step fed a secret input gets it, lists it in secret_paths, shows it
  redacted; a failed workflow whose secrets were dropped is not resumable
  without them (resuming with them: test_workflows_gaps.py);
- a workflow that creates a resource with a TTL: at expiry its teardown runs
  the steps' undo in reverse and the resource ends deleted;
- a bad reference is refused by the catalog reload with 422, line and pointer;
- examples/actions/scaffold-service.yaml loads (test_scaffold_service.py runs it);
- the CLI: `gangway run --wait` lists a workflow's steps, `gangway resume`.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Stack, check, main  # noqa: E402

STEP = r'''#!/usr/bin/env python3
import json, os, sys, time
name, marks = sys.argv[1], sys.argv[2]
inputs = json.load(sys.stdin)
op = os.environ.get("GANGWAY_OPERATION", "?")
with open(os.path.join(marks, "log"), "a") as f:
    f.write("%s %s %s\n" % (name, op, json.dumps(inputs, sort_keys=True)))
if inputs.get("hold"):
    # Held until the test says go (or a cancel kills us).
    open(os.path.join(marks, name + ".started"), "w").close()
    while not os.path.exists(os.path.join(marks, name + ".go")):
        time.sleep(0.1)
if "gate" in inputs and not os.path.exists(inputs["gate"]):
    print("step %s: %s is not there yet" % (name, inputs["gate"]))
    sys.exit(1)
if inputs.get("fail") is True:
    print("step %s fails as asked" % name)
    sys.exit(1)
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"url": "%s-of-%s" % (name, inputs.get("name", inputs.get("from", ""))),
               "n": len(name)}, f)
'''


def poll(what, fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    check(False, "timed out waiting for " + what)


def marks_of(marks):
    p = os.path.join(marks, "log")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [(ln.split(" ", 2)[0], ln.split(" ", 2)[1], json.loads(ln.split(" ", 2)[2]))
                for ln in f.read().splitlines()]


def write(directory, name, doc):
    with open(os.path.join(directory, name), "w") as f:
        json.dump(doc, f)


def test():
    s = Stack("workflows", broker_args=["--heartbeat", "1"])
    actions = os.path.join(s.tmp, "actions")
    os.makedirs(actions)
    prog = s.write_program("step.py", STEP)

    def call(name, marks, inputs):
        return {"worker_type": "exec", "backend": {"command": [prog, name, marks]},
                "inputs": inputs}

    def step(sid, marks, inputs, undo=None, **extra):
        d = {"id": sid, **call(sid, marks, inputs), "timeout_seconds": 60}
        if undo is not None:
            d["undo"] = call("undo-" + sid, marks, undo)
        d.update(extra)
        return d

    def chain(action_id, marks, fail_b_undo=False):
        return {"id": action_id, "title": action_id,
                "inputs": {"type": "object", "required": ["name"],
                           "properties": {"name": {"type": "string"},
                                          "fail": {"type": "boolean"},
                                          "hold": {"type": "boolean"}}},
                "steps": [
                    step("a", marks, {"name": "${inputs.name}"}, {"url": "${self.outputs.url}"}),
                    step("b", marks, {"from": "${steps.a.outputs.url}", "hold": "${inputs.hold}"},
                         {"url": "${self.outputs.url}", "fail": fail_b_undo}),
                    step("c", marks, {"from": "${steps.b.outputs.url}", "n": "${steps.a.outputs.n}",
                                      "label": "svc-${inputs.name}-${steps.a.outputs.n}",
                                      "fail": "${inputs.fail}"}),
                ]}

    m = {k: os.path.join(s.tmp, "marks-" + k)
         for k in ("ok", "undo", "badundo", "appr", "par", "resume", "ttl", "secret")}
    for d in m.values():
        os.makedirs(d)
    write(actions, "chain.json", chain("chain", m["ok"]))
    write(actions, "chain-undo.json", chain("chain-undo", m["undo"]))
    write(actions, "chain-badundo.json", chain("chain-badundo", m["badundo"], fail_b_undo=True))
    write(actions, "gated.json", {
        "id": "gated", "title": "gated", "inputs": {"type": "object", "properties": {
            "name": {"type": "string"}}},
        "steps": [step("build", m["appr"], {"name": "${inputs.name}"}),
                  step("prod", m["appr"], {"from": "${steps.build.outputs.url}"},
                       approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]}),
                  step("notify", m["appr"], {}, when={"name": ["never"]}),
                  step("after", m["appr"], {"p": "${steps.prod.outputs.url}"})]})
    write(actions, "fan.json", {
        "id": "fan", "title": "fan", "inputs": {"type": "object", "properties": {
            "name": {"type": "string"}}},
        "steps": [step("left", m["par"], {"name": "${inputs.name}", "hold": True}),
                  step("right", m["par"], {"name": "${inputs.name}", "hold": True}, needs=[]),
                  step("join", m["par"], {"l": "${steps.left.outputs.url}",
                                          "r": "${steps.right.outputs.url}"},
                       needs=["left", "right"])]})
    gate = os.path.join(m["resume"], "z.ok")
    write(actions, "resumable.json", {
        "id": "resumable", "title": "resumable", "inputs": {"type": "object", "properties": {
            "name": {"type": "string"}}},
        "steps": [step("x", m["resume"], {"name": "${inputs.name}"}),
                  step("y", m["resume"], {"from": "${steps.x.outputs.url}"}),
                  step("z", m["resume"], {"from": "${steps.y.outputs.url}", "gate": gate})]})
    write(actions, "secretive.json", {
        "id": "secretive", "title": "secretive", "inputs": {"type": "object", "properties": {
            "name": {"type": "string"}, "token": {"type": "string", "writeOnly": True}}},
        "steps": [step("s1", m["secret"], {"auth": "Bearer ${inputs.token}", "n": "${inputs.name}",
                                            "gate": os.path.join(m["secret"], "never")})]})
    lease = chain("lease", m["ttl"])
    lease.update({"resource_key": "/name", "resource": {"kind": "service", "name": "/name"},
                  "ttl": {"default_seconds": 3, "max_seconds": 60, "warn_before_seconds": 1,
                          "teardown_retry_seconds": 1}})
    write(actions, "lease.json", lease)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=4)
        bob, carol = s.make_tokens("bob:payments", "carol:sre")

        # 0. GET /v1/actions: a workflow's workers are its steps' (none seen yet).
        acts = {x["id"]: x for x in s.get("/v1/actions").json()["items"]}
        check(acts["chain"]["worker_type"] == "workflow" and acts["chain"]["workers"]["seen"] is False,
              "before any exec worker claimed, the workflow's workers are not seen", acts["chain"])

        # 1. Three steps, outputs passed along.
        r = s.submit("chain", {"name": "svc1", "fail": False, "hold": False})
        check(r.status == 202 and r.json()["status"] == "running"
              and r.json()["worker_type"] == "workflow" and not r.json().get("warnings"),
              "a workflow is accepted and running at once", r.status, r.body)
        rid = ok_run = r.json()["id"]
        done = s.wait_run(rid, timeout=120)
        check(done["status"] == "succeeded", "the workflow succeeds", done)
        outs = done["outputs"]["steps"]
        check(outs["a"]["url"] == "a-of-svc1" and outs["b"]["url"] == "b-of-a-of-svc1"
              and outs["c"]["url"] == "c-of-b-of-a-of-svc1",
              "the parent's outputs are {steps: {id: outputs}}, each fed from the one before", outs)
        log = marks_of(m["ok"])
        check([(x[0], x[1]) for x in log] == [("a", "create"), ("b", "create"), ("c", "create")],
              "the steps ran in order, once each", log)
        check(log[2][2] == {"from": "b-of-a-of-svc1", "n": 1, "label": "svc-svc1-1", "fail": False},
              "whole-value references keep their type, others interpolate", log[2][2])
        check([(x["id"], x["status"], x["operation"]) for x in done["steps"]] ==
              [("a", "succeeded", "create"), ("b", "succeeded", "create"),
               ("c", "succeeded", "create")], "GET /v1/runs/{id} lists the steps", done["steps"])
        child = s.get("/v1/runs/" + done["steps"][1]["run_id"]).json()
        check(child["parent_run"] == rid and child["step"] == "b" and child["worker_type"] == "exec",
              "a step is a child run of the workflow", child)

        acts = {x["id"]: x for x in s.get("/v1/actions").json()["items"]}
        check(acts["chain"]["workers"]["seen"] is True,
              "once exec workers claimed, the workflow's workers are seen", acts["chain"])

        p = subprocess.run([GANGWAY, "run", "chain", "-i", "name=svc0", "-i", "fail=false",
                            "-i", "hold=false", "--wait"], capture_output=True, text=True,
                           env=dict(os.environ, GANGWAY_URL=s.url, GANGWAY_TOKEN=s.token,
                                    HOME=s.tmp, XDG_CONFIG_HOME=s.tmp), timeout=120)
        check(p.returncode == 0 and "succeeded" in p.stdout
              and len([ln for ln in p.stdout.splitlines() if ln.startswith("  create ")]) == 3,
              "gangway run --wait of a workflow lists its three steps", p.returncode, p.stdout,
              p.stderr)

        # 2. The third step fails: b then a undone, in reverse.
        rid = s.submit("chain-undo", {"name": "svc2", "fail": True, "hold": False}).json()["id"]
        done = s.wait_run(rid, timeout=120)
        log = marks_of(m["undo"])
        check(done["status"] == "failed" and done["reason"] == "step_failed"
              and done["failed_step"] == "c" and done["compensated"] is True
              and not done.get("needs_reconciliation"),
              "the parent ends failed, compensated", done)
        check([(x[0], x[1]) for x in log] == [("a", "create"), ("b", "create"), ("c", "create"),
                                              ("undo-b", "undo"), ("undo-a", "undo")],
              "the finished steps are undone in reverse order", log)
        check(log[3][2] == {"url": "b-of-a-of-svc2", "fail": False}
              and log[4][2] == {"url": "a-of-svc2"},
              "an undo gets the step's own outputs through ${self.outputs.x}", log[3:])
        check([(x["id"], x["operation"], x["status"]) for x in done["steps"]][3:] ==
              [("b", "undo", "succeeded"), ("a", "undo", "succeeded")],
              "every undo is visible in the parent's steps", done["steps"])

        # 3. A failing undo: not compensated, needs reconciliation, the other undo still runs.
        rid = badundo_run = s.submit("chain-badundo", {"name": "svc3", "fail": True}).json()["id"]
        done = s.wait_run(rid, timeout=120)
        log = marks_of(m["badundo"])
        check(done["status"] == "failed" and done["compensated"] is False
              and done["needs_reconciliation"] is True,
              "a failed undo leaves the parent compensated=false, needs_reconciliation", done)
        check([x[0] for x in log][-2:] == ["undo-b", "undo-a"],
              "the undo of a still runs after b's failed", log)

        # 4. Cancel mid-workflow: b is held running; cancel; b stops, a is undone.
        rid = s.submit("chain-undo", {"name": "svc4", "hold": True}).json()["id"]
        poll("step b running", lambda: os.path.exists(os.path.join(m["undo"], "b.started")))
        r = s.post("/v1/runs/%s/cancel" % rid, {"reason": "changed my mind"})
        check(r.status == 202, "cancelling a running workflow is accepted", r.status, r.body)
        done = s.wait_run(rid, timeout=120)
        check(done["status"] == "cancelled" and done["compensated"] is True,
              "the workflow ends cancelled, compensated", done)
        st = [(x["id"], x["operation"], x["status"]) for x in done["steps"]]
        check(("b", "create", "cancelled") in st and ("a", "undo", "succeeded") in st
              and not any(x[0] == "c" for x in st) and not any(x[0] == "b" and x[1] == "undo" for x in st),
              "the running step was cancelled, the finished one undone, the rest never started", st)

        # 5. An approval between steps.
        rid = s.submit("gated", {"name": "svc5"}).json()["id"]
        run = poll("step prod waiting for approval", lambda: (lambda j: j if any(
            x["id"] == "prod" and x["status"] == "pending_approval" for x in j.get("steps", []))
            else None)(s.get("/v1/runs/" + rid).json()))
        check(run["status"] == "running" and [x[0] for x in marks_of(m["appr"])] == ["build"],
              "the workflow waits before prod, build done", run)
        prod = [x for x in run["steps"] if x["id"] == "prod"][0]["run_id"]
        r = s.post("/v1/runs/%s/decisions" % prod, {"decision": "approve", "comment": "go"},
                   token=carol)
        check(r.status in (200, 201), "sre approves the prod step", r.status, r.body)
        done = s.wait_run(rid, timeout=120)
        check(done["status"] == "succeeded" and done["outputs"]["steps"]["prod"]["url"]
              == "prod-of-build-of-svc5", "after the approval the workflow finishes", done)
        check(done["skipped_steps"] == ["notify"]
              and [x[0] for x in marks_of(m["appr"])] == ["build", "prod", "after"],
              "a step whose when does not match is skipped, the next one still runs",
              done, marks_of(m["appr"]))

        # 6. Parallel steps: left and right both running at once, join after both.
        rid = s.submit("fan", {"name": "svc6"}).json()["id"]
        poll("left and right both started", lambda: all(
            os.path.exists(os.path.join(m["par"], n + ".started")) for n in ("left", "right")))
        check([x[0] for x in marks_of(m["par"])].count("join") == 0,
              "join waits while left and right run side by side")
        for n in ("left", "right"):
            open(os.path.join(m["par"], n + ".go"), "w").close()
        done = s.wait_run(rid, timeout=120)
        log = marks_of(m["par"])
        check(done["status"] == "succeeded" and log[-1][0] == "join"
              and log[-1][2] == {"l": "left-of-svc6", "r": "right-of-svc6"},
              "join ran last with both outputs", log)

        # 7. Resume from the failed step.
        rid = s.submit("resumable", {"name": "svc7"}).json()["id"]
        done = s.wait_run(rid, timeout=120)
        check(done["status"] == "failed" and done["failed_step"] == "z",
              "the workflow fails at z (its gate is not there)", done)
        r = s.post("/v1/runs/%s/resume" % ok_run)
        check(r.status == 409 and r.json()["code"] == "not_resumable"
              and r.json()["why"] == "not_failed", "a succeeded workflow is not resumable", r.body)
        r = s.post("/v1/runs/%s/resume" % badundo_run)
        check(r.status == 409 and r.json()["why"] == "needs_reconciliation",
              "a workflow whose undo failed is not resumable", r.body)
        r = s.post("/v1/runs/%s/resume" % done["steps"][0]["run_id"])
        check(r.status == 409 and r.json()["why"] == "step_run" and r.json()["parent_run"] == rid,
              "a step run is not resumable: its workflow is", r.body)
        cli_env = dict(os.environ, GANGWAY_URL=s.url, GANGWAY_TOKEN=s.token,
                       HOME=s.tmp, XDG_CONFIG_HOME=s.tmp)
        p = subprocess.run([GANGWAY, "resume", ok_run], capture_output=True, text=True,
                           env=cli_env, timeout=60)
        check(p.returncode == 1 and "only a failed workflow" in p.stderr,
              "gangway resume of a succeeded workflow exits 1 and says why", p.returncode,
              p.stdout, p.stderr)
        open(gate, "w").close()
        p = subprocess.run([GANGWAY, "resume", rid], capture_output=True, text=True,
                           env=cli_env, timeout=60)
        check(p.returncode == 0 and ("run %s resumed (running)" % rid) in p.stdout,
              "gangway resume resumes the failed workflow", p.returncode, p.stdout, p.stderr)
        done = s.wait_run(rid, timeout=120)
        starts = [x[0] for x in marks_of(m["resume"])]
        check(done["status"] == "succeeded" and starts == ["x", "y", "z", "z"],
              "after resume only z ran again; x and y were not repeated", starts, done)
        check(done["outputs"]["steps"]["z"]["url"] == "z-of-y-of-x-of-svc7",
              "z used y's output from before the resume", done["outputs"])
        audit = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.resume'"
                      " AND object = 'run:%s'" % rid)
        check(audit == "1", "the resume is audited", audit)
        r = s.get("/v1/runs?parent=" + rid)
        kids = r.json()["items"] if r.status == 200 else []
        check(r.status == 200 and sorted(k["step"] for k in kids) == ["x", "y", "z", "z"],
              "GET /v1/runs?parent=ID lists the workflow's child runs", r.status, r.body)
        r = s.get("/v1/runs?parent=nope")
        check(r.status == 400 and r.json()["code"] == "invalid_parameter",
              "parent must be a run id", r.status, r.body)

        # 7b. Secrets: a step fed a secret input gets it, shows it redacted and
        # lists it in its secret_paths; the failed workflow dropped its secrets,
        # so it is not resumable without them.
        rid = s.submit("secretive", {"name": "svc9", "token": "canary-123"}).json()["id"]
        done = s.wait_run(rid, timeout=120)
        log = marks_of(m["secret"])
        check(done["status"] == "failed" and log and log[0][2]["auth"] == "Bearer canary-123",
              "the step's worker got the secret", done, log)
        st = s.get("/v1/runs/" + done["steps"][0]["run_id"]).json()
        check(st["inputs"]["auth"] == "Bearer [redacted]" and st.get("secret_inputs") == ["/auth"]
              and "canary-123" not in json.dumps(st),
              "the step run shows the secret redacted and lists it as secret", st)
        r = s.post("/v1/runs/%s/resume" % rid)
        check(r.status == 422 and r.json()["code"] == "secret_inputs_required",
              "a workflow whose secrets were dropped resumes only with them given again "
              "(test_workflows_gaps.py)", r.status, r.body)

        # 8. TTL: the expired workflow resource is torn down through the undo steps.
        rid = s.submit("lease", {"name": "svc8", "fail": False, "hold": False}).json()["id"]
        done = s.wait_run(rid, timeout=120)
        check(done["status"] == "succeeded" and done.get("resource"),
              "the workflow succeeds and records its resource", done)
        res = poll("the resource deleted at expiry", lambda: (lambda j: j if j.get("status") ==
                   "deleted" else None)(s.get("/v1/resources/" + done["resource"]).json()),
                   timeout=90)
        log = marks_of(m["ttl"])
        check([(x[0], x[1]) for x in log][3:] == [
              ("undo-b", "undo"), ("undo-a", "undo")],
              "the teardown ran b's then a's undo (c has none)", log)
        td = s.get("/v1/runs?parent=" + rid).json()["items"]
        tdr = [x for x in td if x["operation"] == "teardown"]
        check(len(tdr) == 1 and tdr[0]["status"] == "succeeded"
              and [(x["id"], x["operation"]) for x in tdr[0]["steps"]] ==
              [("b", "undo"), ("a", "undo")],
              "the teardown run lists its undo runs", tdr)

        # 9. A bad reference is refused at load, with its line.
        with open(os.path.join(actions, "bad.yaml"), "w") as f:
            f.write("id: bad\ntitle: bad\ninputs: {type: object}\nsteps:\n"
                    "  - id: one\n    worker_type: exec\n    backend: {command: [/bin/cat]}\n"
                    "    inputs: {x: \"${steps.two.outputs.y}\"}\n")
        r = s.post("/v1/admin/actions/reload")
        body = r.json()
        check(r.status == 422 and "line 8" in json.dumps(body) and "steps.two" in json.dumps(body),
              "the reload refuses an unknown step reference with its line", r.status, body)

        # 10. The shipped example loads (test_scaffold_service.py runs it end to end).
        os.unlink(os.path.join(actions, "bad.yaml"))
        shutil.copy(os.path.join(SRC, "examples", "actions", "scaffold-service.yaml"), actions)
        r = s.post("/v1/admin/actions/reload")
        check(r.status == 200, "examples/actions/scaffold-service.yaml loads", r.status, r.body)
        a = s.get("/v1/actions/scaffold-service").json()
        check([(x["id"], x["worker_type"], x["undo"]) for x in a["steps"]] ==
              [("repo", "git", True), ("pipeline", "jenkins", True), ("env", "terraform", True)],
              "its steps are repo, pipeline, env, each with an undo", a)


if __name__ == "__main__":
    main(test)
