#!/usr/bin/env python3
"""The tamper-evident audit trail (docs/decisions/0014-audit-hash-chain.md):
runs through a real broker are audited and sealed into the hash chain by the
broker's sealing rounds; `gangway audit verify` passes, then names the first
broken entry for every kind of tampering a database superuser can do behind
the triggers; GET /v1/audit filters and pages; only admins may read it; the
tables refuse UPDATE, DELETE and TRUNCATE; 200 concurrent submissions with
several sealers at once end in one valid chain that holds each entry once."""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Failure, Stack, check, main  # noqa: E402

BYPASS = "SET session_replication_role = replica; "


def verify(s, json_out=True):
    argv = [GANGWAY, "audit", "verify", "--pg", s.dsn] + (["--json"] if json_out else [])
    p = subprocess.run(argv, capture_output=True, text=True, env=s.env(), timeout=60)
    return p.returncode, p.stdout, p.stderr


def wait_sealed(s, timeout=60):
    """Until every entry is sealed (the broker seals on its reaper tick)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        rc, out, err = verify(s)
        if rc == 0:
            last = json.loads(out)
            if last["unsealed"] == 0:
                return last
        else:
            raise Failure("verify failed while waiting for sealing: %s %s" % (out, err))
        time.sleep(0.2)
    raise Failure("entries still unsealed after %ss: %s" % (timeout, last))


def expect_broken(s, what, seq, audit_id, kind):
    rc, out, err = verify(s)
    check(rc == 1, what + ": verify exits 1", rc, out, err)
    b = json.loads(out)["broken"]
    check(b["seq"] == seq and b["kind"] == kind and (audit_id is None or b["audit_id"] == audit_id),
          what + ": names seq %s (audit id %s) as %s" % (seq, audit_id, kind), b)
    rc, text, _ = verify(s, json_out=False)
    check(rc == 1 and ("at seq %s " % seq) in text and kind in text,
          what + ": the human message names it too", text)


def psql_fails(s, sql, what):
    try:
        s.sql(sql)
    except Failure as e:
        check("append-only" in str(e), what, str(e))
        return
    raise Failure(what + ": the statement succeeded")


def get_json(s, path, **kw):
    r = s.get(path, **kw)
    if r.status != 200:
        raise Failure("GET %s: %s %s" % (path, r.status, r.body))
    return r.json()


def test():
    s = Stack("audit")
    with s:
        s.start_broker()
        s.start_worker(concurrency=4)

        # Runs through the broker, plus a token created and revoked.
        ids = []
        for i in range(4):
            r = s.submit("echo", {"message": "audit %d" % i})
            check(r.status == 202, "submit %d is 202" % i, r.status, r.body)
            ids.append(r.json()["id"])
        for rid in ids:
            check(s.wait_run(rid)["status"] == "succeeded", "run %s succeeded" % rid[:8])
        p = subprocess.run([GANGWAY, "token", "create", "--subject", "ci-bot", "--pg", s.dsn],
                           capture_output=True, text=True, env=s.env(), timeout=30)
        tok_id = p.stderr.split()[1]
        p = subprocess.run([GANGWAY, "token", "revoke", tok_id, "--pg", s.dsn],
                           capture_output=True, text=True, env=s.env(), timeout=30)
        check(p.returncode == 0, "token revoked", p.stderr)
        verbs = s.sql("SELECT string_agg(verb, ',' ORDER BY id) FROM gw_audit_log"
                      " WHERE object = 'token:%s'" % tok_id)
        check(verbs == "token.create,token.revoke", "token creation and revocation are audited",
              verbs)
        detail = s.sql("SELECT detail::text FROM gw_audit_log WHERE verb = 'token.create'"
                       " AND object = 'token:%s'" % tok_id)
        check("token_hash" not in detail and len(detail) < 300, "the token's hash is not audited",
              detail)

        # Text the C verifier must encode exactly as jsonb does: quotes,
        # backslashes, control characters, non-ASCII, U+2028, nested detail.
        s.sql("INSERT INTO gw_audit_log (actor, verb, object, detail) VALUES"
              " (E'we\"ird\\\\ \\x01\\x1f\\t\\n\\r\\b\\f/', 'test.weird',"
              " E'x:\\u00e9\\u2028\\U0001F600',"
              " '{\"b\": [1, 2.50, 1e3, null, true], \"a\": {\"k\\\\\\\"\": \"\\\\u0001\\u00e9\"}}')")

        head = wait_sealed(s)
        total = int(s.sql("SELECT count(*) FROM gw_audit_log"))
        check(head["verified"] == total and total >= 4 * 3 + 2,
              "verify: every entry sealed and verified", head, total)
        rc, text, _ = verify(s, json_out=False)
        check(rc == 0 and ("%d entries verified, 0 not yet sealed" % total) in text,
              "verify exits 0 and counts", rc, text)
        dense = s.sql("SELECT min(seq) = 1 AND max(seq) = count(*) FROM gw_audit_chain")
        check(dense == "t", "seq is dense from 1")

        # ---- gangway audit list
        out = s.run_cmd([GANGWAY, "audit", "list", "--run", ids[0], "--pg", s.dsn, "--json"])
        rows = [json.loads(l) for l in out.splitlines()]
        check([r["verb"] for r in rows] == ["run.succeeded", "run.claim", "run.submit"] and
              all(len(r["hash"]) == 64 for r in rows), "audit list --run (json)", rows)
        out = s.run_cmd([GANGWAY, "audit", "list", "--action", "token.*", "--pg", s.dsn])
        check(out.count("token.create") == 3 and out.count("token.revoke") == 1,
              "audit list --action token.* (table)", out)

        # ---- GET /v1/audit
        page = get_json(s, "/v1/audit?run=" + ids[0])
        verbs = [e["verb"] for e in page["items"]]
        check(verbs == ["run.succeeded", "run.claim", "run.submit"],
              "run filter: that run's entries, newest first", verbs)
        e = page["items"][-1]
        check(isinstance(e["seq"], int) and len(e["hash"]) == 64 and len(e["prev_hash"]) == 64,
              "entries carry seq, hash and prev_hash", e)
        want = s.sql("SELECT hash || ' ' || prev_hash FROM gw_audit_chain WHERE audit_id = %d"
                     % e["id"])
        check(want == e["hash"] + " " + e["prev_hash"], "hash and prev_hash are the chain's")
        # The harness's token was created as "alice": actors are canonical.
        check(e["actor"] == "user:default/alice" and e["detail"]["inputs"]["message"] == "audit 0",
              "actor and detail shown", e)
        page = get_json(s, "/v1/audit?actor=user:default/alice&action=run.submit")
        check(len(page["items"]) == 4 and all(x["verb"] == "run.submit" and x["actor"] == "user:default/alice"
                                              for x in page["items"]),
              "actor + action filters", [(x["actor"], x["verb"]) for x in page["items"]])
        page = get_json(s, "/v1/audit?action=token.*")
        verbs = [x["verb"] for x in page["items"]]
        check(verbs == ["token.revoke"] + ["token.create"] * 3,
              "a verb family with .* (the harness's two tokens, ci-bot's create and revoke)", verbs)
        # Time window: since the first submit of run 1 (inclusive), until the
        # first entry about run 2 (exclusive).
        t1 = get_json(s, "/v1/audit?run=%s&action=run.submit" % ids[1])["items"][0]["at"]
        t2 = get_json(s, "/v1/audit?run=%s&action=run.submit" % ids[2])["items"][0]["at"]
        q = urllib.parse.urlencode({"since": t1, "until": t2, "action": "run.submit"})
        page = get_json(s, "/v1/audit?" + q)
        check([x["object"] for x in page["items"]] == ["run:" + ids[1]],
              "since is inclusive and until exclusive", [x["object"] for x in page["items"]])
        # Keyset pages cover everything once.
        seen, cursor, pages = [], None, 0
        while True:
            r = get_json(s, "/v1/audit?limit=3" + ("&cursor=" + cursor if cursor else ""))
            seen += [x["id"] for x in r["items"]]
            pages += 1
            cursor = r["next_cursor"]
            if cursor is None:
                break
        check(len(seen) == total and len(set(seen)) == total and seen == sorted(seen, reverse=True),
              "pages of 3 list every entry once, newest first (%d pages)" % pages, len(seen), total)
        for bad in ("run=nope", "limit=0", "limit=501", "cursor=abc", "since=yesterday",
                    "until=2026-13-45T99:00:00Z"):
            r = s.get("/v1/audit?" + bad)
            check(r.status == 400, "bad parameter %s is 400" % bad, r.status, r.body)
        viewer = s.make_token("carol", teams=["payments"])
        r = s.get("/v1/audit", token=viewer)
        check(r.status == 403 and r.json()["code"] == "forbidden", "a non-admin token gets 403",
              r.status, r.body)
        check(s.get("/v1/audit", auth=False).status == 401, "no token: 401")

        # ---- the database refuses changes without the bypass
        psql_fails(s, "UPDATE gw_audit_log SET actor = 'mallory' WHERE id = 1",
                   "UPDATE on gw_audit_log is refused")
        psql_fails(s, "DELETE FROM gw_audit_log WHERE id = 1", "DELETE on gw_audit_log is refused")
        psql_fails(s, "TRUNCATE gw_audit_log", "TRUNCATE on gw_audit_log is refused")
        psql_fails(s, "UPDATE gw_audit_chain SET hash = 'x' WHERE seq = 1",
                   "UPDATE on gw_audit_chain is refused")
        psql_fails(s, "DELETE FROM gw_audit_chain WHERE seq = 1",
                   "DELETE on gw_audit_chain is refused")
        psql_fails(s, "TRUNCATE gw_audit_chain", "TRUNCATE on gw_audit_chain is refused")

        # ---- tampering behind the triggers (restored after each case).
        # Stop the broker so nothing new is sealed while we tamper.
        s.stop(s.broker)
        for w in s.workers:
            s.stop(w)
        s.workers = []
        n = int(s.sql("SELECT max(seq) FROM gw_audit_chain"))
        k = n // 2  # a middle entry
        x = int(s.sql("SELECT audit_id FROM gw_audit_chain WHERE seq = %d" % k))
        y = int(s.sql("SELECT audit_id FROM gw_audit_chain WHERE seq = %d" % (k + 2)))

        # 1. one entry's detail changed
        orig = s.sql("SELECT detail::text FROM gw_audit_log WHERE id = %d" % x)
        s.sql(BYPASS + "UPDATE gw_audit_log SET detail = coalesce(detail, '{}') ||"
              " '{\"tampered\": true}' WHERE id = %d" % x)
        expect_broken(s, "detail changed", k, x, "content_changed")
        s.sql(BYPASS + "UPDATE gw_audit_log SET detail = %s WHERE id = %d"
              % ("NULL" if orig == "" else "'%s'::jsonb" % orig.replace("'", "''"), x))
        check(verify(s)[0] == 0, "restored: verify exits 0 again")

        # 1b. only the time moved by a microsecond
        s.sql(BYPASS + "UPDATE gw_audit_log SET at = at + interval '1 microsecond' WHERE id = %d"
              % x)
        expect_broken(s, "timestamp changed", k, x, "content_changed")
        s.sql(BYPASS + "UPDATE gw_audit_log SET at = at - interval '1 microsecond' WHERE id = %d"
              % x)

        # 2. an entry deleted
        saved = s.sql("SELECT row_to_json(a)::text FROM gw_audit_log a WHERE id = %d" % x)
        s.sql(BYPASS + "DELETE FROM gw_audit_log WHERE id = %d" % x)
        expect_broken(s, "entry deleted", k, x, "entry_missing")
        s.sql(BYPASS + "INSERT INTO gw_audit_log SELECT * FROM json_populate_record("
              "NULL::gw_audit_log, '%s')" % saved.replace("'", "''"))
        check(verify(s)[0] == 0, "restored: verify exits 0 again")

        # 3. two entries' contents swapped (reordered)
        swap = ("UPDATE gw_audit_log a SET at = b.at, actor = b.actor, verb = b.verb,"
                " object = b.object, detail = b.detail FROM (SELECT * FROM gw_audit_log"
                " WHERE id IN (%d, %d)) b WHERE a.id IN (%d, %d) AND b.id <> a.id" % (x, y, x, y))
        s.sql(BYPASS + swap)
        expect_broken(s, "two entries swapped", k, x, "reordered")
        s.sql(BYPASS + swap)
        check(verify(s)[0] == 0, "swapped back: verify exits 0 again")

        # 4. a hash in the chain changed (triggers disabled the other way)
        h = s.sql("SELECT hash FROM gw_audit_chain WHERE seq = %d" % k)
        s.sql("ALTER TABLE gw_audit_chain DISABLE TRIGGER ALL; UPDATE gw_audit_chain SET hash ="
              " repeat('a', 64) WHERE seq = %d; ALTER TABLE gw_audit_chain ENABLE TRIGGER ALL" % k)
        expect_broken(s, "chain hash changed", k, x, "hash_altered")
        # ... and the next link re-pointed to it: now the entry itself no longer matches
        s.sql(BYPASS + "UPDATE gw_audit_chain SET prev_hash = repeat('a', 64) WHERE seq = %d"
              % (k + 1))
        expect_broken(s, "chain hash and next link changed", k, x, "content_changed")
        s.sql(BYPASS + "UPDATE gw_audit_chain SET hash = '%s' WHERE seq = %d;"
              " UPDATE gw_audit_chain SET prev_hash = '%s' WHERE seq = %d" % (h, k, h, k + 1))
        check(verify(s)[0] == 0, "restored: verify exits 0 again")

        # 5. a link broken: prev_hash of one chain row changed
        s.sql(BYPASS + "UPDATE gw_audit_chain SET prev_hash = repeat('b', 64) WHERE seq = %d" % k)
        expect_broken(s, "prev_hash changed", k, x, "chain_link_broken")
        prev = s.sql("SELECT hash FROM gw_audit_chain WHERE seq = %d" % (k - 1))
        s.sql(BYPASS + "UPDATE gw_audit_chain SET prev_hash = '%s' WHERE seq = %d" % (prev, k))

        # 6. a chain row deleted
        saved = s.sql("SELECT row_to_json(c)::text FROM gw_audit_chain c WHERE seq = %d" % k)
        s.sql(BYPASS + "DELETE FROM gw_audit_chain WHERE seq = %d" % k)
        expect_broken(s, "chain row deleted", k, None, "chain_entry_missing")
        s.sql("INSERT INTO gw_audit_chain SELECT * FROM json_populate_record("
              "NULL::gw_audit_chain, '%s')" % saved.replace("'", "''"))

        # 7. an entry slipped in behind the sealer (forged old txid)
        s.sql("INSERT INTO gw_audit_log (id, at, actor, verb, object, txid) VALUES"
              " (-1, now(), 'mallory', 'run.submit', 'run:forged', '1')")
        rc, out, _ = verify(s)
        b = json.loads(out).get("broken", {})
        check(rc == 1 and b.get("kind") == "entry_outside_chain" and b.get("audit_id") == -1,
              "an entry inserted behind the chain head is named", rc, out)
        s.sql(BYPASS + "DELETE FROM gw_audit_log WHERE id = -1")
        check(verify(s)[0] == 0, "all restored: verify exits 0")

        # ---- concurrency: 200 submissions at once, four extra sealers racing
        # the broker's; every entry sealed exactly once in one valid chain.
        s.start_broker()
        stop = threading.Event()

        def sealer():
            while not stop.is_set():
                subprocess.run(["psql", s.dsn, "-Atqc", "SELECT gw_audit_seal(7)"],
                               capture_output=True, timeout=30)

        def submitter(i, out):
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
            c.request("POST", "/v1/actions/echo/runs", json.dumps({"inputs": {"message": "c%d" % i}}),
                      {"Authorization": "Bearer " + s.token, "Content-Type": "application/json"})
            out[i] = c.getresponse().status
            c.close()

        sealers = [threading.Thread(target=sealer) for _ in range(4)]
        for t in sealers:
            t.start()
        statuses = [None] * 200
        subs = [threading.Thread(target=submitter, args=(i, statuses)) for i in range(200)]
        for t in subs:
            t.start()
        for t in subs:
            t.join()
        stop.set()
        for t in sealers:
            t.join()
        check(statuses.count(202) == 200, "200 concurrent submissions accepted",
              {x: statuses.count(x) for x in set(statuses)})
        head = wait_sealed(s)
        total = int(s.sql("SELECT count(*) FROM gw_audit_log"))
        stats = s.sql("SELECT count(*) || ' ' || count(DISTINCT audit_id) || ' ' || max(seq)"
                      " FROM gw_audit_chain")
        check(stats == "%d %d %d" % (total, total, total) and head["verified"] == total,
              "every entry sealed exactly once, seq dense (%d entries)" % total, stats, head)


if __name__ == "__main__":
    main(test)
