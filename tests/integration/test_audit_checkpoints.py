#!/usr/bin/env python3
"""Signed audit checkpoints, the SIEM stream and retention (docs/audit.md,
decisions 0046-0048), against a real broker, PostgreSQL and Kafka:

- the broker signs the chain head and publishes each checkpoint to
  gangway.audit.checkpoints (and its log); `gangway audit verify
  --checkpoints kafka|FILE` accepts an intact chain;
- a forged checkpoint (bad signature, unknown key) and one removed from the
  middle (broken link) are reported;
- key rotation: after a restart with a new key, checkpoints carry its id and
  both keys together verify everything, one alone does not;
- gangway.audit carries every sealed entry once (after dedupe by seq) in a
  gap-free hash chain, even with the broker SIGKILLed mid-burst;
- the table owner cutting the tail with the triggers off, or rewriting the
  whole chain, fools plain verify but not verify --checkpoints;
- archive + prune: the archive proves itself, a tampered archive does not,
  and what remains verifies from the anchor against the same checkpoints.
"""
import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Failure, Stack, check, dsn_with_db, main  # noqa: E402

BYPASS = "SET session_replication_role = replica; "


def keygen(s, name):
    priv = os.path.join(s.tmp, name + ".pem")
    pub = os.path.join(s.tmp, name + ".pub.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", priv], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return priv, pub


def verify(s, *args, dsn=None):
    argv = [GANGWAY, "audit", "verify", "--pg", dsn or s.dsn, "--json"] + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, env=s.env(), timeout=120)
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        raise Failure("verify printed no JSON: %r %r" % (p.stdout, p.stderr))
    return p.returncode, out, p.stderr


def expect_ok(s, what, *args, dsn=None):
    rc, out, err = verify(s, *args, dsn=dsn)
    check(rc == 0 and out and out["ok"], what + ": verify exits 0", rc, out, err)
    return out


def expect_broken(s, what, kind, *args, dsn=None):
    rc, out, err = verify(s, *args, dsn=dsn)
    check(rc == 1 and out and out["broken"]["kind"] == kind,
          what + ": verify exits 1 naming " + kind, rc, out, err)
    return out["broken"]


def kcat(s, topic):
    p = subprocess.run(["kcat", "-C", "-b", s.kafka, "-t", s.prefix + topic, "-o", "beginning",
                        "-e", "-q"], capture_output=True, text=True, timeout=120)
    return [line for line in p.stdout.splitlines() if line.strip()]


def head(s):
    return int(s.sql("SELECT coalesce(max(seq), 0) FROM gw_audit_chain"))


def wait_for(what, cond, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.3)
    raise Failure("timed out waiting: " + what)


def settle(s, key_id=None):
    """Until every entry is sealed, the head has a checkpoint (by key_id if
    given), and the outbox has been relayed to Kafka."""
    def done():
        unsealed = int(s.sql("SELECT count(*) FROM gw_audit_log a WHERE NOT EXISTS"
                             " (SELECT 1 FROM gw_audit_chain c WHERE c.audit_id = a.id)"))
        if unsealed:
            return False
        row = s.sql("SELECT seq || ' ' || key_id FROM gw_audit_checkpoints ORDER BY id DESC LIMIT 1")
        if not row or int(row.split()[0]) != head(s) or (key_id and row.split()[1] != key_id):
            return False
        return s.sql("SELECT count(*) FROM gw_outbox") == "0"
    wait_for("sealed, checkpointed and relayed", done)


def submit_runs(s, n, tag):
    ids = []
    for i in range(n):
        r = s.submit("echo", {"message": "%s %d" % (tag, i)})
        check(r.status == 202, "submit %s %d" % (tag, i), r.status, r.body)
        ids.append(r.json()["id"])
    for rid in ids:
        s.wait_run(rid)
    return ids


