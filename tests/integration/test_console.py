"""The broker side of the web console (issue 13, docs/console.md): static
files with the SPA fallback, security headers and no way out of the
directory; sessions made from a pasted token (cookie, CSRF, logout, absolute
expiry, idle timeout, a revoked token ending its sessions); the same
authorization with the cookie as with the token (another team's run is 404);
GET /v1/dashboard numbers against runs made here; the dev-mode login link."""

import hashlib
import json
import os
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, write_action  # noqa: E402

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def cookie_of(resp):
    """The gw_session value a response sets, and its attributes."""
    sc = resp.headers.get("set-cookie", "")
    check(sc.startswith("gw_session="), "a gw_session cookie is set", resp.status, resp.headers, resp.body)
    value = sc.split(";", 1)[0].split("=", 1)[1]
    attrs = [a.strip() for a in sc.split(";")[1:]]
    return value, attrs


def with_cookie(s, method, path, cookie, body=None, csrf=None, headers=None):
    h = {"Cookie": "theme=dark; gw_session=" + cookie}
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    h.update(headers or {})
    return s.request(method, path, body=body, auth=False, headers=h)


def sign_in(s, token):
    r = s.post("/v1/session", {"token": token}, auth=False)
    check(r.status == 201, "POST /v1/session with a token: 201", r.status, r.body)
    cookie, attrs = cookie_of(r)
    return cookie, attrs, r.json()


def static_files(s, web):
    # GET / leads to the console.
    r = s.get("/", auth=False)
    check(r.status == 302 and r.headers.get("location") == "/ui/", "GET / redirects to /ui/", r.status, r.headers)
    r = s.get("/ui/", auth=False)
    check(r.status == 200 and b"console-index" in r.body, "GET /ui/ is index.html", r.status, r.body[:200])
    check(r.headers.get("content-security-policy") == CSP, "the CSP of the contract", r.headers)
    check("unsafe-inline" not in r.headers["content-security-policy"].split("script-src")[1].split(";")[0],
          "no unsafe-inline for scripts")
    check(r.headers.get("x-frame-options") == "DENY", "X-Frame-Options: DENY", r.headers)
    check(r.headers.get("x-content-type-options") == "nosniff", "nosniff", r.headers)
    check(r.headers.get("referrer-policy") == "same-origin", "Referrer-Policy", r.headers)
    check(r.headers.get("cache-control") == "no-cache", "index.html is not cached", r.headers)
    check(r.headers.get("content-type", "").startswith("text/html"), "index.html is HTML", r.headers)
    # A deep link is the application (client-side routing).
    r = s.get("/ui/runs/0b7a3c1e-0000-4000-8000-000000000000", auth=False)
    check(r.status == 200 and b"console-index" in r.body, "SPA fallback for /ui/runs/{id}", r.status, r.body[:200])
    # A hashed asset: long cache, its own type.
    r = s.get("/ui/assets/app-1234abcd.js", auth=False)
    check(r.status == 200 and r.body == b"console.log('app');\n", "asset served", r.status, r.body)
    check("immutable" in r.headers.get("cache-control", "") and "max-age=31536000" in r.headers["cache-control"],
          "assets cached for a year", r.headers)
    check(r.headers.get("content-type", "").startswith("text/javascript"), "JS content type", r.headers)
    # A missing asset is 404, never the index as a script.
    r = s.get("/ui/assets/missing-0000.js", auth=False)
    check(r.status == 404 and b"console-index" not in r.body, "a missing asset is 404", r.status, r.body)
    # Traversal: raw, encoded, double-encoded, backslashes, hidden files, a symlink out.
    for path in ["/ui/../../../../etc/passwd", "/ui/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 "/ui/assets/..%2f..%2f..%2fsecret.txt", "/ui/..%5c..%5csecret.txt",
                 "/ui/%2e%2e%2fsecret.txt", "/ui/./index.html", "/ui/.hidden",
                 "/ui/assets/%252e%252e/secret.txt", "/ui/escape/secret.txt", "/ui/escape-file"]:
        r = s.get(path, auth=False)
        check(b"TOP-SECRET" not in r.body and b"root:" not in r.body,
              "no file outside the console directory: " + path, r.status, r.body[:200])
        check(r.status in (400, 404) or b"console-index" in r.body,
              "a traversal attempt is refused or gets the index: " + path, r.status, r.body[:200])
    # Only GET.
    r = s.request("POST", "/ui/index.html", body={}, auth=False)
    check(r.status == 405, "POST to a console file: 405", r.status)


