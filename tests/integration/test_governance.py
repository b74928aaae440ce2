#!/usr/bin/env python3
"""Approvals, quotas, break-glass and secrets through the real broker:
pending_approval until enough distinct eligible approvers say yes (exactly
one transition under racing approvals), self-approval and outsiders refused,
rejection and expiry; quotas counted atomically under concurrency (429 with
Retry-After); break-glass only with the permission and a reason, audited;
canary secrets never in responses, logs, events, Kafka or the audit log."""
import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402

LEAKY = r'''#!/usr/bin/env python3
import base64, hashlib, json, os, sys, urllib.parse
inputs = json.load(sys.stdin)
t = inputs["token"]
print("token is", t, flush=True)
print("basic", base64.b64encode(t.encode()).decode(), flush=True)
print("query ?token=" + urllib.parse.quote(t, safe=""), flush=True)
print("stderr has", t, file=sys.stderr, flush=True)
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"token_sha256": hashlib.sha256(t.encode()).hexdigest(), "echo": "dsn=" + t}, f)
'''


def test():
    s = Stack("governance", broker_args=["--heartbeat", "1"])
    actions = os.path.join(s.tmp, "actions")
    env_schema = {"type": "object", "required": ["environment"],
                  "properties": {"environment": {"enum": ["dev", "prod"]}}}
    write_action(actions, "deploy", ["/bin/cat"], env_schema, timeout_seconds=30,
                 approval={"rules": [{"when": {"environment": ["prod"]}, "approvals": 2,
                                      "from_teams": ["sre"]},
                                     {"approvals": 0}],
                           "expires_after_seconds": 3600},
                 quota={"per_user": {"max_runs": 3, "window_seconds": 600}})
    write_action(actions, "deploy-quick-expiry", ["/bin/cat"], env_schema, timeout_seconds=30,
                 approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}],
                           "expires_after_seconds": 2})
    write_action(actions, "limited", ["/bin/cat"], {"type": "object"}, timeout_seconds=30,
                 quota={"per_user": {"max_runs": 5, "window_seconds": 600}})
    prog = s.write_program("leaky.py", LEAKY)
    write_action(actions, "secret", [prog],
                 {"type": "object", "required": ["token"],
                  "properties": {"token": {"type": "string", "writeOnly": True},
                                 "note": {"type": "string"}}}, timeout_seconds=30)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=4)
        bob, carol, dave, frank, eve = s.make_tokens("bob:payments", "carol:sre", "dave:sre",
                                                     "frank:sre", "eve:marketing")

        # dev needs no approval; prod needs two from sre.
        r = s.submit("deploy", {"environment": "dev"}, token=bob)
        check(r.status == 202 and r.json()["status"] == "queued", "dev is queued at once", r.body)
        r = s.submit("deploy", {"environment": "prod"}, token=bob)
        run = r.json()
        check(r.status == 202 and run["status"] == "pending_approval",
              "prod waits for approval", r.body)
        check(run["approval"]["required"] == 2 and run["approval"]["from_teams"] == ["sre"],
              "the run shows the rule it waits on", run.get("approval"))
        pending = s.sql("SELECT count(*) FROM gw_outbox WHERE msg_key = '%s'" % run["id"])
        check(pending == "0", "a pending run is not sent to workers", pending)
        mine = [x["id"] for x in s.get("/v1/approvals", token=carol).json()["items"]]
        check(run["id"] in mine, "an sre approver sees it in /v1/approvals")
        resp = s.get("/v1/approvals", token=eve)
        check(resp.status == 200, "approvals list for eve", resp.status, resp.body)
        theirs = [x["id"] for x in resp.json()["items"]]
        check(run["id"] not in theirs, "someone outside sre does not")
        path = "/v1/runs/%s/decisions" % run["id"]
        r = s.post(path, {"decision": "approve"}, token=bob)
        check(r.status == 403 and r.json()["code"] == "self_approval", "self-approval is 403", r.body)
        # An outsider (neither reads payments' runs nor is named by the
        # rule) cannot tell the run exists: 404, as for an unknown id.
        r = s.post(path, {"decision": "approve"}, token=eve)
        check(r.status == 404 and r.json()["code"] == "run_not_found", "an outsider gets 404", r.body)
        r = s.post(path, {"decision": "maybe"}, token=carol)
        check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/decision", "a bad decision is 422")
        r = s.post(path, {"decision": "approve", "comment": "lgtm"}, token=carol)
        check(r.status == 200 and r.json()["status"] == "pending_approval", "one approval is recorded, still pending")
        r = s.post(path, {"decision": "approve"}, token=carol)
        check(r.status == 409 and r.json()["code"] == "already_decided", "each approver counts once")

        # Racing second approvals: exactly one transition to queued.
        results = []
        def raw_approve(tok):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            c.request("POST", path, json.dumps({"decision": "approve"}),
                      {"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
            resp = c.getresponse()
            results.append((resp.status, json.loads(resp.read())))
            c.close()
        ts = [threading.Thread(target=raw_approve, args=(t,)) for t in (dave, frank)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        statuses = sorted(x[0] for x in results)
        check(statuses in ([200, 200], [200, 409]), "racing approvals are answered", results)
        moves = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'queued'"
                      " AND from_status = 'pending_approval'" % run["id"])
        check(moves == "1", "pending_approval -> queued happened exactly once", moves)
        done = s.wait_run(run["id"])
        check(done["status"] == "succeeded", "the approved run executes", done)
        starts = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'" % run["id"])
        check(starts == "1", "once", starts)

        # Rejection and expiry.
        r = s.submit("deploy", {"environment": "prod"}, token=bob)
        rid = r.json()["id"]
        r = s.post("/v1/runs/%s/decisions" % rid, {"decision": "reject", "comment": "not today"}, token=carol)
        check(r.status == 200 and r.json()["status"] == "rejected", "a rejection rejects", r.body)
        r = s.submit("deploy-quick-expiry", {"environment": "dev"}, token=bob)
        exp = s.wait_run(r.json()["id"], timeout=20)
        check(exp["status"] == "expired", "an undecided request expires", exp)

        # Quota: the 4th deploy by bob within the window is 429 (3 already: dev, prod, prod).
        r = s.submit("deploy", {"environment": "dev"}, token=bob)
        check(r.status == 429 and r.json()["code"] == "quota_exceeded", "over the per-user quota is 429", r.status, r.body)
        check(int(r.headers.get("retry-after", "0")) > 0, "with Retry-After", r.headers.get("retry-after"))
        denied = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.denied' AND actor = 'user:default/bob'")
        check(denied == "1", "the denial is audited", denied)

        # Quota race: 12 concurrent submissions, limit 5 -> exactly 5 accepted.
        codes = []
        def submit_limited(i):
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            c.request("POST", "/v1/actions/limited/runs", json.dumps({"inputs": {"i": i}}),
                      {"Authorization": "Bearer " + eve, "Content-Type": "application/json"})
            codes.append(c.getresponse().status)
            c.close()
        ts = [threading.Thread(target=submit_limited, args=(i,)) for i in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(codes.count(202) == 5 and codes.count(429) == 7, "a quota holds under concurrency", sorted(codes))

        # Break-glass: needs the permission and a reason.
        bg = {"inputs": {"environment": "prod"}, "break_glass": {"reason": "prod is down, INC-42 hotfix"}}
        r = s.post("/v1/actions/deploy/runs", bg, token=dave)
        check(r.status == 403, "break-glass without the permission is 403", r.body)
        r = s.post("/v1/actions/deploy/runs", {"inputs": {"environment": "prod"}, "break_glass": {"reason": "x"}})
        check(r.status == 422, "break-glass without a real reason is 422", r.body)
        r = s.post("/v1/actions/deploy/runs", bg)
        check(r.status == 202 and r.json()["status"] == "queued", "break-glass skips the approval", r.body)
        flagged = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.break_glass' AND object = 'run:%s'" % r.json()["id"])
        check(flagged == "1", "and is flagged in the audit log", flagged)
        hook = s.sql("SELECT count(*) FROM gw_webhooks WHERE kind = 'run.break_glass'")
        check(hook == "1", "and notified", hook)

        # Server-owned fields cannot be set through the body.
        r = s.post("/v1/actions/deploy/runs", {"inputs": {"environment": "dev"}, "status": "succeeded"}, token=carol)
        check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/status", "status cannot be set", r.body)
        r = s.post("/v1/actions/deploy/runs", {"inputs": {"environment": "dev"}, "requested_by": "mallory"}, token=carol)
        check(r.status == 422, "requester cannot be set", r.body)

        # Canary secrets.
        canary = "canary-" + os.urandom(8).hex()
        r = s.submit("secret", {"token": canary, "note": "hello"})
        check(r.status == 202 and r.json()["inputs"]["token"] == "[redacted]", "the response redacts the secret", r.body)
        done = s.wait_run(r.json()["id"])
        check(done["status"] == "succeeded", "the secret run succeeds", done)
        check(done["outputs"]["token_sha256"] == hashlib.sha256(canary.encode()).hexdigest(),
              "the backend received the real value")
        check(done["outputs"]["echo"] == "dsn=[redacted]", "a secret echoed into outputs is masked",
              done["outputs"])
        forms = [canary, base64.b64encode(canary.encode()).decode(),
                 urllib.parse.quote(canary, safe="")]
        logs = s.get("/v1/runs/%s/logs" % done["id"]).body.decode()
        check(len(json.loads(logs)["items"]) >= 4 and not any(f in logs for f in forms),
              "the logs carry no form of the secret", logs[:300])
        everything = " ".join([
            json.dumps(done), logs,
            s.get("/v1/runs/%s/events" % done["id"]).body.decode(),
            s.sql("SELECT coalesce(string_agg(detail::text, ' '), '') FROM gw_audit_log"),
            s.sql("SELECT coalesce(string_agg(coalesce(line, '') || coalesce(data::text, ''), ' '), '') FROM gw_worker_events"),
            s.sql("SELECT coalesce(string_agg(payload::text || coalesce(lines, ''), ' '), '') FROM gw_outbox"),
        ])
        check(not any(f in everything for f in forms), "nor do responses, events, the audit log or the outbox")
        kafka = ""
        for topic in ("gangway.runs.exec", "gangway.events"):
            kafka += subprocess.run(["kcat", "-C", "-b", s.kafka, "-t", s.prefix + topic, "-e", "-q"],
                                    capture_output=True, text=True, timeout=60).stdout
        check(kafka and not any(f in kafka for f in forms), "nor any Kafka message", len(kafka))
        # At rest: the value is dropped from gw_runs once the run has ended
        # (it created no resource a teardown would need it for).
        row = s.sql("SELECT inputs::text || ' ' || (secrets_dropped_at IS NOT NULL) "
                    "FROM gw_runs WHERE id = '%s'" % done["id"])
        check(canary not in row and row.endswith(" true") and '"[redacted]"' in row,
              "and the database keeps no copy once the run has ended", row)
        # While queued it is held (the worker needs it); a cancel ends that.
        s.stop(s.workers[0])
        r = s.submit("secret", {"token": canary, "note": "held"})
        held = r.json()["id"]
        check(canary in s.sql("SELECT inputs::text FROM gw_runs WHERE id = '%s'" % held),
              "a queued run still holds its secret for the worker")
        check(s.post("/v1/runs/%s/cancel" % held, {}).status in (200, 202), "cancel it")
        row = s.sql("SELECT inputs::text FROM gw_runs WHERE id = '%s'" % held)
        check(canary not in row, "a cancelled run drops its secret", row)


if __name__ == "__main__":
    main(test)
