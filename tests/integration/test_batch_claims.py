#!/usr/bin/env python3
"""Batch claims (POST /internal/v1/claims, docs/decisions/0053) against the
real broker, PostgreSQL and Kafka:

- a batch mixing queued runs, an unknown run, a stale attempt and a run
  claimed twice: one entry per claim in request order, each what the single
  endpoint says (200 with the claim document, 404 run_not_found, 409
  claim_refused with its detail), the granted runs running in PostgreSQL;
- a malformed batch (bad uuid, missing field, unknown field, empty, not an
  array) is 400 invalid_claim with the pointer at fault, and claims nothing;
- a user token gets 403;
- a worker started with a backlog claims it in batches (its stop line
  counts claim_batches) and every run succeeds."""
import os
import re
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Stack, check, main, need_services, write_action  # noqa: E402


def test():
    need_services()
    actions = tempfile.mkdtemp(prefix="gw-batch-actions-")
    write_action(actions, "quick", ["/bin/true"], timeout_seconds=60)
    s = Stack("batchclaims", actions_dir=actions)
    with s:
        s.start_broker()
        ids = []
        for _ in range(4):
            r = s.submit("quick", {})
            check(r.status == 202, "run submitted", r.status, r.body)
            ids.append(r.json()["id"])
        for rid in ids:
            s.wait_run(rid, until={"queued"})
        w = s.worker_token

        def claims(body, token=w):
            return s.post("/internal/v1/claims", body, token=token)

        unknown = str(uuid.uuid4())
        batch = [
            {"run_id": ids[0], "attempt": 1, "worker_id": "w-a"},
            {"run_id": unknown, "attempt": 1, "worker_id": "w-a"},
            {"run_id": ids[1], "attempt": 2, "worker_id": "w-a"},
            {"run_id": ids[2], "attempt": 1, "worker_id": "w-b"},
            {"run_id": ids[2], "attempt": 1, "worker_id": "w-c"},
        ]
        r = claims({"worker_type": "exec", "claims": batch})
        check(r.status == 200, "a mixed batch: 200", r.status, r.body)
        got = r.json()["claims"]
        check([e["run_id"] for e in got] == [c["run_id"] for c in batch],
              "one entry per claim, in request order", got)
        check(got[0]["status"] == 200 and got[0]["claim"]["run_id"] == ids[0]
              and got[0]["claim"]["attempt"] == 1 and "heartbeat_interval_seconds" in got[0]["claim"]
              and got[0]["claim"]["action"]["id"] == "quick",
              "a queued run: granted with the claim document", got[0])
        check(got[1]["status"] == 404 and got[1]["code"] == "run_not_found", "an unknown run: 404", got[1])
        check(got[2]["status"] == 409 and got[2]["detail"] == "stale_attempt",
              "a wrong attempt: 409 stale_attempt", got[2])
        check(got[3]["status"] == 200, "the first claim of a run twice in a batch is granted", got[3])
        check(got[4]["status"] == 409 and got[4]["detail"] == "already_claimed",
              "the second, by another worker, is already_claimed", got[4])
        st = s.sql("SELECT string_agg(status || ':' || coalesce(worker_id, '-'), ',' ORDER BY created_at) "
                   "FROM gw_runs")
        check(st == "running:w-a,queued:-,running:w-b,queued:-", "PostgreSQL agrees", st)
        # The same worker asking again (a lost reply) is granted again.
        r = claims({"worker_type": "exec", "claims": [batch[0]]})
        check(r.status == 200 and r.json()["claims"][0]["status"] == 200, "a repeated claim is regranted",
              r.body)

        # Malformed batches claim nothing.
        bad = [
            ({"worker_type": "exec", "claims": [{"run_id": "nope", "attempt": 1, "worker_id": "x"}]},
             "/claims/0/run_id"),
            ({"worker_type": "exec", "claims": [{"run_id": ids[3], "attempt": 1, "worker_id": "x"},
                                                {"run_id": ids[3], "attempt": 0, "worker_id": "x"}]},
             "/claims/1/attempt"),
            ({"worker_type": "exec", "claims": [{"run_id": ids[3], "attempt": 1}]}, "/claims/0"),
            ({"worker_type": "exec", "claims": [], }, "/claims"),
            ({"worker_type": "exec", "claims": {}}, "/claims"),
            ({"claims": [{"run_id": ids[3], "attempt": 1, "worker_id": "x"}]}, "/worker_type"),
            ({"worker_type": "exec", "claims": [], "extra": 1}, "/extra"),
        ]
        for body, pointer in bad:
            r = claims(body)
            j = r.json() if r.body else {}
            check(r.status == 400 and j.get("code") == "invalid_claim"
                  and r.headers.get("content-type", "").startswith("application/problem+json")
                  and j.get("errors", [{}])[0].get("pointer") == pointer,
                  "malformed batch refused at %s" % pointer, r.status, r.body)
        check(s.sql("SELECT status FROM gw_runs WHERE id = '%s'" % ids[3]) == "queued",
              "a malformed batch claimed nothing")
        r = claims({"worker_type": "exec", "claims": [batch[0]]}, token=s.token)
        check(r.status in (200, 403), "(admin tokens may claim)", r.status)
        user = s.make_token("bob", teams=["payments"])
        r = claims({"worker_type": "exec", "claims": [batch[0]]}, token=user)
        check(r.status == 403, "a user token: 403", r.status, r.body)

        # A worker with a backlog claims in batches.
        backlog = []
        for _ in range(40):
            r = s.submit("quick", {})
            backlog.append(r.json()["id"])
        worker = s.start_worker(concurrency=16)
        for rid in backlog:
            run = s.wait_run(rid, timeout=120)
            check(run["status"] == "succeeded", "backlog run succeeded", run)
        rc = s.stop(worker)
        check(rc == 0, "the worker stops cleanly", rc)
        m = re.search(r"claim_calls=(\d+) claim_batches=(\d+)", s.log("worker0"))
        check(m is not None and int(m.group(2)) >= 1 and int(m.group(1)) < 44,
              "the worker claimed in batches (fewer calls than runs)", m and m.group(0))


if __name__ == "__main__":
    main(test)
