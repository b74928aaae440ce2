#!/usr/bin/env python3
"""Unit test of tests/chaos/checker.py (suite `unit`, no services): a clean
history passes, and each check fails on a history, snapshot or ledger doctored
to break exactly it. A checker that cannot fail proves nothing."""
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

FAILURES = []
STALL = (2.0, 1)  # at least one run finishing in any 2 s after the first fault

R1, R2, R3 = ("11111111-0000-0000-0000-000000000001", "11111111-0000-0000-0000-000000000002",
              "11111111-0000-0000-0000-000000000003")


def op(i, run_id, outcome="ok", start=100.0, status=202):
    return {"op": "submit", "i": i, "key": "k-%d" % i, "action": "chaos-retry", "phase": "load",
            "target": "http://x", "start": start, "end": start + 0.01, "outcome": outcome,
            "status": status, "run_id": run_id if outcome == "ok" else None, "error": None}


def ev(n, run, attempt, frm, to, actor, t, reason=None):
    return {"id": n, "run_id": run, "attempt": attempt, "from_status": frm, "to_status": to,
            "reason": reason, "actor": actor, "created_at": t}


def clean():
    """Three runs: R1 succeeded at once on wk0; R2's worker wk1 was killed,
    the reaper retried it and wk2 ran attempt 2; R3's request timed out
    (indeterminate) but the run exists and succeeded on wk0."""
    history = {
        "ops": [op(1, R1, start=100.0), op(2, R2, start=100.5),
                op(3, None, outcome="indeterminate", start=101.0, status=None),
                op(4, None, outcome="fail", start=101.5, status=422)],
        "faults": [{"t": 102.0, "kind": "kill", "target": "worker:wk1", "heal": False},
                   {"t": 102.5, "kind": "start", "target": "worker:wk3", "heal": True}],
        "load": {"start": 100.0, "end": 104.0},
    }
    events = []
    n = 0

    def add(*a, **kw):
        nonlocal n
        n += 1
        events.append(ev(n, *a, **kw))

    for run, t in ((R1, 100.0), (R2, 100.5), (R3, 101.0)):
        add(run, 1, None, "accepted", "alice", t)
        add(run, 1, "accepted", "queued", "gangway", t)
    add(R1, 1, "queued", "running", "worker:wk0-1", 100.1)
    add(R2, 1, "queued", "running", "worker:wk1-1", 100.6)
    add(R3, 1, "queued", "running", "worker:wk0-2", 101.1)
    add(R1, 1, "running", "succeeded", "worker:wk0-1", 100.6)
    add(R3, 1, "running", "succeeded", "worker:wk0-2", 103.0)
    add(R2, 2, "running", "queued", "reaper", 106.7, reason="worker_lost_retry")
    add(R2, 2, "queued", "running", "worker:wk2-4", 106.8)
    add(R2, 2, "running", "succeeded", "worker:wk2-4", 107.3)
    snapshot = {
        "runs": [
            {"id": R1, "status": "succeeded", "attempt": 1, "idempotency_key": "k-1",
             "created_at": 100.0, "finished_at": 100.6},
            {"id": R2, "status": "succeeded", "attempt": 2, "idempotency_key": "k-2",
             "created_at": 100.5, "finished_at": 107.3},
            {"id": R3, "status": "succeeded", "attempt": 1, "idempotency_key": "k-3",
             "created_at": 101.0, "finished_at": 103.0},
        ],
        "events": events,
        "worker_events": [
            {"run_id": R1, "attempt": 1, "seq": 1, "kind": "started", "worker_id": "wk0-1"},
            {"run_id": R1, "attempt": 1, "seq": 2, "kind": "succeeded", "worker_id": "wk0-1"},
            {"run_id": R2, "attempt": 2, "seq": 2, "kind": "succeeded", "worker_id": "wk2-4"},
        ],
    }

    def ln(run, attempt, pid, phase, t):
        return {"run": run, "attempt": attempt, "pid": pid, "ppid": 1, "phase": phase, "t": t}

    led = [ln(R1, 1, 501, "start", 100.2), ln(R1, 1, 501, "end", 100.5),
           ln(R2, 1, 502, "start", 100.7),  # its worker was killed; the orphan ends
           ln(R2, 1, 502, "end", 101.5),
           ln(R3, 1, 503, "start", 101.2), ln(R3, 1, 503, "end", 102.9),
           ln(R2, 2, 504, "start", 106.9), ln(R2, 2, 504, "end", 107.2)]
    return history, snapshot, led


