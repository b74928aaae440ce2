"""README.md's first-request examples, run as written against a real broker.

The test reads README.md itself: every fenced ```sh block's `curl` commands
that talk to $GANGWAY_URL are run in order through bash (with GANGWAY_URL and
GANGWAY_TOKEN set to a Stack's broker and admin token, and <id> replaced by the
id of the run the POST created), on a broker with the example actions and an
exec worker. Then:
- a `# HTTP/1.1 <code> <reason>` comment after a command must match the
  status line that command printed (it must use -i);
- a ```json block holding a problem document ("status" and "code") must
  match the answer of the last command before it: the same members with the
  same values ("..." in the README matches anything), including every
  element of "errors";
- a command with no problem document shown after it must not get one.
So the README cannot drift from what the broker answers (issue 12: it said
"Unprocessable Entity" where the broker sends "Unprocessable Content")."""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, SKIP, Failure, Stack, check, main  # noqa: E402

README = os.path.join(SRC, "README.md")


def fenced_blocks(text):
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def examples(text):
    """The README's examples as a list of ("cmd", line), ("status", line) and
    ("problem", dict) in README order."""
    items = []
    for lang, body in fenced_blocks(text):
        if lang == "sh":
            joined = re.sub(r"\\\n\s*", " ", body)
            for line in joined.splitlines():
                line = line.strip()
                if line.startswith("curl ") and "$GANGWAY_URL" in line:
                    items.append(("cmd", line))
                elif line.startswith("# HTTP/") and items and items[-1][0] == "cmd":
                    items.append(("status", line[2:]))
        elif lang == "json" and any(i[0] == "cmd" for i in items):
            try:
                doc = json.loads(body)
            except ValueError as e:
                raise Failure("README.md has a ```json block that is not JSON: %s\n%s" % (e, body))
            if isinstance(doc, dict) and "status" in doc and "code" in doc:
                items.append(("problem", doc))
    return items


def matches(shown, got, where):
    """Raises unless `got` has exactly the members of `shown` with equal
    values ("..." in shown matches anything)."""
    if shown == "...":
        return
    if isinstance(shown, dict):
        check(isinstance(got, dict) and set(shown) == set(got),
              "%s: the README shows the members the broker sends" % where,
              sorted(shown), "vs", sorted(got) if isinstance(got, dict) else got)
        for k in shown:
            matches(shown[k], got[k], where + "/" + k)
        return
    if isinstance(shown, list):
        check(isinstance(got, list) and len(shown) == len(got),
              "%s: the README shows as many elements as the broker sends" % where, shown, "vs", got)
        for i, (a, b) in enumerate(zip(shown, got)):
            matches(a, b, "%s/%d" % (where, i))
        return
    check(shown == got, "%s: README shows %r, the broker sends %r" % (where, shown, got))


def split_output(out, with_headers):
    """(status line or None, headers dict, body) of curl's output."""
    if not with_headers:
        return None, {}, out
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    headers = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0].strip(), headers, body


def test():
    with open(README) as f:
        items = examples(f.read())
    cmds = [i for i in items if i[0] == "cmd"]
    check(len(cmds) >= 4, "README.md has curl examples against $GANGWAY_URL", len(cmds))
    check(any(i[0] == "problem" for i in items), "README.md shows a problem document after a curl example")
    if not shutil.which("curl"):
        print("skipped: no curl on PATH (deploy/install-deps installs it)")
        sys.exit(SKIP)

    with Stack("readme") as s:
        s.start_broker()
        s.start_worker()
        env = dict(os.environ, GANGWAY_URL=s.url, GANGWAY_TOKEN=s.token)
        run_id = None
        last = None  # (command, status line, headers, body, problem shown?)
        results = []
        for kind, val in items:
            if kind == "cmd":
                cmd = val
                if "<id>" in cmd:
                    check(run_id is not None, "a README command before `%s` created a run" % cmd)
                    cmd = cmd.replace("<id>", run_id)
                p = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=60)
                check(p.returncode == 0, "README command runs: " + val, p.stderr)
                with_headers = re.search(r"\s-\w*i", cmd) is not None
                status, headers, body = split_output(p.stdout, with_headers)
                loc = headers.get("location", "")
                m = re.match(r"^/v1/runs/([0-9a-f-]{36})$", loc)
                if m:
                    run_id = m.group(1)
                    # A person reads the run after it has run.
                    s.wait_run(run_id, timeout=60)
                last = [val, status, headers, body, False]
                results.append(last)
            elif kind == "status":
                code_reason = val.split(",")[0].strip()
                check(last[1] == code_reason, "`%s` answers `%s` as the README says" % (last[0], code_reason),
                      "got", last[1])
                if "Location: /v1/runs/<id>" in val:
                    check(run_id is not None, "`%s` answers a Location /v1/runs/<id>" % last[0], last[2])
            else:  # problem document shown after the last command
                try:
                    got = json.loads(last[3])
                except ValueError:
                    got = None
                check(isinstance(got, dict), "`%s` answers a JSON problem document" % last[0], last[3][:300])
                for k in ("status", "title", "code"):
                    check(got.get(k) == val.get(k), "`%s`: %s is %r as the README shows" % (last[0], k, val.get(k)),
                          "the broker sends", got.get(k))
                matches(val, got, "README problem document")
                last[4] = True
        for cmd, status, headers, body, problem_shown in results:
            if problem_shown:
                continue
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            is_problem = isinstance(doc, dict) and isinstance(doc.get("status"), int) and doc["status"] >= 400
            check(not is_problem and (status is None or status.split()[1].startswith("2")),
                  "`%s` succeeds (the README shows no error for it)" % cmd, status, body[:300])


if __name__ == "__main__":
    main(test)
