/* Reading and checking signed audit checkpoints (audit_checkpoints.h). */
#include "audit_checkpoints.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/mem.h"
#include "http_client.h"

static int finding(struct cp_finding *f, const char *kind, long long seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int finding(struct cp_finding *f, const char *kind, long long seq, const char *fmt, ...)
{
    va_list ap;
    f->kind = kind;
    f->seq = seq;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    return -1;
}

void cp_set_free(struct cp_set *s)
{
    free(s->v);
    free(s->cph);
    free(s->have);
    memset(s, 0, sizeof(*s));
}

static int push(struct cp_set *s, const struct gw_checkpoint *cp)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct gw_checkpoint *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *cp;
    return 0;
}

int cp_set_add_json(struct cp_set *s, const json_t *obj, const char *origin, size_t line,
                    struct cp_finding *f)
{
    struct gw_checkpoint cp;
    struct gw_error err;
    if (gw_checkpoint_from_json(obj, &cp, &err) < 0)
        return finding(f, "checkpoint_malformed", 0, "%s, checkpoint %zu: %s", origin, line,
                       err.message);
    if (push(s, &cp) < 0)
        return finding(f, "checkpoint_malformed", 0, "out of memory");
    return 0;
}

int cp_set_parse(struct cp_set *s, const char *text, const char *origin, struct cp_finding *f)
{
    json_error_t jerr;
    const char *p = text;
    size_t line = 0;

    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    if (*p == '[') {
        json_t *arr = json_loads(p, 0, &jerr);
        size_t i;
        json_t *item;
        if (!json_is_array(arr)) {
            json_decref(arr);
            return finding(f, "checkpoint_malformed", 0, "%s: not JSON: %s", origin, jerr.text);
        }
        json_array_foreach(arr, i, item)
        {
            if (cp_set_add_json(s, item, origin, i + 1, f) < 0) {
                json_decref(arr);
                return -1;
            }
        }
        json_decref(arr);
        return 0;
    }
    while (*p != '\0') {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        line++;
        if (strspn(p, " \t\r") < len) {
            json_t *obj = json_loadb(p, len, 0, &jerr);
            if (obj == NULL)
                return finding(f, "checkpoint_malformed", 0, "%s, line %zu: not JSON: %s", origin,
                               line, jerr.text);
            int rc = cp_set_add_json(s, obj, origin, line, f);
            json_decref(obj);
            if (rc < 0)
                return -1;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return 0;
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (fp == NULL)
        return NULL;
    for (;;) {
        if (gw_grow(&buf, &cap, len + 65536 + 1, 65536) < 0) {
            free(buf);
            fclose(fp);
            return NULL;
        }
        size_t n = fread(buf + len, 1, 65536, fp);
        len += n;
        if (n == 0)
            break;
    }
    fclose(fp);
    buf[len] = '\0';
    return buf;
}

/* Every message of the topic, every partition, from the beginning to the end
 * it had when we looked (high watermarks), as JSON lines into *out. */
static int read_kafka(const char *brokers, const char *const *extra, const char *topic, char **out)
{
    char errstr[512];
    struct buf {
        char *p;
        size_t len, cap;
    } b = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "group.id", "gangway-audit-verify", errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "gangway audit: kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        char kv[1024];
        char *eq;
        snprintf(kv, sizeof(kv), "%s", extra[i]);
        eq = strchr(kv, '=');
        if (eq == NULL) {
            fprintf(stderr, "gangway audit: kafka property '%s' is not K=V\n", extra[i]);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
        *eq = '\0';
        if (rd_kafka_conf_set(conf, kv, eq + 1, errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "gangway audit: kafka: %s\n", errstr);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "gangway audit: kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 15000);
    int rc = -1;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err != 0) {
        fprintf(stderr, "gangway audit: kafka: cannot read topic %s: %s\n", topic,
                rd_kafka_err2str(e != 0 ? e : md->topics[0].err));
        goto done;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(parts);
    int64_t *high = calloc((size_t)parts + 1, sizeof(*high));
    int open = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, md->topics[0].partitions[p].id, &lo, &hi,
                                             15000) != 0) {
            fprintf(stderr, "gangway audit: kafka: no offsets for %s[%d]\n", topic, p);
            rd_kafka_topic_partition_list_destroy(assign);
            free(high);
            goto done;
        }
        high[p] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(assign, topic, md->topics[0].partitions[p].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
            open++;
        }
    }
    rd_kafka_assign(rk, assign);
    rd_kafka_topic_partition_list_destroy(assign);
    rc = 0;
    while (open > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 15000);
        if (m == NULL) {
            fprintf(stderr, "gangway audit: kafka: timed out reading %s\n", topic);
            rc = -1;
            break;
        }
        if (m->err == 0 && m->partition >= 0 && m->partition < parts) {
            if (gw_grow(&b.p, &b.cap, b.len + m->len + 2, 4096) < 0) {
                rd_kafka_message_destroy(m);
                rc = -1;
                break;
            }
            memcpy(b.p + b.len, m->payload, m->len);
            b.len += m->len;
            b.p[b.len++] = '\n';
            b.p[b.len] = '\0';
            if (m->offset + 1 >= high[m->partition])
                open--;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "gangway audit: kafka: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            rc = -1;
            break;
        }
        rd_kafka_message_destroy(m);
    }
    free(high);
done:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (rc == 0)
        *out = b.p != NULL ? b.p : strdup("");
    else
        free(b.p);
    return *out != NULL && rc == 0 ? 0 : -1;
}

