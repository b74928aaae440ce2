/*
 * `gangway approvals`, `gangway approve RUN`, `gangway reject RUN -m TEXT`
 * (docs/cli.md): the runs the caller may decide (GET /v1/approvals) and a
 * decision on one (POST /v1/runs/{id}/decisions).
 *
 * Exit codes: 0 ok; 1 the decision was refused (self-approval, not one of
 * the rule's approvers, already decided, not pending) or the run does not
 * exist; 2 usage (a rejection without a comment); 3 server unreachable;
 * 4 authentication refused, or no permission to decide on this action.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "commands.h"
#include "http_client.h"

#define CELL_MAX    60
#define COMMENT_MAX 2000

/* A JSON value on one line, cut to CELL_MAX characters. */
static void compact(json_t *v, char *out, size_t cap)
{
    char *s = json_is_string(v) ? strdup(json_string_value(v))
                                : json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    const char *text = s != NULL ? s : "";
    size_t n = strlen(text);
    if (n > CELL_MAX && cap > CELL_MAX + 4)
        snprintf(out, cap, "%.*s...", CELL_MAX - 3, text);
    else
        snprintf(out, cap, "%s", text);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    free(s);
}

/* The TTL the run asked for, or its action's default ("5d (default)"),
 * "-" for an action that creates nothing with a lifetime. Actions are read
 * once each (GET /v1/actions/{id}) into `cache`. */
static void ttl_cell(const struct gw_client *c, json_t *run, json_t *cache, char *out, size_t cap)
{
    json_t *ttl = json_object_get(run, "ttl_seconds");
    const char *action = gw_client_str(json_object_get(run, "action"), "id");
    char d[32];

    if (json_is_integer(ttl)) {
        gw_client_duration_str((long long)json_integer_value(ttl), d, sizeof(d));
        snprintf(out, cap, "%s", d);
        return;
    }
    json_t *a = json_object_get(cache, action);
    if (a == NULL) {
        char url[2048];
        char *e = gw_client_escape(action), *body = NULL;
        snprintf(url, sizeof(url), "%s/v1/actions/%s", c->url, e ? e : "");
        free(e);
        /* Quietly: an action this broker no longer has (or an error) only
         * means there is no default to show. */
        int status = gw_http_call("GET", url, c->token[0] ? c->token : NULL, NULL, 10000, &body);
        a = status == 200 && body != NULL ? json_loads(body, 0, NULL) : NULL;
        free(body);
        json_object_set_new(cache, action, a != NULL ? a : json_object());
        a = json_object_get(cache, action);
    }
    json_t *def = json_object_get(json_object_get(a, "ttl"), "default_seconds");
    if (!json_is_integer(def)) {
        snprintf(out, cap, "-");
        return;
    }
    gw_client_duration_str((long long)json_integer_value(def), d, sizeof(d));
    snprintf(out, cap, "%s (default)", d);
}

/* "1/2 carol" — approvals that count (for the current plan, when there is
 * one) over the required number, who gave them, and any rejections. */
static void tally(json_t *run, char *out, size_t cap)
{
    json_t *ap = json_object_get(run, "approval");
    const char *plan = json_string_value(json_object_get(json_object_get(run, "plan"), "sha256"));
    size_t i, yes = 0, off;
    json_t *d;
    char who[256] = "";

    json_array_foreach(json_object_get(ap, "decisions"), i, d)
    {
        const char *bound = json_string_value(json_object_get(d, "plan_sha256"));
        bool approve = strcmp(gw_client_str(d, "decision"), "approve") == 0;
        if (approve && plan != NULL && (bound == NULL || strcmp(bound, plan) != 0))
            continue; /* given for another plan: it does not count */
        yes += approve;
        off = strlen(who);
        snprintf(who + off, sizeof(who) - off, "%s%s%s", off ? "," : "",
                 gw_client_str(d, "approver"), approve ? "" : "(rejected)");
    }
    snprintf(out, cap, "%zu/%lld%s%s", yes,
             (long long)json_integer_value(json_object_get(ap, "required")), who[0] ? " " : "",
             who);
}

static void plan_cell(json_t *run, char *out, size_t cap)
{
    json_t *plan = json_object_get(run, "plan");
    char summary[CELL_MAX + 8];
    out[0] = '\0';
    if (plan == NULL)
        return;
    compact(json_object_get(plan, "summary"), summary, sizeof(summary));
    snprintf(out, cap, "%.12s: %s", gw_client_str(plan, "sha256"), summary);
}

/* "passed", or "FAILED, acknowledge: rule address; ..." for a plan that
 * failed its compliance checks (docs/plan-checks.md). */
