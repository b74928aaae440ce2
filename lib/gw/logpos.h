/*
 * The position of a run's log line: one bigint, (attempt << 20) + seq, so
 * the lines of every attempt sort in order and a client resumes with one
 * number. It is the JSON endpoint's `pos` (GET /v1/runs/{id}/logs?after=)
 * and the log stream's SSE event id (resumed with Last-Event-ID or
 * ?after=); clients treat it as opaque.
 *
 * PostgreSQL computes it in queries (GW_LOG_POS_SQL); C splits a client's
 * position back into the (attempt, seq) to continue after.
 *
 * Threading: none.
 */
#ifndef GW_LOGPOS_H
#define GW_LOGPOS_H

#define GW_LOG_POS_SEQ_BITS 20

/* The position of the gw_worker_events row aliased `w`, as SQL text. */
#define GW_LOG_POS_SQL "((w.attempt::bigint << 20) + w.seq)"

/* The position of line `seq` of `attempt`. */
long long gw_log_pos(long long attempt, long long seq);

/* The (attempt, seq) a client at `pos` has seen last (pos >= 0). Attempts
 * are PostgreSQL integers: a position past the last one any run can have
 * gives (INT_MAX, INT_MAX), "nothing more", instead of a cast error. */
void gw_log_pos_split(long long pos, long long *attempt, long long *seq);

#endif
