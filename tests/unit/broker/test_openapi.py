#!/usr/bin/env python3
"""The OpenAPI document and the broker's route table agree: every route the
router serves is documented with the same method, and nothing documented is
missing from the router. Also checks that every $ref resolves."""
import json
import os
import re
import sys

src = os.environ.get("GW_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
doc = json.load(open(os.path.join(src, "schemas", "openapi.json")))
router = open(os.path.join(src, "broker", "router.c")).read()

routes = set()
for method, pattern in re.findall(r'\{"(GET|POST|PUT|DELETE|PATCH)", "([^"]+)"', router):
    routes.add((method, re.sub(r"\*", "{id}", pattern)))
documented = set()
for path, ops in doc["paths"].items():
    for method in ops:
        documented.add((method.upper(), path))

failures = []
for r in sorted(routes - documented):
    failures.append("served but not documented: %s %s" % r)
for r in sorted(documented - routes):
    failures.append("documented but not served: %s %s" % r)


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


for ref in refs(doc):
    target = doc
    for part in ref.lstrip("#/").split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    if target is None:
        failures.append("unresolved $ref " + ref)

if doc.get("openapi") != "3.1.0":
    failures.append("not an OpenAPI 3.1 document")
print("%d routes, %d documented operations" % (len(routes), len(documented)))
for f in failures:
    print("FAIL -", f)
if not routes:
    print("FAIL - no routes parsed from broker/router.c")
    sys.exit(1)
sys.exit(1 if failures else 0)
