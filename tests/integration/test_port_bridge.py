#!/usr/bin/env python3
"""`gangway bridge port` against a real Kafka and a faithful stand-in for
Port's API (docs/integrations/port.md).

The stand-in (PortAPI below) serves what the bridge uses of Port's API:
POST /v1/auth/access_token (client id/secret -> accessToken, expiresIn),
POST /v1/actions/runs/{id}/logs ({"message"}), PATCH /v1/actions/runs/{id}
(status SUCCESS/FAILURE, statusLabel, link, summary, externalRunId; a second
final status is refused 422 as Port does), POST
/v1/blueprints/{bp}/entities?upsert=true&run_id=... and DELETE
/v1/blueprints/{bp}/entities/{id}. It checks the bearer token on every call,
the body shapes (unknown fields, wrong types -> 422) and the 1 MiB body limit
(413), and fails on demand (503) to exercise the retries.

Runs: both message shapes (the payload convention and Port's older
envelope), success with log lines, the link and the externalRunId, a
failure, a run waiting for approval (the label says so) then approved, a
created resource upserted as an entity with ?run_id= and deleted when torn
down, a Gangway refusal (422) reported as FAILURE, Port's API failing twice
then recovering, the bridge SIGKILLed mid-run and restarted (one Gangway
run, the final status still reported, no log line posted twice), and bad
messages dead-lettered with their reason (and failed in Port when they have a
run id)."""
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Stack, check, main, write_action, write_lease_action  # noqa: E402

CLIENT_ID, CLIENT_SECRET = "port-client-id", "port-client-secret-" + secrets.token_hex(4)
MAX_BODY = 1 << 20


