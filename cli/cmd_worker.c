/* `gangway worker`: a pool of workers of one type on one libuv loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"
#include "commands.h"
#include "gw/log.h"
#include "options.h"
#include "runtime.h"
#include "supervisor.h"

#define MAX_PROPS 64

static const char usage_text[] =
    "usage: gangway worker --type TYPE [options]\n"
    "  --type TYPE          worker type / backend (exec)\n"
    "  --concurrency N      runs executing at once (default 4)\n"
    "  --broker-url URL     broker base URL for claims (env GW_BROKER_URL)\n"
    "  --token T            worker token (env GW_WORKER_TOKEN)\n"
    "  --kafka BROKERS      bootstrap servers (env GW_KAFKA_BROKERS)\n"
    "  --kafka-props P      extra librdkafka props k=v,k=v (env GW_KAFKA_PROPS)\n"
    "  --topic-prefix P     topic and group prefix (env GW_TOPIC_PREFIX)\n"
    "  --heartbeat-ms MS    heartbeat interval if the claim gives none (5000)\n"
    "  --grace-seconds S    shutdown grace for running runs (30)\n"
    "  --worker-id ID       stable worker id (env GW_WORKER_ID; default <host>-<pid>):\n"
    "                       also its Kafka static membership, so it must be unique\n"
    "                       per process and the same across its restarts\n"
    "  --supervise          run exec programs and terraform runs under `gangway\n"
    "                       supervise` so they outlive the worker; a worker started\n"
    "                       later on the host reattaches them\n"
    "                       (env GW_WORKER_SUPERVISE=1; docs/reattach.md)\n"
    "  --state-dir DIR      where supervised runs keep their spools (env\n"
    "                       GW_WORKER_STATE_DIR; default $XDG_STATE_HOME/gangway,\n"
    "                       else /var/lib/gangway as root, else ~/.local/state/gangway)\n"
    "  --drain-mode M       on SIGTERM or a drain request: wait (default) for the runs\n"
    "                       in progress, or handoff (detach supervised runs and exit\n"
    "                       at once) (env GW_WORKER_DRAIN_MODE; docs/operations.md)\n"
    "Against `gangway dev` (mock Kafka), paste the export lines it prints: they set\n"
    "GW_BROKER_URL, GW_WORKER_TOKEN, GW_KAFKA_BROKERS and GW_KAFKA_PROPS (fetch.wait.max.ms).\n";

static const char *env_or(const char *v, const char *name)
{
    return v != NULL ? v : getenv(name);
}

/* Splits "a=1,b=2" into a NULL-terminated array pointing into `buf`. */
static int split_props(char *buf, const char **out, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (*tok == '\0')
            continue;
        if (n + 1 >= max)
            return -1;
        out[n++] = tok;
    }
    out[n] = NULL;
    return 0;
}

