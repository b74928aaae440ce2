#!/usr/bin/env python3
"""The portal's path end to end: submit -> PostgreSQL -> Kafka -> exec worker
-> events -> status, plus every way a request can be refused."""
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Stack, check, main, wait_for  # noqa: E402


def test():
    s = Stack("api")
    with s:
        s.start_broker()
        s.start_worker(concurrency=2)

        # The catalog, ready for a portal form.
        r = s.get("/v1/actions")
        check(r.status == 200, "GET /v1/actions is 200", r.status)
        ids = [a["id"] for a in r.json()["items"]]
        check("echo" in ids and "fail" in ids, "the example actions are listed", ids)
        r = s.get("/v1/actions/echo")
        check(r.status == 200 and r.json()["inputs"]["properties"]["message"]["maxLength"] == 200,
              "GET /v1/actions/echo carries its input schema")

        # Submit -> succeeded, with logs and outputs.
        r = s.submit("echo", {"message": "hello"})
        check(r.status == 202, "submit is 202", r.status, r.body)
        run = r.json()
        check(r.headers.get("location") == "/v1/runs/" + run["id"], "Location names the run",
              r.headers.get("location"))
        check(run["status"] == "queued", "a new run is queued", run["status"])
        created_ms = int(time.time() * 1000)
        id_ms = int(run["id"].replace("-", "")[:12], 16)
        check(run["id"][14] == "7" and run["id"][19] in "89ab" and created_ms - 60000 <= id_ms <= created_ms,
              "a run id is a time-ordered UUID (version 7) of about now", run["id"])
        check(run["inputs"] == {"message": "hello", "shout": False},
              "defaults are filled in before the run is stored", run["inputs"])
        done = s.wait_run(run["id"])
        check(done["status"] == "succeeded", "the echo run succeeds", done)
        check(done["outputs"] == {"message": "hello"}, "outputs come back", done.get("outputs"))
        logs = s.get("/v1/runs/%s/logs" % run["id"]).json()["items"]
        check(any("says: hello" in l["line"] for l in logs), "the program's stdout is in the logs",
              logs)
        events = s.get("/v1/runs/%s/events" % run["id"]).json()["items"]
        check([e["to"] for e in events] == ["accepted", "queued", "running", "succeeded"],
              "every transition is recorded in order", [e["to"] for e in events])
        audit = s.sql("SELECT count(*) FROM gw_audit_log WHERE object = 'run:%s'" % run["id"])
        check(int(audit) == 3, "submit, claim and success are audited", audit)

        # A failing action ends failed with its reason.
        r = s.submit("fail", {"exit_code": 7})
        failed_run = s.wait_run(r.json()["id"])
        check(failed_run["status"] == "failed", "the fail action ends failed", failed_run)
        check("7" in json.dumps(failed_run.get("reason", "")) or failed_run.get("reason"),
              "a failed run says why", failed_run.get("reason"))

        # Bad input: 422 with the field pointer, and nothing stored or sent.
        runs_before = s.sql("SELECT count(*) FROM gw_runs")
        # Not the audit stream's rows: earlier entries are sealed meanwhile.
        outbox_sql = "SELECT count(*) FROM gw_outbox WHERE topic NOT LIKE 'gangway.audit%'"
        outbox_before = s.sql(outbox_sql)
        r = s.submit("echo", {"message": "x" * 201})
        check(r.status == 422, "too long a message is 422", r.status, r.body)
        p = r.json()
        check(r.headers["content-type"].startswith("application/problem+json"),
              "errors are problem+json", r.headers["content-type"])
        check(p["code"] == "validation_failed" and p["status"] == 422, "with a stable code", p)
        check(any(e["pointer"] == "/inputs/message" and e["keyword"] == "maxLength"
                  for e in p["errors"]), "naming the field and the keyword", p["errors"])
        r = s.submit("echo", {})
        check(r.status == 422 and any(e["keyword"] == "required" for e in r.json()["errors"]),
              "a missing required input is 422 'required'", r.body)
        r = s.post("/v1/actions/echo/runs", {"inputs": {"message": "hi"}, "bogus": 1})
        check(r.status == 422 and r.json()["errors"][0]["pointer"] == "/bogus",
              "an unknown body field is refused by name", r.body)
        r = s.request("POST", "/v1/actions/echo/runs", raw="{not json")
        check(r.status == 400 and r.json()["code"] == "invalid_json", "bad JSON is 400", r.body)
        r = s.submit("nope", {"message": "hi"})
        check(r.status == 404 and r.json()["code"] == "action_not_found",
              "an unknown action is 404", r.body)
        r = s.submit("echo", {"message": "hi"}, auth=False)
        check(r.status == 401 and r.json()["code"] == "unauthorized", "no token is 401", r.body)
        r = s.submit("echo", {"message": "hi"}, token="gwt_not-a-real-token")
        check(r.status == 401, "a wrong token is 401", r.status)
        # Announce a 2 MiB body and send none: the limit applies on the header.
        status_line = s.raw_exchange(
            "POST /v1/actions/echo/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (s.token, 2 << 20))
        check(status_line.startswith("HTTP/1.1 413"), "an oversized body is 413", status_line)
        check(s.sql("SELECT count(*) FROM gw_runs") == runs_before,
              "refused requests left no run row")
        check(s.sql(outbox_sql) == outbox_before,
              "refused requests left no outbox row")
        r = s.get("/v1/runs/00000000-0000-0000-0000-000000000000")
        check(r.status == 404 and r.json()["code"] == "run_not_found", "an unknown run is 404")
        r = s.request("DELETE", "/v1/actions")
        check(r.status == 405 and "GET" in r.headers.get("allow", ""), "a wrong method is 405")
        # Any method token on a served path, even one the HTTP parser does
        # not know (QUERY), is 405 problem+json with Allow; elsewhere 404.
        for method, path, allow in [("QUERY", "/v1/runs", "GET"), ("PUT", "/v1/resources/x", "GET, DELETE"),
                                    ("PATCH", "/v1/runs/%s" % run["id"], "GET"),
                                    ("FROBNICATE", "/healthz", "GET")]:
            r = s.request(method, path)
            check(r.status == 405 and r.headers.get("allow") == allow
                  and r.headers["content-type"] == "application/problem+json"
                  and r.json()["code"] == "method_not_allowed",
                  "%s %s is 405 problem+json, Allow: %s" % (method, path, allow), r.status,
                  r.headers, r.body)
        r = s.request("QUERY", "/v1/nothing-here")
        check(r.status == 404 and r.json()["code"] == "not_found", "an unknown method on an unknown path is 404",
              r.status)
        r = s.get("/v1/runs/%FF%FE")
        check(r.status == 404 and r.json()["code"] == "run_not_found",
              "a path that is not UTF-8 still gets a problem body", r.status, r.body)

        # Integer parameters: too big for a bigint, negative, not digits or
        # empty is 400 invalid_parameter naming the parameter, never a 500.
        rid = run["id"]
        bad_values = ["9223372036854775808", "99999999999999999999999999999999999999", "-1", "abc",
                      "", "1.5", "+1", " 1", "0x10", "1e3"]
        int_params = [("/v1/runs/%s/logs" % rid, "after"), ("/v1/runs/%s/logs" % rid, "limit"),
                      ("/v1/runs/%s/logs?follow=true" % rid, "after"),
                      ("/v1/runs/%s/logs?follow=true" % rid, "limit"), ("/v1/runs", "limit"),
                      ("/v1/resources", "limit"), ("/v1/audit", "limit"), ("/v1/events", "after")]
        for path, name in int_params:
            for bad in bad_values:
                url = "%s%s%s=%s" % (path, "&" if "?" in path else "?", name, urllib.parse.quote(bad))
                r = s.get(url)
                check(r.status == 400 and r.json()["code"] == "invalid_parameter"
                      and r.json()["errors"][0]["pointer"] == "/query/" + name
                      and ("'%s'" % name) in r.json()["detail"],
                      "%s is 400 naming '%s'" % (url, name), r.status, r.body)
        # Checked wherever it is sent, even where it is unused (JSON logs).
        for path in ["/v1/runs/%s/logs?follow=true" % rid, "/v1/runs/%s/logs" % rid, "/v1/events"]:
            for bad in ["9223372036854775808", "-1", "x", ""]:
                r = s.get(path, headers={"Last-Event-ID": bad})
                check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/header/Last-Event-ID",
                      "Last-Event-ID %r on %s is 400 naming it" % (bad, path), r.status, r.body)
        # A valid Last-Event-ID wins over `after`, but a bad `after` is not ignored.
        r = s.get("/v1/events?after=-1", headers={"Last-Event-ID": "0"})
        check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/after",
              "a bad 'after' beside a good Last-Event-ID is 400", r.status, r.body)
        for bad in ["limit=0", "limit=10001", "follow=yes", "follow="]:
            r = s.get("/v1/runs/%s/logs?%s" % (rid, bad))
            check(r.status == 400 and r.json()["code"] == "invalid_parameter",
                  "logs?%s is 400" % bad, r.status, r.body)
        for bad in ["limit=0", "limit=501"]:
            r = s.get("/v1/runs?" + bad)
            check(r.status == 400 and r.json()["errors"][0]["keyword"] in ("minimum", "maximum"),
                  "runs?%s is 400 out of range" % bad, r.status, r.body)
        # Times and cursors PostgreSQL cannot read are the caller's mistake too.
        for url in ["/v1/audit?since=99999999-01-01T00:00:00Z", "/v1/audit?until=2026-13-45T99:99:99Z",
                    "/v1/audit?cursor=9999999999999999999", "/v1/audit?cursor=-1",
                    "/v1/runs?cursor=2026-13-45T99:99:99.000000Z~00000000-0000-4000-8000-000000000000",
                    "/v1/resources?expiring_before=0000-00-00T00:00:00Z",
                    "/v1/resources?cursor=2026-02-30T00:00:00.000000Z~00000000-0000-4000-8000-000000000000",
                    ]:
            r = s.get(url)
            check(r.status == 400 and r.json()["code"] in ("invalid_parameter", "invalid_cursor"),
                  "%s is 400" % url, r.status, r.body)
        # A text filter that is not UTF-8 is named before anything is queried.
        for url, name in [("/v1/runs?action=%FF%FE", "action"), ("/v1/audit?actor=%C3%28", "actor"),
                          ("/v1/resources?team=%ED%A0%80", "team"), ("/v1/runs?status=%C0%AF", "status")]:
            r = s.get(url)
            check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/" + name
                  and "UTF-8" in r.json()["detail"], "%s is 400 naming '%s'" % (url, name),
                  r.status, r.body)
        # Text limits count characters, as the document (JSON Schema) does, not bytes.
        r = s.post("/v1/runs/%s/cancel" % rid, {"reason": "ü" * 500})
        check(r.status == 409 and r.json()["code"] == "run_ended",
              "a reason of 500 two-byte characters is within maxLength 500", r.status, r.body)
        r = s.post("/v1/runs/%s/cancel" % rid, {"reason": "ü" * 501})
        check(r.status == 422, "501 characters is not", r.status, r.body)
        r = s.get("/v1/runs/%s/logs?after=9223372036854775807&limit=10000" % rid)
        check(r.status == 200 and r.json()["items"] == [], "the largest bigint is a valid 'after'", r.body)
        r = s.get("/v1/runs/%s/logs?follow=true&after=9223372036854775807" % rid)
        check(r.status == 200 and b"event: end" in r.body and b"event: log" not in r.body,
              "following from the largest position ends at once (the run is over)", r.status, r.body)

        # Idempotency: same key and body -> same run, executed once.
        key = {"Idempotency-Key": "deploy-42"}
        a = s.submit("echo", {"message": "once"}, headers=key)
        b = s.submit("echo", {"message": "once"}, headers=key)
        check(a.status == 202 and b.status == 202, "both submissions are accepted",
              a.status, b.status)
        check(a.json()["id"] == b.json()["id"], "the replay returns the same run")
        check(b.headers.get("idempotent-replayed") == "true", "and says it is a replay")
        c = s.submit("echo", {"message": "different"}, headers=key)
        check(c.status == 409 and c.json()["code"] == "idempotency_key_reused",
              "the same key with another body is 409", c.status, c.body)
        s.wait_run(a.json()["id"])
        n = s.sql("SELECT count(*) FROM gw_runs WHERE idempotency_key = 'deploy-42'")
        check(n == "1", "one run row for the key", n)
        starts = s.sql("SELECT count(*) FROM gw_run_events WHERE run_id = '%s' AND to_status = 'running'"
                       % a.json()["id"])
        check(starts == "1", "the run executed once", starts)

        # Listing with keyset pagination.
        for i in range(5):
            s.submit("echo", {"message": "page %d" % i})
        seen, cursor = [], None
        while True:
            q = "/v1/runs?limit=3&action=echo" + ("&cursor=" + cursor if cursor else "")
            page = s.get(q).json()
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        total = int(s.sql("SELECT count(*) FROM gw_runs WHERE action_id = 'echo'"))
        check(len(seen) == total and len(set(seen)) == total,
              "pages cover every run exactly once", len(seen), total)
        r = s.get("/v1/runs?action=" + "a" * 300)
        check(r.status == 400 and r.json()["code"] == "invalid_parameter",
              "a filter too long to be valid is 400, not silently dropped", r.status)
        r = s.get("/v1/runs?status=bogus")
        check(r.status == 400 and r.json()["errors"][0]["pointer"] == "/query/status",
              "a bad filter is 400 naming the parameter", r.body)

        # Operations endpoints.
        check(s.get("/healthz", auth=False).status == 200, "healthz is 200")
        m = s.get("/metrics", auth=False)
        check(m.status == 200 and b"gangway_runs_submitted_total" in m.body
              and b"gangway_outbox_pending" in m.body, "metrics are exposed")

        # Request durations by route (a histogram): three requests of one
        # route between two scrapes are three more observations in its
        # series, whose buckets are cumulative and end at the count.
        def histo(body, method, route):
            name = b"gangway_http_request_duration_seconds"
            lab = b'method="%s",route="%s"' % (method.encode(), route.encode())
            buckets = [(le, int(n)) for le, n in re.findall(
                rb"^" + name + rb"_bucket\{" + re.escape(lab) + rb',le="([^"]+)"\} ([0-9]+)$', body, re.M)]
            count = re.search(rb"^" + name + rb"_count\{" + re.escape(lab) + rb"\} ([0-9]+)$", body, re.M)
            sm = re.search(rb"^" + name + rb"_sum\{" + re.escape(lab) + rb"\} ([0-9.]+)$", body, re.M)
            return buckets, int(count.group(1)) if count else 0, float(sm.group(1)) if sm else 0.0
        _, n0, _ = histo(m.body, "GET", "/v1/me")
        for _ in range(3):
            check(s.get("/v1/me").status == 200, "GET /v1/me answers")
        m2 = s.get("/metrics", auth=False).body
        b1, n1, sum1 = histo(m2, "GET", "/v1/me")
        check(n1 == n0 + 3, "three requests of a route are three more in its duration histogram", n0, n1)
        check(len(b1) == 16 and b1[-1] == (b"+Inf", n1)
              and all(b1[i][1] <= b1[i + 1][1] for i in range(len(b1) - 1)) and sum1 > 0,
              "its buckets are cumulative, +Inf equals the count, the sum is positive", b1, sum1)
        _, nsub, _ = histo(m2, "POST", "/v1/actions/*/runs")
        check(nsub >= total, "the submissions of this test are in the submit route's series", nsub, total)
        # The gauges' refresh (broker.c): the next one waits 100 times what
        # the last took in PostgreSQL, on a 5 s tick; a small database
        # answers in milliseconds.
        age = re.search(rb"^gangway_stats_age_seconds ([0-9.]+)$", m.body, re.M)
        took = re.search(rb"^gangway_stats_query_seconds ([0-9.]+)$", m.body, re.M)
        check(age is not None and took is not None and float(took.group(1)) < 0.5
              and float(age.group(1)) <= 5 * (1 + int(float(took.group(1)) * 100 / 5)) + 1.5,
              "the gauges' age and refresh time are exposed, the age within the refresh's wait",
              age and age.group(0), took and took.group(0))

        # A refresh cut short (57014: statement_timeout, here a cancel) backs
        # off by its round trip like a slow success, instead of counting
        # again on the next 5 s tick. A lock on gw_resources holds the
        # refresh; it is cancelled after 1.5 s, so the next one waits ~150 s.
        def gauge_age():
            b = s.get("/metrics", auth=False).body
            return float(re.search(rb"^gangway_stats_age_seconds ([0-9.]+)$", b, re.M).group(1))

        waiting = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()" \
                  " AND wait_event_type = 'Lock' AND query LIKE '%(SELECT count(*) FROM gw_outbox)%'"
        with s.lock_table("gw_resources", "ACCESS EXCLUSIVE"):
            pid = wait_for("the gauges' refresh waiting on the lock", lambda: s.sql(waiting), timeout=20)
            time.sleep(1.5)
            check(s.sql("SELECT pg_cancel_backend(%s)" % pid) == "t", "the refresh is cancelled (57014)")
        a0 = gauge_age()
        time.sleep(8)
        a1 = gauge_age()
        check(a1 >= a0 + 7, "after a cancelled refresh the gauges are not counted again on the next "
              "tick (their age keeps growing)", a0, a1)


if __name__ == "__main__":
    main(test)
