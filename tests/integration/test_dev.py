#!/usr/bin/env python3
"""`gangway dev` is a real small installation (issue 12):

- the policy given through GW_POLICY_FILE (first start) and through --policy
  (second start, another policy) is the one the broker enforces;
- the printed `export` lines are right: GANGWAY_URL answers, GW_PG connects
  to the dev database, and an OUTSIDE worker started with GW_KAFKA_BROKERS /
  GW_KAFKA_PROPS / GW_BROKER_URL / GW_WORKER_TOKEN (a `gangway worker --type
  jenkins` against the fake Jenkins, a type dev does not run here; and the
  Python SDK worker for `pyecho` when python3-confluent-kafka is there)
  attaches to the mock cluster and completes runs;
- an action whose worker type has no worker gets the loud startup line;
- `gangway dev token create --subject ... --team ... --role ...` makes a
  token the broker maps to that principal;
- a restart on the same data directory keeps the URL and the admin token,
  dev.json is mode 0600, and a taken stored port is a clear error;
- unknown flags and --pg are refused with exit 2.

Needs only PostgreSQL's server binaries (dev starts its own cluster) and the
mock Kafka inside dev; it runs where the other integration tests run."""
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Failure, check, main, need_services  # noqa: E402

FAKE = os.path.join(SRC, "tests", "fakes", "jenkins", "fake_jenkins.py")
PYWORKER = os.path.join(SRC, "examples", "workers", "python", "gangway_worker.py")
DEBIAN_PYTHON = "/usr/bin/python3"
JK_TOKEN = "dev-t0ken"


def base_env(extra=None):
    """PATH and the sanitizer settings meson gives the test, nothing else:
    dev must work from what it is given."""
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(extra or {})
    return e


def write(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)


def exec_action(d, action_id):
    write(os.path.join(d, action_id + ".json"), {
        "id": action_id, "title": action_id, "worker_type": "exec",
        "backend": {"command": ["/bin/cat"]}, "timeout_seconds": 30,
        "inputs": {"type": "object"}})


def policy(path, action):
    """Team payments may run `action` and nothing else."""
    write(path, {"version": 1, "roles": {"runner": {"grants": [
        {"permissions": ["run"], "actions": [action]}]}},
        "bindings": [{"roles": ["runner"], "teams": ["payments"]}]})


