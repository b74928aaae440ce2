#!/usr/bin/env python3
"""Live streams and the CLI: followed logs (every line once, in order, then
`end`), resume with Last-Event-ID (no gap, no duplicate), keepalive comments,
the /v1/events feed (queued -> running -> succeeded), shutdown with streams
open, and `gangway run/logs/runs/actions/cancel` with their exit codes."""
import http.client
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Failure, Stack, check, main, write_action  # noqa: E402

TICKER = r'''#!/usr/bin/env python3
import json, sys, time
inputs = json.load(sys.stdin)
for i in range(inputs["lines"]):
    print("tick %03d" % i, flush=True)
    if i % 5 == 4:
        print("warn %03d" % i, file=sys.stderr, flush=True)
    time.sleep(inputs.get("delay", 0.05))
sys.exit(inputs.get("exit", 0))
'''


class SSE:
    """A minimal Server-Sent Events reader over http.client."""

    def __init__(self, stack, path, headers=None, timeout=30, token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=timeout)
        h = {"Authorization": "Bearer " + (token or stack.token), "Accept": "text/event-stream"}
        h.update(headers or {})
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.ctype = self.resp.getheader("content-type", "")
        self.comments = []

    def next(self, within=30):
        """The next event as a dict (event, id, data) or None at the end;
        fails when none arrives `within` seconds (keepalives do not count)."""
        ev, data = {}, []
        deadline = time.time() + within
        while True:
            if time.time() > deadline:
                raise Failure("no event within %ss" % within)
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\r\n")
            if line == "":
                if data:
                    ev["data"] = "\n".join(data)
                    ev.setdefault("event", "message")
                    return ev
                ev = {}
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "data":
                data.append(v)
            else:
                ev[k] = v

    def close(self):
        self.conn.close()


