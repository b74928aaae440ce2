"""The history checker of the fault-injection suite: a pure function of

- the client's history (history.py: every request and its outcome, and the
  faults the test injected, with their times),
- a snapshot of PostgreSQL taken after the faults and a bounded wait
  (gw_runs, gw_run_events and gw_worker_events rows, times as epoch seconds),
- the ledger written by the action program (ledger.py: one `start` and one
  `end` line per execution of a (run, attempt), with the program's pid),

returning the violations it found and the figures of the scenario. It never
talks to a service, so test_checker.py can feed it doctored inputs.

An indeterminate request (timeout, reset, 5xx) is resolved through its
Idempotency-Key: if PostgreSQL has a run with that key, that run must obey
the same rules as an acknowledged one; if not, the request had no effect,
which is allowed.

The checks, each a violation kind:

lost       Every acknowledged request (202 with a run id) has a row in
           gw_runs with its idempotency key, and that row's id is the id
           the client was given.
phantom    No run exists that no request asked for (its idempotency key is
           in no operation of the history), and no run exists for a request
           that definitely failed (a 4xx answer, or a refused connection).
stuck      Every run in gw_runs -- acknowledged, resolved from an
           indeterminate request, or otherwise -- ends in a terminal status
           (succeeded, failed, timed_out, cancelled, rejected, expired).
twice      No (run, attempt) executes twice: the ledger has at most one
           `start` line per (run, attempt), and gw_run_events has at most
           one claim (queued -> running) per (run, attempt).
unclaimed  Nothing executes without a grant: every `start` in the ledger is
           for a (run, attempt) that gw_run_events shows claimed.
stale      No stale attempt changes a run. gw_run_events rows carry the
           run's attempt at the time of the transition (the claim, the
           worker's result and the reaper's verdict all write r.attempt
           inside the same row-locked transaction), and a worker's result
           is recorded with the actor "worker:<job id>" of the event that
           carried it. Replaying each run's events in id order (ids are
           assigned under the run's row lock, so they are that run's commit
           order):
           - each event's from_status is the previous event's to_status
             (the first is NULL -> accepted): nothing changes a run behind
             another transition's back, and nothing changes an ended run;
           - the attempt never changes except by exactly +1 on the reaper's
             running -> queued retry;
           - every transition made by a worker other than its claim
             (running -> succeeded/failed/timed_out/cancelled) carries the
             current attempt AND the actor that claimed that attempt: a
             worker that lost its attempt (the run was retried elsewhere)
             shows up as a different actor than the current attempt's
             claimer;
           - every stored worker event (gw_worker_events) of (run, attempt)
             comes from the job that claimed that attempt;
           - the gw_runs row's status and attempt are those of its last event.
unrun      Every `succeeded` run really ran: the ledger has a `start` and an
           `end` line for the run's final attempt.
false_loss Nobody is declared lost who was not. Every reaper verdict of a
           lost worker (reason worker_lost, worker_lost_retry or
           worker_lost_after_cancel) concerns an attempt whose claiming
           worker the test killed or stopped after the claim and before the
           verdict. (A worker's jobs are "<worker id>-<life>-<n>", so the claim's
           actor names the worker process; a worker restarted under the same
           id is covered only by faults after its own claims. A Kafka or
           PostgreSQL outage, or a broker restart, loses no worker.)
stall      (only when stall=(window, least) is given: scenarios where
           most of the pool survives the fault) The pool keeps going: from
           the first fault to the end of the load, every `window` seconds
           see at least `least` runs finish (gw_runs.finished_at). The
           scenarios ask for 5 runs in any 3 s while 60 are offered: a pool
           that lost one worker of three for a while may slow down, but must
           not stop.
ledger     The ledger is well formed.

Figures: sent, acknowledged, indeterminate, failed, lost, executed_twice
(the number of (run, attempt) with more than one `start`), stuck, and
recovery_s: from the moment the last fault was healed (the part restarted,
resumed or started again; for a fault without a heal, the fault itself) to
the moment every run requested before it had ended and, if any request came
after it, the first of those runs had succeeded. None when some run
requested before the heal never ended (or there was no fault)."""

