#!/usr/bin/env python3
"""The terraform reconcile step (decision 0045), end to end with the real
Terraform CLI, broker, PostgreSQL and Kafka:

- a terraform worker is SIGKILLed right after `apply` succeeded and before
  its run.succeeded left (the test seam GW_TEST_DIE_AFTER_SUCCESS=create);
  the reaper fails the run `worker_lost` with needs_reconciliation and starts
  a reconcile step: a child run with operation `reconcile`, through Kafka;
- a new worker runs it: `plan -detailed-exitcode` against the same state
  finds nothing to do, the flag is cleared with a `run.reconciled` audit
  entry (actor gangway), and the operator's POST /v1/runs/{id}/reconcile
  then answers 409 not_flagged;
- a second run lost the same way whose state is gone before its reconcile
  step (so the resources would be created again) keeps its flag: the drift's
  plan summary (3 to add) is on the run as reconcile_drift, audited as
  `run.reconcile_drift`; the operator path still clears it.
Skipped (77) without services or without a terraform/tofu binary."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, need_terraform  # noqa: E402


def wait_for(what, cond, timeout=90):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.2)
    check(False, "%s (timed out after %ss; last %r)" % (what, timeout, last))


def flagged(s, run_id):
    r = s.get("/v1/runs/" + run_id).json()
    return r if r["status"] == "failed" and r.get("needs_reconciliation") and r.get("reconcile_run") else None


def workdir_of(state_dir, name):
    for d in os.listdir(state_dir):
        try:
            with open(os.path.join(state_dir, d, "gangway.auto.tfvars.json")) as f:
                if json.load(f).get("name") == name:
                    return os.path.join(state_dir, d)
        except OSError:
            pass
    check(False, "a working directory for %s" % name)


def audit(s, run_id, verb):
    return s.sql("SELECT actor || ' ' || coalesce(detail->>'result', '') || ' ' || coalesce(detail->>'reconcile_run', '')"
                 " FROM gw_audit_log WHERE verb = '%s' AND object = 'run:%s'" % (verb, run_id))


def test():
    binary = need_terraform()
    s = Stack("reconcile", broker_args=["--heartbeat", "1", "--heartbeat-timeout", "4"])
    state_dir = os.path.join(s.tmp, "tfstate")
    tf_env = {"GW_TERRAFORM_BIN": binary, "GW_TERRAFORM_STATE_DIR": state_dir}
    dying = dict(tf_env, GW_TEST_DIE_AFTER_SUCCESS="create")
    with s:
        s.start_broker()

        # 1. Lost between apply and its final event: state has everything.
        w1 = s.start_worker(concurrency=2, worker_type="terraform", extra_env=dying)
        r = s.submit("terraform-environment", {"name": "rec-one", "replicas": 2})
        check(r.status == 202, "submit rec-one", r.status, r.body)
        one = r.json()["id"]
        check(w1.wait(180) == -9, "the worker killed itself after the apply")
        check(os.path.exists(os.path.join(workdir_of(state_dir, "rec-one"), "terraform.tfstate")),
              "the apply had written its state")
        run = wait_for("rec-one failed worker_lost with the flag and a reconcile step",
                       lambda: flagged(s, one))
        check(run["reason"] == "worker_lost", "reason worker_lost", run)
        rec_one = run["reconcile_run"]
        child = s.get("/v1/runs/" + rec_one).json()
        check(child["operation"] == "reconcile" and child.get("parent_run") == one,
              "the reconcile step is a child run with operation reconcile", child)
        check(audit(s, one, "run.reconcile_started") == "gangway  " + rec_one,
              "its start is audited")

        # 2. A second one lost the same way, whose state is then lost too.
        w2 = s.start_worker(concurrency=2, worker_type="terraform", extra_env=dying)
        r = s.submit("terraform-environment", {"name": "rec-two", "replicas": 2})
        check(r.status == 202, "submit rec-two", r.status, r.body)
        two = r.json()["id"]
        check(w2.wait(180) == -9, "the second worker killed itself after its apply")
        run2 = wait_for("rec-two flagged with a reconcile step", lambda: flagged(s, two))
        rec_two = run2["reconcile_run"]
        wd = workdir_of(state_dir, "rec-two")
        for f in os.listdir(wd):
            if f.startswith("terraform.tfstate"):
                os.remove(os.path.join(wd, f))

        # 3. A healthy worker runs both reconcile steps (w2 may have run the first).
        s.start_worker(concurrency=2, worker_type="terraform", extra_env=tf_env)
        c1 = s.wait_run(rec_one, timeout=180)
        check(c1["status"] == "succeeded", "the first reconcile step succeeded", c1)
        check(c1["outputs"]["reconcile"] == {"changes": False}, "it found nothing to do", c1["outputs"])
        check(c1["outputs"]["plan"]["add"] == 0 and c1["outputs"]["plan"]["change"] == 0,
              "its plan summary is empty", c1["outputs"]["plan"])
        logs = [l["line"] for l in s.get("/v1/runs/%s/logs" % rec_one).json()["items"]]
        check(any("No changes" in l for l in logs), "terraform said no changes", logs[-5:])
        check(not any("Apply complete" in l for l in logs), "a reconcile step never applies")
        p1 = wait_for("rec-one's flag cleared",
                      lambda: (lambda x: x if not x.get("needs_reconciliation") else None)(
                          s.get("/v1/runs/" + one).json()))
        check(p1.get("reconciled_at") and p1["status"] == "failed", "reconciled_at set; the run stays failed", p1)
        check(audit(s, one, "run.reconciled") == "gangway no_changes " + rec_one,
              "one run.reconciled audit entry by gangway naming the step")
        r = s.post("/v1/runs/%s/reconcile" % one, {"note": "checked by hand"})
        check(r.status == 409 and r.json()["code"] == "not_flagged", "the operator path: 409 not_flagged now",
              r.status, r.body)

        c2 = s.wait_run(rec_two, timeout=180)
        check(c2["status"] == "succeeded" and c2["outputs"]["reconcile"] == {"changes": True},
              "the second reconcile step found changes", c2.get("outputs"))
        p2 = wait_for("rec-two's drift recorded",
                      lambda: (lambda x: x if x.get("reconcile_drift") else None)(s.get("/v1/runs/" + two).json()))
        check(p2["needs_reconciliation"] is True, "the flag stays on drift", p2)
        check(p2["reconcile_drift"]["add"] == 3, "the drift's plan summary is on the run", p2["reconcile_drift"])
        check(audit(s, two, "run.reconcile_drift") == "gangway changes " + rec_two, "the drift is audited")
        r = s.post("/v1/runs/%s/reconcile" % two, {"note": "recreated by hand"})
        check(r.status == 200 and r.json()["needs_reconciliation"] is False,
              "the operator path still clears it", r.status, r.body)
        check(s.sql("SELECT count(*) FROM gw_runs WHERE operation = 'reconcile'") == "2",
              "one reconcile step per lost run")


if __name__ == "__main__":
    main(test)
