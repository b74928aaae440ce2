#!/usr/bin/env python3
"""The exec backend's contract in a dozen lines: inputs as JSON on stdin,
log lines on stdout/stderr, outputs as a JSON object in $GANGWAY_OUTPUTS."""
import json
import os
import sys

inputs = json.load(sys.stdin)
message = inputs["message"].upper() if inputs.get("shout") else inputs["message"]
print(f"run {os.environ['GANGWAY_RUN_ID']} says: {message}", flush=True)
with open(os.environ["GANGWAY_OUTPUTS"], "w") as f:
    json.dump({"message": message}, f)