class PortAPI:
    """The stand-in for api.getport.io."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = set()
        self.token_calls = 0
        self.runs = {}       # run id -> {"logs": [...], "patches": [...], "status": None}
        self.entities = {}   # (blueprint, identifier) -> {"body", "run_id"}
        self.deleted = []
        self.fail = {}       # (method, path prefix) -> failures still to answer
        self.errors = []     # requests the stand-in refused (shape, auth, size)
        self.calls = []
        api = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                code, obj = api.handle(self.command, self.path, self.headers, raw)
                self._send(code, obj)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()

    def fail_next(self, method, prefix, n):
        with self.lock:
            self.fail[(method, prefix)] = n

    def refuse(self, code, error, message, req):
        self.errors.append((code, error, req))
        return code, {"ok": False, "error": error, "message": message}

    def handle(self, method, path, headers, raw):
        with self.lock:
            u = urlparse(path)
            self.calls.append((method, u.path))
            for (m, prefix), left in list(self.fail.items()):
                if m == method and u.path.startswith(prefix) and left > 0:
                    self.fail[(m, prefix)] = left - 1
                    return 503, {"ok": False, "error": "service_unavailable"}
            if len(raw) > MAX_BODY:
                return self.refuse(413, "payload_too_large", "Request body is too large (limit is 1MiB)", path)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return self.refuse(400, "invalid_json", "body is not JSON", path)
            if method == "POST" and u.path == "/v1/auth/access_token":
                self.token_calls += 1
                if body != {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}:
                    return self.refuse(401, "invalid_credentials", "bad client id/secret", path)
                tok = "port-token-" + secrets.token_hex(8)
                self.tokens.add(tok)
                return 200, {"ok": True, "accessToken": tok, "expiresIn": 10800, "tokenType": "Bearer"}
            auth = headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
                return self.refuse(401, "unauthorized", "missing or unknown bearer token", path)
            if method in ("POST", "PATCH") and headers.get("Content-Type", "").split(";")[0] != "application/json":
                return self.refuse(415, "unsupported_media_type", "JSON only", path)
            parts = u.path.strip("/").split("/")
            q = parse_qs(u.query)
            # /v1/actions/runs/{id}[/logs]
            if parts[:3] == ["v1", "actions", "runs"] and len(parts) in (4, 5):
                run = self.runs.setdefault(parts[3], {"logs": [], "patches": [], "status": None})
                if len(parts) == 5 and parts[4] == "logs" and method == "POST":
                    ok_keys = {"message", "terminationStatus", "statusLabel"}
                    if not isinstance(body, dict) or not isinstance(body.get("message"), str) \
                            or set(body) - ok_keys:
                        return self.refuse(422, "invalid_request", "logs body", body)
                    run["logs"].append(body["message"])
                    return 201, {"ok": True}
                if len(parts) == 4 and method == "PATCH":
                    ok_keys = {"status", "statusLabel", "link", "summary", "externalRunId"}
                    if not isinstance(body, dict) or set(body) - ok_keys or not body:
                        return self.refuse(422, "invalid_request", "patch body", body)
                    if "status" in body and body["status"] not in ("SUCCESS", "FAILURE"):
                        return self.refuse(422, "invalid_request", "status", body)
                    link = body.get("link")
                    if link is not None and not (isinstance(link, str) or (
                            isinstance(link, list) and all(isinstance(x, str) for x in link))):
                        return self.refuse(422, "invalid_request", "link", body)
                    for k in ("statusLabel", "summary", "externalRunId"):
                        if k in body and not isinstance(body[k], str):
                            return self.refuse(422, "invalid_request", k, body)
                    if "status" in body and run["status"] is not None:
                        return 422, {"ok": False, "error": "run_already_finished",
                                     "message": "the run already has a final status"}
                    run["patches"].append(body)
                    if "status" in body:
                        run["status"] = body["status"]
                    return 200, {"ok": True, "run": {"id": parts[3]}}
            # /v1/blueprints/{bp}/entities[/{id}]
            if parts[:2] == ["v1", "blueprints"] and len(parts) >= 4 and parts[3] == "entities":
                bp = parts[2]
                if len(parts) == 4 and method == "POST":
                    if q.get("upsert") != ["true"] or not isinstance(body, dict) \
                            or not isinstance(body.get("identifier"), str) \
                            or not isinstance(body.get("properties", {}), dict):
                        return self.refuse(422, "invalid_request", "entity body", body)
                    self.entities[(bp, body["identifier"])] = {"body": body,
                                                               "run_id": q.get("run_id", [None])[0]}
                    return 201, {"ok": True, "entity": body}
                if len(parts) == 5 and method == "DELETE":
                    if (bp, parts[4]) not in self.entities:
                        return 404, {"ok": False, "error": "not_found"}
                    del self.entities[(bp, parts[4])]
                    self.deleted.append(parts[4])
                    return 200, {"ok": True}
            return self.refuse(404, "not_found", "no such route", (method, path))

    def run(self, run_id):
        with self.lock:
            r = self.runs.get(run_id)
            return json.loads(json.dumps(r)) if r else None


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


class Bridge:
    def __init__(self, s, port, org, mapping, token, state):
        self.s, self.port, self.org, self.mapping, self.token, self.state = s, port, org, mapping, token, state
        self.proc = None
        self.n = 0

    def start(self):
        self.n += 1
        log = open(os.path.join(self.s.tmp, "bridge.log"), "a")
        env = self.s.env({"PORT_CLIENT_ID": CLIENT_ID, "PORT_CLIENT_SECRET": CLIENT_SECRET,
                          "GANGWAY_TOKEN": self.token})
        self.proc = subprocess.Popen(
            [GANGWAY, "bridge", "port", "--org-id", self.org, "--port-kafka", self.s.kafka,
             "--kafka", self.s.kafka, "--port-url", self.port.url, "--gangway-url", self.s.url,
             "--public-url", "https://gangway.example.com", "--mapping", self.mapping,
             "--blueprint", "gangwayResource", "--state-dir", self.state, "--poll-ms", "200",
             "--backoff-ms", "100"],
            env=env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


def produce(s, topic, key, value):
    data = value if isinstance(value, (bytes, str)) else json.dumps(value)
    if isinstance(data, str):
        data = data.encode()
    p = subprocess.run(["kcat", "-P", "-b", s.kafka, "-t", topic, "-k", key],
                       input=data, capture_output=True, timeout=60)
    check(p.returncode == 0, "produced to " + topic, p.stderr)


def read_topic(s, topic):
    p = subprocess.run(["kcat", "-C", "-b", s.kafka, "-t", topic, "-o", "beginning", "-e", "-q",
                        "-f", "%s\n"], capture_output=True, text=True, timeout=60)
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()] if p.returncode == 0 else []


def current(run_id, action, inputs, user="mia@example.com", port_action=None):
    m = {"run_id": run_id, "user": user, "inputs": inputs}
    if action:
        m["gangway_action"] = action
    if port_action:
        m["port_action"] = port_action
    return m


def legacy(run_id, port_action, props, email="mia@example.com"):
    return {"action": port_action, "resourceType": "run", "status": "TRIGGERED",
            "trigger": {"by": {"orgId": "org_x", "userId": "auth0|1", "user": {"email": email}},
                        "origin": "UI", "at": "2026-12-06T08:00:00.000Z"},
            "context": {"entity": None, "blueprint": "service", "runId": run_id},
            "payload": {"entity": None, "action": {"identifier": port_action, "trigger": "CREATE"},
                        "properties": props}}


def final(port, run_id, timeout=30):
    return wait_for("Port run %s final" % run_id,
                    lambda: (port.run(run_id) or {}).get("status") and port.run(run_id), timeout)


def test():
    s = Stack("portbridge")
    port = PortAPI()
    bridge = None
    try:
        with s:
          try:
            actions = os.path.join(s.tmp, "actions")
            greet = s.write_program("greet.sh", "#!/bin/sh\nread x\necho \"hello from gangway\"\n"
                                    "echo \"line two\"\necho \"to stderr\" >&2\n")
            write_action(actions, "greet", [greet], {"type": "object", "required": ["name"],
                                                     "properties": {"name": {"type": "string"}}},
                         timeout_seconds=30)
            fails = s.write_program("fails.sh", "#!/bin/sh\necho \"about to fail\"\nexit 3\n")
            chatty = s.write_program("chatty.sh", "#!/bin/sh\nfor i in $(seq 1 100); do "
                                     "printf 'line %03d %s\\n' $i $(head -c 15000 /dev/zero | tr '\\0' x); done\n")
            write_action(actions, "chatty", [chatty], {"type": "object"}, timeout_seconds=60)
            write_action(actions, "fails", [fails], {"type": "object"}, timeout_seconds=30)
            slow = s.write_program("slow.sh", "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8; do echo \"tick $i\"; "
                                   "sleep 0.5; done\n")
            write_action(actions, "slow", [slow], {"type": "object"}, timeout_seconds=60)
            write_action(actions, "guarded", ["/bin/cat"], {"type": "object"}, timeout_seconds=30,
                         approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]})
            write_lease_action(actions, "devenv", "devenv", {"default_seconds": 3600, "max_seconds": 7200})
            s.actions_dir = actions
            s.start_broker()
            s.start_worker()
            token = s.make_token("service:default/port-bridge", roles=["act_on_behalf"])
            (carol,) = s.make_tokens("carol:sre")
            org = "org_" + secrets.token_hex(5)
            topic = org + ".runs"
            produce(s, topic, "init", "not json at all")  # creates the topic; dead-lettered
            mapping = os.path.join(s.tmp, "mapping.json")
            with open(mapping, "w") as f:
                json.dump({"actions": {"create_dev_env": "devenv", "say_hello": "greet"},
                           "identities": {"table": {"Ops@Corp.Test": "user:default/operator"},
                                          "domains": {"example.com": "user:default/{local}"},
                                          "teams": {"Mia": ["payments"]}}}, f)
            state = os.path.join(s.tmp, "state")
            os.makedirs(state)
            bridge = Bridge(s, port, org, mapping, token, state)
            bridge.start()
            dlq = s.prefix + "gangway.port.deadletter"

            # 1. The payload convention, success, logs, link, externalRunId.
            produce(s, topic, "r_1", current("r_1", "greet", {"name": "mia"}))
            r1 = final(port, "r_1")
            check(r1["status"] == "SUCCESS", "convention: SUCCESS reported", r1)
            ext = [p["externalRunId"] for p in r1["patches"] if "externalRunId" in p]
            check(ext and len(set(ext)) == 1, "externalRunId is the Gangway run", r1["patches"])
            gw_run = s.get("/v1/runs/" + ext[0]).json()
            check(gw_run["requested_by"] == {"subject": "user:default/mia", "teams": ["payments"]},
                  "submitted as the Port user, mapped by domain", gw_run["requested_by"])
            check(gw_run["idempotency_key"] == "port:r_1",
                  "the Port run id is the idempotency key", gw_run.get("idempotency_key"))
            links = [p["link"] for p in r1["patches"] if "link" in p]
            check(links and links[-1] == ["https://gangway.example.com/ui/runs/" + ext[0]],
                  "the link is the run in the console", links)
            text = "\n".join(r1["logs"])
            check("hello from gangway" in text and "line two" in text and "to stderr" in text,
                  "log lines reached Port", r1["logs"])
            audit = s.get("/v1/audit?limit=200").json()["items"]
            sub = [e for e in audit if e["verb"] == "run.submit" and e["object"] == "run:" + ext[0]]
            check(sub and sub[0]["actor"] == "user:default/mia" and sub[0]["detail"]["via"] == "service:default/port-bridge",
                  "audited as the person, via the bridge", sub)

            # 1b. Much output: 1.5 MiB of log lines reach Port in messages under its 1 MiB limit.
            produce(s, topic, "r_big", current("r_big", "chatty", {}))
            rb = final(port, "r_big")
            lines = [l for m in rb["logs"] for l in m.split("\n") if l.startswith("line ")]
            check(rb["status"] == "SUCCESS" and len(lines) == 100 and len(set(lines)) == 100,
                  "all 100 long lines, once each", len(lines))
            check(len(rb["logs"]) >= 6 and max(len(m) for m in rb["logs"]) <= 256 * 1024,
                  "posted in several messages, each well under 1 MiB",
                  len(rb["logs"]), max(len(m) for m in rb["logs"]))

            # 2. The older envelope, mapped action, table identity (case-insensitive).
            produce(s, topic, "r_2", legacy("r_2", "say_hello", {"name": "ops"}, email="ops@corp.test"))
            r2 = final(port, "r_2")
            check(r2["status"] == "SUCCESS", "envelope: SUCCESS", r2)
            run2 = s.get("/v1/runs/" + [p for p in r2["patches"] if "externalRunId" in p][0]["externalRunId"]).json()
            check(run2["action"]["id"] == "greet" and run2["requested_by"]["subject"] == "user:default/operator",
                  "Port action say_hello -> greet, ops@corp.test -> operator", run2["action"], run2["requested_by"])

            # 3. Failure.
            produce(s, topic, "r_3", current("r_3", "fails", {}))
            r3 = final(port, "r_3")
            check(r3["status"] == "FAILURE" and "about to fail" in "\n".join(r3["logs"]),
                  "failure reported with its logs", r3)
            check("failed" in r3["patches"][-1].get("summary", ""), "the summary says failed", r3["patches"][-1])

            # 4. Gangway refuses the inputs: FAILURE with the field.
            produce(s, topic, "r_4", current("r_4", "greet", {"name": 5}))
            r4 = final(port, "r_4")
            check(r4["status"] == "FAILURE" and "/inputs/name" in r4["patches"][-1]["summary"],
                  "a refusal names the field", r4["patches"][-1])

            # 5. Approval wait, then approval.
            produce(s, topic, "r_5", current("r_5", "guarded", {}))
            wait_for("the approval label", lambda: any(
                "Waiting for approval" in p.get("statusLabel", "") and "team sre" in p.get("statusLabel", "")
                for p in (port.run("r_5") or {"patches": []})["patches"]))
            run5 = [p for p in port.run("r_5")["patches"] if "externalRunId" in p][0]["externalRunId"]
            check(port.run("r_5")["status"] is None, "no final status while it waits")
            d = s.post("/v1/runs/%s/decisions" % run5, {"decision": "approve"}, token=carol)
            check(d.status in (200, 202), "carol approves", d.status, d.body)
            r5 = final(port, "r_5")
            check(r5["status"] == "SUCCESS", "approved run: SUCCESS", r5)

            # 6. A resource: entity upserted with ?run_id=, deleted on teardown.
            produce(s, topic, "r_6", current("r_6", None, {"name": "alpha"}, port_action="create_dev_env"))
            r6 = final(port, "r_6")
            check(r6["status"] == "SUCCESS", "devenv: SUCCESS", r6)
            ents = [(k, v) for k, v in port.entities.items() if v["run_id"] == "r_6"]
            check(len(ents) == 1 and ents[0][0][0] == "gangwayResource"
                  and ents[0][1]["body"]["title"] == "alpha"
                  and ents[0][1]["body"]["properties"]["kind"] == "devenv",
                  "the resource is an entity tied to the run", ents)
            rid = ents[0][0][1]
            dr = s.request("DELETE", "/v1/resources/" + rid)
            check(dr.status == 202, "the resource is deleted in Gangway", dr.status, dr.body)
            wait_for("the entity deleted", lambda: rid in port.deleted)

            # 7. Port failing twice, then recovering.
            port.fail_next("PATCH", "/v1/actions/runs/r_7", 2)
            port.fail_next("POST", "/v1/actions/runs/r_7/logs", 2)
            produce(s, topic, "r_7", current("r_7", "greet", {"name": "retry"}))
            r7 = final(port, "r_7")
            check(r7["status"] == "SUCCESS" and "hello from gangway" in "\n".join(r7["logs"]),
                  "retried through two 503s", r7)
            with port.lock:
                patches7 = sum(1 for c in port.calls if c == ("PATCH", "/v1/actions/runs/r_7"))
            check(patches7 >= 4, "the failed PATCHes were sent again", patches7)

            # 8. Bad messages: dead-lettered with the reason; failed in Port when they have a run id.
            produce(s, topic, "bad1", {"hello": "world"})
            produce(s, topic, "r_9", current("r_9", "greet", {"name": "x"}, user="stranger@elsewhere.org"))
            produce(s, topic, "r_10", current("r_10", None, {}, port_action=""))
            r9 = final(port, "r_9")
            check(r9["status"] == "FAILURE" and "stranger@elsewhere.org" in r9["patches"][-1]["summary"],
                  "an unknown user fails the Port run, saying who", r9)
            dead = wait_for("3 dead letters", lambda: (lambda m: m if len(m) >= 4 else None)(read_topic(s, dlq)))
            codes = sorted(m["code"] for m in dead)
            check(codes == sorted(["not_json", "unknown_shape", "unknown_user", "unknown_action"]),
                  "each bad message dead-lettered with its code", codes)
            u = [m for m in dead if m["code"] == "unknown_user"][0]
            check(u["run_id"] == "r_9" and "stranger@elsewhere.org" in u["reason"]
                  and json.loads(u["message"])["run_id"] == "r_9" and u["topic"] == topic,
                  "a dead letter carries the message, where it came from and why", u)

            # 9. SIGKILL mid-run, restart: one Gangway run, final status reported, no duplicate lines.
            produce(s, topic, "r_11", current("r_11", "slow", {}))
            wait_for("r_11 running with logs", lambda: any("tick 2" in l for l in (port.run("r_11") or {"logs": []})["logs"]))
            bridge.stop(signal.SIGKILL)
            bridge.start()
            r11 = final(port, "r_11", timeout=90)
            check(r11["status"] == "SUCCESS", "final status reported after the restart", r11)
            ids = {p["externalRunId"] for p in r11["patches"] if "externalRunId" in p}
            check(len(ids) == 1, "one Gangway run across the restart", ids)
            n_runs = s.sql("SELECT count(*) FROM gw_runs WHERE idempotency_key = 'port:r_11'")
            check(n_runs == "1", "submitted once", n_runs)
            ticks = [l for m in r11["logs"] for l in m.split("\n") if l.startswith("tick")]
            check(sorted(ticks) == ["tick %d" % i for i in range(1, 9)],
                  "every log line once, none twice", ticks)

            # Nothing the stand-in refused for shape, auth or size.
            bad = [e for e in port.errors if e[0] in (400, 401, 413, 415) or
                   (e[0] == 422 and e[1] == "invalid_request") or (e[0] == 404 and e[1] == "not_found")]
            check(not bad, "every Port call was well-formed and authenticated", bad)
            check(port.token_calls >= 2, "a token per bridge process", port.token_calls)
            bridge.stop()
            check(bridge.proc.returncode == 0, "the bridge stops cleanly on SIGTERM", bridge.proc.returncode)
          except BaseException:
            print("---- bridge log ----\n" + s.log("bridge"))
            print("---- Port calls ----\n", port.calls[-40:], port.errors[-10:])
            raise
    finally:
        if bridge is not None:
            bridge.stop(signal.SIGKILL)
        port.close()


if __name__ == "__main__":
    main(test)
