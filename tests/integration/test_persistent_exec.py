#!/usr/bin/env python3
"""The exec backend's persistent mode (docs/persistent-exec.md) through the
real broker, PostgreSQL and Kafka, with one worker slot:

- runs succeed through a persistent program, and several runs are served by
  ONE process (the program records every start of itself);
- a program's log lines become the run's log events;
- a cancel reaches the program as a cancel line; it acknowledges, the run
  ends cancelled and the same process serves the next run;
- a timeout: the program is asked to stop (reason "timeout") and the run
  ends timed_out;
- a program that ignores a cancel is killed after kill_grace_seconds: the
  run ends cancelled and the next run gets a fresh program;
- a program crashing mid-run: the run fails with reason program_exited and
  the next run gets a fresh program;
- a malformed line: the run fails with reason protocol_error, the worker
  lives on, the next run gets a fresh program;
- a line over the 2 MiB limit: the run fails with reason output_limit;
- the shipped example (examples/actions/echo-fast.json) works."""
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import SRC, Stack, check, main, need_services  # noqa: E402

PROGRAM = r'''#!/usr/bin/env python3
import json, os, select, sys, time

with open(os.environ["STARTS"], "a") as f:
    f.write("%d\n" % os.getpid())
served = 0

def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

def wait_cancel(run_id, obey):
    # Work "forever", reading stdin for a cancel line meanwhile.
    while True:
        r, _, _ = select.select([sys.stdin], [], [], 300)
        if not r:
            continue
        line = sys.stdin.readline()
        if not line:
            sys.exit(0)
        msg = json.loads(line)
        if msg.get("type") == "cancel" and msg.get("id") == run_id:
            with open(os.environ["MARKS"] + "/cancel-" + msg["reason"], "w") as f:
                f.write(run_id)
            if obey:
                send({"type": "cancelled", "id": run_id})
                return

while True:
    line = sys.stdin.readline()
    if not line:
        break
    msg = json.loads(line)
    if msg["type"] == "hello":
        send({"type": "hello", "protocol": 1})
        continue
    if msg["type"] != "run":
        continue
    served += 1
    rid, mode = msg["id"], msg["inputs"].get("mode", "ok")
    with open(os.environ["MARKS"] + "/" + msg["run_id"], "w") as f:
        f.write(mode)
    if mode == "log":
        send({"type": "log", "id": rid, "stream": "stdout", "line": "hello from " + msg["run_id"]})
        send({"type": "log", "id": rid, "stream": "stderr", "line": "a warning"})
    elif mode == "sleep":
        wait_cancel(rid, True)
        continue
    elif mode == "stubborn":
        wait_cancel(rid, False)
    elif mode == "crash":
        os._exit(3)
    elif mode == "garbage":
        sys.stdout.write("this is not json\n")
        sys.stdout.flush()
        continue
    elif mode == "huge":
        sys.stdout.write('{"type":"log","id":"%s","line":"%s"}\n' % (rid, "x" * (3 << 20)))
        sys.stdout.flush()
        continue
    send({"type": "result", "id": rid, "status": "succeeded",
          "outputs": {"pid": os.getpid(), "served": served, "attempt": msg["attempt"]}})
'''


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            check(True, what)
            return v
        time.sleep(0.05)
    check(False, what + " (timed out after %ss)" % timeout)


