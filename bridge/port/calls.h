/*
 * The HTTP calls of the Port bridge: to Port's API (with its access token)
 * and to Gangway's (with the bridge's own token), each retried with
 * exponential backoff on a transport error, 429 or 5xx, and a Port call
 * once more with a fresh token on 401.
 *
 * Port's token: POST <port>/v1/auth/access_token {"clientId","clientSecret"}
 * -> {"accessToken", "expiresIn"}; one fetch at a time, the calls that need
 * it wait for it; renewed a minute before it expires.
 *
 * Callbacks: if pb_call() returns < 0, `done` is never called; otherwise
 * exactly once, from the loop, with the final answer (status 0 and err set
 * when no answer came: attempts exhausted, or GW_ECLOSED at shutdown).
 * Threading: loop thread only.
 */
#ifndef GW_BRIDGE_PORT_CALLS_H
#define GW_BRIDGE_PORT_CALLS_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "gw/error.h"

struct pb_calls;

struct pb_calls_options {
    const char *port_url;  /* e.g. https://api.getport.io */
    const char *client_id; /* Port credentials */
    const char *client_secret;
    const char *gangway_url;   /* the broker's API */
    const char *gangway_token; /* the bridge's API token (role act_on_behalf) */
    long backoff_ms;           /* first retry delay, doubling; 0 = 500 */
    long backoff_max_ms;       /* 0 = 30000 */
};

struct pb_calls *pb_calls_create(uv_loop_t *loop, const struct pb_calls_options *o,
                                 struct gw_error *err);
/* Cancels every call (their `done` gets GW_ECLOSED) and frees. Accepts NULL. */
void pb_calls_destroy(struct pb_calls *c);

enum pb_target { PB_PORT, PB_GANGWAY };

struct pb_answer {
    long status;          /* 0 when there was none */
    json_t *json;         /* the body parsed, or NULL (borrowed) */
    const char *body;     /* the raw body ("" when none) */
    const char *replayed; /* Gangway's Idempotent-Replayed header, or NULL */
};

typedef void (*pb_done_cb)(void *arg, const struct pb_answer *a, const struct gw_error *err);

struct pb_call_options {
    enum pb_target target;
    const char *method;
    const char *path;           /* appended to the target's base URL */
    const char *body;           /* JSON or NULL; copied */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; copied */
    int max_attempts;           /* 0 = until it gets an answer that is not retried */
};

int pb_call(struct pb_calls *c, const struct pb_call_options *o, pb_done_cb done, void *arg,
            struct gw_error *err);

struct pb_calls_stats {
    unsigned long long retries, token_fetches;
};
void pb_calls_stats(const struct pb_calls *c, struct pb_calls_stats *out);

#endif