def start_fake_jenkins():
    p = subprocess.Popen([sys.executable, FAKE, "--user", "gangway", "--token", JK_TOKEN,
                          "--job", "ci/build"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        p.kill()
        raise Failure("fake Jenkins did not start: %r" % line)
    return p, "http://127.0.0.1:%d" % int(line.split()[1])


def have_pyworker():
    if not os.path.exists(DEBIAN_PYTHON):
        return False
    return subprocess.run([DEBIAN_PYTHON, "-c", "import confluent_kafka"],
                          capture_output=True).returncode == 0


class Dev:
    """One `gangway dev` process: its printed exports and its stderr log."""

    def __init__(self, tmp, data_dir, args=(), env=None, name="dev"):
        self.log_path = os.path.join(tmp, name + ".log")
        self.log_file = open(self.log_path, "w")
        e = base_env({"GW_LOG_LEVEL": "info"})
        e.update(env or {})
        self.proc = subprocess.Popen([GANGWAY, "dev", "--data-dir", data_dir, "--workers", "2"] +
                                     list(args), env=e, stdout=subprocess.PIPE,
                                     stderr=self.log_file, text=True)
        self.exports = {}
        deadline = time.time() + 120
        while "GW_KAFKA_PROPS" not in self.exports:
            line = self.proc.stdout.readline()
            if not line or time.time() > deadline:
                self.stop()
                raise Failure("gangway dev printed no exports; log:\n" + self.log())
            check(line.startswith("export "), "dev prints an export line", line)
            name, _, value = shlex.split(line)[1].partition("=")
            print("   ", name)
            self.exports[name] = value
        self.url = self.exports["GANGWAY_URL"]
        self.token = self.exports["GANGWAY_TOKEN"]

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-30000:]

    def request(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": "Bearer " + (token or self.token),
            "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def submit(self, action, inputs, token=None):
        return self.request("POST", "/v1/actions/%s/runs" % action, {"inputs": inputs}, token)

    def wait_run(self, run_id, timeout=90):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            st, last = self.request("GET", "/v1/runs/" + run_id)
            if st == 200 and last["status"] in ("succeeded", "failed", "timed_out", "cancelled"):
                return last
            time.sleep(0.1)
        raise Failure("run %s did not end in %ss (last: %s)\n%s" % (run_id, timeout, last, self.log()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return self.proc.returncode


def dev_token(data_dir, *args):
    p = subprocess.run([GANGWAY, "dev", "token", "create", "--data-dir", data_dir] + list(args),
                       capture_output=True, text=True, timeout=60, env=base_env())
    if p.returncode != 0:
        raise Failure("gangway dev token create failed (%d): %s" % (p.returncode, p.stderr))
    return p.stdout.strip()


def stop_proc(p):
    if p is not None and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test():
    need_services()  # only to run where the other integration tests run
    tmp = tempfile.mkdtemp(prefix="gw-dev-")
    os.chmod(tmp, 0o755)  # dev's PostgreSQL may run as user postgres
    data = os.path.join(tmp, "data")
    actions = os.path.join(tmp, "actions")
    os.makedirs(actions)
    exec_action(actions, "hello")
    exec_action(actions, "hello2")
    fake, base = start_fake_jenkins()
    write(os.path.join(actions, "jk-build.json"), {
        "id": "jk-build", "title": "jk-build", "worker_type": "jenkins",
        "backend": {"url": base, "job": "ci/build", "user_env": "JK_USER", "token_env": "JK_TOKEN",
                    "poll_interval_ms": 100},
        "timeout_seconds": 60, "inputs": {"type": "object"}})
    write(os.path.join(actions, "pyecho.json"), {
        "id": "pyecho", "title": "pyecho", "worker_type": "pyecho", "backend": {},
        "timeout_seconds": 60,
        "inputs": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}})
    write(os.path.join(actions, "tf-env.json"), {
        "id": "tf-env", "title": "tf-env", "worker_type": "terraform",
        "backend": {"module": os.path.join(SRC, "examples", "terraform", "hello")},
        "timeout_seconds": 60, "inputs": {"type": "object"}})
    policy_a, policy_b = os.path.join(tmp, "a.json"), os.path.join(tmp, "b.json")
    policy(policy_a, "hello")
    policy(policy_b, "hello2")
    dev = outside = py = None
    try:
        # Usage errors come before anything starts.
        p = subprocess.run([GANGWAY, "dev", "--data-dir", data, "--no-such-flag"],
                           capture_output=True, text=True, timeout=30, env=base_env())
        check(p.returncode == 2 and "unrecognized option '--no-such-flag'" in p.stderr,
              "an unknown flag is refused with exit 2", p.returncode, p.stderr[:300])
        p = subprocess.run([GANGWAY, "dev", "--data-dir", data, "--pg", "host=elsewhere"],
                           capture_output=True, text=True, timeout=30, env=base_env())
        check(p.returncode == 2 and "dev runs its own PostgreSQL" in p.stderr,
              "--pg is refused with a reason", p.returncode, p.stderr)

        # ---- first start: the policy through GW_POLICY_FILE --------------
        # A GW_PG left in the shell (from an earlier dev) must not matter.
        # No terraform binary here: no terraform pool.
        dev = Dev(tmp, data, ["--listen", "127.0.0.1:0", "--actions", actions],
                  env={"GW_POLICY_FILE": policy_a, "GW_PG": "host=nowhere.invalid",
                       "GW_TERRAFORM_BIN": os.path.join(tmp, "no-terraform")}, name="dev1")
        ex = dev.exports
        for name in ("GANGWAY_URL", "GANGWAY_TOKEN", "GW_BROKER_URL", "GW_WORKER_TOKEN", "GW_PG",
                     "GW_KAFKA_BROKERS", "GW_KAFKA_PROPS"):
            check(ex.get(name), "dev exports " + name)
        check(ex["GW_BROKER_URL"] == ex["GANGWAY_URL"], "GW_BROKER_URL is the API's URL")
        with urllib.request.urlopen(ex["GANGWAY_URL"] + "/readyz", timeout=10) as r:
            check(r.status == 200, "GANGWAY_URL answers /readyz")
        st, me = dev.request("GET", "/v1/me")
        check(st == 200 and "admin" in me.get("permissions", []), "GANGWAY_TOKEN is an admin token",
              st, me)
        # The console login link: once, signs in as the dev admin (issue 13).
        link = ex.get("GANGWAY_CONSOLE_URL", "")
        check(link.startswith(ex["GANGWAY_URL"] + "/auth/dev-login?code="), "dev prints GANGWAY_CONSOLE_URL",
              link)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(link, timeout=10)
            check(False, "the login link redirects")
        except urllib.error.HTTPError as e:
            check(e.code == 302 and e.headers.get("Location") == "/ui/", "the login link leads to /ui/", e.code)
            cookie = e.headers.get("Set-Cookie", "").split(";")[0]
        check(cookie.startswith("gw_session="), "the login link sets the session cookie", cookie)
        req = urllib.request.Request(ex["GANGWAY_URL"] + "/v1/session", headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=10) as r:
            sess = json.loads(r.read())
        check("admin" in sess["roles"], "the console session is the dev admin's", sess)
        try:
            opener.open(link, timeout=10)
            check(False, "a second use of the login link is refused")
        except urllib.error.HTTPError as e:
            check(e.code == 401, "a second use of the login link is refused", e.code)
        q = subprocess.run(["psql", ex["GW_PG"], "-At", "-c",
                            "SELECT count(*) FROM gw_api_tokens WHERE 'worker' = ANY(roles)"],
                           capture_output=True, text=True, timeout=30)
        check(q.returncode == 0 and int(q.stdout.strip()) >= 1,
              "GW_PG connects to the dev database (its worker token is there)", q.stdout, q.stderr)
        log = dev.log()
        for a, t in (("jk-build", "jenkins"), ("pyecho", "pyecho"), ("tf-env", "terraform")):
            check("no worker for action '%s' (worker type %s): its runs will stay queued" % (a, t)
                  in log, "the loud startup line names action %s" % a)
        check("no worker for action 'hello'" not in log, "no such line for an exec action")
        check("no terraform or tofu binary" in log, "the terraform line says why")
        mode = stat.S_IMODE(os.stat(os.path.join(data, "dev.json")).st_mode)
        check(mode == 0o600, "dev.json is mode 0600", oct(mode))

        # dev token create: the principal the broker sees.
        carol = dev_token(data, "--subject", "carol", "--team", "payments")
        svc = dev_token(data, "--subject", "svc-bot", "--team", "ops", "--role", "admin")
        st, me = dev.request("GET", "/v1/me", token=carol)
        # Subjects are canonical (docs/policy.md#subjects): "carol" is user:default/carol.
        check(st == 200 and me["subject"] == "user:default/carol" and me["teams"] == ["payments"] and
              "admin" not in me["permissions"],
              "a dev token create token is carol of payments", st, me)
        st, me = dev.request("GET", "/v1/me", token=svc)
        check(st == 200 and me["subject"] == "user:default/svc-bot" and
              "admin" in me.get("permissions", []),
              "--role admin gives the admin role", st, me)

        # The policy from GW_POLICY_FILE is enforced.
        st, r = dev.submit("hello", {}, token=carol)
        check(st == 202, "policy A lets carol run hello", st, r)
        check(dev.wait_run(r["id"])["status"] == "succeeded", "dev's exec pool runs it")
        st, r = dev.submit("hello2", {}, token=carol)
        check(st == 403, "policy A (GW_POLICY_FILE) refuses hello2 to carol", st, r)

        # An outside `gangway worker` of a type dev does not run (jenkins: the
        # action's credentials are not in dev's environment) attaches with
        # the printed variables only.
        wenv = base_env({"JK_USER": "gangway", "JK_TOKEN": JK_TOKEN})
        for k in ("GW_BROKER_URL", "GW_WORKER_TOKEN", "GW_KAFKA_BROKERS", "GW_KAFKA_PROPS"):
            wenv[k] = ex[k]
        wlog = open(os.path.join(tmp, "outside.log"), "w")
        outside = subprocess.Popen([GANGWAY, "worker", "--type", "jenkins"], env=wenv,
                                   stdout=wlog, stderr=subprocess.STDOUT)
        st, r = dev.submit("jk-build", {})
        check(st == 202, "jk-build is accepted", st, r)
        done = dev.wait_run(r["id"])
        check(done["status"] == "succeeded" and (done.get("outputs") or {}).get("result") == "SUCCESS",
              "the outside jenkins worker completes the run through dev's mock Kafka", done)

        if have_pyworker():
            plog = open(os.path.join(tmp, "py.log"), "w")
            py = subprocess.Popen([DEBIAN_PYTHON, PYWORKER, "--type", "pyecho"], env=wenv,
                                  stdout=plog, stderr=subprocess.STDOUT)
            st, r = dev.submit("pyecho", {"text": "abc"})
            check(st == 202, "pyecho is accepted", st, r)
            done = dev.wait_run(r["id"])
            check(done["status"] == "succeeded", "the Python SDK worker completes a run", done)
        else:
            print("note: python3-confluent-kafka missing; the Python worker part is skipped")
        stop_proc(py)
        stop_proc(outside)
        outside = py = None
        check(dev.stop() == 0, "dev stops cleanly on SIGTERM")
        url1, token1 = dev.url, dev.token

        # ---- restart: same data dir, no --listen, policy B through --policy;
        # the Jenkins credentials in dev's environment now: dev runs a
        # jenkins pool itself, which inherits them.
        env2 = {"JK_USER": "gangway", "JK_TOKEN": JK_TOKEN}
        tf = os.environ.get("GW_TERRAFORM_BIN") or shutil.which("terraform") or shutil.which("tofu")
        if tf:
            env2["GW_TERRAFORM_BIN"] = tf
        dev = Dev(tmp, data, ["--actions", actions, "--policy", policy_b], env=env2, name="dev2")
        check(dev.url == url1, "a restart keeps the URL", dev.url, url1)
        check(dev.token == token1, "a restart keeps the admin token")
        st, r = dev.submit("hello2", {}, token=carol)
        check(st == 202, "policy B (--policy) lets carol run hello2; her token survived", st, r)
        st, r = dev.submit("hello", {}, token=carol)
        check(st == 403, "policy B (--policy) refuses hello to carol", st, r)
        # SIGHUP to dev reaches its broker: the edited policy applies.
        policy(policy_b, "hello")
        dev.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 20
        while time.time() < deadline:
            st, r = dev.submit("hello", {}, token=carol)
            if st == 202:
                break
            time.sleep(0.2)
        check(st == 202 and dev.proc.poll() is None,
              "SIGHUP to dev reloads its broker's policy (and dev lives on)", st, r)
        log = dev.log()
        check("no worker for action 'jk-build'" not in log and
              "worker pool for type jenkins started" in log and
              "no worker for action 'pyecho'" in log,
              "with its credentials set, jk-build gets dev's own jenkins pool")
        st, r = dev.submit("jk-build", {})
        done = dev.wait_run(r["id"]) if st == 202 else r
        check(done.get("status") == "succeeded",
              "dev's jenkins pool, with the credentials it inherited, completes the run", done)
        if tf:
            check("no worker for action 'tf-env'" not in log and
                  "worker pool for type terraform started" in log,
                  "with a terraform binary, dev runs a terraform pool")
        check(dev.stop() == 0, "dev stops cleanly again")

        # ---- the stored port taken: a clear error, nothing started --------
        port = int(url1.rsplit(":", 1)[1])
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen(1)
        try:
            p = subprocess.run([GANGWAY, "dev", "--data-dir", data, "--actions", actions],
                               capture_output=True, text=True, timeout=60, env=base_env())
        finally:
            blocker.close()
        check(p.returncode == 1 and "127.0.0.1:%d is already in use" % port in p.stderr and
              "--listen 127.0.0.1:0" in p.stderr, "a taken stored port is a clear error",
              p.returncode, p.stderr)
        p = subprocess.run([GANGWAY, "dev", "token", "create", "--data-dir", data, "--subject", "x"],
                           capture_output=True, text=True, timeout=60, env=base_env())
        check(p.returncode == 1 and "is not running" in p.stderr and not p.stdout,
              "dev token create with dev stopped says so", p.returncode, p.stderr)
        dev = None
    finally:
        stop_proc(py)
        stop_proc(outside)
        if dev is not None:
            dev.stop()
            print("---- dev log ----\n" + dev.log())
        fake.terminate()
        fake.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(test)
