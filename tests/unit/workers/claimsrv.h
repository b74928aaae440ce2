/* Starts tests/unit/workers/claim_server.py (python3) for a test. */
#ifndef GW_TEST_CLAIMSRV_H
#define GW_TEST_CLAIMSRV_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wtest.h"

struct claimsrv {
    pid_t pid;
    int port;
    char url[64];
};

/* Returns 0, or -1 when python3 or the script is missing. */
static inline int claimsrv_start(struct claimsrv *s)
{
    const char *root = getenv("GW_SOURCE_ROOT");
    char script[1024], buf[32];
    int fds[2];
    size_t n = 0;
    ssize_t r;
    snprintf(script, sizeof(script), "%s/tests/unit/workers/claim_server.py", root ? root : ".");
    if (access(script, R_OK) != 0 || pipe(fds) != 0)
        return -1;
    s->pid = fork();
    CHECK(s->pid >= 0);
    if (s->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", script, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* Up to the newline: the port may arrive in pieces. */
    while (n < sizeof(buf) - 1 && (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0) {
        n += (size_t)r;
        if (memchr(buf, '\n', n) != NULL)
            break;
    }
    close(fds[0]);
    if (n == 0)
        return -1;
    buf[n] = '\0';
    s->port = atoi(buf);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
    return s->port > 0 ? 0 : -1;
}

static inline void claimsrv_stop(struct claimsrv *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

#endif
