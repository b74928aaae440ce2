/*
 * Error reporting shared by every Gangway module.
 *
 * Functions return 0 on success and a negative GW_E* code on failure. When the
 * caller passes a non-NULL `struct gw_error *err`, the callee fills it with the
 * code, whether retrying may help, and a human-readable message. Passing NULL is
 * always allowed.
 */
#ifndef GW_ERROR_H
#define GW_ERROR_H

#include <stdbool.h>
#include <stddef.h>

enum gw_errc {
    GW_OK = 0,
    GW_EINVAL = -1,    /* bad argument or bad input */
    GW_ENOMEM = -2,    /* allocation failed */
    GW_EIO = -3,       /* I/O or system call failed */
    GW_ENOTFOUND = -4, /* the thing asked for does not exist */
    GW_ECONFLICT = -5, /* state does not allow it (already claimed, ended...) */
    GW_ETIMEDOUT = -6, /* an operation ran out of time */
    GW_EUNAVAIL = -7,  /* a dependency (PostgreSQL, Kafka) is unavailable */
    GW_EPARSE = -8,    /* malformed data (JSON, HTTP, config) */
    GW_ECLOSED = -9,   /* the object is shutting down */
    GW_ELIMIT = -10,   /* a size or count limit was exceeded */
    GW_EAUTH = -11,    /* authentication or authorization failed */
};

struct gw_error {
    int code;
    bool retriable;
    char message[512];
    /* PostgreSQL's SQLSTATE when a statement failed (lib/pg), else "". */
    char sqlstate[6];
};

/* Fills `err` (if non-NULL) and returns `code`, so callers can write
 * `return gw_error_set(err, GW_EINVAL, false, "bad %s", what);`. */
int gw_error_set(struct gw_error *err, int code, bool retriable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Resets `err` to "no error". Accepts NULL. */
void gw_error_clear(struct gw_error *err);

/* A short stable name for a code ("invalid", "not_found", ...). */
const char *gw_errc_name(int code);

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#endif
