/*
 * workers/slot.h: a worker without --worker-id takes the lowest free slot of
 * its group on the host; slots are never shared while held, a slot given up
 * is taken again by the next worker (the replacement of a killed one), and
 * the lock is not inherited by programs the worker starts.
 */
#include "slot.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK_COUNTS
#include "../check.h"

static const char *suffix(const char *id)
{
    const char *d = strrchr(id, '-');
    return d != NULL ? d + 1 : "";
}

int main(void)
{
    char dir[] = "/tmp/gw-slot-test-XXXXXX", a[128], b[128], c[128], d[128], group[64];
    int fa, fb, fc, fd;
    if (mkdtemp(dir) == NULL)
        return 1;
    setenv("XDG_RUNTIME_DIR", dir, 1);
    snprintf(group, sizeof(group), "t%d.gangway-workers-exec", (int)getpid());

    fa = gw_worker_slot_take(group, a, sizeof(a));
    fb = gw_worker_slot_take(group, b, sizeof(b));
    CHECK(fa >= 0 && fb >= 0);
    CHECK(strcmp(suffix(a), "w0") == 0);
    CHECK(strcmp(suffix(b), "w1") == 0); /* held: never shared */
    CHECK((fcntl(fa, F_GETFD) & FD_CLOEXEC) != 0);

    /* Another group has slots of its own. */
    fd = gw_worker_slot_take("other-group", d, sizeof(d));
    CHECK(fd >= 0 && strcmp(suffix(d), "w0") == 0);

    /* A worker that dies gives its slot up; its replacement takes it. */
    close(fa);
    fc = gw_worker_slot_take(group, c, sizeof(c));
    CHECK(fc >= 0 && strcmp(c, a) == 0);

    /* A child process (another worker on the host) cannot take a held slot. */
    pid_t pid = fork();
    if (pid == 0) {
        char e[128];
        int fe = gw_worker_slot_take(group, e, sizeof(e));
        _exit(fe >= 0 && strcmp(suffix(e), "w2") == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    close(fb);
    close(fc);
    close(fd);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("slot tests passed\n");
    return 0;
}
