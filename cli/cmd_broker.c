/* `gangway broker`: migrate, load actions, serve until SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "broker.h"
#include "broker_flags.h"
#include "commands.h"
#include "gw/log.h"
#include "gw/paths.h"
#include "options.h"

static const char usage_head[] =
    "usage: gangway broker [options]\n"
    "  --listen HOST:PORT     address to serve the API on (GW_LISTEN, default 127.0.0.1:8080)\n";
static const char usage_tail[] = "  --no-migrate           do not apply migrations at start\n"
                                 "  --no-create-topics     do not create missing topics at start\n"
                                 "  --topic-partitions N   partitions of the topics it creates "
                                 "(GW_TOPIC_PARTITIONS, default 8)\n"
                                 "  --dev-login            accept one-time console login links\n"
                                 "                         (set by `gangway dev` only)\n";

/* The built console when --web-dir/GW_WEB_DIR is not given: web/dist of
 * the source tree next to the build, else share/gangway/web of an
 * install, else /usr/share/gangway/web (like sql/, lib/gw/paths.h). */
static void default_web_dir(char *buf, size_t cap)
{
    char exe[3072];
    struct stat st;
    if (gw_path_exe_dir(exe, sizeof(exe)) == 0) {
        snprintf(buf, cap, "%s/../../web/dist", exe);
        if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
            return;
        snprintf(buf, cap, "%s/../share/gangway/web", exe);
        if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
            return;
    }
    snprintf(buf, cap, "/usr/share/gangway/web");
}

static bool yes(const char *v)
{
    return v != NULL && (strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0 ||
                         strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0);
}

struct broker_main {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct gw_broker *broker;
    int exit_code;
};

static void closed(void *arg)
{
    struct broker_main *m = arg;
    m->broker = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct broker_main *m = h->data;
    gw_log_info("signal %d: shutting down", signum);
    uv_signal_stop(&m->sigterm);
    uv_signal_stop(&m->sigint);
    if (m->broker != NULL)
        gw_broker_shutdown(m->broker, closed, m);
}

