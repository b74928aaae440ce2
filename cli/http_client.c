#include "http_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct sink {
    char *buf;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    char *nb = realloc(s->buf, s->len + n + 1);
    if (nb == NULL)
        return 0;
    memcpy(nb + s->len, ptr, n);
    s->buf = nb;
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

int gw_http_call(const char *method, const char *url, const char *token, const char *body,
                 long timeout_ms, char **body_out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct sink s = {0};
    long status = -1;
    char auth[4200];

    if (c == NULL)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    } else {
        free(s.buf);
        s.buf = strdup(curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (body_out != NULL)
        *body_out = s.buf;
    else
        free(s.buf);
    return (int)status;
}
