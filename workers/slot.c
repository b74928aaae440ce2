/* A worker's default identity from a per-host slot: see slot.h. */
#include "slot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SLOTS 1024

int gw_worker_slot_take(const char *group, char *id, size_t cap)
{
    char dir[512], path[1024], host[128] = "worker", safe[256];
    const char *run = getenv("XDG_RUNTIME_DIR");
    size_t n = 0;

    if (run != NULL && run[0] == '/')
        snprintf(dir, sizeof(dir), "%s/gangway-worker-slots", run);
    else
        snprintf(dir, sizeof(dir), "/tmp/gangway-worker-slots-%u", (unsigned)getuid());
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    /* The group name (prefix and type) as a file name. */
    for (const char *p = group; *p != '\0' && n + 1 < sizeof(safe); p++)
        safe[n++] = (*p == '/' || *p == '\0') ? '_' : *p;
    safe[n] = '\0';
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    for (int slot = 0; slot < MAX_SLOTS; slot++) {
        int fd;
        snprintf(path, sizeof(path), "%s/%s.%d.lock", dir, safe, slot);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            snprintf(id, cap, "%s-w%d", host, slot);
            return fd;
        }
        close(fd);
        if (errno != EWOULDBLOCK)
            return -1;
    }
    return -1;
}
