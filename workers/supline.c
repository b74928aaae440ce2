#include "supline.h"

#include <stdlib.h>
#include <string.h>

#include "gw/error.h"

static void written(uv_write_t *req, int status)
{
    (void)status; /* a peer gone: the reader of the other side notices */
    free(req->data);
    free(req);
}

int gw_supline_send(uv_stream_t *stream, const char *text, size_t n)
{
    uv_write_t *req = malloc(sizeof(*req));
    char *copy = malloc(n > 0 ? n : 1);
    uv_buf_t buf;
    if (req == NULL || copy == NULL) {
        free(req);
        free(copy);
        return GW_ENOMEM;
    }
    memcpy(copy, text, n);
    req->data = copy;
    buf = uv_buf_init(copy, (unsigned)n);
    if (uv_write(req, stream, &buf, 1, written) != 0) {
        free(copy);
        free(req);
        return GW_EIO;
    }
    return 0;
}

bool gw_supline_is(const char *line, size_t len, const char *key)
{
    size_t k = strlen(key);
    /* {"key":true} exactly: a record line is a longer object. */
    return len == k + 9 && memcmp(line, "{\"", 2) == 0 && memcmp(line + 2, key, k) == 0 &&
           memcmp(line + 2 + k, "\":true}", 7) == 0;
}
