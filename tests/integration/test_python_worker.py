#!/usr/bin/env python3
"""A worker written in Python from docs/worker-protocol.md alone
(examples/workers/python/gangway_worker.py) joins the real broker: runs of
worker type `pyecho` succeed with the right outputs and logs, fail, time out
and survive on heartbeats; a duplicate delivery of a run.requested message is
refused by the claim and executes once; an unusable message is dead-lettered;
secret inputs are masked in logs; every message the worker wrote validates
against schemas/events/; SIGTERM finishes the current run (or, past the
grace period, reports worker_shutdown) and exits 0.

Needs python3-confluent-kafka (Debian). meson may run this file with another
python3 (e.g. pyenv's): it then re-executes itself with /usr/bin/python3."""
import json
import os
import signal
import subprocess
import sys
import time

DEBIAN_PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import GANGWAY, SRC, Stack, check, main, need_services  # noqa: E402

need_services()
try:
    from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
except ImportError as e:
    if os.path.exists(DEBIAN_PYTHON) and not os.environ.get("GW_PYWORKER_REEXEC") and \
            os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON):
        os.environ["GW_PYWORKER_REEXEC"] = "1"
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    print("skipped: python3-confluent-kafka is not importable by %s (%s); "
          "apt-get install -y python3-confluent-kafka" % (sys.executable, e))
    sys.exit(77)

WORKER = os.path.join(SRC, "examples", "workers", "python", "gangway_worker.py")
SCHEMAS = os.path.join(SRC, "schemas", "events")
FINAL = {"dev.gangway.run.succeeded", "dev.gangway.run.failed", "dev.gangway.run.timed_out",
         "dev.gangway.run.cancelled"}

# A handler module loaded with --import: proves the plug-in route, and logs a
# secret on purpose so we can see the worker mask it.
SECRET_HANDLER = '''
import gangway_worker

@gangway_worker.handler("pysecret")
def handle(run, log):
    log("connecting as %s with %s" % (run.inputs["user"], run.inputs["password"]))
    return {"user": run.inputs["user"]}
'''
PASSWORD = "hunter2-s3cr3t"


def write(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)


def actions(d):
    os.makedirs(d)
    echo_inputs = {"type": "object", "required": ["text"], "additionalProperties": False,
                   "properties": {"text": {"type": "string"}, "sleep": {"type": "number"},
                                  "fail": {"type": "string"}}}
    write(os.path.join(d, "pyecho.json"), {
        "id": "pyecho", "title": "Reverse a string (Python worker)", "worker_type": "pyecho",
        "backend": {"note": "read by the handler: any object the worker type defines"},
        "timeout_seconds": 60, "inputs": echo_inputs})
    write(os.path.join(d, "pyecho-short.json"), {
        "id": "pyecho-short", "title": "pyecho with a 2 s timeout", "worker_type": "pyecho",
        "backend": {}, "timeout_seconds": 2, "inputs": echo_inputs})
    write(os.path.join(d, "pysecret.json"), {
        "id": "pysecret", "title": "Logs a secret", "worker_type": "pysecret", "backend": {},
        "timeout_seconds": 30,
        "inputs": {"type": "object", "required": ["user", "password"],
                   "properties": {"user": {"type": "string"},
                                  "password": {"type": "string", "writeOnly": True}}}})


class PyWorkers:
    def __init__(self, stack):
        self.s = stack
        self.procs = []

    def start(self, worker_type, *extra):
        idx = len(self.procs)
        log = open(os.path.join(self.s.tmp, "py%d.log" % idx), "a")
        env = self.s.env({"PYTHONPATH": self.s.tmp})
        p = subprocess.Popen([DEBIAN_PYTHON, WORKER, "--type", worker_type] + list(extra),
                             env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def log(self, idx):
        return self.s.log("py%d" % idx)

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def kafka_conf(stack, group):
    return {"bootstrap.servers": stack.kafka, "group.id": group, "enable.auto.commit": False}


def read_topic(stack, topic, until=None, timeout=20):
    """Every message of topic from the beginning, as dicts (or raw bytes when
    not JSON). With `until`, re-reads until until(messages) is true."""
    deadline = time.time() + timeout
    while True:
        c = Consumer(kafka_conf(stack, stack.prefix + "test-reader"))
        try:
            md = c.list_topics(topic, timeout=10).topics.get(topic)
            parts = sorted(md.partitions) if md is not None and not md.error else []
            ends = {}
            for p in parts:
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if hi > lo:
                    ends[p] = hi
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
            out, done = [], {}
            stop_at = time.time() + 15
            while len(done) < len(ends) and time.time() < stop_at:
                m = c.poll(0.2)
                if m is None or m.error():
                    continue
                try:
                    out.append((m.key(), json.loads(m.value())))
                except ValueError:
                    out.append((m.key(), m.value()))
                if m.offset() + 1 >= ends[m.partition()]:
                    done[m.partition()] = True
        finally:
            c.close()
        if until is None or until(out) or time.time() > deadline:
            return out
        time.sleep(0.3)


def validate(paths):
    p = subprocess.run([GANGWAY, "schema", "validate", "--format-assert",
                        "--ref-dir", "https://gangway.dev/schemas/events/=" + SCHEMAS,
                        os.path.join(SCHEMAS, "envelope.schema.json")] + paths,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def validate_py(docs):
    """Second opinion from Debian's python3-jsonschema, when importable:
    the list of (index, error) it finds, or None when it is not there."""
    try:
        import jsonschema
    except ImportError:
        return None
    store = {}
    for name in os.listdir(SCHEMAS):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMAS, name)) as f:
                doc = json.load(f)
            store[doc["$id"]] = doc
    env = store["https://gangway.dev/schemas/events/envelope.schema.json"]
    v = jsonschema.Draft202012Validator(env, resolver=jsonschema.RefResolver.from_schema(env, store=store))
    return [(i, e.message) for i, d in enumerate(docs) for e in v.iter_errors(d)]


