/*
 * The CLI for people: actions, run, runs, logs, cancel — a client of the
 * broker's HTTP API (docs/cli.md). Blocking libcurl calls; this is a
 * command-line tool, never a loop thread.
 *
 * Exit codes: 0 ok; 1 the run failed, was not found or could not be
 * cancelled; 2 usage (bad flags, inputs refused by the action's schema);
 * 3 server unreachable or unavailable; 4 authentication refused.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "http_client.h"
#include "options.h"
#include "sse_client.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_AUTH = 4 };

#define CALL_TIMEOUT_MS 30000
#define RECONNECTS      30

struct client {
    char url[1024]; /* without a trailing slash */
    const char *token;
    bool json;
};

/* Options every client command takes. */
#define COMMON_LONGOPTS                                                                            \
    {"url", required_argument, NULL, 'U'}, {"token", required_argument, NULL, 'T'},                \
        {"json", no_argument, NULL, 'J'},                                                          \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

static bool common_opt(struct client *c, int opt, const char **url, const char **token)
{
    switch (opt) {
    case 'U':
        *url = optarg;
        return true;
    case 'T':
        *token = optarg;
        return true;
    case 'J':
        c->json = true;
        return true;
    default:
        return false;
    }
}

static void client_init(struct client *c, const char *url, const char *token)
{
    snprintf(c->url, sizeof(c->url), "%s", gw_opt(url, "GANGWAY_URL", "http://127.0.0.1:8080"));
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    c->token = gw_opt(token, "GANGWAY_TOKEN", NULL);
}

static int usage_error(const char *cmd, const char *usage, const char *msg, const char *arg)
{
    if (msg != NULL)
        fprintf(stderr, "gangway %s: %s%s%s\n", cmd, msg, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: gangway %s\n", usage);
    return EXIT_USAGE;
}

/* --------------------------------------------------------------- calls */

/* Prints what went wrong and maps an HTTP answer to an exit code. */
static int problem_exit(int status, const char *raw)
{
    json_t *p = raw != NULL ? json_loads(raw, 0, NULL) : NULL;
    const char *detail = json_string_value(json_object_get(p, "detail"));
    const char *code = json_string_value(json_object_get(p, "code"));
    int rc;

    if (status < 0) {
        fprintf(stderr, "gangway: cannot reach the server: %s\n", raw ? raw : "?");
        json_decref(p);
        return EXIT_UNREACHABLE;
    }
    fprintf(stderr, "gangway: %s (HTTP %d%s%s)\n", detail ? detail : "request failed", status,
            code ? ", " : "", code ? code : "");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(p, "errors"), i, e)
    {
        fprintf(stderr, "  %s: %s\n", json_string_value(json_object_get(e, "pointer")),
                json_string_value(json_object_get(e, "message")));
    }
    if (status == 401 || status == 403)
        rc = EXIT_AUTH;
    else if (status == 400 || status == 415 || status == 422)
        rc = EXIT_USAGE;
    else if (status >= 500)
        rc = EXIT_UNREACHABLE;
    else
        rc = EXIT_FAILED;
    if (status == 401 && getenv("GANGWAY_TOKEN") == NULL)
        fprintf(stderr, "  (set GANGWAY_TOKEN or pass --token)\n");
    json_decref(p);
    return rc;
}

/* One JSON request. Returns 0 with *out set (2xx), or the exit code after
 * printing the problem. */
static int call(const struct client *c, const char *method, const char *path, const char *body,
                json_t **out)
{
    char url[2048];
    char *resp = NULL;
    snprintf(url, sizeof(url), "%s%s", c->url, path);
    int status = gw_http_call(method, url, c->token, body, CALL_TIMEOUT_MS, &resp);
    if (status < 200 || status > 299) {
        int rc = problem_exit(status, resp);
        free(resp);
        return rc;
    }
    *out = json_loads(resp != NULL ? resp : "", 0, NULL);
    free(resp);
    if (*out == NULL) {
        fprintf(stderr, "gangway: the server's answer is not JSON\n");
        return EXIT_UNREACHABLE;
    }
    return EXIT_OK;
}

static char *escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e != NULL ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s != NULL)
        puts(s);
    free(s);
}

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

/* -------------------------------------------------------------- tables */

#define MAX_COLS 6

struct table {
    size_t ncols, nrows;
    const char *head[MAX_COLS];
    char **cells; /* nrows * ncols, owned */
};

static void table_add(struct table *t, const char *const *row)
{
    char **nc = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*nc));
    if (nc == NULL)
        return;
    t->cells = nc;
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(row[i] != NULL ? row[i] : "");
    t->nrows++;
}

