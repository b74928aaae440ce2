/* The run context functions backends call; they forward to the sink once. */
#include "backend.h"
#include "gw/log.h"

void gw_run_log(struct gw_run *run, const char *stream, const char *line, size_t len)
{
    if (run->finished)
        return;
    while (len > GW_RUN_LOG_LINE_MAX) {
        run->sink->log(run, stream, line, GW_RUN_LOG_LINE_MAX);
        line += GW_RUN_LOG_LINE_MAX;
        len -= GW_RUN_LOG_LINE_MAX;
    }
    run->sink->log(run, stream, line, len);
}

static void finish(struct gw_run *run, const struct gw_run_result *res)
{
    if (run->finished) {
        /* A backend bug; never report two outcomes for one attempt. */
        gw_log(GW_LOG_ERROR, run->run_id, "backend finished the run twice; ignored");
        return;
    }
    run->finished = true;
    run->sink->finish(run, res);
}

void gw_run_finish_succeeded(struct gw_run *run, json_t *outputs)
{
    struct gw_run_result r = {.outcome = GW_RUN_SUCCEEDED, .exit_code = 0};
    r.outputs = outputs != NULL ? outputs : json_object();
    finish(run, &r);
    json_decref(r.outputs);
}

void gw_run_finish_failed(struct gw_run *run, const char *reason, int exit_code,
                          const char *message)
{
    struct gw_run_result r = {
        .outcome = GW_RUN_FAILED, .reason = reason, .exit_code = exit_code, .message = message};
    finish(run, &r);
}

void gw_run_finish_timed_out(struct gw_run *run, const char *message)
{
    struct gw_run_result r = {.outcome = GW_RUN_TIMED_OUT, .exit_code = -1, .message = message};
    finish(run, &r);
}

void gw_run_finish_cancelled(struct gw_run *run, const char *message)
{
    struct gw_run_result r = {.outcome = GW_RUN_CANCELLED, .exit_code = -1, .message = message};
    finish(run, &r);
}
