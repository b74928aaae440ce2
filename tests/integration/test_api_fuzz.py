#!/usr/bin/env python3
"""Schemathesis against schemas/openapi.json, on a real stack: a broker and an
exec worker on a private database and topic prefix (harness.Stack), with
actions whose input schemas allow unbounded numbers, free-form objects and
strings, and some data seeded first (finished runs, a run waiting for
approval, a resource with an extension waiting for approval) so generated
requests reach more than 404s.

What it checks, for every operation of the document (coverage, fuzzing and
stateful phases, deterministic generation and at most 300 generated cases
per operation, so two runs generate the same cases; about a minute here):
  - no 5xx answer (not_a_server_error);
  - status codes, content types, headers and bodies as documented, SSE
    events included (each event's `data` against its contentSchema);
  - a served path with another method answers 405 with `Allow`
    (unsupported_method, allow_header_conformance);
  - an authenticated operation without the token answers 401 (ignored_auth);
  - a request the document says is invalid (a parameter out of range, a body
    of the wrong shape) is refused with a 4xx (negative_data_rejection);
and then that the broker is still running and exits 0 on SIGTERM.

Schemathesis comes from deploy/install-schemathesis (one pinned version in a
venv under the cache; the first run installs it). The whole run is bounded:
schemathesis gets at most ST_TIMEOUT seconds."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Failure, Stack, check, main, write_action, write_lease_action  # noqa: E402

ST_TIMEOUT = 420
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "unsupported_method",
    "allow_header_conformance", "ignored_auth", "negative_data_rejection",
])

# Per-operation settings. /v1/events never ends: each case reads for at most
# request-timeout seconds (keepalives every 200 ms keep it moving).
CONFIG = """\
[generation]
deterministic = true
# 150 cases an operation: the API grew to ~60 operations, and the whole run
# must stay a few minutes on a busy 2-core machine.
max-examples = 150
# The API ignores query parameters an operation does not list (the document
# says so): they are not invalid input.
allow-extra-parameters = true

[[operations]]
include-operation-id = "streamEvents"
request-timeout = 1.0
max-stream-events = 20
generation.max-examples = 6

# One optional enum parameter, and each case runs the whole verifier as a
# child process (decision 0048): a few cases cover it.
[[operations]]
include-operation-id = "verifyAudit"
generation.max-examples = 10

# The console's browser sign-in endpoints answer 4xx to anything but a real
# sign-in (no provider here, not dev mode): a few cases each cover them.
[[operations]]
include-operation-id = "oidcLogin"
generation.max-examples = 25

[[operations]]
include-operation-id = "oidcCallback"
generation.max-examples = 25

[[operations]]
include-operation-id = "devLogin"
generation.max-examples = 25

[[operations]]
include-operation-id = "authProviders"
generation.max-examples = 25

[[operations]]
include-operation-id = "sessionGet"
generation.max-examples = 25

[[operations]]
include-operation-id = "sessionDelete"
generation.max-examples = 25

# Sign-in with a token body and the dashboard's one parameter: fewer cases
# reach all their answers.
[[operations]]
include-operation-id = "sessionCreate"
generation.max-examples = 100

[[operations]]
include-operation-id = "dashboard"
generation.max-examples = 60

# Incoming webhooks: without a valid signature every case ends at the hook
# lookup (404) or the signature check (401); a few dozen cover that.
[[operations]]
include-operation-id = "invokeHook"
generation.max-examples = 30

