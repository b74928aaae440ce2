#!/usr/bin/env python3
"""Undo of a git step (examples/actions/scaffold-service.yaml): deletes the
branch the step pushed. Inputs on stdin: {"repository": URL, "branch": NAME}.
Deleting a branch that is already gone succeeds (an undo may be retried)."""
import json
import subprocess
import sys

inputs = json.load(sys.stdin)
repo, branch = inputs["repository"], inputs["branch"]
if not branch or branch.startswith("-"):
    print("refusing to delete branch %r" % branch)
    sys.exit(1)
have = subprocess.run(["git", "ls-remote", "--heads", repo, branch],
                      capture_output=True, text=True)
if have.returncode != 0:
    print(have.stderr.strip())
    sys.exit(1)
if not have.stdout.strip():
    print("branch %s is already gone from %s" % (branch, repo))
    sys.exit(0)
p = subprocess.run(["git", "push", repo, "--delete", branch], capture_output=True, text=True)
print((p.stdout + p.stderr).strip())
sys.exit(p.returncode)
