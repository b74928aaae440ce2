/*
 * `gangway dev`: the embedded default, a real small installation. Starts a
 * private PostgreSQL cluster from Debian's binaries, librdkafka's in-process
 * mock cluster, a broker and one worker pool per worker type of its catalog
 * that can run here (as child processes of this one, exactly as they run in
 * production), prints what a person needs to attach things to it as
 * `export` lines, and either serves until Ctrl-C or, with --smoke, runs the
 * example `echo` action once.
 *
 * Its children inherit its environment (every GW_* twin of a broker or
 * worker option works) and dev overrides only what it provides itself;
 * broker flags given to dev are passed through (decision 0033). The URL,
 * tokens and PostgreSQL port are kept in the data directory across restarts
 * (decision 0034).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "backend.h"
#include "broker_flags.h"
#include "catalog.h"
#include "commands.h"
#include "dev_state.h"
#include "gw/crypto.h"
#include "gw/kafka.h"
#include "gw/log.h"
#include "gw/paths.h"
#include "gw/pg.h"
#include "gw/pgcluster.h"
#include "http_client.h"
#include "options.h"
#include "token_store.h"

extern char **environ;

static const char usage_head[] =
    "usage: gangway dev [--listen HOST:PORT] [--smoke] [--data-dir DIR] [--workers N]\n"
    "                   [broker options]\n"
    "       gangway dev token create|list|revoke ... [--data-dir DIR]\n"
    "  --listen HOST:PORT  API address (GW_LISTEN; default: the one this data dir used\n"
    "                      last, else 127.0.0.1:8080; port 0 picks a free one)\n"
    "  --smoke             submit the example echo action, wait for success, exit 0/1\n"
    "  --data-dir DIR      where the private PostgreSQL and dev.json live (GW_DEV_DIR,\n"
    "                      default ./.gangway-dev)\n"
    "  --workers N         concurrent runs of each worker pool (default 4)\n"
    "broker options, passed to the broker (each also read from its GW_* variable, which\n"
    "the broker and the workers inherit; --pg and --kafka are refused: dev runs its own):\n";

static const char usage_tail[] =
    "`gangway dev token ...` is `gangway token ...` against this data dir's database\n"
    "(dev must be running). See docs/cli.md.\n";

/* librdkafka's mock cluster does not wake a waiting fetch when data arrives;
 * a short fetch wait keeps latency low (see docs/architecture.md). */
#define DEV_KAFKA_PROPS "fetch.wait.max.ms=5,fetch.error.backoff.ms=5,linger.ms=1"

/* Topics every worker type shares; `gangway.runs.<type>` is added per type. */
static const char *const fixed_topics[] = {"gangway.events",     "gangway.catalog",
                                           "gangway.deadletter", "gangway.control",
                                           "gangway.audit",      "gangway.audit.checkpoints"};

struct child {
    uv_process_t proc;
    const char *name;
    bool exited;
};

/* One worker type of the catalog (or exec): whether dev runs a pool of it,
 * and why not. */
struct pool {
    char *type;
    bool run;
    char why[256];
    char name[80]; /* "worker (TYPE)" */
    struct child child;
};

struct dev {
    uv_loop_t loop;
    struct child broker;
    struct pool *pools;
    size_t npools;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t kill_timer;
    bool stopping;
    int exit_code;
};

static void child_exit(uv_process_t *p, int64_t status, int signum)
{
    struct child *c = p->data;
    c->exited = true;
    if (status != 0 || signum != 0)
        gw_log(GW_LOG_WARN, NULL, "%s exited (status %lld, signal %d)", c->name, (long long)status,
               signum);
    uv_close((uv_handle_t *)p, NULL);
}

static int spawn_child(struct dev *d, struct child *c, const char *name, char **argv, char **env)
{
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n < 0)
        return -1;
    self[n] = '\0';
    argv[0] = self;
    memset(&o, 0, sizeof(o));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 2; /* children log to stderr; stdout is for the export lines */
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    o.file = self;
    o.args = argv;
    o.env = env;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.exit_cb = child_exit;
    c->name = name;
    c->proc.data = c;
    c->exited = false;
    int rc = uv_spawn(&d->loop, &c->proc, &o);
    if (rc < 0) {
        gw_log_error("cannot start %s: %s", name, uv_strerror(rc));
        c->exited = true;
        return -1;
    }
    return 0;
}

/* Binds host:port (port 0: any) the way the broker will (SO_REUSEADDR, as
 * libuv does). Returns the port bound, or -errno (-EADDRINUSE: taken). A
 * host that is not a numeric address is not checked (returns `port`). */
