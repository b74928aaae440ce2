#!/usr/bin/env python3
"""`gangway login/logout/approvals/approve/reject` against a real broker:
login checks the token (GET /v1/me) and stores it 0600 in a 0700 directory
under XDG_CONFIG_HOME, refusing a file that is not the caller's; commands use
flags, then GANGWAY_URL/GANGWAY_TOKEN, then the stored credentials, and never
send a stored token to another URL; a prod deploy waits for two sre approvals
given through the CLI, then runs; a rejection needs a comment; self-approval
exits 1 with the problem's detail; logout removes the file."""
import http.server
import json
import os
import stat
import subprocess
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Stack, check, main, write_action  # noqa: E402


class Person:
    """One user of the CLI: a private XDG_CONFIG_HOME (and HOME) and no
    GANGWAY_* variables unless a call asks for them."""

    def __init__(self, stack, name):
        self.home = os.path.join(stack.tmp, "home-" + name)
        os.makedirs(self.home, mode=0o700)
        self.config = os.path.join(self.home, "xdg")
        self.creds = os.path.join(self.config, "gangway", "credentials.json")

    def cli(self, *args, env=None, stdin=None, timeout=60):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
             "XDG_CONFIG_HOME": self.config}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(env or {})
        p = subprocess.run([GANGWAY] + list(args), capture_output=True, text=True, env=e,
                           input=stdin if stdin is not None else "", timeout=timeout)
        return p.returncode, p.stdout, p.stderr


