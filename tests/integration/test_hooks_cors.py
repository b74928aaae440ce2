#!/usr/bin/env python3
"""Browser portals and incoming webhooks (docs/integrations/webhooks-in.md).

CORS: an allowed origin gets Access-Control-Allow-Origin (echoed, never with
credentials) and Vary: Origin on answers, problems and SSE streams; a
disallowed origin gets no CORS header; a preflight is answered 204 with the
path's methods and the allowed request headers, refused 403 for another
origin or a method the path does not have.

Hooks: a good signature creates a run as the hook's identity with the inputs
picked by JSON pointers (and the Idempotency-Key from the body); a bad
signature 401; a stale timestamp 401; the same delivery again 409 (remembered
in PostgreSQL); an unknown hook 404; a body missing a mapped field 422 naming
the pointer; the hook's identity is still bound by the policy's validation."""
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402

SECRET = "hook-secret-0123456789abcdef"
ORIGIN = "https://portal.example.com"


def sign(body, ts=None, secret=SECRET, delivery=None):
    ts = str(int(time.time()) if ts is None else ts)
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    h = {"X-Gangway-Timestamp": ts, "X-Gangway-Signature": "v1=" + sig,
         "Content-Type": "application/json"}
    if delivery is not None:
        h["X-Gangway-Delivery"] = delivery
    return h


def cors_checks(s):
    # An allowed origin, on a JSON answer and on a problem.
    r = s.get("/v1/actions", headers={"Origin": ORIGIN})
    check(r.status == 200 and r.headers.get("access-control-allow-origin") == ORIGIN,
          "an allowed origin is echoed", r.status, r.headers)
    check("origin" in r.headers.get("vary", "").lower(), "Vary: Origin", r.headers)
    check("access-control-allow-credentials" not in r.headers, "credentials are never allowed",
          r.headers)
    r = s.get("/v1/runs/nope", headers={"Origin": ORIGIN})
    check(r.status == 404 and r.headers.get("access-control-allow-origin") == ORIGIN,
          "problems carry the CORS headers too", r.status, r.headers)
    r = s.get("/v1/actions", headers={"Origin": ORIGIN}, auth=False)
    check(r.status == 401 and r.headers.get("access-control-allow-origin") == ORIGIN,
          "so does a 401 (the page can read why)", r.status, r.headers)
    # A disallowed origin: no CORS header at all.
    r = s.get("/v1/actions", headers={"Origin": "https://evil.example.com"})
    check(r.status == 200 and not any(k.startswith("access-control-") for k in r.headers),
          "a disallowed origin gets no CORS headers", r.headers)
    # Preflight.
    pre = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"}
    r = s.request("OPTIONS", "/v1/actions/hello/runs", headers=pre, auth=False)
    check(r.status == 204, "a preflight is answered 204", r.status, r.body)
    check(r.headers.get("access-control-allow-origin") == ORIGIN, "with the origin", r.headers)
    check("POST" in r.headers.get("access-control-allow-methods", ""), "and the path's methods",
          r.headers)
    allow_h = r.headers.get("access-control-allow-headers", "").lower()
    for h in ("authorization", "content-type", "idempotency-key", "last-event-id"):
        check(h in allow_h, "the preflight allows the request header " + h, allow_h)
    r = s.request("OPTIONS", "/v1/actions/hello/runs", auth=False,
                  headers=dict(pre, Origin="https://evil.example.com"))
    check(r.status == 403 and not any(k.startswith("access-control-") for k in r.headers)
          and r.json()["code"] == "cors_not_allowed",
          "a preflight from another origin: 403, no CORS headers", r.status, r.headers)
    r = s.request("OPTIONS", "/v1/runs/x/logs", auth=False,
                  headers=dict(pre, **{"Access-Control-Request-Method": "DELETE"}))
    check(r.status == 403, "a preflight for a method the path lacks is refused", r.status)
    # An SSE stream answers with the CORS headers.
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    c.request("GET", "/v1/events", headers={"Authorization": "Bearer " + s.token,
                                             "Origin": ORIGIN, "Accept": "text/event-stream"})
    resp = c.getresponse()
    check(resp.status == 200 and resp.getheader("access-control-allow-origin") == ORIGIN
          and "text/event-stream" in resp.getheader("content-type", ""),
          "the SSE feed carries the CORS headers", resp.status, resp.getheaders())
    c.close()


