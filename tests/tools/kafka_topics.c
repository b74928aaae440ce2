/*
 * gw-test-topics: lists or deletes the topics whose names start with a
 * prefix, for the integration harness. Every test Stack gets its own topic
 * prefix; without deleting its topics at the end, a long-lived local Kafka
 * gathers tens of thousands of partitions (each maps index files) and
 * eventually fails all its log directories. Not part of the product: the
 * Admin API here blocks.
 *
 *   gw-test-topics BROKERS list [PREFIX]
 *   gw-test-topics BROKERS delete PREFIX
 *   gw-test-topics BROKERS backlog TOPIC GROUP   (prints the group's backlog)
 *   gw-test-topics BROKERS skip TOPIC GROUP      (commits the group's offsets
 *       at the end of every partition, as an operator's offset reset does:
 *       what was waiting is never consumed; the group must have no member)
 *
 * Exit 0 on success (deleting nothing is a success), 1 on a Kafka error,
 * 2 on a usage error.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/error.h"
#include "gw/kafka.h"

#define TIMEOUT_MS 15000

static int usage(void)
{
    fputs("usage: gw-test-topics BROKERS list [PREFIX] | delete PREFIX | backlog TOPIC GROUP"
          " | skip TOPIC GROUP\n",
          stderr);
    return 2;
}

/* The names of the topics starting with `prefix`, NULL-terminated; NULL on
 * a metadata error (printed). */
static char **topics_with(const char *brokers, const char *prefix, size_t *n)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    char **out = NULL;

    *n = 0;
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "gw-test-topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "gw-test-topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    e = rd_kafka_metadata(rk, 1, NULL, &md, TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "gw-test-topics: metadata: %s\n", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    out = calloc((size_t)md->topic_cnt + 1, sizeof(*out));
    for (int i = 0; out != NULL && i < md->topic_cnt; i++) {
        const char *t = md->topics[i].topic;
        if (strncmp(t, prefix, strlen(prefix)) == 0 && (out[*n] = strdup(t)) != NULL)
            (*n)++;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    if (out == NULL)
        fputs("gw-test-topics: out of memory\n", stderr);
    return out;
}

/* Commits, for `group`, the high watermark of every partition of `topic`. */
static int skip(const char *brokers, const char *topic, const char *group)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t e;
    int rc = 0;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "gw-test-topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "gw-test-topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    e = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err != 0) {
        fprintf(stderr, "gw-test-topics: metadata of %s: %s\n", topic,
                rd_kafka_err2str(e != 0 ? e : md->topics[0].err));
        rc = 1;
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt && rc == 0; i++) {
        int64_t lo, hi;
        int32_t p = md->topics[0].partitions[i].id;
        e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "gw-test-topics: watermarks: %s\n", rd_kafka_err2str(e));
            rc = 1;
        }
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = hi;
    }
    if (rc == 0 && (e = rd_kafka_commit(rk, parts, 0)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "gw-test-topics: commit: %s\n", rd_kafka_err2str(e));
        rc = 1;
    }
    rd_kafka_topic_partition_list_destroy(parts);
out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    const char *prefix;
    char **topics;
    size_t n;
    int rc = 0;

    if (argc == 5 && strcmp(argv[2], "backlog") == 0) {
        struct gw_kafka_config cfg = {.brokers = argv[1]};
        struct gw_error err;
        int64_t backlog;
        if (gw_kafka_group_backlog(&cfg, argv[3], argv[4], TIMEOUT_MS, &backlog, &err) != 0) {
            fprintf(stderr, "gw-test-topics: backlog: %s\n", err.message);
            return 1;
        }
        printf("%lld\n", (long long)backlog);
        return 0;
    }
    if (argc == 5 && strcmp(argv[2], "skip") == 0)
        return skip(argv[1], argv[3], argv[4]);
    if (argc < 3 || (strcmp(argv[2], "list") != 0 && strcmp(argv[2], "delete") != 0))
        return usage();
    prefix = argc > 3 ? argv[3] : "";
    /* Deleting every topic by mistake is one empty argument away. */
    if (strcmp(argv[2], "delete") == 0 && prefix[0] == '\0')
        return usage();
    topics = topics_with(argv[1], prefix, &n);
    if (topics == NULL)
        return 1;
    if (strcmp(argv[2], "list") == 0) {
        for (size_t i = 0; i < n; i++)
            puts(topics[i]);
    } else if (n > 0) {
        struct gw_kafka_config cfg = {.brokers = argv[1]};
        struct gw_error err;
        if (gw_kafka_delete_topics(&cfg, (const char *const *)topics, TIMEOUT_MS, &err) != 0) {
            fprintf(stderr, "gw-test-topics: delete: %s\n", err.message);
            rc = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(topics[i]);
    free(topics);
    return rc;
}
