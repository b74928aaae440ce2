/*
 * Per-request bump allocator. A request's first block is embedded in the
 * request itself, so a small request costs no malloc at all; bigger requests
 * chain extra blocks that gw__http_pool_reset() frees when the response ends.
 */
#include "internal.h"

#include <stdlib.h>

#define POOL_ALIGN 16
#define POOL_BLOCK 8192

static size_t align_up(size_t n)
{
    return (n + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
}

void gw__http_pool_init(struct gw__http_pool *p, void *mem, size_t size)
{
    p->first = mem;
    p->first_end = (char *)mem + size;
    p->cur = p->first;
    p->end = p->first_end;
    p->blocks = NULL;
}

void *gw__http_pool_alloc(struct gw__http_pool *p, size_t n)
{
    n = align_up(n == 0 ? 1 : n);
    if (n <= (size_t)(p->end - p->cur)) {
        void *ret = p->cur;
        p->cur += n;
        return ret;
    }
    /* The header is padded to POOL_ALIGN so the data after it stays aligned. */
    size_t hdr = align_up(sizeof(struct gw__http_pool_block));
    if (n > POOL_BLOCK / 4) {
        /* A big allocation gets its own block; the current block stays in use. */
        if (n > SIZE_MAX - hdr)
            return NULL;
        struct gw__http_pool_block *b = malloc(hdr + n);
        if (b == NULL)
            return NULL;
        b->next = p->blocks;
        p->blocks = b;
        return (char *)b + hdr;
    }
    struct gw__http_pool_block *b = malloc(hdr + POOL_BLOCK);
    if (b == NULL)
        return NULL;
    b->next = p->blocks;
    p->blocks = b;
    p->cur = (char *)b + hdr + n;
    p->end = (char *)b + hdr + POOL_BLOCK;
    return (char *)b + hdr;
}

void gw__http_pool_reset(struct gw__http_pool *p)
{
    struct gw__http_pool_block *b = p->blocks;
    while (b != NULL) {
        struct gw__http_pool_block *next = b->next;
        free(b);
        b = next;
    }
    p->blocks = NULL;
    p->cur = p->first;
    p->end = p->first_end;
}