static int try_bind(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, rc;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in6);
    } else {
        return port;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len))
        rc = -errno;
    else
        rc = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                           : ((struct sockaddr_in6 *)&ss)->sin6_port);
    close(fd);
    return rc;
}

static void kill_children(struct dev *d, int sig)
{
    for (size_t i = 0; i < d->npools; i++)
        if (d->pools[i].run && !d->pools[i].child.exited)
            uv_process_kill(&d->pools[i].child.proc, sig);
    if (!d->broker.exited)
        uv_process_kill(&d->broker.proc, sig);
}

static void on_kill_timer(uv_timer_t *t)
{
    kill_children(t->data, SIGKILL);
}

static void stop_all(struct dev *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    kill_children(d, SIGTERM);
    uv_timer_start(&d->kill_timer, on_kill_timer, 10000, 0);
    uv_unref((uv_handle_t *)&d->kill_timer);
    uv_signal_stop(&d->sigint);
    uv_signal_stop(&d->sigterm);
    uv_signal_stop(&d->sighup);
    uv_unref((uv_handle_t *)&d->sigint);
    uv_unref((uv_handle_t *)&d->sigterm);
    uv_unref((uv_handle_t *)&d->sighup);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    stop_all(h->data);
}

/* SIGHUP reloads the broker's policy and actions: pass it on, as dev is
 * the process a person knows. */
static void on_sighup(uv_signal_t *h, int signum)
{
    struct dev *d = h->data;
    if (!d->broker.exited) {
        gw_log_info("SIGHUP: passed to the broker (reloads its policy and actions)");
        uv_process_kill(&d->broker.proc, signum);
    }
}

static bool any_exited(struct dev *d)
{
    for (size_t i = 0; i < d->npools; i++)
        if (d->pools[i].run && d->pools[i].child.exited)
            return true;
    return d->broker.exited;
}

static void on_child_watch(uv_timer_t *t)
{
    struct dev *d = t->data;
    if (!d->stopping && any_exited(d)) {
        gw_log_error("a child process stopped; shutting down");
        d->exit_code = 1;
        stop_all(d);
    }
}

/* Blocks until GET url answers 200 or timeout_ms passes. */
static int wait_ready(struct dev *d, const char *url, long timeout_ms)
{
    for (long waited = 0; waited < timeout_ms; waited += 100) {
        if (gw_http_call("GET", url, NULL, NULL, 1000, NULL) == 200)
            return 0;
        uv_run(&d->loop, UV_RUN_NOWAIT); /* reap children that died */
        if (d->broker.exited)
            return -1;
        usleep(100 * 1000);
    }
    return -1;
}

static int smoke(const char *url, const char *token)
{
    char endpoint[1024], *resp = NULL;
    json_t *run;
    snprintf(endpoint, sizeof(endpoint), "%s/v1/actions/echo/runs", url);
    int status =
        gw_http_call("POST", endpoint, token,
                     "{\"inputs\":{\"message\":\"hello from gangway dev --smoke\"}}", 5000, &resp);
    if (status != 202) {
        fprintf(stderr, "smoke: submitting echo failed: HTTP %d %s\n", status, resp ? resp : "");
        free(resp);
        return 1;
    }
    run = json_loads(resp, 0, NULL);
    free(resp);
    char id[64];
    const char *rid = json_string_value(json_object_get(run, "id"));
    snprintf(id, sizeof(id), "%s", rid != NULL ? rid : "?");
    json_decref(run);
    printf("smoke: submitted echo as run %s\n", id);
    fflush(stdout);
    snprintf(endpoint, sizeof(endpoint), "%s/v1/runs/%s", url, id);
    for (int i = 0; i < 600; i++) {
        status = gw_http_call("GET", endpoint, token, NULL, 5000, &resp);
        run = status == 200 ? json_loads(resp, 0, NULL) : NULL;
        const char *st = json_string_value(json_object_get(run, "status"));
        if (st != NULL && (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0 &&
                           strcmp(st, "accepted") != 0)) {
            int ok = strcmp(st, "succeeded") == 0;
            char *outputs = json_dumps(json_object_get(run, "outputs"), JSON_COMPACT);
            printf("smoke: run %s %s, outputs %s\n", id, st, outputs ? outputs : "null");
            if (!ok)
                fprintf(stderr, "smoke: the run ended %s (reason: %s)\n", st,
                        json_string_value(json_object_get(run, "reason"))
                            ? json_string_value(json_object_get(run, "reason"))
                            : "none");
            free(outputs);
            json_decref(run);
            free(resp);
            return ok ? 0 : 1;
        }
        json_decref(run);
        free(resp);
        usleep(100 * 1000);
    }
    fprintf(stderr, "smoke: run %s did not finish within 60 s\n", id);
    return 1;
}

