#!/usr/bin/env python3
"""The exec backend's persistent mode (docs/persistent-exec.md) in one file:
started once per worker slot, it serves run after run without a process
start per run.

Gangway writes one JSON object per line on stdin; this program answers with
one JSON object per line on stdout (stdout is the protocol: log through
"log" lines, or on stderr). The conversation:

    gangway> {"type":"hello","protocol":1}
    program> {"type":"hello","protocol":1}
    gangway> {"type":"run","id":"<run>/<attempt>","inputs":{...},...}
    program> {"type":"log","id":"<run>/<attempt>","stream":"stdout","line":"..."}
    program> {"type":"result","id":"<run>/<attempt>","status":"succeeded","outputs":{...}}
    gangway> {"type":"cancel","id":"...","reason":"requested"}  (only while a run is going)
    program> {"type":"cancelled","id":"..."}

It exits when stdin closes."""
import json
import os
import sys

served = 0


def send(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    kind = msg.get("type")
    if kind == "hello":
        send({"type": "hello", "protocol": 1})
    elif kind == "run":
        served += 1
        inputs = msg.get("inputs", {})
        text = inputs.get("message", "")
        if inputs.get("shout"):
            text = text.upper()
        send({"type": "log", "id": msg["id"], "stream": "stdout",
              "line": "run %s says: %s" % (msg.get("run_id"), text)})
        send({"type": "result", "id": msg["id"], "status": "succeeded",
              "outputs": {"message": text, "pid": os.getpid(), "runs_served": served}})
    elif kind == "cancel":
        # Every run here ends before the next line is read: a cancel can only
        # be for a run already answered, which Gangway has forgotten.
        pass