def sessions(s, bob, carol):
    # Token login; the cookie's attributes.
    cookie, attrs, doc = sign_in(s, bob)
    check("HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs,
          "HttpOnly, SameSite=Strict, Path=/", attrs)
    check("Secure" not in attrs, "not Secure over plain http without a trusted proxy", attrs)
    check(len(cookie) >= 43, "256-bit session id", cookie)
    r = s.post("/v1/session", {"token": bob}, auth=False, headers={"X-Forwarded-Proto": "https"})
    check(r.status == 201 and "Secure" not in cookie_of(r)[1], "X-Forwarded-Proto is ignored unless trusted",
          r.headers)
    check(doc["subject"].endswith("bob") and doc["teams"] == ["payments"] and doc["csrf_token"]
          and doc["expires_at"], "the session document", doc)
    # Only the hash is stored.
    stored = s.sql("SELECT id_hash FROM gw_sessions WHERE subject = '%s'" % doc["subject"])
    check(hashlib.sha256(cookie.encode()).hexdigest() in stored.split("\n"), "PostgreSQL holds only the hash",
          stored)
    check(cookie not in s.sql("SELECT string_agg(gw_sessions::text, ' ') FROM gw_sessions"),
          "the id itself is nowhere in the table")
    csrf = doc["csrf_token"]

    # The cookie works like the token: /v1/me, /v1/session, reads.
    r = with_cookie(s, "GET", "/v1/me", cookie)
    check(r.status == 200 and r.json()["subject"] == doc["subject"], "/v1/me with the cookie", r.status, r.body)
    r = with_cookie(s, "GET", "/v1/session", cookie)
    check(r.status == 200 and r.json()["csrf_token"] == csrf, "GET /v1/session", r.status, r.body)
    r = s.get("/v1/session", auth=False)
    check(r.status == 401 and r.json()["code"] == "unauthenticated", "GET /v1/session without cookie: 401",
          r.status, r.body)

    # POST with the cookie: without X-CSRF-Token refused, wrong one refused, right one works.
    r = with_cookie(s, "POST", "/v1/actions/ok/runs", cookie, body={"inputs": {}})
    check(r.status == 403 and r.json()["code"] == "csrf_failed", "CSRF-less POST refused", r.status, r.body)
    # Its last character changed (to one it is not: a token ending in "x"
    # made "+ x" the right token, 1 run in 64, CI of this stop).
    wrong = csrf[:-1] + ("y" if csrf.endswith("x") else "x")
    r = with_cookie(s, "POST", "/v1/actions/ok/runs", cookie, body={"inputs": {}}, csrf=wrong)
    check(r.status == 403 and r.json()["code"] == "csrf_failed", "wrong CSRF token refused", r.status, r.body)
    check(s.sql("SELECT count(*) FROM gw_runs") == "0", "no run was created by refused requests")
    r = with_cookie(s, "POST", "/v1/actions/ok/runs", cookie, body={"inputs": {}}, csrf=csrf)
    check(r.status == 202, "POST with the session's CSRF token", r.status, r.body)
    bob_run = r.json()["id"]
    check(s.sql("SELECT requested_by FROM gw_runs WHERE id = '%s'" % bob_run) == doc["subject"],
          "the run is bob's")

    # Another team's run id: 404 with the cookie, exactly as with the token.
    carol_cookie, _, carol_doc = sign_in(s, carol)
    r = with_cookie(s, "GET", "/v1/runs/" + bob_run, carol_cookie)
    check(r.status == 404 and r.json()["code"] == "run_not_found", "another team's run is 404", r.status, r.body)
    r = s.get("/v1/runs/" + bob_run, token=carol)
    check(r.status == 404, "... the same as with carol's token", r.status)
    r = with_cookie(s, "POST", "/v1/runs/%s/cancel" % bob_run, carol_cookie, body={},
                    csrf=carol_doc["csrf_token"])
    check(r.status == 404, "carol cannot cancel it either", r.status, r.body)

    # POST /v1/session needs JSON (a cross-site form cannot send it) and a valid token.
    r = s.request("POST", "/v1/session", raw="token=" + bob, auth=False,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 415, "a form post cannot make a session", r.status, r.body)
    r = s.post("/v1/session", {"token": "gwt_not-a-token"}, auth=False)
    check(r.status == 401 and "set-cookie" not in r.headers, "an unknown token makes no session", r.status)
    r = s.post("/v1/session", {"token": bob, "extra": 1}, auth=False)
    check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/extra", "unknown field named", r.body)
    r = s.post("/v1/session", {}, auth=False)
    check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/token", "missing token named", r.body)
    r = s.post("/v1/session", {"token": s.worker_token}, auth=False)
    check(r.status == 403, "a worker token cannot sign in", r.status, r.body)

    # Bearer wins when both are sent: a bad bearer with a good cookie is 401.
    r = s.request("GET", "/v1/me", auth=False,
                  headers={"Authorization": "Bearer gwt_nope", "Cookie": "gw_session=" + cookie})
    check(r.status == 401, "the Authorization header, when present, decides", r.status)
    # A made-up cookie is 401.
    r = with_cookie(s, "GET", "/v1/me", secrets.token_urlsafe(32))
    check(r.status == 401, "an unknown session id is 401", r.status)

    # Logout needs CSRF, revokes, clears the cookie.
    r = with_cookie(s, "DELETE", "/v1/session", cookie)
    check(r.status == 403 and r.json()["code"] == "csrf_failed", "logout without CSRF refused", r.status)
    r = with_cookie(s, "DELETE", "/v1/session", cookie, csrf=csrf)
    check(r.status == 204 and "Max-Age=0" in r.headers.get("set-cookie", ""), "logout: 204, cookie cleared",
          r.status, r.headers)
    r = with_cookie(s, "GET", "/v1/me", cookie)
    check(r.status == 401, "the session is gone after logout", r.status)
    check(s.sql("SELECT revoked_at IS NOT NULL FROM gw_sessions WHERE id_hash = '%s'"
                % hashlib.sha256(cookie.encode()).hexdigest()) == "t", "revoked_at recorded")

    # Revoking the API token a session was made from ends the session.
    c2, _, _ = sign_in(s, bob)
    check(with_cookie(s, "GET", "/v1/me", c2).status == 200, "a second session works")
    s.sql("UPDATE gw_api_tokens SET revoked_at = now() WHERE token_hash = '%s'"
          % hashlib.sha256(bob.encode()).hexdigest())
    r = with_cookie(s, "GET", "/v1/me", c2)
    check(r.status == 401, "revoking the token ends its sessions", r.status)
    return bob_run


