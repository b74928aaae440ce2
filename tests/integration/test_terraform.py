#!/usr/bin/env python3
"""The terraform worker end to end: the example action terraform-environment
through the real broker, Kafka and `gangway worker --type terraform` with the
real CLI from deploy/install-terraform: apply with plan summary and outputs,
then DELETE of the resource runs the teardown (destroy) in the same state.
Skipped (77) without services or without a terraform/tofu binary."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, need_terraform  # noqa: E402

TOKEN = "tok-integration-secret-42"


def test():
    binary = need_terraform()
    s = Stack("terraform")
    state_dir = os.path.join(s.tmp, "tfstate")
    with s:
        s.start_broker()
        s.start_worker(concurrency=2, worker_type="terraform",
                       extra_env={"GW_TERRAFORM_BIN": binary, "GW_TERRAFORM_STATE_DIR": state_dir})

        r = s.submit("terraform-environment",
                     {"name": "pr-123", "replicas": 2, "labels": {"team": "payments"},
                      "api_token": TOKEN})
        check(r.status == 202, "submit is 202", r.status, r.body)
        run = s.wait_run(r.json()["id"], timeout=120)
        check(run["status"] == "succeeded", "the apply run succeeds", run)
        out = run.get("outputs") or {}
        check(out.get("plan", {}).get("add") == 3 and out["plan"]["destroy"] == 0,
              "the plan summary says 3 to add", out.get("plan"))
        check(out["plan"]["by_type"].get("terraform_data", {}).get("add") == 3,
              "summarised by resource type", out["plan"]["by_type"])
        check(len(out.get("plan_sha256", "")) == 64, "the applied plan's sha256 is reported", out)
        tf_out = out.get("outputs", {})
        check(tf_out.get("name") == "pr-123" and tf_out.get("replicas") == ["pr-123-0", "pr-123-1"],
              "terraform outputs come back", tf_out)
        check(tf_out.get("token_fingerprint") == "(sensitive value)", "sensitive outputs are redacted",
              tf_out)
        logs = s.get("/v1/runs/%s/logs" % run["id"]).json()["items"]
        lines = [l["line"] for l in logs]
        check(any("Apply complete! Resources: 3 added" in l for l in lines),
              "terraform's output is in the run's logs", lines[-5:])
        check(not any(TOKEN in l for l in lines), "the secret input never reaches a log line")
        check(TOKEN not in str(out), "nor the outputs")
        workdirs = os.listdir(state_dir)
        check(len(workdirs) == 1 and len(workdirs[0]) == 64, "one working directory for the resource",
              workdirs)

        res = s.get("/v1/resources?kind=environment").json()["items"]
        mine = [x for x in res if x["name"] == "pr-123"]
        check(len(mine) == 1 and mine[0]["status"] == "active", "the environment is an active resource",
              res)
        d = s.request("DELETE", "/v1/resources/" + mine[0]["id"])
        check(d.status == 202, "DELETE starts the teardown", d.status, d.body)
        td_id = d.json().get("teardown_run")
        check(td_id, "the teardown is a run", d.body)
        td = s.wait_run(td_id, timeout=120)
        check(td["status"] == "succeeded", "the teardown run succeeds", td)
        check(td.get("outputs", {}).get("plan", {}).get("destroy") == 3,
              "it destroyed the three resources from the same state", td.get("outputs"))
        tlogs = [l["line"] for l in s.get("/v1/runs/%s/logs" % td_id).json()["items"]]
        check(any("3 destroyed" in l for l in tlogs), "terraform says so", tlogs[-5:])
        check(os.listdir(state_dir) == workdirs, "in the same working directory", os.listdir(state_dir))


if __name__ == "__main__":
    main(test)
