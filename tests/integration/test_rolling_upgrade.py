#!/usr/bin/env python3
"""A rolling upgrade with nothing lost (docs/operations.md), through the real
brokers, workers, PostgreSQL and Kafka:

- two broker replicas behind a small round-robin TCP balancer written here
  (a connection to a backend that is down goes to the next one; when a
  backend closes, so does the client's connection); two exec workers
  (static members wR1, wR2) claim through the balancer too;
- a client submits at a steady rate (RATE per second), each request with its
  own Idempotency-Key, retrying 503s and connection errors with the same key;
- every process is restarted one at a time: broker A, broker B, worker 1,
  worker 2 (SIGTERM, wait for its exit, start the same binary again: "a new
  binary built from the same tree"); workers drain in DRAIN_MODE (handoff:
  the runs in flight go on under their supervisors and the restarted worker
  reattaches them);
- then: zero failed requests; every idempotency key has one run and every
  accepted run ended `succeeded` (none lost); no key has two runs and every
  run's program started exactly once (no duplicates); the runs in flight on
  a worker when it got SIGTERM finished `succeeded`."""
import http.client
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Failure, Stack, check, main, need_services, write_action  # noqa: E402

# Worker restarts drain in this mode (--drain-mode): "handoff" (the default
# here) detaches the supervised runs in flight and the restarted worker
# reattaches them (docs/reattach.md); "wait" lets them finish first.
DRAIN_MODE = os.environ.get("GW_TEST_DRAIN_MODE", "handoff")
RATE = 20           # requests per second
PAUSE = 3.0         # seconds of traffic between two restarts
REQUEST_DEADLINE = 60.0