int gw_cmd_worker(int argc, char **argv)
{
    struct gw_worker_options o = {.concurrency = 4, .heartbeat_ms = 5000, .grace_ms = 30000};
    const char *url = NULL, *token = NULL, *brokers = NULL, *props = NULL, *prefix = NULL;
    const char *concurrency = NULL, *heartbeat_ms = NULL, *grace_s = NULL, *drain_mode = NULL;
    const char *state_dir = NULL, *supervise_env;
    bool supervise = false;
    char state_buf[4096];
    const struct gw_opt_spec specs[] = {
        {"type", GW_OPT_STRING, &o.type},           {"concurrency", GW_OPT_STRING, &concurrency},
        {"broker-url", GW_OPT_STRING, &url},        {"token", GW_OPT_STRING, &token},
        {"kafka", GW_OPT_STRING, &brokers},         {"kafka-props", GW_OPT_STRING, &props},
        {"topic-prefix", GW_OPT_STRING, &prefix},   {"heartbeat-ms", GW_OPT_STRING, &heartbeat_ms},
        {"grace-seconds", GW_OPT_STRING, &grace_s}, {"worker-id", GW_OPT_STRING, &o.worker_id},
        {"supervise", GW_OPT_BOOL, &supervise},     {"state-dir", GW_OPT_STRING, &state_dir},
        {"drain-mode", GW_OPT_STRING, &drain_mode}, {0},
    };
    const char *extra[MAX_PROPS];
    char *props_buf = NULL;
    struct gw_error err;
    struct gw_worker *w;
    uv_loop_t loop;
    int rc = gw_opt_parse(argc, argv, specs, usage_text);

    if (rc != GW_OPT_OK)
        return rc;
    rc = 0;
    if (concurrency != NULL)
        o.concurrency = atoi(concurrency);
    if (heartbeat_ms != NULL)
        o.heartbeat_ms = atoi(heartbeat_ms);
    if (grace_s != NULL)
        o.grace_ms = atoi(grace_s) * 1000;
    gw_log_init("worker", gw_log_level_parse(getenv("GW_LOG_LEVEL")));
    o.broker_url = env_or(url, "GW_BROKER_URL");
    o.token = env_or(token, "GW_WORKER_TOKEN");
    o.kafka.brokers = env_or(brokers, "GW_KAFKA_BROKERS");
    o.topic_prefix = env_or(prefix, "GW_TOPIC_PREFIX");
    o.worker_id = env_or(o.worker_id, "GW_WORKER_ID");
    props = env_or(props, "GW_KAFKA_PROPS");
    o.test_die_after_success = getenv("GW_TEST_DIE_AFTER_SUCCESS");   /* tests only */
    o.test_drain_at_start = getenv("GW_TEST_DRAIN_AT_START") != NULL; /* tests only */
    if (gw_worker_drain_mode_parse(env_or(drain_mode, "GW_WORKER_DRAIN_MODE"), &o.drain_mode,
                                   &err) < 0) {
        fprintf(stderr, "gangway worker: --drain-mode: %s\n", err.message);
        return 2;
    }
    supervise_env = getenv("GW_WORKER_SUPERVISE");
    if (!supervise && supervise_env != NULL && strcmp(supervise_env, "1") == 0)
        supervise = true;
    o.supervise = supervise;
    if (o.drain_mode == GW_DRAIN_HANDOFF && !supervise) {
        fprintf(stderr, "gangway worker: --drain-mode handoff needs --supervise "
                        "(GW_WORKER_SUPERVISE=1): without run supervisors nothing can be handed "
                        "off\n");
        return 2;
    }
    state_dir = env_or(state_dir, "GW_WORKER_STATE_DIR");
    if (state_dir == NULL) {
        const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
        if (xdg != NULL && xdg[0] == '/')
            snprintf(state_buf, sizeof(state_buf), "%s/gangway", xdg);
        else if (geteuid() == 0 || home == NULL)
            snprintf(state_buf, sizeof(state_buf), "/var/lib/gangway");
        else
            snprintf(state_buf, sizeof(state_buf), "%s/.local/state/gangway", home);
        state_dir = state_buf;
    }
    if (supervise && state_dir[0] != '/') {
        fprintf(stderr, "gangway worker: --state-dir must be an absolute path\n");
        return 2;
    }
    o.state_dir = state_dir;
    if (o.type == NULL || o.broker_url == NULL || o.kafka.brokers == NULL || o.concurrency < 1) {
        fprintf(stderr, "gangway worker: --type, --broker-url (GW_BROKER_URL) and --kafka "
                        "(GW_KAFKA_BROKERS) are required; --concurrency must be >= 1\n");
        fputs(usage_text, stderr);
        return 2;
    }
    if (props != NULL) {
        props_buf = strdup(props);
        if (props_buf == NULL || split_props(props_buf, extra, MAX_PROPS) < 0) {
            fprintf(stderr, "gangway worker: too many Kafka properties\n");
            free(props_buf);
            return 2;
        }
        o.kafka.extra = extra;
    }
    /* A child that does not read its stdin must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* The git backend's libgit2 work and the exec backend's finalisation run
     * on libuv's thread pool (claims are on the loop since the shared HTTP
     * client): with the default 4 threads, 4 runs at a time would cap the
     * pool's throughput under load. Size it to the pool unless the operator
     * chose (libuv reads it once, before first use). */
    if (getenv("UV_THREADPOOL_SIZE") == NULL) {
        char n[16];
        int size = o.concurrency + 4;
        snprintf(n, sizeof(n), "%d", size < 4 ? 4 : size > 128 ? 128 : size);
        setenv("UV_THREADPOOL_SIZE", n, 0);
    }
    if (gw_claim_global_init(&err) < 0 || uv_loop_init(&loop) != 0) {
        gw_log_error("start-up failed: %s", err.message);
        free(props_buf);
        return 1;
    }
    w = gw_worker_create(&loop, &o, &err);
    if (w == NULL) {
        gw_log_error("cannot start the worker: %s", err.message);
        rc = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    gw_worker_destroy(w);
    if (uv_loop_close(&loop) != 0)
        gw_log_warn("loop closed with handles still open");
    free(props_buf);
    return rc;
}

/* `gangway supervise RUN_DIR` (internal): the supervisor of one run,
 * started by a worker with --supervise (workers/supervisor.h). */
int gw_cmd_supervise(int argc, char **argv)
{
    struct gw_error err;
    if (argc != 2 || argv[1][0] != '/') {
        fprintf(stderr, "usage: gangway supervise RUN_DIR (internal: started by "
                        "`gangway worker --supervise`)\n");
        return 2;
    }
    /* The second fork of the double fork: the worker that started us reaps
     * this parent at once, and the supervisor proper is nobody's child but
     * init's (or a subreaper's), so no worker ever holds its zombie. First
     * thing, before any thread exists. We are already a session leader's
     * child: never again attached to a terminal. */
    switch (fork()) {
    case -1:
        perror("gangway supervise: fork");
        return 1;
    case 0:
        break;
    default:
        _exit(0);
    }
    gw_log_init("supervise", gw_log_level_parse(getenv("GW_LOG_LEVEL")));
    if (gw_claim_global_init(&err) < 0) {
        gw_log_error("start-up failed: %s", err.message);
        return 1;
    }
    return gw_supervise(argv[1]);
}
