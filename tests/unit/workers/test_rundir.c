/*
 * workers/rundir.h: what a starting worker does with the run directories it
 * finds. Adopted: its group's runs whose supervisor is alive (the socket
 * accepts) or whose spool is finished. Removed: a run whose supervisor died
 * before the program ended (host loss: the broker's worker_lost rule
 * applies). Left alone: another group's runs, runs a live worker holds
 * (lock), and runs without meta.json. gw_rundir_take refuses a held run.
 */
#include "rundir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gw/fs.h"
#include "spool.h"

#define CHECK_NAMED
#include "../check.h"

static char state[64];

struct adopted {
    int n;
    char names[8][96];
    bool alive[8];
    int fds[8];
};

static void on_adopt(void *arg, const char *dir, json_t *meta, int lock_fd, bool alive)
{
    struct adopted *a = arg;
    if (a->n < 8) {
        snprintf(a->names[a->n], sizeof(a->names[0]), "%s", strrchr(dir, '/') + 1);
        a->alive[a->n] = alive;
        a->fds[a->n] = lock_fd;
    }
    a->n++;
    json_decref(meta);
}

/* A run directory: meta.json of `group` (NULL: none), a spool ending with
 * EXIT or not. */
static void make_run(const char *name, const char *group, bool finished)
{
    char dir[128], path[160];
    FILE *f;
    size_t n;
    char *t;
    snprintf(dir, sizeof(dir), "%s/%s", state, name);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/lock", dir);
    close(open(path, O_RDWR | O_CREAT, 0600));
    if (group != NULL) {
        snprintf(path, sizeof(path), "%s/meta.json", dir);
        f = fopen(path, "w");
        fprintf(f, "{\"group\":\"%s\",\"run_id\":\"%s\",\"attempt\":1,\"worker_id\":\"w-1\"}",
                group, name);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/spool", dir);
    f = fopen(path, "w");
    t = gw_spool_log_text(1, "stdout", "hello", 5, &n);
    fputs(t, f);
    free(t);
    if (finished) {
        t = gw_spool_exit_text(2, 0, 0, "none", NULL, &n);
        fputs(t, f);
        free(t);
    }
    fclose(f);
}

static bool exists(const char *name)
{
    char dir[128];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/%s", state, name);
    return stat(dir, &st) == 0;
}

static int index_of(const struct adopted *a, const char *name)
{
    for (int i = 0; i < a->n && i < 8; i++)
        if (strcmp(a->names[i], name) == 0)
            return i;
    return -1;
}

int main(void)
{
    struct adopted a = {0};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char dir[128], path[160];
    struct gw_error err;
    int listener, held, fd, i;

    snprintf(state, sizeof(state), "/tmp/gw-rundir-XXXXXX");
    if (mkdtemp(state) == NULL)
        return 1;
    make_run("finished.1", "g", true);
    make_run("dead.1", "g", false);
    make_run("live.1", "g", false);
    make_run("other.1", "h", true);
    make_run("held.1", "g", true);
    make_run("nometa.1", NULL, false);

    /* live.1's supervisor: a listening socket. */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/live.1/sock", state);
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(listener, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(listener, 4) == 0,
          "a live supervisor's socket");
    snprintf(dir, sizeof(dir), "%s/live.1", state);
    CHECK(gw_rundir_supervisor_alive(dir), "it counts as alive");
    snprintf(dir, sizeof(dir), "%s/dead.1", state);
    CHECK(!gw_rundir_supervisor_alive(dir), "no socket: not alive");

    /* held.1 belongs to a live worker. */
    snprintf(path, sizeof(path), "%s/held.1/lock", state);
    held = open(path, O_RDWR);
    CHECK(held >= 0 && flock(held, LOCK_EX | LOCK_NB) == 0, "a worker holds held.1");

    CHECK(gw_rundir_scan(state, "g", on_adopt, &a) == 2, "two runs adopted (%d)", a.n);
    i = index_of(&a, "finished.1");
    CHECK(i >= 0 && !a.alive[i], "a finished spool without supervisor is adopted");
    i = index_of(&a, "live.1");
    CHECK(i >= 0 && a.alive[i], "a live supervisor's run is adopted");
    CHECK(!exists("dead.1"), "a dead supervisor's unfinished run is removed");
    CHECK(exists("other.1") && index_of(&a, "other.1") < 0, "another group's run is untouched");
    CHECK(exists("held.1") && index_of(&a, "held.1") < 0, "a held run is skipped");
    CHECK(exists("nometa.1") && index_of(&a, "nometa.1") < 0, "a run without meta is left");

    /* An adopted run's lock is ours: a second scan (another worker) skips it. */
    {
        struct adopted b = {0};
        CHECK(gw_rundir_scan(state, "g", on_adopt, &b) == 0, "adopted runs are not adopted twice");
    }
    fd = gw_rundir_take(state, "held", 1, dir, sizeof(dir), &err);
    CHECK(fd < 0, "gw_rundir_take refuses a held run");
    fd = gw_rundir_take(state, "fresh", 1, dir, sizeof(dir), &err);
    CHECK(fd >= 0 && exists("fresh.1") && (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0,
          "gw_rundir_take makes and locks a new run's directory, close-on-exec");

    for (i = 0; i < a.n && i < 8; i++)
        close(a.fds[i]);
    close(fd);
    close(held);
    close(listener);
    gw_fs_remove_tree(state);
    return failures != 0;
}
