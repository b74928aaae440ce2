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

static void join(json_t *arr, const char *prefix, char *out, size_t cap)
{
    size_t i, off = strlen(out);
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        int n = snprintf(out + off, cap - off, "%s%s %s", off ? ", " : "", prefix,
                         json_string_value(v));
        if (n < 0 || (size_t)n >= cap - off)
            return;
        off += (size_t)n;
    }
}

/* "2026-11-25T10:00:01.123456Z" -> "... (in 59m)" / "(expired)". */
static void expiry(const char *at, char *out, size_t cap)
{
    struct tm tm = {0};
    char rel[32] = "";
    if (sscanf(at, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) == 6) {
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        long left = (long)difftime(timegm(&tm), time(NULL));
        if (left <= 0)
            snprintf(rel, sizeof(rel), " (expired)");
        else if (left < 5400)
            snprintf(rel, sizeof(rel), " (in %ldm)", (left + 59) / 60);
        else if (left < 172800)
            snprintf(rel, sizeof(rel), " (in %ldh%02ldm)", left / 3600, left % 3600 / 60);
        else
            snprintf(rel, sizeof(rel), " (in %ldd)", left / 86400);
    }
    snprintf(out, cap, "%.19s%s%s", at, at[0] ? "Z" : "", rel);
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
                             " those required, from which teams or\nroles, when the"
                             " request expires, the inputs and, for plan-first actions,"
                             " the plan.",
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
    json_t *items = json_object_get(list, "items");
    bool plans = false;
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) plans = plans || json_object_get(r, "plan") != NULL;
    struct gw_table t = {
        .ncols = plans ? 8 : 7,
        .head = {"RUN", "ACTION", "REQUESTER", "APPROVED", "FROM", "EXPIRES", "INPUTS", "PLAN"}};
    json_array_foreach(items, i, r)
    {
        json_t *ap = json_object_get(r, "approval");
        char approved[300], from[256] = "", expires[64], inputs[CELL_MAX + 8], plan[CELL_MAX + 24];
        tally(r, approved, sizeof(approved));
        join(json_object_get(ap, "from_teams"), "team", from, sizeof(from));
        join(json_object_get(ap, "from_roles"), "role", from, sizeof(from));
        if (from[0] == '\0')
            snprintf(from, sizeof(from), "anyone who may decide");
        expiry(gw_client_str(ap, "expires_at"), expires, sizeof(expires));
        compact(json_object_get(r, "inputs"), inputs, sizeof(inputs));
        plan_cell(r, plan, sizeof(plan));
        const char *row[] = {gw_client_str(r, "id"),
                             gw_client_str(json_object_get(r, "action"), "id"),
                             gw_client_str(json_object_get(r, "requested_by"), "subject"),
                             approved,
                             from,
                             expires,
                             inputs,
                             plan};
        gw_table_add(&t, row);
    }
    if (t.nrows == 0)
        printf("nothing waits for your decision\n");
    else
        gw_table_print(&t);
    json_decref(list);
    return GW_EXIT_OK;
}

/* approve and reject: the same call, a comment required for a rejection. */
static int decide(int argc, char **argv, const char *decision)
{
    bool reject = strcmp(decision, "reject") == 0;
    const char *U = reject ? "reject RUN -m COMMENT [--json]" : "approve RUN [-m COMMENT] [--json]";
    const char *cmd = reject ? "reject" : "approve";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL, *comment = NULL;
    json_t *run = NULL;
    char code[64] = "";
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"message", GW_OPT_STRING, &comment, 'm'},
        {0},
    };
    int rc = gw_client_parse(cmd, U,
                             reject ? "Rejects a run waiting for approval; the comment"
                                      " says why and is recorded\nin the audit log."
                                    : "Approves a run waiting for approval (the comment,"
                                      " if any, is recorded in the\naudit log). The run"
                                      " is queued once enough approvers said yes.",
                             specs, argc, argv, "run");

    if (rc != GW_OPT_OK)
        return rc;
    if (reject && (comment == NULL || strspn(comment, " \t\r\n") == strlen(comment)))
        return gw_client_usage(cmd, U, "a rejection needs a comment saying why (-m)", NULL);
    if (comment != NULL && strlen(comment) > COMMENT_MAX)
        return gw_client_usage(cmd, U, "the comment is longer than 2000 characters", NULL);
    gw_client_init(&c, url, token);

    char *id = gw_client_escape(argv[optind]);
    char path[512];
    snprintf(path, sizeof(path), "/v1/runs/%s/decisions", id != NULL ? id : "");
    free(id);
    json_t *req = json_pack("{s:s}", "decision", decision);
    if (comment != NULL)
        json_object_set_new(req, "comment", json_string(comment));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rc = gw_client_call(&c, "POST", path, body, &run, code, sizeof(code));
    free(body);
    if (rc != GW_EXIT_OK) {
        /* A decision refused for this run is not an authentication problem:
         * the caller is who it says, the rule says no. */
        if (strcmp(code, "self_approval") == 0 || strcmp(code, "not_an_approver") == 0)
            rc = GW_EXIT_FAILED;
        return rc;
    }
    if (c.json) {
        gw_client_print_json(run);
    } else {
        const char *status = gw_client_str(run, "status");
        char approved[300];
        tally(run, approved, sizeof(approved));
        if (strcmp(status, "pending_approval") == 0)
            printf("run %s: %s recorded; still pending approval (%s)\n", gw_client_str(run, "id"),
                   decision, approved);
        else
            printf("run %s %s (%s)\n", gw_client_str(run, "id"), status, approved);
    }
    json_decref(run);
    return GW_EXIT_OK;
}

int gw_cmd_approve(int argc, char **argv)
{
    return decide(argc, argv, "approve");
}

int gw_cmd_reject(int argc, char **argv)
{
    return decide(argc, argv, "reject");
}
