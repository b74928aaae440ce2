#!/usr/bin/env python3
"""Fault-injection scenarios (suite `chaos`): one scenario per invocation,

    test_chaos.py broker-kill | worker-kill | worker-restart | worker-stop | kafka-kill |
                  pg-stop | pg-read-only | two-brokers

Each one: a broker (two for two-brokers) and three exec workers on a private
database and topic prefix (tests/integration/harness.py's Stack), the
action program tests/chaos/ledger.py writing the ledger, a load of 20
submissions a second for 18 s recorded by history.py (worker-kill and
worker-restart add a burst before each kill, so every worker is saturated
when it happens), the
fault injected on a timeline during the load, a bounded wait for every run
to end (25 s after the load and the last fault; 40 s after the last kill
for broker-kill and two-brokers: a killed relay's outbox lease lasts 30 s;
45 s after Kafka is back for kafka-kill: the outage's backlog drains then), then a snapshot of PostgreSQL and
checker.check(). It prints the faults, every
violation (the first 25 of each kind) and, last, one line:

    CHAOS <scenario>: sent N, acknowledged N, indeterminate N, lost N,
    executed twice N, stuck N, recovered in X s -- verdict PASS|FAIL (...)

and exits 1 when the checker found a violation. The history, snapshot,
ledger and process logs are kept in <build>/meson-logs/chaos/<scenario>/.

Kafka and PostgreSQL faults hit a private Kafka / PostgreSQL started here
(services.py), never the shared ones. Timeouts are short: broker
--heartbeat 1 --heartbeat-timeout 4, session.timeout.ms=6000 for every
consumer (heartbeat.interval.ms=1000). Every wait is bounded.

Recovery is measured, not required: a scenario fails on the checker's
violations only (stuck runs at the deadline among them)."""

import http.client
import json
import os
import re
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import checker  # noqa: E402
import ledger  # noqa: E402
from harness import BUILD, GANGWAY, SKIP, Failure, Stack, write_action  # noqa: E402
from history import Client, History, Load  # noqa: E402
from services import Balancer, PrivateKafka, PrivatePg, free_port  # noqa: E402

