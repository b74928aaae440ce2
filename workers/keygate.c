#include "keygate.h"

#include <stdlib.h>
#include <string.h>

#include "gw/error.h"

/* A linked list is enough: there are at most --concurrency keys held. */
struct keygate_entry {
    struct keygate_entry *next;
    char *key;
    struct gw_keygate_waiter *head, *tail;
};

void gw_keygate_init(struct gw_keygate *g)
{
    g->entries = NULL;
}

void gw_keygate_finish(struct gw_keygate *g)
{
    struct keygate_entry *e, *next;
    if (g == NULL)
        return;
    for (e = g->entries; e != NULL; e = next) {
        next = e->next;
        free(e->key);
        free(e);
    }
    g->entries = NULL;
}

static struct keygate_entry **find(struct gw_keygate *g, const char *key)
{
    struct keygate_entry **pp;
    for (pp = &g->entries; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->key, key) == 0)
            return pp;
    return NULL;
}

int gw_keygate_acquire(struct gw_keygate *g, const char *key, struct gw_keygate_waiter *w)
{
    struct keygate_entry **pp = find(g, key), *e;
    w->next = NULL;
    if (pp != NULL) {
        e = *pp;
        if (e->tail != NULL)
            e->tail->next = w;
        else
            e->head = w;
        e->tail = w;
        return 0;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->key = strdup(key)) == NULL) {
        free(e);
        return GW_ENOMEM;
    }
    e->next = g->entries;
    g->entries = e;
    return 1;
}

struct gw_keygate_waiter *gw_keygate_release(struct gw_keygate *g, const char *key)
{
    struct keygate_entry **pp = find(g, key), *e;
    struct gw_keygate_waiter *w;
    if (pp == NULL)
        return NULL;
    e = *pp;
    w = e->head;
    if (w != NULL) {
        e->head = w->next;
        if (e->head == NULL)
            e->tail = NULL;
        w->next = NULL;
        return w;
    }
    *pp = e->next;
    free(e->key);
    free(e);
    return NULL;
}

bool gw_keygate_cancel(struct gw_keygate *g, const char *key, struct gw_keygate_waiter *w)
{
    struct keygate_entry **pp = find(g, key), *e;
    struct gw_keygate_waiter *prev = NULL;
    if (pp == NULL)
        return false;
    e = *pp;
    for (struct gw_keygate_waiter *it = e->head; it != NULL; prev = it, it = it->next) {
        if (it != w)
            continue;
        if (prev != NULL)
            prev->next = it->next;
        else
            e->head = it->next;
        if (e->tail == it)
            e->tail = prev;
        return true;
    }
    return false;
}

int gw_keygate_held(const struct gw_keygate *g)
{
    int n = 0;
    for (const struct keygate_entry *e = g->entries; e != NULL; e = e->next)
        n++;
    return n;
}
