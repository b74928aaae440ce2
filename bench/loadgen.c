/*
 * gangway-loadgen: HTTP/1.1 load generator for POST /v1/actions/<id>/runs.
 *
 * Why a hand-written client: no Debian package offers an asynchronous HTTP
 * client that runs on a libuv loop. libcurl's multi interface could be
 * driven from uv_poll, but every transfer then goes through easy-handle
 * setup, header lists and callbacks, which costs CPU on a 2-core box where
 * the generator shares the cores with the broker, PostgreSQL and Kafka it
 * measures. Here the request is one prebuilt byte string written on a
 * keep-alive connection, and responses are parsed by http-parser (the
 * Debian library the broker itself uses), so the client stays small.
 *
 * Modes:
 *  - closed loop (no --rate): each of --connections sends its next request
 *    as soon as the previous response arrives. Measures capacity.
 *  - open loop (--rate R): a 1 ms timer schedules request i at t0 + i/R
 *    whatever the responses do. A scheduled request waits in a FIFO until a
 *    connection is free, and its latency counts from its *scheduled* time,
 *    so a stalled server shows up as latency instead of as fewer requests
 *    (coordinated omission).
 *
 * One request is in flight per connection (no pipelining). Latencies are
 * kept in an array and sorted at the end: exact percentiles, 8 bytes per
 * request.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define RBUF_SIZE       65536
#define BODY_MAX        8192
#define RETRY_MS        100
#define TICK_MS         1
#define MAX_CONNECTIONS 4096
#define ID_MAX          64

enum conn_state { CONN_CLOSED, CONN_CONNECTING, CONN_IDLE, CONN_BUSY, CONN_CLOSING };

struct lg;

struct conn {
    struct lg *lg;
    enum conn_state state;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_timer_t retry;
    http_parser parser;
    uint64_t sched_ns; /* when the in-flight request was due */
    uint64_t retry_ms; /* reconnect delay: 0 after a clean close */
    char body[BODY_MAX];
    size_t body_len;
    char rbuf[RBUF_SIZE];
};

struct lg {
    /* options */
    const char *url;
    const char *action;
    const char *token;
    const char *inputs;
    const char *ids_path;
    int connections;
    double duration_s;
    double warmup_s;
    double rate;
    double drain_s;

    /* target */
    struct sockaddr_storage addr;
    char host[256];
    int port;
    uv_buf_t request;

    uv_loop_t *loop;
    uv_timer_t tick;
    uv_signal_t sigint;
    struct conn *conns;
    struct conn **idle;
    int nidle;

    uint64_t t0, t_measure, t_end, t_drain_end;
    bool sending; /* before t_end */
    bool finishing;
    bool interrupted;

    /* open loop: requests [next, due) are scheduled but not yet sent */
    uint64_t next, due, total;

    /* results */
    uint64_t sent, sent_measured, completed, ok, io_errors, connect_errors;
    uint64_t status_counts[600];
    uint64_t *lat;
    size_t nlat, lat_cap;
    FILE *ids;
    uint64_t ids_written;
    int inflight;
};

static void conn_connect(struct conn *c);
static void dispatch(struct lg *lg);