def sign_with(priv, cp):
    """A checkpoint re-signed by `priv` through openssl (key id as given)."""
    text = ('{"format":"gangway.audit.checkpoint/1","seq":%d,"hash":"%s","time":"%s",'
            '"prev":"%s","key_id":"%s"}' % (cp["seq"], cp["hash"], cp["time"], cp["prev"],
                                             cp["key_id"]))
    path = priv + ".msg"
    with open(path, "w") as f:
        f.write(text)  # Ed25519 signs in one shot: openssl wants a file, not a pipe
    p = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", priv, "-in", path],
                       capture_output=True, check=True)
    import base64
    cp = dict(cp)
    cp["sig"] = base64.b64encode(p.stdout).decode()
    return cp


def write_lines(path, objs):
    with open(path, "w") as f:
        for o in objs:
            f.write(json.dumps(o) + "\n")
    return path


def clone(s, name):
    """A copy of the test's database (the broker is stopped) to tamper with."""
    db = "%s_%s" % (s.db, name)
    s.psql_admin("CREATE DATABASE %s TEMPLATE %s" % (db, s.db))
    return db, dsn_with_db(s.pg_admin, db)


class Hooks(http.server.BaseHTTPRequestHandler):
    """Records every webhook POSTed to it (server.received)."""
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append((self.headers.get("X-Gangway-Event"), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def do_GET(self):
        """Serves server.served as JSON lines (a checkpoint URL)."""
        body = "".join(json.dumps(c) + "\n" for c in self.server.served).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test():
    s = Stack("auditcp")
    clones = []
    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    hooks.received = []
    hooks.served = []
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        with s:
            key_a, pub_a = keygen(s, "a")
            key_b, pub_b = keygen(s, "b")
            env_a = {"GW_AUDIT_SIGNING_KEY": key_a, "GW_AUDIT_CHECKPOINT_INTERVAL_S": "1",
                     "GW_AUDIT_CHECKPOINT_ENTRIES": "4", "GW_AUDIT_CHECKPOINT_WEBHOOK": "1",
                     "GW_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % hooks.server_address[1]}
            s.start_broker(env_a)
            s.start_worker(concurrency=4)

            # ---- checkpoints are signed and published
            for round_ in range(3):
                submit_runs(s, 2, "round%d" % round_)
                settle(s)
            rows = s.sql("SELECT count(*) || ' ' || count(DISTINCT key_id) FROM gw_audit_checkpoints")
            n_cp, n_keys = map(int, rows.split())
            check(n_cp >= 3 and n_keys == 1, "several checkpoints, one key", rows)
            key_a_id = s.sql("SELECT key_id FROM gw_audit_checkpoints LIMIT 1")
            check("audit checkpoint {" in s.log("broker") and key_a_id in s.log("broker"),
                  "each checkpoint is also a log line")
            lines = kcat(s, "gangway.audit.checkpoints")
            cps = [json.loads(line) for line in lines]
            check(len(cps) >= n_cp and all(c["format"] == "gangway.audit.checkpoint/1" for c in cps),
                  "every checkpoint is on gangway.audit.checkpoints", len(cps), n_cp)
            check(all(cps[i]["prev"] == cps[i - 1]["checkpoint_hash"] for i in range(1, len(cps)))
                  and cps[0]["prev"] == "0" * 64, "each links to the one before")
            out = expect_ok(s, "kafka", "--checkpoints", "kafka", "--public-key", pub_a)
            check(out["checkpoints"]["verified"] >= 3 and out["checkpoints"]["latest"]["seq"] ==
                  out["head"]["seq"], "verify read the checkpoints from Kafka", out)
            cpfile = write_lines(os.path.join(s.tmp, "cps.jsonl"), cps)
            expect_ok(s, "file", "--checkpoints", cpfile, "--public-key", pub_a)
            hooks.served = cps
            url = "http://127.0.0.1:%d/checkpoints" % hooks.server_address[1]
            out = expect_ok(s, "URL", "--checkpoints", url, "--public-key", pub_a)
            check(out["checkpoints"]["verified"] == len(cps), "all read from the URL", out)
            hooks.served = cps[:1] + cps[2:]
            expect_broken(s, "a URL missing a checkpoint", "checkpoint_missing", "--checkpoints",
                          url, "--public-key", pub_a)
            hooked = wait_for("checkpoint webhooks", lambda: [
                b for kind, b in hooks.received if kind == "audit.checkpoint"
                and b["checkpoint_hash"] == cps[-1]["checkpoint_hash"]] and
                [b for kind, b in hooks.received if kind == "audit.checkpoint"])
            check(len(hooked) >= 3 and all(b["type"] == "audit.checkpoint" and b["text"] and
                                           b["sig"] in [c["sig"] for c in cps] for b in hooked),
                  "each checkpoint is also a webhook (same signature)", hooked[:1])
            schema = os.path.join(SRC, "schemas", "events", "audit.checkpoint.schema.json")
            s.run_cmd([GANGWAY, "schema", "validate", "--format-assert", schema,
                       write_lines(os.path.join(s.tmp, "cp0.json"), cps[:1])])

            # The same verdict from the API, for the console (admins only).
            r = s.get("/v1/admin/audit/verify")
            check(r.status == 200 and r.json()["ok"] and
                  r.json()["checkpoints"]["verified"] == out["checkpoints"]["verified"],
                  "GET /v1/admin/audit/verify: ok, against the same checkpoints", r.status, r.body)
            bob = s.make_token("bob", teams=["payments"])
            r = s.get("/v1/admin/audit/verify", token=bob)
            check(r.status == 403 and r.json()["code"] == "forbidden", "not for a non-admin",
                  r.status, r.body)
            r = s.get("/v1/admin/audit/verify?checkpoints=file")
            check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/checkpoints",
                  "a bad checkpoints parameter is named", r.status, r.body)
            rc, text, _ = (lambda p: (p.returncode, p.stdout, p.stderr))(subprocess.run(
                [GANGWAY, "audit", "verify", "--pg", s.dsn, "--checkpoints", cpfile,
                 "--public-key", pub_a], capture_output=True, text=True, env=s.env(), timeout=60))
            check(rc == 0 and "signed checkpoints agree" in text, "the human summary", text)

            # ---- forged and removed checkpoints
            forged = dict(cps[1])
            forged["hash"] = "f" * 64
            b = expect_broken(s, "a changed checkpoint", "checkpoint_bad_signature", "--checkpoints",
                              write_lines(os.path.join(s.tmp, "forged.jsonl"),
                                          cps[:1] + [forged] + cps[2:]), "--public-key", pub_a)
            check(b["seq"] == forged["seq"], "names the forged checkpoint's seq", b)
            by_b = sign_with(key_b, dict(cps[-1], key_id=key_a_id))
            expect_broken(s, "a checkpoint signed with another key under A's id",
                          "checkpoint_bad_signature", "--checkpoints",
                          write_lines(os.path.join(s.tmp, "wrongkey.jsonl"), cps[:-1] + [by_b]),
                          "--public-key", pub_a)
            unknown = dict(cps[-1], key_id="0123456789abcdef")
            expect_broken(s, "an unknown key id", "checkpoint_unknown_key", "--checkpoints",
                          write_lines(os.path.join(s.tmp, "unknown.jsonl"), cps[:-1] + [unknown]),
                          "--public-key", pub_a)
            b = expect_broken(s, "a checkpoint removed from the middle", "checkpoint_missing",
                              "--checkpoints",
                              write_lines(os.path.join(s.tmp, "gap.jsonl"), cps[:1] + cps[2:]),
                              "--public-key", pub_a)
            check(b["seq"] == cps[2]["seq"], "names the checkpoint after the gap", b, cps[2]["seq"])
            rc, out, err = verify(s, "--checkpoints", cpfile)
            check(rc == 2 and "--public-key" in err, "--checkpoints without a key: usage error",
                  rc, err)
            rc, out, err = verify(s, "--checkpoints", cpfile, "--public-key", cpfile)
            check(rc == 2 and "no PEM" in err, "a file that is no key: clear usage error", rc, err)
            with open(os.path.join(s.tmp, "bad.jsonl"), "w") as f:
                f.write(lines[0] + "\n{\"format\": 1}\n")
            expect_broken(s, "a malformed checkpoint line", "checkpoint_malformed", "--checkpoints",
                          os.path.join(s.tmp, "bad.jsonl"), "--public-key", pub_a)

            # ---- key rotation
            s.stop(s.broker)
            env_b = dict(env_a, GW_AUDIT_SIGNING_KEY=key_b, GW_AUDIT_VERIFY_KEYS=pub_a)
            s.start_broker(env_b)
            key_b_id = s.run_cmd(["sh", "-c", "openssl pkey -pubin -in %s -outform DER | tail -c 32"
                                  " | sha256sum | cut -c1-16" % pub_b]).strip()
            submit_runs(s, 2, "rotated")
            settle(s, key_id=key_b_id)
            ids = s.sql("SELECT string_agg(DISTINCT key_id, ',') FROM gw_audit_checkpoints")
            check(sorted(ids.split(",")) == sorted([key_a_id, key_b_id]),
                  "checkpoints after the rotation carry the new key id", ids, key_b_id)
            expect_ok(s, "both keys", "--checkpoints", "kafka", "--public-key", pub_a,
                      "--public-key", pub_b)
            expect_broken(s, "the old key only", "checkpoint_unknown_key", "--checkpoints", "kafka",
                          "--public-key", pub_a)
            expect_broken(s, "the new key only", "checkpoint_unknown_key", "--checkpoints", "kafka",
                          "--public-key", pub_b)
            r = s.get("/v1/admin/audit/verify")
            check(r.status == 200 and r.json()["ok"] and
                  r.json()["checkpoints"]["latest"]["key_id"] == key_b_id,
                  "the API knows the retired key too (GW_AUDIT_VERIFY_KEYS)", r.status, r.body)

            # ---- the SIEM stream survives a SIGKILL mid-burst
            done_ids, errors = [], []

            def burst():
                # Its own connections (the Stack's is the main thread's), and
                # an Idempotency-Key so a retry after the kill is the same run.
                for i in range(40):
                    deadline = time.time() + 120
                    while True:
                        req = urllib.request.Request(
                            s.url + "/v1/actions/echo/runs", method="POST",
                            data=json.dumps({"inputs": {"message": "burst %d" % i}}).encode(),
                            headers={"Content-Type": "application/json",
                                     "Authorization": "Bearer " + s.token,
                                     "Idempotency-Key": "%s-burst-%d" % (s.db, i)})
                        try:
                            with urllib.request.urlopen(req, timeout=30) as r:
                                if r.status in (200, 201, 202):
                                    rid = json.loads(r.read())["id"]
                                    if rid not in done_ids:
                                        done_ids.append(rid)
                                    break
                        except (OSError, http.client.HTTPException):
                            pass
                        if time.time() > deadline:
                            errors.append(i)
                            return
                        time.sleep(0.2)
            t = threading.Thread(target=burst)
            t.start()
            wait_for("a third of the burst accepted", lambda: len(done_ids) >= 12, timeout=60)
            s.broker.kill()
            s.broker.wait()
            s.start_broker(env_b)
            t.join(180)
            check(not errors and len(done_ids) == 40, "the whole burst was accepted", errors)
            for rid in done_ids:
                s.wait_run(rid, timeout=120)
            settle(s, key_id=key_b_id)
            msgs = [json.loads(line) for line in kcat(s, "gangway.audit")]
            check(all(m["specversion"] == "1.0" and m["type"] == "dev.gangway.audit.entry"
                      for m in msgs), "CloudEvents dev.gangway.audit.entry", msgs[:1])
            s.run_cmd([GANGWAY, "schema", "validate", "--format-assert",
                       os.path.join(SRC, "schemas", "events", "audit.entry.schema.json"),
                       write_lines(os.path.join(s.tmp, "entry0.json"), [msgs[0]["data"]]),
                       write_lines(os.path.join(s.tmp, "entry1.json"), [msgs[-1]["data"]])])
            by_seq = {}
            for m in msgs:
                d = m["data"]
                if d["seq"] in by_seq:
                    check(by_seq[d["seq"]]["hash"] == d["hash"], "a duplicate is the same entry", d)
                by_seq[d["seq"]] = d
            top = head(s)
            check(sorted(by_seq) == list(range(1, top + 1)),
                  "every sealed entry once after dedupe by seq, no gap", len(by_seq), top)
            check(all(by_seq[q]["prev_hash"] == by_seq[q - 1]["hash"] for q in range(2, top + 1))
                  and by_seq[1]["prev_hash"] == "0" * 64, "the hashes chain")
            chain = dict(tuple(line.split("|")) for line in
                         s.sql("SELECT seq || '|' || hash FROM gw_audit_chain").splitlines())
            check(all(chain[str(q)] == by_seq[q]["hash"] for q in by_seq),
                  "the stream's hashes are the chain's")
            burst_seen = sum(1 for d in by_seq.values() if d["verb"] == "run.submit" and
                             str(d["detail"]).find("burst") >= 0)
            check(burst_seen == 40, "the 40 burst submissions are in the stream", burst_seen)
            expect_ok(s, "after the SIGKILL", "--checkpoints", "kafka", "--public-key", pub_a,
                      "--public-key", pub_b)

            # ---- tampering by the table owner (on copies; the broker stopped)
            s.stop(s.broker)
            s.broker = None
            top = head(s)
            db, dsn = clone(s, "cut")
            clones.append(db)
            Stack._psql(dsn, BYPASS + "DELETE FROM gw_audit_log WHERE id IN (SELECT audit_id FROM"
                        " gw_audit_chain WHERE seq > %d); DELETE FROM gw_audit_chain WHERE seq > %d"
                        % (top - 8, top - 8))
            out = expect_ok(s, "tail cut: plain verify is fooled", dsn=dsn)
            check(out["head"]["seq"] == top - 8, "(the chain ends 8 earlier)", out)
            b = expect_broken(s, "tail cut", "tail_truncated", "--checkpoints", "kafka",
                              "--public-key", pub_a, "--public-key", pub_b, dsn=dsn)
            check(b["seq"] == top - 7 and "8 sealed entries are gone" in b["message"],
                  "names where the chain was cut and how much", b)

            db, dsn = clone(s, "rewrite")
            clones.append(db)
            Stack._psql(dsn, BYPASS + "UPDATE gw_audit_log SET actor = 'mallory' WHERE id ="
                        " (SELECT audit_id FROM gw_audit_chain WHERE seq = 3);"
                        " DELETE FROM gw_audit_chain; SELECT gw_audit_seal(100000)")
            out = expect_ok(s, "full rewrite: plain verify is fooled", dsn=dsn)
            check(out["head"]["seq"] == top, "(same length)", out)
            expect_broken(s, "full rewrite", "checkpoint_mismatch", "--checkpoints", "kafka",
                          "--public-key", pub_a, "--public-key", pub_b, dsn=dsn)

            # ---- archive, prune, verify both parts
            mid = int(s.sql("SELECT seq FROM gw_audit_checkpoints ORDER BY id OFFSET 2 LIMIT 1"))
            arch = os.path.join(s.tmp, "archive.jsonl")
            out = s.run_cmd([GANGWAY, "audit", "archive", "--before", str(mid + 1), "--out", arch,
                             "--pg", s.dsn])
            check(("archived seq 1..%d" % mid) in out, "archive wrote seq 1..mid", out)
            p = subprocess.run([GANGWAY, "audit", "archive", "--before", "2000-01-01T00:00:00Z",
                                "--out", arch + ".old", "--pg", s.dsn], capture_output=True,
                               text=True, env=s.env(), timeout=60)
            check(p.returncode == 2 and "nothing sealed to archive" in p.stderr and
                  not os.path.exists(arch + ".old"), "archive --before an early DATE: nothing",
                  p.returncode, p.stderr)
            out = s.run_cmd([GANGWAY, "audit", "archive", "--before", "2999-01-01T00:00:00Z",
                             "--out", arch + ".all", "--pg", s.dsn])
            check(("archived seq 1..%d" % head(s)) in out, "archive --before a DATE", out)
            keys = ["--public-key", pub_a, "--public-key", pub_b]
            p = subprocess.run([GANGWAY, "audit", "verify", "--archive", arch, "--json"] + keys,
                               capture_output=True, text=True, env=s.env(), timeout=60)
            res = json.loads(p.stdout)
            check(p.returncode == 0 and res["verified"] == mid and res["checkpoints"] >= 3 and
                  res["covered_through"] == mid, "the archive proves itself", p.stdout, p.stderr)
            with open(arch) as f:
                arch_lines = f.read().splitlines()
            e = json.loads(arch_lines[2])
            e["actor"] = "mallory"
            bad = write_lines(os.path.join(s.tmp, "bad-archive.jsonl"),
                              [json.loads(arch_lines[0]), json.loads(arch_lines[1]), e] +
                              [json.loads(x) for x in arch_lines[3:]])
            p = subprocess.run([GANGWAY, "audit", "verify", "--archive", bad, "--json"] + keys,
                               capture_output=True, text=True, env=s.env(), timeout=60)
            check(p.returncode == 1 and json.loads(p.stdout)["broken"]["kind"] == "content_changed"
                  and json.loads(p.stdout)["broken"]["seq"] == 2, "a tampered archive is not",
                  p.stdout)
            p = subprocess.run([GANGWAY, "audit", "prune", "--through", str(mid + 10 ** 6),
                                "--pg", s.dsn], capture_output=True, text=True, env=s.env(),
                               timeout=60)
            check(p.returncode == 2 and "not sealed" in p.stderr, "prune past the head refused",
                  p.returncode, p.stderr)
            out = s.run_cmd([GANGWAY, "audit", "prune", "--through", str(mid), "--pg", s.dsn])
            check(("pruned %d entries through seq %d" % (mid, mid)) in out, "prune", out)
            check(s.sql("SELECT min(seq) FROM gw_audit_chain") == str(mid + 1),
                  "the chain starts after the anchor")
            s.start_broker(env_b)
            submit_runs(s, 1, "after prune")
            settle(s, key_id=key_b_id)
            out = expect_ok(s, "what remains, against every checkpoint", "--checkpoints", "kafka",
                            *keys)
            check(out["anchor"]["seq"] == mid and out["checkpoints"]["pruned"] >= 2,
                  "checkpoints before the anchor are counted as pruned", out)
            check(s.sql("SELECT count(*) FROM gw_audit_log WHERE verb = 'audit.prune'") == "1",
                  "the prune is itself audited")
            p = subprocess.run([GANGWAY, "audit", "prune", "--through", str(mid), "--pg", s.dsn],
                               capture_output=True, text=True, env=s.env(), timeout=60)
            check(p.returncode == 2 and "anchor" in p.stderr, "pruning again below the anchor refused",
                  p.stderr)
    finally:
        hooks.shutdown()
        for db in clones:
            try:
                s.psql_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
            except Failure as e:
                print("warning:", e)


if __name__ == "__main__":
    main(test)
