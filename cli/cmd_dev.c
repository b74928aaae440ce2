/*
 * `gangway dev`: the embedded default. Starts a private PostgreSQL cluster
 * from Debian's binaries, librdkafka's in-process mock cluster, a broker and
 * an exec worker pool (as child processes of this one, exactly as they run
 * in production), prints GANGWAY_URL / GANGWAY_TOKEN, and either serves
 * until Ctrl-C or, with --smoke, runs the example `echo` action once.
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

#include "commands.h"
#include "gw/crypto.h"
#include "gw/kafka.h"
#include "gw/log.h"
#include "gw/paths.h"
#include "gw/pg.h"
#include "gw/pgcluster.h"
#include "http_client.h"
#include "options.h"
#include "token_store.h"

static const char usage_text[] =
    "usage: gangway dev [--listen HOST:PORT] [--smoke] [--data-dir DIR] [--actions DIR]\n"
    "                   [--workers N]\n"
    "  --listen HOST:PORT  API address (default 127.0.0.1:8080; port 0 picks a free one)\n"
    "  --smoke             submit the example echo action, wait for success, exit 0/1\n"
    "  --data-dir DIR      where the private PostgreSQL lives (GW_DEV_DIR, ./.gangway-dev)\n"
    "  --actions DIR       action definitions (default: examples/actions)\n"
    "  --workers N         concurrent runs of the exec worker pool (default 4)\n";

/* librdkafka's mock cluster does not wake a waiting fetch when data arrives;
 * a short fetch wait keeps latency low (see docs/architecture.md). */
#define DEV_KAFKA_PROPS "fetch.wait.max.ms=5,fetch.error.backoff.ms=5,linger.ms=1"

struct child {
    uv_process_t proc;
    const char *name;
    bool exited;
};

struct dev {
    uv_loop_t loop;
    struct child broker, worker;
    uv_signal_t sigint, sigterm;
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
    stdio[1].data.fd = 2; /* children log to stderr; stdout is for GANGWAY_* lines */
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

static int free_port(const char *host)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, host, &a.sin_addr);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void kill_children(struct dev *d, int sig)
{
    if (!d->worker.exited)
        uv_process_kill(&d->worker.proc, sig);
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
    uv_unref((uv_handle_t *)&d->sigint);
    uv_unref((uv_handle_t *)&d->sigterm);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    stop_all(h->data);
}

