#!/usr/bin/env python3
"""Delivery under failure: the broker killed between commit and publish, a
worker killed mid-run (fail with worker_lost, or retry when the action says
it may), and an action that overruns its timeout."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402

SLEEPER = r'''#!/usr/bin/env python3
import json, os, subprocess, sys, time
inputs = json.load(sys.stdin)
attempt = int(os.environ["GANGWAY_ATTEMPT"])
if inputs.get("grandchild_pidfile"):
    # A grandchild in the same process group: the timeout must kill it too.
    p = subprocess.Popen(["sleep", "300"])
    with open(inputs["grandchild_pidfile"], "w") as f:
        f.write(str(p.pid))
print("attempt", attempt, "sleeping", flush=True)
time.sleep(inputs["seconds"] if attempt == 1 else inputs.get("retry_seconds", 0))
print("done", flush=True)
'''


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test():
    s = Stack("delivery", broker_args=["--heartbeat", "1", "--heartbeat-timeout", "4"])
    actions = os.path.join(s.tmp, "actions")
    prog = s.write_program("sleeper.py", SLEEPER)
    schema = {"type": "object", "required": ["seconds"],
              "properties": {"seconds": {"type": "number"}, "retry_seconds": {"type": "number"},
                             "grandchild_pidfile": {"type": "string"}}}
    write_action(actions, "sleep", [prog], schema, timeout_seconds=120)
    write_action(actions, "sleep-retry", [prog], schema, timeout_seconds=120,
                 retry={"max_attempts": 2})
    write_action(actions, "sleep-short", [prog], schema, timeout_seconds=2)
    write_action(actions, "quick", ["/bin/cat"], {"type": "object"}, timeout_seconds=30)
    s.actions_dir = actions

    def restart_broker(faults=None):
        """SIGKILL the broker and start another, with GW_FAULTS=faults."""
        s.broker.kill()
        s.broker.wait()
        s.start_broker(extra_env={"GW_FAULTS": faults} if faults else None)

    def submit_quick(n):
        """n runs of `quick`: their ids and an SQL list of them."""
        ids = [s.submit("quick", {"n": i}).json()["id"] for i in range(n)]
        return ids, ",".join("'%s'" % i for i in ids)

    def started(inlist):
        """How many times the runs of `inlist` went to running."""
        return s.sql("SELECT count(*) FROM gw_run_events WHERE to_status = 'running'"
                     " AND run_id IN (%s)" % inlist)

    with s:
        # 1. Broker dies after commit, before publish.
        s.start_broker(extra_env={"GW_FAULTS": "relay_off"})
        ids, inlist = submit_quick(5)
        # The audit stream's rows (gangway.audit, written when entries are
        # sealed) come and go on their own; count the runs' rows.
        pending = s.sql("SELECT count(*) FROM gw_outbox WHERE topic NOT LIKE 'gangway.audit%'")
        check(pending == "5", "five runs committed with their outbox rows, none published", pending)
        restart_broker()
        s.start_worker(concurrency=4, extra_env={"GW_KAFKA_PROPS": "session.timeout.ms=6000"})
        for i in ids:
            run = s.wait_run(i)
            check(run["status"] == "succeeded", "run %s executes after the restart" % i[:8], run)
        once = started(inlist)
        check(once == "5", "each of them executed exactly once", once)
        check(s.sql("SELECT count(*) FROM gw_outbox WHERE topic NOT LIKE 'gangway.audit%'") == "0",
              "the outbox drained")

        # 1b. Eager publish (decision 0076): the broker commits runs with
        #     their rows leased to it and dies before producing them
        #     (GW_FAULTS=eager_drop, then SIGKILL). Nobody may send them
        #     while the lease holds; the next broker's relay must when it ends.
        restart_broker("eager_drop")
        t0 = time.time()
        ids, inlist = submit_quick(3)
        leased = s.sql("SELECT count(*) FROM gw_outbox WHERE payload -> 'data' ->> 'run_id' IN (%s)"
                       " AND lease_until > clock_timestamp() + interval '20 seconds'" % inlist)
        check(leased == "3", "eager: the runs' rows are committed leased to the broker that took them", leased)
        restart_broker()
        time.sleep(3)
        waiting = s.sql("SELECT count(*) FROM gw_runs WHERE status = 'queued' AND id IN (%s)" % inlist)
        check(waiting == "3", "eager: no relay takes a row while its lease holds", waiting)
        for i in ids:
            run = s.wait_run(i, timeout=60)
            check(run["status"] == "succeeded", "eager: run %s executes once the lease has ended" % i[:8], run)
        late = float(s.sql("SELECT extract(epoch FROM min(started_at)) FROM gw_runs WHERE id IN (%s)" % inlist))
        check(late - t0 >= 25, "eager: ... and not before (started %.1f s after the submits)" % (late - t0))
        once = started(inlist)
        check(once == "3", "eager: each executed exactly once", once)
        check(s.sql("SELECT count(*) FROM gw_outbox WHERE topic NOT LIKE 'gangway.audit%'") == "0",
              "eager: the outbox drained")

        # 1c. A batch that took more than 5 s to commit is not produced by
        #     its broker (a send could still be in flight when another relay
        #     may lease the row) but given back to the relay at once, not left
        #     to its 30 s lease (GW_FAULTS=eager_slow takes every batch as
        #     slow; chaos-pg-stop once left 123 runs waiting on the lease).
        restart_broker("eager_slow")
        t0 = time.time()
        ids, inlist = submit_quick(3)
        for i in ids:
            run = s.wait_run(i, timeout=60)
            check(run["status"] == "succeeded", "slow eager: run %s executes" % i[:8], run)
        took = time.time() - t0
        check(took < 15, "slow eager: ... without waiting for the lease (%.1f s after the submits)" % took)
        check(s.log("broker").count("the relay publishes its runs") >= 3,
              "slow eager: the broker said it gave each batch back to the relay")
        once = started(inlist)
        check(once == "3", "slow eager: each executed exactly once", once)
        restart_broker()

        # 2. Worker SIGKILLed mid-run, action not retryable -> failed, worker_lost.
        r = s.submit("sleep", {"seconds": 60}).json()
        s.wait_run(r["id"], until={"running"})
        time.sleep(0.5)
        s.workers[0].kill()
        s.workers[0].wait()
        lost = s.wait_run(r["id"], timeout=40)
        check(lost["status"] == "failed" and lost.get("reason") == "worker_lost",
              "a lost non-retryable run ends failed/worker_lost", lost)
        check(lost.get("needs_reconciliation") is True, "and is marked for reconciliation", lost)
        rec = "/v1/runs/%s/reconcile" % r["id"]
        nobody = s.make_token("nobody", teams=["x"])
        resp = s.post(rec, {"note": "checked the target: nothing was created"}, token=nobody)
        check(resp.status == 403, "only an operator may clear the flag", resp.status)
        resp = s.post(rec, {})
        check(resp.status == 422 and resp.json()["errors"][0]["pointer"] == "/note",
              "clearing needs a note of what was checked", resp.body)
        resp = s.post(rec, {"note": "checked the target: nothing was created"})
        check(resp.status == 200 and resp.json()["needs_reconciliation"] is False,
              "an operator clears the flag", resp.body)
        check(s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.reconciled' AND object = 'run:%s'"
                    % r["id"]) == "1", "with an audit entry")
        resp = s.post(rec, {"note": "again"})
        check(resp.status == 409 and resp.json()["code"] == "not_flagged", "once", resp.body)

        # 3. Retryable action: the reaper starts attempt 2 on another worker.
        s.start_worker(concurrency=4, extra_env={"GW_KAFKA_PROPS": "session.timeout.ms=6000"})
        r = s.submit("sleep-retry", {"seconds": 60, "retry_seconds": 0}).json()
        s.wait_run(r["id"], until={"running"}, timeout=60)
        time.sleep(0.5)
        s.workers[1].kill()
        s.workers[1].wait()
        s.start_worker(concurrency=4, extra_env={"GW_KAFKA_PROPS": "session.timeout.ms=6000"})
        done = s.wait_run(r["id"], timeout=90)
        check(done["status"] == "succeeded" and done["attempt"] == 2,
              "a lost retryable run succeeds on attempt 2", done)
        check(not done.get("needs_reconciliation"), "without a reconciliation flag", done)

        # 4. Timeout: the whole process group goes, the run is timed_out.
        pidfile = os.path.join(s.tmp, "grandchild.pid")
        r = s.submit("sleep-short", {"seconds": 300, "grandchild_pidfile": pidfile}).json()
        t = s.wait_run(r["id"], timeout=60)
        check(t["status"] == "timed_out", "an overrunning run is timed_out", t)
        pid = int(open(pidfile).read())
        deadline = time.time() + 10
        while alive(pid) and time.time() < deadline:
            time.sleep(0.1)
        check(not alive(pid), "its grandchild process is gone", pid)
        # 5. SIGSTOP beyond the heartbeat limit, then SIGCONT: the reaper
        #    starts attempt 2 elsewhere and the stale worker's late events
        #    for attempt 1 are ignored.
        for w in s.workers:
            if w.poll() is None:
                s.stop(w)
        props = {"GW_KAFKA_PROPS": "session.timeout.ms=6000"}
        w1 = s.start_worker(concurrency=2, extra_env=props)
        r = s.submit("sleep-retry", {"seconds": 8, "retry_seconds": 0}).json()
        s.wait_run(r["id"], until={"running"}, timeout=60)
        w2 = s.start_worker(concurrency=2, extra_env=props)
        time.sleep(1)
        w1.send_signal(signal.SIGSTOP)
        done = s.wait_run(r["id"], timeout=90)
        check(done["status"] == "succeeded" and done["attempt"] == 2,
              "a stopped worker's run is retried on another worker", done)
        w1.send_signal(signal.SIGCONT)
        time.sleep(12)  # attempt 1's program ends; the resumed worker reports it
        w1_log = s.log("worker%d" % (len(s.workers) - 2))
        check(('"run_id":"%s"' % r["id"]) in w1_log and "run succeeded" in w1_log,
              "the resumed worker did report attempt 1's result")
        late = s.sql("SELECT count(*) FROM gw_worker_events WHERE run_id = '%s' AND attempt = 1"
                     " AND kind IN ('succeeded', 'failed')" % r["id"])
        check(late == "0", "the resumed worker's late result for attempt 1 is ignored", late)
        after = s.get("/v1/runs/" + r["id"]).json()
        check(after["status"] == "succeeded" and after["attempt"] == 2,
              "the run still shows attempt 2's outcome", after)

        # 6. An event PostgreSQL refuses for good (a trigger of this test
        #    raises on its log line): the sink's batch fails, is applied
        #    again one event at a time, and only that event is dead-lettered
        #    (the sink merges queued batches; a split one must stay split).
        s.sql("CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
              " BEGIN IF NEW.line LIKE '%refuse-me%' THEN RAISE EXCEPTION 'refused by the test'; END IF;"
              " RETURN NEW; END $$;"
              "CREATE TRIGGER test_refuse BEFORE INSERT ON gw_worker_events"
              " FOR EACH ROW EXECUTE FUNCTION test_refuse();")

        def dead():
            m = re.search(r'^gangway_worker_events_total\{result="dead_lettered"\} (\d+)$',
                          s.get("/metrics").body.decode(), re.M)
            return int(m.group(1)) if m else -1
        before = dead()
        bad = s.submit("quick", {"n": "refuse-me"}).json()["id"]
        done = s.wait_run(bad, timeout=60)
        check(done["status"] == "succeeded", "the run of the refused event still ends (its other events apply)", done)
        lines = s.sql("SELECT count(*) FROM gw_worker_events WHERE run_id = '%s' AND kind = 'log'" % bad)
        check(lines == "0", "the refused log line is not stored", lines)
        check(dead() == before + 1, "exactly that one event is dead-lettered", dead() - before)
        good = s.submit("quick", {"n": "fine"}).json()["id"]
        ok = s.wait_run(good, timeout=60)
        check(ok["status"] == "succeeded" and s.sql(
            "SELECT count(*) FROM gw_worker_events WHERE run_id = '%s' AND kind = 'log'" % good) == "1",
            "the partition goes on with the next run's events", ok)
        s.sql("DROP TRIGGER test_refuse ON gw_worker_events; DROP FUNCTION test_refuse();")


if __name__ == "__main__":
    main(test)
