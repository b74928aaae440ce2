/*
 * One child process of the terraform backend on the loop: its own process
 * group (never a shell), stdout/stderr split into lines or stdout captured
 * whole, and the stop sequence SIGINT -> SIGTERM -> SIGKILL.
 *
 * Threading: loop thread only. The struct is embedded by the caller and must
 * stay put until `done` has run.
 */
#ifndef GW_TF_SPAWN_H
#define GW_TF_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "backends/exec/exec_io.h"

struct tf_proc;
typedef void (*tf_line_fn)(void *ctx, const char *stream, const char *line, size_t len);
typedef void (*tf_done_fn)(struct tf_proc *p, void *ctx);

struct tf_proc {
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t kill;
    int open_handles;
    bool proc_open, out_open, err_open, kill_open;
    struct exec_lines out_lines, err_lines;
    bool capture; /* stdout kept in `cap` instead of logged */
    char *cap;    /* NUL-terminated once done */
    size_t cap_len, cap_size;
    bool cap_overflow;
    tf_line_fn line;
    tf_done_fn done;
    void *ctx;
    uint64_t grace_ms;
    int stop_stage; /* 0 none, 1 SIGINT sent, 2 SIGTERM sent, 3 SIGKILL sent */

    /* Results, valid in `done`. */
    bool spawned, exited;
    int spawn_rc; /* libuv error of uv_spawn when !spawned */
    int64_t exit_status;
    int term_signal;
};

/* Spawns argv[0] (a path, or a name looked up in envp's PATH by libuv) in
 * `cwd`. `done` always follows exactly once, from a close callback, after
 * every handle is closed: also when uv_spawn fails (spawned false). */
void gw_tf_proc_start(struct tf_proc *p, uv_loop_t *loop, char **argv, char **envp, const char *cwd,
                      bool capture, tf_line_fn line, tf_done_fn done, void *ctx);

/* Starts the stop sequence: SIGINT to the group now, SIGTERM after grace_ms,
 * SIGKILL after another grace_ms. No-op once exited or already stopping. */
void gw_tf_proc_stop(struct tf_proc *p, uint64_t grace_ms);

/* Frees the line buffers and the captured stdout (call after done). */
void gw_tf_proc_release(struct tf_proc *p);

#endif
