/*
 * The listening side of the HTTP server: bind, accept, graceful destroy and
 * the bits every connection shares (stats, the cached Date header).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/log.h"

#define LISTEN_BACKLOG 511

static void apply_defaults(struct gw_http_server_options *o)
{
    if (o->host == NULL)
        o->host = "127.0.0.1";
    if (o->max_header_bytes == 0)
        o->max_header_bytes = 16 * 1024;
    if (o->max_headers == 0)
        o->max_headers = 64;
    if (o->max_body_bytes == 0)
        o->max_body_bytes = 1024 * 1024;
    if (o->header_timeout_ms == 0)
        o->header_timeout_ms = 10 * 1000;
    if (o->idle_timeout_ms == 0)
        o->idle_timeout_ms = 60 * 1000;
    if (o->body_timeout_ms == 0)
        o->body_timeout_ms = 30 * 1000;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct gw_http_server *srv =
        container_of((uv_tcp_t *)listener, struct gw_http_server, listener);
    if (status < 0) {
        gw_log_warn("http: accept failed: %s", uv_strerror(status));
        return;
    }
    if (srv->draining)
        return;
    if (gw__http_conn_create(srv) == NULL) {
        /* Out of memory: accept and drop so the backlog does not spin. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL)
            return;
        uv_tcp_init(srv->loop, t);
        if (uv_accept(listener, (uv_stream_t *)t) == 0)
            gw_log_warn("http: dropping connection: out of memory");
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
    }
}

void gw__http_server_maybe_finish(struct gw_http_server *srv)
{
    if (!srv->draining || !srv->listener_closed || srv->nconns != 0 || srv->detached != 0)
        return;
    void (*done)(void *) = srv->done;
    void *done_arg = srv->done_arg;
    free(srv);
    if (done != NULL)
        done(done_arg);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct gw_http_server *srv = container_of((uv_tcp_t *)h, struct gw_http_server, listener);
    srv->listener_closed = true;
    gw__http_server_maybe_finish(srv);
}

struct gw_http_server *gw_http_server_create(uv_loop_t *loop,
                                             const struct gw_http_server_options *opts,
                                             gw_http_handler handler, void *arg,
                                             struct gw_error *err)
{
    struct gw_http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "http: out of memory");
        return NULL;
    }
    if (opts != NULL)
        srv->opts = *opts;
    apply_defaults(&srv->opts);
    if (srv->opts.max_headers > 100000)
        srv->opts.max_headers = 100000;
    srv->loop = loop;
    gw_list_init(&srv->conns);
    srv->handler = handler;
    srv->arg = arg;

    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    if (uv_ip4_addr(srv->opts.host, srv->opts.port, &addr.in4) != 0 &&
        uv_ip6_addr(srv->opts.host, srv->opts.port, &addr.in6) != 0) {
        gw_error_set(err, GW_EINVAL, false, "http: bad listen address '%s'", srv->opts.host);
        free(srv);
        return NULL;
    }
    int r = uv_tcp_init(loop, &srv->listener);
    if (r != 0) {
        gw_error_set(err, GW_EIO, false, "http: uv_tcp_init: %s", uv_strerror(r));
        free(srv);
        return NULL;
    }
    r = uv_tcp_bind(&srv->listener, &addr.sa, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG, on_connection);
    if (r != 0) {
        gw_error_set(err, GW_EIO, r == UV_EADDRINUSE, "http: listen on %s:%d: %s", srv->opts.host,
                     srv->opts.port, uv_strerror(r));
        /* The server is freed in the close callback once the listener is gone. */
        srv->draining = true;
        uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
        return NULL;
    }
    return srv;
}

int gw_http_server_port(const struct gw_http_server *srv)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

void gw_http_server_destroy(struct gw_http_server *srv, void (*done)(void *arg), void *arg)
{
    if (srv == NULL)
        return;
    if (srv->draining)
        return; /* already being destroyed */
    srv->draining = true;
    srv->done = done;
    srv->done_arg = arg;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    /* gw__http_conn_shutdown_idle() may unlink the connection only in its close
     * callback, which runs later, so walking the list here is safe. */
    gw_list_foreach (it, &srv->conns)
        gw__http_conn_shutdown_idle(gw_list_entry(it, struct gw__http_conn, link));
}

void gw__http_server_conn_gone(struct gw_http_server *srv, struct gw__http_conn *c)
{
    gw_list_remove(&c->link);
    srv->nconns--;
    srv->stats.connections_open = srv->nconns;
}

const char *gw__http_server_date(struct gw_http_server *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        /* Formatted by hand: strftime's %a and %b follow the locale. */
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        srv->date_sec = now;
    }
    return srv->date;
}

void gw_http_server_stats(const struct gw_http_server *srv, struct gw_http_stats *out)
{
    *out = srv->stats;
    out->connections_open = srv->nconns;
}
