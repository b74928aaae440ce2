/*
 * The jenkins backend's pure parts, kept apart from the loop code so they
 * can be read and tested on their own: config validation, URL building,
 * parameter encoding, JSON matching for the idempotence lookup, Location
 * parsing and the log line splitter.
 *
 * Threading: none (no loop, no I/O besides getenv at parse time).
 */
#ifndef GW_JENKINS_JK_CONFIG_H
#define GW_JENKINS_JK_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "backend.h"
#include "gw/error.h"

#define JK_RUN_ID_PARAM "GANGWAY_RUN_ID"

struct jk_config {
    char *base;         /* "https://jenkins.example" without a trailing slash */
    char *job;          /* "folder/name" as configured */
    char *job_path;     /* "/job/folder/job/name", each segment percent-encoded */
    char *user;         /* from the environment variable user_env, or NULL */
    char *password;     /* from token_env, or NULL; never logged */
    json_t *parameters; /* borrowed from the run's config, or NULL (default) */
    int poll_ms;
};

/* Validates the action's "backend" object and reads the credentials from
 * the environment. A job segment that is empty, "." or ".." is refused; the
 * others are percent-encoded so they stay one path segment. Returns 0 or
 * GW_EINVAL/GW_ENOMEM with `err` filled (never with a credential in it). */
int gw_jk_config_parse(json_t *cfg, struct jk_config *c, struct gw_error *err);
void gw_jk_config_finish(struct jk_config *c);

/* The x-www-form-urlencoded body of buildWithParameters (every name and
 * value through curl_easy_escape), GANGWAY_RUN_ID included. Malloc'd. */
char *gw_jk_params_encode(const struct jk_config *c, const struct gw_run *run,
                          struct gw_error *err);

/* The number of the build in a job's api/json whose parameters carry
 * GANGWAY_RUN_ID == run_id, with its "url" in *url (borrowed); 0 if none. */
long gw_jk_find_build(json_t *job, const char *run_id, const char **url);
/* The id of the item of /queue/api/json for `job_path` carrying run_id; 0 if none. */
long gw_jk_find_queue_item(json_t *queue, const char *job_path, const char *run_id);
/* The queue item id at the end of a Location (".../queue/item/<n>/"); 0 if none. */
long gw_jk_queue_id_from_location(const char *location);

/* Splits a byte stream into lines (\n, \r\n), holding a partial line until
 * the next chunk; a line past `max` bytes is emitted in pieces. */
struct jk_lines {
    char *buf;
    size_t len, cap, max;
};
typedef void (*jk_line_cb)(void *arg, const char *line, size_t len);
void gw_jk_lines_init(struct jk_lines *l, size_t max);
void gw_jk_lines_feed(struct jk_lines *l, const char *data, size_t n, jk_line_cb cb, void *arg);
void gw_jk_lines_flush(struct jk_lines *l, jk_line_cb cb, void *arg);
void gw_jk_lines_finish(struct jk_lines *l);

#endif
