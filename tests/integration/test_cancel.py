#!/usr/bin/env python3
"""Cancelling runs through the real broker, PostgreSQL and Kafka
(POST /v1/runs/{id}/cancel, docs/worker-protocol.md section 8):

- the worker starts before the broker has created its topics, so
  <prefix>gangway.control appears late: the worker picks it up;
- a running exec run (a shell that starts a child and waits) is cancelled:
  202 while the worker stops it, then the run ends `cancelled`, its whole
  process group is gone, and the control message validates against
  schemas/events/;
- cancelling an ended run: 409 problem+json `run_ended`; an unknown run: 404;
- a queued run (no worker running) cancelled: 200 `cancelled`; a worker
  started afterwards gets its run.requested, the claim is refused, nothing
  executes."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import GANGWAY, SRC, Stack, check, main, need_services  # noqa: E402

SCHEMAS = os.path.join(SRC, "schemas", "events")


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            check(True, what)
            return v
        time.sleep(0.1)
    check(False, what + " (timed out after %ss)" % timeout)


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def alive(pgid, pid):
    """Live (non-zombie) processes in group pgid, or pid itself. Zombies
    count as gone: nothing here may reap orphans."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, pgrp = fields[0], int(fields[2])
        if state != "Z" and (pgrp == pgid or int(name) == pid):
            found.append(int(name))
    return found


def action(directory, action_id, script, marks):
    doc = {"id": action_id, "title": action_id, "worker_type": "exec",
           "backend": {"command": ["/bin/sh", "-c", script, marks], "kill_grace_seconds": 2},
           "timeout_seconds": 300,
           "inputs": {"type": "object"}}
    with open(os.path.join(directory, action_id + ".json"), "w") as f:
        json.dump(doc, f)


def test():
    need_services()
    actions = tempfile.mkdtemp(prefix="gw-cancel-actions-")
    marks = tempfile.mkdtemp(prefix="gw-cancel-marks-")
    # SIGTERM kills the shell (it waits) and its child together: the whole
    # group. The child ignoring nothing, SIGKILL is the fallback.
    action(actions, "sleepy",
           'echo $$ > "$0/$GANGWAY_RUN_ID.pgid"; sleep 300 & echo $! > "$0/$GANGWAY_RUN_ID.child"; '
           'echo started > "$0/$GANGWAY_RUN_ID.started"; wait', marks)
    action(actions, "quick", 'echo ran > "$0/$GANGWAY_RUN_ID.ran"', marks)
    s = Stack("cancel", actions_dir=actions)
    try:
        with s:
            # 1. The worker before the broker: no topics yet.
            w0 = s.start_worker(concurrency=2)
            time.sleep(2)
            check(w0.poll() is None, "the worker keeps running while its topics do not exist")
            s.start_broker()
            wait_for("the worker listens on gangway.control once the broker created it",
                     lambda: "control: listening for cancels" in s.log("worker0"), timeout=90)
            check(any("gangway.control" in line and ("not available" in line or "nknown topic" in line)
                      for line in s.log("worker0").splitlines()),
                  "(it had been told the control topic did not exist)")
            time.sleep(1)  # the consumer starts at the end: let it fetch its position

            # 2. A running run.
            r = s.submit("sleepy", {})
            check(r.status in (201, 202), "sleepy submitted", r.status, r.body)
            run_id = r.json()["id"]
            wait_for("sleepy is running with its child",
                     lambda: os.path.exists(os.path.join(marks, run_id + ".started")), timeout=60)
            pgid = read_pid(os.path.join(marks, run_id + ".pgid"))
            child = read_pid(os.path.join(marks, run_id + ".child"))
            check(alive(pgid, child), "its process group is alive", pgid, child)
            check(s.wait_run(run_id, until={"running"})["status"] == "running", "the run is running")
            r = s.post("/v1/runs/%s/cancel" % run_id, {"reason": "integration test"})
            check(r.status == 202 and r.json()["status"] == "running",
                  "cancel of a running run: 202, still running while the worker stops it", r.status, r.body)
            run = s.wait_run(run_id, timeout=30)
            check(run["status"] == "cancelled", "the run ends cancelled", run)
            wait_for("its process group is gone", lambda: not alive(pgid, child), timeout=15)
            kinds = s.sql("SELECT string_agg(kind, ',' ORDER BY seq) FROM gw_worker_events "
                          "WHERE run_id = '%s'" % run_id)
            check(kinds.startswith("started") and kinds.endswith(",cancelled"),
                  "the worker reported started ... cancelled", kinds)

            # The broker's control message is schema-valid.
            out = subprocess.run(["kcat", "-C", "-b", s.kafka, "-t", s.prefix + "gangway.control",
                                  "-o", "beginning", "-e", "-q"],
                                 capture_output=True, text=True, timeout=60).stdout
            msgs = [json.loads(line) for line in out.splitlines() if line.strip()]
            check(len(msgs) == 1 and msgs[0]["type"] == "dev.gangway.run.cancel"
                  and msgs[0]["data"]["run_id"] == run_id and msgs[0]["data"]["attempt"] == 1,
                  "one dev.gangway.run.cancel for the run on gangway.control", msgs)
            path = os.path.join(s.tmp, "cancel.json")
            with open(path, "w") as f:
                json.dump(msgs[0], f)
            p = subprocess.run([GANGWAY, "schema", "validate", "--format-assert",
                                "--ref-dir", "https://gangway.dev/schemas/events/=" + SCHEMAS,
                                os.path.join(SCHEMAS, "envelope.schema.json"), path],
                               capture_output=True, text=True, timeout=60)
            check(p.returncode == 0, "the control message validates against schemas/events/",
                  p.stdout + p.stderr)

            # 3. Ended and unknown runs.
            r = s.post("/v1/runs/%s/cancel" % run_id)
            check(r.status == 409 and r.headers.get("content-type", "").startswith("application/problem+json")
                  and r.json().get("code") == "run_ended",
                  "cancelling an ended run: 409 problem+json run_ended", r.status, r.body)
            r = s.post("/v1/runs/00000000-0000-4000-8000-000000000000/cancel")
            check(r.status == 404, "cancelling an unknown run: 404", r.status, r.body)

            # 4. A queued run: no worker, cancelled, then a worker comes.
            check(s.stop(w0) == 0, "the worker exits 0 on SIGTERM")
            r = s.submit("quick", {})
            check(r.status in (201, 202), "quick submitted", r.status, r.body)
            queued = r.json()["id"]
            check(s.wait_run(queued, until={"queued"}, timeout=30)["status"] == "queued", "it waits queued")
            r = s.post("/v1/runs/%s/cancel" % queued)
            check(r.status == 200 and r.json()["status"] == "cancelled",
                  "cancel of a queued run: 200, cancelled", r.status, r.body)
            s.start_worker(concurrency=2)
            wait_for("the new worker gets the run.requested and its claim is refused",
                     lambda: any(queued in line and "claim refused" in line
                                 for line in s.log("worker1").splitlines()), timeout=90)
            check(not os.path.exists(os.path.join(marks, queued + ".ran")), "the queued run never executed")
            check(s.sql("SELECT count(*) FROM gw_worker_events WHERE run_id = '%s'" % queued) == "0",
                  "and no worker event exists for it")
            check(s.get("/v1/runs/" + queued).json()["status"] == "cancelled", "it stays cancelled")
    finally:
        shutil.rmtree(actions, ignore_errors=True)
        shutil.rmtree(marks, ignore_errors=True)


if __name__ == "__main__":
    main(test)