/* ------------------------------------------------------------ environment */

/* The names dev sets for its children; the same names in its own
 * environment are dropped (GW_WORKER_ID too: every pool needs its own). */
static const char *const overridden[] = {
    "GW_PG",          "GW_KAFKA_BROKERS", "GW_KAFKA_PROPS", "GW_TOPIC_PREFIX",
    "GW_ACTIONS_DIR", "GW_SQL_DIR",       "GW_BROKER_URL",  "GW_WORKER_TOKEN",
    "GW_LISTEN",      "GW_WORKER_ID",     "GW_LOG_LEVEL",
};

static bool is_overridden(const char *entry)
{
    for (size_t i = 0; i < ARRAY_SIZE(overridden); i++) {
        size_t n = strlen(overridden[i]);
        if (strncmp(entry, overridden[i], n) == 0 && entry[n] == '=')
            return true;
    }
    return false;
}

struct env {
    char **v;
    size_t n, cap;
};

static int env_add(struct env *e, const char *name, const char *value)
{
    char *s = NULL;
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        char **v = realloc(e->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        e->v = v;
        e->cap = cap;
    }
    if (value != NULL ? asprintf(&s, "%s=%s", name, value) < 0 : (s = strdup(name)) == NULL)
        return -1;
    e->v[e->n++] = s;
    e->v[e->n] = NULL;
    return 0;
}

static void env_free(struct env *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

/* ---------------------------------------------------------------- pools */

/* The terraform backend's own search (workers/backends/terraform): the
 * action may name another binary, but without one nothing can run. */
static bool terraform_found(void)
{
    const char *b = getenv("GW_TERRAFORM_BIN");
    const char *names[] = {"terraform", "tofu"};
    const char *path = getenv("PATH") ? getenv("PATH") : "/usr/local/bin:/usr/bin:/bin";
    char buf[4096];

    if (b != NULL && *b != '\0' && strchr(b, '/') != NULL)
        return access(b, X_OK) == 0;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        const char *name = b != NULL && *b != '\0' ? b : names[i];
        for (const char *p = path; *p;) {
            size_t n = strcspn(p, ":");
            struct stat st;
            if (n > 0 &&
                snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name) < (int)sizeof(buf) &&
                stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
                return true;
            p += n + (p[n] == ':');
        }
        if (b != NULL && *b != '\0')
            break;
    }
    return false;
}

/* A Jenkins action is configured when its URL is not a placeholder under a
 * reserved name (RFC 2606/6761: .example, .invalid) and the variables it
 * names for credentials are set here (the worker reads them). */
static bool jenkins_configured(const struct gw_action *a, char *why, size_t cap)
{
    json_t *be = json_object_get(a->definition, "backend");
    const char *url = json_string_value(json_object_get(be, "url"));
    const char *envs[] = {json_string_value(json_object_get(be, "user_env")),
                          json_string_value(json_object_get(be, "token_env"))};
    char host[256] = "";

    if (url != NULL) {
        const char *h = strstr(url, "://");
        h = h ? h + 3 : url;
        size_t n = strcspn(h, ":/?#");
        snprintf(host, sizeof(host), "%.*s", (int)(n < sizeof(host) ? n : sizeof(host) - 1), h);
    }
    size_t hl = strlen(host);
    if (url == NULL || (hl >= 8 && strcmp(host + hl - 8, ".example") == 0) ||
        (hl >= 8 && strcmp(host + hl - 8, ".invalid") == 0)) {
        snprintf(why, cap, "its Jenkins URL %s is a placeholder", url ? url : "(none)");
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(envs); i++)
        if (envs[i] != NULL && getenv(envs[i]) == NULL) {
            snprintf(why, cap, "%s (its Jenkins credentials) is not set", envs[i]);
            return false;
        }
    return true;
}

static struct pool *pool_find(struct dev *d, const char *type)
{
    for (size_t i = 0; i < d->npools; i++)
        if (strcmp(d->pools[i].type, type) == 0)
            return &d->pools[i];
    return NULL;
}

/* The worker types the runs of `a` need, into out[0..cap): its own, or for a
 * workflow every step's and undo's (the workflow's own run is orchestrated
 * in SQL and never claimed, docs/workflows.md). Returns how many. */
