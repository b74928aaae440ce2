/*
 * Reading signed audit checkpoints from where they were published, and
 * checking a chain against them (`gangway audit verify --checkpoints`,
 * `--archive`; docs/audit.md).
 *
 * Ownership: a cp_set owns its arrays; cp_set_free accepts a zeroed set.
 * Threading: none; blocking I/O (a CLI).
 */
#ifndef GW_CLI_AUDIT_CHECKPOINTS_H
#define GW_CLI_AUDIT_CHECKPOINTS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "gw/checkpoint.h"

struct cp_set {
    struct gw_checkpoint *v;
    char (*cph)[65];   /* each one's checkpoint hash */
    const char **have; /* the chain's hash at v[i].seq, filled by the caller; NULL = none */
    size_t n, cap;
    size_t duplicates; /* dropped as the same checkpoint read twice */
};

/* What went wrong, for the report (kind as in docs/audit.md). */
struct cp_finding {
    const char *kind;
    long long seq;
    char message[512];
};

void cp_set_free(struct cp_set *s);

/* Appends the checkpoints in `text` (JSON lines, or one JSON array) to s.
 * `origin` names the source in messages. Returns 0, or -1 with f set
 * (kind "checkpoint_malformed", the line and the member at fault). */
int cp_set_parse(struct cp_set *s, const char *text, const char *origin, struct cp_finding *f);

/* Appends one checkpoint object (`line` numbers it in messages). */
int cp_set_add_json(struct cp_set *s, const json_t *obj, const char *origin, size_t line,
                    struct cp_finding *f);

/* Reads checkpoints from `src`: "kafka" (the topic <prefix>gangway.audit.checkpoints
 * from the beginning, every partition, until its end; kafka_extra: NULL or
 * "k=v" librdkafka properties, SASL/TLS), an http(s):// URL
 * (JSON lines or an array), or a file of JSON lines. Returns 0; -1 with f
 * set for malformed content; -3 with a message on stderr when the source
 * cannot be read. */
int cp_set_read(struct cp_set *s, const char *src, const char *kafka,
                const char *const *kafka_extra, const char *prefix, struct cp_finding *f);

/* Checks every signature against `keys` (a finding "checkpoint_bad_signature"
 * or "checkpoint_unknown_key"), then drops duplicates and sorts by seq.
 * Returns 0 or -1 with f set. */
int cp_set_verify_signatures(struct cp_set *s, const struct gw_checkpoint_keys *keys,
                             struct cp_finding *f);

/* With s->have filled for seqs in (anchor_seq, head_seq]: the links between
 * consecutive checkpoints ("checkpoint_missing"), a checkpoint beyond the
 * head ("tail_truncated"), one at the anchor whose hash is not the anchor's
 * or one whose hash is not the chain's at its seq ("checkpoint_mismatch").
 * *pruned counts checkpoints below the anchor (not comparable). Returns 0
 * or -1 with f set. */
int cp_set_check(const struct cp_set *s, long long anchor_seq, const char *anchor_hash,
                 long long head_seq, size_t *pruned, struct cp_finding *f);

/* The audit entry hash of decision 0014 (cmd_audit.c): sha256 hex of the
 * canonical encoding of the entry (id, at, actor, verb, object, detail: the
 * raw column texts, detail NULL for SQL NULL) at seq after prev. */
struct audit_content {
    const char *id, *at, *actor, *verb, *object, *detail;
};
void audit_entry_hash(const char *seq, const struct audit_content *c, const char *prev,
                      char out[65]);

/* `gangway audit archive`, `gangway audit prune` and `gangway audit verify
 * --archive` (cmd_audit_archive.c); same exit codes as cmd_audit.c. */
int audit_archive(int argc, char **argv);
int audit_prune(int argc, char **argv);
int audit_verify_archive(const char *path, const struct gw_checkpoint_keys *keys, bool json);

#endif
