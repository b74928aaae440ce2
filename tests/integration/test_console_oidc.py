"""OIDC sign-in to the console (issue 13, docs/console.md "Sign-in") against
a stand-in identity provider written here: discovery document, JWKS,
an authorization endpoint that redirects back with a code, and a token
endpoint that checks the client secret and the PKCE verifier against the
S256 challenge. The broker is the confidential client; the session it makes
is the one a pasted token makes. Keys are made with the openssl CLI
(test_jwt.EcKey)."""

import base64
import hashlib
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main  # noqa: E402
from test_jwt import EcKey  # noqa: E402

CLIENT_ID = "gangway-console"
CLIENT_SECRET = "s3cret-" + secrets.token_hex(8)


class Idp:
    """The stand-in provider. `user` is who signs in at the authorization
    endpoint; `bad_nonce` makes the next ID token carry another nonce."""

    def __init__(self, key):
        self.key = key
        self.codes = {}
        self.user = {"sub": "mia", "groups": ["payments"]}
        self.bad_nonce = False
        self.pkce_ok = 0
        self.refusals = []
        self.authorize_params = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def reply(self, status, doc=None, headers=None):
                body = json.dumps(doc).encode() if doc is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path == "/.well-known/openid-configuration":
                    self.reply(200, {"issuer": outer.issuer,
                                     "authorization_endpoint": outer.issuer + "/authorize",
                                     "token_endpoint": outer.issuer + "/token",
                                     "jwks_uri": outer.issuer + "/jwks",
                                     "code_challenge_methods_supported": ["S256"]})
                elif u.path == "/jwks":
                    self.reply(200, {"keys": [outer.key.jwk]})
                elif u.path == "/authorize":
                    q = dict(urllib.parse.parse_qsl(u.query))
                    outer.authorize_params = q
                    code = secrets.token_urlsafe(16)
                    outer.codes[code] = {"challenge": q.get("code_challenge"), "nonce": q.get("nonce"),
                                         "redirect_uri": q.get("redirect_uri"), "user": dict(outer.user),
                                         "used": False}
                    self.reply(302, headers={"Location": q["redirect_uri"] + "?" + urllib.parse.urlencode(
                        {"code": code, "state": q["state"]})})
                else:
                    self.reply(404, {"error": "not_found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
                auth = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(("%s:%s" % (CLIENT_ID, CLIENT_SECRET)).encode()).decode()
                c = outer.codes.get(form.get("code"))
                why = None
                if auth != expected:
                    why = "invalid_client"
                elif form.get("grant_type") != "authorization_code" or c is None or c["used"]:
                    why = "invalid_grant"
                elif form.get("redirect_uri") != c["redirect_uri"]:
                    why = "invalid_grant: redirect_uri"
                elif base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest()) \
                        .rstrip(b"=").decode() != c["challenge"]:
                    why = "invalid_grant: PKCE verifier does not match the challenge"
                if why:
                    outer.refusals.append(why)
                    self.reply(400, {"error": why.split(":")[0], "error_description": why})
                    return
                c["used"] = True
                outer.pkce_ok += 1
                now = int(time.time())
                claims = dict(c["user"], iss=outer.issuer, aud=CLIENT_ID, iat=now, exp=now + 300,
                              nonce="not-yours" if outer.bad_nonce else c["nonce"])
                outer.bad_nonce = False
                self.reply(200, {"access_token": "at-" + secrets.token_hex(8), "token_type": "Bearer",
                                 "id_token": outer.key.sign({"alg": "ES256", "typ": "JWT"}, claims)})

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = "http://127.0.0.1:%d" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def no_redirect_get(url):
    """GET without following redirects: (status, headers, body)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def sign_in(s, idp, return_to="/ui/"):
    """The browser's part: broker login -> provider -> broker callback."""
    providers = s.get("/v1/auth/providers", auth=False).json()
    r = s.get(providers[0]["login_url"] + "&return_to=" + urllib.parse.quote(return_to, safe=""), auth=False)
    check(r.status == 302, "login redirects to the provider", r.status, r.body)
    loc = r.headers["location"]
    check(loc.startswith(idp.issuer + "/authorize?"), "... to its authorization endpoint", loc)
    status, headers, _ = no_redirect_get(loc)
    check(status == 302, "the provider sends the browser back", status)
    back = headers["Location"]
    check(back.startswith(s.url + "/auth/oidc/callback?"), "to the derived redirect URI", back)
    return s.get(back[len(s.url):], auth=False), back[len(s.url):]


def test():
    import tempfile
    keydir = tempfile.mkdtemp(prefix="gw-oidc-keys-")
    idp = Idp(EcKey(keydir, "idp-1"))
    s = Stack("console_oidc")
    try:
        with s:
            config = {"issuers": [{
                "name": "test-idp", "display_name": "Test IdP", "issuer": idp.issuer,
                "client_id": CLIENT_ID, "client_secret_env": "TEST_OIDC_SECRET",
                "scopes": ["profile", "email"], "algorithms": ["ES256"],
                "teams_claim": "groups"}]}
            path = os.path.join(s.tmp, "auth.json")
            with open(path, "w") as f:
                json.dump(config, f)
            check(CLIENT_SECRET not in open(path).read(), "the secret is not in the file")
            s.broker_args += ["--auth-config", path, "--public-url", s.url]
            s.start_broker({"TEST_OIDC_SECRET": CLIENT_SECRET})

            r = s.get("/v1/auth/providers", auth=False)
            check(r.status == 200 and r.json() == [{"id": "test-idp", "name": "Test IdP",
                                                    "login_url": "/auth/oidc/login?provider=test-idp",
                                                    "kind": "oidc"}], "the providers list", r.status, r.body)

            # The full flow: PKCE S256, state, nonce; the session; back to return_to.
            r, callback = sign_in(s, idp, "/ui/runs/42?tab=logs")
            q = idp.authorize_params
            check(q["response_type"] == "code" and q["client_id"] == CLIENT_ID and
                  q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43 and
                  q["scope"] == "openid profile email" and len(q["state"]) >= 43 and len(q["nonce"]) >= 43 and
                  q["redirect_uri"] == s.url + "/auth/oidc/callback", "the authorization request", q)
            check(r.status == 302 and r.headers.get("location") == "/ui/runs/42?tab=logs",
                  "the callback signs in and goes back to return_to", r.status, r.headers, r.body)
            check(idp.pkce_ok == 1, "the provider checked the verifier against the challenge", idp.refusals)
            check(r.headers.get("content-security-policy", "").startswith("default-src 'self'"), "CSP on it")
            sc = r.headers["set-cookie"]
            check(sc.startswith("gw_session=") and "HttpOnly" in sc and "SameSite=Strict" in sc, "cookie", sc)
            cookie = sc.split(";")[0].split("=", 1)[1]
            sess = s.request("GET", "/v1/session", auth=False, headers={"Cookie": "gw_session=" + cookie})
            check(sess.status == 200, "the OIDC session works", sess.status, sess.body)
            doc = sess.json()
            check(doc["subject"].endswith("mia") and doc["teams"] == ["payments"] and doc["method"] == "session",
                  "the identity from the ID token", doc)
            check(s.sql("SELECT method || ' ' || issuer FROM gw_sessions") == "oidc test-idp",
                  "stored as an oidc session of test-idp")
            # A state works once.
            r = s.get(callback, auth=False)
            check(r.status == 400 and r.json()["code"] == "login_state_invalid", "a replayed callback is refused",
                  r.status, r.body)
            # The state was single use and is gone from the table.
            check(s.sql("SELECT count(*) FROM gw_login_flows") == "0", "no flow left behind")
            # With the session: a CSRF-less POST is refused, with CSRF it is not a CSRF failure.
            r = s.request("POST", "/v1/actions/echo/runs", body={"inputs": {"message": "hi"}}, auth=False,
                          headers={"Cookie": "gw_session=" + cookie})
            check(r.status == 403 and r.json()["code"] == "csrf_failed", "CSRF-less POST refused", r.status)
            r = s.request("POST", "/v1/actions/echo/runs", body={"inputs": {"message": "hi"}}, auth=False,
                          headers={"Cookie": "gw_session=" + cookie, "X-CSRF-Token": doc["csrf_token"]})
            check(r.status == 202, "POST with CSRF accepted", r.status, r.body)

            # An ID token whose nonce is not this sign-in's: refused, no session.
            idp.bad_nonce = True
            r, _ = sign_in(s, idp)
            check(r.status == 401 and r.json()["code"] == "oidc_failed" and "nonce" in r.json()["detail"]
                  and "set-cookie" not in r.headers, "a foreign nonce is refused", r.status, r.body)
            # A subject the canonical form refuses (a space): no session.
            idp.user = {"sub": "mia smith", "groups": []}
            r, _ = sign_in(s, idp)
            check(r.status == 401 and "set-cookie" not in r.headers, "an unusable subject is refused",
                  r.status, r.body)
            idp.user = {"sub": "mia", "groups": ["payments"]}
            # The provider says no (error=access_denied): refused, the state is spent.
            providers = s.get("/v1/auth/providers", auth=False).json()
            r = s.get(providers[0]["login_url"], auth=False)
            state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["location"]).query))["state"]
            r = s.get("/auth/oidc/callback?error=access_denied&state=" + state, auth=False)
            check(r.status == 401 and r.json()["code"] == "oidc_failed", "access_denied refused", r.status, r.body)
            r = s.get("/auth/oidc/callback?code=x&state=" + state, auth=False)
            check(r.status == 400, "... and its state cannot be used after", r.status)
            # A made-up state / missing parameters.
            r = s.get("/auth/oidc/callback?code=x&state=" + secrets.token_urlsafe(32), auth=False)
            check(r.status == 400 and r.json()["code"] == "login_state_invalid", "unknown state", r.status, r.body)
            r = s.get("/auth/oidc/callback?code=x", auth=False)
            check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/state", "missing state", r.body)
            # return_to must stay on this site.
            for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "ui"):
                r = s.get("/auth/oidc/login?provider=test-idp&return_to=" + urllib.parse.quote(bad, safe=""),
                          auth=False)
                check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/return_to",
                      "return_to %r refused" % bad, r.status, r.body)
            r = s.get("/auth/oidc/login?provider=nope", auth=False)
            check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/provider", "unknown provider",
                  r.status, r.body)
            # The stand-in really checks PKCE: a wrong verifier is refused.
            code = secrets.token_urlsafe(8)
            idp.codes[code] = {"challenge": "A" * 43, "nonce": "n", "redirect_uri": "x", "user": {}, "used": False}
            req = urllib.request.Request(idp.issuer + "/token", data=urllib.parse.urlencode(
                {"grant_type": "authorization_code", "code": code, "redirect_uri": "x",
                 "code_verifier": "wrong"}).encode(), headers={"Authorization": "Basic " + base64.b64encode(
                     ("%s:%s" % (CLIENT_ID, CLIENT_SECRET)).encode()).decode()})
            try:
                urllib.request.urlopen(req, timeout=10)
                check(False, "the stand-in refuses a wrong verifier")
            except urllib.error.HTTPError as e:
                check(e.code == 400 and "PKCE" in json.loads(e.read())["error_description"],
                      "the stand-in refuses a wrong verifier", e.code)
            # An ID token is not a bearer token (the entry is not "direct").
            now = int(time.time())
            tok = idp.key.sign({"alg": "ES256", "typ": "JWT"}, {"iss": idp.issuer, "aud": CLIENT_ID, "sub": "mia",
                                                                "iat": now, "exp": now + 300})
            r = s.get("/v1/me", token=tok)
            check(r.status == 401, "an ID token is not accepted as a bearer token", r.status, r.body)

            # Misconfiguration is refused at start with a clear message.
            s.stop(s.broker)
            s.broker_args.remove("--public-url")
            s.broker_args.remove(s.url)
            try:
                s.start_broker({"TEST_OIDC_SECRET": CLIENT_SECRET})
                check(False, "a broker without a redirect URI does not start")
            except AssertionError as e:
                check("redirect_uri" in str(e) and "--public-url" in str(e), "no redirect URI: says so", str(e)[-400:])
            s.broker_args += ["--public-url", s.url]
            try:
                s.start_broker({})
                check(False, "a broker without the client secret does not start")
            except AssertionError as e:
                check("TEST_OIDC_SECRET" in str(e) and "not set" in str(e), "no secret: says which variable",
                      str(e)[-400:])
            s.broker = None
    finally:
        idp.close()


if __name__ == "__main__":
    main(test)