static size_t action_types(const struct gw_action *a, const char **out, size_t cap)
{
    json_t *steps, *step;
    size_t n = 0, i;

    if (!a->is_workflow) {
        out[n++] = a->worker_type;
        return n;
    }
    steps = json_object_get(a->definition, "steps");
    json_array_foreach(steps, i, step)
    {
        const char *t = json_string_value(json_object_get(step, "worker_type"));
        const char *u =
            json_string_value(json_object_get(json_object_get(step, "undo"), "worker_type"));
        if (t != NULL && n < cap)
            out[n++] = t;
        if (u != NULL && n < cap)
            out[n++] = u;
    }
    return n;
}

#define TYPES_MAX 64 /* worker types one action may name (a workflow's steps) */

/* One pool per worker type the catalog's runs need, plus exec. Decides which
 * run here and prints, for each action a type of which has none, that its
 * runs stay queued. Returns 0 or -1 (out of memory). */
static int plan_pools(struct dev *d, const struct gw_catalog *cat)
{
    const char *types[TYPES_MAX];
    size_t cap = 1;

    for (size_t i = 0; i < cat->n; i++)
        cap += action_types(cat->actions[i], types, TYPES_MAX);
    d->pools = calloc(cap, sizeof(*d->pools));
    if (d->pools == NULL)
        return -1;
    for (size_t i = 0; i <= cat->n; i++) {
        size_t nt = 1;
        if (i == 0)
            types[0] = "exec";
        else
            nt = action_types(cat->actions[i - 1], types, TYPES_MAX);
        for (size_t k = 0; k < nt; k++) {
            if (pool_find(d, types[k]) != NULL)
                continue;
            if ((d->pools[d->npools].type = strdup(types[k])) == NULL)
                return -1;
            d->npools++;
        }
    }
    for (size_t i = 0; i < d->npools; i++) {
        struct pool *p = &d->pools[i];
        snprintf(p->name, sizeof(p->name), "worker (%s)", p->type);
        p->child.exited = true;
        if (gw_backend_lookup(p->type) == NULL) {
            snprintf(p->why, sizeof(p->why),
                     "no '%s' backend is built into this gangway: attach an outside worker "
                     "(docs/worker-types.md)",
                     p->type);
        } else if (strcmp(p->type, "terraform") == 0 && !terraform_found()) {
            snprintf(p->why, sizeof(p->why),
                     "no terraform or tofu binary (set GW_TERRAFORM_BIN or put one on PATH)");
        } else if (strcmp(p->type, "jenkins") == 0) {
            for (size_t k = 0; k < cat->n && !p->run; k++)
                if (strcmp(cat->actions[k]->worker_type, "jenkins") == 0)
                    p->run = jenkins_configured(cat->actions[k], p->why, sizeof(p->why));
        } else {
            p->run = true;
        }
    }
    for (size_t i = 0; i < cat->n; i++) {
        const struct gw_action *a = cat->actions[i];
        size_t nt = action_types(a, types, TYPES_MAX);
        char why[256];
        if (!a->is_workflow && strcmp(a->worker_type, "jenkins") == 0 &&
            pool_find(d, "jenkins")->run && !jenkins_configured(a, why, sizeof(why)))
            fprintf(stderr,
                    "gangway dev: WARNING: action '%s' (worker type jenkins): %s; its runs "
                    "will fail\n",
                    a->id, why);
        for (size_t k = 0; k < nt; k++) {
            struct pool *p = pool_find(d, types[k]);
            bool said = false;
            for (size_t j = 0; j < k; j++)
                said = said || strcmp(types[j], types[k]) == 0;
            if (!p->run && !said)
                fprintf(stderr,
                        "gangway dev: WARNING: no worker for action '%s' (worker type %s%s): "
                        "its runs will %s until a %s worker attaches. Why: %s\n",
                        a->id, types[k], a->is_workflow ? ", one of its steps" : "",
                        a->is_workflow ? "wait at that step" : "stay queued", types[k], p->why);
        }
    }
    return 0;
}

static void pools_free(struct dev *d)
{
    for (size_t i = 0; i < d->npools; i++)
        free(d->pools[i].type);
    free(d->pools);
}

/* ---------------------------------------------------------------- tokens */

