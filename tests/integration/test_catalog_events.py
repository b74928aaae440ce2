"""The gangway.catalog messages a real broker produces match
schemas/events/catalog.schema.json and docs/catalog-events.md (issue 12).

A resource is created, recreated under the same name (an update with new
outputs), extended, deleted (tearing_down, then deleted); another one's
teardown fails (teardown_failed, needs_attention). Every message read back
from Kafka (kcat) is validated with the repository's own validator
(`gangway schema validate --format-assert`) against the catalog schema and
against envelope.schema.json; the key is the resource id; per resource the
types come in the documented order. A message with a wrong shape is refused
by the schema, so it is not a schema that accepts anything."""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SKIP, SRC, Stack, check, main, write_action  # noqa: E402

SCHEMAS = os.path.join(SRC, "schemas", "events")

CREATE = r'''#!/usr/bin/env python3
import json, os, sys
inputs = json.load(sys.stdin)
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"url": "https://%s.dev.example" % inputs["name"], "n": inputs.get("n", 0)}, f)
'''

TEARDOWN = r'''#!/usr/bin/env python3
import json, sys
inputs = json.load(sys.stdin)
sys.exit(1 if inputs["name"].startswith("broken") else 0)
'''


def validate(s, schema, docs):
    """Runs `gangway schema validate` on each doc; returns (rc, output)."""
    paths = []
    for i, d in enumerate(docs):
        p = os.path.join(s.tmp, "msg%d.json" % i)
        with open(p, "w") as f:
            json.dump(d, f)
        paths.append(p)
    p = subprocess.run([GANGWAY, "schema", "validate", "--format-assert",
                        "--ref-dir", "https://gangway.dev/schemas/events/=" + SCHEMAS,
                        os.path.join(SCHEMAS, schema)] + paths,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def test():
    if not shutil.which("kcat"):
        print("skipped: no kcat on PATH (deploy/install-deps installs it)")
        sys.exit(SKIP)
    with Stack("catalog") as s:
        actions = os.path.join(s.tmp, "actions")
        create = s.write_program("create.py", CREATE)
        teardown = s.write_program("teardown.py", TEARDOWN)
        write_action(actions, "devenv", [create],
                     {"type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}},
                     timeout_seconds=30, resource_key="/name", resource={"kind": "devenv", "name": "/name"},
                     ttl={"default_seconds": 600, "max_seconds": 3600, "max_extension_seconds": 3600,
                          "teardown_retry_seconds": 3600},
                     teardown={"backend": {"command": [teardown]}})
        s.actions_dir = actions
        s.start_broker()
        s.start_worker()

        def run(inputs):
            r = s.post("/v1/actions/devenv/runs", {"inputs": inputs})
            check(r.status == 202, "submit devenv %s" % inputs, r.status, r.body)
            run = s.wait_run(r.json()["id"], timeout=60)
            check(run["status"] == "succeeded", "devenv %s succeeds" % inputs, run)
            return run

        def resource(name):
            items = s.get("/v1/resources?kind=devenv").json()["items"]
            live = [x for x in items if x["name"] == name and x["status"] != "deleted"]
            check(len(live) == 1, "one live resource named %s" % name, items)
            return live[0]

        def wait_status(rid, status, timeout=60):
            deadline = time.time() + timeout
            while time.time() < deadline:
                r = s.get("/v1/resources/" + rid).json()
                if r["status"] == status:
                    return r
                time.sleep(0.2)
            raise AssertionError("resource %s not %s: %s" % (rid, status, r))

        run({"name": "alpha", "n": 1})
        alpha = resource("alpha")["id"]
        run({"name": "alpha", "n": 2})  # same live resource: an update with new outputs
        r = s.post("/v1/resources/%s/extend" % alpha, {"seconds": 60})
        check(r.status == 200, "an extension is applied", r.status, r.body)
        r = s.request("DELETE", "/v1/resources/" + alpha)
        check(r.status == 202, "DELETE starts the teardown", r.status, r.body)
        wait_status(alpha, "deleted")

        run({"name": "broken-1"})
        broken = resource("broken-1")["id"]
        r = s.request("DELETE", "/v1/resources/" + broken)
        check(r.status == 202, "DELETE of broken-1 starts its teardown", r.status, r.body)
        wait_status(broken, "teardown_failed")

        # Read the topic until the last expected message has arrived (the
        # outbox relay publishes shortly after each commit).
        want = {alpha: 5, broken: 3}
        deadline = time.time() + 60
        while True:
            out = subprocess.run(["kcat", "-C", "-b", s.kafka, "-t", s.prefix + "gangway.catalog",
                                  "-o", "beginning", "-e", "-q", "-f", "%k\t%p\t%o\t%s\n"],
                                 capture_output=True, text=True, timeout=60).stdout
            rows = [line.split("\t", 3) for line in out.splitlines() if line.strip()]
            by_key = {}
            for key, part, off, value in rows:
                by_key.setdefault(key, []).append((int(part), int(off), json.loads(value)))
            if all(len(by_key.get(k, [])) >= n for k, n in want.items()) or time.time() > deadline:
                break
            time.sleep(0.5)

        msgs = [m for k in want for (_, _, m) in by_key.get(k, [])]
        check(all(len(by_key.get(k, [])) == n for k, n in want.items()),
              "the catalog topic carries one message per change (5 for alpha, 3 for broken-1)",
              {k: [m["type"] + "/" + m["data"]["status"] for (_, _, m) in v] for k, v in by_key.items()})
        for key, lst in by_key.items():
            check(len({p for (p, _, _) in lst}) == 1, "all messages of resource %s are on one partition" % key)
            check(all(m["subject"] == key and m["data"]["id"] == key for (_, _, m) in lst),
                  "the key of each message is its resource id (= subject = data.id)", key)

        # Offsets order the messages of one resource (one partition).
        seq = [(m["type"].rsplit(".", 1)[1], m["data"]["status"])
               for (_, _, m) in sorted(by_key[alpha], key=lambda x: x[1])]
        check(seq == [("created", "active"), ("updated", "active"), ("updated", "active"),
                      ("updated", "tearing_down"), ("deleted", "deleted")],
              "alpha: created, updated (recreate), updated (extension), updated (tearing_down), "
              "deleted, in offset order", seq)
        alpha_msgs = [m for (_, _, m) in sorted(by_key[alpha], key=lambda x: x[1])]
        check(alpha_msgs[1]["data"]["outputs"] == {"url": "https://alpha.dev.example", "n": 2},
              "the recreate's update carries the new outputs", alpha_msgs[1]["data"])
        stamps = [m["data"]["updated_at"] for m in alpha_msgs]
        check(stamps == sorted(stamps), "data.updated_at never goes back within a resource", stamps)
        last_broken = sorted(by_key[broken], key=lambda x: x[1])[-1][2]["data"]
        check(last_broken["status"] == "teardown_failed" and last_broken["needs_attention"] is True,
              "broken-1's last message says teardown_failed, needs_attention", last_broken)
        check(len({m["id"] for m in msgs}) == len(msgs), "every change has its own event id")

        rc, out = validate(s, "catalog.schema.json", msgs)
        check(rc == 0, "all %d catalog messages validate against catalog.schema.json" % len(msgs), out)
        rc, out = validate(s, "envelope.schema.json", msgs)
        check(rc == 0, "and against envelope.schema.json", out)

        # The schema is not vacuous: wrong shapes are refused.
        bad = json.loads(json.dumps(alpha_msgs[-1]))
        del bad["data"]["deleted_at"]
        bad2 = json.loads(json.dumps(alpha_msgs[0]))
        bad2["data"]["status"] = "deleted"
        bad3 = json.loads(json.dumps(alpha_msgs[0]))
        bad3["data"]["owner"] = "alice"
        for b, what in ((bad, "a deleted message without deleted_at"),
                        (bad2, "a created message whose resource is deleted"),
                        (bad3, "an owner that is not an object")):
            rc, out = validate(s, "catalog.schema.json", [b])
            check(rc == 1, "the schema refuses " + what, out)


if __name__ == "__main__":
    main(test)