static void checks_cell(json_t *run, char *out, size_t cap)
{
    json_t *pc = json_object_get(run, "plan_checks"), *f;
    size_t i, len;
    out[0] = '\0';
    if (pc == NULL)
        return;
    if (json_is_true(json_object_get(pc, "passed"))) {
        snprintf(out, cap, "passed");
        return;
    }
    len = (size_t)snprintf(out, cap, "FAILED, acknowledge:");
    json_array_foreach(json_object_get(pc, "findings"), i, f)
    {
        if (len >= cap)
            break;
        len += (size_t)snprintf(out + len, cap - len, "%s %s %s", i ? ";" : "",
                                gw_client_str(f, "rule"), gw_client_str(f, "address"));
    }
}

int gw_cmd_approvals(int argc, char **argv)
{
    const char *U = "approvals [--json] [--url URL] [--token TOKEN]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL;
    const struct gw_opt_spec specs[] = {GW_CLIENT_OPTS(&c, &url, &token), {0}};
    json_t *list = NULL;
    int rc = gw_client_parse("approvals", U,
                             "Lists the runs waiting for a decision you may give"
                             " (oldest first):\nwho asked, the approvals so far over"
                             " those required, how many more are needed\nfrom which teams"
                             " or roles, the TTL asked for, when the request expires, the\n"
                             "inputs, the requester's justification and, for plan-first"
                             " actions, the plan.",
                             specs, argc, argv, NULL);

    if (rc != GW_OPT_OK)
        return rc;
    gw_client_init(&c, url, token);
    rc = gw_client_call(&c, "GET", "/v1/approvals", NULL, &list, NULL, 0);
    if (rc != GW_EXIT_OK)
        return rc;
    if (c.json) {
        gw_client_print_json(list);
        json_decref(list);
        return GW_EXIT_OK;
    }
    json_t *items = json_object_get(list, "items"), *actions = json_object();
    bool plans = false, whys = false, checks = false;
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r)
    {
        plans = plans || json_object_get(r, "plan") != NULL;
        checks = checks || json_object_get(r, "plan_checks") != NULL;
        whys = whys || json_object_get(r, "justification") != NULL;
    }
    struct gw_table t = {
        .ncols = 8,
        .head = {"RUN", "ACTION", "REQUESTER", "APPROVED", "NEEDS", "TTL", "EXPIRES", "INPUTS"}};
    if (whys)
        t.head[t.ncols++] = "JUSTIFICATION";
    if (plans)
        t.head[t.ncols++] = "PLAN";
    if (checks)
        t.head[t.ncols++] = "CHECKS";
    json_array_foreach(items, i, r)
    {
        json_t *ap = json_object_get(r, "approval");
        char approved[300], needs[300], ttl[48], expires[64], inputs[CELL_MAX + 8],
            why[CELL_MAX + 8] = "", plan[CELL_MAX + 24], chk[CELL_MAX + 24];
        tally(r, approved, sizeof(approved));
        gw_client_waiting_for(r, needs, sizeof(needs));
        ttl_cell(&c, r, actions, ttl, sizeof(ttl));
        gw_client_expiry(gw_client_str(ap, "expires_at"), expires, sizeof(expires));
        compact(json_object_get(r, "inputs"), inputs, sizeof(inputs));
        if (json_object_get(r, "justification") != NULL)
            compact(json_object_get(r, "justification"), why, sizeof(why));
        plan_cell(r, plan, sizeof(plan));
        checks_cell(r, chk, sizeof(chk));
        const char *row[GW_TABLE_MAX_COLS] = {
            gw_client_str(r, "id"),
            gw_client_str(json_object_get(r, "action"), "id"),
            gw_client_str(json_object_get(r, "requested_by"), "subject"),
            approved,
            needs,
            ttl,
            expires,
            inputs};
        size_t n = 8;
        if (whys)
            row[n++] = why;
        if (plans)
            row[n++] = plan;
        if (checks)
            row[n++] = chk;
        gw_table_add(&t, row);
    }
    json_decref(actions);
    if (t.nrows == 0)
        printf("nothing waits for your decision\n");
    else
        gw_table_print(&t);
    json_decref(list);
    return GW_EXIT_OK;
}

/* One decision on one run; prints its result (a JSON line with --json
 * when there are several). Returns the exit code for this run. */
