"""JWT bearer authentication end to end: a broker started with an auth
configuration (docs/auth-backstage.md) accepts Backstage-shaped user tokens
(ES256, JWKS from a file) and plugin tokens on a user's behalf (JWKS from a
URL, refreshed on an unknown kid), refuses forged ones with precise 401
details, and keeps accepting API tokens.

Keys are made and tokens signed with the `openssl` command-line tool (Debian
package `openssl`); no Python crypto library is needed."""

import base64
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main  # noqa: E402

ISS = "http://backstage.test:7007/api/auth"


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class EcKey:
    """A P-256 key in a PEM file, used through the openssl CLI."""

    def __init__(self, directory, kid):
        self.kid = kid
        self.pem = tempfile.mkstemp(suffix=".pem", dir=directory)[1]
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", self.pem], check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", self.pem, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        point = der[-65:]  # SubjectPublicKeyInfo ends with the uncompressed point 04||x||y
        assert point[0] == 4
        self.jwk = {"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                    "x": b64(point[1:33]), "y": b64(point[33:])}

    def sign(self, header, claims, der=False):
        h = dict(header)
        h.setdefault("kid", self.kid)
        signing_input = b64(json.dumps(h)) + "." + b64(json.dumps(claims))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.pem],
                             input=signing_input.encode(), check=True, capture_output=True).stdout
        if not der:
            sig = der_to_raw(sig)
        return signing_input + "." + b64(sig)


def der_to_raw(der):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> JOSE r||s, 32 bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


