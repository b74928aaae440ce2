/*
 * Live streams (Server-Sent Events): a run's log lines as they arrive
 * (GET /v1/runs/{id}/logs?follow=true) and the run and resource changes of
 * the whole broker (GET /v1/events).
 *
 * Events on the wire:
 *   logs:   "id: <pos>\nevent: log\ndata: {attempt, seq, stream, line, at}\n\n"
 *           with pos = (attempt << 20) + seq (lib/gw/logpos.h), then
 *           "event: end\ndata: {status, reason?}\n\n" and the end of the body
 *           once the run is terminal and every line it logged was sent.
 *   events: "id: <n>\nevent: run\ndata: {id, run_id, attempt, from, to,
 *           reason, at}\n\n" where `id` in data is the gw_run_events row and
 *           the SSE id <n> is the highest row id this connection has sent:
 *           a row that commits late (ids come from a sequence and commit out
 *           of order) is still sent, without moving Last-Event-ID backwards.
 *           "event: resource\ndata: <resource as GET /v1/resources/{id}>\n\n"
 *           when a resource's status or expiry changes (no SSE id, so the
 *           client's Last-Event-ID stays the run watermark).
 *   both:   ": keepalive\n\n" every GW_SSE_KEEPALIVE_MS (default 15000),
 *           read once when the hub is created.
 * Resume: Last-Event-ID (or ?after=N) continues after N with no gap and no
 * duplicate for log lines; for run events it continues after N, and rows
 * below N that had not committed when the previous connection ended are not
 * replayed. Resource events do not resume: a new connection sees changes
 * from the moment it starts.
 *
 * Who sees what: the caller's read_runs scope (policy.h, gw_visible), as
 * for GET /v1/runs and GET /v1/resources: a run the caller may not see is a
 * 404 for its logs, and its transitions and resources are left out of the
 * feed. The scope is resolved once when a stream starts (a policy reload
 * applies to streams opened afterwards).
 *
 * Wake-ups: gw_stream_events_applied() (called by this broker's event sink)
 * wakes the streams concerned at once; a poll timer (every 500 ms, running
 * only while streams are open) finds changes made by other replicas. Each
 * stream has at most one query in flight; a wake during a query marks it to
 * run again. A stream holds at most one query result (<= 100 log lines or
 * 200 run events plus the resource rows of a 2 s window) at a time; the HTTP
 * server cuts a client that lets more than 16 MiB pile up, and it resumes.
 *
 * Ownership and threading: the hub belongs to the broker (b->streams);
 * everything runs on the broker's loop thread.
 *
 * Files: stream.c (the hub and the per-stream state machine both kinds
 * share), stream_logs.c and stream_events.c (one kind each), and
 * stream_impl.h between them.
 */
#ifndef GW_BROKER_STREAM_H
#define GW_BROKER_STREAM_H

#include "api.h"

struct gw_stream_hub;

/* Reads GW_SSE_KEEPALIVE_MS. Returns NULL with `err` set when out of memory. */
struct gw_stream_hub *gw_stream_hub_create(struct gw_broker *b, struct gw_error *err);

/* Ends every open stream now (so the HTTP server's graceful shutdown does not
 * wait for them) and frees the hub once the queries still in flight have
 * come back. Requests arriving afterwards must not use the hub: the broker
 * sets b->streams to NULL and the handlers answer 503. Accepts NULL. */
void gw_stream_hub_destroy(struct gw_stream_hub *h);

/* The sink applied a batch of worker events (`events_json`, the JSON array
 * given to gw_apply_events): wakes the log streams of the runs in it, and the
 * event streams when it may have changed a run's state. Accepts NULL. */
void gw_stream_events_applied(struct gw_stream_hub *h, const char *events_json);

/* Handlers. gw_stream_run_logs answers GET /v1/runs/{id}/logs: with
 * follow=true (or 1) it streams, otherwise it hands over to gw_api_run_logs. */
void gw_stream_run_logs(struct gw_api_ctx *ctx);
void gw_stream_events(struct gw_api_ctx *ctx);

#endif