def expiry(s, dave):
    # Absolute expiry: the broker was started with --session-ttl 60 ... the
    # row's end is moved into the past, as 60 s later would.
    cookie, _, doc = sign_in(s, dave)
    h = hashlib.sha256(cookie.encode()).hexdigest()
    end = s.sql("SELECT extract(epoch FROM expires_at - created_at)::int FROM gw_sessions WHERE id_hash = '%s'" % h)
    check(end == "60", "the session lives --session-ttl seconds", end)
    check(with_cookie(s, "GET", "/v1/me", cookie).status == 200, "fresh session works")
    s.sql("UPDATE gw_sessions SET expires_at = now() - interval '1 second' WHERE id_hash = '%s'" % h)
    r = with_cookie(s, "GET", "/v1/me", cookie)
    check(r.status == 401, "a session past its expiry is refused", r.status, r.body)
    # Sessions over for more than a week go with the next sign-in.
    s.sql("INSERT INTO gw_sessions (id_hash, subject, method, csrf_token, expires_at, idle_seconds, created_at)"
          " VALUES ('old', 'user:default/dave', 'token', 'x', now() - interval '8 days', 60, now() - interval '9 days')")
    sign_in(s, dave)
    check(s.sql("SELECT count(*) FROM gw_sessions WHERE id_hash = 'old'") == "0", "old sessions are cleaned up")
    check(s.sql("SELECT count(*) FROM gw_sessions WHERE id_hash = '%s'" % h) == "1", "recent ones stay")
    # Idle timeout (--session-idle 2): unused for 3 s, refused; a used one lives on.
    c_idle, _, _ = sign_in(s, dave)
    c_busy, _, _ = sign_in(s, dave)
    for _ in range(4):
        time.sleep(0.8)
        check(with_cookie(s, "GET", "/v1/me", c_busy).status == 200, "a session in use stays alive")
    r = with_cookie(s, "GET", "/v1/me", c_idle)
    check(r.status == 401, "an idle session is refused", r.status, r.body)


