"""The action program of the fault-injection suite, and the reader of what it
writes.

As a program (the exec backend runs it: `python3 -I -S ledger.py LEDGER`):
reads the inputs from stdin, appends

    <run id> <attempt> <pid> <ppid> start <epoch s>

to LEDGER, sleeps inputs["sleep_ms"] milliseconds (the suite picks a short
random time so that runs are in flight when faults hit), appends the same
line with `end`, and exits 0. The run id and attempt come from the exec
backend's GANGWAY_RUN_ID and GANGWAY_ATTEMPT. Each line is one write(2) on an
O_APPEND descriptor, well under PIPE_BUF, then fsync: lines of concurrent
programs never interleave and a line once written survives whatever the
suite kills. The ppid is the worker that spawned the program (the suite
uses it to kill a worker that has runs in flight). The program prints
nothing: a killed worker closes its pipes and the program must still reach
its `end` line.

As a module: parse(path) -> list of entries (dicts)."""

import os
import sys
import time


def parse(path):
    """The ledger's lines as dicts {run, attempt, pid, ppid, phase, t};
    a malformed line is returned with phase "garbage" so that it is seen."""
    out = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        p = line.split()
        try:
            out.append({"run": p[0], "attempt": int(p[1]), "pid": int(p[2]), "ppid": int(p[3]),
                        "phase": p[4], "t": float(p[5])})
        except (IndexError, ValueError):
            out.append({"run": None, "attempt": None, "pid": None, "ppid": None,
                        "phase": "garbage", "t": None, "line": line})
    return out


def main():
    import json
    path = sys.argv[1]
    run = os.environ.get("GANGWAY_RUN_ID") or "-"
    attempt = os.environ.get("GANGWAY_ATTEMPT") or "-"
    try:
        inputs = json.load(sys.stdin)
    except ValueError:
        inputs = {}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def note(phase):
        line = "%s %s %d %d %s %.6f\n" % (run, attempt, os.getpid(), os.getppid(), phase, time.time())
        os.write(fd, line.encode())
        os.fsync(fd)

    note("start")
    time.sleep(max(0, int(inputs.get("sleep_ms", 300))) / 1000.0)
    note("end")
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
