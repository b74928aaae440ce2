#!/usr/bin/env python3
"""Runs outlive their worker (docs/reattach.md): exec runs of a worker with
--supervise live under `gangway supervise`, and a worker started later on the
host reattaches them. Real broker, PostgreSQL and Kafka; the program is a
shell script that appends to a file once per start and prints a numbered
line every 0.5 s.

1. worker SIGKILLed mid-run, restarted -> succeeded, every line once and in
   order, the program started once;
2. the same, restarted only after the program ended (its output spooled while
   no worker was attached) -> the same;
3. cancel while no worker is attached -> the supervisor kills the program
   (it learns the cancel from its heartbeat), the run ends cancelled once a
   worker reattaches;
4. timeout while no worker is attached -> timed_out, as today;
5. the worker AND the supervisor and program SIGKILLed (host loss) -> the
   broker's worker_lost rule, as today; a restarted worker drops the dead
   run's directory;
6. --drain-mode handoff + SIGTERM -> the worker exits at once, the program
   goes on, a new worker reattaches, the run succeeds;
7. a 40000-byte line still arrives in pieces of at most 16 KiB;
9. a handoff drain the instant a run starts (the seam GW_TEST_DRAIN_AT_START):
   a run is detached only once its supervisor confirms it holds the spec;
   every run succeeds, each program started once;
8. terraform (hosted whole by its supervisor): worker SIGKILLed during the
   apply, restarted -> succeeded, the apply's provisioner ran once, every
   line once and in order, outputs back; a second one cancelled while no
   worker is attached ends cancelled, its provisioner killed by terraform's
   own stop sequence inside the supervisor (skipped without terraform).
Every reattached run's outputs file is still read (the workdir outlives the
worker)."""
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import BUILD, Stack, check, main, write_action  # noqa: E402

SCRIPT = r"""
echo "start $$" >> "$0/starts-$1"
i=1
while [ $i -le $2 ]; do
    echo "line $i"
    i=$((i+1))
    sleep 0.5
done
echo "finished" >> "$0/finished-$1"
printf '{"lines": %d}' "$2" > "$GANGWAY_OUTPUTS"
"""


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    check(False, what + " (timed out after %ss)" % timeout)