def dashboard(s, alice, bob, carol, bob_run):
    # bob (payments): ok x2 (one is bob_run), fail x1; carol (sre): ok x1.
    runs = [bob_run]
    for token, action in ((bob, "ok"), (bob, "fail"), (carol, "ok")):
        r = s.post("/v1/actions/%s/runs" % action, {"inputs": {}}, token=token)
        check(r.status == 202, "submit " + action, r.status, r.body)
        runs.append(r.json()["id"])
    for rid in runs:
        s.wait_run(rid)
    r = s.get("/v1/dashboard", token=bob)
    check(r.status == 200, "GET /v1/dashboard", r.status, r.body)
    d = r.json()
    check(d["days"] == 14, "default 14 days", d)
    per = {(x["status"], x["count"]) for x in d["runs_per_day"]}
    check(per == {("succeeded", 2), ("failed", 1)}, "bob sees his team's runs per day", d["runs_per_day"])
    fr = {x["action"]: x for x in d["failure_rate"]}
    check(fr["fail"]["total"] == 1 and fr["fail"]["failed"] == 1 and fr["fail"]["rate"] == 1,
          "failure rate of fail", fr)
    check(fr["ok"]["total"] == 2 and fr["ok"]["failed"] == 0 and fr["ok"]["rate"] == 0, "failure rate of ok", fr)
    dp = {x["action"]: x for x in d["duration_percentiles"]}
    check(dp["ok"]["count"] == 2 and dp["ok"]["p50_ms"] >= 0 and dp["ok"]["p99_ms"] >= dp["ok"]["p50_ms"],
          "duration percentiles", dp)
    check(d["queue"]["depth"] == 0 and d["queue"]["oldest_queued_at"] is None, "empty queue", d["queue"])
    check(d["approval_wait"]["count"] == 0, "no approvals yet", d["approval_wait"])
    top = [(x["team"], x["subject"].split("/")[-1], x["count"]) for x in d["top_requesters"]]
    check(top == [("payments", "bob", 3)], "top requesters bob can see", top)
    # The admin sees everyone.
    d = s.get("/v1/dashboard?days=1", token=alice).json()
    total = sum(x["count"] for x in d["runs_per_day"])
    check(total == 4 and d["days"] == 1, "alice (admin) sees all four runs", d)
    top = {(x["team"], x["subject"].split("/")[-1], x["count"]) for x in d["top_requesters"]}
    check(top == {("payments", "bob", 3), ("sre", "carol", 1)}, "top requesters per team", top)
    # A queued run (no worker for its type) is in the queue.
    r = s.post("/v1/actions/nobody/runs", {"inputs": {}}, token=bob)
    check(r.status == 202, "submit a run nobody takes", r.status, r.body)
    deadline = time.time() + 20
    while time.time() < deadline and s.get("/v1/runs/" + r.json()["id"], token=bob).json()["status"] != "queued":
        time.sleep(0.1)
    d = s.get("/v1/dashboard", token=bob).json()
    check(d["queue"]["depth"] == 1 and d["queue"]["oldest_queued_at"], "queue depth 1", d["queue"])
    d = s.get("/v1/dashboard", token=carol).json()
    check(d["queue"]["depth"] == 0, "carol does not see bob's queued run", d["queue"])
    # Bad parameters are named.
    for q in ("days=0", "days=91", "days=x"):
        r = s.get("/v1/dashboard?" + q, token=bob)
        check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/days", "bad " + q, r.status, r.body)
    r = s.get("/v1/dashboard", auth=False)
    check(r.status == 401, "the dashboard needs a caller", r.status)


def dev_login(s, alice):
    # Not in dev mode: the endpoint does not exist.
    r = s.get("/auth/dev-login?code=whatever", auth=False)
    check(r.status == 404, "no dev login without --dev-login", r.status, r.body)


