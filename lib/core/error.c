#include "gw/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int gw_error_set(struct gw_error *err, int code, bool retriable, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        err->retriable = retriable;
        err->sqlstate[0] = '\0';
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

void gw_error_clear(struct gw_error *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->retriable = false;
    err->message[0] = '\0';
    err->sqlstate[0] = '\0';
}

const char *gw_errc_name(int code)
{
    switch (code) {
    case GW_OK:
        return "ok";
    case GW_EINVAL:
        return "invalid";
    case GW_ENOMEM:
        return "out_of_memory";
    case GW_EIO:
        return "io_error";
    case GW_ENOTFOUND:
        return "not_found";
    case GW_ECONFLICT:
        return "conflict";
    case GW_ETIMEDOUT:
        return "timed_out";
    case GW_EUNAVAIL:
        return "unavailable";
    case GW_EPARSE:
        return "parse_error";
    case GW_ECLOSED:
        return "closed";
    case GW_ELIMIT:
        return "limit_exceeded";
    case GW_EAUTH:
        return "unauthorized";
    }
    return "unknown";
}