static void on_child_watch(uv_timer_t *t)
{
    struct dev *d = t->data;
    if (!d->stopping && (d->broker.exited || d->worker.exited)) {
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

static char *env_entry(const char *name, const char *value)
{
    char *s = NULL;
    if (asprintf(&s, "%s=%s", name, value) < 0)
        return NULL;
    return s;
}

int gw_cmd_dev(int argc, char **argv)
{
    const char *listen = NULL, *data_dir = NULL, *actions = NULL, *workers = NULL;
    int do_smoke = 0, port, rc = 1;
    const struct gw_opt_spec specs[] = {
        {"listen", GW_OPT_STRING, &listen, .def = "127.0.0.1:8080"},
        {"smoke", GW_OPT_SET, &do_smoke},
        {"data-dir", GW_OPT_STRING, &data_dir, .env = "GW_DEV_DIR", .def = ".gangway-dev"},
        {"actions", GW_OPT_STRING, &actions},
        {"workers", GW_OPT_STRING, &workers, .def = "4"},
        {0},
    };
    char host[256], actbuf[4096], sqlbuf[4096], pgdir[4096], url[512], listen_s[300];
    char admin_token[GW_TOKEN_LEN + 1], worker_token[GW_TOKEN_LEN + 1], id[GW_UUID_LEN + 1];
    struct gw_error err;
    struct gw_pgcluster *pg = NULL;
    struct gw_kafka_mock *mock = NULL;
    struct dev d;

    rc = gw_opt_parse(argc, argv, specs, usage_text);
    if (rc != GW_OPT_OK)
        return rc;
    rc = 1;
    gw_log_init("dev", gw_log_level_parse(getenv("GW_LOG_LEVEL")));
    gw_error_clear(&err);
    if (gw_opt_parse_listen(listen, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "gangway dev: --listen wants HOST:PORT, got '%s'\n", listen);
        return 2;
    }
    if (port == 0 && (port = free_port(host)) <= 0) {
        fprintf(stderr, "gangway dev: no free port on %s\n", host);
        return 1;
    }
    if (actions == NULL) {
        if (gw_path_default_dir("examples/actions", actbuf, sizeof(actbuf)) < 0) {
            fprintf(stderr, "gangway dev: cannot find examples/actions; pass --actions DIR\n");
            return 1;
        }
        actions = actbuf;
    }
    if (gw_path_default_dir("sql", sqlbuf, sizeof(sqlbuf)) < 0) {
        fprintf(stderr, "gangway dev: cannot find the sql/ directory; set GW_SQL_DIR\n");
        return 1;
    }
    if (mkdir(data_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "gangway dev: cannot create %s: %s\n", data_dir, strerror(errno));
        return 1;
    }
    snprintf(pgdir, sizeof(pgdir), "%s/pg", data_dir);

    gw_log_info("starting a private PostgreSQL in %s", pgdir);
    pg = gw_pgcluster_start(pgdir, 0, &err);
    if (pg == NULL) {
        fprintf(stderr, "gangway dev: PostgreSQL: %s\n", err.message);
        return 1;
    }
    const char *conninfo = gw_pgcluster_conninfo(pg);
    int applied = 0;
    if (gw_pg_migrate(conninfo, sqlbuf, &applied, &err) < 0) {
        fprintf(stderr, "gangway dev: migrations: %s\n", err.message);
        goto out_pg;
    }
    PGconn *conn = PQconnectdb(conninfo);
    const char *admin_roles[] = {"admin"}, *worker_roles[] = {"worker"};
    const char *dev_teams[] = {"dev"};
    if (PQstatus(conn) != CONNECTION_OK ||
        gw_token_store_create(conn, "dev-admin", dev_teams, 1, admin_roles, 1, 0,
                              "gangway dev admin", admin_token, id, &err) < 0 ||
        gw_token_store_create(conn, "dev-worker", NULL, 0, worker_roles, 1, 0,
                              "gangway dev worker pool", worker_token, id, &err) < 0) {
        fprintf(stderr, "gangway dev: creating tokens: %s %s\n", PQerrorMessage(conn), err.message);
        PQfinish(conn);
        goto out_pg;
    }
    PQfinish(conn);

    mock = gw_kafka_mock_create(1, &err);
    if (mock == NULL) {
        fprintf(stderr, "gangway dev: Kafka mock cluster: %s\n", err.message);
        goto out_pg;
    }
    const char *topics[] = {"gangway.runs.exec",        "gangway.events",  "gangway.catalog",
                            "gangway.deadletter",       "gangway.control", "gangway.audit",
                            "gangway.audit.checkpoints"};
    for (size_t i = 0; i < ARRAY_SIZE(topics); i++)
        gw_kafka_mock_create_topic(mock, topics[i], 4, NULL);
    const char *bootstraps = gw_kafka_mock_bootstraps(mock);
    gw_log_info("Kafka mock cluster at %s", bootstraps);

    snprintf(listen_s, sizeof(listen_s), "%s:%d", host, port);
    snprintf(url, sizeof(url), "http://%s:%d", host, port);
    char *env[] = {
        env_entry("PATH", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin"),
        env_entry("GW_PG", conninfo),
        env_entry("GW_KAFKA_BROKERS", bootstraps),
        env_entry("GW_KAFKA_PROPS", DEV_KAFKA_PROPS),
        env_entry("GW_ACTIONS_DIR", actions),
        env_entry("GW_SQL_DIR", sqlbuf),
        env_entry("GW_BROKER_URL", url),
        env_entry("GW_WORKER_TOKEN", worker_token),
        env_entry("GW_LOG_LEVEL", getenv("GW_LOG_LEVEL") ? getenv("GW_LOG_LEVEL") : "info"),
        NULL,
    };
    char *broker_argv[] = {
        NULL, "broker", "--listen", listen_s, "--no-migrate", "--no-create-topics", NULL};
    char *worker_argv[] = {NULL, "worker", "--type", "exec", "--concurrency", (char *)workers,
                           NULL};

    memset(&d, 0, sizeof(d));
    uv_loop_init(&d.loop);
    uv_signal_init(&d.loop, &d.sigint);
    uv_signal_init(&d.loop, &d.sigterm);
    uv_timer_init(&d.loop, &d.kill_timer);
    d.sigint.data = d.sigterm.data = d.kill_timer.data = &d;
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    d.broker.exited = d.worker.exited = true;

    if (spawn_child(&d, &d.broker, "broker", broker_argv, env) < 0)
        goto out_loop;
    char ready[600];
    snprintf(ready, sizeof(ready), "%s/readyz", url);
    if (wait_ready(&d, ready, 60000) < 0) {
        fprintf(stderr, "gangway dev: the broker did not become ready at %s\n", ready);
        goto out_loop;
    }
    if (spawn_child(&d, &d.worker, "worker", worker_argv, env) < 0)
        goto out_loop;

    printf("GANGWAY_URL=%s\nGANGWAY_TOKEN=%s\n", url, admin_token);
    fflush(stdout);
    if (do_smoke) {
        rc = smoke(url, admin_token);
        stop_all(&d);
    } else {
        fprintf(stderr,
                "gangway dev: ready. Try:\n"
                "  curl -s -H \"Authorization: Bearer $GANGWAY_TOKEN\" $GANGWAY_URL/v1/actions\n"
                "Press Ctrl-C to stop.\n");
        uv_timer_t watch;
        uv_timer_init(&d.loop, &watch);
        watch.data = &d;
        uv_timer_start(&watch, on_child_watch, 500, 500);
        uv_unref((uv_handle_t *)&watch);
        d.exit_code = 0;
        /* Runs until both children are gone (signals start the stop). */
        uv_run(&d.loop, UV_RUN_DEFAULT);
        uv_close((uv_handle_t *)&watch, NULL);
        rc = d.exit_code;
    }

out_loop:
    stop_all(&d);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&d.sigint, NULL);
    uv_close((uv_handle_t *)&d.sigterm, NULL);
    uv_close((uv_handle_t *)&d.kill_timer, NULL);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    for (char **e = env; *e; e++)
        free(*e);
    gw_kafka_mock_destroy(mock);
out_pg:
    gw_pgcluster_stop(pg);
    return rc;
}
