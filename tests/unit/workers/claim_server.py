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
The batch endpoint (POST /internal/v1/claims) answers only a batch whose
worker_type is "batchtest" (anything else gets 404, an old broker's
answer, so the runtime's tests keep claiming one by one); per entry, by
the same tags: a02 409 (cancelled), a03 404, a05 400 (nope), e01 an entry
naming another run, e02 200 without a claim document, e03 500 with no
problem body, anything else 200 with a claim; a batch whose first run
ends in e09 is refused as a whole with 409 (busy).
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

    def batch(self, raw):
        body = json.loads(raw)
        if body.get("worker_type") != "batchtest":
            return self.reply(404, {"code": "not_found"})
        claims = body["claims"]
        if claims and claims[0]["run_id"].endswith("e09"):
            return self.reply(409, {"code": "claim_refused", "detail": "busy"})
        entries = []
        for c in claims:
            rid, tag = c["run_id"], c["run_id"][-3:]
            if tag == "a02":
                entries.append({"run_id": rid, "status": 409, "code": "claim_refused", "detail": "cancelled"})
            elif tag == "a03":
                entries.append({"run_id": rid, "status": 404, "code": "run_not_found"})
            elif tag == "a05":
                entries.append({"run_id": rid, "status": 400, "code": "bad_request", "detail": "nope"})
            elif tag == "e01":
                entries.append({"run_id": "00000000-0000-0000-0000-00000000ffff", "status": 200,
                                "claim": {"run_id": rid}})
            elif tag == "e02":
                entries.append({"run_id": rid, "status": 200})
            elif tag == "e03":
                entries.append({"run_id": rid, "status": 500})
            else:
                entries.append({"run_id": rid, "status": 200,
                                "claim": {"run_id": rid, "fence": c["attempt"],
                                          "action": {"backend": {"command": command}}}})
        return self.reply(200, {"claims": entries})

    def do_POST(self):
        parts = self.path.split("/")
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path == "/internal/v1/claims":
            return self.batch(raw)
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