static int decide_one(struct gw_client *c, const char *run_id, const char *decision,
                      const char *comment, bool ack, bool several)
{
    json_t *run = NULL;
    char code[64] = "", path[512];
    char *id = gw_client_escape(run_id);
    snprintf(path, sizeof(path), "/v1/runs/%s/decisions", id != NULL ? id : "");
    free(id);
    json_t *req = json_pack("{s:s}", "decision", decision);
    if (comment != NULL)
        json_object_set_new(req, "comment", json_string(comment));
    if (ack)
        json_object_set_new(req, "acknowledge_findings", json_true());
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (several)
        snprintf(c->about, sizeof(c->about), "run %s", run_id);
    int rc = gw_client_call(c, "POST", path, body, &run, code, sizeof(code));
    free(body);
    if (rc != GW_EXIT_OK) {
        /* A decision refused for this run is not an authentication problem:
         * the caller is who it says, the rule says no. */
        if (strcmp(code, "self_approval") == 0 || strcmp(code, "not_an_approver") == 0)
            rc = GW_EXIT_FAILED;
        if (several && c->json) {
            json_t *e = json_pack("{s:s, s:s, s:i}", "id", run_id, "error",
                                  code[0] ? code : "request_failed", "exit", rc);
            char *line = e ? json_dumps(e, JSON_COMPACT) : NULL;
            printf("%s\n", line ? line : "");
            free(line);
            json_decref(e);
        }
        return rc;
    }
    if (c->json && several) {
        char *line = json_dumps(run, JSON_COMPACT);
        printf("%s\n", line ? line : "");
        free(line);
    } else if (c->json) {
        gw_client_print_json(run);
    } else {
        const char *status = gw_client_str(run, "status");
        char approved[300], needs[300];
        tally(run, approved, sizeof(approved));
        if (strcmp(status, "pending_approval") == 0) {
            gw_client_waiting_for(run, needs, sizeof(needs));
            printf("run %s: %s recorded; still pending approval (%s): %s\n",
                   gw_client_str(run, "id"), decision, approved, needs);
        } else {
            printf("run %s %s (%s)\n", gw_client_str(run, "id"), status, approved);
        }
    }
    fflush(stdout);
    json_decref(run);
    return GW_EXIT_OK;
}

/* approve and reject: the same call for each run named, a comment required
 * for a rejection. Every run is tried; the exit code is that of the first
 * run refused (0 when none was). */
static int decide(int argc, char **argv, const char *decision)
{
    bool reject = strcmp(decision, "reject") == 0;
    const char *U = reject ? "reject RUN... -m COMMENT [--json]"
                           : "approve RUN... [-m COMMENT] [--acknowledge-findings] [--json]";
    const char *cmd = reject ? "reject" : "approve";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL, *comment = NULL;
    bool ack = false;
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"message", GW_OPT_STRING, &comment, 'm'},
        {"acknowledge-findings", GW_OPT_BOOL, &ack, 'A'},
        {0},
    };
    int rc = gw_client_parse_many(
        cmd, U,
        reject ? "Rejects runs waiting for approval; the comment says why and is recorded\n"
                 "in the audit log. Each run is decided on its own; exit 1 if any was refused."
               : "Approves runs waiting for approval (the comment, if any, is recorded in the\n"
                 "audit log). A run is queued once enough approvers said yes. Each run is\n"
                 "decided on its own; exit 1 if any was refused. A plan that failed its\n"
                 "compliance checks (CHECKS in `gangway approvals`) is approved only with\n"
                 "--acknowledge-findings, which the audit log records with the findings.",
        specs, argc, argv, "run");

    if (rc != GW_OPT_OK)
        return rc;
    if (reject && (comment == NULL || strspn(comment, " \t\r\n") == strlen(comment)))
        return gw_client_usage(cmd, U, "a rejection needs a comment saying why (-m)", NULL);
    if (comment != NULL && strlen(comment) > COMMENT_MAX)
        return gw_client_usage(cmd, U, "the comment is longer than 2000 characters", NULL);
    gw_client_init(&c, url, token);

    bool several = argc - optind > 1;
    int first = GW_EXIT_OK, failed = 0, n = argc - optind;
    for (int i = optind; i < argc; i++) {
        int r = decide_one(&c, argv[i], decision, comment, ack && !reject, several);
        if (r != GW_EXIT_OK) {
            failed++;
            if (first == GW_EXIT_OK)
                first = r;
        }
    }
    if (several && !c.json)
        printf("%d of %d %s%s; %d refused\n", n - failed, n, reject ? "rejection" : "approval",
               n - failed == 1 ? "" : "s", failed);
    return first;
}

int gw_cmd_approve(int argc, char **argv)
{
    return decide(argc, argv, "approve");
}

int gw_cmd_reject(int argc, char **argv)
{
    return decide(argc, argv, "reject");
}