/* Whether `token` is an active API token of this database. */
static bool token_valid(PGconn *conn, const char *token)
{
    char hash[GW_SHA256_HEX_LEN + 1];
    if (token[0] == '\0')
        return false;
    gw_sha256_hex(token, strlen(token), hash);
    const char *params[] = {hash};
    PGresult *res =
        PQexecParams(conn,
                     "SELECT 1 FROM gw_api_tokens WHERE token_hash = $1 AND "
                     "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
                     1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    PQclear(res);
    return ok;
}

/* Keeps the stored admin and worker tokens when still valid, else makes new
 * ones. Returns 0 or -1 (message printed). */
static int ensure_tokens(const char *conninfo, struct gw_dev_state *st)
{
    const char *admin_roles[] = {"admin"}, *worker_roles[] = {"worker"};
    const char *dev_teams[] = {"dev"};
    char id[GW_UUID_LEN + 1];
    struct gw_error err;
    PGconn *conn = PQconnectdb(conninfo);
    int rc = 0;

    gw_error_clear(&err);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "gangway dev: PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    if (!token_valid(conn, st->admin_token) &&
        gw_token_store_create(conn, "dev-admin", dev_teams, 1, admin_roles, 1, 0,
                              "gangway dev admin", st->admin_token, id, &err) < 0)
        rc = -1;
    if (rc == 0 && !token_valid(conn, st->worker_token) &&
        gw_token_store_create(conn, "dev-worker", NULL, 0, worker_roles, 1, 0,
                              "gangway dev worker pools", st->worker_token, id, &err) < 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "gangway dev: creating tokens: %s\n", err.message);
    PQfinish(conn);
    return rc;
}

/* A one-time console login link for the dev admin (GANGWAY_CONSOLE_URL):
 * the code's hash is stored with the admin token's, for the broker (run
 * with --dev-login) to take once (broker/session.c). Returns 0 or -1. */
#define DEV_LOGIN_TTL_S 900

static int make_login_code(const char *conninfo, const char *admin_token, char *code)
{
    char code_hash[GW_SHA256_HEX_LEN + 1], token_hash[GW_SHA256_HEX_LEN + 1], ttl[16];
    struct gw_error err;
    if (gw_random_b64url(24, code, &err) < 0) {
        fprintf(stderr, "gangway dev: login link: %s\n", err.message);
        return -1;
    }
    gw_sha256_hex(code, strlen(code), code_hash);
    gw_sha256_hex(admin_token, strlen(admin_token), token_hash);
    snprintf(ttl, sizeof(ttl), "%d", DEV_LOGIN_TTL_S);
    PGconn *conn = PQconnectdb(conninfo);
    const char *params[] = {code_hash, token_hash, ttl};
    PGresult *res = PQstatus(conn) == CONNECTION_OK
                        ? PQexecParams(conn, "SELECT gw_login_code_create($1, $2, $3::int)", 3,
                                       NULL, params, NULL, NULL, 0)
                        : NULL;
    int rc = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc < 0)
        fprintf(stderr, "gangway dev: login link: %s", PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    return rc;
}

/* ------------------------------------------------------------- printing */

/* `export NAME=VALUE`, VALUE single-quoted unless it is plainly safe. */
static void print_export(const char *name, const char *value)
{
    bool plain = value[0] != '\0';
    for (const char *p = value; *p; p++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-",
                   *p) == NULL)
            plain = false;
    if (plain) {
        printf("export %s=%s\n", name, value);
        return;
    }
    printf("export %s='", name);
    for (const char *p = value; *p; p++)
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    printf("'\n");
}

/* ------------------------------------------------------- dev token ... */

/* `gangway dev token ARGS [--data-dir DIR]`: `gangway token ARGS` with GW_PG
 * set to the running dev database of DIR. */
static int dev_token(int argc, char **argv)
{
    const char *dir = gw_opt(NULL, "GW_DEV_DIR", ".gangway-dev");
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    struct gw_dev_state st;
    struct gw_error err;
    int n = 0, rc;

    if (args == NULL)
        return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strncmp(argv[i], "--data-dir=", 11) == 0)
            dir = argv[i] + 11;
        else
            args[n++] = argv[i];
    }
    gw_error_clear(&err);
    rc = gw_dev_state_load(dir, &st, &err);
    if (rc == GW_ENOTFOUND || (rc == 0 && st.pg[0] == '\0')) {
        fprintf(stderr,
                "gangway dev token: %s/dev.json not found: start `gangway dev --data-dir %s` "
                "first\n",
                dir, dir);
        free(args);
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "gangway dev token: %s\n", err.message);
        free(args);
        return 1;
    }
    if (PQping(st.pg) != PQPING_OK) {
        fprintf(stderr,
                "gangway dev token: the PostgreSQL of %s (%s) is not running: start `gangway dev "
                "--data-dir %s` first\n",
                dir, st.pg, dir);
        free(args);
        return 1;
    }
    setenv("GW_PG", st.pg, 1);
    rc = gw_cmd_token(n, args);
    free(args);
    return rc;
}

/* ------------------------------------------------------------------ main */

/* A broker flag given to dev (its value differs from what the broker would
 * read itself from the environment it inherits, or default to) is passed on
 * as a flag. */
