/*
 * Where a value of a configuration document was written (gw/doc.h,
 * gw_doc_locate). Used only when a document is refused, so it reads the
 * file again instead of making every loaded value carry its position.
 *
 * libyaml reads both kinds: JSON as written by people is YAML flow style.
 * Any trouble (a construct libyaml reads differently, an alias on the path)
 * gives 0, "unknown", and the message simply goes without a line.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "gw/doc.h"

struct locator {
    yaml_parser_t parser;
    char **tokens; /* the pointer's reference tokens, unescaped */
    size_t n;
};

static bool next(struct locator *l, yaml_event_t *ev)
{
    return yaml_parser_parse(&l->parser, ev) != 0;
}

/* Skips the rest of the node whose start event `ev` is (already read). */
static bool skip(struct locator *l, const yaml_event_t *start)
{
    int depth;
    if (start->type != YAML_MAPPING_START_EVENT && start->type != YAML_SEQUENCE_START_EVENT)
        return start->type == YAML_SCALAR_EVENT || start->type == YAML_ALIAS_EVENT;
    depth = 1;
    while (depth > 0) {
        yaml_event_t ev;
        if (!next(l, &ev))
            return false;
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
            depth++;
        else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
            depth--;
        else if (ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_NO_EVENT)
            depth = 0;
        yaml_event_delete(&ev);
    }
    return true;
}

/* The line of token `depth` onwards inside the node starting at `ev`. */
static size_t find(struct locator *l, const yaml_event_t *ev, size_t depth)
{
    if (depth == l->n)
        return ev->start_mark.line + 1;
    if (ev->type == YAML_MAPPING_START_EVENT) {
        for (;;) {
            yaml_event_t key, val;
            if (!next(l, &key))
                return 0;
            if (key.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&key);
                return 0; /* the end of the mapping, or a key we do not follow */
            }
            bool hit = strcmp((const char *)key.data.scalar.value, l->tokens[depth]) == 0;
            yaml_event_delete(&key);
            if (!next(l, &val))
                return 0;
            size_t line = 0;
            bool ok = true;
            if (hit)
                line = find(l, &val, depth + 1);
            else
                ok = skip(l, &val);
            yaml_event_delete(&val);
            if (hit || !ok)
                return line;
        }
    }
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        char *end;
        unsigned long want = strtoul(l->tokens[depth], &end, 10);
        if (*end != '\0' || l->tokens[depth][0] == '\0')
            return 0;
        for (unsigned long i = 0;; i++) {
            yaml_event_t item;
            if (!next(l, &item))
                return 0;
            if (item.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&item);
                return 0;
            }
            size_t line = 0;
            bool ok = true;
            if (i == want)
                line = find(l, &item, depth + 1);
            else
                ok = skip(l, &item);
            yaml_event_delete(&item);
            if (i == want || !ok)
                return line;
        }
    }
    return 0;
}

/* "/a~1b/0" -> {"a/b", "0"}. */
static char **split(const char *pointer, size_t *n)
{
    size_t cap = 1;
    for (const char *p = pointer; *p; p++)
        cap += *p == '/';
    char **t = calloc(cap, sizeof(*t));
    *n = 0;
    if (t == NULL)
        return NULL;
    const char *p = pointer;
    while (*p == '/') {
        const char *e = strchr(p + 1, '/');
        size_t len = e ? (size_t)(e - p - 1) : strlen(p + 1);
        char *s = malloc(len + 1), *w = s;
        if (s == NULL)
            break;
        for (size_t i = 0; i < len; i++) {
            char c = p[1 + i];
            if (c == '~' && i + 1 < len && (p[2 + i] == '0' || p[2 + i] == '1'))
                c = p[2 + i++] == '0' ? '~' : '/';
            *w++ = c;
        }
        *w = '\0';
        t[(*n)++] = s;
        p += 1 + len;
    }
    return t;
}

size_t gw_doc_locate(const char *path, const char *pointer)
{
    struct locator l;
    size_t line = 0;
    FILE *f;

    if (path == NULL || pointer == NULL || (pointer[0] != '\0' && pointer[0] != '/'))
        return 0;
    f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    memset(&l, 0, sizeof(l));
    l.tokens = split(pointer, &l.n);
    if (l.tokens != NULL && yaml_parser_initialize(&l.parser)) {
        yaml_parser_set_input_file(&l.parser, f);
        yaml_event_t ev;
        /* stream start, document start, then the root node. */
        bool ok = true;
        for (int i = 0; ok && i < 3; i++) {
            ok = next(&l, &ev);
            if (ok && i < 2)
                yaml_event_delete(&ev);
        }
        if (ok) {
            line = find(&l, &ev, 0);
            yaml_event_delete(&ev);
        }
        yaml_parser_delete(&l.parser);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.tokens[i]);
    free(l.tokens);
    fclose(f);
    return line;
}
