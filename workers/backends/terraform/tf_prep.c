#include "tf_prep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gw/crypto.h"
#include "gw/fs.h"
#include "gw/jsonptr.h"

#define COPY_MAX_DEPTH 32

void gw_tf_workdir_name(const char *action_id, const char *resource_key, char out[65])
{
    size_t a = strlen(action_id), k = strlen(resource_key);
    char *buf = malloc(a + k + 1);
    if (buf == NULL) {
        /* Still a fixed-shape name; an allocation failure here is fatal later anyway. */
        gw_sha256_hex(action_id, a, out);
        return;
    }
    memcpy(buf, action_id, a);
    buf[a] = '\0'; /* so ("ab","c") and ("a","bc") differ */
    memcpy(buf + a + 1, resource_key, k);
    gw_sha256_hex(buf, a + k + 1, out);
    free(buf);
}

int gw_tf_mkdirs(const char *dir, char *msg, size_t msgsz)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(p)) {
        snprintf(msg, msgsz, "bad directory name");
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(msg, msgsz, "mkdir %s: %s", p, strerror(errno));
            return -1;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, msgsz, "%s is not a directory", dir);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ workdir */

static bool is_state_name(const char *n)
{
    return strncmp(n, "terraform.tfstate", 17) == 0 || strcmp(n, ".terraform") == 0 ||
           strcmp(n, ".terraform.lock.hcl") == 0 || strcmp(n, ".terraform.tfstate.lock.info") == 0;
}

/* Removes the module files a previous run copied in, keeping state. */
static int clean_workdir(const char *workdir, char *msg, size_t msgsz)
{
    DIR *d = opendir(workdir);
    struct dirent *e;
    char path[4096];
    if (d == NULL) {
        snprintf(msg, msgsz, "opendir %s: %s", workdir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            is_state_name(e->d_name) || strcmp(e->d_name, TF_PLANS_DIR) == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", workdir, e->d_name);
        gw_fs_remove_tree(path);
    }
    closedir(d);
    return 0;
}

static int copy_file(int sfd, int dfd, const char *name, char *msg, size_t msgsz)
{
    char buf[65536];
    ssize_t n;
    int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) {
        snprintf(msg, msgsz, "open module file %s: %s", name, strerror(errno));
        return -1;
    }
    int out = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        snprintf(msg, msgsz, "create %s: %s", name, strerror(errno));
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                snprintf(msg, msgsz, "write %s: %s", name, strerror(errno));
                close(in);
                close(out);
                return -1;
            }
            off += w;
        }
    }
    close(in);
    if (n < 0 || close(out) != 0) {
        snprintf(msg, msgsz, "copy %s: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Copies directory `sfd` into `dfd` through descriptors, so no path of the
 * module (symlinked directory, "..") can lead the copy elsewhere. */
static int copy_dir(int sfd, int dfd, int depth, char *msg, size_t msgsz)
{
    int rc = 0;
    int it = dup(sfd);
    DIR *d = it >= 0 ? fdopendir(it) : NULL;
    struct dirent *e;
    if (d == NULL) {
        if (it >= 0)
            close(it);
        snprintf(msg, msgsz, "read module directory: %s", strerror(errno));
        return -1;
    }
    if (depth > COPY_MAX_DEPTH) {
        closedir(d);
        snprintf(msg, msgsz, "module is nested deeper than %d levels", COPY_MAX_DEPTH);
        return -1;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || is_state_name(n) ||
            strcmp(n, ".git") == 0 || strcmp(n, TF_PLANS_DIR) == 0)
            continue;
        if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            rc = copy_file(sfd, dfd, n, msg, msgsz);
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdirat(dfd, n, 0700) != 0 && errno != EEXIST) {
                snprintf(msg, msgsz, "mkdir %s: %s", n, strerror(errno));
                rc = -1;
                break;
            }
            int s2 = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int d2 = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0) {
                snprintf(msg, msgsz, "open directory %s: %s", n, strerror(errno));
                rc = -1;
            } else {
                rc = copy_dir(s2, d2, depth + 1, msg, msgsz);
            }
            if (s2 >= 0)
                close(s2);
            if (d2 >= 0)
                close(d2);
        }
        /* Symlinks, devices, sockets, FIFOs: never copied. */
    }
    closedir(d);
    return rc;
}

int gw_tf_workdir_sync(const char *workdir, const char *module_dir, char *msg, size_t msgsz)
{
    int sfd, dfd, rc;
    if (clean_workdir(workdir, msg, msgsz) != 0)
        return -1;
    sfd = open(module_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) {
        snprintf(msg, msgsz, "module directory %s: %s", module_dir, strerror(errno));
        return -1;
    }
    dfd = open(workdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(msg, msgsz, "working directory %s: %s", workdir, strerror(errno));
        close(sfd);
        return -1;
    }
    rc = copy_dir(sfd, dfd, 0, msg, msgsz);
    close(sfd);
    close(dfd);
    return rc;
}

