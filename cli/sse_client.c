/* A Server-Sent Events reader on libcurl (see sse_client.h). */
#include "sse_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/mem.h"
static void sse_line(struct gw_sse *s, char *line)
{
    if (line[0] == '\0') {
        if (s->data != NULL || s->event[0] != '\0') {
            if (s->id[0] != '\0')
                snprintf(s->last_id, sizeof(s->last_id), "%s", s->id);
            s->got_event = true;
            if (s->on_event(s, s->event[0] ? s->event : "message", s->data ? s->data : "",
                            s->arg) != 0)
                s->stop = true;
        }
        free(s->data);
        s->data = NULL;
        s->dlen = 0;
        s->event[0] = s->id[0] = '\0';
        return;
    }
    if (line[0] == ':')
        return; /* a comment: keepalive */
    char *colon = strchr(line, ':');
    const char *value = "";
    if (colon != NULL) {
        *colon = '\0';
        value = colon[1] == ' ' ? colon + 2 : colon + 1;
    }
    if (strcmp(line, "event") == 0) {
        snprintf(s->event, sizeof(s->event), "%s", value);
    } else if (strcmp(line, "id") == 0) {
        snprintf(s->id, sizeof(s->id), "%s", value);
    } else if (strcmp(line, "data") == 0) {
        size_t n = strlen(value);
        char *nd = realloc(s->data, s->dlen + n + 2);
        if (nd == NULL)
            return;
        if (s->dlen > 0)
            nd[s->dlen++] = '\n';
        memcpy(nd + s->dlen, value, n + 1);
        s->data = nd;
        s->dlen += n;
    }
}

static size_t sse_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct gw_sse *s = arg;
    size_t n = size * nmemb;
    if (s->status == 0)
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (gw_grow(&s->buf, &s->cap, s->len + n + 1, 8192) < 0)
        return 0;
    memcpy(s->buf + s->len, ptr, n);
    s->len += n;
    s->buf[s->len] = '\0';
    if (s->status != 200)
        return n; /* keep the problem body for the caller */
    size_t start = 0;
    for (size_t i = 0; i < s->len && !s->stop; i++) {
        if (s->buf[i] != '\n' && s->buf[i] != '\r')
            continue;
        bool crlf = s->buf[i] == '\r' && i + 1 < s->len && s->buf[i + 1] == '\n';
        if (s->buf[i] == '\r' && i + 1 == s->len)
            break; /* a CR at the end may be half of a CRLF */
        s->buf[i] = '\0';
        sse_line(s, s->buf + start);
        if (crlf)
            i++;
        start = i + 1;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
    return s->stop ? 0 : n;
}

int gw_sse_get(struct gw_sse *s, const char *url, const char *token)
{
    char auth[4200], last[64];
    struct curl_slist *hdrs = NULL;
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        snprintf(s->error, sizeof(s->error), "cannot initialise libcurl");
        return GW_SSE_UNREACHABLE;
    }
    hdrs = curl_slist_append(hdrs, "Accept: text/event-stream");
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (s->last_id[0] != '\0') {
        snprintf(last, sizeof(last), "Last-Event-ID: %s", s->last_id);
        hdrs = curl_slist_append(hdrs, last);
    }
    s->curl = curl;
    s->status = 0;
    s->len = 0;
    s->stop = false;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    /* The server sends a keepalive comment every 15 s: a minute of silence
     * means the connection is dead. */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
    CURLcode rc = curl_easy_perform(curl);
    if (s->status == 0)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &s->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    s->curl = NULL;
    if (s->stop)
        return GW_SSE_ENDED;
    if (s->status != 0 && s->status != 200) {
        if (s->buf != NULL)
            s->buf[s->len] = '\0';
        return (int)s->status;
    }
    if (rc != CURLE_OK && s->status == 0 && !s->got_event) {
        snprintf(s->error, sizeof(s->error), "%s", curl_easy_strerror(rc));
        return GW_SSE_UNREACHABLE;
    }
    /* A clean end is the server's doing (a finished log stream ends with
     * its `end` event, which the caller saw); anything else broke. */
    return rc == CURLE_OK ? GW_SSE_ENDED : GW_SSE_BROKEN;
}

void gw_sse_free(struct gw_sse *s)
{
    free(s->buf);
    free(s->data);
}
