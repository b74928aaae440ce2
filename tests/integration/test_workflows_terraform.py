#!/usr/bin/env python3
"""A workflow with a real Terraform step (issue 17 part 1): the step applies
examples/terraform/hello, a later exec step fails, and the compensation runs
the Terraform step's undo (`operation: destroy`) in the same working
directory and state: the three resources the step added are destroyed.
Skipped (77) without services or without a terraform/tofu binary."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main, need_terraform  # noqa: E402


def test():
    binary = need_terraform()
    s = Stack("wftf", broker_args=["--heartbeat", "1"])
    state_dir = os.path.join(s.tmp, "tfstate")
    actions = os.path.join(s.tmp, "actions")
    os.makedirs(actions)
    module = os.path.join(SRC, "examples", "terraform", "hello")
    doc = {"id": "envflow", "title": "envflow",
           "inputs": {"type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string"}}},
           "steps": [
               {"id": "env", "worker_type": "terraform",
                "backend": {"module": module, "kill_grace_seconds": 20},
                "inputs": {"name": "${inputs.name}", "replicas": 2},
                "timeout_seconds": 300,
                "undo": {"worker_type": "terraform",
                         "backend": {"module": module, "operation": "destroy"},
                         "inputs": {"name": "${inputs.name}", "replicas": 2}}},
               {"id": "boom", "worker_type": "exec",
                "backend": {"command": ["/bin/sh", "-c", "cat >/dev/null; echo boom; exit 3"]},
                "inputs": {"env": "${steps.env.outputs.outputs}"}}]}
    with open(os.path.join(actions, "envflow.json"), "w") as f:
        json.dump(doc, f)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=2, worker_type="terraform",
                       extra_env={"GW_TERRAFORM_BIN": binary, "GW_TERRAFORM_STATE_DIR": state_dir})
        s.start_worker(concurrency=2)
        r = s.submit("envflow", {"name": "wf-1"})
        check(r.status == 202, "the workflow is accepted", r.status, r.body)
        done = s.wait_run(r.json()["id"], timeout=240)
        steps = [(x["id"], x["operation"], x["status"]) for x in done.get("steps", [])]
        check(done["status"] == "failed" and done["failed_step"] == "boom"
              and done["compensated"] is True and steps ==
              [("env", "create", "succeeded"), ("boom", "create", "failed"),
               ("env", "undo", "succeeded")],
              "boom fails and the terraform step is undone", done)
        env_run = s.get("/v1/runs/" + done["steps"][0]["run_id"]).json()
        check(env_run["outputs"]["plan"]["add"] == 3, "the step added three resources",
              env_run["outputs"])
        undo = s.get("/v1/runs/" + done["steps"][2]["run_id"]).json()
        check(undo["outputs"]["plan"]["destroy"] == 3,
              "its undo destroyed the three from the same state", undo.get("outputs"))
        check(len(os.listdir(state_dir)) == 1, "one working directory for step and undo",
              os.listdir(state_dir))


if __name__ == "__main__":
    main(test)