def hook_checks(s):
    body = json.dumps({"delivery": {"id": "d-1"}, "payload": {
        "properties": {"name": "from-hook", "team": "payments"}}}).encode()
    # Good signature: a run as the hook's identity with the mapped inputs.
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False,
                  headers=sign(body, delivery="d-1"))
    check(r.status == 202, "a signed delivery creates a run", r.status, r.body)
    run = r.json()
    check(run["requested_by"] == {"subject": "service:default/ci-bot", "teams": ["payments"]},
          "the run is the hook's identity", run)
    check(run["inputs"] == {"name": "from-hook"}, "inputs picked by JSON pointers", run)
    check(r.headers.get("location") == "/v1/runs/" + run["id"], "Location of the run", r.headers)
    done = s.wait_run(run["id"])
    check(done["status"] == "succeeded", "the hook's run succeeds", done)
    # The same delivery again: 409, nothing submitted.
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False,
                  headers=sign(body, delivery="d-1"))
    check(r.status == 409 and r.json()["code"] == "delivery_replayed", "a replay is refused",
          r.status, r.body)
    check(s.sql("SELECT count(*) FROM gw_hook_deliveries WHERE hook = 'ci-greet'") == "1",
          "the delivery is remembered in PostgreSQL")
    # Without a delivery header the signature identifies the delivery.
    body2 = json.dumps({"delivery": {"id": "d-2"}, "payload": {"properties": {"name": "two"}}}).encode()
    h2 = sign(body2)
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body2, auth=False, headers=h2)
    check(r.status == 202, "a delivery without X-Gangway-Delivery", r.status, r.body)
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body2, auth=False, headers=h2)
    check(r.status == 409, "replayed as captured: 409", r.status, r.body)
    # Bad signature, wrong secret, missing headers, stale and future timestamps.
    bad = sign(body, delivery="d-3")
    bad["X-Gangway-Signature"] = "v1=" + "0" * 64
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False, headers=bad)
    check(r.status == 401 and r.json()["code"] == "signature_invalid", "a bad signature: 401",
          r.status, r.body)
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False,
                  headers=sign(body, delivery="d-3", secret="another-secret-0123456789"))
    check(r.status == 401, "another hook's secret: 401", r.status)
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False,
                  headers=sign(body + b" ", delivery="d-3"))
    check(r.status == 401, "a body changed after signing: 401", r.status)
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False,
                  headers={"Content-Type": "application/json"})
    check(r.status == 401 and r.json()["code"] == "signature_missing", "unsigned: 401", r.status,
          r.body)
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False,
                  headers=sign(body, ts=int(time.time()) - 600, delivery="d-4"))
    check(r.status == 401 and r.json()["code"] == "signature_expired", "a stale timestamp: 401",
          r.status, r.body)
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body, auth=False,
                  headers=sign(body, ts=int(time.time()) + 600, delivery="d-5"))
    check(r.status == 401, "a timestamp from the future: 401", r.status)
    # Unknown hook.
    r = s.request("POST", "/v1/hooks/nope", raw=body, auth=False, headers=sign(body))
    check(r.status == 404 and r.json()["code"] == "hook_not_found", "unknown hook: 404", r.status)
    # A body without a mapped field: 422 naming the pointer.
    body3 = json.dumps({"delivery": {"id": "d-6"}, "payload": {"properties": {}}}).encode()
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body3, auth=False,
                  headers=sign(body3, delivery="d-6"))
    check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/payload/properties/name",
          "a missing mapped field: 422 at its pointer", r.status, r.body)
    # Not JSON (signed all the same).
    r = s.request("POST", "/v1/hooks/ci-greet", raw=b"{", auth=False, headers=sign(b"{"))
    check(r.status == 400 and r.json()["code"] == "invalid_json", "signed garbage: 400", r.status)
    # Inputs the action's schema refuses: the submit pipeline's 422.
    body4 = json.dumps({"delivery": {"id": "d-7"}, "payload": {"properties": {"name": 7}}}).encode()
    r = s.request("POST", "/v1/hooks/ci-greet", raw=body4, auth=False,
                  headers=sign(body4, delivery="d-7"))
    check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/inputs/name",
          "inputs against the action's schema", r.status, r.body)
    # The Idempotency-Key from the body: a new delivery of the same event
    # (another delivery id, same event id) replays the run.
    body5 = json.dumps({"delivery": {"id": "evt-9"}, "payload": {"properties": {"name": "x"}}}).encode()
    r1 = s.request("POST", "/v1/hooks/ci-greet", raw=body5, auth=False,
                   headers=sign(body5, delivery="a-1"))
    r2 = s.request("POST", "/v1/hooks/ci-greet", raw=body5, auth=False,
                   headers=sign(body5, delivery="a-2"))
    check(r1.status == 202 and r2.status == 202 and r1.json()["id"] == r2.json()["id"],
          "two deliveries of one event id: one run", r1.body, r2.body)
    # The whole-object mapping, on a hook whose identity may not run it.
    body6 = json.dumps({"name": "sneaky"}).encode()
    r = s.request("POST", "/v1/hooks/whole", raw=body6, auth=False, headers=sign(body6))
    check(r.status == 202 and r.json()["inputs"] == {"name": "sneaky"},
          "a hook mapping the whole body", r.status, r.body)
    # The audit names the hook's identity.
    audit = s.get("/v1/audit?limit=100").json()["items"]
    sub = [e for e in audit if e["verb"] == "run.submit" and e["object"] == "run:" + run["id"]]
    check(len(sub) == 1 and sub[0]["actor"] == "service:default/ci-bot"
          and sub[0]["detail"].get("via") == "hook:ci-greet",
          "the audit trail records the hook's identity and the hook", sub)


