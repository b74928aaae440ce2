#!/usr/bin/env python3
"""examples/actions/scaffold-service.yaml end to end (issue 17 part 1): the
shipped file, with only its two anchored installation values replaced as its
header says (&repository: a real bare repository in a temporary directory;
&jenkins: the Jenkins stand-in, whose scaffold/create-pipeline and
scaffold/delete-pipeline are seed jobs that create and delete the service's
job), in a copy of the examples tree (actions/ holding the file, programs/
and terraform/ linked to the real ones), on git, jenkins, terraform (real
OpenTofu) and exec (the git undo program) workers.

1. A run succeeds: the repository branch is pushed, the Jenkins job exists,
   the environment is applied; each step got the earlier steps' outputs
   (BRANCH, the commit in the environment's labels); a `service` resource is
   recorded.
2. A second run whose last step fails (OpenTofu's apply fails, through a
   wrapper the test switches on): the Jenkins job, then the branch are undone
   (the branch deleted by examples/programs/git-delete-branch.py), main
   untouched; failed, failed_step env, compensated: true.
2b. A third run cancelled while its Jenkins build waits in the queue: the
   queue item is cancelled, the branch deleted; cancelled, compensated.
3. DELETE of the first run's resource: its teardown runs the three undos in
   reverse (environment destroyed from the same state, Jenkins job deleted,
   branch deleted); the resource ends deleted.
Skipped (77) without services or without a terraform/tofu binary."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRC, Stack, check, main, need_terraform  # noqa: E402

FAKE = os.path.join(SRC, "tests", "fakes", "jenkins", "fake_jenkins.py")
EXAMPLE = os.path.join(SRC, "examples", "actions", "scaffold-service.yaml")
TOKEN = "scaffold-t0ken"
# The example's installation values, each written once (a YAML anchor).
REPO_LINE = "repository: &repository file:///var/lib/gangway/git/platform-config.git"
JENKINS_TEXT = 'url: &jenkins "https://jenkins.example"'


def git(*args, cwd=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=cwd or "/nonexistent",
               GIT_AUTHOR_NAME="seed", GIT_AUTHOR_EMAIL="seed@example.test",
               GIT_COMMITTER_NAME="seed", GIT_COMMITTER_EMAIL="seed@example.test")
    p = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError("git %s: %s" % (" ".join(args), p.stderr))
    return p.stdout.strip()


def heads(remote):
    out = git("-C", remote, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split() for line in out.splitlines())


def install_example(root, repo_url, jenkins_url):
    """The documented copy: examples/{actions,programs,terraform} with the
    two anchored values replaced (each must be there exactly once)."""
    with open(EXAMPLE) as f:
        text = f.read()
    check(text.count(REPO_LINE) == 1 and text.count(JENKINS_TEXT) == 1,
          "the example holds its repository and Jenkins URL once each, anchored")
    text = text.replace(REPO_LINE, "repository: &repository " + repo_url)
    text = text.replace(JENKINS_TEXT, 'url: &jenkins "%s"' % jenkins_url)
    actions = os.path.join(root, "examples", "actions")
    os.makedirs(actions)
    for d in ("programs", "terraform"):
        os.symlink(os.path.join(SRC, "examples", d), os.path.join(root, "examples", d))
    with open(os.path.join(actions, "scaffold-service.yaml"), "w") as f:
        f.write(text)
    return actions


def test():
    binary = need_terraform()
    work = tempfile.mkdtemp(prefix="gw-scaffold-it-")
    remote = os.path.join(work, "platform-config.git")
    git("init", "-q", "--bare", "-b", "main", remote)
    seed = os.path.join(work, "seed")
    git("clone", "-q", remote, seed)
    git("checkout", "-q", "-b", "main", cwd=seed)
    with open(os.path.join(seed, "README.md"), "w") as f:
        f.write("platform config\n")
    git("add", "README.md", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    main_tip = git("-C", remote, "rev-parse", "main")

    fake = subprocess.Popen([sys.executable, FAKE, "--user", "gangway", "--token", TOKEN,
                             "--creates", "scaffold/create-pipeline:SERVICE",
                             "--deletes", "scaffold/delete-pipeline:SERVICE"],
                            stdout=subprocess.PIPE, text=True)
    line = fake.stdout.readline()
    check(line.startswith("PORT "), "the Jenkins stand-in starts", line)
    base = "http://127.0.0.1:%d" % int(line.split()[1])
    actions = install_example(work, "file://" + remote, base)

    # OpenTofu behind a wrapper whose apply fails while `broken` exists: the
    # environment step fails for real (plan ran, apply refused) when asked.
    broken = os.path.join(work, "tofu-broken")
    wrapper = os.path.join(work, "tofu")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nif [ -e "%s" ]; then for a in "$@"; do if [ "$a" = apply ]; then\n'
                '  echo "Error: the dev cloud has no capacity left (test)" >&2; exit 1\n'
                'fi; done; fi\nexec "%s" "$@"\n' % (broken, binary))
    os.chmod(wrapper, 0o755)

    s = Stack("scaffold", actions_dir=actions, broker_args=["--heartbeat", "1"])
    try:
        with s:
            run_it(s, remote, main_tip, base, wrapper, broken, work)
    finally:
        fake.kill()
        fake.wait()
        shutil.rmtree(work, ignore_errors=True)


def jenkins_state(base):
    with urllib.request.urlopen(base + "/_control/state", timeout=10) as f:
        state = json.load(f)

    def params(build):
        for a in build.get("actions", []):
            if "parameters" in a:
                return {p["name"]: p["value"] for p in a["parameters"]}
        return {}
    state["params"] = {job: [params(b) for b in lst] for job, lst in state["builds"].items()}
    return state


def control(base, what, args):
    req = urllib.request.Request(base + "/_control/" + what, data=json.dumps(args).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as f:
        return json.load(f)


def step_runs(s, done):
    """{(step id, operation): the child run} of a workflow run."""
    return {(x["id"], x["operation"]): s.get("/v1/runs/" + x["run_id"]).json()
            for x in done.get("steps", [])}


def run_it(s, remote, main_tip, base, wrapper, broken, work):
    s.start_broker()
    r = s.get("/v1/actions/scaffold-service")
    check(r.status == 200 and [(x["id"], x["worker_type"], x["undo"]) for x in r.json()["steps"]]
          == [("repo", "git", True), ("pipeline", "jenkins", True), ("env", "terraform", True)],
          "the shipped example loads with its three steps, each with an undo", r.status, r.body)
    s.start_worker(concurrency=2, worker_type="git",
                   extra_env={"GW_GIT_CACHE_DIR": os.path.join(work, "git-cache")})
    s.start_worker(concurrency=2, worker_type="jenkins",
                   extra_env={"JENKINS_USER": "gangway", "JENKINS_TOKEN": TOKEN})
    s.start_worker(concurrency=2, worker_type="terraform",
                   extra_env={"GW_TERRAFORM_BIN": wrapper,
                              "GW_TERRAFORM_STATE_DIR": os.path.join(work, "tfstate")})
    s.start_worker(concurrency=2)  # exec: the git undo program

    # 1. The golden path succeeds, outputs passed along, a resource recorded.
    r = s.submit("scaffold-service", {"name": "svc-alpha", "team": "payments",
                                      "image": "registry.example.com/svc-alpha:1.0"})
    check(r.status == 202, "the workflow is accepted", r.status, r.body)
    a_id = r.json()["id"]
    done = s.wait_run(a_id, timeout=150)
    check(done["status"] == "succeeded"
          and [(x["id"], x["operation"], x["status"]) for x in done["steps"]] ==
          [("repo", "create", "succeeded"), ("pipeline", "create", "succeeded"),
           ("env", "create", "succeeded")] and not done.get("compensated"),
          "the scaffold succeeds: repo, pipeline, env in order", done)
    runs = step_runs(s, done)
    repo_out = runs[("repo", "create")]["outputs"]
    branch = repo_out["branch"]
    check(branch == "gangway/svc-alpha-" + runs[("repo", "create")]["id"]
          and heads(remote).get(branch) == repo_out["commit"]
          and heads(remote)["main"] == main_tip,
          "the git step pushed its commit to its own branch; main is untouched", repo_out,
          heads(remote))
    values = git("-C", remote, "show", branch + ":apps/svc-alpha/values.yaml")
    check(sorted(repo_out["changed_files"]) == ["apps/svc-alpha/values.yaml",
                                                "argocd/apps/svc-alpha.yaml"]
          and 'image: "registry.example.com/svc-alpha:1.0"' in values
          and "replicaCount: 2" in values,
          "the templates were rendered with the inputs and replicas' default", values)
    pipe_in = runs[("pipeline", "create")]["inputs"]
    check(pipe_in == {"SERVICE": "svc-alpha", "REPOSITORY": "file://" + remote, "BRANCH": branch},
          "the pipeline step got the repo step's branch", pipe_in)
    env_run = runs[("env", "create")]
    check(env_run["inputs"] == {"name": "svc-alpha", "labels": {"team": "payments",
                                                                "commit": repo_out["commit"]}}
          and env_run["outputs"]["outputs"]["name"] == "svc-alpha"
          and env_run["outputs"]["plan"]["add"] >= 1,
          "the environment step got the commit and applied the module", env_run)
    added = env_run["outputs"]["plan"]["add"]
    js = jenkins_state(base)
    check("svc-alpha" in js["jobs"] and js["params"].get("scaffold/create-pipeline", [{}])[0]
          .get("BRANCH") == branch,
          "Jenkins ran the seed job with the branch and now has the service's job", js["jobs"],
          js["params"])
    check(done["outputs"]["steps"]["repo"]["commit"] == repo_out["commit"]
          and done["outputs"]["steps"]["env"]["outputs"]["name"] == "svc-alpha",
          "the workflow's outputs hold every step's", done["outputs"])
    res = s.get("/v1/resources/" + (done.get("resource") or "none"))
    check(res.status == 200 and res.json()["kind"] == "service"
          and res.json()["name"] == "svc-alpha" and res.json()["status"] == "active",
          "a service resource is recorded", res.status, res.body)
    resource = res.json()["id"]

    # 2. The last step fails: the pipeline, then the repository, are undone.
    open(broken, "w").close()
    r = s.submit("scaffold-service", {"name": "svc-beta", "team": "payments",
                                      "image": "registry.example.com/svc-beta:1.0"})
    check(r.status == 202, "the second workflow is accepted", r.status, r.body)
    done = s.wait_run(r.json()["id"], timeout=150)
    os.unlink(broken)
    check(done["status"] == "failed" and done.get("failed_step") == "env"
          and done.get("compensated") is True and not done.get("needs_reconciliation")
          and [(x["id"], x["operation"], x["status"]) for x in done["steps"]] ==
          [("repo", "create", "succeeded"), ("pipeline", "create", "succeeded"),
           ("env", "create", "failed"), ("pipeline", "undo", "succeeded"),
           ("repo", "undo", "succeeded")],
          "env fails; pipeline then repo are undone; compensated", done)
    runs = step_runs(s, done)
    b_out = runs[("repo", "create")]["outputs"]
    undo = runs[("repo", "undo")]
    check(undo["inputs"] == {"repository": "file://" + remote, "branch": b_out["branch"],
                             "commit": b_out["commit"], "base": "main"}
          and undo["outputs"] == {"branch": b_out["branch"], "deleted": True,
                                  "commit": b_out["commit"]},
          "the git undo program got the step's branch and commit and deleted it", undo)
    h = heads(remote)
    check(b_out["branch"] not in h and h.get(branch) == repo_out["commit"]
          and h["main"] == main_tip,
          "svc-beta's branch is gone; svc-alpha's branch and main are untouched", h)
    js = jenkins_state(base)
    check("svc-beta" not in js["jobs"] and "svc-alpha" in js["jobs"]
          and [p.get("SERVICE") for p in js["params"].get("scaffold/delete-pipeline", [])]
          == ["svc-beta"],
          "Jenkins deleted svc-beta's job (and only it)", js["jobs"], js["params"])
    check(len(s.get("/v1/resources").json()["items"]) == 1,
          "the failed workflow recorded no resource")

    # 2b. Cancel mid-workflow: the Jenkins build is held in the queue; the
    # cancel stops the pipeline step (its queue item cancelled) and undoes
    # the repository step.
    control(base, "set", {"queue_delay": -1})
    r = s.submit("scaffold-service", {"name": "svc-gamma", "team": "payments",
                                      "image": "registry.example.com/svc-gamma:1.0"})
    check(r.status == 202, "the third workflow is accepted", r.status, r.body)
    c_id = r.json()["id"]
    deadline = time.time() + 90
    while time.time() < deadline:
        queued = [q for q in jenkins_state(base)["queue"]
                  if not q["cancelled"] and q["executable"] is None]
        if queued:
            break
        time.sleep(0.2)
    check(len(queued) == 1, "the pipeline step's build waits in the Jenkins queue", queued)
    r = s.post("/v1/runs/%s/cancel" % c_id, {"reason": "wrong team"})
    check(r.status == 202, "cancelling the running workflow is accepted", r.status, r.body)
    done = s.wait_run(c_id, timeout=120)
    control(base, "set", {"queue_delay": 0.2})
    check(done["status"] == "cancelled" and done.get("compensated") is True
          and [(x["id"], x["operation"], x["status"]) for x in done["steps"]] ==
          [("repo", "create", "succeeded"), ("pipeline", "create", "cancelled"),
           ("repo", "undo", "succeeded")],
          "the pipeline step is cancelled, the repo step undone; compensated", done)
    runs = step_runs(s, done)
    c_branch = runs[("repo", "create")]["outputs"]["branch"]
    js = jenkins_state(base)
    h = heads(remote)
    check(c_branch not in h and h.get(branch) == repo_out["commit"] and h["main"] == main_tip
          and "svc-gamma" not in js["jobs"]
          and [q["cancelled"] for q in js["queue"] if q["id"] == queued[0]["id"]] == [True],
          "svc-gamma's branch is gone, its Jenkins build was taken off the queue", h, js["queue"])

    # 3. Deleting the first run's resource runs its undos in reverse.
    r = s.request("DELETE", "/v1/resources/" + resource)
    check(r.status in (200, 202), "the resource's deletion is accepted", r.status, r.body)
    deadline = time.time() + 150
    while time.time() < deadline:
        got = s.get("/v1/resources/" + resource).json()
        if got["status"] in ("deleted", "teardown_failed"):
            break
        time.sleep(0.2)
    check(got["status"] == "deleted", "the resource ends deleted", got)
    td = [x for x in s.get("/v1/runs?parent=" + a_id).json()["items"]
          if x["operation"] == "teardown"]
    check(len(td) == 1 and td[0]["status"] == "succeeded"
          and [(x["id"], x["operation"], x["status"]) for x in td[0]["steps"]] ==
          [("env", "undo", "succeeded"), ("pipeline", "undo", "succeeded"),
           ("repo", "undo", "succeeded")],
          "the teardown ran env, pipeline, repo undo in that order", td)
    runs = step_runs(s, td[0])
    check(runs[("env", "undo")]["outputs"]["plan"]["destroy"] == added,
          "the environment was destroyed from the step's own state",
          runs[("env", "undo")].get("outputs"), added)
    js = jenkins_state(base)
    check("svc-alpha" not in js["jobs"], "Jenkins deleted svc-alpha's job", js["jobs"])
    h = heads(remote)
    check(list(h) == ["main"] and h["main"] == main_tip,
          "only main is left in the repository, as it was", h)


if __name__ == "__main__":
    main(test)