def lines_of(s, run_id):
    rows = s.sql("SELECT seq || ' ' || line FROM gw_worker_events WHERE run_id = '%s' "
                 "AND kind = 'log' ORDER BY attempt, seq" % run_id)
    return [r.split(" ", 1) for r in rows.splitlines() if r]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def procs_with(text):
    """Live processes whose command line contains `text`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if text in cmd and pid_alive(int(name)):
            found.append(int(name))
    return found


def run_dirs(state):
    try:
        return [os.path.join(state, d) for d in os.listdir(state)]
    except OSError:
        return []


def meta_of(state, run_id):
    for d in run_dirs(state):
        if os.path.basename(d).startswith(run_id):
            try:
                with open(os.path.join(d, "meta.json")) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
    return None


def test():
    s = Stack("reattach", broker_args=["--heartbeat", "1", "--heartbeat-timeout", "5"])
    actions = os.path.join(s.tmp, "actions")
    marks = os.path.join(s.tmp, "marks")
    state = os.path.join(s.tmp, "state")
    os.makedirs(marks)
    schema = {"type": "object", "required": ["tag", "n"],
              "properties": {"tag": {"type": "string"}, "n": {"type": "integer"}}}
    # The inputs are not arguments: a small wrapper reads them from stdin.
    prog = s.write_program("counter.sh", "#!/bin/sh\n"
                           "in=$(cat)\n"
                           "tag=$(echo \"$in\" | sed 's/.*\"tag\":\"\\([^\"]*\\)\".*/\\1/')\n"
                           "n=$(echo \"$in\" | sed 's/.*\"n\":\\([0-9]*\\).*/\\1/')\n"
                           "exec /bin/sh -c '%s' %s \"$tag\" \"$n\"\n" % (SCRIPT.replace("'", "'\\''"), marks))
    write_action(actions, "count", [prog], schema, timeout_seconds=120)
    write_action(actions, "count-short", [prog], schema, timeout_seconds=3)
    write_action(actions, "long", ["/bin/sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo"],
                 {"type": "object"}, timeout_seconds=30)
    s.actions_dir = actions
    args = ["--supervise", "--state-dir", state]
    env = {"GW_KAFKA_PROPS": "session.timeout.ms=6000"}

    def worker(extra=()):
        return s.start_worker(concurrency=4, extra_args=args + list(extra), extra_env=env)

    def kill(w):
        w.kill()
        w.wait()

    def complete(run_id, tag, n, what):
        outputs = s.get("/v1/runs/" + run_id).json().get("outputs")
        check(outputs == {"lines": n}, what + ": the outputs file is read after the reattach", outputs)
        got = lines_of(s, run_id)
        want = ["line %d" % i for i in range(1, n + 1)]
        check([l for _, l in got] == want, what + ": every line once, in order", got)
        seqs = [int(q) for q, _ in got]
        check(seqs == list(range(seqs[0], seqs[0] + n)), what + ": log seqs without gaps", seqs)
        starts = read(os.path.join(marks, "starts-" + tag)).splitlines()
        check(len(starts) == 1, what + ": the program started once", starts)

    with s:
        s.start_broker()

        # 1. SIGKILL mid-run, restart at once.
        w = worker()
        r = s.submit("count", {"tag": "kill", "n": 20}).json()
        wait_for("the first lines are out", lambda: len(lines_of(s, r["id"])) >= 4)
        meta_worker = wait_for("meta.json", lambda: meta_of(state, r["id"]))["worker_id"]
        kill(w)
        time.sleep(1.5)  # lines go on into the spool meanwhile
        w = worker()
        done = s.wait_run(r["id"], timeout=90)
        check(done["status"] == "succeeded", "1: the run outlives a SIGKILLed worker", done)
        complete(r["id"], "kill", 20, "1")
        check(s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'"
                    % r["id"]) == "1", "1: one attempt, claimed once")
        wait_for("1: the run directory goes once the result is delivered",
                 lambda: meta_of(state, r["id"]) is None, 30)

        # The supervisors' heartbeat endpoint: bad input gets a clear 400,
        # a run that is not the caller's attempt a 409 that says why.
        hb = "/internal/v1/runs/%s/heartbeat" % r["id"]
        resp = s.post(hb, {"attempt": 0, "worker_id": "x"}, token=s.worker_token)
        check(resp.status == 400 and resp.json()["code"] == "invalid_heartbeat"
              and resp.json()["errors"][0]["pointer"] == "/attempt",
              "heartbeat: a bad attempt is a 400 naming /attempt", resp.status, resp.body)
        resp = s.post(hb, {"attempt": 1, "worker_id": "x", "extra": 1}, token=s.worker_token)
        check(resp.status == 400 and resp.json()["code"] == "invalid_heartbeat",
              "heartbeat: an unknown field is a 400", resp.status, resp.body)
        resp = s.post(hb, {"attempt": 1, "worker_id": meta_worker}, token=s.worker_token)
        check(resp.status == 409 and resp.json()["detail"] == "ended",
              "heartbeat: an ended run answers 409 ended", resp.status, resp.body)
        resp = s.post(hb, {"attempt": 2, "worker_id": meta_worker}, token=s.worker_token)
        check(resp.status == 409 and resp.json()["detail"] == "stale_attempt",
              "heartbeat: another attempt answers 409 stale_attempt", resp.status, resp.body)
        resp = s.post("/internal/v1/runs/%s/heartbeat" % ("0" * 8 + "-0000-4000-8000-" + "0" * 12),
                      {"attempt": 1, "worker_id": "x"}, token=s.worker_token)
        check(resp.status == 404, "heartbeat: an unknown run is a 404", resp.status)

        # Cancel while the worker is attached: the worker tells the
        # supervisor, which stops the program.
        r = s.submit("count", {"tag": "attached-cancel", "n": 200}).json()
        wait_for("the program runs", lambda: len(lines_of(s, r["id"])) >= 2)
        meta = wait_for("meta.json", lambda: meta_of(state, r["id"]))
        resp = s.post("/v1/runs/%s/cancel" % r["id"], {})
        check(resp.status == 202, "cancel requested while attached", resp.status, resp.body)
        done = s.wait_run(r["id"], timeout=60)
        check(done["status"] == "cancelled", "an attached supervised run is cancelled", done)
        check(not pid_alive(meta["program_pid"]), "its program is gone")

        # 2. SIGKILL, restart only after the program ended (spooled output).
        r = s.submit("count", {"tag": "spool", "n": 6}).json()
        wait_for("the program starts", lambda: read(os.path.join(marks, "starts-spool")))
        kill(w)
        wait_for("the program ends with no worker attached",
                 lambda: read(os.path.join(marks, "finished-spool")), 30)
        check(s.get("/v1/runs/" + r["id"]).json()["status"] == "running",
              "2: the supervisor keeps the run alive (heartbeats) while detached")
        time.sleep(6)  # past the broker's heartbeat timeout: the supervisor heartbeats
        check(s.get("/v1/runs/" + r["id"]).json()["status"] == "running",
              "2: still running after the heartbeat timeout")
        w = worker()
        done = s.wait_run(r["id"], timeout=90)
        check(done["status"] == "succeeded", "2: the spooled result is reported", done)
        complete(r["id"], "spool", 6, "2")

        # 3. Cancel while detached.
        r = s.submit("count", {"tag": "cancel", "n": 200}).json()
        wait_for("the program runs", lambda: len(lines_of(s, r["id"])) >= 2)
        meta = wait_for("meta.json", lambda: meta_of(state, r["id"]))
        kill(w)
        resp = s.post("/v1/runs/%s/cancel" % r["id"], {})
        check(resp.status == 202, "3: cancel requested while no worker is attached", resp.status, resp.body)
        wait_for("3: the supervisor kills the program",
                 lambda: not pid_alive(meta["program_pid"]), 30)
        w = worker()
        done = s.wait_run(r["id"], timeout=60)
        check(done["status"] == "cancelled", "3: the run ends cancelled", done)
        check(not read(os.path.join(marks, "finished-cancel")), "3: the program never finished")

        # 4. Timeout while detached.
        r = s.submit("count-short", {"tag": "timeout", "n": 200}).json()
        wait_for("the program runs", lambda: read(os.path.join(marks, "starts-timeout")))
        kill(w)
        time.sleep(5)
        w = worker()
        done = s.wait_run(r["id"], timeout=60)
        check(done["status"] == "timed_out", "4: the supervisor's timeout is the run's", done)
        check(not read(os.path.join(marks, "finished-timeout")), "4: the program never finished")

        # 5. Host loss: worker, supervisor and program die together.
        r = s.submit("count", {"tag": "host", "n": 200}).json()
        wait_for("the program runs", lambda: len(lines_of(s, r["id"])) >= 2)
        meta = wait_for("meta.json", lambda: meta_of(state, r["id"]))
        kill(w)
        os.kill(meta["supervisor_pid"], signal.SIGKILL)
        os.killpg(meta["program_pid"], signal.SIGKILL)
        lost = s.wait_run(r["id"], timeout=60)
        check(lost["status"] == "failed" and lost.get("reason") == "worker_lost",
              "5: a lost host's run ends failed/worker_lost as today", lost)
        w = worker()
        wait_for("5: the restarted worker drops the dead run's directory",
                 lambda: meta_of(state, r["id"]) is None, 30)

        # 6. Handoff drain.
        w.send_signal(signal.SIGTERM)
        w.wait(30)
        w = worker(["--drain-mode", "handoff"])
        r = s.submit("count", {"tag": "handoff", "n": 16}).json()
        wait_for("the program runs", lambda: len(lines_of(s, r["id"])) >= 2)
        t0 = time.time()
        w.send_signal(signal.SIGTERM)
        rc = w.wait(30)
        check(rc == 0, "6: the handing-off worker exits cleanly", rc)
        check(s.get("/v1/runs/" + r["id"]).json()["status"] == "running",
              "6: it did not wait for the run (%.1f s)" % (time.time() - t0))
        check("detached" in s.log("worker%d" % (len(s.workers) - 1)), "6: the run was detached")
        w = worker(["--drain-mode", "handoff"])
        done = s.wait_run(r["id"], timeout=90)
        check(done["status"] == "succeeded", "6: a new worker reattaches and finishes it", done)
        complete(r["id"], "handoff", 16, "6")

        # 7. Output limits hold through the supervisor: a 40000-byte line
        # arrives in pieces of at most 16 KiB, nothing lost.
        r = s.submit("long", {}).json()
        done = s.wait_run(r["id"], timeout=60)
        check(done["status"] == "succeeded", "7: the long-line run succeeds", done)
        pieces = [l for _, l in lines_of(s, r["id"])]
        check(len(pieces) == 3 and max(len(p) for p in pieces) <= 16384
              and sum(len(p) for p in pieces) == 40000 and set("".join(pieces)) == {"x"},
              "7: a long line is split at 16 KiB", [len(p) for p in pieces])

        # 9. Handoff the instant a run starts (the seam GW_TEST_DRAIN_AT_START
        # drains in the next turn of the loop, before the supervisor's socket
        # connects, as a SIGTERM read with the claim's answer would): a run
        # is let go only once its supervisor confirms it holds the spec, or
        # a later worker could not find it and the run is lost. CI caught
        # this in the rolling upgrade under ASan.
        w.send_signal(signal.SIGTERM)
        w.wait(30)
        w = s.start_worker(concurrency=4, extra_args=args + ["--drain-mode", "handoff"],
                           extra_env=dict(env, GW_TEST_DRAIN_AT_START="1"))
        ids = [s.submit("count", {"tag": "race%d" % i, "n": 3}).json()["id"] for i in range(4)]
        rc = w.wait(60)
        log = s.log("worker%d" % (len(s.workers) - 1))
        check(rc == 0 and "GW_TEST_DRAIN_AT_START" in log, "9: the worker drained at its first start", rc)
        w = worker(["--drain-mode", "handoff"])
        for i, rid in enumerate(ids):
            done = s.wait_run(rid, timeout=90)
            check(done["status"] == "succeeded", "9: run %d, handed off at its start, succeeded" % i, done)
            complete(rid, "race%d" % i, 3, "9.%d" % i)


TF_MODULE = r"""
variable "tag" {
  type = string
}
variable "marks" {
  type = string
}
variable "n" {
  type    = number
  default = 12
}
resource "terraform_data" "slow" {
  input = var.tag
  provisioner "local-exec" {
    command = "echo start >> ${var.marks}/tf-starts-${var.tag}; i=1; while [ $i -le ${var.n} ]; do echo tfline $i; i=$((i+1)); sleep 0.5; done; echo done >> ${var.marks}/tf-finished-${var.tag}"
  }
}
output "tag" {
  value = terraform_data.slow.output
}
"""


def test_terraform():
    binary = os.environ.get("GW_TERRAFORM_BIN") or "/usr/local/bin/terraform"
    try:
        with open(os.path.join(BUILD, "workers", "registry.h")) as f:
            built = "gw_terraform_backend_create" in f.read()
    except OSError:
        built = False
    if not built or not os.access(binary, os.X_OK):
        print("skipped: the terraform part (no terraform backend or binary)")
        return
    s = Stack("reattach_tf", broker_args=["--heartbeat", "1", "--heartbeat-timeout", "5"])
    actions = os.path.join(s.tmp, "actions")
    module = os.path.join(s.tmp, "module")
    marks = os.path.join(s.tmp, "marks")
    state = os.path.join(s.tmp, "state")
    for d in (actions, module, marks):
        os.makedirs(d)
    with open(os.path.join(module, "main.tf"), "w") as f:
        f.write(TF_MODULE)
    schema = {"type": "object", "required": ["tag", "marks"],
              "properties": {"tag": {"type": "string"}, "marks": {"type": "string"},
                             "n": {"type": "integer"}}}
    write_action(actions, "tf-slow", None, schema, worker_type="terraform",
                 backend={"module": module}, timeout_seconds=300)
    s.actions_dir = actions
    env = {"GW_KAFKA_PROPS": "session.timeout.ms=6000", "GW_TERRAFORM_BIN": binary,
           "GW_TERRAFORM_STATE_DIR": os.path.join(s.tmp, "tfstate")}

    def worker():
        return s.start_worker(concurrency=2, worker_type="terraform",
                              extra_args=["--supervise", "--state-dir", state], extra_env=env)

    with s:
        s.start_broker()
        w = worker()
        r = s.submit("tf-slow", {"tag": "t1", "marks": marks})
        check(r.status == 202, "8: terraform run submitted", r.status, r.body)
        rid = r.json()["id"]
        starts = os.path.join(marks, "tf-starts-t1")
        wait_for("8: the apply's provisioner runs", lambda: read(starts), 180)
        time.sleep(1)
        w.kill()
        w.wait()
        time.sleep(2)
        worker()
        done = s.wait_run(rid, timeout=180)
        check(done["status"] == "succeeded", "8: the terraform run outlives a SIGKILLed worker", done)
        check(len(read(starts).splitlines()) == 1, "8: the apply ran once", read(starts))
        got = [l for _, l in lines_of(s, rid)]
        nums = [int(l.rsplit("tfline ", 1)[1]) for l in got if "tfline " in l and "echo" not in l]
        check(nums == list(range(1, 13)), "8: every provisioner line once, in order", nums)
        check(any("Apply complete!" in l for l in got), "8: terraform's own lines too", got[-5:])
        check((done.get("outputs") or {}).get("outputs", {}).get("tag") == "t1",
              "8: terraform outputs come back", done.get("outputs"))

        # Cancel while detached: the supervisor cancels the hosted backend
        # (terraform's own stop sequence); the run ends cancelled.
        w = s.workers[-1]
        r = s.submit("tf-slow", {"tag": "t2", "marks": marks, "n": 120})
        rid = r.json()["id"]
        starts = os.path.join(marks, "tf-starts-t2")
        wait_for("8: the second apply runs", lambda: read(starts), 180)
        w.kill()
        w.wait()
        resp = s.post("/v1/runs/%s/cancel" % rid, {})
        check(resp.status == 202, "8: cancel while detached", resp.status, resp.body)
        time.sleep(3)
        worker()
        done = s.wait_run(rid, timeout=180)
        check(done["status"] == "cancelled", "8: the hosted terraform run ends cancelled", done)
        check(not read(os.path.join(marks, "tf-finished-t2")), "8: its apply never finished")
        wait_for("8: the provisioner's shell is gone",
                 lambda: not procs_with(os.path.join(marks, "tf-finished-t2")), 30)


def test_all():
    test()
    test_terraform()


if __name__ == "__main__":
    main(test_all)
