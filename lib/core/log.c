#include "gw/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once in main() before threads start; read-only afterwards. */
static const char *log_component = "gangway";
static enum gw_log_level log_min = GW_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void gw_log_init(const char *component, enum gw_log_level min_level)
{
    log_component = component;
    log_min = min_level;
}

enum gw_log_level gw_log_level_parse(const char *s)
{
    if (s == NULL)
        return GW_LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return (enum gw_log_level)i;
    return GW_LOG_INFO;
}

/* Appends `s` JSON-escaped to buf at *pos, never past cap-1. */
static void put_escaped(char *buf, size_t cap, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p && *pos + 7 < cap; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = (char)c;
        } else if (c == '\n') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = 'n';
        } else if (c < 0x20) {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = 'u';
            buf[(*pos)++] = '0';
            buf[(*pos)++] = '0';
            buf[(*pos)++] = hex[c >> 4];
            buf[(*pos)++] = hex[c & 15];
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
}

static void put_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n >= cap)
        n = cap - *pos - 1;
    memcpy(buf + *pos, s, n);
    *pos += n;
}

void gw_log(enum gw_log_level level, const char *run_id, const char *fmt, ...)
{
    char msg[2048];
    char line[4096];
    char ts[96];
    size_t pos = 0;
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

    put_raw(line, sizeof(line), &pos, "{\"ts\":\"");
    put_raw(line, sizeof(line), &pos, ts);
    put_raw(line, sizeof(line), &pos, "\",\"level\":\"");
    put_raw(line, sizeof(line), &pos, level_names[level]);
    put_raw(line, sizeof(line), &pos, "\",\"component\":\"");
    put_escaped(line, sizeof(line), &pos, log_component);
    if (run_id != NULL) {
        put_raw(line, sizeof(line), &pos, "\",\"run_id\":\"");
        put_escaped(line, sizeof(line), &pos, run_id);
    }
    put_raw(line, sizeof(line), &pos, "\",\"msg\":\"");
    put_escaped(line, sizeof(line), &pos, msg);
    put_raw(line, sizeof(line), &pos, "\"}\n");
    /* One write(2) per line: lines from several threads never interleave. */
    ssize_t rc = write(STDERR_FILENO, line, pos);
    (void)rc;
}
