#!/usr/bin/python3
"""JSON Schema validation benchmark: lib/jsonschema vs Debian's python3-jsonschema.

Usage: run.py BENCH_BINARY [SECONDS] [N_INSTANCES]

1. Generates the data (gen.py): a 30-property schema, a ~1 KB typical
   action input, N generated valid/invalid instances.
2. Measures validations/s of the typical input with both validators, same
   data, same process run, and prints the ratio.
3. Differential check: both must give the same verdict on every generated
   instance (format as annotation, as in both defaults); exits 1 if not.
Run with Debian's /usr/bin/python3 (apt install python3-jsonschema).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    binary = sys.argv[1]
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    try:
        import jsonschema
    except ImportError:
        print("SKIP: python3-jsonschema is not installed (apt install python3-jsonschema)")
        return 77
    with tempfile.TemporaryDirectory(prefix="gw-jsbench-") as out:
        subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), out, str(n)], check=True)
        schema_p, inst_p, insts_p = (os.path.join(out, f) for f in
                                     ("schema.json", "instance.json", "instances.json"))
        with open(schema_p) as f:
            schema = json.load(f)
        with open(inst_p) as f:
            inst = json.load(f)
        with open(insts_p) as f:
            insts = json.load(f)

        r = subprocess.run([binary, "rate", schema_p, inst_p, str(secs)], check=True,
                           capture_output=True, text=True)
        c_rate = float(r.stdout.split()[1])

        cls = jsonschema.validators.validator_for(schema)
        v = cls(schema)
        assert v.is_valid(inst)
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < secs:
            for _ in range(100):
                v.is_valid(inst)
            count += 100
        py_rate = count / (time.perf_counter() - t0)

        print("instance: %d bytes, schema: %d properties" %
              (os.path.getsize(inst_p), len(schema["properties"])))
        print("gangway lib/jsonschema : %12.0f validations/s" % c_rate)
        from importlib.metadata import version
        print("python3-jsonschema %-5s: %12.0f validations/s" % (version("jsonschema"), py_rate))
        print("ratio (gangway / python): %.1fx" % (c_rate / py_rate))

        r = subprocess.run([binary, "verdicts", schema_p, insts_p], check=True,
                           capture_output=True, text=True)
        ours = [line == "1" for line in r.stdout.split()]
        theirs = [v.is_valid(i) for i in insts]
        diff = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
        print("differential: %d instances (%d valid), %d disagreements" %
              (len(insts), sum(theirs), len(diff)))
        for i in diff[:5]:
            print("  disagree on #%d (gangway %s, python %s): %s" %
                  (i, ours[i], theirs[i], json.dumps(insts[i])[:300]))
        if len(ours) != len(theirs) or diff:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