# The submit's checks without the run (decision 0059): submitRun's cases
# already drive the same functions; a few cover the route and its answers.
[[operations]]
include-operation-id = "validateRun"
generation.max-examples = 40
"""


def install():
    p = subprocess.run([os.path.join(SRC, "deploy", "install-schemathesis")],
                       capture_output=True, text=True, timeout=600)
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        raise Failure("deploy/install-schemathesis failed (%d)" % p.returncode)
    return p.stdout.strip()


def write_actions(directory):
    free = {"type": "object"}
    numbers = {"type": "object", "properties": {
        "n": {"type": "number"}, "i": {"type": "integer"}, "s": {"type": "string"},
        "o": {"type": "object"}, "a": {"type": "array"}}}
    write_action(directory, "free", ["/bin/cat"], free, timeout_seconds=30)
    write_action(directory, "numbers", ["/bin/cat"], numbers, timeout_seconds=30)
    write_action(directory, "gated", ["/bin/cat"], free, timeout_seconds=30,
                 approval={"rules": [{"approvals": 1}]})
    write_lease_action(directory, "lease", "lease",
                       {"default_seconds": 3600, "max_seconds": 7200, "max_extension_seconds": 3600,
                        "extension_approval": {"approvals": 1}})


def seed(s):
    """Objects for the generated requests to find: finished runs with logs,
    a run waiting for approval and a resource whose extension waits, both
    asked for by someone else than the admin token schemathesis uses."""
    dev = s.make_token("dev", teams=["payments"])
    for action, inputs in [("free", {"x": [1, "two", {"three": None}]}),
                           ("numbers", {"n": 1.5, "i": -(2 ** 62), "s": "ü" * 50})]:
        run = s.wait_run(s.submit(action, inputs).json()["id"])
        check(run["status"] == "succeeded", "seed: a %s run succeeds" % action, run)
    r = s.submit("gated", {"why": "fuzz"}, token=dev)
    check(r.status == 202 and r.json()["status"] == "pending_approval",
          "seed: a run waits for approval", r.status, r.body)
    run = s.wait_run(s.submit("lease", {"name": "fuzz-lease"}, token=dev).json()["id"])
    check(run["status"] == "succeeded", "seed: a lease run creates a resource", run)
    rid = s.sql("SELECT resource_id FROM gw_runs WHERE id = '%s'" % run["id"])
    r = s.post("/v1/resources/%s/extend" % rid, {"seconds": 60}, token=dev)
    check(r.status == 202, "seed: an extension waits for approval", r.status, r.body)


def test():
    st = install()
    s = Stack("apifuzz", broker_env={"GW_SSE_KEEPALIVE_MS": "200"})
    s.actions_dir = os.path.join(s.tmp, "actions")
    write_actions(s.actions_dir)
    config = os.path.join(s.tmp, "schemathesis.toml")
    with open(config, "w") as f:
        f.write(CONFIG)
    with s:
        try:
            s.start_broker()
            s.start_worker(concurrency=2)
            seed(s)
            out = os.path.join(s.tmp, "schemathesis.log")
            argv = [st, "--config-file", config, "run", os.path.join(SRC, "schemas", "openapi.json"),
                    "--url", s.url, "--header", "Authorization: Bearer " + s.token,
                    "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful",
                    "--workers", "1", "--request-timeout", "10", "--continue-on-failure",
                    "--no-color", "--output-sanitize", "true"]
            started = time.time()
            with open(out, "w") as f:
                try:
                    p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=s.tmp,
                                       env=dict(os.environ, NO_COLOR="1"), timeout=ST_TIMEOUT)
                    rc = p.returncode
                except subprocess.TimeoutExpired:
                    rc = None
            took = time.time() - started
            with open(out) as f:
                report = f.read()
            tail = report.find("=== WARNINGS ===") if rc == 0 else -1
            if tail < 0:
                tail = report.find("=== SUMMARY ===") if rc == 0 else max(0, len(report) - 60000)
            print(report[tail:], flush=True)
            print("schemathesis took %.0f s" % took, flush=True)
            print("runs by action and status after it:\n" + s.sql(
                "SELECT action_id, status, count(*) FROM gw_runs GROUP BY 1, 2 ORDER BY 1, 2"), flush=True)
            check(rc is not None, "schemathesis finishes within %d s" % ST_TIMEOUT)
            if s.broker.poll() is not None:
                # What a worker was claiming or running when it went: the likely
                # cause (the claim moves a run to running before the broker
                # reads its answer).
                print("runs queued or running when the broker died:\n" + s.sql(
                    "SELECT id, action_id, status, left(inputs::text, 2000) FROM gw_runs"
                    " WHERE status IN ('queued', 'running')"))
            check(s.broker.poll() is None, "the broker is still running after the fuzzing",
                  s.broker.returncode)
            check(rc == 0, "schemathesis finds no failure (exit status %s)" % rc)
            rc = s.stop(s.broker, signal.SIGTERM)
            s.broker = None
            check(rc == 0, "the broker exits 0 on SIGTERM", rc)
        finally:
            if s.broker is not None and s.broker.poll() is not None:
                s.broker = None  # its death is reported above; still drop the database


if __name__ == "__main__":
    main(test)