int gw_tf_write_tfvars(const char *workdir, json_t *inputs, char *msg, size_t msgsz)
{
    char path[4096];
    json_t *vars = json_is_object(inputs) ? json_deep_copy(inputs) : json_object();
    char *text;
    int fd, rc = 0;
    if (vars == NULL) {
        snprintf(msg, msgsz, "out of memory");
        return -1;
    }
    json_object_del(vars, TF_PLAN_INPUT);
    text = json_dumps(vars, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(vars);
    if (text == NULL) {
        snprintf(msg, msgsz, "cannot encode inputs");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s", workdir, TF_VARS_FILE);
    unlink(path); /* whatever was there, symlink included, goes */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(msg, msgsz, "create %s: %s", path, strerror(errno));
        free(text);
        return -1;
    }
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0) {
            snprintf(msg, msgsz, "write %s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && rc == 0) {
        snprintf(msg, msgsz, "close %s: %s", path, strerror(errno));
        rc = -1;
    }
    free(text);
    return rc;
}

int gw_tf_file_sha256(const char *path, char out[65], char *msg, size_t msgsz)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(msg, msgsz, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(msg, msgsz, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        close(fd);
        snprintf(msg, msgsz, "sha256 unavailable");
        return -1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    close(fd);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (n < 0) {
        snprintf(msg, msgsz, "read %s: %s", path, strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* ------------------------------------------------------------ JSON */

static void bump(json_t *obj, const char *key, int n)
{
    if (n != 0)
        json_object_set_new(obj, key,
                            json_integer(json_integer_value(json_object_get(obj, key)) + n));
}

static json_t *counters(void)
{
    return json_pack("{s:i,s:i,s:i}", "add", 0, "change", 0, "destroy", 0);
}

json_t *gw_tf_plan_changes(json_t *plan, size_t max)
{
    json_t *out = json_array(), *rc;
    size_t i;
    json_array_foreach(json_object_get(plan, "resource_changes"), i, rc)
    {
        json_t *acts = json_object_get(json_object_get(rc, "change"), "actions");
        const char *first = json_string_value(json_array_get(acts, 0));
        if (json_array_size(out) >= max)
            break;
        if (first == NULL || strcmp(first, "no-op") == 0 || strcmp(first, "read") == 0)
            continue;
        json_array_append_new(out, json_pack("{s:s?, s:O}", "address",
                                             json_string_value(json_object_get(rc, "address")),
                                             "actions", acts));
    }
    return out;
}

json_t *gw_tf_plan_summary(json_t *plan)
{
    json_t *sum, *by_type, *rc;
    size_t i;
    if (!json_is_object(plan))
        return NULL;
    sum = counters();
    by_type = json_object();
    json_array_foreach(json_object_get(plan, "resource_changes"), i, rc)
    {
        json_t *acts = json_object_get(json_object_get(rc, "change"), "actions"), *a;
        const char *type = json_string_value(json_object_get(rc, "type"));
        int add = 0, change = 0, destroy = 0;
        size_t j;
        json_array_foreach(acts, j, a)
        {
            const char *s = json_string_value(a);
            if (s == NULL)
                continue;
            if (strcmp(s, "create") == 0)
                add = 1;
            else if (strcmp(s, "update") == 0)
                change = 1;
            else if (strcmp(s, "delete") == 0)
                destroy = 1;
        }
        if (add + change + destroy == 0)
            continue; /* no-op, read */
        bump(sum, "add", add);
        bump(sum, "change", change);
        bump(sum, "destroy", destroy);
        if (type == NULL)
            type = "unknown";
        json_t *t = json_object_get(by_type, type);
        if (t == NULL) {
            t = counters();
            json_object_set_new(by_type, type, t);
        }
        bump(t, "add", add);
        bump(t, "change", change);
        bump(t, "destroy", destroy);
    }
    json_object_set_new(sum, "by_type", by_type);
    return sum;
}

json_t *gw_tf_outputs_public(json_t *out)
{
    const char *k;
    json_t *v, *res;
    if (!json_is_object(out))
        return NULL;
    res = json_object();
    json_object_foreach(out, k, v)
    {
        if (json_is_true(json_object_get(v, "sensitive")))
            json_object_set_new(res, k, json_string(TF_REDACTED));
        else
            json_object_set(
                res, k, json_object_get(v, "value") ? json_object_get(v, "value") : json_null());
    }
    return res;
}

static void add_secret(json_t *list, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        if (json_string_length(v) >= 3)
            json_array_append(list, v);
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL && strlen(s) >= 3)
        json_array_append_new(list, json_string(s));
    /* The parts of a structured secret may appear on their own too. */
    if (json_is_object(v) || json_is_array(v)) {
        const char *k;
        json_t *x;
        size_t i;
        if (json_is_object(v)) {
            json_object_foreach(v, k, x) add_secret(list, x);
        } else {
            json_array_foreach(v, i, x) add_secret(list, x);
        }
    }
    free(s);
}

json_t *gw_tf_secret_values(json_t *inputs, json_t *names, json_t *pointers)
{
    json_t *list = json_array(), *v;
    size_t i;
    json_array_foreach(names, i, v)
    {
        if (json_is_string(v))
            add_secret(list, json_object_get(inputs, json_string_value(v)));
    }
    json_array_foreach(pointers, i, v)
    {
        if (json_is_string(v))
            add_secret(list, gw_jsonptr_get(inputs, json_string_value(v)));
    }
    return list;
}

size_t gw_tf_redact(json_t *secrets, const char *line, size_t len, char *out, size_t cap)
{
    size_t o = 0, i = 0, rl = strlen(TF_REDACTED);
    if (cap == 0)
        return 0;
    while (i < len && o < cap - 1) {
        size_t best = 0, k;
        json_t *s;
        json_array_foreach(secrets, k, s)
        {
            size_t sl = json_string_length(s);
            if (sl > best && sl <= len - i && memcmp(line + i, json_string_value(s), sl) == 0)
                best = sl;
        }
        if (best > 0) {
            size_t n = rl < cap - 1 - o ? rl : cap - 1 - o;
            memcpy(out + o, TF_REDACTED, n);
            o += n;
            i += best;
        } else {
            out[o++] = line[i++];
        }
    }
    out[o] = '\0';
    return o;
}
