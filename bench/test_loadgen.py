"""Unit test of gangway-loadgen against a stub broker (no services needed).

The stub checks every request (method, path, token, body), answers 202 with
a run-like body whose nested objects also hold "id" keys, answers every 10th
request 503, closes the connection after every 25th response and can stall
once, so the test checks counting, id extraction, reconnects and that the
open loop charges a stall to the requests queued behind it."""

import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid

BUILD = os.environ.get("GW_BUILD_ROOT", "build")
LOADGEN = os.path.join(BUILD, "bench", "gangway-loadgen")
TOKEN = "gwt_test_token"
BODY = b'{"inputs":{"message":"bench"}}'


class Stub(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, stall_at=None, stall_s=0.0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.count = 0
        self.bad = []
        self.ids = []
        self.stall_at = stall_at
        self.stall_s = stall_s


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            line = self.rfile.readline()
            if not line:
                return
            headers = {}
            while True:
                h = self.rfile.readline()
                if h in (b"\r\n", b""):
                    break
                k, v = h.decode().split(":", 1)
                headers[k.strip().lower()] = v.strip()
            body = self.rfile.read(int(headers.get("content-length", "0")))
            with srv.lock:
                srv.count += 1
                n = srv.count
            if (line != b"POST /v1/actions/bench-echo/runs HTTP/1.1\r\n"
                    or headers.get("authorization") != "Bearer " + TOKEN
                    or headers.get("content-type") != "application/json" or body != BODY):
                srv.bad.append((line, headers, body))
                status, payload = 400, b'{"code":"bad_request"}'
            elif n % 10 == 0:
                status, payload = 503, b'{"code":"unavailable"}'
            else:
                rid = str(uuid.uuid4())
                with srv.lock:
                    srv.ids.append(rid)
                # jsonb-style spacing, nested "id" keys before and after.
                payload = json.dumps({"action": {"id": "bench-echo"}, "id": rid,
                                      "inputs": {"id": "not-this"}}).encode()
                status = 202
            if srv.stall_at is not None and n == srv.stall_at:
                time.sleep(srv.stall_s)
            close = n % 25 == 0
            head = "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n" % (
                status, len(payload), "Connection: close\r\n" if close else "")
            self.wfile.write(head.encode() + payload)
            self.wfile.flush()
            if close:
                return


def run_loadgen(port, *args):
    p = subprocess.run([LOADGEN, "--url", "http://127.0.0.1:%d" % port, "--action", "bench-echo",
                        "--token", TOKEN] + list(args), capture_output=True, text=True, timeout=60)
    print(p.stdout, p.stderr, sep="")
    m = re.search(r"^loadgen: (.*)$", p.stdout, re.M)
    assert m, "no summary line"
    return p.returncode, {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def check(cond, what):
    if not cond:
        print("FAIL -", what)
        sys.exit(1)
    print("ok -", what)


def serve(srv):
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def main():
    tmp = tempfile.mkdtemp(prefix="gw-loadgen-")
    ids_path = os.path.join(tmp, "ids")

    # Closed loop: counts, errors by status, ids, reconnects.
    srv = Stub()
    port = serve(srv)
    rc, r = run_loadgen(port, "--connections", "4", "--duration", "1", "--ids", ids_path)
    srv.shutdown()
    check(rc == 0, "closed loop exits 0")
    check(not srv.bad, "every request well formed: %s" % (srv.bad[:1],))
    check(r["sent"] == srv.count, "sent (%d) equals what the server saw (%d)" % (r["sent"], srv.count))
    check(r["sent"] > 50, "some throughput")
    check(r["ok"] == len(srv.ids), "202 count matches")
    check(r["errors"] == srv.count // 10, "every 10th request counted as an error")
    check(r["unfinished"] == 0, "nothing unfinished")
    with open(ids_path) as f:
        got = f.read().split()
    check(sorted(got) == sorted(srv.ids),
          "ids file holds exactly the top-level ids of the 202s")

    # Open loop: the rate holds, and one 300 ms stall on a single connection
    # shows up in the latency of the requests scheduled behind it.
    srv = Stub(stall_at=20, stall_s=0.3)
    port = serve(srv)
    t0 = time.time()
    rc, r = run_loadgen(port, "--connections", "1", "--rate", "100", "--duration", "2")
    elapsed = time.time() - t0
    srv.shutdown()
    check(rc == 0, "open loop exits 0")
    check(r["sent"] == 200 and srv.count == 200, "open loop sends rate x duration (200)")
    check(1.9 <= elapsed < 5, "open loop takes about its duration (%.2f s)" % elapsed)
    check(r["max_ms"] >= 290, "the stall is measured (max %.1f ms)" % r["max_ms"])
    check(r["p90_ms"] >= 50, "queued requests carry the stall (p90 %.1f ms)" % r["p90_ms"])

    # Nobody listening: no 202, exit 1, no hang.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    rc, r = run_loadgen(dead, "--connections", "2", "--duration", "0.5")
    check(rc == 1 and r["ok"] == 0, "no server: exit 1, nothing accepted")

    os.unlink(ids_path)
    os.rmdir(tmp)
    print("PASS")


if __name__ == "__main__":
    main()