class JwksServer:
    """Serves a JWKS over HTTP on 127.0.0.1; `down` makes it answer 503."""

    def __init__(self, keys):
        self.keys = keys
        self.down = False
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [k.jwk for k in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/api/scaffolder/.backstage/auth/v1/jwks.json" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test():
    tmp = tempfile.mkdtemp(prefix="gw-jwt-keys-")
    auth_key = EcKey(tmp, "auth-1")
    rogue = EcKey(tmp, "auth-1")  # same kid, not in any set
    plugin_key = EcKey(tmp, "scaffolder-1")
    plugin_key2 = EcKey(tmp, "scaffolder-2")
    with open(os.path.join(tmp, "auth-jwks.json"), "w") as f:
        json.dump({"keys": [auth_key.jwk]}, f)
    jwks = JwksServer([plugin_key])
    config = {
        "leeway_s": 30,
        "issuers": [
            {"name": "backstage", "issuer": ISS, "audience": "backstage",
             "jwks_file": "auth-jwks.json", "algorithms": ["ES256"], "typ": "vnd.backstage.user",
             "subject_claim": "sub", "subject_prefix_strip": "user:default/",
             "teams_claim": "ent", "teams_entity_kind": "group",
             "teams_from": {"user:default/bob": ["platform"]}},
            {"name": "backstage-obo", "direct": False, "jwks_file": "auth-jwks.json",
             "algorithms": ["ES256"], "typ": ["vnd.backstage.limited-user", "vnd.backstage.user"],
             "subject_prefix_strip": "user:default/",
             "teams_from": {"user:default/alice": ["payments"]}},
            {"name": "backstage-plugins", "audience": "gangway", "jwks_url": jwks.url,
             "jwks_min_refresh_s": 1, "algorithms": ["ES256"], "typ": "vnd.backstage.plugin",
             "allowed_subjects": ["scaffolder"], "obo_issuer": "backstage-obo"},
        ],
    }
    config_path = os.path.join(tmp, "auth.json")
    with open(config_path, "w") as f:
        json.dump(config, f)

    stack = Stack("jwt", broker_args=["--auth-config", config_path])
    failed = True
    try:
        stack.start_broker()
        now = int(time.time())

        def user(sub="user:default/alice", key=auth_key, typ="vnd.backstage.user", **over):
            claims = {"iss": ISS, "aud": "backstage", "sub": sub, "iat": now, "exp": now + 3600,
                      "ent": [sub, "group:default/payments"]}
            claims.update(over)
            claims = {k: v for k, v in claims.items() if v is not None}
            return key.sign({"typ": typ, "alg": "ES256"}, claims)

        def me(token):
            return stack.get("/v1/me", token=token)

        def refused(token, detail, what):
            r = me(token)
            body = r.json() if r.body else {}
            check(r.status == 401 and detail in body.get("detail", ""),
                  "%s -> 401 %r" % (what, detail), r.status, r.body[:300])
            check(r.headers.get("content-type", "").startswith("application/problem+json"),
                  "%s: problem+json" % what)

        r = me(user())
        check(r.status == 200, "Backstage user token accepted by GET /v1/me", r.status, r.body[:300])
        body = r.json()
        # Canonical subject (docs/policy.md#subjects), although the issuer
        # still sets the deprecated subject_prefix_strip.
        check(body.get("subject") == "user:default/alice" and "payments" in json.dumps(body.get("teams")),
              "principal is user:default/alice of team payments", body)
        r = me(user(sub="user:default/bob", ent=None))
        check(r.status == 200 and r.json().get("subject") == "user:default/bob" and
              "platform" in json.dumps(r.json().get("teams")),
              "no ent claim: teams from teams_from", r.body[:300])

        refused(user(exp=now - 120, iat=now - 3720), "token expired", "expired token")
        refused(user(nbf=now + 600), "token not yet valid", "nbf in the future")
        refused(user(aud="other"), "audience mismatch", "wrong audience")
        refused(user(iss="http://evil.test/api/auth"), "issuer mismatch", "wrong issuer")
        refused(user(typ="JWT"), "token type mismatch", "wrong typ")
        refused(user(key=rogue), "signature invalid", "signed by a key outside the set")
        refused(auth_key.sign({"typ": "vnd.backstage.user", "alg": "ES256", "kid": "nope"},
                              {"iss": ISS, "aud": "backstage", "sub": "user:default/alice",
                               "exp": now + 60}), "unknown key id", "kid not in the set")
        refused(b64('{"alg":"none","typ":"vnd.backstage.user"}') + "." +
                b64(json.dumps({"iss": ISS, "aud": "backstage", "sub": "user:default/admin",
                                "exp": now + 60})) + ".", "algorithm not allowed", "alg none")
        refused(auth_key.sign({"typ": "vnd.backstage.user", "alg": "ES256"},
                              {"iss": ISS, "aud": "backstage", "sub": "user:default/alice",
                               "exp": now + 60}, der=True), "signature invalid", "DER signature")
        refused(auth_key.sign({"typ": "vnd.backstage.user", "alg": "ES256",
                               "jku": "http://evil.test/jwks"},
                              {"iss": ISS, "aud": "backstage", "sub": "user:default/alice",
                               "exp": now + 60}), "jku", "jku header")
        good = user()
        refused(good + "==", "malformed", "padded signature")

        # Plugin token on behalf of a user: both verified, principal = user.
        limited = auth_key.sign({"typ": "vnd.backstage.limited-user", "alg": "ES256"},
                                {"sub": "user:default/alice", "iat": now, "exp": now + 3600})

        def plugin(key=plugin_key, obo=limited, **over):
            claims = {"sub": "scaffolder", "aud": "gangway", "iat": now, "exp": now + 600, "obo": obo}
            claims.update(over)
            claims = {k: v for k, v in claims.items() if v is not None}
            return key.sign({"typ": "vnd.backstage.plugin", "alg": "ES256"}, claims)

        r = me(plugin())
        check(r.status == 200 and r.json().get("subject") == "user:default/alice",
              "plugin token on behalf of alice (JWKS from URL)", r.status, r.body[:300])
        bad_obo = rogue.sign({"typ": "vnd.backstage.limited-user", "alg": "ES256"},
                             {"sub": "user:default/admin", "iat": now, "exp": now + 3600})
        refused(plugin(obo=bad_obo), "on-behalf-of token: signature invalid", "obo forged")
        refused(plugin(obo=None), "on-behalf-of token missing", "obo missing")
        refused(plugin(aud="catalog"), "audience mismatch", "plugin token for another plugin")
        refused(plugin(sub="catalog"), "subject not allowed", "plugin not allowed")
        refused(limited, "no configured issuer", "limited user token alone")

        # Key rotation: a token with a new kid makes the broker refetch once.
        hits = jwks.hits
        jwks.keys = [plugin_key, plugin_key2]
        time.sleep(1.2)  # jwks_min_refresh_s
        r = me(plugin(key=plugin_key2))
        check(r.status == 200 and jwks.hits == hits + 1,
              "rotated plugin key: unknown kid triggers one refresh", r.status, jwks.hits - hits)
        # Rate limit: a burst of unknown kids fetches at most once more.
        hits = jwks.hits
        for _ in range(5):
            refused(plugin_key.sign({"typ": "vnd.backstage.plugin", "alg": "ES256", "kid": "k9"},
                                    {"sub": "scaffolder", "aud": "gangway", "exp": now + 60,
                                     "obo": limited}), "unknown key id", "unknown plugin kid")
        check(jwks.hits - hits <= 1, "unknown kids are rate-limited", jwks.hits - hits)
        # Provider outage: a failed refresh keeps the old set.
        jwks.down = True
        time.sleep(1.2)
        refused(plugin_key.sign({"typ": "vnd.backstage.plugin", "alg": "ES256", "kid": "k10"},
                                {"sub": "scaffolder", "aud": "gangway", "exp": now + 60,
                                 "obo": limited}), "unknown key id", "kid miss while JWKS is down")
        r = me(plugin(key=plugin_key2))
        check(r.status == 200, "old key set kept after a failed fetch", r.status, r.body[:200])

        # API tokens unchanged.
        r = stack.get("/v1/me")
        check(r.status == 200 and r.json().get("subject") == "user:default/alice",
              "API token still works (created as 'alice', seen canonical)",
              r.status)
        r = stack.get("/v1/me", token="gwt_" + "A" * 43)
        check(r.status == 401, "unknown API token -> 401", r.status)
        failed = False
    finally:
        jwks.close()
        stack.close(failed=failed)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(test)