static void table_print(struct table *t)
{
    size_t w[MAX_COLS];
    for (size_t i = 0; i < t->ncols; i++)
        w[i] = strlen(t->head[i]);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            size_t n = s != NULL ? strlen(s) : 0;
            w[i] = n > w[i] ? n : w[i];
        }
    for (size_t i = 0; i < t->ncols; i++)
        printf("%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, t->head[i],
               i + 1 < t->ncols ? "  " : "\n");
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            printf("%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, s != NULL ? s : "",
                   i + 1 < t->ncols ? "  " : "\n");
        }
    for (size_t k = 0; k < t->nrows * t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
}

/* ----------------------------------------------------------------- SSE */

/* One connection of a stream (sse_client.h). Returns 0 when the server ended
 * it or on_event asked to stop, -1 when it broke (reconnect), or an exit
 * code for an answer other than 200 or a server never reached. */
static int sse_get(const struct client *c, const char *path, struct gw_sse *s)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", c->url, path);
    int rc = gw_sse_get(s, url, c->token);
    if (rc == GW_SSE_UNREACHABLE) {
        fprintf(stderr, "gangway: cannot reach %s: %s\n", c->url, s->error);
        return EXIT_UNREACHABLE;
    }
    if (rc > 0)
        return problem_exit(rc, s->buf);
    return rc == GW_SSE_ENDED ? 0 : -1;
}

/* ------------------------------------------------------------- actions */

int gw_cmd_actions(int argc, char **argv)
{
    static const struct option longopts[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *U = "actions [--json] [--url URL] [--token TOKEN]";
    struct client c = {0};
    const char *url = NULL, *token = NULL;
    int opt;
    json_t *list = NULL;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            printf("usage: gangway %s\n\nLists the actions this broker can run.\n", U);
            return EXIT_OK;
        }
        if (!common_opt(&c, opt, &url, &token))
            return usage_error("actions", U, NULL, NULL);
    }
    if (optind != argc)
        return usage_error("actions", U, "unexpected argument", argv[optind]);
    client_init(&c, url, token);
    int rc = call(&c, "GET", "/v1/actions", NULL, &list);
    if (rc != EXIT_OK)
        return rc;
    if (c.json) {
        print_json(list);
    } else {
        struct table t = {.ncols = 3, .head = {"ID", "WORKER", "TITLE"}};
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(list, "items"), i, a)
        {
            const char *row[] = {str(a, "id"), str(a, "worker_type"), str(a, "title")};
            table_add(&t, row);
        }
        table_print(&t);
    }
    json_decref(list);
    return EXIT_OK;
}

/* ----------------------------------------------------------------- run */

/* -i key=value (JSON numbers, true, false, null; a string otherwise) or
 * -i key:=JSON. */
static int add_input(json_t *inputs, const char *arg)
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
            fprintf(stderr, "gangway run: -i %s:=: not JSON: %s\n", key, jerr.text);
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

static bool run_terminal(const char *status)
{
    static const char *const t[] = {"succeeded", "failed",   "timed_out",
                                    "cancelled", "rejected", "expired"};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(status, t[i]) == 0)
            return true;
    return false;
}

static void print_run_end(json_t *run)
{
    printf("run %s %s", str(run, "id"), str(run, "status"));
    if (json_object_get(run, "reason") != NULL)
        printf(" (%s)", str(run, "reason"));
    putchar('\n');
    json_t *outputs = json_object_get(run, "outputs");
    if (outputs != NULL && json_object_size(outputs) > 0) {
        char *s = json_dumps(outputs, JSON_COMPACT | JSON_SORT_KEYS);
        printf("outputs: %s\n", s ? s : "");
        free(s);
    }
}