class Recorder(http.server.BaseHTTPRequestHandler):
    """Another server: records the Authorization header it is sent."""
    seen = []
    body = b'{"items": []}'

    def do_GET(self):
        Recorder.seen.append(self.headers.get("Authorization"))
        body = Recorder.body
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test():
    s = Stack("cliappr")
    actions = os.path.join(s.tmp, "actions")
    write_action(actions, "deploy", ["/bin/cat"],
                 {"type": "object", "required": ["environment"],
                  "properties": {"environment": {"enum": ["dev", "prod"]}}},
                 timeout_seconds=30,
                 approval={"rules": [{"when": {"environment": ["prod"]}, "approvals": 2,
                                      "from_teams": ["sre"]}, {"approvals": 0}],
                           "expires_after_seconds": 3600})
    s.actions_dir = actions
    other = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    with s:
        try:
            s.start_broker()
            s.start_worker(concurrency=2)
            tokens = {"bob": s.make_token("bob", teams=["payments"]),
                      "carol": s.make_token("carol", teams=["sre"]),
                      "dave": s.make_token("dave", teams=["sre"])}
            bob, carol, dave = (Person(s, n) for n in ("bob", "carol", "dave"))

            # -- login ----------------------------------------------------------
            rc, out, err = bob.cli("login", "--url", s.url, "--token", "gwt_" + "0" * 40)
            check(rc == 4 and not os.path.exists(bob.creds),
                  "a refused token exits 4 and stores nothing", rc, err)
            rc, out, err = bob.cli("login", "--url", s.url + "/", "--token-stdin",
                                   stdin=tokens["bob"] + "\n")
            # Created as "bob", seen canonical (docs/policy.md#subjects).
            check(rc == 0 and "as user:default/bob" in out and "payments" in out,
                  "login --token-stdin prints who the token is", rc, out, err)
            st = os.stat(bob.creds)
            check(stat.S_IMODE(st.st_mode) == 0o600, "the credentials file is 0600", oct(st.st_mode))
            check(stat.S_IMODE(os.stat(os.path.dirname(bob.creds)).st_mode) == 0o700,
                  "in a 0700 directory")
            saved = json.load(open(bob.creds))
            check(saved == {"url": s.url, "token": tokens["bob"]},
                  "it holds the URL (no trailing slash) and the token", saved)
            rc, out, err = bob.cli("login", "--token", "bad token\r\nX-Injected: 1", "--url", s.url)
            check(rc == 2 and "printable" in err, "a token with CR/LF or spaces is refused", rc, err)
            rc, out, err = bob.cli("login", "--url", s.url)
            check(rc == 2, "login without a token and without a terminal is a usage error", rc, err)
            for p in (carol, dave):
                name = "carol" if p is carol else "dave"
                rc, out, err = p.cli("login", "--url", s.url, "--token", tokens[name], "--json")
                check(rc == 0 and json.loads(out)["subject"] == "user:default/" + name
                      and json.loads(out)["teams"] == ["sre"],
                      "login --json prints /v1/me for " + name, rc, out, err)

            # A file someone loosened is replaced by a private one.
            os.chmod(carol.creds, 0o644)
            rc, out, err = carol.cli("actions")
            check(rc == 0 and "can be read by others" in err, "a loose file is used with a warning", rc, err)
            rc, out, err = carol.cli("login", "--url", s.url, "--token", tokens["carol"])
            check(rc == 0 and stat.S_IMODE(os.stat(carol.creds).st_mode) == 0o600,
                  "login again makes it 0600", rc, err)
            # A symbolic link in the file's place is not followed.
            victim = os.path.join(s.tmp, "victim")
            with open(victim, "w") as f:
                f.write("untouched")
            link_user = Person(s, "linked")
            os.makedirs(os.path.dirname(link_user.creds), mode=0o700)
            os.symlink(victim, link_user.creds)
            rc, out, err = link_user.cli("login", "--url", s.url, "--token", tokens["bob"])
            check(rc == 1 and "symbolic link" in err and open(victim).read() == "untouched",
                  "a symlink in place of the file is refused, its target untouched", rc, err)
            if os.geteuid() == 0:
                # Someone else's file (and directory) is never written to.
                theirs = Person(s, "theirs")
                os.makedirs(os.path.dirname(theirs.creds), mode=0o700)
                with open(theirs.creds, "w") as f:
                    f.write('{"url": "x", "token": "y"}')
                os.chmod(theirs.creds, 0o666)
                os.chown(theirs.creds, 65534, 65534)
                rc, out, err = theirs.cli("login", "--url", s.url, "--token", tokens["bob"])
                check(rc == 1 and "not to you" in err and open(theirs.creds).read().startswith('{"url": "x"'),
                      "a file owned by someone else is refused", rc, err)
                rc, out, err = theirs.cli("actions", "--url", s.url)
                check(rc == 4 and "belongs to uid 65534" in err,
                      "and not read either (no token sent: 401)", rc, err)
                os.chown(os.path.dirname(theirs.creds), 65534, 65534)
                os.unlink(theirs.creds)
                rc, out, err = theirs.cli("login", "--url", s.url, "--token", tokens["bob"])
                check(rc == 1 and "not to you" in err and not os.path.exists(theirs.creds),
                      "a directory owned by someone else is refused", rc, err)

            # -- which URL and token ---------------------------------------------
            other_url = "http://127.0.0.1:%d" % other.server_address[1]
            rc, out, err = bob.cli("approvals", "--url", other_url)
            check(rc == 0 and Recorder.seen[-1] is None,
                  "the stored token is never sent to another URL", Recorder.seen)
            rc, out, err = bob.cli("approvals", env={"GANGWAY_URL": other_url,
                                                     "GANGWAY_TOKEN": "gwt_from_env"})
            check(rc == 0 and Recorder.seen[-1] == "Bearer gwt_from_env",
                  "GANGWAY_URL/GANGWAY_TOKEN win over the stored credentials", Recorder.seen)
            rc, out, err = bob.cli("approvals", "--token", "gwt_from_flag",
                                   env={"GANGWAY_URL": other_url, "GANGWAY_TOKEN": "gwt_from_env"})
            check(rc == 0 and Recorder.seen[-1] == "Bearer gwt_from_flag", "and flags win over both",
                  Recorder.seen)
            # A plan-first run (as the broker would list it): the PLAN column, and
            # an approval given for an older plan does not count.
            Recorder.body = json.dumps({"items": [{
                "id": "11111111-2222-3333-4444-555555555555", "action": {"id": "tf-apply"},
                "status": "pending_approval", "inputs": {"workspace": "prod"},
                "requested_by": {"subject": "erin", "teams": ["payments"]},
                "plan": {"sha256": "abcdef0123456789" + "0" * 48,
                         "summary": {"add": 1, "change": 0, "destroy": 2}},
                "approval": {"required": 1, "from_roles": ["sre-lead"], "plan_first": True,
                             "expires_at": "2000-01-01T00:00:00.000000Z",
                             "decisions": [{"approver": "zed", "decision": "approve",
                                            "plan_sha256": "f" * 64}]}}]}).encode()
            rc, out, err = bob.cli("approvals", "--url", other_url, "--token", "x")
            row = out.splitlines()[1] if rc == 0 and len(out.splitlines()) > 1 else ""
            check(out.split()[-1:] == ["PLAN"] or "PLAN" in out.splitlines()[0],
                  "a plan-first run adds a PLAN column", out)
            check('abcdef012345: {"add":1,"change":0,"destroy":2}' in row and " 0/1 " in row and
                  "role sre-lead" in row and "(expired)" in row,
                  "with the plan's hash and summary; an approval of another plan does not count", row)
            Recorder.body = b'{"items": []}'
            rc, out, err = bob.cli("actions", env={"GANGWAY_TOKEN": "gwt_" + "1" * 40})
            check(rc == 4 and "HTTP 401" in err, "GANGWAY_TOKEN is used with the stored URL", rc, err)

            # -- request and approvals -------------------------------------------
            rc, out, err = bob.cli("run", "deploy", "-i", "environment=prod", "--json")
            run = json.loads(out) if rc == 0 else {}
            check(rc == 0 and run.get("status") == "pending_approval",
                  "the requester's run (stored credentials) waits for approval", rc, out, err)
            rid = run["id"]
            rc, out, err = bob.cli("run", "deploy", "-i", "environment=prod")
            other_rid = out.split()[1] if rc == 0 else ""
            check(rc == 0 and "pending_approval" in out, "a second one", rc, out, err)

            rc, out, err = carol.cli("approvals")
            lines = [l for l in out.splitlines() if rid in l]
            check(rc == 0 and out.startswith("RUN ") and "EXPIRES" in out and len(lines) == 1,
                  "an sre approver sees the run in the table", rc, out, err)
            row = lines[0]
            check(" deploy " in row and " user:default/bob " in row and " 0/2 " in row and "team sre" in row and
                  '{"environment":"prod"}' in row and ("(in 60m)" in row or "(in 59m)" in row),
                  "with the action, requester, 0/2 approvals, from team sre, inputs and expiry", row)
            rc, out, err = carol.cli("approvals", "--json")
            items = {x["id"]: x for x in json.loads(out)["items"]} if rc == 0 else {}
            check(rc == 0 and rid in items and items[rid]["approval"]["required"] == 2 and
                  items[rid]["approval"]["decisions"] == [],
                  "approvals --json is the API's document", rc, out[:300], err)
            rc, out, err = bob.cli("approvals")
            check(rc == 0 and rid not in out and "nothing waits for your decision" in out,
                  "the requester has nothing to decide", rc, out, err)

            rc, out, err = bob.cli("approve", rid, "-m", "mine")
            check(rc == 1 and "the requester of a run cannot decide on it" in err and "self_approval" in err,
                  "self-approval exits 1 with the problem's detail", rc, err)
            rc, out, err = carol.cli("reject", rid)
            check(rc == 2 and "comment" in err, "reject without -m is a usage error (2)", rc, err)
            rc, out, err = carol.cli("reject", rid, "-m", "  ")
            check(rc == 2, "so is a blank comment", rc, err)
            rc, out, err = carol.cli("approve")
            check(rc == 2 and "which run?" in err, "approve without a run is a usage error", rc, err)
            rc, out, err = carol.cli("approve", str(uuid.uuid4()), "-m", "ok")
            check(rc == 1 and "no run with id" in err, "an unknown run exits 1", rc, err)

            rc, out, err = carol.cli("approve", rid, "-m", "ok")
            check(rc == 0 and "still pending approval (1/2 user:default/carol)" in out,
                  "the first approval is recorded, still pending", rc, out, err)
            rc, out, err = carol.cli("approve", rid, "-m", "ok")
            check(rc == 1 and "already_decided" in err, "each approver counts once (exit 1)", rc, err)
            rc, out, err = dave.cli("approvals")
            row = [l for l in out.splitlines() if rid in l]
            check(rc == 0 and row and " 1/2 user:default/carol " in row[0],
                  "the next approver sees 1/2 user:default/carol", out)
            rc, out, err = dave.cli("approve", rid, "-m", "ok", "--json")
            doc = json.loads(out) if rc == 0 else {}
            check(rc == 0 and doc.get("status") == "queued" and
                  [d["approver"] for d in doc["approval"]["decisions"]] == ["user:default/carol",
                                                                           "user:default/dave"] and
                  doc["approval"]["decisions"][1]["comment"] == "ok",
                  "the second approval queues the run", rc, out[:400], err)
            done = s.wait_run(rid)
            check(done["status"] == "succeeded", "and it succeeds", done)
            moves = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND from_status ="
                          " 'pending_approval' AND to_status = 'queued'" % rid)
            check(moves == "1", "pending_approval -> queued once", moves)
            rc, out, err = dave.cli("approve", rid)
            check(rc == 1 and "not_pending_approval" in err, "deciding an ended run exits 1", rc, err)

            rc, out, err = dave.cli("reject", other_rid, "-m", "not during the freeze")
            check(rc == 0 and ("run %s rejected" % other_rid) in out, "reject -m rejects", rc, out, err)
            reasons = s.sql("SELECT detail->>'comment' FROM gw_audit_log WHERE verb = 'approval.reject'"
                            " AND object = 'run:%s'" % other_rid)
            check(reasons == "not during the freeze", "the comment is in the audit log", reasons)

            # -- logout -----------------------------------------------------------
            rc, out, err = bob.cli("logout")
            check(rc == 0 and not os.path.exists(bob.creds), "logout removes the file", rc, out, err)
            rc, out, err = bob.cli("logout")
            check(rc == 0 and "not logged in" in out, "logout twice is fine", rc, out)
            rc, out, err = bob.cli("runs", "--url", s.url)
            check(rc == 4, "after logout the broker refuses the CLI (no token)", rc, err)
        finally:
            other.shutdown()


if __name__ == "__main__":
    main(test)
