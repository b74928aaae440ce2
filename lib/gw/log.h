/*
 * Structured logging: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-24T23:18:24.123Z","level":"info","component":"broker",
 *    "run_id":"...","msg":"..."}
 *
 * gw_log_init() is called once from main() before any thread starts; after
 * that every function here is thread-safe (each line is written with a single
 * write(2) so lines from threads never interleave).
 */
#ifndef GW_LOG_H
#define GW_LOG_H

enum gw_log_level { GW_LOG_DEBUG = 0, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR };

/* `component` must outlive the process (a string literal). */
void gw_log_init(const char *component, enum gw_log_level min_level);

/* Parses "debug" | "info" | "warn" | "error"; returns GW_LOG_INFO otherwise. */
enum gw_log_level gw_log_level_parse(const char *s);

/* `run_id` may be NULL. The formatted message is JSON-escaped. */
void gw_log(enum gw_log_level level, const char *run_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gw_log_debug(...) gw_log(GW_LOG_DEBUG, NULL, __VA_ARGS__)
#define gw_log_info(...)  gw_log(GW_LOG_INFO, NULL, __VA_ARGS__)
#define gw_log_warn(...)  gw_log(GW_LOG_WARN, NULL, __VA_ARGS__)
#define gw_log_error(...) gw_log(GW_LOG_ERROR, NULL, __VA_ARGS__)

#endif
