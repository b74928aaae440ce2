#!/usr/bin/python3
"""A Gangway worker in Python: the protocol of docs/worker-protocol.md, nothing
else. It needs Debian's python3-confluent-kafka and the standard library.

    /usr/bin/python3 gangway_worker.py --type pyecho \
        --broker-url http://broker:8080 --token "$GW_WORKER_TOKEN" \
        --kafka kafka-1:9092 [--topic-prefix P] [--import my_handlers]

A handler is a function `handle(run, log) -> dict` registered for a worker
type, either with the decorator or with register():

    import gangway_worker

    @gangway_worker.handler("mytype")
    def handle(run, log):
        log("hello " + run.inputs["name"])   # one run.log line per line
        return {"greeting": "done"}           # run.succeeded outputs

`run` carries run_id, attempt, action (id, version, backend...), backend (the
action's "backend" object), inputs (secrets included: never print them; the
worker masks their values in log lines anyway), requested_by, resource_key,
timeout_seconds, and `stop`, a threading.Event set when the run must end
(timeout, worker shutdown): long handlers wait on it (`run.stop.wait(s)`) or
poll `run.should_stop()` and return promptly.

Returning a dict (or None) reports run.succeeded; raising Failed reports
run.failed with its reason/exit_code; any other exception reports
run.failed/backend_error. Timeouts are enforced here: at the deadline `stop`
is set and, after `kill_grace_seconds`, run.timed_out is reported whether or
not the handler has returned (a Python thread cannot be killed: a handler
that ignores `stop` keeps running in the background, its log lines dropped).

One run at a time per process: messages of one resource key can never
overlap and offsets are stored in order. Scale out by starting more
processes; the consumer group spreads the partitions over them.
"""

import argparse
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from confluent_kafka import Consumer, KafkaException, Producer

LOG = logging.getLogger("gangway_worker")

MAX_LINE_BYTES = 16384
MAX_OUTPUT_BYTES = 1 << 20
FINAL_RETRY_SECONDS = 1.0
CLAIM_TIMEOUT_SECONDS = 10
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
FAILED_REASONS = ("exit_code", "bad_outputs", "spawn_failed", "backend_error", "worker_shutdown")

# ------------------------------------------------------------------ handlers

HANDLERS = {}


def register(worker_type, fn):
    """Registers fn(run, log) -> dict as the handler of worker_type."""
    HANDLERS[worker_type] = fn
    return fn


def handler(worker_type):
    """Decorator form of register()."""
    return lambda fn: register(worker_type, fn)


class Failed(Exception):
    """Raised by a handler to end the run with run.failed."""

    def __init__(self, message, exit_code=-1, reason="exit_code"):
        super().__init__(message)
        if reason not in FAILED_REASONS:
            raise ValueError("reason must be one of %s" % (FAILED_REASONS,))
        self.message, self.exit_code, self.reason = message, int(exit_code), reason


class Run:
    """What a handler sees of a granted claim (claim.response.schema.json)."""

    def __init__(self, claim):
        action = claim.get("action") or {}
        self.run_id = claim["run_id"]
        self.attempt = claim["fence"]
        self.action = action
        self.backend = action.get("backend") or {}
        self.inputs = claim.get("inputs") or {}
        self.requested_by = claim.get("requested_by") or {}
        self.resource_key = claim.get("resource_key") or self.run_id
        self.timeout_seconds = int(action.get("timeout_seconds") or 0)
        self.stop = threading.Event()

    def should_stop(self):
        return self.stop.is_set()


