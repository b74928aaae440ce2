/*
 * The broker: HTTP API, outbox relay, event sink and reaper on one libuv
 * loop, with PostgreSQL (the only writer) and Kafka behind it.
 *
 * Ownership: gw_broker_create() allocates the broker and everything it
 * holds; gw_broker_shutdown() closes it gracefully and frees it when the
 * last handle has closed. Threading: loop thread only.
 */
#ifndef GW_BROKER_H
#define GW_BROKER_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "gw/error.h"
#include "gw/histo.h"
#include "gw/http.h"
#include "gw/kafka.h"
#include "gw/pg.h"

struct gw_catalog;

struct gw_broker_options {
    const char *listen_host;        /* default "127.0.0.1" */
    int listen_port;                /* default 8080; 0 = any free port */
    const char *pg_conninfo;        /* required */
    int pg_pool_size;               /* default 8 */
    int pg_queue_timeout_ms;        /* a statement waiting longer for a connection fails
                                       (the request gets 503); 0 = wait (the CLI's
                                       default is 5000) */
    const char *kafka_brokers;      /* required */
    const char *const *kafka_extra; /* NULL-terminated "k=v" or NULL */
    const char *topic_prefix;       /* default "" */
    const char *actions_dir;        /* required */
    size_t max_body_bytes;          /* default 1 MiB */
    int heartbeat_interval_s;       /* told to workers; default 5 */
    int heartbeat_timeout_s;        /* reaper: lost after this; default 3 x interval */
    int requeue_after_s;            /* reaper: republish queued runs; default 600 */
    int reaper_interval_ms;         /* default 1000 */
    int drift_max_per_type;         /* drift checks active at once per worker type; default 2 */
    bool no_create_topics;          /* skip CreateTopics at start (mock cluster) */
    int topic_partitions;           /* of the topics it creates; 0 = 8 */
    const char *webhook_url;        /* where notifications are POSTed; NULL = none */
    const char *webhook_secret;     /* HMAC key signing them; NULL = unsigned */
    int webhook_max_attempts;       /* give up after this many failures; default 10 */
    long webhook_backoff_ms;        /* first retry delay, doubling; default 5000 */
    const char *policy_file;        /* authorization policy (policy.h); NULL = built-in */
    const char *auth_config;        /* JWT issuers (gw/jwt.h); NULL = API tokens only */
    const char *cors_origins;       /* comma-separated allowed origins, "*"; NULL = none (cors.h) */
    const char *hooks_config;       /* incoming webhooks (hooks.h); NULL = none */
    const char *instance_id;        /* stable id of this replica (static group
                                       membership); default "<hostname>:<port>" */
    const char *audit_signing_key;  /* Ed25519 PEM private key signing audit
                                       checkpoints (docs/audit.md); NULL = none */
    int audit_checkpoint_every_s;   /* sign the head at least this often; default 60 */
    int audit_checkpoint_every_n;   /* ... and every this many entries; default 1000 */
    bool audit_checkpoint_webhook;  /* also POST each checkpoint to webhook_url */
    const char *audit_verify_keys;  /* comma-separated PEM files of retired public
                                       keys, for GET /v1/admin/audit/verify */
    /* The web console (docs/console.md). */
    const char *web_dir;    /* built console (web/dist); NULL or missing = a page
                               saying how to build it */
    const char *public_url; /* how people reach this broker ("https://gangway.example");
                               links in notifications, the OIDC redirect URI */
    int session_ttl_s;      /* absolute session lifetime; default 43200 (12 h) */
    int session_idle_s;     /* idle timeout; default 1800 */
    bool trust_proxy;       /* X-Forwarded-Proto from the proxy in front counts */
    bool dev_login;         /* accept `gangway dev`'s one-time login codes */
};

/* At least the router's routes (router.c checks at compile time). */
#define GW_API_ROUTES_MAX 64

