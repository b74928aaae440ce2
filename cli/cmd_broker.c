/* `gangway broker`: migrate, load actions, serve until SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "commands.h"
#include "gw/log.h"
#include "gw/paths.h"
#include "options.h"

static const char usage_text[] =
    "usage: gangway broker [options]\n"
    "  --listen HOST:PORT     address to serve the API on (GW_LISTEN, default 127.0.0.1:8080)\n"
    "  --pg CONNINFO          PostgreSQL connection string (GW_PG)\n"
    "  --kafka BROKERS        Kafka bootstrap servers (GW_KAFKA_BROKERS)\n"
    "  --kafka-props K=V,...  extra librdkafka properties (GW_KAFKA_PROPS)\n"
    "  --topic-prefix P       prefix for topics and groups (GW_TOPIC_PREFIX)\n"
    "  --actions DIR          action definitions (GW_ACTIONS_DIR)\n"
    "  --sql-dir DIR          migrations applied at start (GW_SQL_DIR)\n"
    "  --pg-pool N            PostgreSQL connections (GW_PG_POOL, default 8)\n"
    "  --heartbeat S          heartbeat interval told to workers (GW_HEARTBEAT_S, default 5)\n"
    "  --heartbeat-timeout S  a worker silent this long is lost (GW_HEARTBEAT_TIMEOUT_S)\n"
    "  --requeue-after S      republish runs queued this long (GW_REQUEUE_AFTER_S, default 600)\n"
    "  --policy FILE          authorization policy, reloaded on SIGHUP (GW_POLICY_FILE;\n"
    "                         default: built-in, see docs/policy.md)\n"
    "  --auth-config FILE     JWT issuers accepted as bearer tokens (GW_AUTH_CONFIG;\n"
    "                         see docs/auth-backstage.md; default: API tokens only)\n"
    "  --audit-signing-key PEM  Ed25519 private key signing audit checkpoints\n"
    "                         (GW_AUDIT_SIGNING_KEY; see docs/audit.md; default: none)\n"
    "  --no-migrate           do not apply migrations at start\n"
    "  --no-create-topics     do not create missing topics at start\n"
    "environment only: GW_PG_QUEUE_TIMEOUT_MS (how long a statement may wait for a free\n"
    "  PostgreSQL connection before the request gets 503; default 5000, 0 = no limit),\n"
    "  GW_WEBHOOK_URL (notifications), GW_WEBHOOK_SECRET (signs them),\n"
    "  GW_WEBHOOK_MAX_ATTEMPTS (default 10), GW_WEBHOOK_BACKOFF_MS (first retry delay, default\n"
    "  5000, doubling), GW_INSTANCE_ID (stable replica id),\n"
    "  GW_AUDIT_CHECKPOINT_INTERVAL_S (default 60), GW_AUDIT_CHECKPOINT_ENTRIES (default 1000),\n"
    "  GW_AUDIT_CHECKPOINT_WEBHOOK=1 (also POST checkpoints to GW_WEBHOOK_URL),\n"
    "  GW_AUDIT_VERIFY_KEYS (retired public keys, PEM files, comma-separated, for\n"
    "  GET /v1/admin/audit/verify)\n";

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
    const char *listen = NULL, *pg = NULL, *kafka = NULL, *props = NULL, *prefix = NULL;
    const char *actions = NULL, *sql_dir = NULL, *pool = NULL, *hb = NULL, *hbt = NULL;
    const char *requeue = NULL, *policy = NULL, *auth_config = NULL, *audit_key = NULL;
    int migrate = 1, create_topics = 1;
    const struct gw_opt_spec specs[] = {
        {"listen", GW_OPT_STRING, &listen, .env = "GW_LISTEN", .def = "127.0.0.1:8080"},
        {"pg", GW_OPT_STRING, &pg, .env = "GW_PG"},
        {"kafka", GW_OPT_STRING, &kafka, .env = "GW_KAFKA_BROKERS"},
        {"kafka-props", GW_OPT_STRING, &props, .env = "GW_KAFKA_PROPS"},
        {"topic-prefix", GW_OPT_STRING, &prefix, .env = "GW_TOPIC_PREFIX", .def = ""},
        {"actions", GW_OPT_STRING, &actions, .env = "GW_ACTIONS_DIR"},
        {"sql-dir", GW_OPT_STRING, &sql_dir, .env = "GW_SQL_DIR"},
        {"pg-pool", GW_OPT_STRING, &pool, .env = "GW_PG_POOL", .def = "8"},
        {"heartbeat", GW_OPT_STRING, &hb, .env = "GW_HEARTBEAT_S", .def = "5"},
        {"heartbeat-timeout", GW_OPT_STRING, &hbt, .env = "GW_HEARTBEAT_TIMEOUT_S", .def = "0"},
        {"requeue-after", GW_OPT_STRING, &requeue, .env = "GW_REQUEUE_AFTER_S", .def = "600"},
        {"policy", GW_OPT_STRING, &policy, .env = "GW_POLICY_FILE"},
        {"auth-config", GW_OPT_STRING, &auth_config, .env = "GW_AUTH_CONFIG"},
        {"audit-signing-key", GW_OPT_STRING, &audit_key, .env = "GW_AUDIT_SIGNING_KEY"},
        {"no-migrate", GW_OPT_CLEAR, &migrate},
        {"no-create-topics", GW_OPT_CLEAR, &create_topics},
        {0},
    };
    struct broker_main m;
    struct gw_error err;
    char host[256], sqlbuf[4096], actbuf[4096];
    int port;

    int rc = gw_opt_parse(argc, argv, specs, usage_text);
    if (rc != GW_OPT_OK)
        return rc;
    gw_log_init("broker", gw_log_level_parse(getenv("GW_LOG_LEVEL")));
    if (actions == NULL && gw_path_default_dir("examples/actions", actbuf, sizeof(actbuf)) == 0)
        actions = actbuf;
    if (sql_dir == NULL && gw_path_default_dir("sql", sqlbuf, sizeof(sqlbuf)) == 0)
        sql_dir = sqlbuf;
    if (pg == NULL || kafka == NULL || actions == NULL) {
        fprintf(stderr, "gangway broker: --pg, --kafka and --actions (or GW_PG, "
                        "GW_KAFKA_BROKERS, GW_ACTIONS_DIR) are required\n");
        return 2;
    }
    if (gw_opt_parse_listen(listen, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "gangway broker: --listen wants HOST:PORT, got '%s'\n", listen);
        return 2;
    }
    if (migrate) {
        int applied = 0;
        if (sql_dir == NULL) {
            fprintf(stderr, "gangway broker: cannot find the sql/ directory; set GW_SQL_DIR\n");
            return 1;
        }
        if (gw_pg_migrate(pg, sql_dir, &applied, &err) < 0) {
            gw_log_error("migrations failed: %s", err.message);
            return 1;
        }
        if (applied > 0)
            gw_log_info("applied %d migration(s) from %s", applied, sql_dir);
    }

    char **extra = gw_opt_split_props(props);
    struct gw_broker_options o = {
        .listen_host = host,
        .listen_port = port,
        .pg_conninfo = pg,
        .pg_pool_size = atoi(pool),
        .kafka_brokers = kafka,
        .kafka_extra = (const char *const *)extra,
        .topic_prefix = prefix,
        .actions_dir = actions,
        .heartbeat_interval_s = atoi(hb),
        .heartbeat_timeout_s = atoi(hbt),
        .requeue_after_s = atoi(requeue),
        .no_create_topics = !create_topics,
        .pg_queue_timeout_ms = atoi(gw_opt(NULL, "GW_PG_QUEUE_TIMEOUT_MS", "5000")),
        .webhook_url = gw_opt(NULL, "GW_WEBHOOK_URL", NULL),
        .webhook_secret = gw_opt(NULL, "GW_WEBHOOK_SECRET", NULL),
        .webhook_max_attempts = atoi(gw_opt(NULL, "GW_WEBHOOK_MAX_ATTEMPTS", "10")),
        .webhook_backoff_ms = atol(gw_opt(NULL, "GW_WEBHOOK_BACKOFF_MS", "5000")),
        .instance_id = gw_opt(NULL, "GW_INSTANCE_ID", NULL),
        .policy_file = policy,
        .auth_config = auth_config,
        .audit_signing_key = audit_key,
        .audit_checkpoint_every_s = atoi(gw_opt(NULL, "GW_AUDIT_CHECKPOINT_INTERVAL_S", "60")),
        .audit_checkpoint_every_n = atoi(gw_opt(NULL, "GW_AUDIT_CHECKPOINT_ENTRIES", "1000")),
        .audit_checkpoint_webhook =
            strcmp(gw_opt(NULL, "GW_AUDIT_CHECKPOINT_WEBHOOK", "0"), "1") == 0,
        .audit_verify_keys = gw_opt(NULL, "GW_AUDIT_VERIFY_KEYS", NULL),
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