# ------------------------------------------------------------------ messages


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def parse_request(value):
    """The data of a dev.gangway.run.requested CloudEvent, or (None, why)."""
    try:
        ev = json.loads(value)
    except (TypeError, ValueError, UnicodeDecodeError) as e:
        return None, "not JSON: %s" % e
    if not isinstance(ev, dict) or ev.get("specversion") != "1.0":
        return None, "not a CloudEvents 1.0 document"
    if ev.get("type") != "dev.gangway.run.requested":
        return None, "unexpected event type '%s'" % ev.get("type")
    data = ev.get("data")
    if not isinstance(data, dict):
        return None, "data must be an object"
    run_id, attempt = data.get("run_id"), data.get("attempt")
    if not isinstance(run_id, str) or not run_id or len(run_id) > 64 or \
            any(c not in "0123456789abcdefABCDEF-" for c in run_id):
        return None, "data must carry run_id and a positive integer attempt"
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= 1000000:
        return None, "data must carry run_id and a positive integer attempt"
    return data, None


def split_utf8(line, limit=MAX_LINE_BYTES):
    """Pieces of line of at most limit UTF-8 bytes, never cutting a character."""
    raw = line.encode("utf-8", "replace")
    while len(raw) > limit:
        cut = limit
        while cut > 0 and (raw[cut] & 0xC0) == 0x80:
            cut -= 1
        yield raw[:cut].decode("utf-8")
        raw = raw[cut:]
    yield raw.decode("utf-8")


def secret_values(inputs, pointers):
    """The values at the JSON pointers of the claim's secret_paths, as text."""
    out = []
    for ptr in pointers or ():
        node = inputs
        try:
            for tok in ptr.split("/")[1:]:
                tok = tok.replace("~1", "/").replace("~0", "~")
                node = node[int(tok)] if isinstance(node, list) else node[tok]
        except (KeyError, IndexError, ValueError, TypeError, AttributeError):
            continue
        text = node if isinstance(node, str) else json.dumps(node)
        if text:
            out.append(text)
    return sorted(set(out), key=len, reverse=True)  # longest first: no partial masks


def mask(text, secrets):
    for s in secrets:
        text = text.replace(s, "***")
    return text


# ------------------------------------------------------------------ one attempt


class Attempt:
    """The events of one (run, attempt): seq numbers and the final event.

    publish() may be called from the handler's thread (log lines) and the main
    thread (heartbeats); the lock makes seq order equal produce order, which
    the idempotent producer keeps on the run's partition."""

    def __init__(self, worker, run_id, attempt, worker_id, secrets):
        self.w, self.run_id, self.attempt, self.worker_id = worker, run_id, attempt, worker_id
        self.secrets = secrets
        self.seq = 0
        self.closed = False
        self.lock = threading.Lock()

    def _envelope(self, kind, data):
        data = dict(data or {})
        data.update(run_id=self.run_id, attempt=self.attempt, seq=self.seq, worker_id=self.worker_id)
        return json.dumps({
            "specversion": "1.0",
            "id": "%s/%d/%d" % (self.run_id, self.attempt, self.seq),
            "source": "gangway/worker/" + self.worker_id,
            "type": "dev.gangway.run." + kind,
            "subject": self.run_id,
            "time": now_rfc3339(),
            "datacontenttype": "application/json",
            "data": data,
        }, separators=(",", ":"))

    def publish(self, kind, data=None):
        """Hands one event to the producer; returns its payload, or None when
        the attempt is closed (final event sent) or the producer refused it.
        seq grows only for events the producer took: no gaps."""
        with self.lock:
            if self.closed:
                return None
            self.seq += 1
            payload = self._envelope(kind, data)
            if not self.w.produce_event(self.run_id, payload):
                self.seq -= 1
                return None
            return payload

    def close(self, kind, data):
        """The final event's payload, with the next seq; nothing is
        published after it (late log lines of an abandoned handler are
        dropped). The caller delivers it until Kafka acknowledges it."""
        with self.lock:
            self.closed = True
            self.seq += 1
            return self._envelope(kind, data)

    def log(self, line, stream="stdout"):
        """The handler's `log`: one run.log event per line (split at \\n and
        at 16 KiB), secret values masked."""
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream must be stdout or stderr")
        for part in str(line).split("\n"):
            for piece in split_utf8(mask(part.rstrip("\r"), self.secrets)):
                self.publish("log", {"stream": stream, "line": piece})


# ------------------------------------------------------------------ the worker


