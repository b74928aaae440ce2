"""Notifications that lead somewhere (issue 13, docs/webhooks.md "Routing"):
with --public-url the texts link to the console page where the person acts;
the policy's "notifications" routes send a notification to more URLs by
event, team and approver role, each delivery retried on its own; a route
with format slack gets Slack's {text, blocks} with a button opening the
decision page; the default GW_WEBHOOK_URL keeps getting everything."""

import http.server
import json
import os
import sys
import threading
import subprocess
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, Stack, check, main, write_action  # noqa: E402


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []  # (path, headers, body)
    fail_once = set()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        Receiver.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path in Receiver.fail_once:
            Receiver.fail_once.discard(self.path)
            self.send_response(503)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_for(pred, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    check(False, what, [(p, h.get("x-gangway-event"), h.get("x-gangway-delivery"), h.get("x-gangway-attempt"))
                        for p, h, b in Receiver.got])


def bodies(path, event):
    return [json.loads(b) for p, h, b in Receiver.got if p == path and h.get("x-gangway-event") == event]


def test():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    hooks = "http://127.0.0.1:%d" % srv.server_address[1]
    s = Stack("console_hooks", broker_env={
        "GW_WEBHOOK_URL": hooks + "/default", "GW_WEBHOOK_BACKOFF_MS": "300",
        "MANAGERS_HOOK": hooks + "/managers"})
    try:
        with s:
            actions = os.path.join(s.tmp, "actions")
            write_action(actions, "deploy", ["/bin/cat"],
                         approval={"rules": [{"approvals": 1, "from_roles": ["manager"]}]})
            write_action(actions, "sandbox", ["/bin/cat"],
                         approval={"rules": [{"approvals": 1, "from_teams": ["sre"]}]})
            s.actions_dir = actions
            policy = {"version": 1,
                      "roles": {"dev": {"grants": [{"permissions": ["run"]}]},
                                "manager": {"grants": [{"permissions": ["decide_approvals"]}]}},
                      "bindings": [{"roles": ["dev"], "teams": ["payments", "search"]},
                                   {"roles": ["manager"], "subjects": ["*"]}],
                      "notifications": {"routes": [
                          {"name": "payments-channel", "events": ["approval.requested", "approval.decided"],
                           "teams": ["payments"], "url": hooks + "/payments", "format": "slack"},
                          {"name": "managers", "events": ["approval.requested"],
                           "approver_roles": ["manager"], "url_env": "MANAGERS_HOOK"}]}}
            path = os.path.join(s.tmp, "policy.json")
            with open(path, "w") as f:
                json.dump(policy, f)
            public = "https://gangway.example.test/"
            s.broker_args += ["--policy", path, "--public-url", public]
            s.start_broker()
            bob, sue = s.make_tokens("bob:payments", "sue:search")

            # bob (payments) asks for deploy (needs a manager): default + payments (slack) + managers.
            r = s.post("/v1/actions/deploy/runs", {"inputs": {}}, token=bob)
            check(r.status == 202 and r.json()["status"] == "pending_approval", "deploy waits", r.status, r.body)
            run = r.json()["id"]
            link = "https://gangway.example.test/ui/runs/" + run
            Receiver.fail_once.add("/managers")  # its own retry, nobody else's
            wait_for(lambda: len(bodies("/default", "approval.requested")) == 1 and
                     len(bodies("/payments", "approval.requested")) == 1 and
                     len(bodies("/managers", "approval.requested")) == 2,
                     "deploy's request reaches the default URL, the payments channel and the managers (retried)")
            d = bodies("/default", "approval.requested")[0]
            check(d["url"] == link and d["run"]["id"] == run, "the default payload links the run page", d)
            check(d["text"].endswith("Review and decide: " + link) and "POST /v1/" not in d["text"],
                  "the text links the console, not the API", d["text"])
            m = bodies("/managers", "approval.requested")
            check(m[0] == m[1] and m[0]["url"] == link, "the managers get Gangway's JSON, the same both attempts", m)
            sl = bodies("/payments", "approval.requested")[0]
            check(set(sl) == {"text", "blocks"} and sl["text"].endswith(link), "Slack's format: text and blocks", sl)
            check(sl["blocks"][0]["type"] == "section" and sl["blocks"][0]["text"]["type"] == "mrkdwn",
                  "a section block with the text", sl["blocks"])
            btn = sl["blocks"][1]["elements"][0]
            check(sl["blocks"][1]["type"] == "actions" and btn["type"] == "button" and btn["url"] == link and
                  btn["text"]["text"] == "Review and decide", "a button opening the decision page", btn)
            ids = {h["x-gangway-delivery"] for p, h, b in Receiver.got if h.get("x-gangway-event") == "approval.requested"}
            check(len(ids) == 3, "three deliveries, each with its own id", ids)
            rows = s.sql("SELECT coalesce(route, '?') || ':' || format || ':' || (sent_at IS NOT NULL)"
                         " FROM gw_webhooks WHERE kind = 'approval.requested' ORDER BY id")
            check(rows.split("\n") == ["default:gangway:true", "payments-channel:slack:true", "managers:gangway:true"],
                  "one row per destination, all sent", rows)

            # sue (search) asks for sandbox (needs team sre): only the default URL.
            n_before = len(Receiver.got)
            r = s.post("/v1/actions/sandbox/runs", {"inputs": {}}, token=sue)
            check(r.status == 202, "sandbox waits", r.status, r.body)
            wait_for(lambda: len(bodies("/default", "approval.requested")) == 2, "sandbox's request reaches default")
            time.sleep(2.5)
            late = [(p, h.get("x-gangway-event")) for p, h, b in Receiver.got[n_before:]]
            check(late == [("/default", "approval.requested")], "no route matches sue's sandbox run", late)

            # The decision on bob's run: default + payments (approval.decided), not the managers.
            r = s.post("/v1/runs/%s/decisions" % run, {"decision": "reject", "comment": "not today"},
                       token=sue)
            check(r.status == 200, "sue (a manager) rejects", r.status, r.body)
            wait_for(lambda: len(bodies("/payments", "approval.decided")) == 1 and
                     len(bodies("/default", "approval.decided")) == 1, "the decision reaches default and payments")
            time.sleep(1.5)
            check(bodies("/managers", "approval.decided") == [], "the managers' route is for requests only")
            check(bodies("/payments", "approval.decided")[0]["blocks"][1]["elements"][0]["text"]["text"]
                  == "Open in Gangway", "a decided run's button opens it")

            # A bad route is refused when the policy is loaded, naming the place.
            policy["notifications"]["routes"][0]["format"] = "teams"
            with open(path, "w") as f:
                json.dump(policy, f)
            out = subprocess.run([GANGWAY, "broker", "--listen", "127.0.0.1:0", "--policy", path],
                                 env=s.env(), capture_output=True, text=True, timeout=60)
            check(out.returncode != 0 and "/notifications/routes/0/format" in out.stderr + out.stdout,
                  "a bad route stops the broker at start, naming it", out.returncode, out.stderr[-500:])
    finally:
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    main(test)
