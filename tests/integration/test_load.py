#!/usr/bin/env python3
"""1,000 concurrent submissions -> 1,000 runs, none lost, none duplicated,
each executed once."""
import http.client
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402

N = 1000
THREADS = 20


def test():
    s = Stack("load")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "quick", ["/bin/cat"], {"type": "object"}, timeout_seconds=60)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=16)
        ids, errors = [], []
        lock = threading.Lock()

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            for i in range(k, N, THREADS):
                conn.request("POST", "/v1/actions/quick/runs", json.dumps({"inputs": {"i": i}}),
                             {"Authorization": "Bearer " + s.token,
                              "Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                with lock:
                    if r.status == 202:
                        ids.append(json.loads(body)["id"])
                    else:
                        errors.append((r.status, body))
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not errors, "every submission is accepted", errors[:3])
        check(len(ids) == N and len(set(ids)) == N, "1000 distinct runs", len(set(ids)))
        rows = s.sql("SELECT count(*) FROM gw_runs")
        check(rows == str(N), "1000 run rows", rows)
        for i in ids:
            st = s.wait_run(i, timeout=300)["status"]
            if st != "succeeded":
                check(False, "run %s succeeded" % i, st)
        check(True, "all 1000 runs succeeded")
        starts = s.sql("SELECT count(*), count(DISTINCT run_id) FROM gw_run_events"
                       " WHERE to_status = 'running'")
        check(starts == "%d|%d" % (N, N), "each run started exactly once", starts)


if __name__ == "__main__":
    main(test)