def dev_login_on(s, alice):
    code = secrets.token_urlsafe(24)
    s.sql("SELECT gw_login_code_create('%s', '%s', 600)"
          % (hashlib.sha256(code.encode()).hexdigest(), hashlib.sha256(alice.encode()).hexdigest()))
    r = s.get("/auth/dev-login?code=" + code, auth=False)
    check(r.status == 302 and r.headers.get("location") == "/ui/", "dev login redirects to the console",
          r.status, r.body)
    cookie, attrs = cookie_of(r)
    me = with_cookie(s, "GET", "/v1/session", cookie)
    check(me.status == 200 and me.json()["subject"].endswith("alice") and "admin" in me.json()["roles"],
          "the dev session is the dev admin", me.status, me.body)
    r = s.get("/auth/dev-login?code=" + code, auth=False)
    check(r.status == 401 and r.json()["code"] == "login_code_invalid" and "set-cookie" not in r.headers,
          "a login link works once", r.status, r.body)
    old = secrets.token_urlsafe(24)
    s.sql("SELECT gw_login_code_create('%s', '%s', 1)"
          % (hashlib.sha256(old.encode()).hexdigest(), hashlib.sha256(alice.encode()).hexdigest()))
    time.sleep(1.5)
    r = s.get("/auth/dev-login?code=" + old, auth=False)
    check(r.status == 401, "an expired login link is refused", r.status, r.body)


def test():
    s = Stack("console", broker_args=["--session-ttl", "60", "--session-idle", "2"])
    with s:
        actions = os.path.join(s.tmp, "actions")
        write_action(actions, "ok", ["/bin/cat"], timeout_seconds=30)
        write_action(actions, "fail", ["/bin/false"], timeout_seconds=30)
        d = dict(json.load(open(os.path.join(actions, "ok.json"))), id="nobody", worker_type="nobody")
        json.dump(d, open(os.path.join(actions, "nobody.json"), "w"))
        s.actions_dir = actions
        web = os.path.join(s.tmp, "web")
        os.makedirs(os.path.join(web, "assets"))
        with open(os.path.join(web, "index.html"), "w") as f:
            f.write("<!doctype html><title>console-index</title><script type=module src=/ui/assets/app-1234abcd.js></script>")
        with open(os.path.join(web, "assets", "app-1234abcd.js"), "w") as f:
            f.write("console.log('app');\n")
        with open(os.path.join(web, ".hidden"), "w") as f:
            f.write("TOP-SECRET hidden\n")
        with open(os.path.join(s.tmp, "secret.txt"), "w") as f:
            f.write("TOP-SECRET\n")
        os.symlink(s.tmp, os.path.join(web, "escape"))
        os.symlink(os.path.join(s.tmp, "secret.txt"), os.path.join(web, "escape-file"))
        s.broker_args += ["--web-dir", web]
        bob, carol, dave = s.make_tokens("bob:payments", "carol:sre", "dave:payments")
        s.start_broker()
        s.start_worker()
        static_files(s, web)
        bob_run = sessions(s, bob, carol)
        bob = s.make_token("bob", teams=["payments"])  # the old one was revoked
        expiry(s, dave)
        dashboard(s, s.token, bob, carol, bob_run)
        dev_login(s, s.token)
        # The same broker in dev mode.
        s.stop(s.broker)
        s.broker_args.append("--dev-login")
        s.start_broker()
        dev_login_on(s, s.token)
        # Without a console directory: a page saying how to build it.
        s.stop(s.broker)
        s.broker_args[s.broker_args.index("--web-dir") + 1] = os.path.join(s.tmp, "nothing")
        s.broker_args += ["--trust-proxy", "yes"]
        s.start_broker()
        # Behind a TLS-terminating proxy that says so, the cookie is Secure.
        r = s.post("/v1/session", {"token": dave}, auth=False, headers={"X-Forwarded-Proto": "https"})
        check(r.status == 201 and "Secure" in cookie_of(r)[1], "Secure behind a trusted https proxy",
              r.status, r.headers)
        r = s.post("/v1/session", {"token": dave}, auth=False)
        check(r.status == 201 and "Secure" not in cookie_of(r)[1], "not Secure without the header", r.headers)
        r = s.get("/ui/runs/x", auth=False)
        check(r.status == 404 and b"npm ci && npm run build" in r.body, "the not-built page", r.status, r.body)
        check(r.headers.get("content-security-policy") == CSP, "CSP on it too", r.headers)


if __name__ == "__main__":
    main(test)