import bisect
import re
import collections

TERMINAL = frozenset({"succeeded", "failed", "timed_out", "cancelled", "rejected", "expired"})
LOST_REASONS = frozenset({"worker_lost", "worker_lost_retry", "worker_lost_after_cancel"})
WORKER_FAULTS = frozenset({"kill", "stop"})
EPSILON = 0.05  # seconds: fault times and PostgreSQL times come from the same clock


class Result:
    def __init__(self):
        self.violations = []  # (kind, message)
        self.figures = {}

    def add(self, kind, message):
        self.violations.append((kind, message))

    def kinds(self):
        return collections.Counter(k for k, _ in self.violations)

    @property
    def ok(self):
        return not self.violations


JOB_ID = re.compile(r"^(.*)-[0-9a-f]{8}-[0-9]+$")


def worker_of(actor):
    """"worker:wk1-0a1b2c3d-17" -> "wk1" (the worker id; the middle part is
    random per process, workers/runtime.c); the older "wk1-17" form too.
    None for other actors."""
    if not actor or not actor.startswith("worker:"):
        return None
    job = actor[len("worker:"):]
    m = JOB_ID.match(job)
    if m:
        return m.group(1)
    return job.rsplit("-", 1)[0] if "-" in job else job


def check(history, snapshot, ledger, stall=None):
    res = Result()
    ops = history.get("ops", [])
    faults = history.get("faults", [])
    runs = snapshot.get("runs", [])
    events = snapshot.get("events", [])
    wevents = snapshot.get("worker_events", [])

    by_key = {}
    for r in runs:
        if r.get("idempotency_key") is not None:
            by_key[r["idempotency_key"]] = r
    by_id = {r["id"]: r for r in runs}
    evs = collections.defaultdict(list)
    for e in events:
        evs[e["run_id"]].append(e)
    for v in evs.values():
        v.sort(key=lambda e: e["id"])

    # --- requests: lost, phantom ------------------------------------------
    counts = collections.Counter(op["outcome"] for op in ops)
    lost = 0
    keys = set()
    requested = {}  # run id -> op, for every request that resolved to a run
    for op in ops:
        keys.add(op["key"])
        r = by_key.get(op["key"])
        if op["outcome"] == "ok":
            if r is None:
                lost += 1
                res.add("lost", "request %s (key %s) was acknowledged as run %s, which does not exist"
                        % (op["i"], op["key"], op.get("run_id")))
                continue
            if r["id"] != op.get("run_id"):
                res.add("lost", "request %s (key %s) was acknowledged as run %s but its key holds run %s"
                        % (op["i"], op["key"], op.get("run_id"), r["id"]))
        elif op["outcome"] == "fail" and r is not None:
            res.add("phantom", "request %s (key %s) failed definitely (%s) but created run %s"
                    % (op["i"], op["key"], op.get("status") or op.get("error"), r["id"]))
        if r is not None:
            requested[r["id"]] = op
    for r in runs:
        if r.get("idempotency_key") not in keys:
            res.add("phantom", "run %s (key %s) was asked for by no request"
                    % (r["id"], r.get("idempotency_key")))

    # --- stuck --------------------------------------------------------------
    stuck = [r for r in runs if r["status"] not in TERMINAL]
    for r in stuck:
        res.add("stuck", "run %s is still %s (attempt %s)" % (r["id"], r["status"], r["attempt"]))

    # --- the ledger: twice, unclaimed -----------------------------------------
    starts = collections.defaultdict(set)
    ends = collections.defaultdict(set)
    for ln in ledger:
        if ln.get("phase") == "start":
            starts[(ln["run"], ln["attempt"])].add(ln["pid"])
        elif ln.get("phase") == "end":
            ends[(ln["run"], ln["attempt"])].add(ln["pid"])
        else:
            res.add("ledger", "malformed ledger line: %r" % ln.get("line"))
    claims = collections.defaultdict(list)  # (run, attempt) -> claim events
    for e in events:
        if e["from_status"] == "queued" and e["to_status"] == "running":
            claims[(e["run_id"], e["attempt"])].append(e)
    twice = 0
    for ra, pids in sorted(starts.items()):
        if len(pids) > 1:
            twice += 1
            res.add("twice", "run %s attempt %d executed %d times (pids %s)"
                    % (ra[0], ra[1], len(pids), sorted(pids)))
        if ra not in claims:
            res.add("unclaimed", "run %s attempt %d executed without a granted claim" % ra)
    for ra, cl in sorted(claims.items()):
        if len(cl) > 1:
            res.add("twice", "run %s attempt %d was claimed %d times (%s)"
                    % (ra[0], ra[1], len(cl), ", ".join(c["actor"] for c in cl)))

    # --- stale: replay each run's transitions --------------------------------
    claimer = {}  # (run, attempt) -> actor of its first claim
    claimed_at = {}  # (run, attempt) -> time of that claim
    for r in runs:
        chain = evs.get(r["id"], [])
        if not chain:
            res.add("stale", "run %s has no events" % r["id"])
            continue
        prev, cur = None, None
        for e in chain:
            what = "run %s event %s (%s -> %s, attempt %s, by %s)" % (
                r["id"], e["id"], e["from_status"], e["to_status"], e["attempt"], e["actor"])
            if e["from_status"] != prev:
                if prev in TERMINAL:
                    res.add("stale", "%s changed the run after it ended %s" % (what, prev))
                else:
                    res.add("stale", "%s does not follow the run's status %s" % (what, prev))
            if cur is not None and e["attempt"] != cur:
                retry = (e["attempt"] == cur + 1 and e["actor"] == "reaper"
                         and e["from_status"] == "running" and e["to_status"] == "queued")
                if not retry:
                    res.add("stale", "%s changed the attempt from %s" % (what, cur))
            cur = e["attempt"]
            if e["actor"].startswith("worker:"):
                key = (r["id"], e["attempt"])
                if e["from_status"] == "queued" and e["to_status"] == "running":
                    claimer.setdefault(key, e["actor"])
                    claimed_at.setdefault(key, e["created_at"])
                elif claimer.get(key) != e["actor"]:
                    res.add("stale", "%s: attempt %s was claimed by %s" % (what, e["attempt"],
                                                                            claimer.get(key)))
            prev = e["to_status"]
        if r["status"] != prev or r["attempt"] != cur:
            res.add("stale", "run %s is %s at attempt %s but its last event says %s at attempt %s"
                    % (r["id"], r["status"], r["attempt"], prev, cur))
    for w in wevents:
        key = (w["run_id"], w["attempt"])
        c = claimer.get(key)
        if c is None or c != "worker:%s" % w.get("worker_id"):
            res.add("stale", "run %s attempt %s: stored %s event (seq %s) from %s, claimed by %s"
                    % (w["run_id"], w["attempt"], w["kind"], w.get("seq"), w.get("worker_id"), c))

    # --- unrun: every succeeded run ran ----------------------------------------
    for r in runs:
        if r["status"] != "succeeded":
            continue
        ra = (r["id"], r["attempt"])
        if ra not in starts or ra not in ends:
            res.add("unrun", "run %s succeeded at attempt %s but the ledger has %s for it"
                    % (r["id"], r["attempt"], "no start" if ra not in starts else "no end"))

    # --- false_loss -------------------------------------------------------------
    faulted = collections.defaultdict(list)  # worker name -> fault times
    for f in faults:
        if f["kind"] in WORKER_FAULTS and f["target"].startswith("worker:"):
            faulted[f["target"][len("worker:"):]].append(f["t"])
    for e in events:
        if e["actor"] != "reaper" or e.get("reason") not in LOST_REASONS:
            continue
        lost_attempt = e["attempt"] - 1 if e["reason"] == "worker_lost_retry" else e["attempt"]
        c = claimer.get((e["run_id"], lost_attempt))
        w = worker_of(c)
        if w is None:
            res.add("false_loss", "run %s attempt %s declared %s but nobody had claimed it"
                    % (e["run_id"], lost_attempt, e["reason"]))
            continue
        tc = claimed_at[(e["run_id"], lost_attempt)]
        if not any(tc - EPSILON <= t <= e["created_at"] + EPSILON for t in faulted.get(w, [])):
            res.add("false_loss", "run %s attempt %s declared %s at %.3f, but its worker %s was not "
                    "killed or stopped between the claim and the verdict"
                    % (e["run_id"], lost_attempt, e["reason"], e["created_at"], w))

    # --- stall --------------------------------------------------------------------
    load_end = (history.get("load") or {}).get("end")
    if stall is not None and faults and load_end is not None:
        window, least = stall
        t0 = min(f["t"] for f in faults)
        points = sorted(r["finished_at"] for r in runs if r.get("finished_at") is not None)
        # The count in [s, s + window] only drops when a point leaves the
        # window, so its minimum is at t0 or just after some point.
        worst = None
        for s in [t0] + [p + 1e-6 for p in points if t0 <= p]:
            if s + window > load_end:
                break
            n = bisect.bisect_right(points, s + window) - bisect.bisect_left(points, s)
            if worst is None or n < worst[0]:
                worst = (n, s)
        if worst is not None and worst[0] < least:
            res.add("stall", "only %d run(s) finished from %.3f to %.3f (%.1f s after the first "
                    "fault); at least %d must finish in any %.0f s of the load"
                    % (worst[0], worst[1], worst[1] + window, worst[1] - t0, least, window))

    # --- figures ------------------------------------------------------------------
    recovery = None
    if faults:
        heals = [f["t"] for f in faults if f.get("heal")]
        h = max(heals) if heals else max(f["t"] for f in faults)
        before = [by_id[rid] for rid, op in requested.items() if op["start"] < h]
        after = [by_id[rid] for rid, op in requested.items() if op["start"] >= h]
        if all(r["status"] in TERMINAL and r.get("finished_at") is not None for r in before):
            done = [r["finished_at"] for r in before]
            ok_after = [r["finished_at"] for r in after
                        if r["status"] == "succeeded" and r.get("finished_at") is not None]
            if after and not ok_after:
                done = None  # requests came after the heal and none of them succeeded
            elif ok_after:
                done.append(min(ok_after))
            if done is not None:
                recovery = max(0.0, max(done + [h]) - h)
    res.figures = {
        "sent": len(ops),
        "acknowledged": counts.get("ok", 0),
        "indeterminate": counts.get("indeterminate", 0),
        "failed": counts.get("fail", 0),
        "lost": lost,
        "executed_twice": twice,
        "stuck": len(stuck),
        "recovery_s": recovery,
    }
    return res


def summary(name, res):
    """The one line the closing note asks for, and the verdict."""
    f = res.figures
    rec = "never" if f["recovery_s"] is None else "%.1f s" % f["recovery_s"]
    verdict = "PASS" if res.ok else "FAIL (%s)" % ", ".join(
        "%s %d" % kv for kv in sorted(res.kinds().items()))
    return ("CHAOS %s: sent %d, acknowledged %d, indeterminate %d, lost %d, executed twice %d, "
            "stuck %d, recovered in %s -- verdict %s"
            % (name, f["sent"], f["acknowledged"], f["indeterminate"], f["lost"],
               f["executed_twice"], f["stuck"], rec, verdict))