/* ---------------------------------------------------------------- utils */

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "gangway-loadgen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void lat_push(struct lg *lg, uint64_t ns)
{
    if (lg->nlat == lg->lat_cap) {
        size_t cap = lg->lat_cap ? lg->lat_cap * 2 : 65536;
        uint64_t *p = realloc(lg->lat, cap * sizeof(*p));
        if (p == NULL)
            return; /* out of memory: drop the sample rather than the run */
        lg->lat = p;
        lg->lat_cap = cap;
    }
    lg->lat[lg->nlat++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    /* nearest rank */
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1e6;
}

/* The value of the top-level "id" key of a JSON object, without a full
 * parse: strings are skipped with their escapes, depth is tracked, and only
 * a string key "id" at depth 1 followed by ':' and a string counts. */
static int extract_id(const char *s, size_t n, char *out, size_t cap)
{
    int depth = 0;
    size_t i = 0;

    while (i < n) {
        char ch = s[i];
        if (ch == '"') {
            size_t start = ++i;
            while (i < n && s[i] != '"')
                i += s[i] == '\\' ? 2 : 1;
            if (i >= n)
                return -1;
            size_t end = i++;
            if (depth == 1 && end - start == 2 && memcmp(s + start, "id", 2) == 0) {
                size_t j = i;
                while (j < n && isspace((unsigned char)s[j]))
                    j++;
                if (j >= n || s[j] != ':')
                    continue;
                j++;
                while (j < n && isspace((unsigned char)s[j]))
                    j++;
                if (j >= n || s[j] != '"')
                    return -1;
                size_t vs = ++j;
                while (j < n && s[j] != '"' && s[j] != '\\')
                    j++;
                if (j >= n || s[j] != '"' || j - vs + 1 > cap)
                    return -1;
                memcpy(out, s + vs, j - vs);
                out[j - vs] = '\0';
                return 0;
            }
            continue;
        }
        if (ch == '{' || ch == '[')
            depth++;
        else if (ch == '}' || ch == ']')
            depth--;
        i++;
    }
    return -1;
}

/* ----------------------------------------------------------- connection */

static void on_retry(uv_timer_t *t)
{
    conn_connect(t->data);
}

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct lg *lg = c->lg;
    c->state = CONN_CLOSED;
    if (!lg->finishing)
        uv_timer_start(&c->retry, on_retry, c->retry_ms, 0);
}

static void remove_idle(struct lg *lg, struct conn *c)
{
    for (int i = 0; i < lg->nidle; i++) {
        if (lg->idle[i] == c) {
            lg->idle[i] = lg->idle[--lg->nidle];
            return;
        }
    }
}

/* Drops the connection; an in-flight request counts as an I/O error. */
static void conn_fail(struct conn *c)
{
    struct lg *lg = c->lg;
    if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_BUSY) {
        lg->inflight--;
        if (c->sched_ns >= lg->t_measure)
            lg->io_errors++;
    }
    if (c->state == CONN_IDLE)
        remove_idle(lg, c);
    c->state = CONN_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_idle(struct conn *c)
{
    c->state = CONN_IDLE;
    c->lg->idle[c->lg->nidle++] = c;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->body_len = 0;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    size_t room = sizeof(c->body) - 1 - c->body_len;
    if (len > room)
        len = room;
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct lg *lg = c->lg;
    uint64_t now = uv_hrtime();
    unsigned status = p->status_code;

    if (c->state != CONN_BUSY)
        return 0; /* a response nobody asked for: ignore */
    lg->inflight--;
    lg->completed++;
    if (c->sched_ns >= lg->t_measure) {
        lg->status_counts[status < 600 ? status : 599]++;
        lat_push(lg, now - c->sched_ns);
        if (status == 202) {
            char id[ID_MAX];
            lg->ok++;
            if (lg->ids != NULL && extract_id(c->body, c->body_len, id, sizeof(id)) == 0) {
                fprintf(lg->ids, "%s\n", id);
                lg->ids_written++;
            }
        }
    }
    c->state = CONN_IDLE; /* so conn_fail below does not count it */
    if (!http_should_keep_alive(p)) {
        conn_fail(c);
        return 0;
    }
    conn_idle(c);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_fail(c);
        dispatch(c->lg);
        return;
    }
    if (nread == 0)
        return;
    size_t n = http_parser_execute(&c->parser, &parser_settings, buf->base, (size_t)nread);
    if (c->parser.http_errno != HPE_OK || n != (size_t)nread) {
        if (c->state == CONN_BUSY || c->state == CONN_IDLE)
            fprintf(stderr, "gangway-loadgen: bad response: %s\n",
                    http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
        conn_fail(c);
    }
    dispatch(c->lg);
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED)
        conn_fail(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct lg *lg = c->lg;
    if (c->state != CONN_CONNECTING)
        return;
    if (status < 0) {
        lg->connect_errors++;
        if (lg->connect_errors == 1)
            fprintf(stderr, "gangway-loadgen: connect %s:%d: %s (retrying)\n", lg->host, lg->port,
                    uv_strerror(status));
        c->state = CONN_CLOSING;
        c->retry_ms = RETRY_MS; /* the server is not there: do not spin */
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    c->retry_ms = 0;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    conn_idle(c);
    dispatch(lg);
}

static void conn_connect(struct conn *c)
{
    struct lg *lg = c->lg;
    if (lg->finishing)
        return;
    uv_tcp_init(lg->loop, &c->tcp);
    c->tcp.data = c;
    c->connect_req.data = c;
    c->state = CONN_CONNECTING;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&lg->addr, on_connect);
    if (rc < 0) {
        lg->connect_errors++;
        c->retry_ms = RETRY_MS;
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    }
}

