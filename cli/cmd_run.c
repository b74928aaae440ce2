/*
 * `gangway run ACTION` and `gangway rerun RUN` (docs/cli.md): one request
 * to POST /v1/actions/{id}/runs with the inputs, the TTL and the
 * justification, then, with --wait, the run followed to its end, saying
 * whom it waits for while it waits for approval.
 *
 * Exit codes: 0 ok (with --wait: the run succeeded); 1 the run did not
 * succeed, or the run to rerun does not exist; 2 usage (bad flags, a TTL
 * that is not a duration, inputs or a justification the broker refuses,
 * secret inputs of a rerun not given again); 3 unreachable; 4 auth.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "commands.h"
#include "gw/jsonptr.h"

#define POLL_MIN_MS 250
#define POLL_MAX_MS 2000

/* -i key=value (JSON numbers, true, false, null; a string otherwise) or
 * -i key:=JSON. Returns 0, -1 for a malformed argument, -2 after printing
 * why the raw JSON is not JSON. */
static int add_input(const char *cmd, json_t *inputs, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg)
        return -1;
    bool raw = eq[-1] == ':';
    size_t klen = (size_t)(eq - arg) - (raw ? 1 : 0);
    if (klen == 0)
        return -1;
    char *key = strndup(arg, klen);
    const char *text = eq + 1;
    json_t *v = NULL;
    if (raw) {
        json_error_t jerr;
        v = json_loads(text, JSON_DECODE_ANY, &jerr);
        if (v == NULL) {
            fprintf(stderr, "gangway %s: -i %s:=: not JSON: %s\n", cmd, key, jerr.text);
            free(key);
            return -2;
        }
    } else {
        v = json_loads(text, JSON_DECODE_ANY, NULL);
        if (v != NULL && !json_is_number(v) && !json_is_boolean(v) && !json_is_null(v)) {
            json_decref(v);
            v = NULL;
        }
        if (v == NULL)
            v = json_string(text);
    }
    json_object_set_new(inputs, key, v);
    free(key);
    return v != NULL ? 0 : -2;
}

static void print_run_end(json_t *run)
{
    printf("run %s %s", gw_client_str(run, "id"), gw_client_str(run, "status"));
    if (json_object_get(run, "reason") != NULL)
        printf(" (%s)", gw_client_str(run, "reason"));
    putchar('\n');
    const char *why = json_string_value(json_object_get(json_object_get(run, "error"), "message"));
    if (why != NULL)
        printf("error: %s\n", why);
    const char *detail = json_string_value(json_object_get(run, "cancel_detail"));
    if (detail != NULL)
        printf("detail: %s\n", detail);
    /* A workflow (docs/workflows.md): its step and undo runs. */
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(run, "steps"), i, st)
    {
        printf("  %-6s %-20s %-16s %s\n", gw_client_str(st, "operation"), gw_client_str(st, "id"),
               gw_client_str(st, "status"), gw_client_str(st, "run_id"));
    }
    json_t *comp = json_object_get(run, "compensated");
    if (comp != NULL)
        printf("compensated: %s\n", json_is_true(comp) ? "yes" : "no");
    json_t *outputs = json_object_get(run, "outputs");
    if (outputs != NULL && json_object_size(outputs) > 0) {
        char *s = json_dumps(outputs, JSON_COMPACT | JSON_SORT_KEYS);
        printf("outputs: %s\n", s ? s : "");
        free(s);
    }
}

/* What run and rerun share: the flags beside the inputs, and the -i values
 * in their order (applied over -f, whatever the order on the line). */
struct request {
    const char *file, *ttl, *why;
    bool wait;
    const char **ivals;
    size_t n;
};

static int add_ival(const char *value, void *dest)
{
    struct request *rq = dest;
    rq->ivals[rq->n++] = value;
    return GW_OPT_OK;
}

/* The options of a request, for both commands' tables to include
 * (GW_OPT_TABLE), filled in over `rq`. */
#define REQUEST_NOPTS 6
static void request_specs(struct request *rq, struct gw_opt_spec out[REQUEST_NOPTS])
{
    const struct gw_opt_spec specs[REQUEST_NOPTS] = {
        {"input", GW_OPT_CALL, rq, 'i', .call = add_ival},
        {"file", GW_OPT_STRING, &rq->file, 'f'},
        {"ttl", GW_OPT_STRING, &rq->ttl, 't'},
        {"justification", GW_OPT_STRING, &rq->why, 'j'},
        {"wait", GW_OPT_BOOL, &rq->wait, 'w'},
        {0},
    };
    memcpy(out, specs, sizeof(specs));
}

/* Applies -f then the -i values over `inputs`. Returns 0 or an exit code
 * (the error printed). */
