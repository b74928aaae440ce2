#!/usr/bin/env python3
"""The compliance gate on the Terraform plan (issue 17 part 2, decision 0066),
through the real broker, PostgreSQL and the terraform worker: a plan failing
a JSON Schema rule (examples/policies/plan) is blocked with reason
policy_check_failed and its findings in the API and the audit log; a passing
plan goes on to approval; with plan_checks_override the override's approvers
must acknowledge the findings (422 naming the field without it); an external
checker that fails, and one that times out, block the run; an action that is
not plan-first keeps its failed plan's findings with the run too. Skipped (77)
without services or a terraform/tofu binary."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Stack, check, main, need_terraform, write_action  # noqa: E402

POLICIES = os.path.join(SRC, "examples", "policies", "plan")
INPUTS = {"type": "object", "required": ["name"],
          "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,30}$"},
                         "replicas": {"type": "integer", "default": 1},
                         "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}
MODULE = os.path.join(SRC, "examples", "terraform", "hello")


def tf_action(actions, action_id, checks, override=None, plan_first=True):
    approval = {"rules": [{"approvals": 1, "from_teams": ["sre"]}], "plan_first": True}
    if override is not None:
        approval["plan_checks_override"] = override
    extra = {"approval": approval} if plan_first else {}
    write_action(actions, action_id, None, INPUTS, worker_type="terraform", timeout_seconds=300,
                 resource_key="/name", backend={"module": MODULE, "plan_checks": checks}, **extra)


def audit(s, verb, rid):
    out = s.sql("SELECT coalesce(json_agg(detail ORDER BY id), '[]') FROM gw_audit_log "
                "WHERE verb = '%s' AND object = 'run:%s'" % (verb, rid))
    return json.loads(out)


def cli(s, token, *args):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": s.tmp,
           "XDG_CONFIG_HOME": os.path.join(s.tmp, "xdg"), "GANGWAY_URL": s.url,
           "GANGWAY_TOKEN": token}
    p = subprocess.run([GANGWAY] + list(args), capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test():
    binary = need_terraform()
    s = Stack("planchk")
    actions = os.path.join(s.tmp, "actions")
    labels_rule = [{"file": os.path.join(POLICIES, "required-labels.json")},
                   {"file": os.path.join(POLICIES, "no-deletions.json")}]
    tf_action(actions, "tf-gated", labels_rule)
    tf_action(actions, "tf-override", labels_rule,
              override={"approvals": 1, "from_teams": ["security"]})
    failing = s.write_program("failing-checker", """#!/bin/sh
