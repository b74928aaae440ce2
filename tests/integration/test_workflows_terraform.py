#!/usr/bin/env python3
"""A workflow with real backends (issue 17 part 1, the shape of
examples/actions/scaffold-service.yaml): a Terraform step applies
examples/terraform/hello, a Jenkins step (against the stand-in in
tests/fakes/jenkins) "creates the pipeline" for it, a later exec step fails,
and the compensation runs the Jenkins undo (another job) and then the
Terraform undo (`operation: destroy`) in the same working directory and
state: the three resources the step added are destroyed.
Skipped (77) without services or without a terraform/tofu binary."""
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main, need_terraform  # noqa: E402


FAKE = os.path.join(SRC, "tests", "fakes", "jenkins", "fake_jenkins.py")
TOKEN = "wf-t0ken"


def test():
    binary = need_terraform()
    fake = subprocess.Popen([sys.executable, FAKE, "--user", "gangway", "--token", TOKEN,
                             "--job", "scaffold/create-pipeline", "--job", "scaffold/delete-pipeline"],
                            stdout=subprocess.PIPE, text=True)
    line = fake.stdout.readline()
    check(line.startswith("PORT "), "the Jenkins stand-in starts", line)
    base = "http://127.0.0.1:%d" % int(line.split()[1])
    jk = {"url": base, "user_env": "JK_USER", "token_env": "JK_TOKEN", "poll_interval_ms": 100}
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
               {"id": "pipeline", "worker_type": "jenkins",
                "backend": dict(jk, job="scaffold/create-pipeline"),
                "inputs": {"SERVICE": "${inputs.name}", "ENV": "${steps.env.outputs.outputs.name}"},
                "undo": {"worker_type": "jenkins", "backend": dict(jk, job="scaffold/delete-pipeline"),
                         "inputs": {"SERVICE": "${inputs.name}"}}},
               {"id": "boom", "worker_type": "exec",
                "backend": {"command": ["/bin/sh", "-c", "cat >/dev/null; echo boom; exit 3"]},
                "inputs": {"env": "${steps.env.outputs.outputs}"}}]}
    with open(os.path.join(actions, "envflow.json"), "w") as f:
        json.dump(doc, f)
    s.actions_dir = actions
    try:
        run_it(s, binary, state_dir, base)
    finally:
        fake.kill()
        fake.wait()


def run_it(s, binary, state_dir, base):
    with s:
        s.start_broker()
        s.start_worker(concurrency=2, worker_type="terraform",
                       extra_env={"GW_TERRAFORM_BIN": binary, "GW_TERRAFORM_STATE_DIR": state_dir})
        s.start_worker(concurrency=2)
        s.start_worker(concurrency=2, worker_type="jenkins",
                       extra_env={"JK_USER": "gangway", "JK_TOKEN": TOKEN})
        r = s.submit("envflow", {"name": "wf-1"})
        check(r.status == 202, "the workflow is accepted", r.status, r.body)
        done = s.wait_run(r.json()["id"], timeout=240)
        steps = [(x["id"], x["operation"], x["status"]) for x in done.get("steps", [])]
        check(done["status"] == "failed" and done["failed_step"] == "boom"
              and done["compensated"] is True and steps ==
              [("env", "create", "succeeded"), ("pipeline", "create", "succeeded"),
               ("boom", "create", "failed"), ("pipeline", "undo", "succeeded"),
               ("env", "undo", "succeeded")],
              "boom fails; the jenkins step then the terraform step are undone", done)
        with urllib.request.urlopen(base + "/_control/state", timeout=10) as f:
            state = json.load(f)
        def params(build):
            for a in build.get("actions", []):
                if "parameters" in a:
                    return {p["name"]: p["value"] for p in a["parameters"]}
            return {}
        made = [params(b) for b in state["builds"].get("scaffold/create-pipeline", [])]
        gone = [params(b) for b in state["builds"].get("scaffold/delete-pipeline", [])]
        check(state["triggers"] == 2 and len(made) == 1 and made[0].get("SERVICE") == "wf-1"
              and made[0].get("ENV") == "wf-1" and len(gone) == 1
              and gone[0].get("SERVICE") == "wf-1",
              "Jenkins built the create job with the step's inputs, then the delete job",
              state["triggers"], made, gone)
        env_run = s.get("/v1/runs/" + done["steps"][0]["run_id"]).json()
        check(env_run["outputs"]["plan"]["add"] == 3, "the step added three resources",
              env_run["outputs"])
        undo = s.get("/v1/runs/" + done["steps"][4]["run_id"]).json()
        check(undo["outputs"]["plan"]["destroy"] == 3,
              "its undo destroyed the three from the same state", undo.get("outputs"))
        check(len(os.listdir(state_dir)) == 1, "one working directory for step and undo",
              os.listdir(state_dir))


if __name__ == "__main__":
    main(test)
