#!/bin/sh
# An exec plan check (docs/plan-checks.md) wrapping conftest (OPA/Rego).
# Gangway gives the plan JSON on stdin and reads findings as JSON lines:
#   {"rule": "...", "severity": "high", "address": "...", "message": "..."}
# Exit 0 passes; anything else fails the check.
#   {"name": "opa", "kind": "exec", "timeout_seconds": 60,
#    "command": ["/etc/gangway/checks/conftest-checker.sh", "/etc/gangway/policy"]}
set -eu
policy=${1:?policy directory}
out=$(conftest test --no-color -o json -p "$policy" - ) && rc=0 || rc=$?
printf '%s' "$out" | jq -c '.[] | (.failures // [])[] |
  {rule: (.metadata.rule // "conftest"), severity: "high",
   address: (.metadata.address // ""), message: .msg}'
exit "$rc"
