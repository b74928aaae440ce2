#!/usr/bin/env python3
"""A fake Jenkins that answers the part of Jenkins' REST contract Gangway's
jenkins backend uses, for tests (no Jenkins can be installed here).

Reproduced: basic auth (401 without valid credentials), CSRF crumbs
(GET /crumbIssuer/api/json sets a session cookie; every POST needs the crumb
header matching that session, else 403), buildWithParameters (201 + Location
of a queue item; parameters from the query string and the form body), queue
items that become builds after a delay, GET /queue/api/json, builds that
write their log over time and end with a result chosen by parameters
(RESULT=SUCCESS|UNSTABLE|FAILURE|ABORTED|NOT_BUILT, SLEEP=<seconds>,
LINES=<n>), logText/progressiveText with X-Text-Size / X-More-Data paging,
POST /queue/cancelItem, POST <build>/stop, the job's builds list with
parameters, and folders as /job/a/job/b. Seed jobs (as Job DSL's): with
--creates JOB:PARAM a successful build of JOB creates the job named by its
PARAM parameter; with --deletes JOB:PARAM one of JOB deletes it (a job that
is not there is no error). /_control/state lists the jobs.

Test control (no auth): GET /_control/state (triggers, builds, queue, the
request log), POST /_control/set (JSON: crumb_broken, fail_next, max_chunk,
queue_delay, jobs), POST /_control/seed (a build or queue item started by
"someone else", not counted as a trigger), POST /_control/reset.

Usage: fake_jenkins.py [--port 0] [--user U --token T] [--job a/b ...]
       [--creates JOB:PARAM ...] [--deletes JOB:PARAM ...];
prints "PORT <n>" on stdout once listening.
"""
import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESULTS = {"SUCCESS", "UNSTABLE", "FAILURE", "ABORTED", "NOT_BUILT"}


class Build:
    def __init__(self, state, job, number, params):
        self.state = state
        self.job = job
        self.number = number
        self.params = params
        self.log = b""
        self.building = True
        self.result = None
        self.abort = threading.Event()

    def url(self):
        return "%s%s%d/" % (self.state.base, job_url_path(self.job), self.number)

    def run(self):
        p = self.params
        lines = int(p.get("LINES", "3"))
        sleep = float(p.get("SLEEP", "0.3"))
        result = p.get("RESULT", "SUCCESS")
        if result not in RESULTS:
            result = "FAILURE"
        self.append("Started by user gangway\n")
        for k in sorted(p):
            if k in ("SLEEP", "LINES", "RESULT"):
                continue
            # repr() keeps CR/LF/NUL in a value on one visible line.
            self.append("param %s=%r\n" % (k, p[k]))
        step = sleep / max(lines, 1)
        for i in range(lines):
            # Each line is written in two halves so pollers see partial lines.
            self.append("line %d of %d " % (i + 1, lines))
            if self.abort.wait(step):
                break
            self.append("done\n")
        if self.abort.is_set():
            self.append("\nAborted by user\n")
            result = "ABORTED"
        with self.state.lock:
            seed = self.state.seeds.get(self.job)
            made = seed is not None and result == "SUCCESS" and self.params.get(seed[1])
            if made and seed[0] == "create":
                self.state.jobs.add(made)
            elif made:
                self.state.jobs.discard(made)
        if made:
            self.append("%s job %s\n" % ("Created" if seed[0] == "create" else "Deleted", made))
        self.append("Finished: %s\n" % result)
        with self.state.lock:
            self.result = result
            self.building = False

    def append(self, text):
        with self.state.lock:
            self.log += text.encode()

    def json(self):
        return {"_class": "hudson.model.FreeStyleBuild", "number": self.number, "url": self.url(),
                "building": self.building, "result": self.result,
                "actions": [{"_class": "hudson.model.CauseAction", "causes": []},
                            {"_class": "hudson.model.ParametersAction",
                             "parameters": [{"name": k, "value": v} for k, v in self.params.items()]},
                            {}]}


class QueueItem:
    def __init__(self, state, qid, job, params):
        self.state = state
        self.id = qid
        self.job = job
        self.params = params
        self.cancelled = False
        self.build = None
        self.created = time.time()

    def json(self):
        d = {"_class": "hudson.model.Queue$WaitingItem", "id": self.id,
             "task": {"name": self.job.split("/")[-1], "url": self.state.base + job_url_path(self.job)},
             "actions": [{"_class": "hudson.model.ParametersAction",
                          "parameters": [{"name": k, "value": v} for k, v in self.params.items()]}],
             "why": "In the quiet period", "cancelled": self.cancelled, "executable": None}
        if self.build is not None:
            d["_class"] = "hudson.model.Queue$LeftItem"
            d["executable"] = {"_class": "hudson.model.FreeStyleBuild", "number": self.build.number,
                               "url": self.build.url()}
        return d


