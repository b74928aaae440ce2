#!/usr/bin/env python3
"""The Helm chart (deploy/helm/gangway) rendered and checked by a real Helm 3.

Helm comes from deploy/install-helm (built once from the Go module proxy,
cached under ~/.cache/gangway/helm; tests/run installs it). Without one the
test exits 77 (skipped) and says so.

- `helm lint --strict` and `helm template` with the default values: the
  expected objects;
- a worker entry with its own image, command and args (a Python worker type)
  renders them, while the other types keep `gangway worker --type T ...`;
- `--set-file policy=FILE` with a YAML policy mounts the text as written and
  points GW_POLICY_FILE at it;
- wrong values are refused by values.schema.json or the chart (a typo'd key,
  a wrong type, an unknown enum value, a policy file that is not YAML, not a
  mapping, or misses a key, a typo inside a worker entry), by both `helm
  template` and `helm lint`, naming the culprit.
Needs python3-yaml (Debian)."""
import os
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("test_helm_chart: python3-yaml is missing (apt-get install -y python3-yaml)", file=sys.stderr)
    sys.exit(1)

SKIP = 77
SRC = os.environ.get("GW_SOURCE_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
CHART = os.path.join(SRC, "deploy/helm/gangway")

failures = []
checks = 0


def check(cond, msg, *detail):
    global checks
    checks += 1
    print(("ok - " if cond else "FAIL - ") + msg, flush=True)
    if not cond:
        failures.append(msg + ("" if not detail else ": " + " ".join(str(d) for d in detail)))
    return cond


def find_helm():
    p = subprocess.run([os.path.join(SRC, "deploy", "install-helm"), "--no-install"],
                       capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.strip():
        return p.stdout.strip()
    print("skipped: no helm (deploy/install-helm builds it from the Go module proxy; "
          "tests/run runs it): " + p.stderr.strip())
    sys.exit(SKIP)


def main():
    helm = find_helm()
    tmp = tempfile.mkdtemp(prefix="gw-helm-test-")
    env = dict(os.environ, HELM_CACHE_HOME=tmp, HELM_CONFIG_HOME=tmp, HELM_DATA_HOME=tmp)

    def write(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def helm_run(*args):
        return subprocess.run([helm] + list(args), capture_output=True, text=True, env=env, timeout=120)

    def template(*args):
        p = helm_run("template", "gw", CHART, *args)
        docs = [d for d in yaml.safe_load_all(p.stdout) if d] if p.returncode == 0 else []
        return p, docs

    def by_name(docs, kind, name):
        return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)

    p = helm_run("lint", "--strict", CHART)
    check(p.returncode == 0, "helm lint --strict passes with the default values", p.stdout + p.stderr)

    p, docs = template()
    check(p.returncode == 0, "helm template renders the default values", p.stderr)
    kinds = sorted(d["kind"] for d in docs)
    check(kinds.count("Deployment") == 2 and "Job" in kinds and "Service" in kinds,
          "defaults: the broker and exec worker Deployments, the Service, the migration Job", kinds)
    w = by_name(docs, "Deployment", "gw-gangway-worker-exec")
    c = w["spec"]["template"]["spec"]["containers"][0] if w else {}
    check(c.get("args", [])[:3] == ["worker", "--type", "exec"] and "command" not in c,
          "the exec worker runs the image's gangway with `worker --type exec`", c.get("args"), c.get("command"))

    # A worker type with an image and a command of its own (Python).
    py = write("python-worker.yaml", """
workers:
  exec: {}
  pyecho:
    replicas: 2
    image: {repository: registry.example.com/gangway-python, tag: "7"}
    command: [/usr/bin/tini, --, /usr/bin/python3, /usr/share/gangway/examples/workers/python/gangway_worker.py]
    args: [--type, pyecho, --import, my_handlers, --grace-seconds, "30"]
    extraEnv: [{name: PYTHONPATH, value: /etc/gangway/programs}]
programs:
  my_handlers.py: |
    import gangway_worker
""")
    for cmd in ("lint", "template"):
        p = helm_run(cmd, *(["--strict"] if cmd == "lint" else ["gw"]), CHART, "-f", py)
        check(p.returncode == 0, "helm %s accepts a worker entry with its own image and command" % cmd,
              p.stdout[-2000:] + p.stderr)
    p, docs = template("-f", py)
    w = by_name(docs, "Deployment", "gw-gangway-worker-pyecho")
    check(w is not None, "the Python worker type gets its own Deployment", [d["metadata"]["name"] for d in docs])
    if w:
        c = w["spec"]["template"]["spec"]["containers"][0]
        check(c["image"] == "registry.example.com/gangway-python:7", "with its own image", c["image"])
        check(c.get("command") == ["/usr/bin/tini", "--", "/usr/bin/python3",
                                   "/usr/share/gangway/examples/workers/python/gangway_worker.py"],
              "with its own command", c.get("command"))
        check(c.get("args") == ["--type", "pyecho", "--import", "my_handlers", "--grace-seconds", "30"],
              "with its own args", c.get("args"))
        names = [e["name"] for e in c["env"]]
        check({"GW_BROKER_URL", "GW_WORKER_TOKEN", "GW_KAFKA_BROKERS", "PYTHONPATH"} <= set(names),
              "and the environment the Python SDK reads", names)
        mounts = [m["mountPath"] for m in c["volumeMounts"]]
        check("/etc/gangway/programs" in mounts, "the programs (its handlers) are mounted", mounts)
        check(w["spec"]["replicas"] == 2, "with its replicas", w["spec"]["replicas"])
    w = by_name(docs, "Deployment", "gw-gangway-worker-exec")
    c = w["spec"]["template"]["spec"]["containers"][0] if w else {}
    check(c.get("args", [])[:3] == ["worker", "--type", "exec"] and c.get("image") == "registry.example.com/gangway:0.1.0",
          "the exec worker keeps the chart's image and the gangway worker args", c.get("image"), c.get("args"))

    # A command with no args: no arguments at all (not the gangway flags).
    p, docs = template("--set", "workers.pyecho.command={/usr/local/bin/my-worker}")
    w = by_name(docs, "Deployment", "gw-gangway-worker-pyecho")
    c = w["spec"]["template"]["spec"]["containers"][0] if w else {}
    check(p.returncode == 0 and c.get("command") == ["/usr/local/bin/my-worker"] and "args" not in c,
          "a command without args runs without the gangway worker flags", p.stderr, c)

    # --set-file policy=FILE (YAML text): mounted as written.
    policy = ("version: 1\nroles:\n  dev:\n    grants:\n      - {permissions: [run], tags: [self-service]}\n"
              "bindings:\n  - {roles: [dev], teams: ['*']}\n")
    pol = write("policy.yaml", policy)
    p, docs = template("--set-file", "policy=" + pol)
    check(p.returncode == 0, "--set-file policy=policy.yaml renders", p.stderr)
    cm = by_name(docs, "ConfigMap", "gw-gangway-config")
    check(cm is not None and cm["data"].get("policy.yaml") == policy,
          "the policy file's text is mounted as written, as policy.yaml", cm and cm["data"])
    b = by_name(docs, "Deployment", "gw-gangway-broker")
    env_b = {e["name"]: e.get("value") for e in b["spec"]["template"]["spec"]["containers"][0]["env"]} if b else {}
    check(env_b.get("GW_POLICY_FILE") == "/etc/gangway/config/policy.yaml",
          "GW_POLICY_FILE names it", env_b.get("GW_POLICY_FILE"))
    pj = write("policy.json", '{"roles": {"dev": {"grants": []}}, "bindings": []}')
    p, docs = template("--set-file", "policy=" + pj)
    cm = by_name(docs, "ConfigMap", "gw-gangway-config")
    check(p.returncode == 0 and cm is not None and "policy.json" in cm["data"],
          "a JSON policy file is mounted as policy.json", p.stderr, cm and cm["data"])
    # As YAML values (the object form) it is written as JSON.
    pv = write("policy-values.yaml", "policy:\n" + "".join("  " + l + "\n" for l in policy.splitlines()))
    p, docs = template("-f", pv)
    cm = by_name(docs, "ConfigMap", "gw-gangway-config")
    check(p.returncode == 0 and cm is not None and "policy.json" in cm["data"],
          "a policy given as values is written as policy.json", p.stderr, cm and cm["data"])

    # Wrong values: refused, naming the culprit.
    bad_cases = [
        ("a typo'd top-level key", ["--set", "brokr.replicas=3"], "brokr"),
        ("a typo'd nested key", ["--set", "broker.replica=3"], "replica"),
        ("a wrong type", ["--set", "broker.replicas=two"], "broker.replicas"),
        ("an unknown broker kind", ["--set", "broker.kind=DaemonSet"], "broker.kind"),
        ("a typo inside a worker entry", ["--set", "workers.exec.comand={x}"], "comand"),
        ("a worker command that is not a list", ["--set", "workers.exec.command=python3"], "command"),
        ("a worker type that is not a DNS label", ["--set", "workers.Py_Echo.replicas=1"], "Py_Echo"),
        ("a log level that does not exist", ["--set", "logLevel=verbose"], "logLevel"),
        ("a policy file that is not YAML", ["--set-file", "policy=" + write("bad.yaml", "roles: [unclosed\n")],
         "policy: not a YAML mapping"),
        ("a policy file that is a list", ["--set-file", "policy=" + write("list.yaml", "- a\n- b\n")],
         "policy: not a YAML mapping"),
        ("a policy file without bindings",
         ["--set-file", "policy=" + write("nobind.yaml", "roles: {}\nbinding: []\n")], '"bindings" is missing'),
        ("a policy file with an unknown key",
         ["--set-file", "policy=" + write("extra.yaml", "roles: {}\nbindings: []\nrule: 1\n")], '"rule"'),
        ("a JSON policy file that is not JSON",
         ["--set-file", "policy=" + write("bad.json", '{"roles": {}, "bindings": [}')], "policy: not a JSON mapping"),
        ("a policy object with a typo'd key",
         ["-f", write("pol-typo.yaml", "policy:\n  roles: {}\n  bindings: []\n  bindngs: []\n")], "bindngs"),
        ("a grant with an unknown permission",
         ["-f", write("pol-perm.yaml", "policy:\n  roles: {dev: {grants: [{permissions: [deploy]}]}}\n  bindings: []\n")],
         "permissions"),
        ("an action file whose text lacks worker_type",
         ["--set-file", "actions.echo\\.yaml=" + write("echo.yaml", "id: echo\ntitle: Echo\nbackend: {}\ninputs: {}\n")],
         '"worker_type" is missing'),
    ]
    for what, args, culprit in bad_cases:
        p = helm_run("template", "gw", CHART, *args)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and culprit in out, "helm template refuses %s, naming %s" % (what, culprit),
              out[-1500:])
    for what, args, culprit in (bad_cases[0], bad_cases[8], bad_cases[13]):
        p = helm_run("lint", "--strict", CHART, *args)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and culprit in out, "helm lint refuses %s, naming %s" % (what, culprit), out[-1500:])

    for f in failures:
        print("FAIL:", f)
    print("%d passed, %d failed" % (checks - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
