/*
 * An intrusive doubly linked list (the shape of wlroots' wl_list and libuv's
 * queue). The owner embeds a `struct gw_list` as the head, each element
 * embeds one as its link; nothing is allocated. The head is a sentinel: an
 * empty list points at itself, so insert and remove never test for NULL or
 * need to know the head.
 *
 *     struct hub { struct gw_list streams; };
 *     struct stream { struct gw_list link; ... };
 *
 *     gw_list_init(&hub->streams);
 *     gw_list_insert(&hub->streams, &st->link);
 *     gw_list_foreach (it, &hub->streams) {
 *         struct stream *st = gw_list_entry(it, struct stream, link);
 *         ...
 *     }
 *     gw_list_remove(&st->link);
 *
 * Not thread-safe: one owner (usually one loop) touches a list.
 */
#ifndef GW_LIST_H
#define GW_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct gw_list {
    struct gw_list *prev, *next;
};

/* Makes `head` an empty list. A head (or link) filled with zeros is not a
 * list: init it before the first insert. */
static inline void gw_list_init(struct gw_list *head)
{
    head->prev = head;
    head->next = head;
}

static inline bool gw_list_empty(const struct gw_list *head)
{
    return head->next == head;
}

/* Adds `elm` first in the list at `head`: iteration sees the newest first. */
static inline void gw_list_insert(struct gw_list *head, struct gw_list *elm)
{
    elm->prev = head;
    elm->next = head->next;
    head->next->prev = elm;
    head->next = elm;
}

/* Takes `elm` out of whatever list holds it. Its link is left pointing at
 * itself, so a second remove does nothing. */
static inline void gw_list_remove(struct gw_list *elm)
{
    elm->prev->next = elm->next;
    elm->next->prev = elm->prev;
    gw_list_init(elm);
}

/* The struct `type` whose member `member` is the link `ptr`. */
#define gw_list_entry(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Visits each link `it` (declared here) from the first to the last. The
 * body must not remove `it`: use gw_list_foreach_safe for that. */
#define gw_list_foreach(it, head)                                                                  \
    for (struct gw_list *it = (head)->next; it != (head); it = it->next)

/* The same, where the body may remove (and free) `it`: the next link is
 * read into `tmp` before the body runs. */
#define gw_list_foreach_safe(it, tmp, head)                                                        \
    for (struct gw_list *it = (head)->next, *tmp = it->next; it != (head); it = tmp, tmp = it->next)

#endif
