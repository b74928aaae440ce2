#!/usr/bin/env python3
"""Group commit of accepts (docs/decisions/0049-group-commit.md) through the
real broker: concurrent submissions share gw_submit_runs calls, and each is
still answered on its own: one run per idempotency key even when both
requests land in one batch (a replay, or 409 for another body), a team quota
counted across the batch (429 for the rest), and one element that fails in
SQL fails alone (the batch is retried element by element). Then the crash
guarantee: a broker SIGKILLed while batches are in flight lost no request it
acknowledged (every 202'd id exists exactly once) and acknowledged none it did
not commit; a request cut off by the crash was either committed (its
Idempotency-Key replays it) or not (the same key creates it now)."""
import http.client
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402


def post(port, token, action, inputs, key=None, timeout=30):
    """One POST on its own connection: (status, headers, body) or an
    exception when the connection broke."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
        if key is not None:
            h["Idempotency-Key"] = key
        c.request("POST", "/v1/actions/%s/runs" % action, body=json.dumps({"inputs": inputs}), headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def together(calls):
    """Runs the calls at once (released by one barrier); their results in order."""
    out = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def one(i, f):
        gate.wait()
        try:
            out[i] = f()
        except Exception as e:  # noqa: BLE001 - recorded, judged by the caller
            out[i] = e
    ts = [threading.Thread(target=one, args=(i, f)) for i, f in enumerate(calls)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def metric(s, name):
    text = s.get("/metrics").body.decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def test_batches(s):
    token = s.token
    port = s.port
    before = metric(s, "gangway_submit_batched_runs_total")
    # 1. Many at once: they share calls; every one gets its own 202.
    res = together([lambda i=i: post(port, token, "quick", {"n": i}) for i in range(48)])
    codes = [r[0] if isinstance(r, tuple) else r for r in res]
    check(codes.count(202) == 48, "48 concurrent submissions are each accepted", codes)
    ids = {json.loads(r[2])["id"] for r in res}
    check(len(ids) == 48, "each got a run of its own")
    calls = metric(s, "gangway_submit_batches_total")
    check(metric(s, "gangway_submit_batched_runs_total") - before == 48 and calls < 48 + 10,
          "in fewer calls of gw_submit_runs than requests", calls)
    check(metric(s, "gangway_submit_batch_max") > 1, "some call carried several submissions",
          metric(s, "gangway_submit_batch_max"))
    check(s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.submit'") == "48",
          "one audit entry per run")
    check(s.sql("SELECT count(*) FROM gw_run_events e JOIN gw_runs r ON r.id = e.run_id"
                " WHERE r.action_id = 'quick'") == "96", "two events per run")

    # 2. One idempotency key, many requests at once: one run; the same body
    #    replays it, another body is 409.
    for rnd in range(3):
        key = "same-%d" % rnd
        res = together([lambda i=i: post(port, token, "quick", {"v": 1 if i < 8 else 2}, key=key)
                        for i in range(12)])
        runs = s.sql("SELECT count(*) FROM gw_runs WHERE idempotency_key = '%s'" % key)
        check(runs == "1", "round %d: twelve requests with one key stored one run" % rnd, runs)
        first = s.sql("SELECT request_hash FROM gw_runs WHERE idempotency_key = '%s'" % key)
        created = [r for r in res if r[0] == 202 and "idempotent-replayed" not in r[1]]
        replayed = [r for r in res if r[0] == 202 and "idempotent-replayed" in r[1]]
        conflicts = [r for r in res if r[0] == 409]
        check(len(created) == 1 and len(created) + len(replayed) + len(conflicts) == 12,
              "round %d: one 202 created, the others replayed or 409" % rnd,
              [r[0] for r in res], len(replayed))
        ids = {json.loads(r[2])["id"] for r in created + replayed}
        check(len(ids) == 1, "round %d: the replays return the run created" % rnd)
        check(len(conflicts) in (4, 8) and first is not None,
              "round %d: the other body's requests are 409 (4 or 8 of them, by which came first)" % rnd,
              len(conflicts))

    # 3. A team quota of 5 with 16 submissions at once: 5 accepted, 11 x 429.
    res = together([lambda i=i: post(port, token, "capped", {"n": i}) for i in range(16)])
    codes = sorted(r[0] for r in res)
    check(codes.count(202) == 5 and codes.count(429) == 11,
          "a team quota holds when its requests share batches", codes)
    check(s.sql("SELECT count(*) FROM gw_runs WHERE action_id = 'capped'") == "5", "five runs stored")
    check(s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'run.denied' AND object = 'action:capped'")
          == "11", "eleven refusals audited")

    # 4. One element fails in SQL (a trigger of the test refuses its input):
    #    only that request fails; the batch it came in is retried alone.
    s.sql("CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
          " IF NEW.inputs ->> 'poison' = 'yes' THEN RAISE EXCEPTION 'poisoned input'; END IF;"
          " RETURN NEW; END $$;"
          "CREATE TRIGGER poison BEFORE INSERT ON gw_runs FOR EACH ROW EXECUTE FUNCTION poison()")
    split0 = metric(s, "gangway_submit_batch_splits_total")
    for rnd in range(6):
        res = together([lambda i=i: post(port, token, "quick", {"poison": "yes" if i == 7 else "no",
                                                                  "r": rnd, "i": i})
                        for i in range(32)])
        codes = [r[0] if isinstance(r, tuple) else r for r in res]
        check(codes[7] == 500 and all(c == 202 for i, c in enumerate(codes) if i != 7),
              "round %d: only the poisoned request fails" % rnd, codes)
        check(s.sql("SELECT count(*) FROM gw_runs WHERE inputs ->> 'r' = '%d'" % rnd) == "31",
              "round %d: the 31 others are stored" % rnd)
        if metric(s, "gangway_submit_batch_splits_total") > split0:
            break
    check(metric(s, "gangway_submit_batch_splits_total") > split0,
          "the poisoned request shared a batch that was then retried element by element")
    s.sql("DROP TRIGGER poison ON gw_runs; DROP FUNCTION poison()")

    # The audit chain over all of it (entries of one batch share a txid).
    unsealed = "SELECT count(*) FROM gw_audit_log a WHERE NOT EXISTS (SELECT 1 FROM gw_audit_chain c" \
               " WHERE c.audit_id = a.id)"
    # The sealer takes only entries older than every open transaction of the
    # cluster (another database's long transaction holds it back): wait.
    deadline = time.time() + 120
    while s.sql(unsealed) != "0" and time.time() < deadline:
        s.sql("SELECT gw_audit_seal(100000)")  # the broker's sealer may hold the lock
        time.sleep(0.2)
    check(s.sql(unsealed) == "0", "every audit entry is sealed into the chain")
    bad = s.sql("SELECT count(*) FROM (SELECT seq, prev_hash, lag(hash) OVER (ORDER BY seq) AS want,"
                " audit_txid, audit_id, lag(audit_txid) OVER (ORDER BY seq) AS ptx,"
                " lag(audit_id) OVER (ORDER BY seq) AS pid FROM gw_audit_chain) c"
                " WHERE seq > 1 AND (prev_hash <> want OR (audit_txid, audit_id) <= (ptx, pid))")
    check(bad == "0", "each chain link holds the previous hash, in (txid, id) order", bad)


def test_crash(s):
    """SIGKILL with batches in flight, clients recording every answer."""
    port, token = s.port, s.token
    acked = {}      # key -> run id answered 202
    cut = set()     # keys whose request broke (connection error) or got 503
    lock = threading.Lock()
    stop = threading.Event()

    def client(c):
        i = 0
        while not stop.is_set():
            key = "crash-%d-%d" % (c, i)
            i += 1
            try:
                st, _, body = post(port, token, "quick", {"c": c, "i": i}, key=key, timeout=10)
            except (OSError, http.client.HTTPException):
                with lock:
                    cut.add(key)
                if stop.is_set():
                    return
                time.sleep(0.05)
                continue
            with lock:
                if st == 202:
                    acked[key] = json.loads(body)["id"]
                else:
                    cut.add(key)

    ts = [threading.Thread(target=client, args=(c,)) for c in range(24)]
    for t in ts:
        t.start()
    deadline = time.time() + 30
    while len(acked) < 300 and time.time() < deadline:
        time.sleep(0.05)
    check(len(acked) >= 300, "the load runs before the crash", len(acked))
    s.broker.send_signal(signal.SIGKILL)
    s.broker.wait()
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join()
    check(len(cut) > 0, "some requests were cut off by the crash", len(cut))
    s.start_broker()
    ids = list(acked.values())
    found = s.sql("SELECT count(*) FROM gw_runs WHERE id IN (%s)" % ",".join("'%s'" % i for i in ids))
    check(found == str(len(ids)), "every one of %d acknowledged runs exists after the restart" % len(ids), found)
    dup = s.sql("SELECT count(*) FROM (SELECT idempotency_key FROM gw_runs WHERE idempotency_key LIKE 'crash-%'"
                " GROUP BY 1 HAVING count(*) > 1) d")
    check(dup == "0", "and exactly once", dup)
    held = dict(line.split("|") for line in s.sql(
        "SELECT idempotency_key, id FROM gw_runs WHERE idempotency_key LIKE 'crash-%'").splitlines())
    wrong = [k for k, rid in acked.items() if held.get(k) != rid]
    check(not wrong, "each acknowledged key holds the run id its 202 named", wrong[:5])
    # A run exists for a cut-off request only if it committed: the retry with
    # its key says which (replayed = committed before the crash).
    stored = set(s.sql("SELECT idempotency_key FROM gw_runs WHERE idempotency_key LIKE 'crash-%'").split())
    replayed = created = 0
    wrong = []
    for key in sorted(cut):
        c, i = key.split("-")[1:]
        had = key in stored
        st, h, body = post(port, token, "quick", {"c": int(c), "i": int(i) + 1}, key=key)
        if st != 202:
            wrong.append((key, "retry answered %d: %s" % (st, body)))
        elif "idempotent-replayed" in h:
            replayed += 1
            if not had:
                wrong.append((key, "replayed a run that did not exist before the retry"))
        else:
            created += 1
            if had:
                wrong.append((key, "created again although a run existed"))
    check(not wrong, "the retry of every cut-off request replays it exactly when it had committed",
          wrong[:5])
    stored_before = len(stored)
    check(stored_before == len(acked) + replayed,
          "no run exists that was neither acknowledged nor committed-and-replayed",
          stored_before, len(acked), replayed)
    print("  crash: %d acknowledged, %d cut off (%d had committed, %d had not)"
          % (len(acked), len(cut), replayed, created), flush=True)


def test():
    s = Stack("groupcommit")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "quick", ["/bin/cat"], {"type": "object"}, timeout_seconds=30)
    write_action(actions, "capped", ["/bin/cat"], {"type": "object"}, timeout_seconds=30,
                 quota={"per_team": {"max_runs": 5, "window_seconds": 600}})
    s.actions_dir = actions
    with s:
        s.start_broker()
        test_batches(s)
        test_crash(s)


if __name__ == "__main__":
    main(test)
