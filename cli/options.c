#include "options.h"

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

int gw_opt_usage(int c, const char *usage)
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
