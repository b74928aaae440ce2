"""A local stand-in for a Git hosting service, for the git backend's tests.

Answers like Gitea's API (POST /api/v1/repos/{owner}/{repo}/pulls -> 201
{"html_url"}; a second request for the same head -> 409; GET .../pulls?state=open
-> the list) and like a smart-HTTP Git server that rejects every credential
(GET /auth/repo.git/info/refs -> 401 with WWW-Authenticate: Basic).

It checks what a real server checks: the method, the path, the
Authorization header ("token <TOKEN>") and the JSON body; anything else gets
the status the real API gives (401, 404, 422). Every request is appended as
one JSON line to the log file named on the command line. Prints the port on
stdout, then serves until killed.

usage: hosting_server.py <token> <log file>
"""
import http.server
import json
import sys

TOKEN, LOG = sys.argv[1], sys.argv[2]
PULLS = {}  # head -> pull


def record(handler, body):
    with open(LOG, "a") as f:
        f.write(json.dumps({"method": handler.command, "path": handler.path,
                            "authorization": handler.headers.get("Authorization"),
                            "content_type": handler.headers.get("Content-Type"),
                            "body": body}) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, doc, headers=()):
        data = json.dumps(doc).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        record(self, None)
        if self.path.startswith("/auth/"):
            return self.reply(401, {"message": "Unauthorized"},
                              [("WWW-Authenticate", 'Basic realm="git"')])
        if self.headers.get("Authorization") != "token " + TOKEN:
            return self.reply(401, {"message": "token is required"})
        if self.path.startswith("/api/v1/repos/platform/config/pulls?"):
            return self.reply(200, list(PULLS.values()))
        return self.reply(404, {"message": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        record(self, body)
        if self.headers.get("Authorization") != "token " + TOKEN:
            return self.reply(401, {"message": "token is required"})
        if self.path != "/api/v1/repos/platform/config/pulls":
            return self.reply(404, {"message": "not found"})
        if (self.headers.get("Content-Type") != "application/json" or not isinstance(body, dict)
                or not all(isinstance(body.get(k), str) and body[k] for k in ("title", "head", "base"))):
            return self.reply(422, {"message": "bad request body"})
        if body["head"] in PULLS:
            return self.reply(409, {"message": "pull request already exists for these targets"})
        number = len(PULLS) + 1
        pull = {"number": number, "html_url": "http://hosting.test/platform/config/pulls/%d" % number,
                "head": {"ref": body["head"]}, "base": {"ref": body["base"]}, "title": body["title"]}
        PULLS[body["head"]] = pull
        return self.reply(201, pull)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
sys.stdout.write("%d\n" % server.server_address[1])
sys.stdout.flush()
server.serve_forever()
