#!/usr/bin/env python3
"""`meson install` gives a working `gangway`: installed into a staging
directory (--destdir), the binary lands in <prefix>/bin with its data in
<prefix>/share/gangway (sql/ with functions/, schemas/, examples/), and the
installed binary, run from elsewhere with no GW_* variable, prints its help
(every client command listed) and migrates a new database from the installed
sql/ (lib/gw/paths.h: <bin>/../share/gangway/sql) — every numbered migration
and every function file recorded."""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, SRC, Stack, check, dsn_with_db, main, need_services  # noqa: E402


def test():
    pg_admin, _ = need_services()
    dest = tempfile.mkdtemp(prefix="gw-install-")
    db = "gw_install_%s" % secrets.token_hex(4)
    try:
        p = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
                            "--quiet"], capture_output=True, text=True, timeout=240)
        check(p.returncode == 0, "meson install --destdir succeeds", p.stdout[-2000:], p.stderr[-2000:])
        found = [os.path.join(d, "gangway") for d, _, files in os.walk(dest)
                 if "gangway" in files and os.path.basename(d) == "bin"]
        check(len(found) == 1, "one gangway installed in a bin/ directory", found)
        gw = found[0]
        check(os.access(gw, os.X_OK), "it is executable", gw)
        share = os.path.join(os.path.dirname(os.path.dirname(gw)), "share", "gangway")
        for rel in ("sql/0001_baseline.sql", "sql/0005_run_justification.sql",
                    "sql/functions/gw_submit_run.sql", "schemas/openapi.json",
                    "examples/actions", "examples/policy.json"):
            check(os.path.exists(os.path.join(share, rel)), "installed: share/gangway/" + rel)

        env = {"PATH": "/usr/bin:/bin", "HOME": dest, "XDG_CONFIG_HOME": os.path.join(dest, "xdg")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        p = subprocess.run([gw, "--help"], capture_output=True, text=True, env=env, cwd=dest,
                           timeout=60)
        names = [l.split()[0] for l in p.stdout.splitlines() if l.startswith("  ")]
        check(p.returncode == 0 and all(n in names for n in (
            "run", "rerun", "runs", "logs", "cancel", "approvals", "approve", "reject",
            "resources", "migrate", "broker", "worker")),
              "the installed gangway --help lists every command", p.returncode, p.stdout, p.stderr)
        p = subprocess.run([gw, "resources", "--help"], capture_output=True, text=True, env=env,
                           cwd=dest, timeout=60)
        check(p.returncode == 0 and "--expiring-within" in p.stdout, "resources --help", p.stdout)

        Stack._psql(pg_admin, "CREATE DATABASE %s" % db)
        dsn = dsn_with_db(pg_admin, db)
        p = subprocess.run([gw, "migrate", "--pg", dsn], capture_output=True, text=True, env=env,
                           cwd=dest, timeout=120)
        check(p.returncode == 0, "the installed gangway migrates from its installed sql/",
              p.stdout, p.stderr)
        versions = Stack._psql(dsn, "SELECT string_agg(version::text, ',' ORDER BY version)"
                                    " FROM gw_schema_migrations").split(",")
        numbered = sorted(int(f[:4]) for f in os.listdir(os.path.join(SRC, "sql"))
                          if f.endswith(".sql") and f[:4].isdigit())
        check([int(v) for v in versions] == numbered, "every numbered migration is applied",
              versions, numbered)
        nfun = int(Stack._psql(dsn, "SELECT count(*) FROM gw_schema_functions"))
        want = len([f for f in os.listdir(os.path.join(SRC, "sql", "functions"))
                    if f.endswith(".sql")])
        check(nfun == want, "and every function file", nfun, want)
        col = Stack._psql(dsn, "SELECT count(*) FROM information_schema.columns WHERE"
                               " table_name = 'gw_runs' AND column_name = 'justification'")
        check(col == "1", "the installed 0005 added gw_runs.justification", col)
    finally:
        try:
            Stack._psql(pg_admin, "DROP DATABASE IF EXISTS %s" % db)
        finally:
            shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    main(test)