static int apply_inputs(const char *cmd, const char *usage, const struct request *rq,
                        json_t *inputs)
{
    if (rq->file != NULL) {
        json_error_t jerr;
        json_t *f = strcmp(rq->file, "-") == 0 ? json_loadf(stdin, 0, &jerr)
                                               : json_load_file(rq->file, 0, &jerr);
        if (!json_is_object(f)) {
            fprintf(stderr, "gangway %s: %s: %s\n", cmd, rq->file,
                    f == NULL ? jerr.text : "must hold a JSON object");
            json_decref(f);
            return GW_EXIT_USAGE;
        }
        json_object_update(inputs, f);
        json_decref(f);
    }
    for (size_t i = 0; i < rq->n; i++) {
        int r = add_input(cmd, inputs, rq->ivals[i]);
        if (r == -1)
            return gw_client_usage(cmd, usage, "-i wants KEY=VALUE or KEY:=JSON, got",
                                   rq->ivals[i]);
        if (r < 0)
            return GW_EXIT_USAGE;
    }
    return 0;
}

/* --ttl as seconds (0: not given). Returns 0 or the usage error's code. */
static int parse_ttl(const char *cmd, const char *usage, const char *ttl, long long *secs)
{
    *secs = 0;
    if (ttl == NULL || gw_client_duration(ttl, secs) == 0)
        return 0;
    fprintf(stderr,
            "gangway %s: --ttl wants a duration: seconds (3600) or a number with s, m, h, d"
            " or w (90m, 8h, 5d, 2w), got '%s'\n",
            cmd, ttl);
    return gw_client_usage(cmd, usage, NULL, NULL);
}

/* Follows the run until it ends, saying whom it waits for while it waits
 * for approval. Takes *run over (replaced as it changes). */
static int wait_for_end(const struct gw_client *c, json_t **run)
{
    char path[256], said[300] = "";
    int delay = POLL_MIN_MS, rc;

    snprintf(path, sizeof(path), "/v1/runs/%s", gw_client_str(*run, "id"));
    for (;;) {
        const char *status = gw_client_str(*run, "status");
        if (gw_client_run_ended(status))
            return GW_EXIT_OK;
        if (!c->json && strcmp(status, "pending_approval") == 0) {
            char needs[300];
            gw_client_waiting_for(*run, needs, sizeof(needs));
            if (strcmp(needs, said) != 0) {
                printf("waiting for approval: %s\n", needs);
                fflush(stdout);
                snprintf(said, sizeof(said), "%s", needs);
            }
        }
        json_t *next = NULL;
        usleep((useconds_t)delay * 1000);
        delay = delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2;
        rc = gw_client_call(c, "GET", path, NULL, &next, NULL, 0);
        if (rc != GW_EXIT_OK)
            return rc;
        if (strcmp(gw_client_str(next, "status"), status) != 0)
            delay = POLL_MIN_MS;
        json_decref(*run);
        *run = next;
    }
}

/* POSTs the request for `action` and reports, waiting when asked. */
static int submit(const struct gw_client *c, const char *action, json_t *inputs, long long ttl,
                  const char *why, bool wait)
{
    char path[1024];
    char *esc = gw_client_escape(action);
    json_t *run = NULL, *req = json_pack("{s:O}", "inputs", inputs);
    int rc;

    snprintf(path, sizeof(path), "/v1/actions/%s/runs", esc ? esc : "");
    free(esc);
    if (ttl > 0)
        json_object_set_new(req, "ttl_seconds", json_integer(ttl));
    if (why != NULL)
        json_object_set_new(req, "justification", json_string(why));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rc = gw_client_call(c, "POST", path, body, &run, NULL, 0);
    free(body);
    if (rc != GW_EXIT_OK)
        return rc;
    if (!wait) {
        if (c->json) {
            gw_client_print_json(run);
        } else {
            char needs[300] = "";
            if (strcmp(gw_client_str(run, "status"), "pending_approval") == 0)
                gw_client_waiting_for(run, needs, sizeof(needs));
            printf("run %s %s%s%s%s\n", gw_client_str(run, "id"), gw_client_str(run, "status"),
                   needs[0] ? " (waiting for approval: " : "", needs, needs[0] ? ")" : "");
        }
        json_decref(run);
        return GW_EXIT_OK;
    }
    if (!c->json)
        printf("run %s %s, waiting...\n", gw_client_str(run, "id"), gw_client_str(run, "status"));
    fflush(stdout);
    rc = wait_for_end(c, &run);
    if (rc == GW_EXIT_OK) {
        if (c->json)
            gw_client_print_json(run);
        else
            print_run_end(run);
        rc = strcmp(gw_client_str(run, "status"), "succeeded") == 0 ? GW_EXIT_OK : GW_EXIT_FAILED;
    }
    json_decref(run);
    return rc;
}

/* ----------------------------------------------------------------- run */

