#!/usr/bin/env python3
"""Extensions that need approval: an action whose ttl names
extension_approval turns an extension into a request (202) that approvers
from the named team decide; the requester cannot approve it; one request at a
time; an approval applies the extension within bounds; an approval that
arrives after the resource expired does not revive it."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_lease_action  # noqa: E402


def test():
    s = Stack("extappr", broker_args=["--heartbeat", "1"])
    actions = os.path.join(s.tmp, "actions")
    write_lease_action(actions, "env", "env",
                       {"default_seconds": 600, "max_seconds": 3600, "max_extension_seconds": 3600,
                        "extension_approval": {"approvals": 1, "from_teams": ["sre"]}})
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=2)
        bob, carol, eve, dan = s.make_tokens("bob:payments", "carol:sre", "eve:marketing",
                                             "dan:payments")

        def create(name, **extra):
            body = {"inputs": {"name": name}}
            body.update(extra)
            run = s.wait_run(s.post("/v1/actions/env/runs", body, token=bob).json()["id"])
            check(run["status"] == "succeeded", "create %s" % name, run)
            return s.sql("SELECT resource_id FROM gw_runs WHERE id = '%s'" % run["id"])

        rid = create("one")
        before = s.get("/v1/resources/" + rid, token=bob).json()["expires_at"]
        r = s.post("/v1/resources/%s/extend" % rid, {"seconds": 600}, token=bob)
        check(r.status == 202 and r.json()["pending_extension"]["seconds"] == 600,
              "an extension of this action waits for approval", r.status, r.body)
        check(r.json()["expires_at"] == before, "and changes nothing yet")
        r = s.post("/v1/resources/%s/extend" % rid, {"seconds": 60}, token=bob)
        check(r.status == 409 and r.json()["code"] == "extension_pending", "one request at a time", r.body)
        path = "/v1/resources/%s/extension/decisions" % rid
        r = s.post(path, {"decision": "approve"}, token=bob)
        check(r.status == 403 and r.json()["code"] == "self_approval", "the requester cannot approve", r.body)
        # An outsider (another team, not an approver) cannot even tell the
        # resource exists: the same 404 as an unknown id.
        r = s.post(path, {"decision": "approve"}, token=eve)
        unknown = "00000000-0000-4000-8000-000000000000"
        u = s.post("/v1/resources/%s/extension/decisions" % unknown, {"decision": "approve"}, token=eve)
        check(r.status == 404 and r.json()["code"] == "resource_not_found"
              and r.body.replace(rid.encode(), unknown.encode()) == u.body,
              "an outsider gets the 404 of an unknown id", r.status, r.body, u.body)
        # A teammate sees the resource but is not in the approvers' team.
        r = s.post(path, {"decision": "approve"}, token=dan)
        check(r.status == 403 and r.json()["code"] == "not_an_approver", "a teammate cannot approve",
              r.status, r.body)
        r = s.post(path, {"decision": "approve", "comment": "ok"}, token=carol)
        check(r.status == 200 and r.json()["expires_at"] > before and "pending_extension" not in r.json(),
              "an sre approval applies the extension", r.body)
        check(s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'resource.extend' AND object = 'resource:%s'" % rid) == "1",
              "and the extension is audited")
        r = s.post(path, {"decision": "approve"}, token=carol)
        check(r.status == 409 and r.json()["code"] == "no_pending_extension", "nothing left to decide", r.body)

        # Rejection.
        s.post("/v1/resources/%s/extend" % rid, {"seconds": 60}, token=bob)
        r = s.post(path, {"decision": "reject", "comment": "no"}, token=carol)
        check(r.status == 200 and "pending_extension" not in r.json(), "a rejection closes the request", r.body)

        # Nor does the owner decide on an extension of their own resource
        # that a teammate asked for.
        r = s.post("/v1/resources/%s/extend" % rid, {"seconds": 60}, token=dan)
        check(r.status == 202, "a teammate asks to extend bob's resource", r.status, r.body)
        r = s.post(path, {"decision": "approve"}, token=bob)
        check(r.status == 403 and r.json()["code"] == "self_approval",
              "the owner cannot approve an extension of their own resource", r.status, r.body)
        r = s.post(path, {"decision": "reject", "comment": "no"}, token=carol)
        check(r.status == 200, "an approver closes it", r.status, r.body)

        # An approval after the expiry does not revive the resource.
        rid2 = create("two", ttl_seconds=3)
        r = s.post("/v1/resources/%s/extend" % rid2, {"seconds": 600}, token=bob)
        check(r.status == 202, "a request on a short-lived resource waits", r.body)
        deadline = time.time() + 30
        while time.time() < deadline and s.get("/v1/resources/" + rid2).json()["status"] == "active":
            time.sleep(0.2)
        r = s.post("/v1/resources/%s/extension/decisions" % rid2, {"decision": "approve"}, token=carol)
        check(r.status == 409 and r.json()["code"] == "resource_not_active",
              "an approval after expiry is refused, not applied", r.status, r.body)
        st = s.get("/v1/resources/" + rid2).json()["status"]
        check(st in ("tearing_down", "deleted"), "the resource stays torn down", st)


if __name__ == "__main__":
    main(test)
