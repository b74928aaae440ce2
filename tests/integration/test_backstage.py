"""The Backstage modules (integrations/backstage) against a real Gangway
stack: PostgreSQL, Kafka, the broker (with the Backstage auth configuration
of docs/auth-backstage.md) and an exec worker.

First, in Python, the broker's dry-run endpoint POST /v1/actions/{id}/validate
(the submit's checks, no run). Then the Jest suite
integrations/backstage/tests/backstage.it.ts drives the real modules:
`gangway:run` with createMockActionContext (submit as the task's user through
an ES256 plugin token carrying the user's token in `obo`, or through a
service token with act_on_behalf and Gangway-On-Behalf-Of, log streaming,
outputs, failure, cancellation through the abort signal, approval wait then
approval, the idempotency key under a retried task, dry run) and the catalog
entity provider (a resource added, then removed after its teardown).

Skips (77) when Node 20+ and npm are missing; installs the npm packages with
integrations/backstage/install (npm ci when the lockfile changed)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main, write_action, write_lease_action  # noqa: E402
from test_jwt import EcKey  # noqa: E402

WS = os.path.join(SRC, "integrations", "backstage")

HELLO = r'''#!/usr/bin/env python3
import json, os, sys, time
i = json.load(sys.stdin)
for n in range(3):
    print("line %d for %s" % (n, i["name"]), flush=True)
    time.sleep(0.2)
if i.get("fail"):
    print("about to fail", file=sys.stderr, flush=True)
    sys.exit(3)
time.sleep(i.get("sleep", 0))
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"greeting": ("HELLO " if i.get("shout") else "hello ") + i["name"]}, f)
'''

HELLO_SCHEMA = {"type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {"name": {"type": "string", "maxLength": 20},
                               "fail": {"type": "boolean"}, "sleep": {"type": "integer"},
                               "shout": {"type": "boolean", "default": False},
                               "secret": {"type": "string", "writeOnly": True}}}


def need_node():
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("SKIP - node/npm missing (Debian packages nodejs, npm)")
        sys.exit(77)
    major = int(subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"],
                               capture_output=True, text=True).stdout.strip() or 0)
    if major < 20:
        print("SKIP - Node %d is older than 20" % major)
        sys.exit(77)


def test_validate(s, tok):
    """The dry-run endpoint answers like a submit and stores nothing."""
    runs_before = s.sql("SELECT count(*) FROM gw_runs")
    r = s.post("/v1/actions/bs-hello/validate", {"inputs": {"name": "ana", "secret": "s3"}})
    check(r.status == 200, "validate: 200", r.status, r.body)
    v = r.json()
    check(v["valid"] is True and v["action"] == "bs-hello" and len(v["version"]) == 64, "validate body", v)
    check(v["inputs"] == {"name": "ana", "shout": False, "secret": "[redacted]"},
          "defaults filled in, secret redacted", v["inputs"])
    check(v["approval"] is None, "no approval for bs-hello", v)
    check("ttl_seconds" not in v, "no ttl_seconds member when none was asked for", v)
    r = s.post("/v1/actions/bs-approve/validate", {"inputs": {"name": "ana"}})
    check(r.status == 200 and r.json()["approval"]["approvals"] == 1
          and r.json()["approval"]["from_teams"] == ["sre"], "validate names the approval rule", r.body)
    r = s.post("/v1/actions/bs-hello/validate", {"inputs": {"name": "x" * 21}})
    check(r.status == 422 and r.json()["code"] == "validation_failed"
          and r.json()["errors"][0]["pointer"] == "/inputs/name", "validate: 422 at /inputs/name", r.status, r.body)
    r = s.post("/v1/actions/bs-hello/validate", {"inputs": {"name": "a"}, "ttl_seconds": 5})
    check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/ttl_seconds",
          "validate: ttl_seconds refused for an action without TTL", r.status, r.body)
    r = s.post("/v1/actions/bs-env/validate", {"inputs": {"name": "a"}, "ttl_seconds": 600})
    check(r.status == 200 and r.json()["ttl_seconds"] == 600, "validate: ttl_seconds within bounds", r.body)
    r = s.post("/v1/actions/nope/validate", {"inputs": {}})
    check(r.status == 404 and r.json()["code"] == "action_not_found", "validate: unknown action 404", r.status)
    r = s.request("POST", "/v1/actions/bs-hello/validate", raw="{", headers={"Content-Type": "application/json"})
    check(r.status == 400 and r.json()["code"] == "invalid_json", "validate: bad JSON 400", r.status, r.body)
    r = s.post("/v1/actions/bs-hello/validate", {"inputs": {"name": "a"}}, auth=False)
    check(r.status == 401, "validate: needs a token", r.status)
    r = s.post("/v1/actions/bs-hello/validate", {"inputs": {"name": "a"}}, token=s.worker_token)
    check(r.status == 403, "validate: not for a worker token", r.status)
    check(s.sql("SELECT count(*) FROM gw_runs") == runs_before, "validate created no run")


def test():
    need_node()
    tmp = tempfile.mkdtemp(prefix="gw-backstage-keys-")
    auth_key = EcKey(tmp, "auth-1")
    plugin_key = EcKey(tmp, "scaffolder-1")
    for name, key in (("auth-jwks.json", auth_key), ("scaffolder-jwks.json", plugin_key)):
        with open(os.path.join(tmp, name), "w") as f:
            json.dump({"keys": [key.jwk]}, f)
    teams = {"user:default/carol": ["payments"]}
    with open(os.path.join(tmp, "auth.json"), "w") as f:
        json.dump({"issuers": [
            {"name": "backstage-obo", "direct": False, "jwks_file": "auth-jwks.json",
             "algorithms": ["ES256"], "typ": ["vnd.backstage.limited-user", "vnd.backstage.user"],
             "teams_from": teams},
            {"name": "backstage-scaffolder", "audience": "gangway", "typ": "vnd.backstage.plugin",
             "jwks_file": "scaffolder-jwks.json", "algorithms": ["ES256"],
             "allowed_subjects": ["scaffolder"], "obo_issuer": "backstage-obo"},
        ]}, f)

    s = Stack("backstage", broker_args=["--auth-config", os.path.join(tmp, "auth.json")])
    failed = True
    try:
        actions = os.path.join(s.tmp, "actions")
        hello = s.write_program("hello.py", HELLO)
        write_action(actions, "bs-hello", ["/usr/bin/python3", hello], HELLO_SCHEMA, timeout_seconds=120)
        write_action(actions, "bs-approve", ["/usr/bin/python3", hello], HELLO_SCHEMA, timeout_seconds=120,
                     approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]})
        write_lease_action(actions, "bs-env", "devenv", {"default_seconds": 3600, "max_seconds": 86400})
        s.actions_dir = actions
        s.start_broker()
        s.start_worker()
        test_validate(s, s.token)

        inst = subprocess.run([os.path.join(WS, "install")], capture_output=True, text=True, timeout=1200)
        check(inst.returncode == 0, "npm ci (integrations/backstage/install)", inst.stdout, inst.stderr)
        env = dict(os.environ)
        env.update({
            "GANGWAY_IT": "1",
            "GANGWAY_URL": s.url,
            "GANGWAY_ADMIN_TOKEN": s.token,
            "GANGWAY_APPROVER_TOKEN": s.make_token("bob", teams=["sre"]),
            "GANGWAY_OBO_TOKEN": s.make_token("service:default/backstage", roles=["act_on_behalf"]),
            "GANGWAY_AUTH_KEY": auth_key.pem, "GANGWAY_AUTH_KID": auth_key.kid,
            "GANGWAY_PLUGIN_KEY": plugin_key.pem, "GANGWAY_PLUGIN_KID": plugin_key.kid,
        })
        p = subprocess.run(["npx", "--no-install", "jest", "--selectProjects", "integration", "--runInBand", "--ci"],
                           cwd=WS, env=env, capture_output=True, text=True, timeout=600)
        print(p.stdout[-6000:])
        print(p.stderr[-12000:])
        check(p.returncode == 0, "the Jest suite against the stack passed (output above)")
        failed = False
    finally:
        s.close(failed=failed)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(test)