static bool given(const struct gw_opt_spec *s)
{
    const char *v = *(const char **)s->dest;
    const char *own = gw_opt(NULL, s->env, s->def);
    return v != NULL && (own == NULL || strcmp(v, own) != 0);
}

int gw_cmd_dev(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return dev_token(argc - 1, argv + 1);

    const char *listen = NULL, *data_dir = NULL, *workers = NULL;
    struct gw_broker_flags f = {0};
    struct gw_opt_spec shared[GW_BROKER_FLAGS_N + 1];
    int do_smoke = 0, port, rc = 1;
    const struct gw_opt_spec specs[] = {
        {"listen", GW_OPT_STRING, &listen, .env = "GW_LISTEN"},
        {"smoke", GW_OPT_SET, &do_smoke},
        {"data-dir", GW_OPT_STRING, &data_dir, .env = "GW_DEV_DIR", .def = ".gangway-dev"},
        {"workers", GW_OPT_STRING, &workers, .def = "4"},
        {NULL, GW_OPT_TABLE, shared},
        {0},
    };
    char host[256], actbuf[4096], sqlbuf[4096], pgdir[4096], ready[600];
    char *usage_text = NULL, *props = NULL;
    struct gw_error err;
    struct gw_pgcluster *pg = NULL;
    struct gw_kafka_mock *mock = NULL;
    struct gw_catalog *cat = NULL;
    struct gw_dev_state st;
    struct env env = {0};
    char *broker_argv[2 * GW_BROKER_FLAGS_N + 9], flagbuf[GW_BROKER_FLAGS_N][64];
    size_t nb = 0;
    struct dev d;

    memset(&d, 0, sizeof(d));
    gw_broker_flags_table(&f, shared);
    if (asprintf(&usage_text, "%s%s%s", usage_head, gw_broker_flags_usage, usage_tail) < 0)
        return 1;
    rc = gw_opt_parse(argc, argv, specs, usage_text);
    free(usage_text);
    if (rc != GW_OPT_OK)
        return rc;
    rc = 1;
    if (optind < argc) {
        fprintf(stderr, "gangway dev: unexpected argument '%s' (see gangway dev --help)\n",
                argv[optind]);
        return 2;
    }
    gw_log_init("dev", gw_log_level_parse(getenv("GW_LOG_LEVEL")));
    gw_error_clear(&err);
    /* dev runs its own PostgreSQL and Kafka: a flag naming others is a
     * mistake; the same variables in the environment (pasted from an earlier
     * dev, say) are simply not used. */
    for (size_t i = 0; i < 2; i++)
        if (given(&shared[i])) {
            fprintf(stderr,
                    "gangway dev: --%s: dev runs its own %s; use `gangway broker` to use "
                    "another\n",
                    shared[i].name, i == 0 ? "PostgreSQL" : "Kafka (mock cluster)");
            return 2;
        }
    if (atoi(workers) < 1) {
        fprintf(stderr, "gangway dev: --workers wants a number >= 1, got '%s'\n", workers);
        return 2;
    }
    if (f.actions == NULL) {
        if (gw_path_default_dir("examples/actions", actbuf, sizeof(actbuf)) < 0) {
            fprintf(stderr, "gangway dev: cannot find examples/actions; pass --actions DIR\n");
            return 1;
        }
        f.actions = actbuf;
    }
    if (f.sql_dir == NULL) {
        if (gw_path_default_dir("sql", sqlbuf, sizeof(sqlbuf)) < 0) {
            fprintf(stderr, "gangway dev: cannot find the sql/ directory; set GW_SQL_DIR\n");
            return 1;
        }
        f.sql_dir = sqlbuf;
    }
    if (mkdir(data_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "gangway dev: cannot create %s: %s\n", data_dir, strerror(errno));
        return 1;
    }
    int loaded = gw_dev_state_load(data_dir, &st, &err);
    if (loaded < 0 && loaded != GW_ENOTFOUND) {
        fprintf(stderr, "gangway dev: %s (remove it to start afresh)\n", err.message);
        return 1;
    }

    /* The API address: --listen / GW_LISTEN, else the one this data dir used
     * last (so the URL and token a person pasted keep working), else 8080.
     * A taken port is an error, never a silent move (decision 0034). */
    bool from_state = listen == NULL && st.listen[0] != '\0';
    if (listen == NULL)
        listen = from_state ? st.listen : "127.0.0.1:8080";
    if (gw_opt_parse_listen(listen, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "gangway dev: --listen wants HOST:PORT, got '%s'\n", listen);
        return 2;
    }
    int bound = try_bind(host, port);
    if (bound == -EADDRINUSE) {
        fprintf(stderr,
                "gangway dev: %s:%d is already in use by another process%s.\n"
                "  Stop what holds it, or pass --listen %s:0 to pick a free port (the new URL\n"
                "  is then kept for this data dir: tokens stay, GANGWAY_URL changes).\n",
                host, port, from_state ? " (it is the address this data dir used last)" : "", host);
        return 1;
    }
    if (bound < 0) {
        fprintf(stderr, "gangway dev: cannot listen on %s:%d: %s\n", host, port, strerror(-bound));
        return 1;
    }
    port = bound;
    snprintf(st.listen, sizeof(st.listen), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    snprintf(st.url, sizeof(st.url), strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host,
             port);

    cat = gw_catalog_load(f.actions, &err);
    if (cat == NULL) {
        fprintf(stderr, "gangway dev: actions in %s: %s\n", f.actions, err.message);
        return 1;
    }

    snprintf(pgdir, sizeof(pgdir), "%s/pg", data_dir);
    int pg_port =
        st.pg_port > 0 && try_bind("127.0.0.1", st.pg_port) == st.pg_port ? st.pg_port : 0;
    if (st.pg_port > 0 && pg_port == 0)
        gw_log_warn("PostgreSQL's port %d is taken now: GW_PG changes", st.pg_port);
    gw_log_info("starting a private PostgreSQL in %s", pgdir);
    pg = gw_pgcluster_start(pgdir, pg_port, &err);
    if (pg == NULL) {
        fprintf(stderr, "gangway dev: PostgreSQL: %s\n", err.message);
        goto out_cat;
    }
    st.pg_port = gw_pgcluster_port(pg);
    snprintf(st.pg, sizeof(st.pg), "postgresql://gangway@127.0.0.1:%d/gangway", st.pg_port);
    int applied = 0;
    if (gw_pg_migrate(st.pg, f.sql_dir, &applied, &err) < 0) {
        fprintf(stderr, "gangway dev: migrations: %s\n", err.message);
        goto out_pg;
    }
    if (ensure_tokens(st.pg, &st) < 0)
        goto out_pg;

    if (plan_pools(&d, cat) < 0)
        goto out_pg;
    mock = gw_kafka_mock_create(1, &err);
    if (mock == NULL) {
        fprintf(stderr, "gangway dev: Kafka mock cluster: %s\n", err.message);
        goto out_pg;
    }
    /* The mock serves no CreateTopics: dev makes the shared topics and one
     * runs topic per worker type of its catalog (docs/worker-types.md). */
    for (size_t i = 0; i < ARRAY_SIZE(fixed_topics) + d.npools; i++) {
        char topic[512];
        snprintf(topic, sizeof(topic), "%s%s%s", f.prefix,
                 i < ARRAY_SIZE(fixed_topics) ? fixed_topics[i] : "gangway.runs.",
                 i < ARRAY_SIZE(fixed_topics) ? "" : d.pools[i - ARRAY_SIZE(fixed_topics)].type);
        if (gw_kafka_mock_create_topic(mock, topic, 4, &err) < 0)
            gw_log_warn("%s", err.message);
    }
    snprintf(st.kafka, sizeof(st.kafka), "%s", gw_kafka_mock_bootstraps(mock));
    gw_log_info("Kafka mock cluster at %s", st.kafka);

    /* The children's environment: ours, with what dev provides replacing
     * any same-named variable. */
    if (asprintf(&props, "%s%s%s", DEV_KAFKA_PROPS, f.props && f.props[0] ? "," : "",
                 f.props ? f.props : "") < 0)
        goto out_mock;
    for (char **e = environ; *e; e++)
        if (!is_overridden(*e) && env_add(&env, *e, NULL) < 0)
            goto out_mock;
    if (env_add(&env, "GW_PG", st.pg) < 0 || env_add(&env, "GW_KAFKA_BROKERS", st.kafka) < 0 ||
        env_add(&env, "GW_KAFKA_PROPS", props) < 0 ||
        env_add(&env, "GW_TOPIC_PREFIX", f.prefix) < 0 ||
        env_add(&env, "GW_ACTIONS_DIR", f.actions) < 0 ||
        env_add(&env, "GW_SQL_DIR", f.sql_dir) < 0 || env_add(&env, "GW_BROKER_URL", st.url) < 0 ||
        env_add(&env, "GW_WORKER_TOKEN", st.worker_token) < 0 ||
        env_add(&env, "GW_LOG_LEVEL", gw_opt(NULL, "GW_LOG_LEVEL", "info")) < 0)
        goto out_mock;

    broker_argv[nb++] = NULL;
    broker_argv[nb++] = "broker";
    broker_argv[nb++] = "--listen";
    broker_argv[nb++] = st.listen;
    broker_argv[nb++] = "--no-migrate";
    broker_argv[nb++] = "--no-create-topics";
    broker_argv[nb++] = "--dev-login"; /* GANGWAY_CONSOLE_URL below */
    /* pg, kafka, kafka-props, topic-prefix, actions, sql-dir (the first six
     * of the shared table) are in the environment above. */
    for (size_t i = 6; i < GW_BROKER_FLAGS_N; i++)
        if (given(&shared[i])) {
            snprintf(flagbuf[i], sizeof(flagbuf[i]), "--%s", shared[i].name);
            broker_argv[nb++] = flagbuf[i];
            broker_argv[nb++] = *(char **)shared[i].dest;
        }
    broker_argv[nb] = NULL;

    uv_loop_init(&d.loop);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sighup);
    uv_timer_init(&d.loop, &d.kill_timer);
    d.sigint.data = d.sigterm.data = d.sighup.data = d.kill_timer.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sighup, on_sighup, SIGHUP);
    d.broker.exited = true;

    if (spawn_child(&d, &d.broker, "broker", broker_argv, env.v) < 0)
        goto out_loop;
    snprintf(ready, sizeof(ready), "%s/readyz", st.url);
    if (wait_ready(&d, ready, 60000) < 0) {
        fprintf(stderr, "gangway dev: the broker did not become ready at %s\n", ready);
        goto out_loop;
    }
    for (size_t i = 0; i < d.npools; i++) {
        char *worker_argv[] = {
            NULL, "worker", "--type", d.pools[i].type, "--concurrency", (char *)workers, NULL};
        if (d.pools[i].run &&
            spawn_child(&d, &d.pools[i].child, d.pools[i].name, worker_argv, env.v) < 0)
            goto out_loop;
        if (d.pools[i].run)
            gw_log_info("worker pool for type %s started", d.pools[i].type);
    }
    if (gw_dev_state_save(data_dir, &st, &err) < 0)
        gw_log_warn("%s: the next start will have a new URL and tokens", err.message);

    print_export("GANGWAY_URL", st.url);
    print_export("GANGWAY_TOKEN", st.admin_token);
    char login_code[64];
    if (make_login_code(st.pg, st.admin_token, login_code) == 0) {
        char console_url[512];
        snprintf(console_url, sizeof(console_url), "%s/auth/dev-login?code=%s", st.url, login_code);
        print_export("GANGWAY_CONSOLE_URL", console_url);
    }
    print_export("GW_BROKER_URL", st.url);
    print_export("GW_WORKER_TOKEN", st.worker_token);
    print_export("GW_PG", st.pg);
    print_export("GW_KAFKA_BROKERS", st.kafka);
    print_export("GW_KAFKA_PROPS", props);
    if (f.prefix[0] != '\0')
        print_export("GW_TOPIC_PREFIX", f.prefix);
    fflush(stdout);
    if (do_smoke) {
        rc = smoke(st.url, st.admin_token);
        stop_all(&d);
    } else {
        fprintf(stderr,
                "gangway dev: ready. Paste the export lines above into a shell, then try:\n"
                "  open $GANGWAY_CONSOLE_URL in a browser: the console, signed in as the dev\n"
                "    admin (the link works once, within 15 minutes of this start)\n"
                "  curl -s -H \"Authorization: Bearer $GANGWAY_TOKEN\" $GANGWAY_URL/v1/actions\n"
                "  gangway worker --type TYPE    # an outside worker (GW_* above)\n"
                "  gangway dev token create --subject NAME [--team T] [--role R]\n"
                "Press Ctrl-C to stop.\n");
        uv_timer_t watch;
        uv_timer_init(&d.loop, &watch);
        watch.data = &d;
        uv_timer_start(&watch, on_child_watch, 500, 500);
        uv_unref((uv_handle_t *)&watch);
        d.exit_code = 0;
        /* Runs until every child is gone (signals start the stop). */
        uv_run(&d.loop, UV_RUN_DEFAULT);
        uv_close((uv_handle_t *)&watch, NULL);
        rc = d.exit_code;
    }

out_loop:
    stop_all(&d);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&d.sigint, NULL);
    uv_close((uv_handle_t *)&d.sigterm, NULL);
    uv_close((uv_handle_t *)&d.sighup, NULL);
    uv_close((uv_handle_t *)&d.kill_timer, NULL);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
out_mock:
    env_free(&env);
    free(props);
    gw_kafka_mock_destroy(mock);
out_pg:
    pools_free(&d);
    gw_pgcluster_stop(pg);
out_cat:
    gw_catalog_destroy(cat);
    return rc;
}