RATE = 20            # submissions per second
LOAD_S = 18          # seconds of load
WORKERS = 3
CONCURRENCY = 6
SLEEP_MS = (200, 1000)
SETTLE_S = 25        # after the load and the last fault, how long runs may take to end
# Short group timeouts for every consumer (workers and the brokers' sinks): a
# lost member is noticed in 6 s, a rebalance reaches the members within 1 s.
KAFKA_PROPS = "session.timeout.ms=6000,heartbeat.interval.ms=1000"
BROKER_ARGS = ["--heartbeat", "1", "--heartbeat-timeout", "4"]
# Progress floor where most of the pool survives the fault: in any 3 s from
# the first fault to the end of the load, at least 5 runs finish (a twelfth of
# the 60 offered). It tells a pool that stopped (0-3 runs in the worst 3 s
# when one killed worker held up the whole group) from one that only slowed
# down while it lost a worker.
STALL = (3.0, RATE // 4)
TERMINAL_SQL = "('succeeded','failed','timed_out','cancelled','rejected','expired')"


class Chaos:
    """One scenario's processes, history and helpers for its timeline."""

    def __init__(self, name, stack):
        self.name = name
        self.s = stack
        self.h = History()
        self.ledger_path = os.path.join(stack.tmp, "ledger")
        self.workers = []      # {"name", "proc"}
        self.brokers = []      # {"name", "proc", "port"}
        self.balancer = None
        self.client = None
        self.load = None
        self.t0 = None
        self.notes = []

    # -- processes -----------------------------------------------------------
    def start_broker_extra(self, name):
        """A second replica on its own port (the Stack's broker is b0)."""
        s = self.s
        port = free_port()
        log = open(os.path.join(s.tmp, "%s.log" % name), "a")
        env = s.env(s.broker_env)
        p = subprocess.Popen([GANGWAY, "broker", "--listen", "127.0.0.1:%d" % port] + BROKER_ARGS,
                             env=env, stdout=log, stderr=subprocess.STDOUT)
        self.brokers.append({"name": name, "proc": p, "port": port})
        deadline = time.time() + 60
        while time.time() < deadline:
            if p.poll() is not None:
                raise Failure("%s exited with %s" % (name, p.returncode))
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    c.close()
                    return p
                c.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise Failure("%s not ready in 60 s" % name)

    def broker_url(self):
        return self.balancer.url if self.balancer else self.s.url

    def start_worker(self, heal=False, stable_id=None):
        """A worker named by its id: its jobs (and so the claims in
        gw_run_events) are "<id>-<life>-<n>". Without stable_id the worker
        takes its host's lowest free slot ("<host>-w<n>", a replacement of a
        killed worker takes the same one); with one it uses --worker-id, as
        under systemd. Either way it is a static member (decision 0019)."""
        args = ["--worker-id", stable_id] if stable_id else []
        p = self.s.start_worker(concurrency=CONCURRENCY, extra_args=args,
                                extra_env={"GW_KAFKA_PROPS": KAFKA_PROPS,
                                           "GW_BROKER_URL": self.broker_url()})
        name = stable_id or self.worker_id_from_log(len(self.s.workers) - 1, p)
        self.workers.append({"name": name, "proc": p, "stable": bool(stable_id)})
        if heal:
            self.h.record_fault("start", "worker:" + name, heal=True, pid=p.pid)
        return p

    def worker_id_from_log(self, idx, p):
        """The id a worker chose itself: its host's lowest free slot of the
        group, "<host>-w<n>" (workers/slot.h), or "<host>-<pid>" when it
        could take none. Read from its start-up line, bounded."""
        pat = re.compile(r'"msg":"worker ([^:"]+): type ')
        deadline = time.time() + 20
        while time.time() < deadline:
            m = pat.search(self.s.log("worker%d" % idx))
            if m:
                return m.group(1)
            if p.poll() is not None:
                break
            time.sleep(0.05)
        raise Failure("worker %d did not say its id; log:\n%s" % (idx, self.s.log("worker%d" % idx)))

    def live_workers(self):
        return [w for w in self.workers if w["proc"].poll() is None and not w.get("stopped")]

    def in_flight(self):
        """Programs started and not ended, per worker pid (from the ledger)."""
        started, ended = {}, set()
        for e in ledger.parse(self.ledger_path):
            key = (e["run"], e["attempt"], e["pid"])
            if e["phase"] == "start":
                started[key] = e["ppid"]
            elif e["phase"] == "end":
                ended.add(key)
        per = {}
        for key, ppid in started.items():
            if key not in ended:
                per[ppid] = per.get(ppid, 0) + 1
        return per

    def busiest_worker(self, need=2, wait_s=3.0):
        """The live worker with the most programs in flight, waiting (bounded)
        until one has at least `need`."""
        deadline = time.time() + wait_s
        best = None
        while True:
            per = self.in_flight()
            cands = sorted(self.live_workers(), key=lambda w: -per.get(w["proc"].pid, 0))
            if cands:
                best = cands[0]
                n = per.get(best["proc"].pid, 0)
                if n >= need or time.time() >= deadline:
                    return best, n
            elif time.time() >= deadline:
                return None, 0
            time.sleep(0.05)

    def wait_in_flight(self, w, need, wait_s):
        """Waits (bounded) until worker w has `need` programs in flight."""
        deadline = time.time() + wait_s
        while True:
            n = self.in_flight().get(w["proc"].pid, 0)
            if n >= need or time.time() >= deadline:
                return n
            time.sleep(0.05)

    def fill_and_pick(self, t):
        """Half a second before t, fills every worker's slots (a burst) and
        returns the worker with the most runs in flight and their count; (None,
        0), noted, when no worker is live."""
        self.at(t - 0.5)
        self.burst(WORKERS * CONCURRENCY + 6)
        w, n = self.busiest_worker(need=CONCURRENCY - 1)
        if w is None:
            self.notes.append("no live worker to kill at t=%d" % t)
        return w, n

    def kill_worker(self, w, n):
        """SIGKILLs worker w (n programs in flight) and records the fault."""
        w["proc"].kill()
        w["proc"].wait(10)
        self.h.record_fault("kill", "worker:" + w["name"], pid=w["proc"].pid, in_flight=n)

    # -- timeline ------------------------------------------------------------
    def burst(self, n, sleep_ms=(1000, 1500)):
        """n submissions at once (recorded like the load), of longer runs: every
        worker has all its slots taken and a backlog, so its consumer has
        paused its partitions when the fault that follows hits."""
        base = 100000 + 1000 * len([f for f in self.h.faults])
        rng = random.Random(base)
        threads = []
        for k in range(n):
            i = base + k
            args = (i, "chaos-retry", {"sleep_ms": rng.randint(*sleep_ms), "i": i}, "burst")
            t = threading.Thread(target=self.client.submit, args=args, daemon=True)
            t.start()
            threads.append(t)
        deadline = time.time() + self.client.timeout + 2
        for t in threads:
            t.join(max(0.0, deadline - time.time()))

    def at(self, t):
        delay = self.t0 + t - time.time()
        if delay > 0:
            time.sleep(delay)

    # -- phases --------------------------------------------------------------
    def warm_up(self, n=8, timeout=40):
        """Runs before the load, recorded like any other: the workers have
        their partitions and the whole path works before faults start."""
        for i in range(n):
            self.client.submit(-1 - i, "chaos-retry", {"sleep_ms": 50, "i": -1 - i}, phase="warmup")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.nonterminal() == 0:
                return
            time.sleep(0.3)
        self.notes.append("warm-up runs had not all ended after %d s" % timeout)

    def nonterminal(self):
        try:
            return int(self.s.sql("SELECT count(*) FROM gw_runs WHERE status NOT IN %s" % TERMINAL_SQL))
        except (Failure, ValueError, subprocess.TimeoutExpired):
            return -1

    def drain(self, settle_s):
        last_fault = max([f["t"] for f in self.h.faults] + [self.h.load["end"] or time.time()])
        deadline = max(self.h.load["end"] + SETTLE_S, last_fault + settle_s)
        while time.time() < deadline:
            if self.nonterminal() == 0:
                break
            time.sleep(0.5)
        # Programs of killed workers run on as orphans: let them write their end.
        time.sleep(SLEEP_MS[1] / 1000 + 0.3)

    def snapshot(self):
        def rows(sql):
            out = self.s.sql("SELECT coalesce(json_agg(t), '[]') FROM (%s) t" % sql)
            return json.loads(out)
        return {
            "runs": rows("SELECT id, status, attempt, reason, idempotency_key, worker_id,"
                         " needs_reconciliation, max_attempts,"
                         " extract(epoch FROM created_at)::float8 AS created_at,"
                         " extract(epoch FROM finished_at)::float8 AS finished_at FROM gw_runs"),
            "events": rows("SELECT id, run_id, attempt, from_status, to_status, reason, actor,"
                           " extract(epoch FROM created_at)::float8 AS created_at"
                           " FROM gw_run_events ORDER BY id"),
            "worker_events": rows("SELECT run_id, attempt, seq, kind, worker_id FROM gw_worker_events"
                                  " WHERE kind <> 'log'"),
        }


def request_for(seed):
    def make(i):
        rng = random.Random(seed * 1000003 + i)
        action = "chaos-once" if i % 4 == 3 else "chaos-retry"
        return action, {"sleep_ms": rng.randint(*SLEEP_MS), "i": i}
    return make


# --------------------------------------------------------------- scenarios
# Each gets the Chaos object once the load has started; c.at(t) waits until
# t seconds into the load. Faults are recorded with heal=True when the
# faulted part is back.

def broker_kill(c):
    """The (only) broker SIGKILLed twice under load, restarted each time."""
    for t in (5, 11):
        c.at(t)
        c.s.broker.kill()
        c.s.broker.wait(10)
        c.h.record_fault("kill", "broker:b0", pid=c.s.broker.pid)
        time.sleep(0.5)
        c.s.start_broker()
        c.h.record_fault("restart", "broker:b0", heal=True, pid=c.s.broker.pid)


def worker_kill(c):
    """Three times: fill every worker's slots (a burst), SIGKILL the worker
    with the most runs in flight, start a replacement half a second later (as
    a supervisor would). The replacement's join revokes every survivor's
    partitions while they are paused, and the group waits for the dead
    member until its session expires."""
    for t in (4, 9, 14):
        w, n = c.fill_and_pick(t)
        if w is None:
            continue
        c.kill_worker(w, n)
        time.sleep(0.5)
        c.start_worker(heal=True)


def worker_restart(c):
    """Workers with stable ids (static members, as the systemd unit runs
    them) in a crash loop: twice, fill every slot (a burst), SIGKILL the
    worker with the most runs in flight, restart it under the same id half a
    second later, and once the new process has runs in flight, kill and
    restart it again. The new process must not execute what the old one
    had claimed."""
    for t in (4, 11):
        w, n = c.fill_and_pick(t)
        if w is None:
            continue
        for k in range(2):
            c.kill_worker(w, n)
            time.sleep(0.5)
            c.start_worker(heal=True, stable_id=w["name"])
            w = c.workers[-1]
            n = c.wait_in_flight(w, need=2, wait_s=3.0)


def worker_stop(c):
    """SIGSTOP the worker with the most runs in flight for 8 s (past the 4 s
    heartbeat timeout and the 6 s session timeout), then SIGCONT: its runs
    are retried elsewhere and its late results must be ignored."""
    c.at(5)
    w, n = c.busiest_worker()
    if w is None:
        raise Failure("no live worker to stop")
    w["proc"].send_signal(signal.SIGSTOP)
    w["stopped"] = True
    c.h.record_fault("stop", "worker:" + w["name"], pid=w["proc"].pid, in_flight=n)
    c.at(13)
    w["proc"].send_signal(signal.SIGCONT)
    w["stopped"] = False
    c.h.record_fault("cont", "worker:" + w["name"], heal=True, pid=w["proc"].pid)


def kafka_kill(c):
    """The (private) Kafka broker SIGKILLed, restarted 2 s later."""
    c.at(5)
    c.kafka.kill()
    c.h.record_fault("kill", "kafka")
    time.sleep(2)
    c.kafka.start()
    c.h.record_fault("restart", "kafka", heal=True)


def pg_stop(c):
    """The (private) PostgreSQL stopped (fast shutdown) for about 6 s, longer
    than the heartbeat timeout, then started again."""
    c.at(5)
    c.h.record_fault("stop", "pg")
    c.pg.stop()
    c.at(11)
    c.pg.start()
    c.h.record_fault("start", "pg", heal=True)


def pg_read_only(c):
    """The (private) PostgreSQL read-only for about 6 s, longer than the
    heartbeat timeout, as a primary is while a switchover demotes it: a
    reload puts every session, the open ones too, under
    default_transaction_read_only, so each write is refused at once with
    SQLSTATE 25006 while reads still work. Then writable again. The brokers'
    pools make their connections again on 25006 (lib/pg/conn.c) and the
    sinks retry: no event may be dead-lettered (post-check below)."""
    c.at(5)
    c.pg.sql("ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()")
    c.h.record_fault("read-only", "pg")
    c.at(11)
    c.pg.sql("SET default_transaction_read_only = off",
             "ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()")
    c.h.record_fault("writable", "pg", heal=True)


def no_dead_letters(c):
    """Violations for every event a broker's sink dead-lettered (a valid
    event refused for a transient reason would leave its run to the reaper:
    a retry, executed twice, or a run without its logs), and for a
    reconnect storm: a pool connection refused with 25006 is made again,
    backing off while the server stays read-only (lib/pg/conn.c), so over
    the 6 s each of the ~9 connections is made again about 7 times at most;
    a new session per refused write made 189."""
    out = []
    for name in ["broker"] + [b["name"] for b in c.brokers]:
        try:
            with open(os.path.join(c.s.tmp, name + ".log")) as f:
                text = f.read()
        except OSError:
            continue
        remade = 0
        for line in text.splitlines():
            if "dead-lettering" in line:
                out.append(("dead_lettered", "%s: %s" % (name, line[:300])))
            if "the server is read-only (SQLSTATE 25006)" in line:
                remade += 1
        c.notes.append("%s: %d pool connections made again for 25006" % (name, remade))
        if remade > 100:
            out.append(("reconnect_storm", "%s made %d pool connections again for 25006"
                        % (name, remade)))
    return out


def two_brokers(c):
    """Two replicas behind a load balancer; b0 SIGKILLed and not restarted:
    b1 must carry on alone (its relay takes over b0's leased outbox rows
    after their 30 s lease, its sink b0's partitions after b0's session)."""
    c.at(5)
    c.s.broker.kill()
    c.s.broker.wait(10)
    c.h.record_fault("kill", "broker:b0", heal=True, pid=c.s.broker.pid)


SCENARIOS = {
    # name: (timeline, options)
    # A broker killed between leasing an outbox row and publishing it leaves
    # the row leased for 30 s (docs/architecture.md): allow for it.
    "broker-kill": (broker_kill, {"settle_s": 40}),
    "worker-kill": (worker_kill, {"stall": STALL}),
    "worker-restart": (worker_restart, {"stall": STALL, "stable_ids": True}),
    "worker-stop": (worker_stop, {"stall": STALL}),
    # Everything requested while Kafka was down (about 14 s of load, ~280
    # runs of 0.2-1 s for 18 slots) is queued when it is back, and the groups
    # take a few seconds to form again: recovery measured 16-20 s after the
    # heal on a quiet host, so the default 25 s left CI too little room.
    "kafka-kill": (kafka_kill, {"private_kafka": True, "settle_s": 45}),
    "pg-stop": (pg_stop, {"private_pg": True}),
    "pg-read-only": (pg_read_only, {"private_pg": True, "post": no_dead_letters}),
    "two-brokers": (two_brokers, {"stall": STALL, "replicas": 2, "settle_s": 40}),
}


def keep_artifacts(c, result_text, snap, led):
    d = os.path.join(BUILD, "meson-logs", "chaos", c.name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "history.json"), "w") as f:
        json.dump(c.h.to_json(), f, indent=1)
    if snap is not None:
        with open(os.path.join(d, "snapshot.json"), "w") as f:
            json.dump(snap, f)
    if led is not None:
        with open(os.path.join(d, "ledger.json"), "w") as f:
            json.dump(led, f)
    with open(os.path.join(d, "verdict.txt"), "w") as f:
        f.write(result_text)
    for fn in os.listdir(c.s.tmp):
        if fn.endswith(".log"):
            shutil.copy(os.path.join(c.s.tmp, fn), d)
    return d


