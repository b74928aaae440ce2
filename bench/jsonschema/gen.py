#!/usr/bin/env python3
"""Generates the benchmark data: a 30-property action input schema (2020-12),
one typical ~1 KB valid input, and N instances for the differential check
(valid ones and mutations of them: wrong types, out-of-range numbers, bad
patterns, missing required fields, unknown properties, duplicate items).

Usage: gen.py OUTDIR [N] [SEED]
"""
import copy
import json
import os
import random
import sys

ENVS = ["dev", "staging", "prod"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"]


def schema():
    props = {
        "service": {"type": "string", "pattern": "^[a-z][a-z0-9-]{2,40}$"},
        "team": {"type": "string", "minLength": 2, "maxLength": 40},
        "environment": {"enum": ENVS},
        "region": {"enum": REGIONS},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 50},
        "cpu": {"type": "number", "exclusiveMinimum": 0, "maximum": 16, "multipleOf": 0.25},
        "memoryMb": {"type": "integer", "minimum": 128, "maximum": 65536, "multipleOf": 64},
        "image": {"type": "string", "pattern": "^[a-z0-9./-]+:[A-Za-z0-9._-]+$", "maxLength": 200},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "public": {"type": "boolean"},
        "owner": {"type": "string", "maxLength": 80},
        "costCenter": {"type": "string", "pattern": "^CC-[0-9]{4}$"},
        "ticket": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"},
        "description": {"type": "string", "maxLength": 300},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20},
                 "uniqueItems": True, "maxItems": 10},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63},
                   "maxProperties": 10},
        "healthPath": {"type": "string", "pattern": "^/"},
        "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 3600},
        "retries": {"type": "integer", "minimum": 0, "maximum": 10},
        "database": {
            "type": "object",
            "properties": {
                "engine": {"enum": ["postgres", "mysql"]},
                "version": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
                "sizeGb": {"type": "integer", "minimum": 10, "maximum": 2000},
            },
            "required": ["engine", "sizeGb"],
            "additionalProperties": False,
        },
        "alerts": {"type": "array", "items": {
            "type": "object",
            "properties": {"metric": {"type": "string"}, "threshold": {"type": "number"}},
            "required": ["metric", "threshold"]}},
        "schedule": {"type": "string", "maxLength": 64},
        "autoscale": {"type": "boolean"},
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 1},
        "notifyEmail": {"type": "string", "format": "email"},
        "expiresAt": {"type": "string", "format": "date-time"},
        "apiToken": {"type": "string", "writeOnly": True, "minLength": 16},
        "dryRun": {"type": "boolean", "default": False},
        "priority": {"type": ["integer", "null"], "minimum": 0, "maximum": 5},
    }
    assert len(props) == 30
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
        "required": ["service", "team", "environment", "region", "replicas", "image"],
        "additionalProperties": False,
    }


def valid_instance(rnd):
    return {
        "service": "svc-%s" % "".join(rnd.choice("abcdefghij") for _ in range(8)),
        "team": rnd.choice(["platform", "payments", "search", "identity"]),
        "environment": rnd.choice(ENVS),
        "region": rnd.choice(REGIONS),
        "replicas": rnd.randint(1, 50),
        "cpu": rnd.randint(1, 64) * 0.25,
        "memoryMb": rnd.randint(2, 1024) * 64,
        "image": "registry.example.com/team/app:v1.%d.%d" % (rnd.randint(0, 99), rnd.randint(0, 9)),
        "port": rnd.randint(1024, 65535),
        "public": rnd.random() < 0.5,
        "owner": "owner-%d@example.com" % rnd.randint(1, 999),
        "costCenter": "CC-%04d" % rnd.randint(0, 9999),
        "ticket": "OPS-%d" % rnd.randint(1, 99999),
        "description": "Deploys the service with the standard golden path settings. " * 2,
        "tags": ["tag%d" % i for i in rnd.sample(range(30), rnd.randint(0, 6))],
        "labels": {"app": "web", "tier": rnd.choice(["frontend", "backend"])},
        "healthPath": "/healthz",
        "timeoutSeconds": rnd.randint(1, 3600),
        "retries": rnd.randint(0, 10),
        "database": {"engine": rnd.choice(["postgres", "mysql"]), "version": "15.4",
                     "sizeGb": rnd.randint(10, 2000)},
        "alerts": [{"metric": "p99_latency_ms", "threshold": 250.5},
                   {"metric": "error_rate", "threshold": 0.01}],
        "schedule": "0 3 * * *",
        "autoscale": rnd.random() < 0.5,
        "minReplicas": 1,
        "maxReplicas": 10,
        "notifyEmail": "team-alerts@example.com",
        "expiresAt": "2026-12-31T23:00:00Z",
        "apiToken": "tok_" + "".join(rnd.choice("abcdef0123456789") for _ in range(24)),
        "dryRun": False,
        "priority": rnd.choice([None, 0, 3, 5]),
    }


MUTATIONS = [
    lambda d, r: d.__setitem__("replicas", r.choice([0, 51, "3", 2.5])),
    lambda d, r: d.__setitem__("service", r.choice(["Bad_Name", "ab", "1abc"])),
    lambda d, r: d.pop(r.choice(["service", "team", "environment", "region", "replicas", "image"]), None),
    lambda d, r: d.__setitem__("unknownField", 1),
    lambda d, r: d.__setitem__("cpu", r.choice([0, 16.1, 0.3])),
    lambda d, r: d.__setitem__("memoryMb", r.choice([100, 65600, 130])),
    lambda d, r: d.__setitem__("tags", ["a", "a"]),
    lambda d, r: d["database"].pop("engine", None),
    lambda d, r: d["database"].__setitem__("extra", True),
    lambda d, r: d.__setitem__("costCenter", "CC-12"),
    lambda d, r: d.__setitem__("alerts", [{"metric": "x"}]),
    lambda d, r: d.__setitem__("priority", r.choice([6, "high", -1])),
    lambda d, r: d.__setitem__("labels", {"k": "v" * 64}),
    lambda d, r: d.__setitem__("environment", "qa"),
    lambda d, r: d.__setitem__("public", "yes"),
    lambda d, r: d.__setitem__("apiToken", "short"),
    lambda d, r: d.__setitem__("description", "é" * 301),
    lambda d, r: d.__setitem__("description", "é" * 300),  # valid: 300 code points
    lambda d, r: d.__setitem__("notifyEmail", "not an email"),  # valid: format is annotation
]


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "schema.json"), "w") as f:
        json.dump(schema(), f)
    typical = valid_instance(random.Random(1))
    with open(os.path.join(out, "instance.json"), "w") as f:
        json.dump(typical, f)
    cases = []
    for i in range(n):
        d = valid_instance(rnd)
        if i % 3:
            for _ in range(rnd.randint(1, 2)):
                rnd.choice(MUTATIONS)(d, rnd)
        cases.append(d)
    with open(os.path.join(out, "instances.json"), "w") as f:
        json.dump(cases, f)
    print("instance.json: %d bytes" % len(json.dumps(typical)))


if __name__ == "__main__":
    main()
