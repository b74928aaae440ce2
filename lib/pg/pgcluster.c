/*
 * The private PostgreSQL cluster of `gangway dev` (lib/gw/pgcluster.h):
 * initdb once, start postgres as a child, wait for it, stop it. Blocking by
 * design: it runs before any loop exists.
 */
#include "gw/pgcluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gw/log.h"

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS  30000
#define SUPERUSER        "gangway"

struct gw_pgcluster {
    pid_t pid;
    int port;
    char datadir[PATH_MAX];
    char conninfo[128];
};

/* Who runs initdb and postgres: ourselves, or an unprivileged user when we
 * are root (both refuse to run as root). */
struct runas {
    bool drop;
    uid_t uid;
    gid_t gid;
    char name[32];
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The newest /usr/lib/postgresql/<version>/bin with initdb and postgres. */
static int find_bindir(char *buf, size_t cap, struct gw_error *err)
{
    DIR *d = opendir("/usr/lib/postgresql");
    struct dirent *e;
    double best = -1;

    if (d == NULL)
        return gw_error_set(err, GW_ENOTFOUND, false,
                            "no PostgreSQL server binaries (/usr/lib/postgresql): install "
                            "Debian's postgresql package");
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX], *end;
        double v = strtod(e->d_name, &end);

        if (end == e->d_name || *end != '\0' || v <= best)
            continue;
        snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/postgres", e->d_name);
        if (access(path, X_OK) != 0)
            continue;
        snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/initdb", e->d_name);
        if (access(path, X_OK) != 0)
            continue;
        best = v;
        snprintf(buf, cap, "/usr/lib/postgresql/%s/bin", e->d_name);
    }
    closedir(d);
    if (best < 0)
        return gw_error_set(err, GW_ENOTFOUND, false,
                            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin");
    return 0;
}

static int runas_lookup(struct runas *ra, struct gw_error *err)
{
    struct passwd *pw;

    memset(ra, 0, sizeof(*ra));
    if (geteuid() != 0)
        return 0;
    pw = getpwnam("postgres");
    if (pw == NULL)
        pw = getpwnam("nobody");
    if (pw == NULL)
        return gw_error_set(err, GW_ENOTFOUND, false,
                            "running as root and there is no `postgres` or `nobody` user to "
                            "run PostgreSQL as");
    ra->drop = true;
    ra->uid = pw->pw_uid;
    ra->gid = pw->pw_gid;
    snprintf(ra->name, sizeof(ra->name), "%s", pw->pw_name);
    return 0;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child_setup(const struct runas *ra, int outfd, bool server, pid_t parent)
{
    int null = open("/dev/null", O_RDONLY);

    if (null >= 0)
        dup2(null, 0);
    if (outfd >= 0) {
        dup2(outfd, 1);
        dup2(outfd, 2);
    }
    close_range(3, ~0U, 0);
    if (server) {
        /* Own process group: a terminal's Ctrl-C reaches gangway, which
         * stops the server in order, not the server directly. */
        setpgid(0, 0);
    }
    if (ra->drop && (setgroups(0, NULL) != 0 || setgid(ra->gid) != 0 || setuid(ra->uid) != 0))
        _exit(126);
    if (server) {
        /* Set after setuid, which clears it: if our starter dies without
         * stopping us, shut down fast instead of lingering. */
        prctl(PR_SET_PDEATHSIG, SIGINT);
        if (getppid() != parent)
            _exit(1);
    }
}

/* Runs argv to completion with its output captured into `out`. Returns the
 * exit status (or -1). */
static int run_capture(const struct runas *ra, char *const argv[], char *out, size_t cap)
{
    int fds[2];
    pid_t pid, parent = getpid();
    size_t n = 0;
    int status;

    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        child_setup(ra, fds[1], false, parent);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        char tmp[4096];
        ssize_t r = read(fds[0], tmp, sizeof(tmp));

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        /* Keep the end: that is where the reason is. */
        for (ssize_t i = 0; i < r; i++) {
            if (n + 1 >= cap) {
                memmove(out, out + cap / 2, n - cap / 2);
                n -= cap / 2;
            }
            out[n++] = tmp[i];
        }
    }
    out[n] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* nftw passes no user argument: the owner to give files to, set by
 * give_to() right before the walk (start-up code, one thread). */
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return lchown(path, chown_uid, chown_gid) == 0 ? 0 : -1;
}