/* Counters shown on /metrics. Touched on the loop thread only. */
struct gw_broker_metrics {
    unsigned long long http_by_class[6]; /* index status/100 */
    /* Request to answer, by route (the index of router.c's table): from
     * the router's dispatch of the request to its answer handed to the
     * connection, errors included. */
    struct gw_histo http_duration[GW_API_ROUTES_MAX];
    unsigned long long runs_accepted;
    unsigned long long runs_replayed;
    unsigned long long runs_rejected;
    unsigned long long claims_granted;
    unsigned long long claims_refused;
    unsigned long long events_received;
    unsigned long long events_applied;
    unsigned long long events_deadlettered;
    unsigned long long events_apply_calls; /* gw_apply_events calls that committed */
    /* Calls that failed and go again: PostgreSQL unavailable for now, or a
     * database that does not match the broker (sink.c, config_fault). */
    unsigned long long events_apply_retried;
    unsigned long long events_apply_mismatch;
    unsigned long long outbox_published;
    unsigned long long outbox_failed;
    unsigned long long reaper_changed;
    unsigned long long webhooks_sent;
    unsigned long long webhooks_failed; /* attempts that failed and will be retried */
    unsigned long long webhooks_given_up;
    unsigned long long catalog_reloads_applied;
    unsigned long long catalog_reloads_failed;
    /* Refreshed by a periodic query. */
    long long outbox_pending;
    double outbox_oldest_age_s;
    long long runs_active[4];     /* accepted, pending_approval, queued, running */
    long long resources_drift[3]; /* in_sync, drifted, check_failed (decision 0067) */
    double stats_query_s;         /* how long its last refresh took in PostgreSQL */
    uint64_t stats_at_ms;         /* uv_now() when it last succeeded; 0 = never */
};

struct gw_relay;
struct gw_sink;
struct gw_reaper;
struct gw_auth;
struct gw_stream_hub;
struct gw_webhooks;
struct gw_policy_store;
struct gw_jwt_auth;
struct gw_catalog_reloader;
struct gw_checkpoint_keys;
struct gw_submit_batch;
struct gw_console;
struct gw_oidc;
struct gw_cors;
struct gw_hooks;

struct gw_broker {
    uv_loop_t *loop;
    struct gw_broker_options opts;
    struct gw_pg_pool *pg;
    struct gw_kafka_producer *producer;
    struct gw_http_server *http;
    struct gw_catalog *catalog;           /* the current one; requests reference theirs (api.h) */
    struct gw_catalog_reloader *catalogs; /* SIGHUP, API and NOTIFY reloads */
    struct gw_auth *auth;
    struct gw_relay *relay;
    struct gw_sink *sink;
    struct gw_reaper *reaper;
    struct gw_webhooks *webhooks;
    struct gw_stream_hub *streams;        /* live SSE streams (stream.h) */
    struct gw_policy_store *policy;       /* current authorization policy (policy.h) */
    struct gw_jwt_auth *jwt;              /* JWT bearer verification; NULL = not configured */
    struct gw_checkpoint_keys *audit_key; /* signs audit checkpoints; NULL = none (audit.c) */
    bool audit_checkpoint_busy;           /* a checkpoint round is in flight */
    bool audit_verify_busy;               /* GET /v1/admin/audit/verify's child runs */
    int audit_verify_pid;                 /* ... its pid, killed at shutdown; 0 = none */
    struct gw_submit_batch *submits;      /* group commit of accepts (submit_batch.h) */
    struct gw_console *console;           /* static console files (console.c) */
    struct gw_cors *cors;                 /* allowed browser origins; NULL = CORS off */
    struct gw_hooks *hooks;               /* incoming webhooks; NULL = none configured */
    struct gw_broker_metrics metrics;
    uv_timer_t stats_timer;
    bool stats_busy;
    uint64_t stats_sent_ms; /* uv_now() when the refresh in flight was sent */
    uint64_t stats_next_ms; /* no refresh before this uv_now() (broker.c) */
    bool fault_eager_drop;  /* GW_FAULTS=eager_drop (broker.c) */
    bool fault_eager_slow;  /* GW_FAULTS=eager_slow (broker.c) */
    bool closing;
    void (*on_closed)(void *arg);
    void *on_closed_arg;
};