class Balancer:
    """Round-robin TCP proxy on 127.0.0.1. Each client connection goes to the
    next backend that accepts a connection; bytes are copied both ways until
    either side closes, then both are closed."""

    def __init__(self, ports):
        self.ports = list(ports)
        self.next = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _backend(self):
        with self.lock:
            start = self.next
            self.next = (self.next + 1) % len(self.ports)
        for k in range(len(self.ports)):
            port = self.ports[(start + k) % len(self.ports)]
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
        return None

    def _serve(self, c):
        b = self._backend()
        if b is None:
            c.close()
            return
        b.settimeout(None)

        def pipe(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        t = threading.Thread(target=pipe, args=(b, c), daemon=True)
        t.start()
        pipe(c, b)
        t.join()
        c.close()
        b.close()


class Client:
    """RATE submissions per second, each retried on 503 and connection errors
    with its Idempotency-Key until it gets an answer."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.lock = threading.Lock()
        self.runs = {}       # key -> set of run ids answered
        self.failures = []   # (key, status or error, body)
        self.retries = 0
        self.threads = []
        self.stopping = False
        self.sent = 0

    def _one(self, key, sleep):
        body = json.dumps({"inputs": {"sleep": sleep}})
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + self.token,
                   "Idempotency-Key": key, "Connection": "close"}
        deadline = time.time() + REQUEST_DEADLINE
        last = None
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                c.request("POST", "/v1/actions/job/runs", body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                c.close()
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            else:
                if r.status in (200, 201, 202):
                    with self.lock:
                        self.runs.setdefault(key, set()).add(json.loads(data)["id"])
                    return
                if r.status != 503:
                    with self.lock:
                        self.failures.append((key, r.status, data[:300]))
                    return
                last = "503"
            with self.lock:
                self.retries += 1
            time.sleep(0.2)
        with self.lock:
            self.failures.append((key, "gave up", last))

    def _loop(self):
        t0 = time.time()
        while not self.stopping:
            key = str(uuid.uuid4())
            t = threading.Thread(target=self._one, args=(key, round(random.uniform(0.2, 2.0), 2)))
            t.start()
            self.threads.append(t)
            self.sent += 1
            nxt = t0 + self.sent / RATE
            time.sleep(max(0.0, nxt - time.time()))

    def start(self):
        self.loop = threading.Thread(target=self._loop)
        self.loop.start()

    def stop(self):
        self.stopping = True
        self.loop.join()
        for t in self.threads:
            t.join()


def job_action(directory, starts):
    prog = os.path.join(directory, "job.sh")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho \"$GANGWAY_RUN_ID\" >> %s\n"
                "s=$(cat | sed -n 's/.*\"sleep\": *\\([0-9.]*\\).*/\\1/p')\n"
                "[ -n \"$s\" ] && sleep \"$s\"\nexit 0\n" % starts)
    os.chmod(prog, 0o755)
    write_action(directory, "job", [prog],
                 {"type": "object", "properties": {"sleep": {"type": "number"}}},
                 timeout_seconds=120)


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    check(False, what + " (timed out after %ss)" % timeout)


def wait_drained(what, remaining, stall=90, cap=900):
    """Waits until remaining() is 0. The queue left when the traffic stops
    depends on how long the restarts took (under ASan a supervised run costs
    about a second of CPU, and the client goes on sending meanwhile), so the
    deadline is on progress: fail when nothing ended for `stall` seconds (a
    lost run stops the count for good), or after `cap` seconds in all."""
    start = time.time()
    last, last_change = remaining(), time.time()
    while last > 0:
        now = time.time()
        if now - last_change > stall or now - start > cap:
            check(False, "%s (%d left; none ended in the last %.0f s, %.0f s in all)"
                  % (what, last, now - last_change, now - start))
        time.sleep(0.5)
        n = remaining()
        if n < last:
            last_change = time.time()
        last = n
    check(True, "%s (%.0f s after the traffic stopped)" % (what, time.time() - start))


def test():
    need_services()
    actions = tempfile.mkdtemp(prefix="gw-rolling-actions-")
    starts = os.path.join(actions, "starts")
    job_action(actions, starts)
    try:
        run(actions, starts)
    finally:
        shutil.rmtree(actions, ignore_errors=True)


def run(actions, starts):
    with Stack("rolling", actions_dir=actions) as s:
        brokers = {}
        for name in ("brokerA", "brokerB"):
            proc, port = s.start_replica(name)
            brokers[name] = [proc, port]
        lb = Balancer([brokers["brokerA"][1], brokers["brokerB"][1]])
        # Everything goes through the balancer: the client, s.get(), claims.
        s.port, s.url = lb.port, "http://127.0.0.1:%d" % lb.port

        worker_ids = ("wR1", "wR2")
        workers = {}

        def start_worker(wid):
            before = len(s.workers)
            args = ["--worker-id", wid, "--drain-mode", DRAIN_MODE]
            if DRAIN_MODE == "handoff":
                args += ["--supervise", "--state-dir", os.path.join(s.tmp, "state")]
            p = s.start_worker(concurrency=16, extra_args=args)
            log = "worker%d" % before
            wait_for(wid + " has partitions and listens for control messages",
                     lambda: "partition(s) assigned" in s.log(log) and "listening for cancels" in s.log(log))
            workers[wid] = p

        for wid in worker_ids:
            start_worker(wid)
        wait_for("both workers assigned", lambda: all("partition(s) assigned" in s.log("worker%d" % i)
                                                      for i in range(2)))

        client = Client(lb.port, s.token)
        client.start()
        in_flight = {}
        try:
            time.sleep(PAUSE)
            for name in ("brokerA", "brokerB"):
                proc, port = brokers[name]
                rc = s.stop(proc, timeout=60)
                check(rc == 0, "%s exited 0 on SIGTERM (%s)" % (name, rc))
                brokers[name] = [s.start_replica(name, port=port)[0], port]
                print("restarted", name, "after", client.sent, "requests", flush=True)
                time.sleep(PAUSE)
            for wid in worker_ids:
                in_flight[wid] = s.sql("SELECT string_agg(id::text, ',') FROM gw_runs WHERE status = 'running'"
                                       " AND worker_id LIKE '%s-%%'" % wid).split(",")
                in_flight[wid] = [r for r in in_flight[wid] if r]
                t0 = time.time()
                rc = s.stop(workers[wid], timeout=90)
                check(rc == 0, "%s drained (mode %s) and exited 0 in %.1f s with %d run(s) in flight"
                      % (wid, DRAIN_MODE, time.time() - t0, len(in_flight[wid])))
                start_worker(wid)
                print("restarted", wid, "after", client.sent, "requests", flush=True)
                time.sleep(PAUSE)
        finally:
            client.stop()
        lb_ok = client.sent
        print("client: %d requests, %d retries, %d failures" % (lb_ok, client.retries, len(client.failures)),
              flush=True)
        check(not client.failures, "zero failed requests", client.failures[:5])
        dup_keys = {k: v for k, v in client.runs.items() if len(v) != 1}
        check(not dup_keys, "each idempotency key answered with one run id", list(dup_keys.items())[:3])
        check(len(client.runs) == client.sent, "every request accepted (%d of %d)" % (len(client.runs), client.sent))
        run_ids = {next(iter(v)) for v in client.runs.values()}
        check(len(run_ids) == client.sent, "one distinct run per key")
        db_count = int(s.sql("SELECT count(*) FROM gw_runs WHERE action_id = 'job'"))
        check(db_count == client.sent, "one run row per key in PostgreSQL (%d)" % db_count)

        open_runs = ("SELECT count(*) FROM gw_runs WHERE status NOT IN "
                     "('succeeded','failed','timed_out','cancelled','rejected','expired')")
        try:
            wait_drained("every run ended", lambda: int(s.sql(open_runs)))
        except Failure:
            # What the runs that did not end were doing: their status, worker,
            # attempt and age, and the last transition of a few of them.
            print(s.sql("SELECT string_agg(x, E'\\n') FROM (SELECT status || ' ' || coalesce(worker_id, '-')"
                        " || ' attempt ' || attempt || ': ' || count(*) || ' run(s), oldest created '"
                        " || round(extract(epoch FROM now() - min(created_at))) || ' s ago' AS x"
                        " FROM gw_runs WHERE status NOT IN ('succeeded','failed','timed_out','cancelled',"
                        "'rejected','expired') GROUP BY status, worker_id, attempt) t"), flush=True)
            raise
        bad = s.sql("SELECT string_agg(id || ' ' || status || ' ' || coalesce(reason, ''), '; ')"
                    " FROM gw_runs WHERE status <> 'succeeded'")
        check(bad == "", "every accepted run succeeded (none lost)", bad)
        with open(starts) as f:
            started = f.read().split()
        check(set(started) == run_ids, "every run's program started (%d)" % len(set(started)))
        twice = [r for r in set(started) if started.count(r) > 1]
        check(not twice, "no program started twice", twice[:5])
        attempts = s.sql("SELECT count(*) FROM gw_runs WHERE attempt <> 1")
        check(attempts == "0", "no run needed a second attempt")
        for wid, runs in in_flight.items():
            ends = [s.sql("SELECT status || ' ' || worker_id FROM gw_runs WHERE id = '%s'" % rid) for rid in runs]
            wrong = [e for e in ends if not e.startswith("succeeded %s-" % wid)]
            check(not wrong, "the %d run(s) in flight on %s at SIGTERM finished there" % (len(runs), wid), wrong)
        check(sum(len(r) for r in in_flight.values()) > 0, "some runs were in flight during the worker restarts")
        lb.close()


if __name__ == "__main__":
    main(test)
