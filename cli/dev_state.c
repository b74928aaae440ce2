#include "dev_state.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void get_str(json_t *doc, const char *key, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(doc, key));
    snprintf(out, cap, "%s", v != NULL && strlen(v) < cap ? v : "");
}

int gw_dev_state_load(const char *dir, struct gw_dev_state *s, struct gw_error *err)
{
    char path[4096];
    json_error_t jerr;
    json_t *doc;

    memset(s, 0, sizeof(*s));
    snprintf(path, sizeof(path), "%s/dev.json", dir);
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return GW_ENOTFOUND;
    doc = json_load_file(path, 0, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return gw_error_set(err, GW_EINVAL, false, "%s: %s", path,
                            jerr.text[0] ? jerr.text : "not a JSON object");
    }
    get_str(doc, "listen", s->listen, sizeof(s->listen));
    get_str(doc, "url", s->url, sizeof(s->url));
    get_str(doc, "admin_token", s->admin_token, sizeof(s->admin_token));
    get_str(doc, "worker_token", s->worker_token, sizeof(s->worker_token));
    get_str(doc, "pg", s->pg, sizeof(s->pg));
    get_str(doc, "kafka_brokers", s->kafka, sizeof(s->kafka));
    json_int_t port = json_integer_value(json_object_get(doc, "pg_port"));
    s->pg_port = port > 0 && port < 65536 ? (int)port : 0;
    json_decref(doc);
    return 0;
}

int gw_dev_state_save(const char *dir, const struct gw_dev_state *s, struct gw_error *err)
{
    char path[4096], tmp[4200];
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "listen", s->listen, "url",
                            s->url, "admin_token", s->admin_token, "worker_token", s->worker_token,
                            "pg_port", s->pg_port, "pg", s->pg, "kafka_brokers", s->kafka);
    char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    int fd = -1, rc = 0;

    json_decref(doc);
    if (text == NULL)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    snprintf(path, sizeof(path), "%s/dev.json", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, text, len) != (ssize_t)len ||
        write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
        rc = gw_error_set(err, GW_EIO, false, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        fd = -1;
        rc = gw_error_set(err, GW_EIO, false, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    fd = -1;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(text);
    return rc;
}