def cli(stack, *args, token=None, url=None, timeout=60):
    env = dict(os.environ)
    env["GANGWAY_URL"] = url or stack.url
    env["GANGWAY_TOKEN"] = token if token is not None else stack.token
    p = subprocess.run([GANGWAY] + list(args), capture_output=True, text=True, env=env,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def follow_all(stack, run_id, headers=None, stop_after=None):
    """Reads a followed log stream; returns (log events, end event or None, comments)."""
    s = SSE(stack, "/v1/runs/%s/logs?follow=true" % run_id, headers=headers)
    check(s.status == 200 and s.ctype.startswith("text/event-stream"),
          "follow=true answers 200 text/event-stream", s.status, s.ctype)
    logs, end = [], None
    while True:
        ev = s.next()
        if ev is None:
            break
        if ev["event"] == "log":
            logs.append(ev)
            if stop_after is not None and len(logs) == stop_after:
                break
        elif ev["event"] == "end":
            end = ev
    comments = s.comments
    s.close()
    return logs, end, comments


def test():
    s = Stack("stream", broker_env={"GW_SSE_KEEPALIVE_MS": "300"})
    actions = os.path.join(s.tmp, "actions")
    prog = s.write_program("ticker.py", TICKER)
    write_action(actions, "ticker", [prog],
                 {"type": "object", "required": ["lines"],
                  "properties": {"lines": {"type": "integer"}, "delay": {"type": "number"},
                                 "exit": {"type": "integer"}}},
                 timeout_seconds=120)
    echo = json.load(open(os.path.join(SRC, "examples", "actions", "echo.json")))
    write_action(actions, "echo", [os.path.join(SRC, "examples", "programs", "echo.py")],
                 echo["inputs"], timeout_seconds=30)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=4)

        # The feed, opened before anything happens.
        feed = SSE(s, "/v1/events")
        check(feed.status == 200 and feed.ctype.startswith("text/event-stream"),
              "GET /v1/events is an event stream", feed.status, feed.ctype)

        # 1. Follow a run that logs for ~3 s: every line once, in order, then end.
        run = s.submit("ticker", {"lines": 40, "delay": 0.07}).json()
        logs, end, comments = follow_all(s, run["id"])
        want = []
        for i in range(40):
            want.append("tick %03d" % i)
            if i % 5 == 4:
                want.append("warn %03d" % i)
        got = [json.loads(e["data"])["line"] for e in logs]
        check(got == want, "every line arrives once, in order", got[:5], len(got))
        ids = [int(e["id"]) for e in logs]
        check(ids == sorted(set(ids)), "event ids strictly increase", ids[:5])
        d0 = json.loads(logs[0]["data"])
        check(set(d0) == {"attempt", "seq", "stream", "line", "at"} and
              ids[0] == (d0["attempt"] << 20) + d0["seq"],
              "data carries attempt/seq/stream/line/at; id = (attempt << 20) + seq", logs[0])
        check(any(json.loads(e["data"])["stream"] == "stderr" for e in logs),
              "stderr lines are marked", [json.loads(e["data"])["stream"] for e in logs][:6])
        check(end is not None and json.loads(end["data"])["status"] == "succeeded",
              "the stream ends with `end` and the final status", end)
        check(any(c.startswith(": keepalive") for c in comments),
              "keepalive comments arrive (GW_SSE_KEEPALIVE_MS=300)", comments[:3])
        jl = s.get("/v1/runs/%s/logs" % run["id"]).json()["items"]
        check([l["pos"] for l in jl] == ids, "the stream and the JSON endpoint agree on positions")

        # 2. Disconnect midway, resume with Last-Event-ID: no gap, no duplicate.
        run2 = s.submit("ticker", {"lines": 40, "delay": 0.05}).json()
        first, end1, _ = follow_all(s, run2["id"], stop_after=12)
        check(len(first) == 12 and end1 is None, "disconnected after 12 lines", len(first))
        rest, end2, _ = follow_all(s, run2["id"], headers={"Last-Event-ID": first[-1]["id"]})
        both = [json.loads(e["data"])["line"] for e in first + rest]
        check(both == want, "resumed with Last-Event-ID: no gap, no duplicate",
              len(both), both[10:14])
        check(end2 is not None and json.loads(end2["data"])["status"] == "succeeded",
              "the resumed stream ends with the run")
        again, end3, _ = follow_all(s, run2["id"], headers={"Last-Event-ID": rest[-1]["id"]})
        check(again == [] and end3 is not None,
              "resuming after the last line of an ended run gives just `end`")
        mid = SSE(s, "/v1/runs/%s/logs?follow=true&after=%s" % (run2["id"], first[5]["id"]))
        ev = mid.next()
        mid.close()
        check(ev["id"] == first[6]["id"], "?after= resumes like Last-Event-ID", ev, first[6]["id"])

        # 3. A failed run ends with its status; unknown runs are 404 before any stream.
        run3 = s.submit("ticker", {"lines": 3, "delay": 0.01, "exit": 4}).json()
        logs3, end3, _ = follow_all(s, run3["id"])
        check(len(logs3) == 3 and json.loads(end3["data"])["status"] == "failed",
              "a failed run's stream ends with status failed", end3)
        r = s.get("/v1/runs/%s/logs?follow=true" % uuid.uuid4())
        check(r.status == 404 and r.headers["content-type"].startswith("application/problem+json")
              and r.json()["code"] == "run_not_found", "an unknown run is 404 problem+json", r.body)
        r = s.get("/v1/runs/%s/logs?follow=true" % run["id"], headers={"Last-Event-ID": "x1"})
        check(r.status == 400, "a malformed Last-Event-ID is 400", r.status)
        r = s.get("/v1/runs/%s/logs?follow=false" % run["id"])
        check(r.status == 200 and r.headers["content-type"].startswith("application/json"),
              "without follow the JSON endpoint answers", r.headers["content-type"])
        r = s.get("/v1/events", auth=False)
        check(r.status == 401, "the feed needs a token", r.status)

        # 4. The feed saw run 1 go queued -> running -> succeeded, each once.
        seen, deadline = [], time.time() + 30
        while time.time() < deadline:
            ev = feed.next()
            check(ev is not None, "the feed stays open")
            if ev["event"] != "run":
                continue
            d = json.loads(ev["data"])
            seen.append((int(ev["id"]), d))
            mine = [x["to"] for _, x in seen if x["run_id"] == run["id"]]
            if mine[-1:] == ["succeeded"]:
                break
        mine = [x["to"] for _, x in seen if x["run_id"] == run["id"]]
        check(mine == ["accepted", "queued", "running", "succeeded"],
              "/v1/events shows accepted, queued, running, succeeded in order", mine)
        rows = [x["id"] for _, x in seen]
        check(len(rows) == len(set(rows)), "no transition twice", rows)
        check(all(x["action"] == "ticker" for _, x in seen if x["run_id"] == run["id"]),
              "run events name the action")
        check(any(c.startswith(": keepalive") for c in feed.comments), "the feed has keepalives")

        # A transition whose id is taken first but commits last is still sent
        # (ids come from a sequence; transactions commit in any order).
        holder = subprocess.Popen(["psql", s.dsn, "-v", "ON_ERROR_STOP=1", "-Atq"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ins = ("INSERT INTO gw_run_events (run_id, attempt, from_status, to_status, reason, actor)"
               " VALUES ('%s', 1, 'succeeded', 'succeeded', '%%s', 'test') RETURNING id" % run["id"])
        holder.stdin.write("BEGIN;\n" + ins % "late" + ";\n")
        holder.stdin.flush()
        late_id = int(holder.stdout.readline())
        early_id = int(s.sql(ins % "early").split()[0])
        check(early_id > late_id, "the early row has the higher id", early_id, late_id)

        def next_run_event():
            """The next of the two test rows (other runs' changes are skipped)."""
            while True:
                ev = feed.next()
                if ev["event"] == "run" and json.loads(ev["data"])["reason"] \
                        in ("early", "late"):
                    return int(ev["id"]), json.loads(ev["data"])

        sse_id, d = next_run_event()
        check(d["reason"] == "early" and sse_id == early_id, "the early commit is sent", sse_id, d)
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(10)
        sse_id, d = next_run_event()
        check(d["reason"] == "late" and d["id"] == late_id and sse_id == early_id,
              "the late commit of a lower id is sent too, without moving Last-Event-ID back",
              sse_id, d)
        # Resume the feed from the first transition of run 1.
        first_id = [i for i, x in seen if x["run_id"] == run["id"]][0]
        feed2 = SSE(s, "/v1/events", headers={"Last-Event-ID": str(first_id)})
        ev = feed2.next()
        while ev["event"] != "run":
            ev = feed2.next()
        check(json.loads(ev["data"])["id"] == first_id + 1,
              "Last-Event-ID resumes the feed right after that transition", ev)
        expected_rows = int(s.sql("SELECT count(*) FROM gw_run_events WHERE id > %d" % first_id))
        got_rows = 1
        while got_rows < expected_rows:
            ev = feed2.next()
            if ev["event"] == "run":
                got_rows += 1
        check(got_rows == expected_rows, "the resumed feed replays every later transition",
              got_rows, expected_rows)
        feed2.close()

        # Visibility (the built-in policy: own and team runs only): bob sees
        # none of alice's runs, in either stream.
        bob = s.make_token("bob")
        r = SSE(s, "/v1/runs/%s/logs?follow=true" % run["id"], token=bob)
        check(r.status == 404, "another user's run is 404 to follow", r.status)
        r.close()
        bob_feed = SSE(s, "/v1/events", token=bob)
        alice_run = s.submit("echo", {"message": "alice"}).json()
        bob_run = s.submit("echo", {"message": "bob"}, token=bob).json()
        s.wait_run(alice_run["id"])
        bob_seen = []
        while "succeeded" not in bob_seen:
            ev = bob_feed.next()
            if ev["event"] == "run":
                d = json.loads(ev["data"])
                check(d["run_id"] == bob_run["id"], "bob's feed shows only bob's runs", d)
                bob_seen.append(d["to"])
        bob_feed.close()

        # 5. The CLI against this broker.
        rc, out, err = cli(s, "run", "echo", "-i", "message=hi", "--wait")
        check(rc == 0 and "succeeded" in out, "`gangway run echo -i message=hi --wait` exits 0",
              rc, out, err)
        run_id = out.split()[1]
        rc, out, err = cli(s, "logs", run_id)
        check(rc == 0 and "says: hi" in out, "`gangway logs RUN` prints the lines", rc, out, err)
        rc, out, err = cli(s, "runs", "--json")
        check(rc == 0 and any(r["id"] == run_id for r in json.loads(out)["items"]),
              "`gangway runs --json` is JSON with the run", rc, err)
        rc, out, err = cli(s, "runs", "--status", "succeeded", "--action", "echo")
        check(rc == 0 and run_id in out and "STATUS" in out, "`gangway runs` prints a table",
              rc, out)
        rc, out, err = cli(s, "actions")
        check(rc == 0 and "ticker" in out and "echo" in out, "`gangway actions` lists them", out)
        rc, out, err = cli(s, "run", "ticker", "-i", "lines=2", "-i", "exit:=3", "--wait",
                           "--json")
        check(rc == 1 and json.loads(out)["status"] == "failed",
              "a failed run exits 1 (-i k:=json)", rc, out, err)
        rc, out, err = cli(s, "run", "echo", "-i", "message=5")
        check(rc == 2 and "/inputs/message" in err,
              "message=5 is sent as the number 5 and refused: exit 2", rc, err)
        inputs = os.path.join(s.tmp, "inputs.json")
        with open(inputs, "w") as f:
            json.dump({"lines": 25, "delay": 0.04}, f)
        rc, out, err = cli(s, "run", "ticker", "-f", inputs)
        check(rc == 0, "-f inputs.json", rc, err)
        tid = out.split()[1]
        rc, out, err = cli(s, "logs", tid, "--follow")
        check(rc == 0 and out.split("\n")[:25:5] == ["tick %03d" % i for i in range(0, 25, 5)]
              and out.count("tick") == 25 and err.count("warn") == 5,
              "`gangway logs RUN --follow` streams every line to the end", rc, out[-200:], err)
        rc, out, err = cli(s, "logs", str(uuid.uuid4()))
        check(rc == 1, "logs of an unknown run: exit 1", rc, err)
        rc, out, err = cli(s, "logs", run_id, token="gwt_wrong")
        check(rc == 4, "a refused token: exit 4", rc, err)
        rc, out, err = cli(s, "runs", url="http://127.0.0.1:1")
        check(rc == 3, "an unreachable server: exit 3", rc, err)
        rc, out, err = cli(s, "run")
        check(rc == 2, "a usage error: exit 2", rc, err)
        rc, out, err = cli(s, "run", "echo", "-i", "novalue")
        check(rc == 2, "a bad -i: exit 2", rc, err)

        # Cancel: a long run, cancelled while running, ends cancelled.
        long_run = s.submit("ticker", {"lines": 600, "delay": 0.05}).json()
        s.wait_run(long_run["id"], until={"running"})
        rc, out, err = cli(s, "cancel", long_run["id"])
        check(rc == 0, "`gangway cancel RUN` exits 0", rc, out, err)
        logs_c, end_c, _ = follow_all(s, long_run["id"])
        check(end_c is not None and json.loads(end_c["data"])["status"] == "cancelled",
              "the followed stream of a cancelled run ends `cancelled`", end_c)
        rc, out, err = cli(s, "cancel", long_run["id"])
        check(rc == 1, "cancelling an ended run: exit 1", rc, err)

        # `runs --watch` prints transitions as they happen.
        env = dict(os.environ, GANGWAY_URL=s.url, GANGWAY_TOKEN=s.token)
        watcher = subprocess.Popen([GANGWAY, "runs", "--watch", "--json", "--action", "echo"],
                                   stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(1)
        w_run = s.submit("echo", {"message": "watched"}).json()
        s.wait_run(w_run["id"])
        watched, deadline = [], time.time() + 15
        while time.time() < deadline and "succeeded" not in watched:
            line = watcher.stdout.readline()
            if not line:
                break
            e = json.loads(line)
            if e["run_id"] == w_run["id"]:
                watched.append(e["to"])
        watcher.terminate()
        watcher.wait(10)
        check(watched[-3:] == ["queued", "running", "succeeded"] or
              watched == ["accepted", "queued", "running", "succeeded"],
              "`gangway runs --watch` prints the transitions", watched)

        # 6. Shutdown ends open streams: SIGTERM with a feed and a follower open.
        # (Workers first: the run followed stays queued, its stream open.)
        for w in s.workers:
            s.stop(w)
        queued = s.submit("echo", {"message": "never runs"}).json()
        follower = SSE(s, "/v1/runs/%s/logs?follow=true" % queued["id"])
        check(follower.status == 200, "following a queued run", follower.status)
        t0 = time.time()
        rc = s.stop(s.broker)
        check(rc == 0 and time.time() - t0 < 15, "the broker stops promptly with streams open",
              rc, time.time() - t0)
        while follower.next() is not None:
            pass
        check(True, "the follower's stream was ended by the shutdown")
        feed.close()
        follower.close()


if __name__ == "__main__":
    main(test)