def run(name):
    timeline, opt = SCENARIOS[name]
    t_start = time.time()
    pg = kafka = None
    c = None
    s = None
    ok = False
    try:
        if opt.get("private_pg"):
            pg = PrivatePg()
            pg.start()
            os.environ["GW_TEST_PG_DSN"] = pg.dsn
        if opt.get("private_kafka"):
            kafka = PrivateKafka()
            kafka.start()
            os.environ["GW_TEST_KAFKA_BROKERS"] = kafka.brokers
        print("services ready in %.1f s" % (time.time() - t_start), flush=True)
        s = Stack("chaos_" + name.replace("-", "_"), broker_args=BROKER_ARGS,
                  broker_env={"GW_KAFKA_PROPS": KAFKA_PROPS})
        c = Chaos(name, s)
        c.pg, c.kafka = pg, kafka
        actions = os.path.join(s.tmp, "actions")
        prog = [sys.executable, "-I", "-S", os.path.join(HERE, "ledger.py"), c.ledger_path]
        schema = {"type": "object", "properties": {"sleep_ms": {"type": "integer", "minimum": 0,
                                                                "maximum": 10000},
                                                   "i": {"type": "integer"}}}
        write_action(actions, "chaos-retry", prog, schema, timeout_seconds=60,
                     retry={"max_attempts": 5})
        write_action(actions, "chaos-once", prog, schema, timeout_seconds=60)
        s.actions_dir = actions
        s.start_broker()
        if opt.get("replicas", 1) == 2:
            c.start_broker_extra("b1")
            c.balancer = Balancer([("127.0.0.1", s.port), ("127.0.0.1", c.brokers[0]["port"])])
        for k in range(WORKERS):
            c.start_worker(stable_id="wk%d" % k if opt.get("stable_ids") else None)
        c.client = Client(c.h, c.broker_url(), s.token, key_prefix="chaos-" + name)
        c.warm_up()
        print("stack ready in %.1f s" % (time.time() - t_start), flush=True)

        seed = random.randrange(1 << 30)
        print("seed", seed, flush=True)
        c.load = Load(c.client, RATE, LOAD_S, request_for(seed))
        c.load.start()
        while c.h.load["start"] is None:
            time.sleep(0.01)
        c.t0 = c.h.load["start"]
        try:
            timeline(c)
        finally:
            c.load.join(LOAD_S + 30)
        c.drain(opt.get("settle_s", SETTLE_S))
        for b in [{"name": "b0", "proc": s.broker}] + c.brokers:
            if b["proc"] is not None and b["proc"].poll() is not None and not any(
                    f["target"] == "broker:" + b["name"] and f["kind"] == "kill" for f in c.h.faults):
                c.notes.append("broker %s exited by itself with status %s"
                               % (b["name"], b["proc"].returncode))
        for w in c.workers:
            if w["proc"].poll() is not None and not any(
                    f["target"] == "worker:" + w["name"] and f["kind"] == "kill" for f in c.h.faults):
                c.notes.append("worker %s exited by itself with status %s"
                               % (w["name"], w["proc"].returncode))
        snap = c.snapshot()
        led = ledger.parse(c.ledger_path)
        res = checker.check(c.h.to_json(), snap, led, stall=opt.get("stall"))
        for kind, msg in opt.get("post", lambda _c: [])(c):
            res.add(kind, msg)
        lines = []
        for f in c.h.faults:
            lines.append("fault +%.2fs %s %s%s" % (f["t"] - c.t0, f["kind"], f["target"],
                                                   " (healed)" if f["heal"] else ""))
        for n in c.notes:
            lines.append("NOTE " + n)
        shown = {}
        for kind, msg in res.violations:
            shown[kind] = shown.get(kind, 0) + 1
            if shown[kind] <= 25:
                lines.append("VIOLATION %s: %s" % (kind, msg))
        for kind, n in sorted(shown.items()):
            if n > 25:
                lines.append("VIOLATION %s: ... %d more" % (kind, n - 25))
        fig = res.figures
        lines.append("figures: failed %d (definite), scenario wall %.0f s"
                     % (fig["failed"], time.time() - t_start))
        lines.append(checker.summary(name, res))
        text = "\n".join(lines) + "\n"
        d = keep_artifacts(c, text, snap, led)
        print("artifacts in", d)
        print(text, end="", flush=True)
        ok = res.ok
    except (Failure, RuntimeError, subprocess.TimeoutExpired) as e:
        print("FAIL - scenario could not run:", e, flush=True)
        if c is not None:
            print("artifacts in", keep_artifacts(c, "FAIL - %s\n" % e, None, None))
    finally:
        if c is not None:
            for w in c.workers:
                if w.get("stopped") and w["proc"].poll() is None:
                    w["proc"].send_signal(signal.SIGCONT)
            if c.balancer is not None:
                c.balancer.close()
            for b in c.brokers:
                if b["proc"].poll() is None:
                    b["proc"].terminate()
                    try:
                        b["proc"].wait(20)
                    except subprocess.TimeoutExpired:
                        b["proc"].kill()
                        b["proc"].wait()
        if s is not None:
            try:
                s.close()
            except Failure as e:
                print("warning: teardown:", e)
        if kafka is not None:
            kafka.close()
        if pg is not None:
            pg.close()
        print("scenario %s took %.1f s" % (name, time.time() - t_start), flush=True)
    return ok


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: test_chaos.py %s" % "|".join(SCENARIOS))
        sys.exit(2)
    if not os.environ.get("GW_TEST_PG_DSN") or not os.environ.get("GW_TEST_KAFKA_BROKERS"):
        print("skipped: GW_TEST_PG_DSN and GW_TEST_KAFKA_BROKERS are not set")
        sys.exit(SKIP)
    sys.exit(0 if run(sys.argv[1]) else 1)


if __name__ == "__main__":
    main()