static void conn_send(struct conn *c, uint64_t sched)
{
    struct lg *lg = c->lg;
    uv_write_t *w = malloc(sizeof(*w));
    if (w == NULL)
        return;
    w->data = c;
    c->state = CONN_BUSY;
    c->sched_ns = sched;
    lg->inflight++;
    lg->sent++;
    if (sched >= lg->t_measure)
        lg->sent_measured++;
    if (uv_write(w, (uv_stream_t *)&c->tcp, &lg->request, 1, on_write) < 0) {
        free(w);
        conn_fail(c);
    }
}

/* ------------------------------------------------------------ scheduler */

static void finish(struct lg *lg)
{
    if (lg->finishing)
        return;
    lg->finishing = true;
    uv_timer_stop(&lg->tick);
    uv_close((uv_handle_t *)&lg->tick, NULL);
    uv_close((uv_handle_t *)&lg->sigint, NULL);
    for (int i = 0; i < lg->connections; i++) {
        struct conn *c = &lg->conns[i];
        uv_timer_stop(&c->retry);
        uv_close((uv_handle_t *)&c->retry, NULL);
        if (c->state == CONN_BUSY)
            lg->inflight--; /* reported as unfinished */
        if (c->state != CONN_CLOSED && c->state != CONN_CLOSING) {
            c->state = CONN_CLOSING;
            uv_close((uv_handle_t *)&c->tcp, conn_closed);
        }
    }
}