def obo_checks(s):
    """Gangway-On-Behalf-Of: a service token with the role act_on_behalf
    submits as the person; every other token is refused."""
    svc = s.make_token("service:default/port-bridge", roles=["act_on_behalf"])
    both = s.make_token("service:default/ops-bridge", roles=["act_on_behalf", "admin"])
    obo = {"Gangway-On-Behalf-Of": "Mia", "Gangway-On-Behalf-Of-Teams": "Payments, group:default/sre"}
    r = s.submit("hello", {"x": 1}, token=svc, headers=obo)
    check(r.status == 202, "a service token with act_on_behalf submits for someone", r.status, r.body)
    run = r.json()
    check(run["requested_by"] == {"subject": "user:default/mia", "teams": ["payments", "sre"]},
          "the run is the person's, subject and teams canonical", run["requested_by"])
    audit = s.get("/v1/audit?limit=200").json()["items"]
    sub = [e for e in audit if e["verb"] == "run.submit" and e["object"] == "run:" + run["id"]]
    check(len(sub) == 1 and sub[0]["actor"] == "user:default/mia"
          and sub[0]["detail"].get("via") == "service:default/port-bridge",
          "audited with both identities", sub)
    me = s.get("/v1/me", token=svc, headers=obo)
    check(me.status == 200 and me.json()["subject"] == "user:default/mia", "GET /v1/me says whom",
          me.body)
    r = s.submit("hello", {}, headers=obo)
    check(r.status == 403 and r.json()["code"] == "on_behalf_not_allowed",
          "an admin token without act_on_behalf may not", r.status, r.body)
    r = s.submit("hello", {}, token=svc, headers={"Gangway-On-Behalf-Of": "mia smith"})
    check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/headers/gangway-on-behalf-of",
          "a malformed subject: 400 naming the header", r.status, r.body)
    r = s.submit("hello", {}, token=svc, headers={"Gangway-On-Behalf-Of": "group:default/sre"})
    check(r.status == 400, "a group is not a subject", r.status, r.body)
    r = s.get("/v1/audit", token=both, headers=obo)
    check(r.status == 403, "acting for someone drops the token's own admin role", r.status)
    r = s.get("/v1/audit?limit=1", token=both)
    check(r.status == 200, "... which it keeps when acting as itself", r.status)
    r = s.submit("hello", {}, token=svc)
    check(r.status == 202 and r.json()["requested_by"]["subject"] == "service:default/port-bridge",
          "without the header the token is itself", r.body)


def test():
    s = Stack("hooks")
    with s:
        actions = os.path.join(s.tmp, "actions")
        write_action(actions, "greet", ["/bin/cat"],
                     {"type": "object", "required": ["name"], "additionalProperties": False,
                      "properties": {"name": {"type": "string"}}}, timeout_seconds=30)
        write_action(actions, "hello", ["/bin/cat"], {"type": "object"}, timeout_seconds=30)
        s.actions_dir = actions
        hooks = os.path.join(s.tmp, "hooks.json")
        with open(hooks, "w") as f:
            json.dump({"hooks": {
                "ci-greet": {"secret_env": "HOOK_SECRET_CI", "action": "greet",
                             "subject": "service:ci-bot", "teams": ["Payments"],
                             "inputs": {"name": "/payload/properties/name"},
                             "idempotency_key": "/delivery/id"},
                "whole": {"secret_env": "HOOK_SECRET_CI", "action": "greet", "subject": "service:ci-bot",
                          "inputs": ""},
            }}, f)
        s.broker_args = ["--cors-origins", ORIGIN + ",https://backstage.example.com",
                         "--hooks-config", hooks]
        s.start_broker(extra_env={"HOOK_SECRET_CI": SECRET})
        s.start_worker()
        cors_checks(s)
        hook_checks(s)
        obo_checks(s)
        # A hooks file naming an unset secret variable stops the broker at start.
        s.stop(s.broker)
        try:
            s.start_broker(extra_env={})
        except AssertionError as e:
            check("HOOK_SECRET_CI" in str(e), "an unset secret variable is named at start", str(e)[-400:])
        else:
            raise AssertionError("the broker started without the hook's secret")
        s.broker = None
        # Configuration mistakes stop the broker at start, named.
        import subprocess
        from harness import GANGWAY
        bad_hooks = os.path.join(s.tmp, "bad-hooks.json")
        with open(bad_hooks, "w") as f:
            json.dump({"hooks": {"x": {"secret_env": "HOOK_SECRET_CI", "action": "greet",
                                       "subject": "ci-bot", "inputs": {"name": "no-slash"}}}}, f)
        for args, want in ((["--cors-origins", "https://portal.example.com/path"], "is not an origin"),
                           (["--hooks-config", bad_hooks], "inputs/name must be a JSON pointer")):
            p = subprocess.run([GANGWAY, "broker", "--listen", "127.0.0.1:0", "--no-migrate"] + args,
                               env=s.env({"HOOK_SECRET_CI": SECRET}), capture_output=True, text=True,
                               timeout=120)
            check(p.returncode != 0 and want in p.stderr, "refused at start: " + want,
                  p.returncode, p.stderr[-300:])


if __name__ == "__main__":
    main(test)
