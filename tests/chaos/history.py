"""The recording client of the fault-injection suite: every request it sends
and what came back, in the spirit of Jepsen's histories.

Each submission carries a unique Idempotency-Key (the header
broker/api_runs.c reads), so a request whose answer was lost can be looked
up in PostgreSQL afterwards. Each operation becomes one record:

    {"op": "submit", "i": 17, "key": "...", "action": "chaos-retry",
     "target": "http://127.0.0.1:PORT", "start": <epoch s>, "end": <epoch s>,
     "outcome": "ok" | "fail" | "indeterminate",
     "status": <HTTP status or None>, "run_id": <uuid or None>, "error": "..."}

Outcomes:
- ok: 202 with a run id: the broker acknowledged the run.
- fail: a definite failure: a 4xx answer, or the connection was refused (the
  request never left this process).
- indeterminate: the request may or may not have taken effect: a 5xx answer,
  a timeout, a reset or closed connection after the request was written.

Faults the test injects are recorded next to the operations (record_fault),
so the checker knows which worker was killed or stopped, and when.

Python 3 stdlib only."""

import http.client
import json
import random
import socket
import threading
import time
import urllib.parse

OK, FAIL, INDETERMINATE = "ok", "fail", "indeterminate"


class History:
    """Thread-safe, append-only record of operations and faults."""

    def __init__(self):
        self._lock = threading.Lock()
        self.ops = []
        self.faults = []
        self.load = {"start": None, "end": None}

    def add_op(self, rec):
        with self._lock:
            self.ops.append(rec)

    def record_fault(self, kind, target, heal=False, **extra):
        """kind: kill | stop | cont | restart | start | pg_stop | pg_start ...;
        target: "worker:wk1", "broker:b0", "kafka", "pg"; heal: the faulted part
        is back (the moment recovery is measured from)."""
        rec = {"t": time.time(), "kind": kind, "target": target, "heal": bool(heal)}
        rec.update(extra)
        with self._lock:
            self.faults.append(rec)
        return rec

    def to_json(self):
        with self._lock:
            return {"ops": list(self.ops), "faults": list(self.faults), "load": dict(self.load)}


class Client:
    """Submits runs and records each request in a History."""

    def __init__(self, history, url, token, timeout=8.0, key_prefix="chaos"):
        self.history = history
        self.url = url
        self.token = token
        self.timeout = timeout
        self.key_prefix = "%s-%s" % (key_prefix, "%08x" % random.getrandbits(32))

    def submit(self, i, action, inputs, phase="load"):
        u = urllib.parse.urlsplit(self.url)
        key = "%s-%d" % (self.key_prefix, i)
        rec = {"op": "submit", "i": i, "key": key, "action": action, "phase": phase,
               "target": self.url, "start": time.time(), "end": None, "outcome": None,
               "status": None, "run_id": None, "error": None}
        body = json.dumps({"inputs": inputs})
        headers = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json",
                   "Idempotency-Key": key, "Connection": "close"}
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=self.timeout)
        try:
            try:
                conn.connect()
            except ConnectionRefusedError as e:
                # Nothing was sent: a definite failure.
                rec["outcome"], rec["error"] = FAIL, "connect: %s" % e
                return rec
            except OSError as e:
                # A connect timeout: nothing was sent either, but say so.
                rec["outcome"], rec["error"] = FAIL, "connect: %s" % e
                return rec
            try:
                conn.request("POST", "/v1/actions/%s/runs" % action, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
            except (socket.timeout, TimeoutError) as e:
                rec["outcome"], rec["error"] = INDETERMINATE, "timeout: %s" % e
                return rec
            except (http.client.HTTPException, OSError) as e:
                rec["outcome"], rec["error"] = INDETERMINATE, "%s: %s" % (type(e).__name__, e)
                return rec
            rec["status"] = r.status
            if r.status == 202:
                try:
                    rec["run_id"] = json.loads(data)["id"]
                    rec["outcome"] = OK
                except (ValueError, KeyError, TypeError) as e:
                    rec["outcome"], rec["error"] = INDETERMINATE, "bad 202 body: %s" % e
            elif 400 <= r.status < 500:
                rec["outcome"], rec["error"] = FAIL, data[:300].decode(errors="replace")
            else:
                rec["outcome"], rec["error"] = INDETERMINATE, data[:300].decode(errors="replace")
            return rec
        finally:
            conn.close()
            rec["end"] = time.time()
            self.history.add_op(rec)


class Load(threading.Thread):
    """Submits at a fixed rate for a fixed time, one thread per request (a
    request stuck in a fault must not slow the schedule). Every request ends
    within the client timeout, so join() is bounded."""

    def __init__(self, client, rate, seconds, make_request, first_index=0):
        super().__init__(daemon=True)
        self.client = client
        self.rate = rate
        self.seconds = seconds
        self.make_request = make_request  # i -> (action, inputs)
        self.first = first_index
        self.threads = []

    def run(self):
        h = self.client.history
        t0 = time.time()
        h.load["start"] = t0
        n = int(self.rate * self.seconds)
        for k in range(n):
            due = t0 + k / self.rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            i = self.first + k
            action, inputs = self.make_request(i)
            t = threading.Thread(target=self.client.submit, args=(i, action, inputs), daemon=True)
            t.start()
            self.threads.append(t)
        h.load["end"] = time.time()
        deadline = time.time() + self.client.timeout + 5
        for t in self.threads:
            t.join(max(0.0, deadline - time.time()))
