#!/usr/bin/env python3
"""The reaper republishes a run left queued too long only when its message
is lost, not while it waits in line (decision 0078), through a real broker,
PostgreSQL and Kafka:

- a run is accepted with no worker running: its message waits in the
  runs topic. With --requeue-after 2 the reaper used to publish it again
  every 2 s (a backlog of a million runs, all of it, every 2 s); now it
  sees that the workers' group has not consumed the topic and leaves it;
- the group's offsets are then moved to the end of the topic (an operator's
  offset reset: the message will never be consumed): the reaper republishes
  the run within a check period;
- a worker started then runs it, exactly once."""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import TOPICS_TOOL, Stack, check, main, need_services, write_action  # noqa: E402


def requeues(s, run):
    return int(s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.requeue' AND object = 'run:%s'" % run))


def test():
    need_services()
    actions = tempfile.mkdtemp(prefix="gw-requeue-actions-")
    write_action(actions, "hold", ["/bin/true"], timeout_seconds=30)
    with Stack("requeue", actions_dir=actions, broker_args=["--requeue-after", "2"]) as s:
        s.start_broker()
        topic, group = s.prefix + "gangway.runs.exec", s.prefix + "gangway-workers-exec"

        def backlog():
            deadline = time.time() + 30
            while True:
                p = subprocess.run([TOPICS_TOOL, s.kafka, "backlog", topic, group], capture_output=True,
                                   text=True, timeout=60)
                if p.returncode == 0 or time.time() > deadline:
                    break
                time.sleep(0.5)  # a new topic's leaders may still be moving
            check(p.returncode == 0, "the backlog of %s is known" % topic, p.stderr)
            return int(p.stdout)

        run = s.submit("hold", {}).json()["id"]
        deadline = time.time() + 20
        while backlog() < 1 and time.time() < deadline:
            time.sleep(0.2)
        check(backlog() == 1, "the run's message waits in the runs topic, not consumed by any worker")
        # Two backlog checks (every 10 s) and many sweeps past --requeue-after.
        time.sleep(14)
        check(s.get("/v1/runs/" + run).json()["status"] == "queued", "the run is still queued")
        n = requeues(s, run)
        check(n == 0, "no republish while the message waits in line (%d republished)" % n)

        p = subprocess.run([TOPICS_TOOL, s.kafka, "skip", topic, group], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, "the workers' group skips to the end of the topic (the message is lost)", p.stderr)
        check(backlog() == 0, "... so nothing waits for the workers")
        deadline = time.time() + 30
        while requeues(s, run) == 0 and time.time() < deadline:
            time.sleep(0.5)
        check(requeues(s, run) >= 1, "the reaper republishes the lost run (%.0f s left)" % (deadline - time.time()))
        check("backlog is not known" not in s.log("broker"), "every backlog check was answered")

        s.start_worker()
        done = s.wait_run(run, timeout=60)
        check(done["status"] == "succeeded", "a worker runs it", done)
        once = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'" % run)
        check(once == "1", "exactly once", once)


if __name__ == "__main__":
    main(test)
