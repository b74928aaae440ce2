#!/usr/bin/env python3
"""Issue 10: every value the API accepts survives PostgreSQL (jsonb), the
claim reply, Kafka, the worker and the program's stdin, or is refused at
submit with 422 and its pointer. Before, {"n": 1e19} was accepted and the
broker died (SIGSEGV) when a worker claimed the run: jsonb writes the double
back as 10000000000000000000, which jansson cannot read, and the failed parse
reached strlen(NULL). Also: a stored row that cannot be read back is answered
with an error, never a crash, and the run still ends."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402

PROG = r'''#!/usr/bin/env python3
import json, sys
doc = json.load(sys.stdin)
print("STDIN " + json.dumps(doc.get("inputs", doc), sort_keys=True), flush=True)
'''


def test():
    s = Stack("numbers", broker_args=["--heartbeat", "1", "--heartbeat-timeout", "4"])
    actions = os.path.join(s.tmp, "actions")
    prog = s.write_program("prog.py", PROG)
    # Unbounded numbers, free-form objects and strings.
    write_action(actions, "free", [prog], {"type": "object", "properties": {
        "n": {"type": "number"}, "o": {"type": "object"}, "s": {"type": "string"}}},
        timeout_seconds=30)
    s.actions_dir = actions
    with s:
        s.start_broker()
        s.start_worker(concurrency=2)

        def submit_raw(text):
            return s.request("POST", "/v1/actions/free/runs", raw=text)

        for text, ptr in [('{"inputs": {"n": 1e19}}', "/inputs/n"),
                          ('{"inputs": {"n": -1.5e300}}', "/inputs/n"),
                          ('{"inputs": {"n": 100000000000000000000}}', "/inputs/n"),
                          ('{"inputs": {"o": {"deep": [1, {"x": 1e25}]}}}', "/inputs/o/deep/1/x")]:
            r = submit_raw(text)
            body = r.json()
            check(r.status == 422 and body["code"] == "number_out_of_range"
                  and body["errors"][0]["pointer"] == ptr,
                  "%s is refused with 422 number_out_of_range at %s" % (text, ptr), r.status, r.body)
        r = submit_raw('{"inputs":\n  {"n": 1e400}}')
        check(r.status == 400 and r.json()["code"] == "invalid_json" and "line 2" in r.json()["detail"]
              and "column" in r.json()["detail"],
              "a number beyond a double is a 400 that says where", r.body)
        deep = "[" * 3000 + "]" * 3000
        r = submit_raw('{"inputs": {"o": {"d": %s}}}' % deep)
        check(r.status == 400 and "column" in r.json()["detail"],
              "nesting past the parser's depth is a 400 that says where", r.body)
        check(s.sql("SELECT count(*) FROM gw_runs") == "0", "nothing refused was stored")

        # What is accepted arrives intact, whatever the stack did to it.
        kept = [
            {"n": 9.2e18, "s": "1e19", "o": {"a": [0.1, -0.0, 1e-300, 9223372036854775807,
                                                   -9223372036854775808, 12345678901234567]}},
            {"n": -9.2e18, "o": {"z": {"y": {"x": [[[]]]}}, "u": "\u00e9\U0001F600"}},
            {"n": 0.30000000000000004, "o": {"big": 1e18}},
        ]
        ids = []
        for inputs in kept:
            r = s.submit("free", inputs)
            check(r.status == 202, "accepted: %s" % json.dumps(inputs)[:60], r.status, r.body)
            ids.append(r.json()["id"])
        for rid, inputs in zip(ids, kept):
            run = s.wait_run(rid, timeout=60)
            check(run["status"] == "succeeded", "run %s succeeded" % rid[:8], run)
            logs = s.get("/v1/runs/%s/logs" % rid).json()
            items = logs["items"] if isinstance(logs, dict) else logs
            line = [i["line"] for i in items if i.get("line", "").startswith("STDIN ")]
            check(line, "the program logged its stdin", str(logs)[:300])
            got = json.loads(line[0].split("STDIN ", 1)[1])
            check(got == inputs, "the program read exactly what was sent", got, inputs)
            api = s.get("/v1/runs/" + rid).json()["inputs"]
            check(api == inputs, "the API shows exactly what was sent", api)

        # A row that cannot be read back (written around the API): the claim
        # is answered with an error, the broker lives on, the run ends.
        s.stop(s.workers[0])
        r = s.submit("free", {"n": 1})
        rid = r.json()["id"]
        s.sql("UPDATE gw_runs SET inputs = '{\"n\": 1e19}'::jsonb WHERE id = '%s'" % rid)
        s.start_worker(concurrency=2)
        run = s.wait_run(rid, timeout=90)
        check(s.broker.poll() is None, "the broker is alive after claiming an unreadable row")
        check(run["status"] in ("failed", "succeeded"), "and the run ended", run)
        check(s.get("/readyz", auth=False).status == 200, "and still serves")


if __name__ == "__main__":
    main(test)
