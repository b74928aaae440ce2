"""Operations: readiness follows the real dependencies, and webhooks are
retried, signed, and given up on.

1. PostgreSQL reached through a TCP proxy this test controls: /readyz is 200
   with it, 503 `postgresql: down` (and submissions 503 `unavailable` with
   Retry-After) while the proxy is gone, and 200 again — with submissions
   accepted — once it is back, without restarting the broker. /healthz stays
   200 throughout (the process is alive; only readiness changes).
2. A broker whose Kafka bootstrap address answers nothing reports
   `kafka: down` on /readyz with 503, while /healthz is 200.
3. Webhooks: a receiver that fails twice gets the same delivery three times
   (same X-Gangway-Delivery, X-Gangway-Attempt 1, 2, 3, spaced by the
   doubling backoff), each signed with HMAC-SHA256 over "<timestamp>.<body>";
   a receiver that always fails is given up on after GW_WEBHOOK_MAX_ATTEMPTS
   (the row is marked failed with the reason, nothing more is sent, and the
   metric counts it).
"""

import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import harness
from harness import check

SECRET = "webhook-secret-for-tests"


class Proxy:
    """A TCP forwarder that can drop every connection and stop listening."""

    def __init__(self, port, target):
        self.port, self.target = port, target
        self.listener = None
        self.socks = []
        self.lock = threading.Lock()

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                if listener is not self.listener:  # stop() ran meanwhile
                    c.close()
                    u.close()
                    return
                self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        if self.listener is None:
            return
        # shutdown() wakes the thread blocked in accept(); close() alone
        # would leave it accepting on the old socket.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            self.listener = None
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def wait_ready(stack, want_status, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            r = stack.get("/readyz", auth=False)
            last = (r.status, r.body)
            if r.status == want_status:
                return r
        except OSError as e:
            last = e
        time.sleep(0.2)
    raise harness.Failure("/readyz did not answer %d in %d s (last: %s)" % (want_status, timeout, last))


def pg_host_port(dsn):
    kv = dict(p.split("=", 1) for p in dsn.split() if "=" in p)
    return kv.get("host", "127.0.0.1"), int(kv.get("port", "5432"))


def test_readiness():
    pg_admin, _ = harness.need_services()
    proxy = Proxy(harness.free_port(), pg_host_port(pg_admin))
    proxy.start()
    s = harness.Stack("ops")
    proxied = " ".join([p for p in s.dsn.split() if not p.startswith(("host=", "port="))]
                       + ["host=127.0.0.1", "port=%d" % proxy.port])
    s.broker_env = {"GW_PG": proxied}
    with s:
        try:
            s.start_broker()
            r = wait_ready(s, 200, 10)
            check(r.json() == {"status": "ready", "checks": {"postgresql": "up", "kafka": "up"}},
                  "ready with PostgreSQL and Kafka up", r.body)

            proxy.stop()
            r = wait_ready(s, 503, 30)
            check(r.json()["checks"]["postgresql"] == "down" and r.json()["status"] == "not_ready",
                  "PostgreSQL gone: /readyz 503 postgresql down", r.body)
            check(s.get("/healthz", auth=False).status == 200, "/healthz stays 200 (the process is fine)")
            r = s.submit("echo", {"message": "while down"})
            check(r.status == 503 and r.json().get("code") == "unavailable"
                  and r.headers.get("retry-after") == "1",
                  "a submission while PostgreSQL is gone is 503 unavailable with Retry-After", r.status, r.body)

            proxy.start()
            wait_ready(s, 200, 30)
            check(True, "PostgreSQL back: /readyz 200 again without restarting the broker")
            r = s.submit("echo", {"message": "after"})
            check(r.status == 202, "and submissions are accepted again", r.status, r.body)
            n = s.sql("SELECT count(*) FROM gw_runs WHERE inputs->>'message' = 'while down'")
            check(n == "0", "the refused submission left no run behind", n)
        finally:
            proxy.stop()

    # Kafka: a bootstrap address where nothing listens.
    s = harness.Stack("opsk")
    log = open(os.path.join(s.tmp, "broker.log"), "a")
    env = s.env({"GW_KAFKA_BROKERS": "127.0.0.1:%d" % harness.free_port()})
    p = subprocess.Popen([harness.GANGWAY, "broker", "--listen", "127.0.0.1:%d" % s.port,
                          "--no-create-topics"], env=env, stdout=log, stderr=subprocess.STDOUT)
    s.broker = p
    with s:
        deadline = time.time() + 30
        r = None
        while time.time() < deadline and p.poll() is None:
            try:
                r = s.get("/readyz", auth=False)
                break
            except OSError:
                time.sleep(0.2)
        check(r is not None, "a broker without Kafka still serves HTTP", s.log("broker")[-2000:])
        # Let the bootstrap attempt fail once, then ask again.
        r = wait_ready(s, 503, 20)
        check(r.json()["checks"] == {"postgresql": "up", "kafka": "down"},
              "Kafka unreachable: /readyz 503 kafka down, postgresql up", r.body)
        check(s.get("/healthz", auth=False).status == 200, "/healthz is 200 meanwhile")


class Receiver(http.server.BaseHTTPRequestHandler):
    """Fails the first `fail_first` attempts of each delivery (all of them
    for kinds in `always_fail`), records every request."""
    requests = []
    fail_first = 2
    always_fail = set()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        rec = {"t": time.time(), "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body}
        Receiver.requests.append(rec)
        attempt = int(self.headers.get("X-Gangway-Attempt", "0"))
        kind = self.headers.get("X-Gangway-Event", "")
        fail = kind in Receiver.always_fail or attempt <= Receiver.fail_first
        self.send_response(503 if fail else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def verify(rec):
    ts = rec["headers"].get("x-gangway-timestamp", "")
    sig = rec["headers"].get("x-gangway-signature", "")
    want = "v1=" + hmac.new(SECRET.encode(), ts.encode() + b"." + rec["body"], hashlib.sha256).hexdigest()
    return ts.isdigit() and abs(int(ts) - time.time()) < 120 and hmac.compare_digest(sig, want)


def test_webhooks():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp_actions = os.path.join("/tmp", "gw-ops-actions-%d" % os.getpid())
    harness.write_action(tmp_actions, "needs-ok", ["/bin/cat"],
                         approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]})
    s = harness.Stack("opswh", actions_dir=tmp_actions, broker_env={
        "GW_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % srv.server_address[1],
        "GW_WEBHOOK_SECRET": SECRET,
        "GW_WEBHOOK_MAX_ATTEMPTS": "3",
        "GW_WEBHOOK_BACKOFF_MS": "400",
    })
    try:
        with s:
            s.start_broker()
            r = s.submit("needs-ok", {})
            check(r.status == 202 and r.json()["status"] == "pending_approval", "a run waits for approval", r.body)
            run_id = r.json()["id"]

            deadline = time.time() + 30
            while time.time() < deadline and not any(q["headers"].get("x-gangway-attempt") == "3"
                                                     for q in Receiver.requests):
                time.sleep(0.1)
            got = [q for q in Receiver.requests if q["headers"].get("x-gangway-event") == "approval.requested"]
            check([q["headers"].get("x-gangway-attempt") for q in got] == ["1", "2", "3"],
                  "a failing receiver gets the delivery again: attempts 1, 2, 3",
                  [q["headers"] for q in got])
            check(len({q["headers"].get("x-gangway-delivery") for q in got}) == 1,
                  "every attempt carries the same X-Gangway-Delivery id")
            check(all(json.loads(q["body"])["run"]["id"] == run_id for q in got), "the payload names the run")
            check(all(verify(q) for q in got), "each attempt is signed: v1=HMAC-SHA256(secret, ts.body)")
            gaps = [got[i + 1]["t"] - got[i]["t"] for i in range(len(got) - 1)]
            check(gaps[0] >= 0.35 and gaps[1] >= 0.75, "retries back off, doubling from 400 ms", gaps)
            time.sleep(1.5)
            row = s.sql("SELECT attempts, sent_at IS NOT NULL, failed_at IS NULL FROM gw_webhooks"
                        " WHERE kind = 'approval.requested'")
            check(row == "3|t|t", "the row is sent after the third attempt", row)
            check(len([q for q in Receiver.requests if q["headers"].get("x-gangway-event") == "approval.requested"]) == 3,
                  "and nothing is sent again once accepted")

            # A receiver that never accepts: given up after 3 attempts.
            Receiver.always_fail.add("approval.decided")
            approver = s.make_token("sam", teams=["sre"])
            r = s.post("/v1/runs/%s/decisions" % run_id, {"decision": "reject", "comment": "no"}, token=approver)
            check(r.status == 200, "an approver rejects the run", r.status, r.body)
            deadline = time.time() + 30
            row = ""
            while time.time() < deadline:
                row = s.sql("SELECT attempts, failed_at IS NOT NULL, sent_at IS NULL, last_error FROM gw_webhooks"
                            " WHERE kind = 'approval.decided'")
                if row.split("|")[1:2] == ["t"]:
                    break
                time.sleep(0.2)
            check(row == "3|t|t|gave up after 3 attempts; last: HTTP 503",
                  "after GW_WEBHOOK_MAX_ATTEMPTS the delivery is given up with the reason", row)
            time.sleep(2.5)
            decided = [q for q in Receiver.requests if q["headers"].get("x-gangway-event") == "approval.decided"]
            check(len(decided) == 3, "nothing is sent after giving up", len(decided))
            m = s.get("/metrics").body.decode()
            check('gangway_webhooks_total{result="given_up"} 1' in m and
                  'gangway_webhooks_total{result="sent"} 1' in m and
                  'gangway_webhooks_total{result="failed"} 4' in m,
                  "the metrics count sent, failed and given-up deliveries",
                  [l for l in m.splitlines() if "webhooks" in l])
    finally:
        srv.shutdown()
        shutil.rmtree(tmp_actions, ignore_errors=True)


def main():
    test_readiness()
    test_webhooks()


if __name__ == "__main__":
    harness.main(main)
