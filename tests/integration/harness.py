"""Integration test harness: a broker and workers on a private database and
topic namespace, against the real PostgreSQL and Kafka that tests/run starts
through deploy/local/.

Each test gets its own database (created from scratch, migrated by the
broker) and its own topic prefix, so tests cannot see each other. Without
GW_TEST_PG_DSN / GW_TEST_KAFKA_BROKERS a test exits 77 (meson: skipped)."""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

SKIP = 77
SRC = os.environ.get("GW_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("GW_BUILD_ROOT", os.path.join(SRC, "build"))
GANGWAY = os.path.join(BUILD, "cli", "gangway")
# Deletes a Stack's topics when it closes (tests/tools/kafka_topics.c).
TOPICS_TOOL = os.path.join(BUILD, "tests", "tools", "gw-test-topics")
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "rejected", "expired"}


def need_services():
    pg = os.environ.get("GW_TEST_PG_DSN")
    kafka = os.environ.get("GW_TEST_KAFKA_BROKERS")
    if not pg or not kafka:
        print("skipped: GW_TEST_PG_DSN and GW_TEST_KAFKA_BROKERS are not set "
              "(tests/run starts PostgreSQL and Kafka through deploy/local)")
        sys.exit(SKIP)
    return pg, kafka


def need_terraform():
    """The terraform/tofu binary deploy/install-terraform installed; exits 77
    (skipped) without one or without services."""
    need_services()
    p = subprocess.run([os.path.join(SRC, "deploy", "install-terraform"), "--no-install"],
                       capture_output=True, text=True)
    binary = p.stdout.strip() if p.returncode == 0 else None
    if not binary:
        print("skipped: no terraform/tofu binary (run deploy/install-terraform)")
        sys.exit(SKIP)
    return binary


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def dsn_with_db(dsn, db):
    parts = [p for p in dsn.split() if not p.startswith("dbname=")]
    return " ".join(parts + ["dbname=" + db])


class Failure(AssertionError):
    pass