int gw_cmd_broker(int argc, char **argv)
{
    const char *listen = NULL;
    struct gw_broker_flags f = {0};
    struct gw_opt_spec shared[GW_BROKER_FLAGS_N + 1];
    int migrate = 1, create_topics = 1, dev_login = 0;
    const char *partitions = NULL;
    const struct gw_opt_spec specs[] = {
        {"listen", GW_OPT_STRING, &listen, .env = "GW_LISTEN", .def = "127.0.0.1:8080"},
        {NULL, GW_OPT_TABLE, shared},
        {"no-migrate", GW_OPT_CLEAR, &migrate},
        {"no-create-topics", GW_OPT_CLEAR, &create_topics},
        {"topic-partitions", GW_OPT_STRING, &partitions, .env = "GW_TOPIC_PARTITIONS", .def = "8"},
        {"dev-login", GW_OPT_SET, &dev_login},
        {0},
    };
    struct broker_main m;
    struct gw_error err;
    char host[256], sqlbuf[4096], actbuf[4096], webbuf[4096];
    int port;

    char *usage_text = NULL;
    int rc;

    gw_broker_flags_table(&f, shared);
    if (asprintf(&usage_text, "%s%s%s", usage_head, gw_broker_flags_usage, usage_tail) < 0)
        return 1;
    rc = gw_opt_parse(argc, argv, specs, usage_text);
    free(usage_text);
    if (rc != GW_OPT_OK)
        return rc;
    gw_log_init("broker", gw_log_level_parse(getenv("GW_LOG_LEVEL")));
    if (f.actions == NULL && gw_path_default_dir("examples/actions", actbuf, sizeof(actbuf)) == 0)
        f.actions = actbuf;
    if (f.sql_dir == NULL && gw_path_default_dir("sql", sqlbuf, sizeof(sqlbuf)) == 0)
        f.sql_dir = sqlbuf;
    if (f.pg == NULL || f.kafka == NULL || f.actions == NULL) {
        fprintf(stderr, "gangway broker: --pg, --kafka and --actions (or GW_PG, "
                        "GW_KAFKA_BROKERS, GW_ACTIONS_DIR) are required\n");
        return 2;
    }
    if (atoi(partitions) < 1 || atoi(partitions) > 1000) {
        fprintf(stderr, "gangway broker: --topic-partitions wants 1..1000, got '%s'\n", partitions);
        return 2;
    }
    if (f.web_dir == NULL) {
        default_web_dir(webbuf, sizeof(webbuf));
        f.web_dir = webbuf;
    }
    int session_ttl = atoi(f.session_ttl), session_idle = atoi(f.session_idle);
    if (session_ttl < 60 || session_idle < 1 || session_idle > session_ttl) {
        fprintf(stderr,
                "gangway broker: --session-ttl must be at least 60 seconds and "
                "--session-idle from 1 to the ttl (got %s and %s)\n",
                f.session_ttl, f.session_idle);
        return 2;
    }
    if (gw_opt_parse_listen(listen, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "gangway broker: --listen wants HOST:PORT, got '%s'\n", listen);
        return 2;
    }
    if (migrate) {
        int applied = 0;
        if (f.sql_dir == NULL) {
            fprintf(stderr, "gangway broker: cannot find the sql/ directory; set GW_SQL_DIR\n");
            return 1;
        }
        if (gw_pg_migrate(f.pg, f.sql_dir, &applied, &err) < 0) {
            gw_log_error("migrations failed: %s", err.message);
            return 1;
        }
        if (applied > 0)
            gw_log_info("applied %d migration(s) from %s", applied, f.sql_dir);
    }

    char **extra = gw_opt_split_props(f.props);
    struct gw_broker_options o = {
        .listen_host = host,
        .listen_port = port,
        .pg_conninfo = f.pg,
        .pg_pool_size = atoi(f.pool),
        .kafka_brokers = f.kafka,
        .kafka_extra = (const char *const *)extra,
        .topic_prefix = f.prefix,
        .actions_dir = f.actions,
        .heartbeat_interval_s = atoi(f.hb),
        .heartbeat_timeout_s = atoi(f.hbt),
        .requeue_after_s = atoi(f.requeue),
        .drift_max_per_type = atoi(gw_opt(NULL, "GW_DRIFT_MAX_PER_TYPE", "2")),
        .no_create_topics = !create_topics,
        .topic_partitions = atoi(partitions),
        .pg_queue_timeout_ms = atoi(f.pg_queue_timeout),
        .webhook_url = f.webhook_url,
        .webhook_secret = gw_opt(NULL, "GW_WEBHOOK_SECRET", NULL),
        .webhook_max_attempts = atoi(f.webhook_attempts),
        .webhook_backoff_ms = atol(f.webhook_backoff),
        .instance_id = f.instance_id,
        .policy_file = f.policy,
        .auth_config = f.auth_config,
        .audit_signing_key = f.audit_key,
        .audit_checkpoint_every_s = atoi(gw_opt(NULL, "GW_AUDIT_CHECKPOINT_INTERVAL_S", "60")),
        .audit_checkpoint_every_n = atoi(gw_opt(NULL, "GW_AUDIT_CHECKPOINT_ENTRIES", "1000")),
        .audit_checkpoint_webhook =
            strcmp(gw_opt(NULL, "GW_AUDIT_CHECKPOINT_WEBHOOK", "0"), "1") == 0,
        .audit_verify_keys = gw_opt(NULL, "GW_AUDIT_VERIFY_KEYS", NULL),
        .web_dir = f.web_dir,
        .public_url = f.public_url,
        .session_ttl_s = session_ttl,
        .session_idle_s = session_idle,
        .trust_proxy = yes(f.trust_proxy),
        .dev_login = dev_login != 0,
        .cors_origins = f.cors_origins,
        .hooks_config = f.hooks_config,
    };

    /* A client that hangs up while its answer or its event stream is being
     * written (write(2) on a reset socket), or a webhook receiver that does
     * while the HTTP client writes through OpenSSL, must cost that one
     * connection an EPIPE, not the broker its life: SIGPIPE's default
     * action is to terminate. */
    signal(SIGPIPE, SIG_IGN);
    memset(&m, 0, sizeof(m));
    uv_loop_init(&m.loop);
    uv_signal_init(&m.loop, &m.sigterm);
    uv_signal_init(&m.loop, &m.sigint);
    m.sigterm.data = m.sigint.data = &m;
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_signal, SIGINT);
    gw_error_clear(&err);
    m.broker = gw_broker_create(&m.loop, &o, &err);
    if (m.broker == NULL) {
        gw_log_error("broker failed to start: %s", err.message);
        fprintf(stderr, "gangway broker: %s\n", err.message);
        uv_close((uv_handle_t *)&m.sigterm, NULL);
        uv_close((uv_handle_t *)&m.sigint, NULL);
        m.exit_code = 1;
    }
    uv_run(&m.loop, UV_RUN_DEFAULT);
    uv_loop_close(&m.loop);
    gw_opt_free_list(extra);
    gw_log_info("broker stopped");
    return m.exit_code;
}