int cp_set_read(struct cp_set *s, const char *src, const char *kafka,
                const char *const *kafka_extra, const char *prefix, struct cp_finding *f)
{
    char *text = NULL;
    char origin[512];
    if (strcmp(src, "kafka") == 0) {
        char topic[256];
        if (kafka == NULL) {
            fputs("gangway audit: --checkpoints kafka needs --kafka or GW_KAFKA_BROKERS\n", stderr);
            return -3;
        }
        snprintf(topic, sizeof(topic), "%sgangway.audit.checkpoints", prefix ? prefix : "");
        snprintf(origin, sizeof(origin), "kafka topic %s", topic);
        if (read_kafka(kafka, kafka_extra, topic, &text) < 0)
            return -3;
    } else if (strncmp(src, "http://", 7) == 0 || strncmp(src, "https://", 8) == 0) {
        snprintf(origin, sizeof(origin), "%s", src);
        int status = gw_http_call("GET", src, getenv("GW_TOKEN"), NULL, 30000, &text);
        if (status != 200) {
            fprintf(stderr, "gangway audit: GET %s: %s %s\n", src,
                    status < 0 ? "failed:" : "status", text != NULL ? text : "");
            free(text);
            return -3;
        }
    } else {
        snprintf(origin, sizeof(origin), "%s", src);
        text = read_file(src);
        if (text == NULL) {
            fprintf(stderr, "gangway audit: %s: cannot read\n", src);
            return -3;
        }
    }
    int rc = cp_set_parse(s, text != NULL ? text : "", origin, f);
    free(text);
    return rc;
}

static int by_seq(const void *a, const void *b)
{
    const struct gw_checkpoint *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return strcmp(x->time, y->time);
}

int cp_set_verify_signatures(struct cp_set *s, const struct gw_checkpoint_keys *keys,
                             struct cp_finding *f)
{
    struct gw_error err;
    for (size_t i = 0; i < s->n; i++) {
        int rc = gw_checkpoint_verify(keys, &s->v[i], &err);
        if (rc == GW_ENOTFOUND)
            return finding(f, "checkpoint_unknown_key", s->v[i].seq,
                           "the checkpoint at seq %lld (%s) is signed with key %s, which is "
                           "not among the --public-key keys",
                           s->v[i].seq, s->v[i].time, s->v[i].key_id);
        if (rc < 0)
            return finding(f, "checkpoint_bad_signature", s->v[i].seq,
                           "the checkpoint at seq %lld (%s): %s", s->v[i].seq, s->v[i].time,
                           err.message);
    }
    qsort(s->v, s->n, sizeof(*s->v), by_seq);
    free(s->cph);
    free(s->have);
    s->cph = calloc(s->n + 1, sizeof(*s->cph));
    s->have = calloc(s->n + 1, sizeof(*s->have));
    if (s->cph == NULL || s->have == NULL)
        return finding(f, "checkpoint_malformed", 0, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        char h[65];
        gw_checkpoint_hash(&s->v[i], h, NULL);
        bool dup = false;
        for (size_t j = k; j-- > 0 && s->v[j].seq == s->v[i].seq;)
            dup = dup || strcmp(s->cph[j], h) == 0;
        if (dup) {
            s->duplicates++;
            continue;
        }
        s->v[k] = s->v[i];
        memcpy(s->cph[k], h, sizeof(h));
        k++;
    }
    s->n = k;
    return 0;
}

int cp_set_check(const struct cp_set *s, long long anchor_seq, const char *anchor_hash,
                 long long head_seq, size_t *pruned, struct cp_finding *f)
{
    *pruned = 0;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->v[i].prev, s->cph[i - 1]) != 0)
            return finding(f, "checkpoint_missing", s->v[i].seq,
                           "the checkpoint at seq %lld (%s) does not link to the one before it "
                           "(seq %lld, %s): a checkpoint between them was removed or forged",
                           s->v[i].seq, s->v[i].time, s->v[i - 1].seq, s->v[i - 1].time);
    }
    if (s->n > 0 && s->v[s->n - 1].seq > head_seq) {
        const struct gw_checkpoint *last = &s->v[s->n - 1];
        return finding(f, "tail_truncated", head_seq + 1,
                       "a checkpoint at %s vouches for seq %lld (hash %.12s...), but the chain "
                       "ends at seq %lld: %lld sealed entries are gone",
                       last->time, last->seq, last->hash, head_seq, last->seq - head_seq);
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct gw_checkpoint *cp = &s->v[i];
        const char *have = cp->seq == anchor_seq ? anchor_hash : s->have[i];
        if (cp->seq < anchor_seq) {
            (*pruned)++;
            continue;
        }
        if (have == NULL || strcmp(have, cp->hash) != 0)
            return finding(f, "checkpoint_mismatch", cp->seq,
                           "the checkpoint at %s says seq %lld has hash %.12s..., the chain "
                           "now has %.12s...: the chain was rewritten",
                           cp->time, cp->seq, cp->hash, have != NULL ? have : "(nothing)");
    }
    return 0;
}
