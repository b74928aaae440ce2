#!/usr/bin/env python3
"""A run or resource the caller may not see looks exactly like one that does
not exist, on every endpoint that takes an {id} (docs/policy.md): same
status, same code, same body but for the id, whether the caller asks to
read, cancel, extend, delete or decide. Decisions included: someone who may
decide approvals in general but is neither allowed to read the object nor
named by its approval rule learns nothing (no 403 not_an_approver, no 409
not pending), and nothing is recorded for it. Those the rule names still
decide without read access and read that run (GET /v1/runs/{id} only); a
teammate who reads it but is not named gets 403."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action, write_lease_action  # noqa: E402

UNKNOWN = "00000000-0000-4000-8000-000000000000"
MALFORMED = "not-a-run"


def test():
    s = Stack("existence")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "plain", ["/bin/cat"], {"type": "object"}, timeout_seconds=30)
    write_action(actions, "gated", ["/bin/cat"], {"type": "object"}, timeout_seconds=30,
                 approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]})
    write_lease_action(actions, "lease", "lease",
                       {"default_seconds": 3600, "max_seconds": 7200, "max_extension_seconds": 3600,
                        "extension_approval": {"approvals": 1, "from_teams": ["sre"]}})
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=2)
        # Built-in policy: everyone may decide approvals (the rule says whose
        # decision counts) and reads its own and its teams' runs.
        dev, mate, out, sre, sre2 = s.make_tokens("dev:payments", "mate:payments", "out:marketing",
                                                  "sre-on-call:sre", "sre-other:sre")

        plain = s.wait_run(s.submit("plain", {"x": 1}, token=dev).json()["id"])
        check(plain["status"] == "succeeded", "a plain run of payments succeeds", plain)
        gated = s.submit("gated", {"x": 2}, token=dev).json()
        check(gated["status"] == "pending_approval", "a gated run waits for sre", gated)
        lease = s.wait_run(s.submit("lease", {"name": "l1"}, token=dev).json()["id"])
        res = s.sql("SELECT resource_id FROM gw_runs WHERE id = '%s'" % lease["id"])
        r = s.post("/v1/resources/%s/extend" % res, {"seconds": 60}, token=dev)
        check(r.status == 202, "an extension of the lease waits for sre", r.status, r.body)

        def endpoints(run, pending, resource):
            return [
                ("GET", "/v1/runs/%s" % run, None),
                ("GET", "/v1/runs/%s/events" % run, None),
                ("GET", "/v1/runs/%s/logs" % run, None),
                ("GET", "/v1/runs/%s/logs?follow=true" % run, None),
                ("POST", "/v1/runs/%s/cancel" % pending, {"reason": "probe"}),
                ("POST", "/v1/runs/%s/decisions" % pending, {"decision": "approve"}),
                ("POST", "/v1/runs/%s/decisions" % run, {"decision": "reject"}),
                ("POST", "/v1/runs/%s/reconcile" % run, {"note": "checked it"}),
                ("GET", "/v1/resources/%s" % resource, None),
                ("POST", "/v1/resources/%s/extend" % resource, {"seconds": 60}),
                ("POST", "/v1/resources/%s/extension/decisions" % resource, {"decision": "approve"}),
                ("DELETE", "/v1/resources/%s" % resource, None),
            ]

        real = endpoints(plain["id"], gated["id"], res)
        for (method, path, body), (_, upath, _), (_, mpath, _) in zip(
                real, endpoints(UNKNOWN, UNKNOWN, UNKNOWN), endpoints(MALFORMED, MALFORMED, MALFORMED)):
            hidden = s.request(method, path, body=body, token=out)
            unknown = s.request(method, upath, body=body, token=out)
            malformed = s.request(method, mpath, body=body, token=out)
            label = "%s %s by another team" % (method, path.replace(plain["id"], "{run}")
                                                .replace(gated["id"], "{pending}").replace(res, "{res}"))
            same = hidden.body
            for oid in (plain["id"], gated["id"], res):
                same = same.replace(oid.encode(), UNKNOWN.encode())
            check(hidden.status == unknown.status and same == unknown.body
                  and hidden.headers.get("content-type") == unknown.headers.get("content-type"),
                  label + ": exactly the answer for an unknown id", hidden.status, hidden.body,
                  unknown.status, unknown.body)
            check(malformed.status == unknown.status
                  and malformed.body.replace(MALFORMED.encode(), UNKNOWN.encode()) == unknown.body,
                  label + ": and for a malformed id", malformed.status, malformed.body)
            if "/reconcile" not in path:
                check(hidden.status == 404 and hidden.json()["code"] in ("run_not_found",
                                                                         "resource_not_found"),
                      label + ": 404", hidden.status, hidden.body)
            else:
                check(hidden.status == 403, label + ": 403 whatever the id (admins only)",
                      hidden.status)
        check(s.sql("SELECT count(*) FROM gw_audit_log WHERE actor = 'user:default/out'") == "0",
              "the outsider's requests recorded nothing")
        check(s.get("/v1/runs/" + gated["id"]).json()["status"] == "pending_approval"
              and "pending_extension" in s.get("/v1/resources/" + res).json(),
              "and changed nothing")

        # A teammate sees both but is not an approver: told so (403).
        r = s.post("/v1/runs/%s/decisions" % gated["id"], {"decision": "approve"}, token=mate)
        check(r.status == 403 and r.json()["code"] == "not_an_approver", "a teammate is not an approver",
              r.status, r.body)
        r = s.post("/v1/resources/%s/extension/decisions" % res, {"decision": "approve"}, token=mate)
        check(r.status == 403 and r.json()["code"] == "not_an_approver",
              "nor of the extension", r.status, r.body)

        # sre may not read payments' runs, but the rules name it: it reads
        # the run it is asked to decide on (GET /v1/runs/{id} only: not its
        # logs or events, not in lists), finds it in GET /v1/approvals and
        # decides.
        r = s.get("/v1/runs/" + gated["id"], token=sre)
        check(r.status == 200 and r.json()["id"] == gated["id"]
              and r.json()["status"] == "pending_approval",
              "sre, named by the rule, reads the gated run it may approve", r.status, r.body)
        r = s.get("/v1/runs/" + plain["id"], token=sre)
        check(r.status == 404, "but not payments' other runs", r.status)
        r = s.get("/v1/runs/%s/events" % gated["id"], token=sre)
        check(r.status == 404, "nor the gated run's events", r.status)
        listed = [x["id"] for x in s.get("/v1/runs", token=sre).json()["items"]]
        check(gated["id"] not in listed, "nor finds it in its run list", listed)
        listed = [x["id"] for x in s.get("/v1/approvals", token=sre).json()["items"]]
        check(gated["id"] in listed, "but finds it among its approvals", listed)
        r = s.post("/v1/runs/%s/decisions" % gated["id"], {"decision": "approve"}, token=sre)
        check(r.status == 200 and r.json()["status"] == "queued", "and approves it", r.status, r.body)
        r = s.post("/v1/runs/%s/decisions" % gated["id"], {"decision": "approve"}, token=sre)
        check(r.status == 409 and r.json()["code"] == "not_pending_approval",
              "deciding again is 409: it knows the run", r.status, r.body)
        r = s.post("/v1/runs/%s/decisions" % gated["id"], {"decision": "approve"}, token=out)
        check(r.status == 404, "the outsider still gets 404 once it is not pending", r.status)
        s.wait_run(gated["id"])
        r = s.get("/v1/runs/" + gated["id"], token=sre)
        check(r.status == 200 and r.json()["status"] == "succeeded",
              "sre still reads the run it decided on, after it ended", r.status, r.body)
        r = s.get("/v1/runs/" + gated["id"], token=sre2)
        check(r.status == 404 and r.json()["code"] == "run_not_found",
              "another sre member, named by the rule but who never decided, no longer sees it", r.status)
        r = s.get("/v1/runs/" + gated["id"], token=out)
        check(r.status == 404 and r.json()["code"] == "run_not_found", "the outsider never does", r.status)
        r = s.post("/v1/resources/%s/extension/decisions" % res, {"decision": "approve"}, token=sre)
        check(r.status == 200 and "pending_extension" not in r.json(), "sre approves the extension",
              r.status, r.body)
        r = s.post("/v1/resources/%s/extension/decisions" % res, {"decision": "approve"}, token=sre)
        check(r.status == 409 and r.json()["code"] == "no_pending_extension",
              "deciding again is 409 for it", r.status, r.body)
        r = s.post("/v1/resources/%s/extension/decisions" % res, {"decision": "approve"}, token=out)
        check(r.status == 404, "and 404 for the outsider", r.status)


if __name__ == "__main__":
    main(test)
