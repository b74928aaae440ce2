"""One person, one subject (issue 12, decision 0031, docs/policy.md#subjects).

Mia reaches the broker six ways: API tokens created as `mia`,
`user:default/mia` and `User:Default/Mia`, a JWT whose subject is the bare
`mia` from an issuer that still sets the deprecated `subject_prefix_strip`,
a Backstage user JWT with `user:default/mia`, and a Backstage plugin token
acting on her behalf (`obo`). Every way gives the one canonical subject
`user:default/mia`; she submits a run of an approval-needing action through
each way and tries to approve each run through every way: every try is 403
`self_approval`, and none of her runs is offered to her in /v1/approvals.
Rob (another person, also in sre) approves them, and cannot count twice by
switching from his API token to his JWT. A policy binding the bare `mia`
keeps the broker from starting, naming the file and line and the canonical
form meant.

Real PostgreSQL and Kafka (harness.Stack); keys and signatures with the
`openssl` CLI, as test_jwt.py does."""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Stack, check, main, write_action  # noqa: E402
from test_jwt import EcKey  # noqa: E402

ISS = "http://backstage.test:7007/api/auth"
IDP = "http://idp.test"
MIA = "user:default/mia"


def auth_config(tmp, auth_key, idp_key, plugin_key):
    for name, key in (("auth", auth_key), ("idp", idp_key), ("plugin", plugin_key)):
        with open(os.path.join(tmp, name + "-jwks.json"), "w") as f:
            json.dump({"keys": [key.jwk]}, f)
    config = {"issuers": [
        # The documented Backstage setup, deprecated option and all.
        {"name": "backstage", "issuer": ISS, "audience": "backstage", "typ": "vnd.backstage.user",
         "jwks_file": "auth-jwks.json", "algorithms": ["ES256"],
         "subject_prefix_strip": "user:default/", "teams_claim": "ent", "teams_entity_kind": "group"},
        {"name": "backstage-obo", "direct": False, "jwks_file": "auth-jwks.json",
         "algorithms": ["ES256"], "typ": ["vnd.backstage.limited-user", "vnd.backstage.user"],
         "subject_prefix_strip": "user:default/",
         "teams_from": {"user:default/mia": ["sre"], "user:default/rob": ["sre"]}},
        {"name": "backstage-scaffolder", "audience": "gangway", "typ": "vnd.backstage.plugin",
         "jwks_file": "plugin-jwks.json", "algorithms": ["ES256"],
         "allowed_subjects": ["scaffolder"], "obo_issuer": "backstage-obo"},
        # A generic OIDC provider whose subjects are bare names.
        {"name": "idp", "issuer": IDP, "audience": "gangway", "jwks_file": "idp-jwks.json",
         "algorithms": ["ES256"], "subject_prefix_strip": "user:default/", "teams_claim": "groups"},
    ]}
    path = os.path.join(tmp, "auth.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def test():
    tmp = tempfile.mkdtemp(prefix="gw-identity-keys-")
    auth_key, idp_key, plugin_key = (EcKey(tmp, "auth-1"), EcKey(tmp, "idp-1"),
                                     EcKey(tmp, "scaffolder-1"))
    config = auth_config(tmp, auth_key, idp_key, plugin_key)
    s = Stack("identity", broker_args=["--auth-config", config])
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "guarded", ["/bin/cat"], timeout_seconds=30,
                 approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]})
    write_action(actions, "guarded-twice", ["/bin/cat"], timeout_seconds=30,
                 approval={"rules": [{"approvals": 2, "from_teams": ["sre"]}]})
    s.actions_dir = actions
    now = int(time.time())

    def backstage_user(sub):
        return auth_key.sign({"typ": "vnd.backstage.user", "alg": "ES256"},
                             {"iss": ISS, "aud": "backstage", "sub": sub, "iat": now,
                              "exp": now + 3600, "ent": [sub, "group:default/SRE"]})

    def idp_user(sub):
        return idp_key.sign({"alg": "ES256"}, {"iss": IDP, "aud": "gangway", "sub": sub, "iat": now,
                                               "exp": now + 3600, "groups": ["sre"]})

    def on_behalf_of(sub):
        limited = auth_key.sign({"typ": "vnd.backstage.limited-user", "alg": "ES256"},
                                {"sub": sub, "iat": now, "exp": now + 3600})
        return plugin_key.sign({"typ": "vnd.backstage.plugin", "alg": "ES256"},
                               {"sub": "scaffolder", "aud": "gangway", "iat": now, "exp": now + 3600,
                                "obo": limited})

    with s:
        s.start_broker()
        # -- every way in gives the same subject ------------------------
        ways = {
            "API token 'mia'": s.make_token("mia", teams=["sre"]),
            "API token 'user:default/mia'": s.make_token(MIA, teams=["sre"]),
            "API token 'User:Default/Mia'": s.make_token("User:Default/Mia", teams=["sre"]),
            "JWT 'mia' (subject_prefix_strip set)": idp_user("mia"),
            "JWT 'user:default/mia'": backstage_user(MIA),
            "Backstage plugin token on behalf of mia": on_behalf_of(MIA),
        }
        for way, token in ways.items():
            r = s.get("/v1/me", token=token)
            check(r.status == 200 and r.json()["subject"] == MIA and "sre" in r.json()["teams"],
                  "%s: GET /v1/me says %s of team sre" % (way, MIA), r.status, r.body[:300])
        stored = s.sql("SELECT string_agg(DISTINCT subject, ',') FROM gw_api_tokens"
                       " WHERE subject LIKE '%mia%' OR subject LIKE '%Mia%'")
        check(stored == MIA, "every mia token is stored canonical", stored)

        # Teams are canonical too: "SRE" and "group:default/SRE" are "sre".
        rob_token = s.make_token("rob", teams=["SRE"])
        for token in (rob_token, backstage_user("user:default/rob")):
            me = s.get("/v1/me", token=token).json()
            check(me["subject"] == "user:default/rob" and me["teams"] == ["sre"],
                  "rob's token and JWT both say user:default/rob of team sre", me)
        rob_jwt = backstage_user("user:default/rob")
        zoe_token = s.make_token("zoe", teams=["sre"])

        # -- one run through each way; self-approval through every way --
        runs = {}
        for way, token in ways.items():
            r = s.submit("guarded", {}, token=token)
            check(r.status == 202 and r.json()["status"] == "pending_approval",
                  "%s: the run waits for approval" % way, r.status, r.body[:300])
            check(r.json()["requested_by"]["subject"] == MIA,
                  "%s: the run is recorded as requested by %s" % (way, MIA), r.json()["requested_by"])
            runs[way] = r.json()["id"]
        for way, token in ways.items():
            listed = s.get("/v1/approvals", token=token)
            check(listed.status == 200 and
                  not set(runs.values()) & {x["id"] for x in listed.json()["items"]},
                  "%s: /v1/approvals offers none of mia's own runs" % way, listed.body[:300])
        refused = 0
        for submitted_by, run_id in runs.items():
            for way, token in ways.items():
                r = s.post("/v1/runs/%s/decisions" % run_id, {"decision": "approve"}, token=token)
                ok = r.status == 403 and r.json().get("code") == "self_approval"
                refused += ok
                check(ok, "run submitted via %s, approved via %s: 403 self_approval"
                      % (submitted_by, way), r.status, r.body[:300])
        check(refused == len(ways) ** 2, "all %d self-approvals refused" % (len(ways) ** 2), refused)
        n = s.sql("SELECT count(*) FROM gw_approvals")
        check(n == "0", "no self-approval was stored", n)
        n = s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'approval.denied'"
                  " AND detail ->> 'why' = 'self_approval' AND actor = '%s'" % MIA)
        check(n == str(len(ways) ** 2), "each refusal is audited under the canonical subject", n)

        # -- another person approves -------------------------------------
        offered = {x["id"] for x in s.get("/v1/approvals", token=rob_token).json()["items"]}
        check(set(runs.values()) <= offered, "rob is offered every one of mia's runs", offered)
        for i, (way, run_id) in enumerate(runs.items()):
            token = rob_token if i % 2 == 0 else rob_jwt
            r = s.post("/v1/runs/%s/decisions" % run_id, {"decision": "approve"}, token=token)
            check(r.status == 200 and r.json()["status"] == "queued",
                  "rob approves the run mia submitted via %s" % way, r.status, r.body[:300])
        approvers = s.sql("SELECT string_agg(DISTINCT approver, ',') FROM gw_approvals")
        check(approvers == "user:default/rob", "rob's approvals are recorded under one subject",
              approvers)

        # -- one person approves once, whatever the way ------------------
        r = s.submit("guarded-twice", {}, token=ways["JWT 'mia' (subject_prefix_strip set)"])
        check(r.status == 202, "mia submits a run needing two approvals", r.status, r.body[:300])
        path = "/v1/runs/%s/decisions" % r.json()["id"]
        r = s.post(path, {"decision": "approve"}, token=rob_token)
        check(r.status == 200 and r.json()["status"] == "pending_approval",
              "rob's first approval is recorded", r.status, r.body[:300])
        r = s.post(path, {"decision": "approve"}, token=rob_jwt)
        check(r.status == 409 and r.json().get("code") == "already_decided",
              "rob again through his JWT: 409 already_decided", r.status, r.body[:300])
        r = s.post(path, {"decision": "approve"}, token=zoe_token)
        check(r.status == 200 and r.json()["status"] == "queued",
              "zoe's approval is the second", r.status, r.body[:300])

        # -- bad subjects never become principals ------------------------
        r = s.get("/v1/me", token=backstage_user("group:default/sre"))
        check(r.status == 401 and "a group is not a subject" in r.json().get("detail", ""),
              "a JWT whose subject is a group is refused", r.status, r.body[:300])
        r = s.get("/v1/me", token=idp_user("m\u00efa"))
        check(r.status == 401 and "non-ASCII" in r.json().get("detail", ""),
              "a JWT whose subject is not ASCII is refused", r.status, r.body[:300])
        p = subprocess.run([GANGWAY, "token", "create", "--subject", " mia", "--pg", s.dsn],
                           capture_output=True, text=True, env=s.env(), timeout=60)
        check(p.returncode == 2 and "--subject: the subject holds a space" in p.stderr,
              "token create refuses ' mia'", p.returncode, p.stderr)
        # A row stored before subjects were canonical still names mia.
        s.sql("INSERT INTO gw_api_tokens (token_hash, subject, teams, roles) VALUES"
              " (encode(sha256('gwt_legacy_mia_token_0000000000000000000000000'::bytea), 'hex'),"
              " 'Mia', '{SRE,group:default/sre}', '{}')")
        r = s.get("/v1/me", token="gwt_legacy_mia_token_0000000000000000000000000")
        check(r.status == 200 and r.json()["subject"] == MIA and r.json()["teams"] == ["sre"],
              "a legacy token row 'Mia' of teams SRE, group:default/sre authenticates as %s of sre"
              % MIA, r.status, r.body[:300])

        # -- a policy no caller can match does not load ------------------
        policy = os.path.join(s.tmp, "policy.yaml")
        with open(policy, "w") as f:
            f.write("roles:\n  approver:\n    grants:\n      - permissions: [run, decide_approvals]\n"
                    "bindings:\n  - roles: [approver]\n    subjects:\n      - user:default/rob\n"
                    "      - mia\n")
        env = s.env({"GW_POLICY_FILE": policy})
        p = subprocess.run([GANGWAY, "broker", "--listen", "127.0.0.1:0", "--auth-config", config],
                           capture_output=True, text=True, env=env, timeout=120)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and "policy.yaml: line 9 column 9: /bindings/0/subjects/1: subject "
              "'mia' is not canonical" in out and "write 'user:default/mia'" in out,
              "a broker with a policy binding 'mia' refuses to start, naming policy.yaml line 9",
              p.returncode, out[-1500:])


if __name__ == "__main__":
    main(test)