def wait_for(what, cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test():
    s = Stack("pyworker", broker_args=["--heartbeat", "1", "--heartbeat-timeout", "4"])
    s.actions_dir = os.path.join(s.tmp, "actions")
    actions(s.actions_dir)
    with open(os.path.join(s.tmp, "secret_handlers.py"), "w") as f:
        f.write(SECRET_HANDLER)
    py = PyWorkers(s)
    failed = True
    try:
        s.start_broker()
        echo = py.start("pyecho")
        py.start("pysecret", "--import", "secret_handlers")

        # 1. Success: outputs and log lines.
        r = s.submit("pyecho", {"text": "hello\nworld"})
        check(r.status in (201, 202), "a pyecho run is accepted", r.status, r.body)
        first = r.json()["id"]
        run = s.wait_run(first, timeout=60)
        check(run["status"] == "succeeded", "the Python worker runs it to success", run)
        check(run.get("outputs") == {"reversed": "dlrow\nolleh", "length": 11},
              "with the handler's outputs", run.get("outputs"))
        logs = s.get("/v1/runs/%s/logs" % first).json()["items"]
        lines = [(x["stream"], x["line"]) for x in logs]
        check(lines == [("stdout", "reversing 11 characters"), ("stdout", "> hello"), ("stdout", "> world")],
              "its log lines arrive in order", lines)

        # A line over 16 KiB is split on a character boundary, nothing lost.
        long_line = "\u00e9" * 9000  # 18000 bytes of UTF-8
        r = s.submit("pyecho", {"text": long_line}).json()
        run = s.wait_run(r["id"])
        pieces = [x["line"] for x in s.get("/v1/runs/%s/logs" % r["id"]).json()["items"]][1:]
        check(run["status"] == "succeeded" and len(pieces) == 2 and "".join(pieces) == "> " + long_line
              and all(len(p.encode()) <= 16384 for p in pieces),
              "a 18 KB log line arrives as two pieces of at most 16 KiB", [len(p) for p in pieces])
        long_id = r["id"]

        # 2. Failure raised by the handler.
        r = s.submit("pyecho", {"text": "x", "fail": "boom"}).json()
        run = s.wait_run(r["id"])
        check(run["status"] == "failed" and run.get("reason") == "exit_code",
              "a handler raising Failed fails the run (reason exit_code)", run)
        failed_id = r["id"]

        # 3. Heartbeats keep a 5 s run alive past the 4 s heartbeat timeout.
        r = s.submit("pyecho", {"text": "slow", "sleep": 5}).json()
        run = s.wait_run(r["id"], timeout=60)
        check(run["status"] == "succeeded", "a run longer than the heartbeat timeout succeeds", run)
        slow_id = r["id"]

        # 4. Timeout: the handler is told to stop, the run is timed_out.
        t0 = time.time()
        r = s.submit("pyecho-short", {"text": "t", "sleep": 60}).json()
        run = s.wait_run(r["id"], timeout=30)
        check(run["status"] == "timed_out" and time.time() - t0 < 20,
              "an overrunning run is timed_out at its 2 s timeout", run)
        timed_id = r["id"]

        # 5. Secrets are masked in log lines.
        r = s.submit("pysecret", {"user": "bob", "password": PASSWORD}).json()
        run = s.wait_run(r["id"])
        check(run["status"] == "succeeded" and run.get("outputs") == {"user": "bob"},
              "a handler loaded with --import runs", run)
        sl = [x["line"] for x in s.get("/v1/runs/%s/logs" % r["id"]).json()["items"]]
        check(sl == ["connecting as bob with ***"], "a writeOnly input's value is masked in logs", sl)
        secret_id = r["id"]

        # 6. Duplicate delivery: the same run.requested again -> claim refused, runs once.
        runs_topic = s.prefix + "gangway.runs.pyecho"
        msgs = read_topic(s, runs_topic)
        orig = [(k, v) for k, v in msgs if isinstance(v, dict) and v.get("subject") == first]
        check(len(orig) == 1, "the broker published one run.requested for the first run", len(orig))
        prod = Producer({"bootstrap.servers": s.kafka})
        prod.produce(runs_topic, key=orig[0][0], value=json.dumps(orig[0][1]))
        prod.produce(runs_topic, key=b"garbage", value=b"not json {")
        check(prod.flush(15) == 0, "the duplicate and a garbage message are produced")
        refused = "[%s] claim refused" % first
        check(wait_for("refusal", lambda: refused in py.log(0), 30),
              "the duplicate's claim is refused (409) and the message dropped", py.log(0)[-2000:])
        running = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'" % first)
        check(running == "1", "the run executed exactly once", running)
        check(s.get("/v1/runs/" + first).json()["status"] == "succeeded", "and is still succeeded")

        # 7. Dead letter of the garbage message.
        dl = read_topic(s, s.prefix + "gangway.deadletter",
                        until=lambda m: any(isinstance(v, dict) and v.get("data", {}).get("payload") == "not json {"
                                            for _, v in m))
        dead = [v for _, v in dl if isinstance(v, dict) and v.get("data", {}).get("payload") == "not json {"]
        check(len(dead) == 1 and dead[0]["data"]["topic"] == runs_topic,
              "an unusable message goes to the dead-letter topic", dead)

        # 8. Everything the worker wrote validates; seq is 1..n per attempt.
        ours = {first, long_id, failed_id, slow_id, timed_id, secret_id}
        evs = [v for _, v in read_topic(
            s, s.prefix + "gangway.events",
            until=lambda m: sum(1 for _, v in m if isinstance(v, dict) and v.get("type") in FINAL) >= len(ours))
            if isinstance(v, dict) and v.get("subject") in ours]
        files = []
        for i, ev in enumerate(evs + dead):
            files.append(os.path.join(s.tmp, "ev%04d.json" % i))
            write(files[-1], ev)
        rc, out = validate(files)
        check(rc == 0, "all %d worker messages validate against schemas/events/" % len(files), out[-3000:])
        second = validate_py(evs + dead)
        if second is not None:
            check(second == [], "python3-jsonschema agrees", second[:5])
        bad = dict(evs[0], data=dict(evs[0]["data"], seq=0))
        write(os.path.join(s.tmp, "bad.json"), bad)
        rc, _ = validate([os.path.join(s.tmp, "bad.json")])
        check(rc == 1 and validate_py([bad]) != [], "(and the validators do reject an event with seq 0)", rc)
        by_run = {}
        for ev in evs:
            by_run.setdefault(ev["subject"], []).append(ev)
        for rid, lst in sorted(by_run.items()):
            seqs = [e["data"]["seq"] for e in lst]
            types = [e["type"].rsplit(".", 1)[1] for e in lst]
            check(seqs == list(range(1, len(lst) + 1)) and types[0] == "started"
                  and sum(1 for e in lst if e["type"] in FINAL) == 1 and lst[-1]["type"] in FINAL
                  and all(e["id"] == "%s/1/%d" % (rid, e["data"]["seq"]) for e in lst),
                  "run %s: seq 1..%d in order, started first, one final event last" % (rid[:8], len(lst)), types)
        hb = sum(1 for e in by_run[slow_id] if e["type"] == "dev.gangway.run.heartbeat")
        check(hb >= 3, "the 5 s run sent heartbeats every second", hb)
        check(sum(1 for e in by_run[first] if e["type"] == "dev.gangway.run.started") == 1,
              "the duplicate delivery produced no second run.started")

        # 9. SIGTERM: the current run finishes, then the worker exits 0.
        r = s.submit("pyecho", {"text": "term", "sleep": 2}).json()
        s.wait_run(r["id"], until={"running"})
        echo.send_signal(signal.SIGTERM)
        rc = echo.wait(30)
        check(rc == 0, "on SIGTERM the worker exits 0", rc, py.log(0)[-2000:])
        run = s.wait_run(r["id"])
        check(run["status"] == "succeeded", "after finishing the run it was running", run)

        # 10. SIGTERM past the grace period: worker_shutdown.
        echo2 = py.start("pyecho", "--grace-seconds", "1")
        r = s.submit("pyecho", {"text": "long", "sleep": 60}).json()
        s.wait_run(r["id"], until={"running"}, timeout=60)
        echo2.send_signal(signal.SIGTERM)
        rc = echo2.wait(30)
        run = s.wait_run(r["id"])
        check(rc == 0 and run["status"] == "failed" and run.get("reason") == "worker_shutdown",
              "a run outliving the grace period fails with worker_shutdown", rc, run)
        failed = False
    finally:
        py.stop_all()
        if failed:
            for i in range(len(py.procs)):
                print("---- python worker %d log ----\n%s" % (i, py.log(i)))
        s.close(failed)


if __name__ == "__main__":
    main(test)