int gw_cmd_run(int argc, char **argv)
{
    const char *U = "run ACTION [-i KEY=VALUE | -i KEY:=JSON]... [-f INPUTS.json] [--ttl DURATION]"
                    " [--justification TEXT] [--wait] [--json]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL;
    struct request rq = {.ivals = calloc((size_t)argc + 1, sizeof(char *))};
    json_t *inputs = json_object();
    long long ttl = 0;
    struct gw_opt_spec req[REQUEST_NOPTS];
    request_specs(&rq, req);
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token), {"", GW_OPT_TABLE, req}, {0}};
    int rc = gw_client_parse("run", U,
                             "Starts a run of ACTION; with --wait, waits for it to end"
                             " (exit 1 unless it succeeded).\n--ttl asks for a lifetime"
                             " (3600, 90m, 8h, 5d, 2w) within the action's bounds;\n"
                             "--justification says why, for the approvers and the audit log.",
                             specs, argc, argv, "action");

    if (rc == GW_OPT_OK && (rc = parse_ttl("run", U, rq.ttl, &ttl)) == 0 &&
        (rc = apply_inputs("run", U, &rq, inputs)) == 0) {
        gw_client_init(&c, url, token);
        rc = submit(&c, argv[optind], inputs, ttl, rq.why, rq.wait);
    }
    free(rq.ivals);
    json_decref(inputs);
    return rc;
}

/* --------------------------------------------------------------- rerun */

/* The pointers of the secret inputs the old run no longer holds and that
 * the new inputs do not give again (those still "[redacted]"), into
 * `names`; `hint` gets "-i password=... -i token=..." for the top-level
 * ones. */
static void missing_secrets(json_t *old, json_t *inputs, char *names, size_t ncap, char *hint,
                            size_t hcap)
{
    size_t i, off = 0, hoff = 0;
    json_t *p;
    names[0] = hint[0] = '\0';
    json_array_foreach(json_object_get(old, "secret_inputs"), i, p)
    {
        const char *ptr = json_string_value(p);
        if (ptr == NULL || ptr[0] != '/')
            continue;
        /* The pointers are relative to the inputs object. */
        json_t *v = gw_jsonptr_get(inputs, ptr);
        if (v != NULL && !(json_is_string(v) && strcmp(json_string_value(v), "[redacted]") == 0))
            continue;
        int n = snprintf(names + off, ncap - off, "%s%s", off ? ", " : "", ptr);
        if (n < 0 || (size_t)n >= ncap - off)
            return;
        off += (size_t)n;
        if (strchr(ptr + 1, '/') == NULL && strchr(ptr, '~') == NULL) {
            n = snprintf(hint + hoff, hcap - hoff, "%s-i %s=...", hoff ? " " : "", ptr + 1);
            if (n > 0 && (size_t)n < hcap - hoff)
                hoff += (size_t)n;
        }
    }
}