int gw_cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {COMMON_LONGOPTS,
                                             {"input", required_argument, NULL, 'i'},
                                             {"file", required_argument, NULL, 'f'},
                                             {"wait", no_argument, NULL, 'w'},
                                             {NULL, 0, NULL, 0}};
    const char *U =
        "run ACTION [-i KEY=VALUE | -i KEY:=JSON]... [-f INPUTS.json] [--wait] [--json]";
    struct client c = {0};
    const char *url = NULL, *token = NULL, *file = NULL;
    bool wait = false;
    json_t *inputs = json_object(), *run = NULL;
    int opt, rc = EXIT_USAGE;
    /* -i values are applied over -f, whatever the order on the line. */
    const char **ivals = calloc((size_t)argc + 1, sizeof(*ivals));
    size_t nivals = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "hi:f:w", longopts, NULL)) != -1) {
        if (opt == 'h') {
            printf("usage: gangway %s\n\nStarts a run of ACTION; with --wait, waits for it to end"
                   " (exit 1 unless it succeeded).\n",
                   U);
            rc = EXIT_OK;
            goto out;
        } else if (opt == 'i') {
            ivals[nivals++] = optarg;
        } else if (opt == 'f') {
            file = optarg;
        } else if (opt == 'w') {
            wait = true;
        } else if (!common_opt(&c, opt, &url, &token)) {
            rc = usage_error("run", U, NULL, NULL);
            goto out;
        }
    }
    if (optind + 1 != argc) {
        rc = usage_error("run", U, optind == argc ? "which action?" : "unexpected argument",
                         optind == argc ? NULL : argv[optind + 1]);
        goto out;
    }
    if (file != NULL) {
        json_error_t jerr;
        json_t *f =
            strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(file, 0, &jerr);
        if (!json_is_object(f)) {
            fprintf(stderr, "gangway run: %s: %s\n", file,
                    f == NULL ? jerr.text : "must hold a JSON object");
            json_decref(f);
            goto out;
        }
        json_object_update(inputs, f);
        json_decref(f);
    }
    for (size_t i = 0; i < nivals; i++) {
        int r = add_input(inputs, ivals[i]);
        if (r == -1) {
            rc = usage_error("run", U, "-i wants KEY=VALUE or KEY:=JSON, got", ivals[i]);
            goto out;
        }
        if (r < 0)
            goto out;
    }
    client_init(&c, url, token);
    char *action = escape(argv[optind]);
    char path[1024];
    snprintf(path, sizeof(path), "/v1/actions/%s/runs", action ? action : "");
    free(action);
    json_t *req = json_pack("{s:O}", "inputs", inputs);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rc = call(&c, "POST", path, body, &run);
    free(body);
    if (rc != EXIT_OK)
        goto out;
    char run_path[256];
    snprintf(run_path, sizeof(run_path), "/v1/runs/%s", str(run, "id"));
    if (!wait) {
        if (c.json)
            print_json(run);
        else
            printf("run %s %s\n", str(run, "id"), str(run, "status"));
        goto out;
    }
    if (!c.json)
        printf("run %s %s, waiting...\n", str(run, "id"), str(run, "status"));
    fflush(stdout);
    while (!run_terminal(str(run, "status"))) {
        json_t *next = NULL;
        usleep(250 * 1000);
        rc = call(&c, "GET", run_path, NULL, &next);
        if (rc != EXIT_OK)
            goto out;
        json_decref(run);
        run = next;
    }
    if (c.json)
        print_json(run);
    else
        print_run_end(run);
    rc = strcmp(str(run, "status"), "succeeded") == 0 ? EXIT_OK : EXIT_FAILED;
out:
    free(ivals);
    json_decref(inputs);
    json_decref(run);
    return rc;
}

/* ---------------------------------------------------------------- runs */

struct watch {
    const struct client *c;
    const char *status;
    const char *action;
};

static int on_run_event(struct gw_sse *s, const char *event, const char *data, void *arg)
{
    struct watch *w = arg;
    (void)s;
    if (strcmp(event, "run") != 0)
        return 0;
    json_t *e = json_loads(data, 0, NULL);
    if (e == NULL)
        return 0;
    if ((w->status == NULL || strcmp(str(e, "to"), w->status) == 0) &&
        (w->action == NULL || strcmp(str(e, "action"), w->action) == 0)) {
        if (w->c->json) {
            char *line = json_dumps(e, JSON_COMPACT);
            printf("%s\n", line ? line : "");
            free(line);
        } else {
            const char *from = str(e, "from");
            printf("%s  %s  %-12s %s -> %s%s%s%s\n", str(e, "at"), str(e, "run_id"),
                   str(e, "action"), from[0] ? from : "(new)", str(e, "to"),
                   json_is_string(json_object_get(e, "reason")) ? " (" : "", str(e, "reason"),
                   json_is_string(json_object_get(e, "reason")) ? ")" : "");
        }
        fflush(stdout);
    }
    json_decref(e);
    return 0;
}

