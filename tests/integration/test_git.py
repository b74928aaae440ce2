#!/usr/bin/env python3
"""The git worker type end to end: the example action gitops-service, pointed
at a real bare repository in a temporary directory (file://), through the real
broker, PostgreSQL, Kafka and `gangway worker --type git`; the result is
checked with the git CLI. A local stand-in for a Gitea API receives the pull
request. Inputs carrying shell syntax or line breaks execute nothing and
forge no trailer; destination paths git refuses fail the run with the reason
invalid_path and a message naming the path, both on the run."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main  # noqa: E402

TOKEN = "pr-SECRET-2718"


def git(*args, cwd=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=cwd or "/nonexistent",
               GIT_AUTHOR_NAME="seed", GIT_AUTHOR_EMAIL="seed@example.test",
               GIT_COMMITTER_NAME="seed", GIT_COMMITTER_EMAIL="seed@example.test")
    p = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError("git %s: %s" % (" ".join(args), p.stderr))
    return p.stdout.strip()


def test():
    work = tempfile.mkdtemp(prefix="gw-git-it-")
    remote = os.path.join(work, "remote.git")
    mark = os.path.join(work, "pwned")
    git("init", "-q", "--bare", "-b", "main", remote)
    seed = os.path.join(work, "seed")
    git("clone", "-q", remote, seed)
    git("checkout", "-q", "-b", "main", cwd=seed)
    with open(os.path.join(seed, "README.md"), "w") as f:
        f.write("platform config\n")
    git("add", "README.md", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)

    log = os.path.join(work, "hosting.log")
    server = subprocess.Popen(
        [sys.executable, os.path.join(SRC, "tests", "unit", "workers", "git", "hosting_server.py"),
         TOKEN, log], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())

    actions = os.path.join(work, "actions")
    os.makedirs(actions)
    with open(os.path.join(SRC, "examples", "actions", "gitops-service.json")) as f:
        action = json.load(f)
    action["backend"]["repository"] = "file://" + remote
    action["backend"]["pull_request"] = {
        "api": "gitea", "url": "http://127.0.0.1:%d/api/v1" % port, "token_env": "GW_TEST_PR_TOKEN",
        "owner": "platform", "repo": "config"}
    with open(os.path.join(actions, "gitops-service.json"), "w") as f:
        json.dump(action, f)
    # The same action with a destination path the requester chooses: refused
    # paths must fail the run with a reason and a message the run shows.
    path_action = json.loads(json.dumps(action))
    path_action["id"] = "gitops-path"
    path_action["backend"].pop("pull_request")
    path_action["backend"]["files"][0]["path"] = "{{ inputs.path }}"
    path_action["inputs"]["properties"]["path"] = {"type": "string", "maxLength": 200}
    path_action["inputs"]["required"].append("path")
    with open(os.path.join(actions, "gitops-path.json"), "w") as f:
        json.dump(path_action, f)

    s = Stack("git", actions_dir=actions)
    try:
        with s:
            s.start_broker()
            s.start_worker(concurrency=2, worker_type="git", extra_env={
                "GW_GIT_CACHE_DIR": os.path.join(work, "cache"), "GW_TEST_PR_TOKEN": TOKEN})

            r = s.submit("gitops-service", {"name": "payments-api", "team": "payments",
                                            "image": "registry.example.com/payments-api:1.4.2"})
            check(r.status == 202, "submit is 202", r.status, r.body)
            run_id = r.json()["id"]
            done = s.wait_run(run_id, timeout=90)
            check(done["status"] == "succeeded", "the gitops run succeeds", done)
            out = done["outputs"]
            branch = "gangway/payments-api-" + run_id
            check(out["branch"] == branch, "it pushed to the run's branch", out)
            check(out["commit"] == git("-C", remote, "rev-parse", "refs/heads/" + branch),
                  "the commit output is the branch tip", out["commit"])
            check(sorted(out["changed_files"]) == ["apps/payments-api/values.yaml",
                                                   "argocd/apps/payments-api.yaml"],
                  "both files changed", out["changed_files"])
            check(out.get("pull_request") == "http://hosting.test/platform/config/pulls/1",
                  "the pull request URL is an output", out)
            check(git("-C", remote, "log", "-1", "--format=%an <%ae>|%cn", branch)
                  == "alice <alice@example.com>|Gangway", "the requester is the author")
            check(git("-C", remote, "log", "-1", "--format=%(trailers:key=Gangway-Run,valueonly)",
                      branch) == run_id, "the commit carries the Gangway-Run trailer")
            values = git("-C", remote, "show", branch + ":apps/payments-api/values.yaml")
            check('image: "registry.example.com/payments-api:1.4.2"' in values and "replicaCount: 2" in values,
                  "the template was rendered with inputs and defaults", values)
            check(git("-C", remote, "rev-parse", "main") == git("-C", seed, "rev-parse", "HEAD"),
                  "main is untouched")
            with open(log) as f:
                reqs = [json.loads(line) for line in f]
            check(len(reqs) == 1 and reqs[0]["path"] == "/api/v1/repos/platform/config/pulls"
                  and reqs[0]["authorization"] == "token " + TOKEN
                  and reqs[0]["body"]["head"] == branch and reqs[0]["body"]["base"] == "main",
                  "the hosting API got one pull request with the token", reqs)
            logs = s.get("/v1/runs/%s/logs" % run_id).json()["items"]
            check(any("pushed" in l["line"] for l in logs), "the push is in the run's logs", logs)
            check(not any(TOKEN in l["line"] for l in logs), "the token is in no log line")

            # Shell syntax is text; line breaks cannot forge a trailer.
            r = s.submit("gitops-service", {"name": "shell-team", "team": "$(touch %s)" % mark,
                                            "image": "x; touch %s `touch %s`" % (mark, mark)})
            check(r.status == 202, "submit is 202", r.status, r.body)
            done = s.wait_run(r.json()["id"], timeout=90)
            check(done["status"] == "succeeded", "shell syntax in inputs is just text", done)
            values = git("-C", remote, "show", done["outputs"]["branch"] + ":apps/shell-team/values.yaml")
            check('image: "x; touch %s `touch %s`"' % (mark, mark) in values,
                  "rendered literally and quoted", values)
            r = s.submit("gitops-service", {"name": "crlf-team", "team": "a\r\nGangway-Run: forged",
                                            "image": "x"})
            check(r.status == 202, "submit is 202", r.status, r.body)
            done = s.wait_run(r.json()["id"], timeout=90)
            detail = json.dumps([done, s.get("/v1/runs/%s/events" % done["id"]).json(),
                                 s.get("/v1/runs/%s/logs" % done["id"]).json()])
            check(done["status"] == "failed" and done.get("reason") == "template_error"
                  and "control character" in done.get("error", {}).get("message", ""),
                  "a CR/LF for the commit message fails the run with a clear error", detail)

            # Paths git refuses (issue 10): the run says invalid_path and names
            # the path; nothing reaches the repository.
            refs_before = git("-C", remote, "for-each-ref", "--format=%(refname) %(objectname)")
            for path, shown, why in (
                    ("apps/.g\u200cit/hooks/post-checkout", '"apps/.g\\u200cit/hooks/post-checkout"',
                     "is .git"),
                    (".gitmodules/x", '".gitmodules/x"', "one of git's own files")):
                r = s.submit("gitops-path", {"name": "path-team", "team": "t", "image": "x",
                                             "path": path})
                check(r.status == 202, "submit is 202", r.status, r.body)
                done = s.wait_run(r.json()["id"], timeout=90)
                err = done.get("error", {})
                check(done["status"] == "failed" and done.get("reason") == "invalid_path"
                      and err.get("code") == "invalid_path" and shown in err.get("message", "")
                      and why in err.get("message", ""),
                      "the refused path %s is the run's reason and error" % shown, done)
                events = s.get("/v1/runs/%s/events" % done["id"]).json()["items"]
                check(events[-1]["to"] == "failed" and events[-1]["reason"] == "invalid_path",
                      "the run's last transition says invalid_path", events)
                listed = [x for x in s.get("/v1/runs?status=failed&action=gitops-path").json()["items"]
                          if x["id"] == done["id"]]
                check(len(listed) == 1 and listed[0].get("error") == err,
                      "the run list shows the same error", listed)
            check(git("-C", remote, "for-each-ref", "--format=%(refname) %(objectname)") == refs_before,
                  "no refused path reached the repository")
            check(not os.path.exists(mark), "nothing executed")
            check("forged" not in git("-C", remote, "log", "--all", "--format=%B"),
                  "no forged trailer reached the repository")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(test)