/* Hands the directory tree to the server's user (only when we are root). */
static int give_to(const char *dir, const struct runas *ra)
{
    struct stat st;

    if (!ra->drop)
        return 0;
    if (stat(dir, &st) == 0 && st.st_uid == ra->uid)
        return 0;
    chown_uid = ra->uid;
    chown_gid = ra->gid;
    return nftw(dir, chown_one, 16, FTW_PHYS);
}

/* Whether the server's user can reach `dir` through every parent. */
static bool reachable(const char *dir, const struct runas *ra)
{
    pid_t pid, parent = getpid();
    int status;

    if (!ra->drop)
        return true;
    pid = fork();
    if (pid < 0)
        return true; /* let initdb say it */
    if (pid == 0) {
        child_setup(ra, -1, false, parent);
        _exit(access(dir, R_OK | W_OK | X_OK) == 0 ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return true;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int mkdirs(const char *path, mode_t leaf_mode)
{
    char tmp[PATH_MAX];

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, leaf_mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The last `cap` bytes of the server log, on one line, for error messages. */
static void log_tail(const char *datadir, char *out, size_t cap)
{
    char path[PATH_MAX + 32];
    FILE *f;
    long size;
    size_t n;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/postgres.log", datadir);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)cap - 1 ? size - (long)cap + 1 : 0, SEEK_SET);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    int ppid = -1;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL)
        sscanf(p + 1, " %*c %d", &ppid);
    fclose(f);
    return ppid;
}

/* postmaster.pid left behind: remove it when its process is gone (or is
 * someone else now); stop the postmaster when it is an orphan of a killed
 * run; refuse when a live starter still owns it. */
static int clear_stale(const char *datadir, struct gw_error *err)
{
    char path[PATH_MAX + 32], cwd[PATH_MAX], link[64];
    FILE *f;
    int pid = 0;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
    n = pid > 0 ? readlink(link, cwd, sizeof(cwd) - 1) : -1;
    if (n > 0)
        cwd[n] = '\0';
    if (n <= 0 || strcmp(cwd, datadir) != 0) {
        /* Dead, or the number now belongs to another process. */
        gw_log_info("pgcluster: removing stale %s (pid %d is not its server)", path, pid);
        if (unlink(path) != 0 && errno != ENOENT)
            return gw_error_set(err, GW_EIO, false, "%s: %s", path, strerror(errno));
        return 0;
    }
    if (parent_of(pid) != 1)
        return gw_error_set(err, GW_ECONFLICT, false, "%s is in use by a running postgres (pid %d)",
                            datadir, pid);
    gw_log_warn("pgcluster: stopping orphaned postgres (pid %d) of %s", pid, datadir);
    kill(pid, SIGINT);
    for (long long end = now_ms() + STOP_TIMEOUT_MS; kill(pid, 0) == 0;) {
        if (now_ms() > end)
            return gw_error_set(err, GW_ETIMEDOUT, false,
                                "orphaned postgres (pid %d) of %s does not stop", pid, datadir);
        sleep_ms(50);
    }
    return 0;
}

static int init_cluster(const char *bindir, const char *datadir, const struct runas *ra,
                        struct gw_error *err)
{
    char initdb[PATH_MAX + 16], out[2048];
    char *argv[] = {initdb,  "-D", (char *)datadir, "-U",         SUPERUSER,           "-A",
                    "trust", "-E", "UTF8",          "--locale=C", "--no-instructions", NULL};
    int rc;

    snprintf(initdb, sizeof(initdb), "%s/initdb", bindir);
    gw_log_info("pgcluster: initialising %s", datadir);
    rc = run_capture(ra, argv, out, sizeof(out));
    if (rc != 0) {
        for (char *p = out; *p; p++)
            if (*p == '\n')
                *p = ' ';
        return gw_error_set(err, GW_EIO, false, "initdb %s failed (status %d): %s", datadir, rc,
                            out);
    }
    return 0;
}

static pid_t spawn_server(const char *bindir, struct gw_pgcluster *c, const struct runas *ra,
                          struct gw_error *err)
{
    char postgres[PATH_MAX + 16], port[16], sockdir[PATH_MAX + 64], sockopt[PATH_MAX + 96];
    char logpath[PATH_MAX + 32];
    char *argv[] = {postgres, "-D",    c->datadir, "-p", port, "-c", "listen_addresses=127.0.0.1",
                    "-c",     sockopt, NULL};
    pid_t pid, parent = getpid();
    int logfd;

    snprintf(postgres, sizeof(postgres), "%s/postgres", bindir);
    snprintf(port, sizeof(port), "%d", c->port);
    snprintf(sockdir, sizeof(sockdir), "%s/run", c->datadir);
    /* A Unix socket path has ~107 bytes; past that, TCP only. */
    if (strlen(sockdir) + sizeof("/.s.PGSQL.65535.lock") < 100 && mkdirs(sockdir, 0700) == 0) {
        if (ra->drop && chown(sockdir, ra->uid, ra->gid) != 0)
            sockdir[0] = '\0';
    } else {
        sockdir[0] = '\0';
    }
    snprintf(sockopt, sizeof(sockopt), "unix_socket_directories=%s", sockdir);
    snprintf(logpath, sizeof(logpath), "%s/postgres.log", c->datadir);
    logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        gw_error_set(err, GW_EIO, false, "%s: %s", logpath, strerror(errno));
        return -1;
    }
    if (ra->drop && fchown(logfd, ra->uid, ra->gid) != 0) {
        /* Not fatal: the descriptor is already open for the child. */
    }
    pid = fork();
    if (pid == 0) {
        child_setup(ra, logfd, true, parent);
        execv(argv[0], argv);
        _exit(127);
    }
    close(logfd);
    if (pid < 0)
        gw_error_set(err, GW_EIO, false, "fork: %s", strerror(errno));
    return pid;
}

static int create_db(struct gw_pgcluster *c, struct gw_error *err)
{
    char admin[128];
    PGconn *pg;
    PGresult *r;
    int rc = 0;

    snprintf(admin, sizeof(admin), "host=127.0.0.1 port=%d user=" SUPERUSER " dbname=postgres",
             c->port);
    pg = PQconnectdb(admin);
    if (PQstatus(pg) != CONNECTION_OK) {
        rc = gw_error_set(err, GW_EUNAVAIL, true, "connect to private cluster: %s",
                          PQerrorMessage(pg));
        goto out;
    }
    r = PQexec(pg, "SELECT 1 FROM pg_database WHERE datname = 'gangway'");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
        PQclear(r);
        r = PQexec(pg, "CREATE DATABASE gangway");
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = gw_error_set(err, GW_EIO, false, "create database gangway: %s", PQerrorMessage(pg));
    PQclear(r);
out:
    PQfinish(pg);
    return rc;
}

/* Waits until the server answers; retries the start while a killed
 * predecessor's processes still hold the shared memory. */
static int wait_ready(const char *bindir, struct gw_pgcluster *c, const struct runas *ra,
                      struct gw_error *err)
{
    char ping[128], tail[600];
    long long end = now_ms() + START_TIMEOUT_MS;
    int status;

    snprintf(ping, sizeof(ping),
             "host=127.0.0.1 port=%d user=" SUPERUSER " dbname=postgres connect_timeout=2",
             c->port);
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);

        if (r == c->pid) {
            c->pid = -1;
            log_tail(c->datadir, tail, sizeof(tail));
            if (strstr(tail, "still in use") != NULL && now_ms() < end) {
                sleep_ms(500);
                if (clear_stale(c->datadir, err) != 0)
                    return err ? err->code : GW_EIO;
                if ((c->pid = spawn_server(bindir, c, ra, err)) < 0)
                    return err ? err->code : GW_EIO;
                continue;
            }
            return gw_error_set(err, GW_EIO, false, "postgres exited during start-up: %s", tail);
        }
        if (PQping(ping) == PQPING_OK)
            return 0;
        if (now_ms() > end)
            return gw_error_set(err, GW_ETIMEDOUT, false,
                                "postgres did not accept connections within %d s",
                                START_TIMEOUT_MS / 1000);
        sleep_ms(100);
    }
}

struct gw_pgcluster *gw_pgcluster_start(const char *datadir, int port, struct gw_error *err)
{
    struct gw_pgcluster *c;
    char bindir[PATH_MAX], version[PATH_MAX + 32];
    struct runas ra;

    if (datadir == NULL || datadir[0] == '\0' || port < 0 || port > 65535) {
        gw_error_set(err, GW_EINVAL, false, "gw_pgcluster_start: bad datadir or port");
        return NULL;
    }
    if (find_bindir(bindir, sizeof(bindir), err) != 0 || runas_lookup(&ra, err) != 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gw_error_set(err, GW_ENOMEM, false, "out of memory");
        return NULL;
    }
    c->pid = -1;
    if (mkdirs(datadir, 0700) != 0 || realpath(datadir, c->datadir) == NULL) {
        gw_error_set(err, GW_EIO, false, "%s: %s", datadir, strerror(errno));
        goto fail;
    }
    if (give_to(c->datadir, &ra) != 0) {
        gw_error_set(err, GW_EIO, false, "chown %s to %s: %s", c->datadir, ra.name,
                     strerror(errno));
        goto fail;
    }
    if (!reachable(c->datadir, &ra)) {
        gw_error_set(err, GW_EINVAL, false,
                     "%s is not reachable by user %s, which runs PostgreSQL (a parent "
                     "directory is not searchable): choose a directory such as /tmp/gangway-pg",
                     c->datadir, ra.name);
        goto fail;
    }
    snprintf(version, sizeof(version), "%s/PG_VERSION", c->datadir);
    if (access(version, F_OK) != 0 && init_cluster(bindir, c->datadir, &ra, err) != 0)
        goto fail;
    if (clear_stale(c->datadir, err) != 0)
        goto fail;
    c->port = port != 0 ? port : free_port();
    if (c->port <= 0) {
        gw_error_set(err, GW_EIO, false, "no free TCP port on 127.0.0.1");
        goto fail;
    }
    if ((c->pid = spawn_server(bindir, c, &ra, err)) < 0)
        goto fail;
    if (wait_ready(bindir, c, &ra, err) != 0 || create_db(c, err) != 0)
        goto fail;
    snprintf(c->conninfo, sizeof(c->conninfo),
             "host=127.0.0.1 port=%d user=" SUPERUSER " dbname=gangway", c->port);
    gw_log_info("pgcluster: PostgreSQL up on 127.0.0.1:%d (data %s)", c->port, c->datadir);
    return c;

fail:
    gw_pgcluster_stop(c);
    return NULL;
}

const char *gw_pgcluster_conninfo(const struct gw_pgcluster *c)
{
    return c != NULL ? c->conninfo : NULL;
}

int gw_pgcluster_port(const struct gw_pgcluster *c)
{
    return c != NULL ? c->port : -1;
}

/* Waits for the child up to `ms`; true when it exited. */
static bool reap(pid_t pid, int ms)
{
    long long end = now_ms() + ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (now_ms() > end)
            return false;
        sleep_ms(20);
    }
}

void gw_pgcluster_stop(struct gw_pgcluster *c)
{
    if (c == NULL)
        return;
    if (c->pid > 0) {
        kill(c->pid, SIGINT); /* fast shutdown: roll back sessions, checkpoint */
        if (!reap(c->pid, STOP_TIMEOUT_MS)) {
            gw_log_warn("pgcluster: postgres (pid %d) ignores fast shutdown; quitting it",
                        (int)c->pid);
            kill(c->pid, SIGQUIT);
            if (!reap(c->pid, 5000)) {
                kill(c->pid, SIGKILL);
                reap(c->pid, 5000);
            }
        }
    }
    free(c);
}
