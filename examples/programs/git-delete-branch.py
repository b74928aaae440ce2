#!/usr/bin/env python3
"""Undo of a git step (examples/actions/scaffold-service.yaml): deletes the
branch the step pushed, and with it the step's commit.

Inputs on stdin: {"repository": URL, "branch": NAME, "commit": SHA,
"base": NAME}; "commit" (the step's commit) and "base" (the step's base
branch) are optional but recommended.

- A branch that is already gone: success (an undo may be retried).
- The repository's default branch (its HEAD) or "base" is never deleted: a
  step that committed straight onto it needs a revert by hand; this fails.
- With "commit", the branch is deleted only while its tip is still that
  commit (checked, then enforced by --force-with-lease): a branch someone
  pushed to since is not thrown away; this fails, and the workflow is then
  flagged for reconciliation.

Outputs: {"branch", "deleted": true|false, "commit": the tip deleted}.
The worker's git needs access to the repository (file://, ssh:// with a key
in its agent or config, or https:// through a credential helper)."""
import json
import os
import subprocess
import sys
import tempfile


def git(*args, cwd=None):
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    return subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def finish(code, message, outputs):
    print(message, flush=True)
    path = os.environ.get("GANGWAY_OUTPUTS")
    if path:
        with open(path, "w") as f:
            json.dump(outputs, f)
    sys.exit(code)


def main():
    inputs = json.load(sys.stdin)
    repo, branch = inputs.get("repository"), inputs.get("branch")
    commit, base = inputs.get("commit"), inputs.get("base")
    if not isinstance(repo, str) or not repo or repo.startswith("-"):
        finish(1, "refusing: repository %r is not a URL" % (repo,), {})
    if (not isinstance(branch, str) or not branch or branch.startswith("-")
            or git("check-ref-format", "refs/heads/" + branch).returncode != 0):
        finish(1, "refusing to delete branch %r: not a branch name" % (branch,), {})
    out = {"branch": branch, "deleted": False}
    ref = "refs/heads/" + branch
    # Exact refs only: `ls-remote REPO NAME` would also match x/NAME.
    p = git("ls-remote", "--symref", repo, "HEAD", ref)
    if p.returncode != 0:
        finish(1, "ls-remote %s: %s" % (repo, p.stderr.strip()), out)
    tip, default = None, None
    for line in p.stdout.splitlines():
        left, _, name = line.partition("\t")
        if left.startswith("ref: ") and name == "HEAD":
            default = left[5:]
        elif name == ref:
            tip = left
    if ref == default or branch == base:
        finish(1, "refusing to delete %s: it is the repository's %s branch (revert the commit "
               "by hand)" % (branch, "default" if ref == default else "base"), out)
    if tip is None:
        finish(0, "branch %s is already gone from %s" % (branch, repo), out)
    if commit and tip != commit:
        finish(1, "branch %s moved since the step (tip %s, the step's commit %s): not deleting it"
               % (branch, tip, commit), dict(out, commit=tip))
    # git push needs a repository to push from: an empty one, thrown away.
    with tempfile.TemporaryDirectory(prefix="gw-undo-", dir=os.environ.get("GANGWAY_WORKDIR")) as d:
        p = git("init", "-q", "--bare", d)
        if p.returncode == 0:
            p = git("push", "--porcelain", "--force-with-lease=%s:%s" % (ref, tip), repo,
                    ":" + ref, cwd=d)
    if p.returncode != 0:
        finish(1, "deleting %s from %s failed: %s" % (branch, repo, (p.stdout + p.stderr).strip()),
               dict(out, commit=tip))
    finish(0, "deleted branch %s (commit %s) from %s" % (branch, tip, repo),
           dict(out, deleted=True, commit=tip))


if __name__ == "__main__":
    main()