def job_url_path(job):
    return "/" + "".join("job/%s/" % urllib.parse.quote(seg, safe="") for seg in job.split("/"))


class State:
    def __init__(self, user, token, jobs, seeds=None):
        self.lock = threading.RLock()
        self.user, self.token = user, token
        self.jobs = set(jobs)
        self.seeds = dict(seeds or {})  # seed job -> ("create"|"delete", PARAM)
        self.base = ""
        self.reset()

    def reset(self):
        with self.lock:
            self.sessions = {}  # cookie value -> crumb
            self.queue = {}
            self.next_qid = 100
            self.builds = {}  # job -> [Build]
            self.triggers = 0
            self.requests = []
            self.crumb_broken = False
            self.fail_next = 0
            self.max_chunk = 0
            self.queue_delay = 0.2
            self.lose_trigger_reply = False

    def enqueue(self, job, params, delay=None):
        with self.lock:
            self.next_qid += 1
            item = QueueItem(self, self.next_qid, job, params)
            self.queue[item.id] = item
        d = self.queue_delay if delay is None else delay
        if d >= 0:
            threading.Timer(d, self.start_build, (item,)).start()
        return item

    def start_build(self, item):
        with self.lock:
            if item.cancelled or item.build is not None:
                return
            lst = self.builds.setdefault(item.job, [])
            b = Build(self, item.job, len(lst) + 1, item.params)
            lst.append(b)
            item.build = b
        threading.Thread(target=b.run, daemon=True).start()

    def find_build(self, job, number):
        for b in self.builds.get(job, []):
            if b.number == number:
                return b
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeJenkins/2.0"

    def log_message(self, fmt, *args):
        pass

    # -- replies -------------------------------------------------------------
    def reply(self, status, body=b"", ctype="text/plain;charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Jenkins", "2.440-fake")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, obj, status=200, headers=None):
        self.reply(status, json.dumps(obj), "application/json;charset=utf-8", headers)

    # -- request plumbing ----------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def record(self, body):
        st = self.server.state
        with st.lock:
            st.requests.append({"method": self.command, "path": self.path,
                                "body": body.decode("latin-1"),
                                "crumb": self.headers.get("Jenkins-Crumb"),
                                "auth": self.headers.get("Authorization") is not None})

    def authorized(self):
        st = self.server.state
        if st.user is None:
            return True
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return False
        try:
            user, _, tok = base64.b64decode(h[6:]).decode().partition(":")
        except Exception:
            return False
        return user == st.user and tok == st.token

    def session(self):
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "JSESSIONID.fake":
                return v
        return None

    def crumb_ok(self):
        st = self.server.state
        with st.lock:
            if st.crumb_broken:
                return False
            expected = st.sessions.get(self.session())
        return expected is not None and self.headers.get("Jenkins-Crumb") == expected

    def handle_any(self):
        st = self.server.state
        body = self.read_body()
        split = urllib.parse.urlsplit(self.path)
        raw_path = split.path
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        if raw_path.startswith("/_control/"):
            return self.control(raw_path, body)
        self.record(body)
        with st.lock:
            if st.fail_next > 0:
                st.fail_next -= 1
                return self.reply(503, "Service Unavailable (fake)")
        if not self.authorized():
            return self.reply(401, "Invalid password/token for user",
                              headers={"WWW-Authenticate": 'Basic realm="Jenkins"'})
        # Segments are decoded after splitting on '/', as Stapler does: an
        # encoded slash stays inside its segment.
        segs = [urllib.parse.unquote(s) for s in raw_path.split("/")[1:]]
        if self.command == "POST" and not self.crumb_ok():
            return self.reply(403, "No valid crumb was included in the request")
        if segs[:3] == ["crumbIssuer", "api", "json"] and self.command == "GET":
            cookie = secrets.token_hex(8)
            crumb = hashlib.sha256(cookie.encode()).hexdigest()
            with st.lock:
                st.sessions[cookie] = crumb
            return self.reply_json({"_class": "hudson.security.csrf.DefaultCrumbIssuer",
                                    "crumb": crumb, "crumbRequestField": "Jenkins-Crumb"},
                                   headers={"Set-Cookie": "JSESSIONID.fake=%s; Path=/; HttpOnly" % cookie})
        if segs[:3] == ["queue", "api", "json"]:
            with st.lock:
                items = [q.json() for q in st.queue.values() if not q.cancelled and q.build is None]
            return self.reply_json({"_class": "hudson.model.Queue", "items": items})
        if segs[:2] == ["queue", "cancelItem"] and self.command == "POST":
            try:
                qid = int(query.get("id", ["x"])[0])
            except ValueError:
                return self.reply(400, "bad id")
            with st.lock:
                item = st.queue.get(qid)
                if item is None:
                    return self.reply(404, "no such item")
                if item.build is None:
                    item.cancelled = True
            return self.reply(204)
        if len(segs) >= 4 and segs[0] == "queue" and segs[1] == "item" and segs[3:5] == ["api", "json"]:
            try:
                qid = int(segs[2])
            except ValueError:
                return self.reply(404, "not found")
            with st.lock:
                item = st.queue.get(qid)
                if item is None:
                    return self.reply(404, "not found")
                return self.reply_json(item.json())
        # /job/a/job/b/<rest>
        job, i = [], 0
        while i + 1 < len(segs) and segs[i] == "job":
            job.append(segs[i + 1])
            i += 2
        rest = [s for s in segs[i:] if s != ""]
        name = "/".join(job)
        if not job or name not in st.jobs:
            return self.reply(404, "<html>Not Found</html>", "text/html")
        if rest == ["buildWithParameters"] and self.command == "POST":
            params = {k: v[0] for k, v in query.items()}
            if body:
                form = urllib.parse.parse_qs(body.decode("latin-1"), keep_blank_values=True,
                                             encoding="latin-1")
                params.update({k: v[0].encode("latin-1").decode("utf-8", "replace") for k, v in form.items()})
            with st.lock:
                st.triggers += 1
            item = st.enqueue(name, params)
            with st.lock:
                lose, st.lose_trigger_reply = st.lose_trigger_reply, False
            if lose:  # queued, but the answer is lost on the way back
                return self.reply(502, "Bad Gateway (fake)")
            return self.reply(201, headers={"Location": "%s/queue/item/%d/" % (st.base, item.id)})
        if rest == ["api", "json"]:
            with st.lock:
                builds = [b.json() for b in reversed(st.builds.get(name, []))][:50]
            return self.reply_json({"_class": "hudson.model.FreeStyleProject", "name": job[-1],
                                    "builds": builds})
        if rest and rest[0].isdigit():
            with st.lock:
                b = st.find_build(name, int(rest[0]))
            if b is None:
                return self.reply(404, "<html>Not Found</html>", "text/html")
            if rest[1:] == ["api", "json"]:
                with st.lock:
                    return self.reply_json(b.json())
            if rest[1:] == ["logText", "progressiveText"]:
                try:
                    start = int(query.get("start", ["0"])[0])
                except ValueError:
                    start = 0
                with st.lock:
                    data = b.log[start:]
                    if st.max_chunk > 0:
                        data = data[:st.max_chunk]
                    size = start + len(data)
                    more = b.building or size < len(b.log)
                hdr = {"X-Text-Size": str(size)}
                if more:
                    hdr["X-More-Data"] = "true"
                return self.reply(200, data, headers=hdr)
            if rest[1:] == ["stop"] and self.command == "POST":
                b.abort.set()
                return self.reply(302, headers={"Location": b.url()})
        return self.reply(404, "<html>Not Found</html>", "text/html")

    def control(self, path, body):
        st = self.server.state
        if path == "/_control/state":
            with st.lock:
                return self.reply_json({
                    "triggers": st.triggers,
                    "jobs": sorted(st.jobs),
                    "queue": [q.json() for q in st.queue.values()],
                    "builds": {j: [b.json() for b in lst] for j, lst in st.builds.items()},
                    "requests": list(st.requests)})
        args = json.loads(body or b"{}")
        if path == "/_control/reset":
            st.reset()
        elif path == "/_control/set":
            with st.lock:
                for k in ("crumb_broken", "fail_next", "max_chunk", "queue_delay", "lose_trigger_reply"):
                    if k in args:
                        setattr(st, k, args[k])
                for j in args.get("jobs", []):
                    st.jobs.add(j)
        elif path == "/_control/seed":
            # A build (or a queue item that stays queued) with the given
            # parameters, as if an earlier attempt had triggered it.
            st.enqueue(args["job"], args.get("params", {}),
                       delay=-1 if args.get("queued") else float(args.get("delay", 0)))
        else:
            return self.reply(404, "no such control")
        return self.reply_json({"ok": True})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user")
    ap.add_argument("--token")
    ap.add_argument("--job", action="append", default=[])
    ap.add_argument("--creates", action="append", default=[], metavar="JOB:PARAM")
    ap.add_argument("--deletes", action="append", default=[], metavar="JOB:PARAM")
    a = ap.parse_args()
    seeds = {}
    for kind, specs in (("create", a.creates), ("delete", a.deletes)):
        for spec in specs:
            job, sep, param = spec.rpartition(":")
            if not sep or not job or not param:
                ap.error("--%ss wants JOB:PARAM, not %r" % (kind, spec))
            seeds[job] = (kind, param)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.state = State(a.user, a.token, (a.job or ["hello"]) + list(seeds), seeds)
    srv.state.base = "http://127.0.0.1:%d" % srv.server_address[1]
    print("PORT %d" % srv.server_address[1], flush=True)
    # A test that dies (abort on a failed check) must not leave us running.
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(0.3)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
