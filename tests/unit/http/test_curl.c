/* A real HTTP client (libcurl) against the server: keep-alive reuse, a POST
 * big enough for curl to use Expect: 100-continue, a chunked upload. */
#include "harness.h"

#include <curl/curl.h>
#include <string.h>

struct sink {
    char *data;
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    s->data = realloc(s->data, s->len + size * n + 1);
    CHECK(s->data != NULL);
    memcpy(s->data + s->len, p, size * n);
    s->len += size * n;
    s->data[s->len] = '\0';
    return size * n;
}

struct source {
    const char *data;
    size_t len, off;
};

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
    struct source *s = arg;
    size_t want = size * n;
    if (want > 1000)
        want = 1000; /* several chunks */
    if (want > s->len - s->off)
        want = s->len - s->off;
    memcpy(p, s->data + s->off, want);
    s->off += want;
    return want;
}

static void with_curl(struct harness *h)
{
    CURL *curl = curl_easy_init();
    CHECK(curl != NULL);
    char url[128];
    struct sink s = {0};
    long code = 0, connects = -1;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo?via=curl", h->port);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    CHECK(code == 200);
    CHECK(strcmp(s.data, "GET /echo q=via=curl len=0\n") == 0);
    s.len = 0;

    /* Second request reuses the connection. */
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    CHECK(connects == 0);
    s.len = 0;

    /* A 200 KiB POST: curl sends Expect: 100-continue and waits for it. */
    size_t big = 200 * 1024;
    char *payload = malloc(big);
    for (size_t i = 0; i < big; i++)
        payload[i] = (char)('A' + i % 23);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", h->port);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)big);
    curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 5000L);
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    CHECK(code == 200);
    const char *nl = strchr(s.data, '\n');
    CHECK(strncmp(s.data, "POST /echo q= len=204800\n", 25) == 0);
    CHECK(s.len == (size_t)(nl - s.data) + 1 + big);
    CHECK(memcmp(nl + 1, payload, big) == 0);
    s.len = 0;

    /* Chunked upload of the same data. */
    struct source src = {payload, big, 0};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &src);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, -1L);
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    CHECK(code == 200);
    CHECK(strncmp(s.data, "POST /echo q= len=204800\n", 25) == 0);
    CHECK(memcmp(strchr(s.data, '\n') + 1, payload, big) == 0);
    s.len = 0;
    curl_slist_free_all(hdrs);

    /* Too big: curl sees the 413 problem. */
    size_t huge = 2 * 1024 * 1024;
    char *too = calloc(1, huge);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, NULL);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, too);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)huge);
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    CHECK(code == 413);
    CHECK(strstr(s.data, "\"code\":\"body_too_large\"") != NULL);
    free(too);

    free(payload);
    free(s.data);
    curl_easy_cleanup(curl);
}

int main(void)
{
    CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == 0);
    harness_run("libcurl client", NULL, with_curl);
    curl_global_cleanup();
    return 0;
}