# Reads the plan from stdin like conftest would, then reports one finding.
n=$(grep -o '"terraform_data"' | wc -l)
echo "not json: ignored"
echo '{"rule": "max-resources", "severity": "medium", "address": "terraform_data.replica[0]", "message": "saw '$n' terraform_data mentions"}'
exit 3
""")
    slow = s.write_program("slow-checker", "#!/bin/sh\nexec sleep 60\n")
    tf_action(actions, "tf-exec", [{"name": "team-tool", "kind": "exec", "command": [failing]}])
    tf_action(actions, "tf-slow", [{"name": "slow", "kind": "exec", "command": [slow],
                                    "timeout_seconds": 2}])
    tf_action(actions, "tf-direct", labels_rule, plan_first=False)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=2, worker_type="terraform",
                       extra_env={"GW_TERRAFORM_BIN": binary,
                                  "GW_TERRAFORM_STATE_DIR": os.path.join(s.tmp, "tfstate")})
        bob = s.make_token("bob", teams=["payments"])
        carol = s.make_token("carol", teams=["sre"])
        dave = s.make_token("dave", teams=["security"])

        # 1. A plan failing a JSON Schema rule is blocked.
        r = s.submit("tf-gated", {"name": "nolabels"}, token=bob)
        check(r.status == 202, "submitted", r.body)
        rid = r.json()["id"]
        run = s.wait_run(rid, timeout=180)
        check(run["status"] == "failed" and run.get("reason") == "policy_check_failed",
              "a plan failing a rule ends failed with reason policy_check_failed", run)
        pc = run.get("plan_checks") or {}
        check(pc.get("passed") is False, "the API shows the failed checks", pc)
        f = pc.get("findings") or []
        check(len(f) == 1 and f[0]["rule"] == "required-labels"
              and f[0]["address"] == "terraform_data.environment" and f[0]["severity"] == "high"
              and "owner label" in f[0]["message"],
              "one finding, on the entry's address, with the rule's message", f)
        started = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'" % rid)
        check(started == "1", "nothing was applied: only the plan ran", started)
        a = audit(s, "run.plan_checks_failed", rid)
        check(len(a) == 1 and a[0]["findings"] == f, "the audit log records the findings", a)
        check(len(audit(s, "run.failed", rid)) == 1, "and the failure")

        # 2. The same rule passing: on to approval, with the passed checks shown.
        r = s.submit("tf-gated", {"name": "labelled", "labels": {"owner": "payments"}}, token=bob)
        rid = r.json()["id"]
        run = s.wait_run(rid, until={"pending_approval", "failed"}, timeout=180)
        check(run["status"] == "pending_approval", "a passing plan waits for approval", run)
        check(run["plan_checks"] == {"passed": True, "findings": []}, "passed, no findings",
              run.get("plan_checks"))
        check(len(audit(s, "run.plan_checks_passed", rid)) == 1, "a passing check is audited too")
        r = s.post("/v1/runs/%s/decisions" % rid, {"decision": "approve"}, token=carol)
        check(r.status == 200 and r.json()["status"] == "queued",
              "no acknowledgement is needed for a passing plan", r.body)
        check(s.wait_run(rid, timeout=180)["status"] == "succeeded", "and it applies")

        # 3. Override by approval: the override's approvers, acknowledging.
        r = s.submit("tf-override", {"name": "override-me"}, token=bob)
        rid = r.json()["id"]
        run = s.wait_run(rid, until={"pending_approval", "failed"}, timeout=180)
        check(run["status"] == "pending_approval", "an overridable failure goes to approval", run)
        check(run["plan_checks"]["passed"] is False and len(run["plan_checks"]["findings"]) == 1,
              "the approvers see the findings", run["plan_checks"])
        check(run["approval"]["from_teams"] == ["security"]
              and run["approval"].get("findings_to_acknowledge") is True,
              "only the override's approvers may decide, acknowledging", run["approval"])
        r = s.post("/v1/runs/%s/decisions" % rid, {"decision": "approve"}, token=carol)
        check(r.status in (403, 404), "the plain rule's approvers cannot override", r.status, r.body)
        text = s.sql("SELECT payload ->> 'text' FROM gw_webhooks WHERE kind = 'approval.requested'"
                     " AND payload -> 'run' ->> 'id' = '%s'" % rid)
        check("FAILED its compliance checks (1 finding(s): required-labels "
              "terraform_data.environment)" in text and "acknowledge_findings" in text,
              "the approval notification names the findings", text)
        rc, out, err = cli(s, dave, "approvals")
        check(rc == 0 and "CHECKS" in out
              and "FAILED, acknowledge: required-labels terraform_data.environment" in out,
              "gangway approvals shows the findings to acknowledge", rc, out, err)
        rc, out, err = cli(s, dave, "approve", rid)
        check(rc != 0 and "acknowledge_findings" in err,
              "gangway approve without --acknowledge-findings is refused", rc, out, err)
        r = s.post("/v1/runs/%s/decisions" % rid, {"decision": "approve"}, token=dave)
        check(r.status == 422 and r.json()["code"] == "validation_failed"
              and r.json()["errors"][0]["pointer"] == "/acknowledge_findings",
              "approving without acknowledging is refused, naming the field", r.status, r.body)
        r = s.post("/v1/runs/%s/decisions" % rid,
                   {"decision": "approve", "acknowledge_findings": "yes"}, token=dave)
        check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/acknowledge_findings",
              "acknowledge_findings must be a boolean", r.status, r.body)
        check(s.sql("SELECT count(*) FROM gw_approvals WHERE run_id = '%s'" % rid) == "0",
              "a refused decision records nothing")
        rc, out, err = cli(s, dave, "approve", rid, "--acknowledge-findings", "-m", "risk accepted")
        check(rc == 0 and "queued" in out, "acknowledged (gangway approve --acknowledge-findings): "
              "approved and queued", rc, out, err)
        a = audit(s, "approval.approve", rid)
        check(len(a) == 1 and a[0].get("acknowledged_findings") == run["plan_checks"]["findings"]
              and a[0].get("comment") == "risk accepted",
              "the acknowledgement is audited with the findings", a)
        done = s.wait_run(rid, timeout=180)
        check(done["status"] == "succeeded", "the overridden plan applies", done)

        # 4. An external checker failing.
        r = s.submit("tf-exec", {"name": "exec-fail", "replicas": 2}, token=bob)
        rid = r.json()["id"]
        run = s.wait_run(rid, timeout=180)
        check(run["status"] == "failed" and run.get("reason") == "policy_check_failed",
              "a failing external checker blocks the run", run)
        f = run["plan_checks"]["findings"]
        check(len(f) == 1 and f[0]["check"] == "team-tool" and f[0]["rule"] == "max-resources"
              and f[0]["severity"] == "medium" and f[0]["address"] == "terraform_data.replica[0]",
              "its JSON lines are the findings (other lines ignored)", f)
        check("saw 0 " not in f[0]["message"], "it read the plan JSON on stdin", f[0]["message"])

        # 5. An external checker timing out.
        r = s.submit("tf-slow", {"name": "exec-slow"}, token=bob)
        rid = r.json()["id"]
        run = s.wait_run(rid, timeout=180)
        check(run["status"] == "failed" and run.get("reason") == "policy_check_failed",
              "a checker that times out blocks the run", run)
        f = run["plan_checks"]["findings"]
        check(len(f) == 1 and f[0]["check"] == "slow" and "timed out after 2 s" in f[0]["message"],
              "the finding says it timed out", f)

        # 6. Not plan-first (no approval): the plan is checked inside the run,
        # before the apply; the findings stay with the failed run and in the
        # audit, as for a plan-first one.
        r = s.submit("tf-direct", {"name": "direct-nolabels"}, token=bob)
        rid = r.json()["id"]
        run = s.wait_run(rid, timeout=180)
        check(run["status"] == "failed" and run.get("reason") == "policy_check_failed",
              "6: a direct run whose plan fails a rule is blocked", run)
        pc = run.get("plan_checks") or {}
        f = pc.get("findings") or []
        check(pc.get("passed") is False and any(x["rule"] == "required-labels" for x in f),
              "6: its findings are kept with the run", run)
        a = audit(s, "run.plan_checks_failed", rid)
        check(len(a) == 1 and a[0].get("findings") == f, "6: and recorded in the audit log", a)
        check(s.sql("SELECT count(*) FROM gw_resources WHERE name = 'direct-nolabels'") == "0",
              "6: nothing was applied")


if __name__ == "__main__":
    main(test)
