/*
 * The claim call of docs/worker-protocol.md: POST
 * {broker_url}/internal/v1/runs/{run_id}/claim with the worker token, on
 * the library's non-blocking HTTP client (lib/gw/http_client.h), one per
 * claim, on the caller's loop.
 *
 * Retries by itself with exponential backoff (100 ms .. 5 s) on connection
 * errors, 5xx, 401 and 403 (the latter logged loudly: a configuration error);
 * the callback only sees a resolved claim. Loop thread only.
 */
#ifndef GW_WORKERS_CLAIM_H
#define GW_WORKERS_CLAIM_H

#include <jansson.h>
#include <uv.h>

#include "gw/error.h"
#include "gw/http_client.h"

enum gw_claim_result {
    GW_CLAIM_GRANTED,     /* 200: reply holds the claim document */
    GW_CLAIM_REFUSED,     /* 409 claim_refused: detail says why */
    GW_CLAIM_NOT_FOUND,   /* 404 */
    GW_CLAIM_REJECTED,    /* another 4xx: the request itself is wrong */
    GW_CLAIM_ABANDONED,   /* gw_claim_abandon() stopped the retries */
    GW_CLAIM_UNSUPPORTED, /* a batch only: the broker has no batch endpoint
                             (404 on it); claim these runs one by one */
};

struct gw_claim;

/* `reply` (GRANTED: the parsed body) is borrowed for the call; `detail` is a
 * short reason for the other results. The claim is freed after the callback
 * returns. */
typedef void (*gw_claim_cb)(void *arg, enum gw_claim_result result, json_t *reply,
                            const char *detail);

struct gw_claim_params {
    const char *broker_url; /* e.g. http://127.0.0.1:8080 */
    const char *token;      /* bearer token, may be NULL */
    const char *run_id;
    int attempt;
    const char *worker_id;
    const char *worker_type;
    int max_backoff_ms; /* 0 = 5000 */
    /* The worker's shared client (borrowed; it must outlive the claim), so
     * claims reuse one keep-alive connection; NULL = a client per claim. */
    struct gw_http_client *http;
};

/* Once per process, before any thread is started (curl_global_init, through
 * gw_http_client_global_init). */
int gw_claim_global_init(struct gw_error *err);

/* Starts the claim; strings are copied. If it returns non-NULL, `cb` is
 * called exactly once later; if NULL, never. */
struct gw_claim *gw_claim_start(uv_loop_t *loop, const struct gw_claim_params *p, gw_claim_cb cb,
                                void *arg, struct gw_error *err);

/* A batch: several runs claimed in one call to POST /internal/v1/claims
 * (docs/decisions/0053), each with its own callback, called exactly once
 * with what the single endpoint would have answered for that run (`reply`
 * borrowed: the claim document when GRANTED). Retries (5xx, connection
 * errors, 401/403) apply to the whole batch. `p->run_id` and `p->attempt`
 * are ignored. Returns NULL with `err` set (and calls nothing) or the
 * claim, freed after the last callback; gw_claim_abandon() works on it as
 * on a single claim. */
struct gw_claim_batch_item {
    const char *run_id;
    int attempt;
    const char *worker_id;
    gw_claim_cb cb;
    void *arg;
};
struct gw_claim *gw_claim_start_batch(uv_loop_t *loop, const struct gw_claim_params *p,
                                      const struct gw_claim_batch_item *items, size_t n,
                                      struct gw_error *err);

/* Stops retrying. A request already on the wire still resolves normally
 * (a granted claim must not be lost); otherwise the callback gets ABANDONED,
 * possibly before this function returns. */
void gw_claim_abandon(struct gw_claim *c);

/* Backoff before retry number `n` (1-based): 100 ms doubling, capped. */
int gw_claim_backoff_ms(int n, int max_ms);

#endif
