#!/usr/bin/env python3
"""examples/programs/git-delete-branch.py (the undo of scaffold-service's git
step) against real bare repositories, run as the exec worker runs it (inputs
on stdin, a working directory that is no Git repository, $GANGWAY_OUTPUTS):
- it deletes the step's branch when its tip is the step's commit;
- a branch already gone succeeds (an undo may be retried), and a branch
  whose name only ends like it (x/NAME) is neither taken for it nor touched;
- a branch that moved since the step is kept, and the undo fails;
- the base branch and the repository's default branch are never deleted;
- a name that is no branch name, or an option, is refused."""
import json
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("GW_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
PROGRAM = os.path.join(SRC, "examples", "programs", "git-delete-branch.py")
FAILED = []


def check(cond, what, *detail):
    print(("ok - " if cond else "FAIL - ") + what + ("" if cond or not detail else ": " +
                                                    " ".join(str(d) for d in detail)), flush=True)
    if not cond:
        FAILED.append(what)


def git(*args, cwd=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=cwd or "/nonexistent",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.test",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.test")
    p = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError("git %s: %s" % (" ".join(args), p.stderr))
    return p.stdout.strip()


def heads(remote):
    out = git("-C", remote, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split() for line in out.splitlines())


def undo(work, inputs):
    """Runs the program as the exec worker would; returns (code, outputs, log)."""
    rundir = tempfile.mkdtemp(dir=work)
    outputs = os.path.join(rundir, "outputs.json")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": rundir,
           "GANGWAY_WORKDIR": rundir, "GANGWAY_OUTPUTS": outputs}
    p = subprocess.run([PROGRAM], input=json.dumps(inputs), cwd=rundir, env=env,
                       capture_output=True, text=True, timeout=60)
    out = None
    if os.path.exists(outputs):
        with open(outputs) as f:
            out = json.load(f)
    leftovers = [n for n in os.listdir(rundir) if n != "outputs.json"]
    check(not leftovers, "the program leaves nothing in its working directory", leftovers)
    return p.returncode, out, p.stdout + p.stderr


def main():
    work = tempfile.mkdtemp(prefix="gw-undo-test-")
    remote = os.path.join(work, "r.git")
    git("init", "-q", "--bare", "-b", "main", remote)
    seed = os.path.join(work, "seed")
    git("clone", "-q", remote, seed)
    git("checkout", "-q", "-b", "main", cwd=seed)
    git("commit", "-q", "--allow-empty", "-m", "seed", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    main_tip = git("rev-parse", "HEAD", cwd=seed)
    git("checkout", "-q", "-b", "gangway/svc-1", cwd=seed)
    git("commit", "-q", "--allow-empty", "-m", "the step's commit", cwd=seed)
    step = git("rev-parse", "HEAD", cwd=seed)
    git("push", "-q", "origin", "gangway/svc-1", "gangway/svc-1:other/gangway/svc-1", cwd=seed)
    url = "file://" + remote

    # Moved since the step: kept, and the undo fails.
    git("commit", "-q", "--allow-empty", "-m", "someone else's", cwd=seed)
    moved = git("rev-parse", "HEAD", cwd=seed)
    git("push", "-q", "origin", "gangway/svc-1", cwd=seed)
    code, out, log = undo(work, {"repository": url, "branch": "gangway/svc-1", "commit": step,
                                 "base": "main"})
    check(code == 1 and "moved" in log and heads(remote).get("gangway/svc-1") == moved
          and out == {"branch": "gangway/svc-1", "deleted": False, "commit": moved},
          "a branch that moved since the step is kept and the undo fails", code, log, out)
    git("push", "-q", "--force", "origin", step + ":refs/heads/gangway/svc-1", cwd=seed)

    # The step's branch at the step's commit: deleted, and only it.
    code, out, log = undo(work, {"repository": url, "branch": "gangway/svc-1", "commit": step,
                                 "base": "main"})
    h = heads(remote)
    check(code == 0 and "gangway/svc-1" not in h and h.get("other/gangway/svc-1") == step
          and h.get("main") == main_tip
          and out == {"branch": "gangway/svc-1", "deleted": True, "commit": step},
          "the step's branch is deleted; x/NAME and main are untouched", code, log, h, out)

    # Again (a retried undo): already gone is success, x/NAME not taken for it.
    code, out, log = undo(work, {"repository": url, "branch": "gangway/svc-1", "commit": step})
    check(code == 0 and "already gone" in log and heads(remote).get("other/gangway/svc-1") == step
          and out == {"branch": "gangway/svc-1", "deleted": False},
          "a branch already gone succeeds", code, log, out)

    # Never the base branch, nor the repository's default branch.
    code, _, log = undo(work, {"repository": url, "branch": "other/gangway/svc-1",
                               "commit": step, "base": "other/gangway/svc-1"})
    check(code == 1 and "base" in log and "other/gangway/svc-1" in heads(remote),
          "the step's base branch is not deleted", code, log)
    code, _, log = undo(work, {"repository": url, "branch": "main", "commit": main_tip})
    check(code == 1 and "default" in log and heads(remote).get("main") == main_tip,
          "the repository's default branch is not deleted", code, log)

    for bad in ("-f", "a..b", "", None, "x y"):
        code, _, log = undo(work, {"repository": url, "branch": bad})
        check(code == 1 and "refusing" in log, "branch %r is refused" % (bad,), code, log)
    code, _, log = undo(work, {"repository": "--upload-pack=touch /tmp/x", "branch": "b"})
    check(code == 1 and "refusing" in log, "a repository that is an option is refused", code, log)

    subprocess.run(["rm", "-rf", work])
    if FAILED:
        print("%d check(s) failed" % len(FAILED))
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
