#!/usr/bin/env python3
"""POST /v1/actions/{id}/validate answers every bad request exactly as a
submit (POST /v1/actions/{id}/runs) does (docs/decisions/0059): the same
status, problem code, detail and field errors, on each way a request can
be wrong before a run is stored -- unknown action, a caller who may not run
it, media type, Idempotency-Key, JSON, body shape, unknown field,
ttl_seconds, break_glass, justification, inputs against the schema, the
policy's input conditions and the break-glass permission. Each case also
pins the answer itself (status, code, pointer), so both endpoints drifting
the same way is caught too. A good request: 200 from validate (nothing
stored), 202 from submit."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402

INPUTS = {
    "type": "object",
    "required": ["env"],
    "additionalProperties": False,
    "properties": {"env": {"enum": ["dev", "prod"]}, "name": {"type": "string"}},
}
# Developers (team-a) may run "shape" and "leased" in dev only, and have no
# break_glass; nobody else but the admin may run anything.
POLICY = {
    "version": 1,
    "roles": {"developer": {"grants": [
        {"permissions": ["run"], "actions": ["shape", "leased"], "inputs": {"env": ["dev"]}},
    ]}},
    "bindings": [{"roles": ["developer"], "teams": ["team-a"]}],
}


def answer(r):
    """What must agree: the status and the problem minus nothing."""
    try:
        body = r.json()
    except ValueError:
        body = r.body
    return r.status, body


def test():
    s = Stack("submitvalidate")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "shape", ["/bin/true"], INPUTS, timeout_seconds=30,
                 approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]})
    write_action(actions, "leased", ["/bin/cat"], INPUTS, timeout_seconds=30, resource_key="/name",
                 resource={"kind": "thing", "name": "/name"},
                 ttl={"default_seconds": 600, "max_seconds": 3600, "max_extension_seconds": 600},
                 teardown={"backend": {"command": ["/bin/cat"]}})
    s.actions_dir = actions
    policy = os.path.join(s.tmp, "policy.json")
    with open(policy, "w") as f:
        json.dump(POLICY, f)
    s.broker_args = ["--policy", policy]
    with s:
        s.start_broker()
        dev = s.make_token("dana", teams=["team-a"])
        stranger = s.make_token("sam", teams=["team-z"])
        good = {"inputs": {"env": "dev", "name": "x"}}
        reason = "the database is down and prod must be fixed now"
        # (what, action, body or raw text, extra headers, token,
        #  expected status, code, first error's pointer or None)
        cases = [
            ("unknown action", "nope", good, None, None, 404, "action_not_found", None),
            ("a caller without a grant", "shape", good, None, stranger, 403, "forbidden", None),
            ("not JSON media type", "shape", "x", {"Content-Type": "text/plain"}, None,
             415, "unsupported_media_type", None),
            ("a bad Idempotency-Key", "shape", good, {"Idempotency-Key": "k" * 256}, None,
             400, "invalid_idempotency_key", "/headers/idempotency-key"),
            ("broken JSON", "shape", "{", None, None, 400, "invalid_json", None),
            ("a body that is not an object", "shape", [1], None, None, 422, "validation_failed", ""),
            ("an unknown body field", "shape", {"inputs": {"env": "dev"}, "colour": "red"}, None, None,
             422, "validation_failed", "/colour"),
            ("ttl_seconds on an action without TTL", "shape", {"inputs": {"env": "dev"}, "ttl_seconds": 60},
             None, None, 422, "validation_failed", "/ttl_seconds"),
            ("ttl_seconds over the maximum", "leased",
             {"inputs": {"env": "dev", "name": "a"}, "ttl_seconds": 7200}, None, None,
             422, "validation_failed", "/ttl_seconds"),
            ("a break_glass without a real reason", "shape",
             {"inputs": {"env": "dev"}, "break_glass": {"reason": "now"}}, None, None,
             422, "validation_failed", "/break_glass/reason"),
            ("a blank justification", "shape", {"inputs": {"env": "dev"}, "justification": "  "}, None, None,
             422, "validation_failed", "/justification"),
            ("a justification too long", "shape", {"inputs": {"env": "dev"}, "justification": "j" * 1001},
             None, None, 422, "validation_failed", "/justification"),
            ("inputs against the schema", "shape", {"inputs": {"env": "qa", "extra": 1}}, None, None,
             422, "validation_failed", "/inputs/env"),
            ("an input the caller's grant excludes", "shape", {"inputs": {"env": "prod"}}, None, dev,
             403, "forbidden", None),
            ("break_glass without the permission", "shape",
             {"inputs": {"env": "dev"}, "break_glass": {"reason": reason}}, None, dev, 403, "forbidden", None),
        ]
        for what, action, body, headers, token, status, code, pointer in cases:
            got = []
            for verb in ("runs", "validate"):
                path = "/v1/actions/%s/%s" % (action, verb)
                if isinstance(body, str):
                    h = {"Content-Type": "application/json"}
                    h.update(headers or {})
                    r = s.request("POST", path, raw=body, headers=h, token=token)
                else:
                    r = s.post(path, body, headers=headers, token=token)
                got.append(answer(r))
            (st, p), (vst, vp) = got
            check(got[0] == got[1], "%s: validate answers as submit" % what, got[0], got[1])
            check(st == status and isinstance(p, dict) and p.get("code") == code,
                  "%s: %d %s" % (what, status, code), st, p)
            if pointer is not None:
                check(p.get("errors") and p["errors"][0].get("pointer") == pointer,
                      "%s: the error points at %r" % (what, pointer), p)

        # Nothing of the above was stored; a good request passes both.
        check(s.sql("SELECT count(*) FROM gw_runs") == "0", "no run stored by the refused requests")
        r = s.post("/v1/actions/shape/validate", good, token=dev)
        check(r.status == 200 and r.json()["valid"] is True and r.json()["inputs"] == good["inputs"]
              and r.json()["approval"]["from_teams"] == ["sre"], "validate: 200 with the approval rule", r.body)
        check(s.sql("SELECT count(*) FROM gw_runs") == "0", "validate stores no run")
        r = s.post("/v1/actions/leased/validate", {"inputs": {"env": "dev", "name": "a"}, "ttl_seconds": 60},
                   token=dev)
        check(r.status == 200 and r.json()["ttl_seconds"] == 60, "validate: ttl_seconds echoed", r.body)
        r = s.post("/v1/actions/shape/runs", good, token=dev)
        check(r.status == 202 and r.json()["status"] == "pending_approval", "submit: 202", r.status, r.body)
        r = s.post("/v1/actions/shape/runs", {"inputs": {"env": "dev"}, "break_glass": {"reason": reason}})
        check(r.status == 202, "break_glass by the admin: 202", r.status, r.body)


if __name__ == "__main__":
    main(test)