class Worker:
    def __init__(self, worker_type, fn, broker_url, token, kafka, props=None, prefix="",
                 grace_seconds=30.0, kill_grace_seconds=5.0, worker_id=None):
        self.type, self.fn = worker_type, fn
        self.broker_url, self.token = broker_url.rstrip("/"), token
        self.grace, self.kill_grace = grace_seconds, kill_grace_seconds
        self.worker_id_base = worker_id or "%s-%d" % (socket.gethostname(), os.getpid())
        self.n = 0
        self.runs_topic = prefix + "gangway.runs." + worker_type
        self.events_topic = prefix + "gangway.events"
        self.deadletter_topic = prefix + "gangway.deadletter"
        self.group = prefix + "gangway-workers-" + worker_type
        self.stopping = False
        self.fatal = False
        self.backlog = []  # messages polled while busy, in order
        common = {"bootstrap.servers": kafka, "client.id": "gangway-pyworker-" + worker_type}
        common.update(props or {})
        self.producer = Producer(dict(common, **{
            "enable.idempotence": True, "acks": "all", "linger.ms": 5,
            "error_cb": self._kafka_error}))
        self.consumer = Consumer(dict(common, **{
            "group.id": self.group,
            "enable.auto.commit": True,  # commits what store_offsets() stored
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "error_cb": self._kafka_error}))
        self.stats = dict(succeeded=0, failed=0, timed_out=0, refused=0, deadlettered=0)

    def _kafka_error(self, err):
        if err.fatal():
            # e.g. the idempotent producer lost its guarantees: nothing more
            # can be published safely. Exit non-zero; what is unresolved is
            # redelivered to another worker, whose claim is refused.
            LOG.error("kafka fatal error, stopping: %s", err)
            self.fatal = True
            self.stopping = True
        else:
            LOG.warning("kafka: %s", err)

    # -- Kafka plumbing ----------------------------------------------------
    def produce_event(self, key, payload, on_delivery=None):
        """produce() that waits out a full queue; False if Kafka refused it."""
        while True:
            try:
                self.producer.produce(self.events_topic, key=key, value=payload, on_delivery=on_delivery)
                return True
            except BufferError:
                self.producer.poll(0.1)
            except KafkaException as e:
                LOG.error("[%s] event not produced: %s", key, e)
                return False

    def _deliver(self, topic, key, payload, give_up_at=None):
        """Produces and waits for Kafka's acknowledgement, re-sending on
        failure (same bytes: the broker applies events idempotently)."""
        while True:
            box = {}
            try:
                self.producer.produce(topic, key=key, value=payload,
                                      on_delivery=lambda err, msg: box.setdefault("err", err))
            except BufferError:
                self.producer.poll(0.1)
                continue
            except KafkaException as e:
                box["err"] = e
            while "err" not in box:
                self.producer.poll(0.1)
                self._poll_consumer()
            if box["err"] is None:
                return True
            LOG.error("[%s] publish to %s failed, retrying: %s", key, topic, box["err"])
            if self.fatal or (give_up_at is not None and time.monotonic() > give_up_at):
                return False
            self._idle(FINAL_RETRY_SECONDS)

    def _poll_consumer(self):
        """Keeps the consumer alive while busy (max.poll.interval.ms); what
        arrives meanwhile waits in the backlog, in order."""
        m = self.consumer.poll(0)
        if m is not None and not m.error():
            self.backlog.append(m)

    def _idle(self, seconds):
        end = time.monotonic() + seconds
        while True:
            self.producer.poll(0)
            self._poll_consumer()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def _store(self, msg):
        """Marks msg done: auto-commit commits it. Fails harmlessly when the
        partition was revoked meanwhile (its new owner's claim is refused)."""
        try:
            self.consumer.store_offsets(message=msg)
        except KafkaException as e:
            LOG.info("offset of %s[%d]@%d not stored: %s", msg.topic(), msg.partition(), msg.offset(), e)

    def _on_revoke(self, consumer, partitions):
        gone = {(p.topic, p.partition) for p in partitions}
        self.backlog = [m for m in self.backlog if (m.topic(), m.partition()) not in gone]

    def _deadletter(self, msg, reason):
        self.stats["deadlettered"] += 1
        raw = msg.value() or b""
        ident = "%s/%d/%d" % (msg.topic(), msg.partition(), msg.offset())
        payload = json.dumps({
            "specversion": "1.0", "id": ident, "source": "gangway/worker/" + self.worker_id_base,
            "type": "dev.gangway.deadletter", "subject": ident, "time": now_rfc3339(),
            "datacontenttype": "application/json",
            "data": {"reason": reason, "topic": msg.topic(), "partition": msg.partition(),
                     "offset": msg.offset(), "payload": raw.decode("utf-8", "replace")},
        }, separators=(",", ":"))
        LOG.warning("message %s dead-lettered: %s", ident, reason)
        self._deliver(self.deadletter_topic, msg.key(), payload, give_up_at=time.monotonic() + 30)

    # -- claim -------------------------------------------------------------
    def _claim_once(self, run_id, attempt, worker_id):
        url = "%s/internal/v1/runs/%s/claim" % (self.broker_url, urllib.parse.quote(run_id, safe=""))
        body = json.dumps({"attempt": attempt, "worker_id": worker_id, "worker_type": self.type}).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=CLAIM_TIMEOUT_SECONDS) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            return None, str(e).encode()

    def claim(self, run_id, attempt, worker_id):
        """('granted', reply) | ('refused', detail) | ('not_found', '') |
        ('rejected', detail) | ('abandoned', '') when stopping mid-retry."""
        delay = BACKOFF_FIRST
        while True:
            status, body = self._claim_once(run_id, attempt, worker_id)
            if status == 200:
                try:
                    return "granted", json.loads(body)
                except ValueError:
                    status = None  # a broken reply: treat as unavailable
            elif status is not None and status not in (401, 403) and status < 500:
                try:
                    problem = json.loads(body)
                except ValueError:
                    problem = {}
                if status == 409:
                    return "refused", problem.get("detail", "")
                if status == 404:
                    return "not_found", ""
                return "rejected", "claim answered %d: %s" % (status, problem.get("detail", ""))
            if status in (401, 403):
                LOG.error("[%s] claim answered %d: the worker token is wrong or lacks the worker role", run_id, status)
            else:
                LOG.warning("[%s] broker unavailable (%s), claim retried in %.1fs", run_id, status or body.decode(), delay)
            if self.stopping:
                return "abandoned", ""
            self._idle(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    # -- one message -------------------------------------------------------
    def handle_message(self, msg):
        req, why = parse_request(msg.value())
        if req is None:
            self._deadletter(msg, why)
            self._store(msg)
            return
        if req.get("worker_type", self.type) != self.type:
            self._deadletter(msg, "worker_type '%s' on the topic of '%s'" % (req.get("worker_type"), self.type))
            self._store(msg)
            return
        run_id, attempt = req["run_id"], req["attempt"]
        self.n += 1
        worker_id = "%s-%d" % (self.worker_id_base, self.n)
        result, reply = self.claim(run_id, attempt, worker_id)
        if result == "abandoned":
            LOG.info("[%s] shutting down before the claim resolved: message left for redelivery", run_id)
            return
        if result in ("refused", "not_found"):
            self.stats["refused"] += 1
            LOG.info("[%s] claim %s%s: message dropped, nothing executed", run_id, result,
                     " (%s)" % reply if reply else "")
            self._store(msg)
            return
        if result == "rejected":
            self._deadletter(msg, reply)
            self._store(msg)
            return
        LOG.info("[%s] claim granted (attempt %d), running %s", run_id, reply.get("fence", attempt),
                 (reply.get("action") or {}).get("id"))
        if self.execute(reply, worker_id):
            self._store(msg)

    def execute(self, claim, worker_id):
        """Runs a granted claim to its final event; True once Kafka acknowledged it."""
        run = Run(claim)
        att = Attempt(self, run.run_id, run.attempt, worker_id,
                      secret_values(run.inputs, claim.get("secret_paths")))
        outcome = {}

        def body():
            try:
                outcome["value"] = self.fn(run, att.log)
            except BaseException as e:  # noqa: B902 - reported, never raised further
                outcome["error"] = e

        att.publish("started")
        assigned = self.consumer.assignment()
        self.consumer.pause(assigned)  # one run at a time: no prefetch pile-up
        thread = threading.Thread(target=body, name="run-" + run.run_id[:8], daemon=True)
        start = time.monotonic()
        interval = float(claim.get("heartbeat_interval_seconds") or 5)
        next_hb = start + interval
        deadline = start + run.timeout_seconds if run.timeout_seconds > 0 else None
        grace_end = stop_end = None
        why = None
        thread.start()
        while thread.is_alive():
            thread.join(0.05)
            self.producer.poll(0)
            self._poll_consumer()
            now = time.monotonic()
            if now >= next_hb:
                att.publish("heartbeat")
                next_hb = now + interval
            if why is None and deadline is not None and now >= deadline:
                why = "timeout"
            if why is None and self.stopping:
                grace_end = grace_end or now + self.grace
                if now >= grace_end:
                    why = "shutdown"
            if why is not None and stop_end is None:
                LOG.warning("[%s] %s: asking the handler to stop", run.run_id, why)
                run.stop.set()
                stop_end = now + self.kill_grace
            if stop_end is not None and now >= stop_end:
                LOG.error("[%s] handler ignored stop for %.0fs: reported and abandoned", run.run_id, self.kill_grace)
                break
        run.stop.set()
        kind, data = self._final(run, why, outcome, att.secrets)
        self.stats[kind] += 1
        payload = att.close(kind, data)
        ok = self._deliver(self.events_topic, run.run_id, payload,
                           give_up_at=time.monotonic() + 30 if self.stopping else None)
        try:
            self.consumer.resume([p for p in assigned])
        except KafkaException:
            pass  # revoked meanwhile
        LOG.info("[%s] %s%s", run.run_id, kind, "" if ok else " (not acknowledged: left for redelivery)")
        return ok

    @staticmethod
    def _final(run, why, outcome, secrets):
        if why == "timeout":
            return "timed_out", {"message": "the action's timeout of %ds expired" % run.timeout_seconds}
        if why == "shutdown":
            return "failed", {"reason": "worker_shutdown", "exit_code": -1,
                              "message": "the worker shut down before the run finished"}
        err = outcome.get("error")
        if isinstance(err, Failed):
            return "failed", {"reason": err.reason, "exit_code": err.exit_code,
                              "message": mask(err.message, secrets)}
        if err is not None:
            return "failed", {"reason": "backend_error", "exit_code": -1,
                              "message": mask("%s: %s" % (type(err).__name__, err), secrets)[:4096]}
        value = outcome.get("value")
        if value is None:
            value = {}
        if not isinstance(value, dict):
            return "failed", {"reason": "bad_outputs", "exit_code": -1,
                              "message": "the handler returned %s, not a dict" % type(value).__name__}
        try:
            size = len(json.dumps(value).encode())
        except (TypeError, ValueError) as e:
            return "failed", {"reason": "bad_outputs", "exit_code": -1, "message": "outputs are not JSON: %s" % e}
        if size > MAX_OUTPUT_BYTES:
            return "failed", {"reason": "bad_outputs", "exit_code": -1, "message": "outputs exceed 1 MiB"}
        return "succeeded", {"outputs": value}

    # -- main loop ---------------------------------------------------------
    def run_forever(self):
        self.consumer.subscribe([self.runs_topic], on_revoke=self._on_revoke)
        LOG.info("worker %s: type %s, topic %s, group %s", self.worker_id_base, self.type,
                 self.runs_topic, self.group)
        try:
            while not self.stopping:
                msg = self.backlog.pop(0) if self.backlog else self.consumer.poll(0.2)
                self.producer.poll(0)
                if msg is None:
                    continue
                if msg.error():
                    LOG.debug("consumer: %s", msg.error())
                    continue
                self.handle_message(msg)
        finally:
            LOG.info("stopping: %s", " ".join("%s=%d" % kv for kv in sorted(self.stats.items())))
            left = self.producer.flush(10)
            if left:
                LOG.error("%d events not delivered at exit", left)
            self.consumer.close()  # commits stored offsets, leaves the group

    def request_stop(self, *_):
        self.stopping = True


# ------------------------------------------------------------------ example type


@handler("pyecho")
def pyecho(run, log):
    """Reverses inputs.text. Optional: `sleep` seconds (ends early on stop),
    `fail` (a message: the run fails with exit_code 3)."""
    text = run.inputs.get("text")
    if not isinstance(text, str):
        raise Failed("inputs.text must be a string", exit_code=2)
    log("reversing %d characters" % len(text))
    for line in text.splitlines():
        log("> " + line)
    if run.inputs.get("sleep"):
        if run.stop.wait(float(run.inputs["sleep"])):
            log("stopped early", stream="stderr")
            return None
    if run.inputs.get("fail"):
        log(str(run.inputs["fail"]), stream="stderr")
        raise Failed(str(run.inputs["fail"]), exit_code=3)
    return {"reversed": text[::-1], "length": len(text)}


# ------------------------------------------------------------------ CLI


def parse_props(text):
    out = {}
    for item in (text or "").split(","):
        if item.strip():
            k, sep, v = item.partition("=")
            if not sep:
                raise SystemExit("GW_KAFKA_PROPS: '%s' is not key=value" % item)
            out[k.strip()] = v.strip()
    return out


def main(argv=None):
    env = os.environ.get
    p = argparse.ArgumentParser(description="A Gangway worker in Python (docs/worker-protocol.md).")
    p.add_argument("--type", required=True, help="worker type, e.g. pyecho")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it registers handlers); repeatable")
    p.add_argument("--broker-url", default=env("GW_BROKER_URL"))
    p.add_argument("--token", default=env("GW_WORKER_TOKEN"))
    p.add_argument("--kafka", default=env("GW_KAFKA_BROKERS"))
    p.add_argument("--kafka-props", default=env("GW_KAFKA_PROPS", ""), help="k=v,k=v librdkafka properties")
    p.add_argument("--topic-prefix", default=env("GW_TOPIC_PREFIX", ""))
    p.add_argument("--grace-seconds", type=float, default=30.0,
                   help="on SIGTERM, how long the current run may finish")
    p.add_argument("--kill-grace-seconds", type=float, default=5.0,
                   help="after stop is set, how long before the run is reported anyway")
    p.add_argument("--worker-id", default=None)
    a = p.parse_args(argv)
    level = (env("GW_LOG_LEVEL") or "info").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not a.broker_url or not a.token or not a.kafka:
        p.error("--broker-url, --token and --kafka (or GW_BROKER_URL, GW_WORKER_TOKEN, GW_KAFKA_BROKERS) are required")
    # Handler modules `import gangway_worker`: make that this very module, not a second copy.
    sys.modules.setdefault("gangway_worker", sys.modules[__name__])
    for m in a.imports:
        importlib.import_module(m)
    fn = HANDLERS.get(a.type)
    if fn is None:
        p.error("no handler registered for worker type '%s' (have: %s)" % (a.type, ", ".join(sorted(HANDLERS))))
    w = Worker(a.type, fn, a.broker_url, a.token, a.kafka, parse_props(a.kafka_props), a.topic_prefix,
               a.grace_seconds, a.kill_grace_seconds, a.worker_id)
    signal.signal(signal.SIGTERM, w.request_stop)
    signal.signal(signal.SIGINT, w.request_stop)
    w.run_forever()
    return 1 if w.fatal else 0


if __name__ == "__main__":
    sys.exit(main())