def starts(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def test():
    need_services()
    actions = tempfile.mkdtemp(prefix="gw-persist-actions-")
    marks = tempfile.mkdtemp(prefix="gw-persist-marks-")
    s = Stack("persist", actions_dir=actions)
    with s:
        prog = s.write_program("prog.py", PROGRAM)
        starts_file = os.path.join(s.tmp, "starts")
        backend = {"mode": "persistent", "command": [prog], "kill_grace_seconds": 2,
                   "env": {"STARTS": starts_file, "MARKS": marks}}
        for aid, timeout in (("p", 300), ("p-timeout", 2)):
            with open(os.path.join(actions, aid + ".json"), "w") as f:
                json.dump({"id": aid, "title": aid, "worker_type": "exec", "backend": backend,
                           "timeout_seconds": timeout, "inputs": {"type": "object"}}, f)
        # The shipped example, its program found relative to its own file.
        with open(os.path.join(SRC, "examples", "actions", "echo-fast.json")) as f:
            example = json.load(f)
        example["backend"]["command"] = [os.path.join(SRC, "examples", "programs",
                                                      "echo_persistent.py")]
        with open(os.path.join(actions, "echo-fast.json"), "w") as f:
            json.dump(example, f)
        s.start_broker()
        worker = s.start_worker(concurrency=1)

        def run(action, inputs, timeout=90):
            r = s.submit(action, inputs)
            check(r.status in (201, 202), "%s %s submitted" % (action, inputs), r.status, r.body)
            return s.wait_run(r.json()["id"], timeout=timeout)

        def reason(run):
            return s.sql("SELECT data->>'reason' FROM gw_worker_events WHERE run_id = '%s' "
                         "AND kind = 'failed'" % run["id"])

        # 1. Several runs, one process.
        pids = []
        for i in range(5):
            r = run("p", {"mode": "ok"})
            check(r["status"] == "succeeded", "run %d succeeded" % i, r)
            pids.append(r["outputs"]["pid"])
            check(r["outputs"]["served"] == i + 1, "it is the program's run number %d" % (i + 1), r)
        check(len(set(pids)) == 1, "one process served all five runs", pids)
        check(starts(starts_file) == pids[:1], "the program was started once", starts(starts_file))
        kinds = s.sql("SELECT string_agg(kind, ',' ORDER BY seq) FROM gw_worker_events "
                      "WHERE run_id = '%s'" % r["id"])
        check(kinds == "succeeded" and r.get("started_at"),
              "a run ending within 20 ms without a log line: its final event alone (still started)",
              kinds, r)

        # 2. Log lines.
        r = run("p", {"mode": "log"})
        check(r["status"] == "succeeded", "the logging run succeeded", r)
        logs = s.sql("SELECT string_agg(stream || ':' || line, '|' ORDER BY seq) FROM gw_worker_events "
                     "WHERE run_id = '%s' AND kind = 'log'" % r["id"])
        check(logs == "stdout:hello from %s|stderr:a warning" % r["id"], "its log lines are events", logs)
        kinds = s.sql("SELECT string_agg(kind, ',' ORDER BY seq) FROM gw_worker_events "
                      "WHERE run_id = '%s'" % r["id"])
        check(kinds == "started,log,log,succeeded", "events: started, logs, succeeded", kinds)

        # 3. A cancel reaches the program, which acknowledges it.
        sub = s.submit("p", {"mode": "sleep"})
        rid = sub.json()["id"]
        wait_for("the sleeping run reached the program",
                 lambda: os.path.exists(os.path.join(marks, rid)))
        s.wait_run(rid, until={"running"})
        c = s.post("/v1/runs/%s/cancel" % rid, {"reason": "test"})
        check(c.status == 202, "cancel accepted", c.status, c.body)
        r = s.wait_run(rid, timeout=60)
        check(r["status"] == "cancelled", "the run ends cancelled", r)
        check(os.path.exists(os.path.join(marks, "cancel-requested")),
              "the program got a cancel line with reason requested")
        kinds = s.sql("SELECT string_agg(kind, ',' ORDER BY seq) FROM gw_worker_events "
                      "WHERE run_id = '%s'" % rid)
        check(kinds.startswith("started,") and kinds.endswith(",cancelled"),
              "a longer run reports started first", kinds)
        r = run("p", {"mode": "ok"})
        check(r["outputs"]["pid"] == pids[0], "the same process serves the next run", r)

        # 4. A timeout: the program is asked to stop, and obeys.
        r = run("p-timeout", {"mode": "sleep"})
        check(r["status"] == "timed_out", "the run times out", r)
        check(os.path.exists(os.path.join(marks, "cancel-timeout")),
              "the program got a cancel line with reason timeout")
        r = run("p", {"mode": "ok"})
        check(r["outputs"]["pid"] == pids[0] and len(starts(starts_file)) == 1,
              "the program that obeyed serves on", r, starts(starts_file))

        # 5. A program ignoring a cancel is killed after its grace.
        sub = s.submit("p", {"mode": "stubborn"})
        rid = sub.json()["id"]
        wait_for("the stubborn run reached the program",
                 lambda: os.path.exists(os.path.join(marks, rid)))
        s.wait_run(rid, until={"running"})
        s.post("/v1/runs/%s/cancel" % rid, {"reason": "test"})
        r = s.wait_run(rid, timeout=60)
        check(r["status"] == "cancelled", "the stubborn run ends cancelled (killed)", r)
        r = run("p", {"mode": "ok"})
        check(r["status"] == "succeeded" and r["outputs"]["pid"] != pids[0]
              and r["outputs"]["served"] == 1 and len(starts(starts_file)) == 2,
              "the next run gets a fresh program", r, starts(starts_file))

        # 6-8. Crash, malformed line, oversized line.
        for mode, want in (("crash", "program_exited"), ("garbage", "protocol_error"),
                           ("huge", "output_limit")):
            before = len(starts(starts_file))
            r = run("p", {"mode": mode})
            check(r["status"] == "failed" and reason(r) == want,
                  "%s: the run fails with reason %s" % (mode, want), r, reason(r))
            check(r.get("error", {}).get("message"), "%s: the run says why" % mode, r)
            r = run("p", {"mode": "ok"})
            check(r["status"] == "succeeded" and r["outputs"]["served"] == 1
                  and len(starts(starts_file)) == before + 1,
                  "%s: the next run gets a fresh program" % mode, r, starts(starts_file))
        check(worker.poll() is None, "the worker is still running")

        # 9. The shipped example.
        a = run("echo-fast", {"message": "hi", "shout": True})
        b = run("echo-fast", {"message": "again"})
        check(a["status"] == b["status"] == "succeeded" and a["outputs"]["message"] == "HI",
              "the example action succeeds", a, b)
        check(a["outputs"]["pid"] == b["outputs"]["pid"] and b["outputs"]["runs_served"] == 2,
              "the example program serves both runs", a["outputs"], b["outputs"])

        # The worker stops cleanly with its idle programs.
        rc = s.stop(worker)
        check(rc == 0, "the worker exits 0 on SIGTERM with idle programs", rc)
        check("handles still open" not in s.log("worker0"), "its loop closed clean")


if __name__ == "__main__":
    main(test)
