#!/usr/bin/env python3
"""A stand-in for the broker's claim endpoint (protocol.md section 2), for the
workers tests. Prints its port on the first line of stdout.

Behaviour by the run id's last three characters:
  a01: 503, 503, then 200      a02: 409 claim_refused (cancelled)
  a03: 404                     a04: 401 once, then 200
  a05: 400                     f01: 200, command sleeps 30 s
  d01: 200 after 2 s (a claim still in flight; when $GW_TEST_CLAIM_MARK_DIR
       is set, the file <dir>/<run id> appears as the claim arrives)
  anything else: 200
The 200 reply's backend command comes from $GW_TEST_CLAIM_COMMAND (a JSON
array), default ["/bin/true"]. GET /count/<run id> answers how many claims
that run received; GET /log answers every claim as JSON lines."""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

counts = {}
claims = []
command = json.loads(os.environ.get("GW_TEST_CLAIM_COMMAND", '["/bin/true"]'))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/count/"):
            self.reply(200, counts.get(self.path[len("/count/"):], 0))
        elif self.path == "/log":
            self.reply(200, claims)
        else:
            self.reply(404, {})

    def do_POST(self):
        parts = self.path.split("/")
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if len(parts) != 6 or parts[1:4] != ["internal", "v1", "runs"] or parts[5] != "claim":
            return self.reply(404, {"code": "not_found"})
        run_id = parts[4]
        n = counts[run_id] = counts.get(run_id, 0) + 1
        if self.headers.get("Authorization") != "Bearer tok":
            return self.reply(401, {"code": "unauthorized"})
        try:
            body = json.loads(raw)
            assert isinstance(body["attempt"], int) and body["worker_id"] and body["worker_type"]
        except Exception:
            return self.reply(400, {"code": "bad_request", "detail": "bad claim body"})
        claims.append({"run_id": run_id, **body})
        tag = run_id[-3:]
        problem = "application/problem+json"
        if tag == "a01" and n <= 2:
            return self.reply(503, {"code": "unavailable"}, problem)
        if tag == "a02":
            return self.reply(409, {"code": "claim_refused", "detail": "cancelled"}, problem)
        if tag == "a03":
            return self.reply(404, {"code": "run_not_found"}, problem)
        if tag == "a04" and n == 1:
            return self.reply(401, {"code": "unauthorized"}, problem)
        if tag == "a05":
            return self.reply(400, {"code": "bad_request", "detail": "nope"}, problem)
        if tag == "d01":
            mark = os.environ.get("GW_TEST_CLAIM_MARK_DIR")
            if mark:
                open(os.path.join(mark, run_id), "w").close()
            time.sleep(2)
        backend = {"command": command}
        if tag == "f01":
            backend = {"command": ["/bin/sh", "-c", "echo sleeping; exec sleep 30"]}
        self.reply(200, {
            "run_id": run_id, "attempt": body["attempt"], "fence": body["attempt"],
            "action": {"id": "echo", "version": "v1", "worker_type": "exec",
                       "timeout_seconds": 30, "backend": backend},
            "inputs": {"greeting": "hi", "run": run_id},
            "requested_by": {"subject": "alice", "teams": ["t1"]},
            "heartbeat_interval_seconds": 0.2,
        })


server = HTTPServer(("127.0.0.1", 0), Handler)
# One write, then let go of the pipe: the test stops reading after the port.
os.write(1, b"%d\n" % server.server_address[1])
os.close(1)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
