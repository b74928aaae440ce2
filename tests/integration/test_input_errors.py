"""A 422 on a submit names what each refused input would have accepted
(issue 12): the enum's allowed values (capped at 20 with "omitted"), the
const, the pattern, the numeric and length bounds, the expected type, the
missing or unexpected property -- as fields of each element of "errors"
and in its message -- and the answer matches schemas/openapi.json's Problem
schema (checked with the repository's own validator, `gangway schema`)."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GANGWAY, SRC, Stack, check, main, write_action  # noqa: E402

INPUTS = {
    "type": "object",
    "required": ["env", "owner"],
    "additionalProperties": False,
    "properties": {
        "env": {"enum": ["dev", "staging", "prod"]},
        "region": {"enum": ["r%02d" % i for i in range(25)]},
        "tier": {"const": "gold"},
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number", "exclusiveMaximum": 1, "multipleOf": 0.25},
        "tags": {"type": "array", "maxItems": 2},
        "owner": {"type": "string"},
    },
}


def by_pointer_keyword(errors):
    return {(e["pointer"], e["keyword"]): e for e in errors}


def test():
    with Stack("inputerr", actions_dir=None) as s:
        actions = os.path.join(s.tmp, "actions")
        write_action(actions, "shape", ["/bin/cat"], INPUTS, timeout_seconds=30)
        s.actions_dir = actions
        s.start_broker()

        r = s.submit("shape", {"env": "qa", "region": "mars", "tier": "silver", "name": "ABCDEFG",
                               "replicas": 11, "ratio": 1.1, "tags": [1, 2, 3], "owner": 7, "colour": "red"})
        check(r.status == 422, "bad inputs are refused with 422", r.status, r.body)
        check(r.headers.get("content-type", "").startswith("application/problem+json"),
              "the 422 is a problem document", r.headers.get("content-type"))
        p = r.json()
        check(p["code"] == "validation_failed" and p["title"] == "Unprocessable Content",
              "code validation_failed, title Unprocessable Content", p)
        e = by_pointer_keyword(p["errors"])

        x = e.get(("/inputs/env", "enum"))
        check(x and x["allowed"] == ["dev", "staging", "prod"] and "omitted" not in x,
              "enum: every allowed value is listed", x)
        check(x and '"dev", "staging", "prod"' in x["message"], "enum: the message names the values", x)

        x = e.get(("/inputs/region", "enum"))
        check(x and x["allowed"] == ["r%02d" % i for i in range(20)] and x["omitted"] == 5,
              "a long enum lists 20 values and counts the 5 others", x)
        check(x and x["message"].endswith("(and 5 more)"), "its message says how many more", x)

        x = e.get(("/inputs/tier", "const"))
        check(x and x["allowed"] == ["gold"] and '"gold"' in x["message"], "const: the value is named", x)

        x = e.get(("/inputs/name", "pattern"))
        check(x and x["pattern"] == "^[a-z]+$" and '"^[a-z]+$"' in x["message"],
              "pattern: the expression is named", x)
        x = e.get(("/inputs/name", "maxLength"))
        check(x and x["limit"] == 5 and "at most 5" in x["message"], "maxLength: the limit is named", x)

        x = e.get(("/inputs/replicas", "maximum"))
        check(x and x["limit"] == 10 and "maximum 10" in x["message"], "maximum: the limit is named", x)
        x = e.get(("/inputs/ratio", "exclusiveMaximum"))
        check(x and x["limit"] == 1, "exclusiveMaximum: the limit is named", x)
        x = e.get(("/inputs/ratio", "multipleOf"))
        check(x and x["limit"] == 0.25 and "0.25" in x["message"], "multipleOf: the divisor is named", x)
        x = e.get(("/inputs/tags", "maxItems"))
        check(x and x["limit"] == 2, "maxItems: the limit is named", x)

        x = e.get(("/inputs/owner", "type"))
        check(x and x["expected"] == ["string"] and x["actual"] == "integer"
              and "expected string, got integer" == x["message"], "type: expected and actual types", x)
        x = e.get(("/inputs", "additionalProperties"))
        check(x and x["property"] == "colour", "additionalProperties: the property is named", x)
        check(all(x["schema_pointer"].startswith("/properties/") or x["pointer"] == "/inputs"
                  for x in p["errors"]), "every error keeps its schema pointer", p["errors"])

        r = s.submit("shape", {"env": "dev", "replicas": 0})
        e = by_pointer_keyword(r.json()["errors"])
        x = e.get(("/inputs", "required"))
        check(r.status == 422 and x and x["property"] == "owner", "required: the missing property is named", x)
        x = e.get(("/inputs/replicas", "minimum"))
        check(x and x["limit"] == 1, "minimum: the limit is named", x)

        # The 422 body agrees with the OpenAPI document's Problem schema.
        with open(os.path.join(SRC, "schemas", "openapi.json")) as f:
            problem = json.load(f)["components"]["schemas"]["Problem"]
        for name, body in (("schema", problem), ("problem", p)):
            with open(os.path.join(s.tmp, name + ".json"), "w") as f:
                json.dump(body, f)
        v = subprocess.run([GANGWAY, "schema", "validate", os.path.join(s.tmp, "schema.json"),
                            os.path.join(s.tmp, "problem.json")], capture_output=True, text=True)
        check(v.returncode == 0, "the 422 body is valid against openapi.json's Problem schema", v.stdout, v.stderr)
        check(all(k in problem["properties"]["errors"]["items"]["properties"]
                  for x in p["errors"] for k in x),
              "openapi.json documents every member of every error", p["errors"])


if __name__ == "__main__":
    main(test)
