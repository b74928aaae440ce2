#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gw_opt(const char *flag, const char *env, const char *def)
{
    const char *v;
    if (flag != NULL)
        return flag;
    v = env != NULL ? getenv(env) : NULL;
    if (v != NULL && v[0] != '\0')
        return v;
    return def;
}

/* For 'h' (--help) prints `usage` on stdout and returns 0; for anything else
 * (an unknown option, a missing value) prints it on stderr and returns 2,
 * the usage exit code. */
static int usage_exit(int c, const char *usage)
{
    fputs(usage, c == 'h' ? stdout : stderr);
    return c == 'h' ? 0 : 2;
}

char **gw_opt_split_props(const char *s)
{
    size_t n = 1;
    char **list, *copy, *save = NULL, *tok;
    size_t k = 0;

    if (s == NULL || s[0] == '\0')
        return NULL;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    list = calloc(n + 1, sizeof(*list));
    copy = strdup(s);
    if (list == NULL || copy == NULL) {
        free(list);
        free(copy);
        return NULL;
    }
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
        if (strchr(tok, '=') != NULL)
            list[k++] = strdup(tok);
    free(copy);
    return list;
}

void gw_opt_free_list(char **list)
{
    if (list == NULL)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

int gw_opt_parse_listen(const char *s, char *host, unsigned long cap, int *port)
{
    const char *colon;
    size_t hlen;
    char *end;

    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        if (hlen + 1 > cap)
            return -1;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
        if (hlen + 1 > cap)
            return -1;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (hlen == 0)
            snprintf(host, cap, "0.0.0.0");
    }
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* Room for the options of the largest command (the broker has 15); a table
 * that outgrows it is a programming error. */
#define OPT_MAX 48

/* The tables `specs` includes, flattened in order. Returns the count. */
static size_t flatten(const struct gw_opt_spec *specs, const struct gw_opt_spec **out, size_t n)
{
    for (const struct gw_opt_spec *s = specs; s->kind != GW_OPT_END; s++) {
        if (s->kind == GW_OPT_TABLE) {
            n = flatten(s->dest, out, n);
            continue;
        }
        if (n == OPT_MAX)
            abort();
        out[n++] = s;
    }
    return n;
}

static bool takes_value(const struct gw_opt_spec *s)
{
    return s->kind == GW_OPT_STRING || (s->kind == GW_OPT_CALL && !s->flag);
}

/* Stores one option's value. Returns GW_OPT_OK or an exit code. */
static int store(const struct gw_opt_spec *s, const char *value, bool *given)
{
    *given = true;
    switch (s->kind) {
    case GW_OPT_STRING:
        *(const char **)s->dest = value;
        break;
    case GW_OPT_SET:
        *(int *)s->dest = 1;
        break;
    case GW_OPT_CLEAR:
        *(int *)s->dest = 0;
        break;
    case GW_OPT_BOOL:
        *(bool *)s->dest = true;
        break;
    case GW_OPT_CALL:
        return s->call(value, s->dest);
    default:
        abort();
    }
    return GW_OPT_OK;
}

int gw_opt_parse(int argc, char **argv, const struct gw_opt_spec *specs, const char *usage)
{
    const struct gw_opt_spec *flat[OPT_MAX];
    struct option longopts[OPT_MAX + 2];
    bool given[OPT_MAX] = {false};
    char shorts[2 * OPT_MAX + 2];
    size_t n = flatten(specs, flat, 0), k = 0;
    bool help_placed = false;
    int c;

    for (size_t i = 0; i < n; i++) {
        int val = flat[i]->short_name ? flat[i]->short_name : 256 + (int)i;
        if (flat[i]->kind == GW_OPT_HELP_HERE) {
            longopts[i] = (struct option){"help", no_argument, NULL, 'h'};
            help_placed = true;
            continue;
        }
        longopts[i] = (struct option){
            flat[i]->name, takes_value(flat[i]) ? required_argument : no_argument, NULL, val};
        if (flat[i]->short_name) {
            shorts[k++] = flat[i]->short_name;
            if (takes_value(flat[i]))
                shorts[k++] = ':';
        }
    }
    size_t end = n;
    if (!help_placed)
        longopts[end++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[end] = (struct option){NULL, 0, NULL, 0};
    shorts[k++] = 'h';
    shorts[k] = '\0';

    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
        size_t i = 0;
        while (c != 'h' && i < n && longopts[i].val != c)
            i++;
        if (c == 'h' || i == n) {
            if (usage == NULL)
                return c == 'h' ? GW_OPT_HELP : GW_OPT_BAD;
            return usage_exit(c, usage);
        }
        int rc = store(flat[i], optarg, &given[i]);
        if (rc != GW_OPT_OK)
            return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (flat[i]->kind == GW_OPT_STRING && !given[i] && (flat[i]->env || flat[i]->def))
            *(const char **)flat[i]->dest = gw_opt(NULL, flat[i]->env, flat[i]->def);
    return GW_OPT_OK;
}
