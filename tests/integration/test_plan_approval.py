#!/usr/bin/env python3
"""Plan before approval, through the real broker and the terraform worker:
the plan runs first (attempt 1), the run then waits in pending_approval
showing the plan summary and its sha256; the approval is bound to that plan;
the apply (attempt 2) applies exactly the saved plan. Skipped (77) without
services or a terraform/tofu binary (deploy/install-terraform)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main, need_terraform, write_action  # noqa: E402


def test():
    binary = need_terraform()
    s = Stack("planappr")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "tf-env", None,
                 {"type": "object", "required": ["name"],
                  "properties": {"name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,30}$"},
                                 "replicas": {"type": "integer", "default": 2}}},
                 worker_type="terraform", timeout_seconds=300, resource_key="/name",
                 backend={"module": os.path.join(SRC, "examples", "terraform", "hello")},
                 approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}], "plan_first": True})
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=2, worker_type="terraform",
                       extra_env={"GW_TERRAFORM_BIN": binary,
                                  "GW_TERRAFORM_STATE_DIR": os.path.join(s.tmp, "tfstate")})
        bob = s.make_token("bob", teams=["payments"])
        carol = s.make_token("carol", teams=["sre"])
        r = s.submit("tf-env", {"name": "pr-7"}, token=bob)
        check(r.status == 202 and r.json()["operation"] == "plan",
              "a plan-first run starts with the plan", r.body)
        rid = r.json()["id"]
        pending = s.wait_run(rid, until={"pending_approval", "failed"}, timeout=180)
        check(pending["status"] == "pending_approval", "after the plan it waits for approval", pending)
        plan = pending.get("plan") or {}
        check(len(plan.get("sha256", "")) == 64 and plan["summary"]["add"] == 3,
              "the approvers see the plan summary and its hash", plan)
        check(pending["attempt"] == 2, "the apply will be attempt 2", pending["attempt"])
        started = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'" % rid)
        check(started == "1", "only the plan ran so far", started)
        r = s.post("/v1/runs/%s/decisions" % rid, {"decision": "approve", "comment": "plan ok"}, token=carol)
        check(r.status == 200 and r.json()["status"] == "queued", "the approval queues the apply", r.body)
        bound = s.sql("SELECT plan_sha256 FROM gw_approvals WHERE run_id = '%s'" % rid)
        check(bound == plan["sha256"], "the approval is bound to the plan's hash", bound)
        done = s.wait_run(rid, timeout=180)
        check(done["status"] == "succeeded", "the approved apply succeeds", done)
        check(done["outputs"].get("plan_sha256") == plan["sha256"],
              "it applied exactly the approved plan", done["outputs"].get("plan_sha256"))
        logs = [l["line"] for l in s.get("/v1/runs/%s/logs" % rid).json()["items"]]
        check(any("Apply complete! Resources: 3 added" in l for l in logs), "terraform applied it")


if __name__ == "__main__":
    main(test)
