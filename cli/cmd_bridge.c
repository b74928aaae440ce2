/* `gangway bridge port`: Port's Kafka invocation method to Gangway runs
 * (bridge/port/bridge.h, docs/integrations/port.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "commands.h"
#include "gw/http_client.h"
#include "gw/log.h"
#include "options.h"

static const char usage_text[] =
    "usage: gangway bridge port [options]\n"
    "Consumes Port's run requests (<org>.runs) and runs them in Gangway as the Port user,\n"
    "reporting logs, status, link and the created resource back to Port.\n"
    "  --org-id ORG           Port organisation id (PORT_ORG_ID; required)\n"
    "  --name NAME            consumer group <org>.<NAME> (PORT_BRIDGE_NAME, default gangway)\n"
    "  --runs-topic T         (PORT_RUNS_TOPIC, default <org>.runs)\n"
    "  --port-kafka BROKERS   Port's Kafka (PORT_KAFKA_BROKERS; required)\n"
    "  --port-kafka-props K=V,...  SASL/TLS for it (PORT_KAFKA_PROPS), e.g.\n"
    "                         security.protocol=SASL_SSL,sasl.mechanisms=SCRAM-SHA-512,\n"
    "                         sasl.username=...,sasl.password=...\n"
    "  --kafka BROKERS        Gangway's Kafka: dead letters, gangway.catalog\n"
    "                         (GW_KAFKA_BROKERS; default Port's)\n"
    "  --kafka-props K=V,...  (GW_KAFKA_PROPS)\n"
    "  --topic-prefix P       Gangway's topic prefix (GW_TOPIC_PREFIX)\n"
    "  --dead-letter-topic T  (PORT_DEAD_LETTER_TOPIC, default <prefix>gangway.port.deadletter)\n"
    "  --port-url URL         Port's API (PORT_API_URL, default https://api.getport.io);\n"
    "                         credentials from PORT_CLIENT_ID and PORT_CLIENT_SECRET\n"
    "  --gangway-url URL      the broker (GANGWAY_URL; required); its token from\n"
    "                         GANGWAY_TOKEN: an API token with the role act_on_behalf\n"
    "  --public-url URL       the console's base for links (GW_PUBLIC_URL, default --gangway-url)\n"
    "  --mapping FILE         actions and identities (PORT_BRIDGE_MAPPING; required)\n"
    "  --blueprint B          created resources become entities of B (PORT_BLUEPRINT,\n"
    "                         default gangwayResource; '' = none)\n"
    "  --state-dir DIR        log positions of runs in flight (PORT_BRIDGE_STATE_DIR)\n"
    "  --poll-ms MS           how often a run is read (PORT_BRIDGE_POLL_MS, default 1000)\n"
    "  --backoff-ms MS        first retry delay of an API call (PORT_BRIDGE_BACKOFF_MS,\n"
    "                         default 500, doubling up to 30 s)\n";

struct bridge_main {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct pb_bridge *bridge;
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct bridge_main *m = h->data;
    gw_log_info("signal %d: shutting down", signum);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    pb_bridge_stop(m->bridge);
    m->bridge = NULL;
}

static int bridge_port(int argc, char **argv)
{
    const char *org = NULL, *name = NULL, *topic = NULL, *pk = NULL, *pkp = NULL, *gk = NULL,
               *gkp = NULL, *prefix = NULL, *dlq = NULL, *port_url = NULL, *gw_url = NULL,
               *public_url = NULL, *mapping = NULL, *blueprint = NULL, *state = NULL, *poll = NULL,
               *backoff = NULL;
    const struct gw_opt_spec specs[] = {
        {"org-id", GW_OPT_STRING, &org, .env = "PORT_ORG_ID"},
        {"name", GW_OPT_STRING, &name, .env = "PORT_BRIDGE_NAME", .def = "gangway"},
        {"runs-topic", GW_OPT_STRING, &topic, .env = "PORT_RUNS_TOPIC"},
        {"port-kafka", GW_OPT_STRING, &pk, .env = "PORT_KAFKA_BROKERS"},
        {"port-kafka-props", GW_OPT_STRING, &pkp, .env = "PORT_KAFKA_PROPS"},
        {"kafka", GW_OPT_STRING, &gk, .env = "GW_KAFKA_BROKERS"},
        {"kafka-props", GW_OPT_STRING, &gkp, .env = "GW_KAFKA_PROPS"},
        {"topic-prefix", GW_OPT_STRING, &prefix, .env = "GW_TOPIC_PREFIX", .def = ""},
        {"dead-letter-topic", GW_OPT_STRING, &dlq, .env = "PORT_DEAD_LETTER_TOPIC"},
        {"port-url", GW_OPT_STRING, &port_url, .env = "PORT_API_URL",
         .def = "https://api.getport.io"},
        {"gangway-url", GW_OPT_STRING, &gw_url, .env = "GANGWAY_URL"},
        {"public-url", GW_OPT_STRING, &public_url, .env = "GW_PUBLIC_URL"},
        {"mapping", GW_OPT_STRING, &mapping, .env = "PORT_BRIDGE_MAPPING"},
        {"blueprint", GW_OPT_STRING, &blueprint, .env = "PORT_BLUEPRINT", .def = "gangwayResource"},
        {"state-dir", GW_OPT_STRING, &state, .env = "PORT_BRIDGE_STATE_DIR"},
        {"poll-ms", GW_OPT_STRING, &poll, .env = "PORT_BRIDGE_POLL_MS", .def = "1000"},
        {"backoff-ms", GW_OPT_STRING, &backoff, .env = "PORT_BRIDGE_BACKOFF_MS", .def = "500"},
        {0},
    };
    int rc = gw_opt_parse(argc, argv, specs, usage_text);
    if (rc != GW_OPT_OK)
        return rc;
    gw_log_init("port-bridge", gw_log_level_parse(getenv("GW_LOG_LEVEL")));
    const char *cid = getenv("PORT_CLIENT_ID"), *csec = getenv("PORT_CLIENT_SECRET");
    const char *token = getenv("GANGWAY_TOKEN");
    const char *missing = org == NULL       ? "--org-id (PORT_ORG_ID)"
                          : pk == NULL      ? "--port-kafka (PORT_KAFKA_BROKERS)"
                          : gw_url == NULL  ? "--gangway-url (GANGWAY_URL)"
                          : mapping == NULL ? "--mapping (PORT_BRIDGE_MAPPING)"
                          : cid == NULL     ? "PORT_CLIENT_ID"
                          : csec == NULL    ? "PORT_CLIENT_SECRET"
                          : token == NULL   ? "GANGWAY_TOKEN"
                                            : NULL;
    if (missing != NULL) {
        fprintf(stderr, "gangway bridge port: %s is required (--help)\n", missing);
        return 2;
    }
    int poll_ms = atoi(poll);
    long backoff_ms = atol(backoff);
    if (poll_ms < 50 || poll_ms > 600000 || backoff_ms < 1 || backoff_ms > 600000) {
        fprintf(stderr, "gangway bridge port: --poll-ms is 50..600000, --backoff-ms 1..600000\n");
        return 2;
    }
    char **pprops = gw_opt_split_props(pkp), **gprops = gw_opt_split_props(gk != NULL ? gkp : pkp);
    struct pb_bridge_options o = {
        .org_id = org,
        .name = name,
        .runs_topic = topic,
        .port_kafka = {.brokers = pk, .extra = (const char *const *)pprops},
        .gangway_kafka = {.brokers = gk != NULL ? gk : pk, .extra = (const char *const *)gprops},
        .topic_prefix = prefix,
        .dead_letter_topic = dlq,
        .port_url = port_url,
        .client_id = cid,
        .client_secret = csec,
        .gangway_url = gw_url,
        .gangway_token = token,
        .public_url = public_url,
        .mapping_file = mapping,
        .blueprint = blueprint,
        .state_dir = state,
        .poll_ms = poll_ms,
        .backoff_ms = backoff_ms,
    };
    struct bridge_main m;
    struct gw_error err;
    gw_error_clear(&err);
    signal(SIGPIPE, SIG_IGN);
    memset(&m, 0, sizeof(m));
    if (gw_http_client_global_init(&err) < 0 || uv_loop_init(&m.loop) != 0) {
        fprintf(stderr, "gangway bridge port: %s\n", err.message);
        return 1;
    }
    m.bridge = pb_bridge_create(&m.loop, &o, &err);
    int code = 0;
    if (m.bridge == NULL) {
        gw_log_error("port bridge failed to start: %s", err.message);
        fprintf(stderr, "gangway bridge port: %s\n", err.message);
        code = 1;
    } else {
        uv_signal_init(&m.loop, &m.sigterm);
        uv_signal_init(&m.loop, &m.sigint);
        m.sigterm.data = m.sigint.data = &m;
        uv_signal_start(&m.sigterm, on_signal, SIGTERM);
        uv_signal_start(&m.sigint, on_signal, SIGINT);
    }
    uv_run(&m.loop, UV_RUN_DEFAULT);
    uv_loop_close(&m.loop);
    gw_opt_free_list(pprops);
    gw_opt_free_list(gprops);
    gw_log_info("port bridge stopped");
    return code;
}

int gw_cmd_bridge(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "port") == 0)
        return bridge_port(argc - 1, argv + 1);
    fprintf(stderr, "usage: gangway bridge port [options]   (--help for the options)\n");
    return 2;
}
