#!/usr/bin/env python3
"""Fails on purpose with the requested exit code."""
import json
import sys

inputs = json.load(sys.stdin)
code = int(inputs.get("exit_code", 3))
print(f"about to fail with exit code {code}", file=sys.stderr, flush=True)
sys.exit(code)
