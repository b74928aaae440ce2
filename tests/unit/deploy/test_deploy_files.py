#!/usr/bin/env python3
"""Checks the production deployment artifacts without the tools that run them.

No Helm, Kubernetes, container engine or running systemd is assumed, so:
- every Helm template is rendered crudely (control lines dropped, inline
  actions replaced by a scalar, `| nindent N` lines by a placeholder at that
  indent) and must then load as YAML documents with apiVersion/kind/metadata;
  every .Values path a template reads must exist in values.yaml;
- the systemd units carry the keys the deployment relies on (env files,
  restart, hardening, reload, drain); `systemd-analyze verify` runs on them in a
  scratch root when the tool exists;
- every GW_* variable the chart, units, env examples and Containerfile set is
  one the C sources read;
- the Containerfile installs a package for every library the built binary
  links (when dpkg and the build's binary are there) and copies every
  directory meson reads.
Needs python3-yaml (Debian).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("test_deploy_files: python3-yaml is missing (apt-get install -y python3-yaml)", file=sys.stderr)
    sys.exit(1)

SRC = os.environ.get("GW_SOURCE_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../../.."))
BUILD = os.environ.get("GW_BUILD_ROOT", "")
CHART = os.path.join(SRC, "deploy/helm/gangway")
UNITS = os.path.join(SRC, "deploy/systemd")
CONTAINERFILE = os.path.join(SRC, "deploy/container/Containerfile")

failures = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        failures.append(msg)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ------------------------------------------------------------ helm

CONTROL = re.compile(r"^\s*\{\{-?\s*((if|else|end|range|with|define|template)\b|\$[A-Za-z_]\w*\s*:?=).*-?\}\}\s*$")
NINDENT = re.compile(r"^\s*\{\{-?\s*.*\|\s*nindent\s+(\d+)\s*-?\}\}\s*$")
INLINE = re.compile(r"\{\{.*?\}\}")
COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.S)


def crude_render(text):
    text = COMMENT.sub("", text)
    lines = []  # (kind, indent, text)
    for line in text.split("\n"):
        if CONTROL.match(line):
            continue
        m = NINDENT.match(line)
        if m:
            lines.append(("ph", int(m.group(1)), None))
            continue
        check("{{" not in INLINE.sub("", line), f"unbalanced template action in line: {line!r}")
        lines.append(("text", None, INLINE.sub("crude", line)))

    def indent_of(s):
        return len(s) - len(s.lstrip(" "))

    def sibling_is_item(i, n, step):
        j = i + step
        while 0 <= j < len(lines):
            kind, _, t = lines[j]
            if kind == "text" and t.strip() and not t.lstrip().startswith("#"):
                ind = indent_of(t)
                if ind < n or t.strip() == "---":
                    return False
                if ind == n:
                    return t.lstrip().startswith("- ")
            j += step
        return False

    out = []
    for i, (kind, n, t) in enumerate(lines):
        if kind == "text":
            out.append(t)
        elif sibling_is_item(i, n, -1) or sibling_is_item(i, n, 1):
            out.append(" " * n + "- crude")
        else:
            out.append(" " * n + f"crude_{i}: crude")
    return "\n".join(out)


def values_has(values, path):
    node = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_chart():
    chart = yaml.safe_load(read(os.path.join(CHART, "Chart.yaml")))
    check(chart.get("apiVersion") == "v2", "Chart.yaml: apiVersion v2")
    for k in ("name", "version", "appVersion"):
        check(k in chart, f"Chart.yaml: {k} missing")
    values = yaml.safe_load(read(os.path.join(CHART, "values.yaml")))
    check(isinstance(values, dict), "values.yaml does not load as a mapping")
    tdir = os.path.join(CHART, "templates")
    docs, by_file = {}, {}
    all_text = ""
    for name in sorted(os.listdir(tdir)):
        text = read(os.path.join(tdir, name))
        all_text += text
        if not name.endswith(".yaml"):
            continue
        rendered = crude_render(text)
        try:
            loaded = [d for d in yaml.safe_load_all(rendered) if d is not None]
        except yaml.YAMLError as e:
            failures.append(f"{name}: not YAML after crude rendering: {e}\n{rendered}")
            continue
        check(loaded, f"{name}: renders no document")
        for d in loaded:
            check(isinstance(d, dict) and d.get("apiVersion") and d.get("kind"), f"{name}: document without apiVersion/kind")
            check(isinstance(d.get("metadata"), dict) and "name" in d["metadata"], f"{name}: document without metadata.name")
            docs.setdefault(d.get("kind"), []).append((name, d))
            by_file.setdefault(name, []).append(d)

    # Every .Values path read exists in values.yaml; $w./$b. paths are per
    # worker type and the broker block.
    for path in sorted(set(re.findall(r"\.Values\.([A-Za-z0-9_.]+)", all_text))):
        check(values_has(values, path.rstrip(".")), f"templates read .Values.{path}, not in values.yaml")
    defaults = values.get("workerDefaults", {})
    for path in sorted(set(re.findall(r"\$[wd]\.([A-Za-z0-9_.]+)", all_text))):
        check(values_has(defaults, path), f"templates read $w.{path}, not in values.yaml workerDefaults")
    for key in re.findall(r'dig ((?:"[A-Za-z]+" )+)\$d\.', all_text):
        path = ".".join(k.strip('"') for k in key.split())
        check(values_has(defaults, path), f"templates dig {path}, not in values.yaml workerDefaults")
    for path in sorted(set(re.findall(r"\$b\.([A-Za-z0-9_.]+)", all_text))):
        check(values_has(values.get("broker", {}), path), f"templates read $b.{path}, not in values.yaml broker")

    for kind in ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Job", "ServiceAccount"):
        check(kind in docs, f"chart has no {kind}")
    # The broker's kind is a template expression (Deployment or StatefulSet).
    broker = [d for d in by_file.get("broker.yaml", []) if d.get("metadata", {}).get("name", "").endswith("-broker")]
    check(len(broker) == 1, "broker.yaml renders one workload")
    if broker:
        c = broker[0]["spec"]["template"]["spec"]["containers"][0]
        check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "broker readinessProbe is not GET /readyz")
        check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "broker livenessProbe is not GET /healthz")
        check(c.get("args", [None])[0] == "broker", "broker container does not run `gangway broker`")
    workers = [d for n, d in docs.get("Deployment", []) if n == "workers.yaml"]
    check(len(workers) == 1, "workers.yaml renders a worker Deployment")
    if workers:
        c = workers[0]["spec"]["template"]["spec"]["containers"][0]
        check(c.get("args", [])[:2] == ["worker", "--type"], "worker container does not run `gangway worker --type`")
    jobs = docs.get("Job", [])
    if jobs:
        job = jobs[0][1]
        hooks = job["metadata"].get("annotations", {}).get("helm.sh/hook", "")
        check("pre-install" in hooks and "pre-upgrade" in hooks, "migrate Job is not a pre-install/pre-upgrade hook")
        check(job["spec"]["template"]["spec"]["containers"][0].get("args") == ["migrate"], "migrate Job does not run `gangway migrate`")
    return all_text


# ------------------------------------------------------------ systemd


def parse_unit(path):
    sections, cur = {}, None
    for raw in read(path).split("\n"):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), [])
            continue
        check(cur is not None and "=" in line, f"{path}: stray line {line!r}")
        if cur is not None and "=" in line:
            k, v = line.split("=", 1)
            cur.append((k.strip(), v.strip()))
    return sections


def values_of(section, key):
    return [v for k, v in section if k == key]


def test_units():
    common = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "CapabilityBoundingSet": "", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "Restart": "on-failure", "KillSignal": "SIGTERM", "User": "gangway",
    }
    units = {}
    for name in ("gangway-broker.service", "gangway-worker@.service"):
        u = parse_unit(os.path.join(UNITS, name))
        units[name] = u
        svc = u.get("Service", [])
        for k, v in common.items():
            check(v in values_of(svc, k), f"{name}: {k}={v} missing")
        check("@system-service" in values_of(svc, "SystemCallFilter"), f"{name}: SystemCallFilter=@system-service missing")
        check(values_of(u.get("Install", []), "WantedBy") == ["multi-user.target"], f"{name}: WantedBy=multi-user.target")
        check("network-online.target" in " ".join(values_of(u.get("Unit", []), "After")), f"{name}: not After=network-online.target")
    b = units["gangway-broker.service"]["Service"]
    check(values_of(b, "ExecStart") == ["/usr/bin/gangway broker"], "broker: ExecStart")
    check(values_of(b, "ExecReload") == ["/bin/kill -HUP $MAINPID"], "broker: ExecReload must send SIGHUP (policy reload)")
    check(values_of(b, "EnvironmentFile") == ["/etc/gangway/broker.env"], "broker: EnvironmentFile")
    w = units["gangway-worker@.service"]["Service"]
    check(values_of(w, "ExecStart") == ["/usr/bin/gangway worker --type %i $GANGWAY_WORKER_ARGS"], "worker: ExecStart with --type %i")
    check("/etc/gangway/worker.env" in values_of(w, "EnvironmentFile"), "worker: EnvironmentFile=/etc/gangway/worker.env")
    check(values_of(w, "KillMode") == ["mixed"], "worker: KillMode=mixed (SIGTERM to the worker only, programs drain)")
    stop = values_of(w, "TimeoutStopSec")
    secs = int(stop[0].rstrip("s")) if stop and stop[0].rstrip("s").isdigit() else 0
    args = " ".join(values_of(w, "Environment"))
    grace = re.search(r"--grace-seconds (\d+)", args)
    check(grace is not None and secs > int(grace.group(1)) + 15, "worker: TimeoutStopSec must exceed the default grace + 15 s")
    check(any(v.startswith("gangway/") for v in values_of(w, "StateDirectory")), "worker: StateDirectory for its state")
    # The handoff drop-in (docs/reattach.md): supervisors outlive the stop,
    # and nothing they need sits where the stop removes it.
    h = parse_unit(os.path.join(UNITS, "handoff.conf")).get("Service", [])
    env = dict(v.split("=", 1) for v in values_of(h, "Environment"))
    check(values_of(h, "KillMode") == ["process"], "handoff.conf: KillMode=process (supervisors survive the stop)")
    check(env.get("GW_WORKER_SUPERVISE") == "1" and env.get("GW_WORKER_DRAIN_MODE") == "handoff",
          f"handoff.conf: supervision and the handoff drain on ({env})")
    check(env.get("GW_WORKER_STATE_DIR", "").startswith("%S/") and env.get("TMPDIR", "").startswith("%S/"),
          f"handoff.conf: run dirs and exec workdirs under the state directory, not PrivateTmp's /tmp ({env})")
    return units


def systemd_verify():
    tool = shutil.which("systemd-analyze")
    gangway = os.path.join(BUILD, "cli/gangway") if BUILD else ""
    unitdir = next((d for d in ("/lib/systemd/system", "/usr/lib/systemd/system") if os.path.isfile(os.path.join(d, "sysinit.target"))), None)
    if tool is None or not os.path.isfile(gangway) or unitdir is None:
        print("systemd-analyze verify: skipped (tool, built binary or system units missing)")
        return
    with tempfile.TemporaryDirectory(prefix="gw-deploy-") as root:
        for d in ("usr/bin", "bin", "etc/systemd/system", "etc/gangway"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        shutil.copytree(unitdir, os.path.join(root, "usr/lib/systemd/system"), symlinks=True)
        shutil.copy(gangway, os.path.join(root, "usr/bin/gangway"))
        shutil.copy(shutil.which("kill") or "/bin/kill", os.path.join(root, "bin/kill"))
        for u in ("gangway-broker.service", "gangway-worker@.service"):
            shutil.copy(os.path.join(UNITS, u), os.path.join(root, "etc/systemd/system", u))
        dropin = os.path.join(root, "etc/systemd/system/gangway-worker@exec.service.d")
        os.makedirs(dropin)
        shutil.copy(os.path.join(UNITS, "handoff.conf"), dropin)
        shutil.copy("/bin/mkdir", os.path.join(root, "bin/mkdir"))
        for u in ("gangway-broker.service", "gangway-worker@exec.service"):
            p = subprocess.run([tool, f"--root={root}", "verify", u], capture_output=True, text=True)
            noise = [l for l in (p.stdout + p.stderr).splitlines() if "gangway" in l]
            check(p.returncode == 0 and not noise, f"systemd-analyze verify {u}: rc={p.returncode} {noise}")


# ------------------------------------------------------------ GW_* names


def code_env_names():
    names = set()
    for top in ("broker", "workers", "lib", "cli"):
        for dirpath, _, files in os.walk(os.path.join(SRC, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    names |= set(re.findall(r'"(GW_[A-Z0-9_]+)"', read(os.path.join(dirpath, f))))
    return names


def test_env_names(chart_text):
    code = code_env_names()
    check("GW_PG" in code and "GW_BROKER_URL" in code, "could not find the GW_* names in the C sources")
    set_by = {}
    for name in re.findall(r"name:\s*(GW_[A-Z0-9_]+)", chart_text):
        set_by.setdefault(name, "chart")
    for f in os.listdir(UNITS):
        text = read(os.path.join(UNITS, f))
        for name in re.findall(r"^\s*#?\s*(?:Environment=)?(GW_[A-Z0-9_]+)=", text, re.M):
            set_by.setdefault(name, f)
    for line in read(CONTAINERFILE).split("\n"):
        for name in re.findall(r"\b(GW_[A-Z0-9_]+)=", line):
            set_by.setdefault(name, "Containerfile")
    check(len(set_by) >= 10, f"found too few GW_* settings ({sorted(set_by)})")
    for name, where in sorted(set_by.items()):
        check(name in code, f"{where} sets {name}, which no C source reads")


# ------------------------------------------------------------ Containerfile


def test_containerfile():
    text = read(CONTAINERFILE)
    stages = re.split(r"^FROM ", text, flags=re.M)
    check(len(stages) == 3, "Containerfile: expected a build and a runtime stage")
    runtime = stages[-1]
    pkgs = set()
    joined = runtime.replace("\\\n", " ")
    for m in re.finditer(r"apt-get install((?:(?!&&)[^\n])*)", joined):
        pkgs |= {w for w in m.group(1).split() if re.match(r"^[a-z0-9][a-z0-9.+-]+$", w)}
    check({"libuv1", "librdkafka1", "libpq5"} <= pkgs, f"Containerfile: runtime packages not parsed ({sorted(pkgs)})")
    check("python3-confluent-kafka" in pkgs, "Containerfile: runtime lacks python3-confluent-kafka (the Python worker SDK)")
    check("USER 10001:10001" in runtime, "Containerfile: runtime does not run as non-root")
    check(re.search(r'^ENTRYPOINT .*"/usr/bin/gangway"\]', runtime, re.M) is not None, "Containerfile: ENTRYPOINT is not gangway")
    # Every directory the root meson.build enters, and those files() reach.
    copied = set(re.findall(r"^COPY (?!--)(?:\S+ )*?(\S+?)/? \S+$", text, re.M))
    copied |= {p.rstrip("/") for l in re.findall(r"^COPY (?!--)(.*) \S+$", text, re.M) for p in l.split()}
    root_meson = read(os.path.join(SRC, "meson.build"))
    for d in re.findall(r"subdir\('([^']+)'\)", root_meson) + ["sql", "schemas", "examples", "tools"]:
        check(d in copied, f"Containerfile does not copy {d}/")
    gangway = os.path.join(BUILD, "cli/gangway") if BUILD else ""
    if not (os.path.isfile(gangway) and shutil.which("dpkg-query") and shutil.which("readelf") and shutil.which("ldd")):
        print("Containerfile runtime libraries: skipped (no built binary, dpkg, readelf or ldd)")
        return
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", subprocess.run(["readelf", "-d", gangway], capture_output=True, text=True).stdout)
    ldd = subprocess.run(["ldd", gangway], capture_output=True, text=True).stdout
    for lib in needed:
        m = re.search(r"^\s*" + re.escape(lib) + r" => (\S+)", ldd, re.M)
        if m is None or "asan" in lib or "ubsan" in lib:
            continue
        real = os.path.realpath(m.group(1))
        owners = set()
        for cand in (real, real.replace("/usr/lib/", "/lib/", 1), real.replace("/lib/", "/usr/lib/", 1)):
            p = subprocess.run(["dpkg-query", "-S", cand], capture_output=True, text=True)
            owners |= {o.strip().split(":")[0] for o in p.stdout.split(":", 1)[0].split(",") if o.strip()} if p.returncode == 0 else set()
        if owners & {"libc6"} or not owners:
            continue
        check(owners & pkgs, f"Containerfile runtime stage lacks the package of {lib} ({', '.join(sorted(owners))})")


def helm_render():
    """The real renderer when a `helm` is on PATH (not in CI: no Debian package)."""
    helm = shutil.which("helm")
    if helm is None:
        print("helm lint/template: skipped (no helm on PATH)")
        return
    with tempfile.TemporaryDirectory(prefix="gw-helm-") as home:
        env = dict(os.environ, HELM_CACHE_HOME=home, HELM_CONFIG_HOME=home, HELM_DATA_HOME=home)
        p = subprocess.run([helm, "lint", "--strict", CHART], capture_output=True, text=True, env=env)
        check(p.returncode == 0, f"helm lint --strict: {p.stdout}{p.stderr}")
        for kind in ("Deployment", "StatefulSet"):
            p = subprocess.run([helm, "template", "gw", CHART, "--set", f"broker.kind={kind}"],
                               capture_output=True, text=True, env=env)
            check(p.returncode == 0, f"helm template: {p.stderr}")
            docs = [d for d in yaml.safe_load_all(p.stdout) if d] if p.returncode == 0 else []
            kinds = sorted(d["kind"] for d in docs)
            check(kind in kinds and "Job" in kinds, f"helm template (broker.kind={kind}) rendered {kinds}")


def main():
    chart_text = test_chart()
    helm_render()
    test_units()
    systemd_verify()
    test_env_names(chart_text)
    test_containerfile()
    for f in failures:
        print("FAIL:", f)
    print(f"{checks} checks, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
