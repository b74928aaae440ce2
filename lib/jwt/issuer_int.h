/* Internals of the issuer configuration (issuer.c) and key fetching (fetch.c). */
#ifndef GW_JWT_ISSUER_INT_H
#define GW_JWT_ISSUER_INT_H

#include "gw/http_client.h"
#include "gw/jwt.h"

struct gw__jwt_waiter {
    struct gw__jwt_waiter *next;
    int forced; /* verify as this issuer (an OIDC ID token), -1: chosen by typ/iss */
    gw_jwt_auth_cb cb;
    void *arg;
    size_t len;
    char token[]; /* a copy: the caller's buffer may not outlive the wait */
};

/* Where an issuer's keys come from. Loop thread only. */
struct gw__jwt_key_source {
    struct gw_jwt_auth *auth;
    char *file; /* one of file/url */
    char *url;
    struct gw_jwks *keys; /* current set; NULL until the first fetch succeeds */
    int refresh_s;
    int min_refresh_s;
    uint64_t last_fetch_ms; /* loop time when the last fetch started */
    uint64_t next_due_ms;   /* loop time of the next periodic fetch */
    bool fetched_once;
    bool fetching;
    struct gw__jwt_waiter *waiters;
    size_t nwaiters;
};

struct gw__jwt_issuer {
    char *name;
    char *iss;      /* expected "iss" or NULL */
    char *audience; /* expected "aud" or NULL */
    char **typs;    /* accepted header "typ" values; none: any */
    size_t ntyps;
    unsigned algs;
    struct gw__jwt_key_source src;
    char *subject_claim;
    char *subject_prefix;     /* deprecated "subject_prefix_strip", applied before */
    char *subject_kind;       /* the canonical form's default kind ("user") */
    char *subject_namespace;  /* ... and namespace ("default") */
    char *teams_claim;        /* NULL: teams only from teams_from */
    char *teams_entity_kind;  /* keep only entity refs of this kind ("group") */
    json_t *teams_from;       /* object subject -> [teams], or NULL */
    json_t *allowed_subjects; /* array of accepted raw subjects, or NULL */
    int obo;                  /* index of the issuer that verifies "obo", or -1 */
    bool obo_required;
    bool direct; /* accepted as a bearer token on its own */
    bool require_iat;
    char *delegate_prefix;     /* e.g. "plugin:" */
    struct gw__jwt_oidc *oidc; /* the broker signs people in here (oidc.c); NULL = not */
};

struct gw_jwt_auth {
    uv_loop_t *loop;
    struct gw__jwt_issuer *issuers;
    size_t n;
    int leeway_s;
    uv_timer_t timer;
    bool started;
    bool closing;
    bool timer_open;
    struct gw_http_client *http; /* for "jwks_url" sets; NULL when none */
    bool http_open;              /* until the client's close callback */
    int fetches;                 /* requests in flight */
};

/* oidc.c: the OIDC client settings of an issuer entry ("client_id" and
 * the rest, docs/console.md); 0 and is->oidc NULL when it has none. */
struct gw__jwt_oidc;
bool gw__jwt_oidc_wanted(const json_t *o);
int gw__jwt_oidc_parse(struct gw__jwt_issuer *is, const json_t *o, const char *where,
                       struct gw_error *err);
void gw__jwt_oidc_free(struct gw__jwt_oidc *oidc);
/* Starts discovery of every OIDC issuer not discovered yet (start, tick). */
void gw__jwt_oidc_tick(struct gw_jwt_auth *a);
/* Ends discovery waiters with GW_ECLOSED (destroy). */
void gw__jwt_oidc_close(struct gw_jwt_auth *a);

/* fetch.c */
/* Creates a->http when needed; false when it cannot. */
bool gw__jwt_http(struct gw_jwt_auth *a, struct gw_error *err);
void gw__jwt_source_fetch(struct gw__jwt_key_source *src);
void gw__jwt_auth_maybe_free(struct gw_jwt_auth *a);
/* issuer.c: frees the issuer entries. */
void gw__jwt_auth_free_issuers(struct gw_jwt_auth *a);
/* issuer.c: re-runs a waiting verification after its set was refreshed. */
void gw__jwt_waiter_resume(struct gw_jwt_auth *a, struct gw__jwt_waiter *w, bool closing);

#endif
