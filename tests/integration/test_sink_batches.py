#!/usr/bin/env python3
"""The event sink's group commit across partitions (broker/sink.c), against
the real broker, PostgreSQL and Kafka. Worker events are produced here with
kcat, into chosen partitions of gangway.events, for runs claimed through
the API; a table lock held from psql stalls gw_apply_events meanwhile.

1. Two partitions' events are sent first and their calls stall on the lock;
   then six more partitions' events arrive. At most two calls are in flight
   (pg_stat_activity), and once the lock goes, the six partitions' events go
   in one call: every run succeeds with its log line, in at most four
   transactions (gangway_worker_event_batches_total), where one call per
   partition would take eight.
2. The same with a poisoned log line (a trigger raises on it) among the six
   partitions: the shared call fails, each partition's events go again
   alone, the poisoned one is split event by event, and only that event is
   dead-lettered; every run still succeeds and every other line is stored.
3. The function the sink calls renamed away (SQLSTATE 42883, a database
   that does not match the broker): no event is dead-lettered, the runs wait,
   and every event is applied once the function is back."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Stack, check, main, need_services, wait_for, write_action  # noqa: E402

WORKER = "w-sink"


def event(run_id, seq, kind, data):
    d = dict(data, run_id=run_id, attempt=1, seq=seq, worker_id=WORKER)
    return {"specversion": "1.0", "id": "%s/1/%d" % (run_id, seq),
            "source": "gangway/worker/" + WORKER, "type": "dev.gangway.run." + kind,
            "subject": run_id, "time": "2026-12-07T16:00:00.000Z",
            "datacontenttype": "application/json", "data": d}


def produce(s, partition, run_ids, line=lambda rid: "hello from " + rid):
    """started, one log line and succeeded for each run, into `partition`."""
    lines = []
    for rid in run_ids:
        for ev in (event(rid, 1, "started", {}),
                   event(rid, 2, "log", {"stream": "stdout", "line": line(rid)}),
                   event(rid, 3, "succeeded", {"outputs": {"ok": True}})):
            lines.append("%s\t%s" % (rid, json.dumps(ev, separators=(",", ":"))))
    p = subprocess.run(["kcat", "-P", "-b", s.kafka, "-t", s.prefix + "gangway.events",
                        "-p", str(partition), "-K", "\t"],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "kcat produced %d events into partition %d" % (len(lines), partition),
          p.stderr)


def metric(s, name):
    body = s.get("/metrics").body.decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
    check(m is not None, "/metrics has %s" % name, body[-2000:])
    return int(m.group(1))


def received(s):
    return metric(s, 'gangway_worker_events_total{result="received"}')


def waiting_applies(s):
    return int(s.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND wait_event_type = 'Lock' AND query LIKE '%gw_apply_events%'"))


def running_runs(s, n):
    ids = []
    for _ in range(n):
        r = s.submit("quick", {})
        check(r.status == 202, "run submitted", r.status, r.body)
        ids.append(r.json()["id"])
    for rid in ids:
        s.wait_run(rid, until={"queued"})
    r = s.post("/internal/v1/claims", {"worker_type": "exec", "claims": [
        {"run_id": rid, "attempt": 1, "worker_id": WORKER} for rid in ids]}, token=s.worker_token)
    check(r.status == 200 and all(c["status"] == 200 for c in r.json()["claims"]),
          "%d runs claimed" % n, r.status, r.body)
    return ids


def stalled_round(s, ids, line=lambda rid: "hello from " + rid):
    """ids: 16 runs, two per partition 0..7. Partitions 0 and 1 first, until
    their two calls wait on the lock; then 2..7 while they wait. Returns the
    transactions the sink committed for the round."""
    before = metric(s, "gangway_worker_event_batches_total")
    got = received(s)
    # gw_apply_events waits at its INSERT while SHARE is held.
    with s.lock_table("gw_worker_events", "SHARE"):
        produce(s, 0, ids[0:2], line)
        produce(s, 1, ids[2:4], line)
        wait_for("two apply calls waiting on the lock", lambda: waiting_applies(s) == 2)
        for p in range(2, 8):
            produce(s, p, ids[2 * p:2 * p + 2], line)
        wait_for("the sink received all 48 events", lambda: received(s) == got + 48)
        time.sleep(0.5)
        check(waiting_applies(s) == 2, "still two apply calls in flight, not one per partition",
              waiting_applies(s))
    for rid in ids:
        run = s.wait_run(rid, timeout=60)
        check(run["status"] == "succeeded", "run %s succeeded" % rid[:8], run["status"])
    return metric(s, "gangway_worker_event_batches_total") - before


def test():
    need_services()
    actions = tempfile.mkdtemp(prefix="gw-sink-actions-")
    write_action(actions, "quick", ["/bin/true"], timeout_seconds=600)
    s = Stack("sinkbatches", actions_dir=actions)
    with s:
        s.start_broker()
        parts = subprocess.run(["kcat", "-L", "-b", s.kafka, "-t", s.prefix + "gangway.events"],
                               capture_output=True, text=True, timeout=30).stdout
        check(len(re.findall(r"partition \d+,", parts)) == 8, "gangway.events has 8 partitions",
              parts)

        # 1. Six partitions' backlog in one transaction.
        ids = running_runs(s, 16)
        calls = stalled_round(s, ids)
        check(3 <= calls <= 4, "the round took 3 or 4 transactions: the two stalled, then the six"
              " partitions' backlog together (one per partition: 8)", calls)
        lines = s.sql("SELECT count(*) FROM gw_worker_events WHERE kind = 'log' AND line LIKE 'hello from %'")
        check(lines == "16", "every run's log line is stored", lines)

        # 2. A poisoned line among them: only that event is dead-lettered.
        s.sql("CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
              " IF NEW.line = 'POISON' THEN RAISE EXCEPTION 'poisoned line'; END IF; RETURN NEW; END $$;"
              "CREATE TRIGGER poison BEFORE INSERT ON gw_worker_events FOR EACH ROW EXECUTE FUNCTION poison()")
        ids2 = running_runs(s, 16)
        bad = ids2[10]  # partition 5
        dead_before = metric(s, 'gangway_worker_events_total{result="dead_lettered"}')
        stalled_round(s, ids2, line=lambda rid: "POISON" if rid == bad else "line of " + rid)
        log = s.log("broker")
        # Six partitions, or seven or eight when the first two partitions'
        # calls had taken only part of their events when the lock caught them.
        check(re.search(r"a batch from [678] partitions rejected, applying each partition's alone: "
                        r".*poisoned line", log),
              "the six partitions' call failed and each partition went again alone", log[-3000:])
        check(re.search(r"batch of 6 rejected, applying one by one: .*poisoned line", log),
              "the poisoned partition's 6 events were split", log[-3000:])
        check(metric(s, 'gangway_worker_events_total{result="dead_lettered"}') == dead_before + 1,
              "exactly one event dead-lettered")
        def dead_letters():
            dl = subprocess.run(["kcat", "-C", "-b", s.kafka, "-t", s.prefix + "gangway.deadletter",
                                 "-o", "beginning", "-e", "-q", "-f", "%s\n"],
                                capture_output=True, text=True, timeout=60).stdout
            return [json.loads(x) for x in dl.splitlines() if x.strip()]
        dead = wait_for("the dead letter in gangway.deadletter", dead_letters, timeout=30)
        check(len(dead) == 1 and "poisoned line" in dead[0]["reason"]
              and json.loads(dead[0]["payload"])["data"]["line"] == "POISON"
              and dead[0]["partition"] == 5,
              "the dead letter is the poisoned line, with the reason", dead)
        stored = s.sql("SELECT count(*) FROM gw_worker_events WHERE kind = 'log' AND line LIKE 'line of %'")
        check(stored == "15", "every other run's line is stored", stored)

        # 3. The database does not match the broker (the function the sink
        # calls is missing: SQLSTATE 42883): nothing is dead-lettered, the
        # sink waits, and carries on once the function is back.
        ids3 = running_runs(s, 4)
        dead_before = metric(s, 'gangway_worker_events_total{result="dead_lettered"}')
        mismatch = 'gangway_worker_event_apply_retries_total{reason="database_mismatch"}'
        mismatch_before = metric(s, mismatch)
        got = received(s)
        s.sql("ALTER FUNCTION gw_apply_events(jsonb) RENAME TO gw_apply_events_away")
        try:
            produce(s, 0, ids3[0:2], lambda rid: "late line of " + rid)
            produce(s, 3, ids3[2:4], lambda rid: "late line of " + rid)
            wait_for("the sink received the 12 events", lambda: received(s) == got + 12)
            wait_for("the broker says the database does not match it",
                     lambda: "the database does not match this broker" in s.log("broker")
                     and "42883" in s.log("broker"), timeout=30)
            time.sleep(2.5)  # more than a retry
            check(metric(s, 'gangway_worker_events_total{result="dead_lettered"}') == dead_before,
                  "nothing dead-lettered while the function is missing")
            states = s.sql("SELECT string_agg(DISTINCT status, ',') FROM gw_runs WHERE id IN (%s)"
                           % ",".join("'%s'" % r for r in ids3))
            check(states == "running", "the runs wait, still running", states)
            check(metric(s, mismatch) > mismatch_before, "the retries are counted as a mismatch")
        finally:
            s.sql("ALTER FUNCTION gw_apply_events_away(jsonb) RENAME TO gw_apply_events")
        for rid in ids3:
            run = s.wait_run(rid, timeout=60)
            check(run["status"] == "succeeded", "run %s succeeded once the function is back"
                  % rid[:8], run["status"])
        late = s.sql("SELECT count(*) FROM gw_worker_events WHERE kind = 'log' AND line LIKE 'late line of %'")
        check(late == "4", "every late line is stored", late)
        check(metric(s, 'gangway_worker_events_total{result="dead_lettered"}') == dead_before,
              "still nothing dead-lettered")


if __name__ == "__main__":
    main(test)
