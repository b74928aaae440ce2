"""`gangway schema validate`, the command platform teams use to check an
action's input schema and sample inputs before they ship them: one line per
instance (`valid`, or `invalid` with the errors as JSON), exit 0 when all
are valid, 1 when any is invalid, 2 when the schema is bad or a file cannot
be read; --ref-dir, --draft and --format-assert; JSON and YAML files."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

BUILD = os.environ.get("GW_BUILD_ROOT", "build")
GANGWAY = os.path.join(BUILD, "cli", "gangway")
failures = 0


def check(cond, what, *detail):
    global failures
    if cond:
        print("ok -", what)
    else:
        failures += 1
        print("FAIL -", what, *detail)


def run(*args):
    p = subprocess.run([GANGWAY, "schema", "validate", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def main():
    d = tempfile.mkdtemp(prefix="gw-schema-cli-")
    try:
        def put(name, text):
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text if isinstance(text, str) else json.dumps(text))
            return path

        schema = put("echo.schema.json", {
            "type": "object", "required": ["message"], "additionalProperties": False,
            "properties": {"message": {"type": "string", "maxLength": 5}}})
        good = put("good.json", {"message": "hi"})
        bad = put("bad.json", {"message": "far too long", "extra": 1})

        rc, out, _ = run(schema, good)
        check(rc == 0 and out == good + ": valid\n", "a valid instance: exit 0, one 'valid' line", rc, out)

        rc, out, _ = run(schema, good, bad)
        lines = out.splitlines()
        check(rc == 1 and len(lines) == 2 and lines[0] == good + ": valid", "one invalid of two: exit 1", rc, out)
        prefix = bad + ": invalid "
        errors = json.loads(lines[1][len(prefix):]) if lines[1].startswith(prefix) else []
        kw = sorted(e.get("keyword") for e in errors)
        check(kw == ["additionalProperties", "maxLength"] and
              any(e.get("instanceLocation") == "/message" for e in errors),
              "the errors are JSON with keyword and instance location", lines[1:])

        rc, out, err = run(put("broken.json", '{"type": "object",'), good)
        check(rc == 2 and "broken.json" in err, "a schema that is not JSON: exit 2, named", rc, err)
        rc, out, err = run(put("notschema.json", {"type": 12}), good)
        check(rc == 2, "a schema the metaschema refuses: exit 2", rc, err)
        rc, out, _ = run(schema, os.path.join(d, "missing.json"))
        check(rc == 2 and "missing.json: error" in out, "an unreadable instance: exit 2, named", rc, out)

        # YAML schema and instances (YAML 1.2: 'no' is a string).
        yschema = put("env.schema.yaml", "type: object\nproperties:\n  env: {enum: [yes, no]}\n"
                                         "  replicas: {type: integer, maximum: 3}\n")
        rc, out, _ = run(yschema, put("ok.yaml", "env: no\nreplicas: 017\n"))
        check(rc == 1 and "invalid" in out and "/replicas" in out,
              "YAML: 017 is the integer 17 (over the maximum)", rc, out)
        rc, out, _ = run(yschema, put("ok2.yml", "env: 'yes'\nreplicas: 2\n"))
        check(rc == 0 and out.endswith(": valid\n"), "YAML schema and instance, valid", rc, out)
        rc, out, _ = run(yschema, put("dup.yaml", "env: no\nenv: yes\n"))
        check(rc == 2 and "duplicate key 'env'" in out and "dup.yaml: line 2" in out,
              "a YAML instance with a duplicate key: exit 2 with the line", rc, out)

        # --draft for schemas without $schema: draft-07 ignores prefixItems.
        tup = put("tuple.json", {"type": "array", "prefixItems": [{"type": "string"}]})
        nums = put("nums.json", [1])
        rc, _, _ = run(tup, nums)
        check(rc == 1, "2020-12 by default: prefixItems applies")
        rc, _, _ = run("--draft", "7", tup, nums)
        check(rc == 0, "--draft 7: prefixItems is not a draft-07 keyword")

        # --format-assert
        fmt = put("fmt.json", {"type": "string", "format": "email"})
        notmail = put("notmail.json", json.dumps("not an email"))
        rc, _, _ = run(fmt, notmail)
        check(rc == 0, "format is an annotation by default")
        rc, out, _ = run("--format-assert", fmt, notmail)
        check(rc == 1 and '"format"' in out, "--format-assert makes it an assertion", rc, out)

        # --ref-dir maps a base URI to a directory of *.json schemas.
        os.mkdir(os.path.join(d, "lib"))
        put("lib/name.json", {"$id": "https://example.com/lib/name.json", "type": "string", "minLength": 3})
        refs = put("refs.json", {"type": "object", "properties": {"name": {"$ref": "https://example.com/lib/name.json"}}})
        short = put("short.json", {"name": "ab"})
        rc, out, err = run(refs, short)
        check(rc == 2, "an unmapped remote $ref is refused, never fetched", rc, out, err)
        rc, out, _ = run("--ref-dir", "https://example.com/lib/=" + os.path.join(d, "lib"), refs, short)
        check(rc == 1 and "minLength" in out, "--ref-dir resolves it from the directory", rc, out)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("%s: %d failure(s)" % ("FAIL" if failures else "PASS", failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