/* Loads the action catalog, stores it in PostgreSQL (blocking: call before
 * the loop runs), connects and starts listening. */
struct gw_broker *gw_broker_create(uv_loop_t *loop, const struct gw_broker_options *opts,
                                   struct gw_error *err);

/* Stops accepting, lets in-flight work finish, closes everything; `done`
 * (may be NULL) runs once every handle is closed, then the broker is freed. */
void gw_broker_shutdown(struct gw_broker *b, void (*done)(void *arg), void *arg);

/* Creates the broker's topics and the run topic of every worker type of
 * `cat` (blocking admin calls: start-up, or the thread pool). */
int gw_broker_ensure_topics(const struct gw_broker *b, const struct gw_catalog *cat,
                            struct gw_error *err);

/* Full topic name: prefix + logical name, into buf. */
const char *gw_broker_topic(const struct gw_broker *b, const char *logical, char *buf, size_t cap);

/* How long after sending the gauges' refresh the next may be sent, when it
 * took `took_ms` in PostgreSQL: a hundred times that, at most ten minutes.
 * The timer still ticks every 5 s (broker.c). */
uint64_t gw_broker_stats_wait(uint64_t took_ms);

/* HTTP entry point (router.c). */
void gw_broker_handle(struct gw_http_req *req, void *arg);

/* Components (relay.c, sink.c, reaper.c, auth.c). Each create returns NULL
 * with err set; each destroy accepts NULL and is safe while work is in
 * flight (late callbacks are dropped). */
struct gw_relay *gw_relay_create(struct gw_broker *b, struct gw_error *err);
void gw_relay_destroy(struct gw_relay *r);
/* Publishes newly committed outbox rows now. Accepts NULL. */
void gw_relay_kick(struct gw_relay *r);
/* Produces the outbox rows a submit committed already leased (decision
 * 0076): columns first_col.. of `res` are outbox_id, topic, msg_key and
 * payload; rows whose outbox_id is NULL are skipped. Each row is deleted
 * once acknowledged; one not acknowledged is sent by a relay after its
 * lease. Accepts NULL (the rows then wait for their lease). */
void gw_relay_publish_leased(struct gw_relay *r, const PGresult *res, int first_col);
/* The outbox ids in column `col` of a submit's answer, leased for eager
 * publish but not produced (the commit took too long): their lease is lifted
 * so that the relay sends them now rather than when it ends. Best effort: a
 * failed update leaves them to the lease. */
void gw_relay_release_leased(struct gw_relay *r, const PGresult *res, int col);
/* The lease gw_submit_runs gives the rows it returns for that. */
#define GW_RELAY_LEASE "30 seconds"
struct gw_sink *gw_sink_create(struct gw_broker *b, struct gw_error *err);
void gw_sink_destroy(struct gw_sink *s);
/* True when the sink has had partitions for at least `for_ms` and is at most
 * `max_lag` messages behind: only then do stale heartbeats mean a lost
 * worker rather than events not applied yet. */
bool gw_sink_caught_up(const struct gw_sink *s, uint64_t for_ms, int64_t max_lag);
/* Milliseconds since the send time of the least recent own probe that came
 * back through this sink's apply queues: every event sent before then is in
 * PostgreSQL on every partition it owns. -1 when it cannot say (not fresh). */
int64_t gw_sink_fresh_age_ms(const struct gw_sink *s);
/* This replica's id in the consumer group, and how many partitions it holds
 * (reported to PostgreSQL so every reaper knows whether all sinks are current). */
const char *gw_sink_instance(const struct gw_sink *s);
int gw_sink_partitions(const struct gw_sink *s);
struct gw_reaper *gw_reaper_create(struct gw_broker *b, struct gw_error *err);
void gw_reaper_destroy(struct gw_reaper *r);
struct gw_webhooks *gw_webhooks_create(struct gw_broker *b, struct gw_error *err);
void gw_webhooks_destroy(struct gw_webhooks *wh);

#endif