int gw_cmd_runs(int argc, char **argv)
{
    static const struct option longopts[] = {COMMON_LONGOPTS,
                                             {"status", required_argument, NULL, 's'},
                                             {"action", required_argument, NULL, 'a'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"watch", no_argument, NULL, 'w'},
                                             {NULL, 0, NULL, 0}};
    const char *U = "runs [--status S] [--action A] [--limit N] [--watch] [--json]";
    struct client c = {0};
    const char *url = NULL, *token = NULL, *status = NULL, *action = NULL, *limit = "20";
    bool watch = false;
    int opt;
    json_t *list = NULL;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "hs:a:l:w", longopts, NULL)) != -1) {
        if (opt == 'h') {
            printf("usage: gangway %s\n\nLists recent runs, newest first; --watch then prints"
                   " every state change as it happens (Ctrl-C to stop).\n",
                   U);
            return EXIT_OK;
        } else if (opt == 's') {
            status = optarg;
        } else if (opt == 'a') {
            action = optarg;
        } else if (opt == 'l') {
            limit = optarg;
        } else if (opt == 'w') {
            watch = true;
        } else if (!common_opt(&c, opt, &url, &token)) {
            return usage_error("runs", U, NULL, NULL);
        }
    }
    if (optind != argc)
        return usage_error("runs", U, "unexpected argument", argv[optind]);
    if (strspn(limit, "0123456789") != strlen(limit) || atoi(limit) < 1)
        return usage_error("runs", U, "--limit wants a positive number, got", limit);
    client_init(&c, url, token);

    char path[1024];
    char *es = status ? escape(status) : NULL, *ea = action ? escape(action) : NULL;
    snprintf(path, sizeof(path), "/v1/runs?limit=%s%s%s%s%s", limit, es ? "&status=" : "",
             es ? es : "", ea ? "&action=" : "", ea ? ea : "");
    free(es);
    free(ea);
    int rc = call(&c, "GET", path, NULL, &list);
    if (rc != EXIT_OK)
        return rc;
    if (c.json && !watch) {
        print_json(list);
    } else if (!c.json) {
        struct table t = {.ncols = 5, .head = {"ID", "ACTION", "STATUS", "CREATED", "REASON"}};
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(list, "items"), i, r)
        {
            const char *row[] = {str(r, "id"), str(json_object_get(r, "action"), "id"),
                                 str(r, "status"), str(r, "created_at"), str(r, "reason")};
            table_add(&t, row);
        }
        table_print(&t);
    }
    json_decref(list);
    if (!watch)
        return EXIT_OK;
    if (!c.json)
        printf("\nwatching for changes (Ctrl-C to stop)...\n");
    fflush(stdout);

    struct watch w = {.c = &c, .status = status, .action = action};
    struct gw_sse s = {.on_event = on_run_event, .arg = &w};
    for (int tries = 0;; tries++) {
        bool had = s.got_event;
        s.got_event = false;
        rc = sse_get(&c, "/v1/events", &s);
        if (rc > 0)
            break;
        if (s.got_event || had)
            tries = 0;
        if (tries >= RECONNECTS) {
            fprintf(stderr, "gangway runs: the event stream keeps breaking; giving up\n");
            rc = EXIT_UNREACHABLE;
            break;
        }
        sleep(1); /* the server went away (restart, shutdown): resume */
    }
    gw_sse_free(&s);
    return rc;
}

/* ---------------------------------------------------------------- logs */

struct follow {
    const struct client *c;
    bool ended;
    char status[32];
};

static void print_line(const struct client *c, json_t *l)
{
    if (c->json) {
        char *s = json_dumps(l, JSON_COMPACT);
        printf("%s\n", s ? s : "");
        free(s);
    } else {
        FILE *out = strcmp(str(l, "stream"), "stderr") == 0 ? stderr : stdout;
        fprintf(out, "%s\n", str(l, "line"));
    }
}

static int on_log_event(struct gw_sse *s, const char *event, const char *data, void *arg)
{
    struct follow *f = arg;
    (void)s;
    json_t *e = json_loads(data, 0, NULL);
    if (strcmp(event, "log") == 0 && e != NULL) {
        print_line(f->c, e);
        fflush(stdout);
    } else if (strcmp(event, "end") == 0) {
        f->ended = true;
        snprintf(f->status, sizeof(f->status), "%s", str(e, "status"));
        if (f->c->json) {
            char *d = json_dumps(e, JSON_COMPACT);
            fprintf(stderr, "%s\n", d ? d : "");
            free(d);
        } else {
            fprintf(stderr, "run %s\n", f->status);
        }
    }
    json_decref(e);
    return 0;
}

