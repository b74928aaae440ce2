/*
 * The document registry: every document a `$ref` may reach, by URI. The
 * bundled metaschemas are loaded at create; nothing is ever fetched. The
 * registry is locked internally so compiles may run from several threads;
 * compiled metaschemas are cached here for the schema checks at compile.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static void doc_free(void *p)
{
    json_decref(p);
}

static void meta_free(void *p)
{
    gw_schema_destroy(p);
}

struct gw_schema_registry *gw_schema_registry_create(struct gw_error *err)
{
    struct gw_schema_registry *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&reg->lock, NULL);
    for (size_t i = 0; i < gw__js_bundled_metaschemas_count; i++) {
        json_error_t jerr;
        json_t *doc = json_loads(gw__js_bundled_metaschemas[i].text, 0, &jerr);
        if (!doc) {
            gw_error_set(err, GW_EPARSE, false, "bundled metaschema %s: %s",
                         gw__js_bundled_metaschemas[i].key, jerr.text);
            goto fail;
        }
        int rc = gw_schema_registry_add(reg, gw__js_bundled_metaschemas[i].key, doc, err);
        json_decref(doc);
        if (rc < 0)
            goto fail;
    }
    return reg;
fail:
    gw_schema_registry_destroy(reg);
    return NULL;
}

void gw_schema_registry_destroy(struct gw_schema_registry *reg)
{
    if (!reg)
        return;
    gw__js_strmap_free(&reg->metas, meta_free);
    gw__js_strmap_free(&reg->docs, doc_free);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

int gw_schema_registry_add(struct gw_schema_registry *reg, const char *uri, json_t *doc,
                           struct gw_error *err)
{
    if (!reg || !uri || !doc)
        return gw_error_set(err, GW_EINVAL, false, "registry add: missing argument");
    if (!gw__js_uri_is_absolute(uri))
        return gw_error_set(err, GW_EINVAL, false, "registry add: %s is not an absolute URI", uri);
    char *u = gw__js_uri_strip_fragment(uri, NULL);
    if (!u)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    int rc = 0;
    pthread_mutex_lock(&reg->lock);
    json_t *old = gw__js_strmap_get(&reg->docs, u);
    if (gw__js_strmap_put(&reg->docs, u, json_incref(doc)) < 0) {
        json_decref(doc);
        rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
    } else {
        /* Compiled schemas hold their own references, so replacing is safe. */
        json_decref(old);
    }
    pthread_mutex_unlock(&reg->lock);
    free(u);
    return rc;
}

json_t *gw__js_registry_find(struct gw_schema_registry *reg, const char *uri)
{
    pthread_mutex_lock(&reg->lock);
    json_t *doc = gw__js_strmap_get(&reg->docs, uri);
    pthread_mutex_unlock(&reg->lock);
    return doc;
}

const struct gw_schema *gw__js_registry_meta(struct gw_schema_registry *reg, const char *uri,
                                             struct gw_error *err)
{
    pthread_mutex_lock(&reg->lock);
    struct gw_schema *m = gw__js_strmap_get(&reg->metas, uri);
    json_t *doc = m ? NULL : json_incref(gw__js_strmap_get(&reg->docs, uri));
    pthread_mutex_unlock(&reg->lock);
    if (m)
        return m;
    if (!doc) {
        gw_error_set(err, GW_ENOTFOUND, false, "unknown metaschema %s", uri);
        return NULL;
    }
    /* Compiled outside the lock (compiling looks documents up); a racing
     * thread's copy loses and is freed. Metaschemas are trusted, so they
     * are not themselves checked. */
    struct gw_schema *nm = gw__js_compile(reg, doc, uri, NULL, false, err);
    json_decref(doc);
    if (!nm)
        return NULL;
    pthread_mutex_lock(&reg->lock);
    m = gw__js_strmap_get(&reg->metas, uri);
    if (!m) {
        if (gw__js_strmap_put(&reg->metas, uri, nm) < 0) {
            pthread_mutex_unlock(&reg->lock);
            gw_schema_destroy(nm);
            gw_error_set(err, GW_ENOMEM, false, "out of memory");
            return NULL;
        }
        m = nm;
        nm = NULL;
    }
    pthread_mutex_unlock(&reg->lock);
    gw_schema_destroy(nm);
    return m;
}

static int add_dir_rec(struct gw_schema_registry *reg, const char *base_uri, const char *dir,
                       int depth, struct gw_error *err)
{
    if (depth > 32)
        return gw_error_set(err, GW_ELIMIT, false, "%s: directory tree too deep", dir);
    DIR *d = opendir(dir);
    if (!d)
        return gw_error_set(err, GW_EIO, false, "%s: cannot open directory", dir);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        size_t plen = strlen(dir) + strlen(de->d_name) + 2;
        size_t ulen = strlen(base_uri) + strlen(de->d_name) + 2;
        char *path = malloc(plen), *uri = malloc(ulen);
        if (!path || !uri) {
            free(path);
            free(uri);
            rc = gw_error_set(err, GW_ENOMEM, false, "out of memory");
            break;
        }
        snprintf(path, plen, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(uri, ulen, "%s%s/", base_uri, de->d_name);
            rc = add_dir_rec(reg, uri, path, depth + 1, err);
        } else if (strlen(de->d_name) > 5 &&
                   strcmp(de->d_name + strlen(de->d_name) - 5, ".json") == 0) {
            json_error_t jerr;
            json_t *doc = json_load_file(path, 0, &jerr);
            snprintf(uri, ulen, "%s%s", base_uri, de->d_name);
            if (!doc)
                rc = gw_error_set(err, GW_EPARSE, false, "%s:%d: %s", path, jerr.line, jerr.text);
            else
                rc = gw_schema_registry_add(reg, uri, doc, err);
            json_decref(doc);
        }
        free(path);
        free(uri);
    }
    closedir(d);
    return rc;
}

int gw_schema_registry_add_dir(struct gw_schema_registry *reg, const char *base_uri,
                               const char *dir, struct gw_error *err)
{
    if (!reg || !base_uri || !dir)
        return gw_error_set(err, GW_EINVAL, false, "registry add_dir: missing argument");
    size_t n = strlen(base_uri);
    char *base = malloc(n + 2);
    if (!base)
        return gw_error_set(err, GW_ENOMEM, false, "out of memory");
    memcpy(base, base_uri, n + 1);
    if (n == 0 || base[n - 1] != '/') {
        base[n] = '/';
        base[n + 1] = '\0';
    }
    int rc = add_dir_rec(reg, base, dir, 0, err);
    free(base);
    return rc;
}
