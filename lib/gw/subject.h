/*
 * Subjects: the one canonical form of "who" (decision 0031, docs/policy.md
 * "Subjects").
 *
 * A subject is a Backstage-style entity reference `kind:namespace/name`,
 * all lower case ASCII: `user:default/mia`, `user:ops/ana`,
 * `service:default/portal`, `plugin:default/scaffolder`. Backstage compares
 * entity refs case-insensitively, so lower case is the canonical spelling; a
 * bare name gets the default kind and namespace (`mia` ->
 * `user:default/mia`, `ops/mia` -> `user:ops/mia`, `service:portal` ->
 * `service:default/portal`). An e-mail address is a name like any other and
 * keeps its domain (`Mia@Example.com` -> `user:default/mia@example.com`),
 * so two providers' `mia` never meet by accident.
 *
 * gw_subject_canonical() is the ONLY place a subject is derived. Every way in
 * calls it when it authenticates a caller, and nothing compares subjects
 * that did not come out of it:
 *   - API tokens: gw_token_store_create (gangway token create, gangway dev)
 *     stores the canonical form; broker/auth.c normalises the stored subject
 *     again on every lookup, so rows written before canonical subjects still
 *     name the same person;
 *   - JWTs: lib/jwt/issuer.c, for direct tokens and for the on-behalf-of
 *     user of Backstage plugin tokens, after the deprecated
 *     `subject_prefix_strip`;
 *   - the policy: broker/policy.c refuses a binding that is not canonical
 *     (it could never match), naming the form it probably meant;
 *   - future ways in (console sessions, the Port bridge) must call it on the
 *     identity they receive before it becomes a principal.
 * PostgreSQL's twin for rows written before this rule is gw_subject_key
 * (sql/functions/gw_subject_key.sql), used by the separation-of-duties
 * checks.
 *
 * Refused, with a message that never echoes the input: empty, longer than
 * GW_SUBJECT_MAX - 1 bytes, any space or control character (no trimming),
 * any byte outside ASCII (no Unicode case folding, so no look-alike can
 * become someone else), characters outside the sets below, an empty part,
 * more than one ':' or '/', and kind `group` (a group is a team, not a
 * subject).
 *   kind       a letter, then letters, digits, '-'; at most 63
 *   namespace  letters, digits, '-', '_', '.'; at most 63
 *   name       letters, digits, '-', '_', '.', '@', '+', '|'
 *
 * Threading: none; pure functions.
 */
#ifndef GW_SUBJECT_H
#define GW_SUBJECT_H

#include <stddef.h>

#include "gw/error.h"

/* Bytes of the longest canonical subject, NUL included. */
#define GW_SUBJECT_MAX 256

/* What a subject without a kind or namespace gets. NULL members (or a NULL
 * struct) mean "user" and "default". Both must themselves be valid parts. */
struct gw_subject_defaults {
    const char *kind;
    const char *ns;
};

enum {
    /* Policy bindings: '*' and '?' are allowed in every part (globs). */
    GW_SUBJECT_PATTERN = 1u << 0,
};

/* Writes the canonical form of `in` to `out` (GW_SUBJECT_MAX bytes).
 * Returns 0, or GW_EINVAL with err->message saying what is wrong (never
 * quoting `in`). `out` is an empty string on error. `in` may be NULL. */
int gw_subject_canonical(const char *in, const struct gw_subject_defaults *def, unsigned flags,
                         char out[GW_SUBJECT_MAX], struct gw_error *err);

/* Teams: the other half of an identity, made canonical the same way and
 * in the same places (decision 0031). A team is the short form of a
 * Backstage group ref: "payments", "ops/sre". gw_team_canonical lowers
 * A-Z, drops a leading "group:" kind and "default/" namespace
 * ("Group:Default/SRE" -> "sre", "group:ops/sre" -> "ops/sre") and keeps
 * every other byte as it is (OIDC groups may hold spaces or non-ASCII
 * letters; those are compared byte for byte, never case-folded). Refused:
 * empty, longer than GW_TEAM_MAX - 1 bytes, a control character, a leading
 * or trailing space. Same contract as gw_subject_canonical. */
#define GW_TEAM_MAX 129

int gw_team_canonical(const char *in, char out[GW_TEAM_MAX], struct gw_error *err);

#endif