static void dispatch(struct lg *lg)
{
    if (lg->finishing)
        return;
    while (lg->nidle > 0) {
        uint64_t sched;
        if (lg->rate > 0) {
            if (lg->next >= lg->due)
                break;
            sched = lg->t0 + (uint64_t)((double)lg->next * 1e9 / lg->rate);
            lg->next++;
        } else {
            if (!lg->sending)
                break;
            sched = uv_hrtime();
        }
        struct conn *c = lg->idle[--lg->nidle];
        conn_send(c, sched);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct lg *lg = t->data;
    uint64_t now = uv_hrtime();

    if (lg->sending && now >= lg->t_end)
        lg->sending = false;
    if (lg->rate > 0) {
        uint64_t due = (uint64_t)((double)(now - lg->t0) * lg->rate / 1e9) + 1;
        lg->due = due < lg->total ? due : lg->total;
    }
    dispatch(lg);
    if (!lg->sending) {
        bool queued = lg->rate > 0 && lg->next < lg->due;
        if ((lg->inflight == 0 && !queued) || now >= lg->t_drain_end || lg->interrupted)
            finish(lg);
    }
}

static void on_sigint(uv_signal_t *s, int sig)
{
    struct lg *lg = s->data;
    lg->interrupted = true;
    lg->sending = false;
    if (lg->rate > 0)
        lg->total = lg->due;
}

/* ---------------------------------------------------------------- setup */

static void parse_url(struct lg *lg)
{
    const char *u = lg->url;
    char port_s[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;

    if (strncmp(u, "http://", 7) != 0)
        die("--url must start with http:// (got '%s')", u);
    u += 7;
    size_t hl = strcspn(u, ":/");
    if (hl == 0 || hl >= sizeof(lg->host))
        die("bad host in --url '%s'", lg->url);
    memcpy(lg->host, u, hl);
    lg->host[hl] = '\0';
    lg->port = 80;
    if (u[hl] == ':')
        lg->port = atoi(u + hl + 1);
    if (lg->port <= 0 || lg->port > 65535)
        die("bad port in --url '%s'", lg->url);
    snprintf(port_s, sizeof(port_s), "%d", lg->port);
    if (getaddrinfo(lg->host, port_s, &hints, &res) != 0 || res == NULL)
        die("cannot resolve '%s'", lg->host);
    memcpy(&lg->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
}

static void build_request(struct lg *lg)
{
    size_t blen = strlen(lg->inputs) + 16;
    char *body = malloc(blen);
    snprintf(body, blen, "{\"inputs\":%s}", lg->inputs);
    size_t cap = strlen(body) + strlen(lg->action) + strlen(lg->token) + 512;
    char *req = malloc(cap);
    int n = snprintf(req, cap,
                     "POST /v1/actions/%s/runs HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Authorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "\r\n%s",
                     lg->action, lg->host, lg->port, lg->token, strlen(body), body);
    free(body);
    lg->request = uv_buf_init(req, (unsigned)n);
}

static const char usage_text[] =
    "usage: gangway-loadgen [options]\n"
    "  --url URL          broker base URL (default http://127.0.0.1:8080)\n"
    "  --action ID        action to submit (default echo)\n"
    "  --token TOKEN      API token (or GANGWAY_TOKEN)\n"
    "  --inputs JSON      the run's inputs object (default {\"message\":\"bench\"})\n"
    "  --connections C    keep-alive connections (default 16)\n"
    "  --duration S       sending time in seconds, after warm-up (default 10)\n"
    "  --warmup S         seconds sent but not counted (default 0)\n"
    "  --rate R           open loop at R requests/s; without it, closed loop\n"
    "  --drain S          wait at most S s for late responses (default 30)\n"
    "  --ids FILE         write the ids of accepted (202) runs, one a line\n";

static void parse_args(struct lg *lg, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"action", required_argument, NULL, 'a'},
        {"token", required_argument, NULL, 't'},
        {"inputs", required_argument, NULL, 'i'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {"drain", required_argument, NULL, 'D'},
        {"ids", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    lg->url = "http://127.0.0.1:8080";
    lg->action = "echo";
    lg->token = getenv("GANGWAY_TOKEN");
    lg->inputs = "{\"message\":\"bench\"}";
    lg->connections = 16;
    lg->duration_s = 10;
    lg->drain_s = 30;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            lg->url = optarg;
            break;
        case 'a':
            lg->action = optarg;
            break;
        case 't':
            lg->token = optarg;
            break;
        case 'i':
            lg->inputs = optarg;
            break;
        case 'c':
            lg->connections = atoi(optarg);
            break;
        case 'd':
            lg->duration_s = atof(optarg);
            break;
        case 'w':
            lg->warmup_s = atof(optarg);
            break;
        case 'r':
            lg->rate = atof(optarg);
            break;
        case 'D':
            lg->drain_s = atof(optarg);
            break;
        case 'I':
            lg->ids_path = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            exit(0);
        default:
            fputs(usage_text, stderr);
            exit(2);
        }
    }
    if (lg->token == NULL || lg->token[0] == '\0')
        die("%s", "--token (or GANGWAY_TOKEN) is required");
    if (lg->connections < 1 || lg->connections > MAX_CONNECTIONS)
        die("%s", "--connections must be 1..4096");
    if (!(lg->duration_s > 0) || lg->warmup_s < 0 || lg->rate < 0 || lg->drain_s < 0)
        die("%s", "--duration must be > 0; --warmup, --rate, --drain >= 0");
    for (const char *p = lg->action; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            die("bad --action '%s'", lg->action);
}

static void report(struct lg *lg)
{
    double secs = lg->duration_s;
    uint64_t errors = lg->io_errors, unfinished;

    for (int s = 0; s < 600; s++)
        if (s != 202)
            errors += lg->status_counts[s];
    unfinished = lg->sent_measured - lg->ok - errors;
    if (lg->nlat > 0)
        qsort(lg->lat, lg->nlat, sizeof(*lg->lat), cmp_u64);

    if (lg->rate > 0)
        printf("mode:        open loop, %.0f req/s for %.1f s (+%.1f s warm-up), %d connections\n",
               lg->rate, lg->duration_s, lg->warmup_s, lg->connections);
    else
        printf("mode:        closed loop, %d connections for %.1f s (+%.1f s warm-up)\n",
               lg->connections, lg->duration_s, lg->warmup_s);
    if (lg->interrupted)
        printf("note:        interrupted; rates are over the full planned duration\n");
    printf("sent:        %llu (measured; %llu including warm-up)\n",
           (unsigned long long)lg->sent_measured, (unsigned long long)lg->sent);
    printf("202:         %llu\n", (unsigned long long)lg->ok);
    printf("errors:      %llu", (unsigned long long)errors);
    for (int s = 0; s < 600; s++)
        if (s != 202 && lg->status_counts[s] > 0)
            printf("  [%d: %llu]", s, (unsigned long long)lg->status_counts[s]);
    if (lg->io_errors > 0)
        printf("  [io: %llu]", (unsigned long long)lg->io_errors);
    printf("\n");
    printf("unfinished:  %llu   connect errors: %llu\n", (unsigned long long)unfinished,
           (unsigned long long)lg->connect_errors);
    printf("achieved:    %.1f req/s completed, %.1f 202/s\n", (double)lg->nlat / secs,
           (double)lg->ok / secs);
    printf("latency ms:  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (n=%zu, %s)\n",
           pct_ms(lg->lat, lg->nlat, 50), pct_ms(lg->lat, lg->nlat, 90),
           pct_ms(lg->lat, lg->nlat, 99), pct_ms(lg->lat, lg->nlat, 99.9),
           lg->nlat ? (double)lg->lat[lg->nlat - 1] / 1e6 : 0.0, lg->nlat,
           lg->rate > 0 ? "from scheduled send time" : "from send time");
    if (lg->ids_path != NULL)
        printf("ids:         %llu written to %s\n", (unsigned long long)lg->ids_written,
               lg->ids_path);
    /* One line for scripts. */
    printf("loadgen: sent=%llu ok=%llu errors=%llu unfinished=%llu rate=%.1f ok_rate=%.1f "
           "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
           (unsigned long long)lg->sent_measured, (unsigned long long)lg->ok,
           (unsigned long long)errors, (unsigned long long)unfinished, (double)lg->nlat / secs,
           (double)lg->ok / secs, pct_ms(lg->lat, lg->nlat, 50), pct_ms(lg->lat, lg->nlat, 90),
           pct_ms(lg->lat, lg->nlat, 99), lg->nlat ? (double)lg->lat[lg->nlat - 1] / 1e6 : 0.0);
}

int main(int argc, char **argv)
{
    struct lg lg = {0};

    signal(SIGPIPE, SIG_IGN);
    parse_args(&lg, argc, argv);
    parse_url(&lg);
    build_request(&lg);
    if (lg.ids_path != NULL) {
        lg.ids = fopen(lg.ids_path, "w");
        if (lg.ids == NULL)
            die("cannot write '%s'", lg.ids_path);
    }
    lg.loop = uv_default_loop();
    lg.conns = calloc((size_t)lg.connections, sizeof(*lg.conns));
    lg.idle = calloc((size_t)lg.connections, sizeof(*lg.idle));
    if (lg.conns == NULL || lg.idle == NULL)
        die("%s", "out of memory");

    uv_timer_init(lg.loop, &lg.tick);
    lg.tick.data = &lg;
    uv_signal_init(lg.loop, &lg.sigint);
    lg.sigint.data = &lg;
    uv_signal_start(&lg.sigint, on_sigint, SIGINT);

    lg.t0 = uv_hrtime();
    lg.t_measure = lg.t0 + (uint64_t)(lg.warmup_s * 1e9);
    lg.t_end = lg.t_measure + (uint64_t)(lg.duration_s * 1e9);
    lg.t_drain_end = lg.t_end + (uint64_t)(lg.drain_s * 1e9);
    lg.sending = true;
    if (lg.rate > 0)
        lg.total = (uint64_t)llround(lg.rate * (lg.warmup_s + lg.duration_s));

    for (int i = 0; i < lg.connections; i++) {
        struct conn *c = &lg.conns[i];
        c->lg = &lg;
        uv_timer_init(lg.loop, &c->retry);
        c->retry.data = c;
        conn_connect(c);
    }
    uv_timer_start(&lg.tick, on_tick, TICK_MS, TICK_MS);
    uv_run(lg.loop, UV_RUN_DEFAULT);

    if (lg.ids != NULL && fclose(lg.ids) != 0)
        fprintf(stderr, "gangway-loadgen: writing %s: %s\n", lg.ids_path, strerror(errno));
    lg.ids = NULL;
    report(&lg);
    uv_loop_close(lg.loop);
    free(lg.lat);
    free(lg.conns);
    free(lg.idle);
    free(lg.request.base);
    return lg.ok > 0 ? 0 : 1;
}