def wait_for(what, cond, timeout=60, every=0.1):
    """Calls cond() every `every` s until it returns something true, and
    returns that; raises Failure naming `what` after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(every)
    raise Failure("timed out waiting: " + what)


class TableLock:
    """A psql session holding LOCK TABLE `table` IN `mode` on `dsn` until
    release() (or the end of a with block): statements that need a
    conflicting lock wait meanwhile."""

    def __init__(self, dsn, table, mode):
        self.p = subprocess.Popen(["psql", dsn, "-qAt", "-v", "ON_ERROR_STOP=1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN; LOCK TABLE %s IN %s MODE; SELECT 'locked';\n" % (table, mode))
        self.p.stdin.flush()
        check(self.p.stdout.readline().strip() == "locked", "%s locked in %s mode" % (table, mode))

    def release(self):
        if self.p.stdin.closed:
            return
        self.p.stdin.write("COMMIT;\n")
        self.p.stdin.close()
        self.p.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def check(cond, what, *detail):
    if not cond:
        raise Failure(what + ("" if not detail else ": " + " ".join(str(d) for d in detail)))
    print("ok -", what, flush=True)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)


class Stack:
    """A database, a topic prefix, a broker and workers for one test."""

    def __init__(self, name, actions_dir=None, broker_args=(), broker_env=None):
        self.pg_admin, self.kafka = need_services()
        self.name = name
        self.db = "gw_%s_%s" % (name, secrets.token_hex(4))
        self.prefix = "t%s.%s." % (secrets.token_hex(4), name)
        self.tmp = tempfile.mkdtemp(prefix="gw-%s-" % name)
        self.dsn = dsn_with_db(self.pg_admin, self.db)
        self.actions_dir = actions_dir or os.path.join(SRC, "examples", "actions")
        self.broker_args = list(broker_args)
        self.broker_env = broker_env or {}
        self.broker = None
        self.workers = []
        self.replicas = []  # start_replica()
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.conn = None
        self.token = self.worker_token = ""
        self.psql_admin("CREATE DATABASE %s" % self.db)
        self.run_cmd([GANGWAY, "migrate", "--pg", self.dsn, "--sql-dir", os.path.join(SRC, "sql")])
        self.token = self.make_token("alice", teams=["payments"], roles=["admin"])
        self.worker_token = self.make_token("worker-pool", roles=["worker"])

    def write_program(self, name, text):
        """An executable file `name` in the test's directory holding `text`;
        returns its path (for an action's command)."""
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    # -- processes ---------------------------------------------------------
    def env(self, extra=None):
        e = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GW_PG": self.dsn,
            "GW_KAFKA_BROKERS": self.kafka,
            "GW_TOPIC_PREFIX": self.prefix,
            "GW_ACTIONS_DIR": self.actions_dir,
            "GW_SQL_DIR": os.path.join(SRC, "sql"),
            "GW_BROKER_URL": self.url,
            "GW_WORKER_TOKEN": self.worker_token,
            "GW_LOG_LEVEL": os.environ.get("GW_LOG_LEVEL", "info"),
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(extra or {})
        return e

    def run_cmd(self, argv, **kw):
        p = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=120, **kw)
        if p.returncode != 0:
            raise Failure("%s failed (%d): %s %s" % (argv[1], p.returncode, p.stdout, p.stderr))
        return p.stdout

    def make_token(self, subject, teams=(), roles=()):
        argv = [GANGWAY, "token", "create", "--subject", subject, "--pg", self.dsn]
        for t in teams:
            argv += ["--team", t]
        for r in roles:
            argv += ["--role", r]
        return self.run_cmd(argv).strip()

    def make_tokens(self, *people):
        """One token per "subject:team,team" (teams may be empty), in order:
        the cast of a test, e.g. bob, carol = s.make_tokens("bob:payments",
        "carol:sre")."""
        tokens = []
        for p in people:
            subject, _, teams = p.partition(":")
            tokens.append(self.make_token(subject, teams=[t for t in teams.split(",") if t]))
        return tokens

    def start_broker(self, extra_env=None):
        log = open(os.path.join(self.tmp, "broker.log"), "a")
        env = self.env(self.broker_env)
        env.update(extra_env or {})
        self.broker = subprocess.Popen(
            [GANGWAY, "broker", "--listen", "127.0.0.1:%d" % self.port] + self.broker_args,
            env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.broker.poll() is not None:
                raise Failure("broker exited with %s; log:\n%s" % (self.broker.returncode, self.log("broker")))
            try:
                if self.get("/readyz", auth=False).status == 200:
                    time.sleep(0.05)
                    if self.broker.poll() is not None:
                        # Someone else answered on our port (a parallel run
                        # took it between free_port() and our bind).
                        raise Failure("broker exited with %s (port %d taken?); log:\n%s"
                                      % (self.broker.returncode, self.port, self.log("broker")))
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise Failure("broker not ready in 60 s; log:\n" + self.log("broker"))

    def start_replica(self, name, port=None, extra_env=None):
        """Another broker on the same database and topics (a replica behind a
        load balancer), listening on `port` (a free one when None), its log in
        NAME.log. Returns (process, port); close() stops it."""
        port = port or free_port()
        log = open(os.path.join(self.tmp, name + ".log"), "a")
        env = self.env(self.broker_env)
        env.update(extra_env or {})
        proc = subprocess.Popen(
            [GANGWAY, "broker", "--listen", "127.0.0.1:%d" % port] + self.broker_args,
            env=env, stdout=log, stderr=subprocess.STDOUT)
        self.replicas.append(proc)
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None:
                raise Failure("%s exited with %s; log:\n%s" % (name, proc.returncode, self.log(name)))
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/readyz")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    return proc, port
            except OSError:
                pass
            time.sleep(0.1)
        raise Failure("%s not ready in 60 s; log:\n%s" % (name, self.log(name)))

    def start_worker(self, concurrency=4, worker_type="exec", extra_args=(), extra_env=None):
        idx = len(self.workers)
        log = open(os.path.join(self.tmp, "worker%d.log" % idx), "a")
        w = subprocess.Popen(
            [GANGWAY, "worker", "--type", worker_type, "--concurrency", str(concurrency)] + list(extra_args),
            env=self.env(extra_env), stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(w)
        return w

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log")) as f:
                return f.read()[-20000:]
        except OSError:
            return ""

    def stop(self, proc, sig=signal.SIGTERM, timeout=20):
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise Failure("process %s did not stop on signal %d" % (proc.args[1], sig))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """`with s:` around a test's body: close() on the way out, printing the
        broker's and workers' logs when the body raised."""
        self.close(failed=exc_type is not None)

    def close(self, failed=False):
        if self.conn:
            self.conn.close()
        for w in self.workers:
            rc = self.stop(w)
            if rc not in (0, None, -9):
                print("worker exit status", rc)
        for r in self.replicas:
            self.stop(r)
        rc = self.stop(self.broker)
        if failed:
            print("---- broker log ----\n" + self.log("broker"))
            for i in range(len(self.workers)):
                print("---- worker%d log ----\n" % i + self.log("worker%d" % i))
        if rc not in (0, None, -9):
            raise Failure("broker exited with status %s on SIGTERM:\n%s" % (rc, self.log("broker")))
        if failed and os.environ.get("GW_TEST_KEEP"):
            # For whoever debugs a failure: the logs and the database stay.
            print("GW_TEST_KEEP: kept %s and database %s" % (self.tmp, self.db))
            return
        try:
            self.psql_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)
        except Failure as e:
            print("warning:", e)
        self.delete_topics()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def delete_topics(self):
        """Every topic of this Stack's prefix: a long-lived test Kafka would
        otherwise gather partitions until its log directories fail."""
        if not os.path.exists(TOPICS_TOOL):
            return
        try:
            p = subprocess.run([TOPICS_TOOL, self.kafka, "delete", self.prefix],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                print("warning: deleting topics %s*: %s" % (self.prefix, p.stderr.strip()))
        except (OSError, subprocess.TimeoutExpired) as e:
            print("warning: deleting topics %s*: %s" % (self.prefix, e))

    # -- HTTP --------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, auth=True, token=None, raw=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Content-Type": "application/json"} if (body is not None or raw is not None) else {}
        if auth:
            h["Authorization"] = "Bearer " + (token or self.token)
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                resp = Response(r.status, r.getheaders(), r.read())
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 1:
                    raise

    def raw_exchange(self, data, timeout=10):
        """Sends raw bytes on a new connection; returns the status line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as c:
            c.sendall(data.encode() if isinstance(data, str) else data)
            buf = b""
            while b"\r\n" not in buf:
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
            return buf.split(b"\r\n", 1)[0].decode(errors="replace")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def submit(self, action, inputs, **kw):
        return self.post("/v1/actions/%s/runs" % action, {"inputs": inputs}, **kw)

    def wait_run(self, run_id, timeout=60, until=TERMINAL):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            r = self.get("/v1/runs/" + run_id)
            if r.status == 200:
                last = r.json()
                if last["status"] in until:
                    return last
            time.sleep(0.05)
        raise Failure("run %s not in %s after %ss (last: %s)" % (run_id, sorted(until), timeout, last))

    # -- SQL ---------------------------------------------------------------
    def psql_admin(self, sql):
        return self._psql(self.pg_admin, sql)

    def lock_table(self, table, mode):
        """A TableLock on this stack's database."""
        return TableLock(self.dsn, table, mode)

    def sql(self, sql):
        return self._psql(self.dsn, sql)

    @staticmethod
    def _psql(dsn, sql):
        p = subprocess.run(["psql", dsn, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise Failure("psql: " + p.stderr)
        return p.stdout.strip()


def write_action(directory, action_id, command, inputs=None, **extra):
    os.makedirs(directory, exist_ok=True)
    d = {"id": action_id, "title": action_id, "worker_type": "exec",
         "backend": {"command": command} if command is not None else {},
         "inputs": inputs or {"type": "object"}}
    d.update(extra)
    with open(os.path.join(directory, action_id + ".json"), "w") as f:
        json.dump(d, f)


def write_lease_action(directory, action_id, kind, ttl):
    """An exec action (/bin/cat) whose run creates a resource of `kind` named
    by its "name" input, living for `ttl`, torn down by /bin/cat."""
    write_action(directory, action_id, ["/bin/cat"],
                 {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                 timeout_seconds=30, resource_key="/name", resource={"kind": kind, "name": "/name"},
                 ttl=ttl, teardown={"backend": {"command": ["/bin/cat"]}})


def main(test):
    """Runs test(), printing a clear verdict; exit 0 on success, 1 on failure."""
    try:
        test()
    except Failure as e:
        print("FAIL -", e, flush=True)
        sys.exit(1)
    print("PASS", flush=True)
