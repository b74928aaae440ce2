#include "broker_flags.h"

#include <string.h>

const char gw_broker_flags_usage[] =
    "  --pg CONNINFO          PostgreSQL connection string (GW_PG)\n"
    "  --kafka BROKERS        Kafka bootstrap servers (GW_KAFKA_BROKERS)\n"
    "  --kafka-props K=V,...  extra librdkafka properties (GW_KAFKA_PROPS)\n"
    "  --topic-prefix P       prefix for topics and groups (GW_TOPIC_PREFIX)\n"
    "  --actions DIR          action definitions (GW_ACTIONS_DIR)\n"
    "  --sql-dir DIR          migrations applied at start (GW_SQL_DIR)\n"
    "  --pg-pool N            PostgreSQL connections (GW_PG_POOL, default 8)\n"
    "  --pg-queue-timeout-ms MS  how long a statement may wait for a free PostgreSQL\n"
    "                         connection before the request gets 503\n"
    "                         (GW_PG_QUEUE_TIMEOUT_MS, default 5000, 0 = no limit)\n"
    "  --heartbeat S          heartbeat interval told to workers (GW_HEARTBEAT_S, default 5)\n"
    "  --heartbeat-timeout S  a worker silent this long is lost (GW_HEARTBEAT_TIMEOUT_S)\n"
    "  --requeue-after S      republish runs queued this long whose message is lost: their\n"
    "                         workers have no backlog in Kafka (GW_REQUEUE_AFTER_S, default 600)\n"
    "  --policy FILE          authorization policy, reloaded on SIGHUP (GW_POLICY_FILE;\n"
    "                         default: built-in, see docs/policy.md)\n"
    "  --auth-config FILE     JWT issuers accepted as bearer tokens (GW_AUTH_CONFIG;\n"
    "                         see docs/auth-backstage.md; default: API tokens only)\n"
    "  --webhook-url URL      where notifications are POSTed (GW_WEBHOOK_URL; their\n"
    "                         signing secret is environment only: GW_WEBHOOK_SECRET)\n"
    "  --webhook-max-attempts N  (GW_WEBHOOK_MAX_ATTEMPTS, default 10)\n"
    "  --webhook-backoff-ms MS   first retry delay, doubling (GW_WEBHOOK_BACKOFF_MS,\n"
    "                         default 5000)\n"
    "  --instance-id ID       stable replica id (GW_INSTANCE_ID)\n"
    "  --audit-signing-key PEM  Ed25519 private key signing audit checkpoints\n"
    "                         (GW_AUDIT_SIGNING_KEY; see docs/audit.md; default: none;\n"
    "                         environment only: GW_AUDIT_CHECKPOINT_INTERVAL_S, default 60,\n"
    "                         GW_AUDIT_CHECKPOINT_ENTRIES, default 1000,\n"
    "                         GW_AUDIT_CHECKPOINT_WEBHOOK=1, GW_AUDIT_VERIFY_KEYS)\n"
    "  --web-dir DIR          the built web console (GW_WEB_DIR; default web/dist of\n"
    "                         the source tree, else share/gangway/web)\n"
    "  --public-url URL       how people reach this broker, for links in notifications\n"
    "                         and the OIDC redirect URI (GW_PUBLIC_URL)\n"
    "  --session-ttl S        console session lifetime (GW_SESSION_TTL_S, default 43200)\n"
    "  --session-idle S       console session idle timeout (GW_SESSION_IDLE_S, default 1800)\n"
    "  --trust-proxy yes|no   believe X-Forwarded-Proto from the proxy in front\n"
    "                         (GW_TRUST_PROXY, default no)\n"
    "  --cors-origins LIST    browser origins allowed to call the API, comma-separated,\n"
    "                         or '*' (GW_CORS_ORIGINS; default none)\n"
    "  --hooks-config FILE    incoming webhooks, HMAC-signed (GW_HOOKS_CONFIG; see\n"
    "                         docs/integrations/webhooks-in.md)\n";

void gw_broker_flags_table(struct gw_broker_flags *f, struct gw_opt_spec *specs)
{
    const struct gw_opt_spec t[GW_BROKER_FLAGS_N + 1] = {
        {"pg", GW_OPT_STRING, &f->pg, .env = "GW_PG"},
        {"kafka", GW_OPT_STRING, &f->kafka, .env = "GW_KAFKA_BROKERS"},
        {"kafka-props", GW_OPT_STRING, &f->props, .env = "GW_KAFKA_PROPS"},
        {"topic-prefix", GW_OPT_STRING, &f->prefix, .env = "GW_TOPIC_PREFIX", .def = ""},
        {"actions", GW_OPT_STRING, &f->actions, .env = "GW_ACTIONS_DIR"},
        {"sql-dir", GW_OPT_STRING, &f->sql_dir, .env = "GW_SQL_DIR"},
        {"pg-pool", GW_OPT_STRING, &f->pool, .env = "GW_PG_POOL", .def = "8"},
        {"pg-queue-timeout-ms", GW_OPT_STRING, &f->pg_queue_timeout,
         .env = "GW_PG_QUEUE_TIMEOUT_MS", .def = "5000"},
        {"heartbeat", GW_OPT_STRING, &f->hb, .env = "GW_HEARTBEAT_S", .def = "5"},
        {"heartbeat-timeout", GW_OPT_STRING, &f->hbt, .env = "GW_HEARTBEAT_TIMEOUT_S", .def = "0"},
        {"requeue-after", GW_OPT_STRING, &f->requeue, .env = "GW_REQUEUE_AFTER_S", .def = "600"},
        {"policy", GW_OPT_STRING, &f->policy, .env = "GW_POLICY_FILE"},
        {"auth-config", GW_OPT_STRING, &f->auth_config, .env = "GW_AUTH_CONFIG"},
        {"webhook-url", GW_OPT_STRING, &f->webhook_url, .env = "GW_WEBHOOK_URL"},
        {"webhook-max-attempts", GW_OPT_STRING, &f->webhook_attempts,
         .env = "GW_WEBHOOK_MAX_ATTEMPTS", .def = "10"},
        {"webhook-backoff-ms", GW_OPT_STRING, &f->webhook_backoff, .env = "GW_WEBHOOK_BACKOFF_MS",
         .def = "5000"},
        {"instance-id", GW_OPT_STRING, &f->instance_id, .env = "GW_INSTANCE_ID"},
        {"audit-signing-key", GW_OPT_STRING, &f->audit_key, .env = "GW_AUDIT_SIGNING_KEY"},
        {"web-dir", GW_OPT_STRING, &f->web_dir, .env = "GW_WEB_DIR"},
        {"public-url", GW_OPT_STRING, &f->public_url, .env = "GW_PUBLIC_URL"},
        {"session-ttl", GW_OPT_STRING, &f->session_ttl, .env = "GW_SESSION_TTL_S", .def = "43200"},
        {"session-idle", GW_OPT_STRING, &f->session_idle, .env = "GW_SESSION_IDLE_S",
         .def = "1800"},
        {"trust-proxy", GW_OPT_STRING, &f->trust_proxy, .env = "GW_TRUST_PROXY", .def = "no"},
        {"cors-origins", GW_OPT_STRING, &f->cors_origins, .env = "GW_CORS_ORIGINS"},
        {"hooks-config", GW_OPT_STRING, &f->hooks_config, .env = "GW_HOOKS_CONFIG"},
        {0},
    };
    memcpy(specs, t, sizeof(t));
}