static int logs_follow(const struct client *c, const char *run_id)
{
    char path[512];
    struct follow f = {.c = c};
    struct gw_sse s = {.on_event = on_log_event, .arg = &f};
    int rc;
    snprintf(path, sizeof(path), "/v1/runs/%s/logs?follow=true", run_id);
    for (int tries = 0;; tries++) {
        bool had = s.got_event;
        s.got_event = false;
        rc = sse_get(c, path, &s);
        if (f.ended) {
            rc = strcmp(f.status, "succeeded") == 0 ? EXIT_OK : EXIT_FAILED;
            break;
        }
        if (rc > 0)
            break;
        if (s.got_event || had)
            tries = 0;
        if (tries >= RECONNECTS) {
            fprintf(stderr, "gangway logs: the log stream keeps breaking; giving up\n");
            rc = EXIT_UNREACHABLE;
            break;
        }
        sleep(1); /* broken before the end: resume after the last line (Last-Event-ID) */
    }
    gw_sse_free(&s);
    return rc;
}

int gw_cmd_logs(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_LONGOPTS, {"follow", no_argument, NULL, 'F'}, {NULL, 0, NULL, 0}};
    const char *U = "logs RUN [--follow] [--json]";
    struct client c = {0};
    const char *url = NULL, *token = NULL;
    bool follow = false;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "hF", longopts, NULL)) != -1) {
        if (opt == 'h') {
            printf("usage: gangway %s\n\nPrints a run's log lines (stderr lines to stderr);"
                   " --follow streams them until the run ends (exit 1 unless it succeeded).\n",
                   U);
            return EXIT_OK;
        } else if (opt == 'F') {
            follow = true;
        } else if (!common_opt(&c, opt, &url, &token)) {
            return usage_error("logs", U, NULL, NULL);
        }
    }
    if (optind + 1 != argc)
        return usage_error("logs", U, optind == argc ? "which run?" : "unexpected argument",
                           optind == argc ? NULL : argv[optind + 1]);
    client_init(&c, url, token);
    char *run_id = escape(argv[optind]);
    if (run_id == NULL)
        return EXIT_USAGE;
    if (follow) {
        int rc = logs_follow(&c, run_id);
        free(run_id);
        return rc;
    }
    /* Page through everything logged so far. */
    long long after = 0;
    int rc;
    for (;;) {
        char path[512];
        json_t *page = NULL;
        snprintf(path, sizeof(path), "/v1/runs/%s/logs?after=%lld&limit=1000", run_id, after);
        rc = call(&c, "GET", path, NULL, &page);
        if (rc != EXIT_OK)
            break;
        json_t *items = json_object_get(page, "items");
        size_t i;
        json_t *l;
        json_array_foreach(items, i, l)
        {
            print_line(&c, l);
            after = (long long)json_integer_value(json_object_get(l, "pos"));
        }
        size_t n = json_array_size(items);
        json_decref(page);
        if (n < 1000)
            break;
    }
    free(run_id);
    return rc;
}

/* -------------------------------------------------------------- cancel */

int gw_cmd_cancel(int argc, char **argv)
{
    static const struct option longopts[] = {
        COMMON_LONGOPTS, {"reason", required_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
    const char *U = "cancel RUN [--reason TEXT] [--json]";
    struct client c = {0};
    const char *url = NULL, *token = NULL, *reason = NULL;
    int opt;
    json_t *run = NULL;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "hr:", longopts, NULL)) != -1) {
        if (opt == 'r') {
            reason = optarg;
            continue;
        }
        if (opt == 'h') {
            printf("usage: gangway %s\n\nCancels a run that is pending approval, queued or"
                   " running (exit 1 if it has already ended).\n",
                   U);
            return EXIT_OK;
        }
        if (!common_opt(&c, opt, &url, &token))
            return usage_error("cancel", U, NULL, NULL);
    }
    if (optind + 1 != argc)
        return usage_error("cancel", U, optind == argc ? "which run?" : "unexpected argument",
                           optind == argc ? NULL : argv[optind + 1]);
    client_init(&c, url, token);
    char *run_id = escape(argv[optind]);
    char path[512];
    snprintf(path, sizeof(path), "/v1/runs/%s/cancel", run_id ? run_id : "");
    free(run_id);
    json_t *req = reason != NULL ? json_pack("{s:s}", "reason", reason) : json_object();
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    int rc = call(&c, "POST", path, body, &run);
    free(body);
    if (rc != EXIT_OK)
        return rc;
    if (c.json)
        print_json(run);
    else if (run_terminal(str(run, "status")))
        printf("run %s %s\n", str(run, "id"), str(run, "status"));
    else
        printf("run %s: cancel requested (%s; the worker is stopping it)\n", str(run, "id"),
               str(run, "status"));
    json_decref(run);
    return EXIT_OK;
}