def expect(what, kind, doctor, **kw):
    h, s, led = clean()
    doctor(h, s, led)
    res = checker.check(copy.deepcopy(h), copy.deepcopy(s), copy.deepcopy(led), **kw)
    kinds = res.kinds()
    if kinds.get(kind, 0) == 0:
        FAILURES.append("%s: expected a '%s' violation, got %s" % (what, kind, res.violations))
        print("not ok -", what)
    else:
        print("ok -", what, "->", [m for k, m in res.violations if k == kind][0])
    return res


def run_of(s, rid):
    return next(r for r in s["runs"] if r["id"] == rid)


def main():
    h, s, led = clean()
    res = checker.check(h, s, led, stall=STALL)
    if not res.ok:
        FAILURES.append("the clean history has violations: %s" % res.violations)
    f = res.figures
    want = {"sent": 4, "acknowledged": 2, "indeterminate": 1, "failed": 1, "lost": 0,
            "executed_twice": 0, "stuck": 0}
    for k, v in want.items():
        if f[k] != v:
            FAILURES.append("clean figures: %s is %s, expected %s" % (k, f[k], v))
    # Healed at 102.5; the runs asked for before it ended at 107.3 at the latest.
    if f["recovery_s"] is None or abs(f["recovery_s"] - 4.8) > 1e-6:
        FAILURES.append("clean recovery is %s, expected 4.8" % f["recovery_s"])
    print("ok - a clean history passes:", checker.summary("clean", res))

    # lost: an acknowledged run that does not exist.
    def drop_r1(h, s, led):
        s["runs"] = [r for r in s["runs"] if r["id"] != R1]
        s["events"] = [e for e in s["events"] if e["run_id"] != R1]
        s["worker_events"] = [w for w in s["worker_events"] if w["run_id"] != R1]
        for x in led:
            if x["run"] == R1:
                x["run"] = R3
    r = expect("an acknowledged run that is missing is lost", "lost", drop_r1)
    if r.figures["lost"] != 1:
        FAILURES.append("lost figure is %s, expected 1" % r.figures["lost"])

    def wrong_id(h, s, led):
        h["ops"][0]["run_id"] = R3
    expect("an acknowledgement naming another run than its key's", "lost", wrong_id)

    # phantom: a run for a request that definitely failed, and one from nowhere.
    def failed_created(h, s, led):
        run_of(s, R3)["idempotency_key"] = "k-4"
    expect("a definitely failed request that created a run", "phantom", failed_created)

    def from_nowhere(h, s, led):
        run_of(s, R3)["idempotency_key"] = "k-999"
    expect("a run no request asked for", "phantom", from_nowhere)

    # stuck: an acknowledged run, and a run resolved from an indeterminate request.
    def stuck_acked(h, s, led):
        run_of(s, R1).update(status="running", finished_at=None)
        s["events"] = [e for e in s["events"] if not (e["run_id"] == R1 and e["to_status"] == "succeeded")]
    r = expect("an acknowledged run left running is stuck", "stuck", stuck_acked)
    if r.figures["stuck"] != 1 or r.figures["recovery_s"] is not None:
        FAILURES.append("stuck figures: %s" % r.figures)

    def stuck_indeterminate(h, s, led):
        run_of(s, R3).update(status="queued", finished_at=None)
        s["events"] = [e for e in s["events"] if not (e["run_id"] == R3 and e["id"] > 6
                                                      and e["to_status"] != "queued")]
        s["worker_events"] = [w for w in s["worker_events"] if w["run_id"] != R3]
        led[:] = [x for x in led if x["run"] != R3]
    expect("a run of an indeterminate request left queued is stuck", "stuck", stuck_indeterminate)

    # twice: the ledger shows (run, attempt) started by two processes.
    def twice(h, s, led):
        led.append({"run": R1, "attempt": 1, "pid": 777, "ppid": 1, "phase": "start", "t": 100.3})
    r = expect("a (run, attempt) executed twice", "twice", twice)
    if r.figures["executed_twice"] != 1:
        FAILURES.append("executed_twice figure is %s" % r.figures["executed_twice"])

    def claimed_twice(h, s, led):
        s["events"].insert(8, ev(99, R1, 1, "queued", "running", "worker:wk1-9", 100.15))
        s["events"].sort(key=lambda e: e["id"])
    expect("a (run, attempt) claimed twice", "twice", claimed_twice)

    # unclaimed: an execution nobody was granted.
    def unclaimed(h, s, led):
        led.append({"run": R1, "attempt": 2, "pid": 778, "ppid": 1, "phase": "start", "t": 108.0})
    expect("an execution without a granted claim", "unclaimed", unclaimed)

    # stale: the killed-and-resumed worker's attempt-1 result recorded on attempt 2.
    def stale_result(h, s, led):
        for e in s["events"]:
            if e["run_id"] == R2 and e["to_status"] == "succeeded":
                e["actor"] = "worker:wk1-1"
    expect("a stale attempt's result changing the run", "stale", stale_result)

    def stale_attempt(h, s, led):
        s["events"].append(ev(50, R2, 1, "succeeded", "failed", "worker:wk1-1", 108.0))
        run_of(s, R2).update(status="failed", attempt=1)
    expect("an event of an old attempt after the run ended", "stale", stale_attempt)

    def attempt_jump(h, s, led):
        for e in s["events"]:
            if e["run_id"] == R1 and e["to_status"] == "succeeded":
                e["attempt"] = 2
        run_of(s, R1)["attempt"] = 2
    expect("an attempt changed by something else than a retry", "stale", attempt_jump)

    def stale_stored(h, s, led):
        s["worker_events"].append({"run_id": R2, "attempt": 2, "seq": 3, "kind": "failed",
                                   "worker_id": "wk1-1"})
    expect("a stored worker event from another job than the attempt's claimer", "stale",
           stale_stored)

    def row_disagrees(h, s, led):
        run_of(s, R1)["status"] = "failed"
    expect("a run row that disagrees with its events", "stale", row_disagrees)

    # unrun: succeeded without a ledger entry (or without its end).
    def unrun(h, s, led):
        led[:] = [x for x in led if not (x["run"] == R2 and x["attempt"] == 2)]
        # keep the claim consistent: attempt 2 was claimed but never executed
    expect("a succeeded run with no ledger entry", "unrun", unrun)

    def unfinished(h, s, led):
        led[:] = [x for x in led if not (x["run"] == R3 and x["phase"] == "end")]
    expect("a succeeded run whose program never ended", "unrun", unfinished)

    # false_loss: the reaper declared a worker lost that was never killed or stopped.
    def false_loss(h, s, led):
        h["faults"] = [{"t": 102.5, "kind": "restart", "target": "kafka", "heal": True}]
    expect("a worker declared lost during an outage it survived", "false_loss", false_loss)

    def loss_before_fault(h, s, led):
        h["faults"][0]["t"] = 107.0  # killed only after the verdict
    expect("a worker declared lost before it was killed", "false_loss", loss_before_fault)

    def killed_before_claim(h, s, led):
        h["faults"][0]["t"] = 100.4  # an earlier process of wk1, before its claim at 100.6
    expect("a worker killed only before its claim (a restarted id)", "false_loss",
           killed_before_claim)

    # stall: nothing finished for a long stretch while the load went on.
    def stall(h, s, led):
        h["load"]["end"] = 115.0
    expect("a pool that stops finishing runs", "stall", stall, stall=STALL)

    def garbage(h, s, led):
        led.append({"run": None, "attempt": None, "pid": None, "ppid": None, "phase": "garbage",
                    "t": None, "line": "half a li"})
    expect("a malformed ledger line", "ledger", garbage)

    if FAILURES:
        for f in FAILURES:
            print("FAIL -", f)
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