int gw_cmd_rerun(int argc, char **argv)
{
    const char *U = "rerun RUN [-i KEY=VALUE | -i KEY:=JSON]... [-f INPUTS.json] [--ttl DURATION]"
                    " [--justification TEXT] [--wait] [--json]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL;
    struct request rq = {.ivals = calloc((size_t)argc + 1, sizeof(char *))};
    json_t *old = NULL, *inputs = NULL;
    long long ttl = 0;
    struct gw_opt_spec req[REQUEST_NOPTS];
    request_specs(&rq, req);
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token), {"", GW_OPT_TABLE, req}, {0}};
    int rc = gw_client_parse("rerun", U,
                             "Starts a new run of RUN's action with RUN's inputs and TTL; -i, -f"
                             " and --ttl change\nthem. Secret inputs are not kept after a run"
                             " ends: give them again with -i\nor -f (the command names them and"
                             " refuses to start without them).\nThe justification is not"
                             " copied: give --justification again if approvers need it.",
                             specs, argc, argv, "run");

    if (rc != GW_OPT_OK)
        goto out;
    if ((rc = parse_ttl("rerun", U, rq.ttl, &ttl)) != 0)
        goto out;
    gw_client_init(&c, url, token);
    char path[512];
    char *id = gw_client_escape(argv[optind]);
    snprintf(path, sizeof(path), "/v1/runs/%s", id ? id : "");
    free(id);
    if ((rc = gw_client_call(&c, "GET", path, NULL, &old, NULL, 0)) != GW_EXIT_OK)
        goto out;
    if (json_is_string(json_object_get(old, "step"))) {
        /* A step (or undo) of a workflow: its inputs are the step's, not
         * the workflow's, and a step runs only inside its workflow
         * (decision 0071). */
        fprintf(stderr,
                "gangway rerun: run %s is step '%s' (%s) of workflow run %s, not a request:"
                " rerun the workflow (`gangway rerun %s`) or, if it failed, resume it"
                " (`gangway resume %s`)\n",
                gw_client_str(old, "id"), gw_client_str(old, "step"),
                gw_client_str(old, "operation"), gw_client_str(old, "parent_run"),
                gw_client_str(old, "parent_run"), gw_client_str(old, "parent_run"));
        rc = GW_EXIT_FAILED;
        goto out;
    }
    if (strcmp(gw_client_str(old, "operation"), "teardown") == 0) {
        fprintf(stderr,
                "gangway rerun: run %s is the teardown of resource %s, not a request: use"
                " `gangway resources delete %s` to tear a resource down again\n",
                gw_client_str(old, "id"), gw_client_str(old, "resource"),
                gw_client_str(old, "resource"));
        rc = GW_EXIT_FAILED;
        goto out;
    }
    if (json_is_string(json_object_get(old, "parent_run"))) {
        /* A reconcile step or a drift check: Gangway starts those from
         * another run; submitting the action with their inputs would be a
         * new request nobody made. */
        fprintf(stderr,
                "gangway rerun: run %s is a %s run Gangway started for run %s, not a request:"
                " rerun that one (`gangway rerun %s`)\n",
                gw_client_str(old, "id"), gw_client_str(old, "operation"),
                gw_client_str(old, "parent_run"), gw_client_str(old, "parent_run"));
        rc = GW_EXIT_FAILED;
        goto out;
    }
    inputs = json_deep_copy(json_object_get(old, "inputs"));
    if (!json_is_object(inputs)) {
        json_decref(inputs);
        inputs = json_object();
    }
    if ((rc = apply_inputs("rerun", U, &rq, inputs)) != 0)
        goto out;
    char missing[1024], hint[1024];
    missing_secrets(old, inputs, missing, sizeof(missing), hint, sizeof(hint));
    if (missing[0] != '\0') {
        fprintf(stderr,
                "gangway rerun: run %s had secret inputs, which are not kept: %s\n"
                "  give them again (%s%s-f FILE); nothing was started\n",
                gw_client_str(old, "id"), missing, hint, hint[0] ? ", or " : "");
        rc = GW_EXIT_USAGE;
        goto out;
    }
    if (ttl == 0 && json_is_integer(json_object_get(old, "ttl_seconds")))
        ttl = (long long)json_integer_value(json_object_get(old, "ttl_seconds"));
    rc = submit(&c, gw_client_str(json_object_get(old, "action"), "id"), inputs, ttl, rq.why,
                rq.wait);
out:
    free(rq.ivals);
    json_decref(old);
    json_decref(inputs);
    return rc;
}

/* -------------------------------------------------------------- resume */

int gw_cmd_resume(int argc, char **argv)
{
    const char *U = "resume RUN [-i KEY=VALUE | -i KEY:=JSON]... [-f SECRETS.json] [--json]";
    struct gw_client c = {0};
    const char *url = NULL, *token = NULL;
    struct request rq = {.ivals = calloc((size_t)argc + 1, sizeof(char *))};
    const struct gw_opt_spec specs[] = {
        GW_CLIENT_OPTS(&c, &url, &token),
        {"input", GW_OPT_CALL, &rq, 'i', .call = add_ival},
        {"file", GW_OPT_STRING, &rq.file, 'f'},
        {0},
    };
    json_t *run = NULL, *secrets = json_object(), *body = NULL;
    int rc = gw_client_parse("resume", U,
                             "Runs a failed or timed-out workflow again from the step that failed;"
                             " the steps\ndone before are not repeated (exit 1 if it cannot be"
                             " resumed). Its secret inputs\nare dropped when it ends: give them"
                             " again with -i or -f (exit 2 names them).",
                             specs, argc, argv, "run");

    if (rc != GW_OPT_OK)
        goto out;
    if ((rc = apply_inputs("resume", U, &rq, secrets)) != 0)
        goto out;
    gw_client_init(&c, url, token);
    char *run_id = gw_client_escape(argv[optind]);
    char path[512];
    snprintf(path, sizeof(path), "/v1/runs/%s/resume", run_id ? run_id : "");
    free(run_id);
    /* Only what was given: the broker checks them against the run's
     * secret inputs and the action's schema (decision 0071). */
    body = json_object_size(secrets) > 0 ? json_pack("{s:O}", "inputs", secrets) : json_object();
    char *doc = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    rc = gw_client_call(&c, "POST", path, doc != NULL ? doc : "{}", &run, NULL, 0);
    free(doc);
    if (rc != GW_EXIT_OK)
        goto out;
    if (c.json)
        gw_client_print_json(run);
    else
        printf("run %s resumed (%s)\n", gw_client_str(run, "id"), gw_client_str(run, "status"));
out:
    free(rq.ivals);
    json_decref(run);
    json_decref(secrets);
    json_decref(body);
    return rc;
}
