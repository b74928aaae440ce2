/*
 * workers/spool.h: the records a run supervisor spools round-trip through
 * the reader; a last line cut by a crash (no '\n'), a malformed line or a
 * record out of sequence ends the read without failing it, and what came
 * before is still delivered; a missing spool has no records.
 */
#include "spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK_NAMED
#include "../check.h"

struct seen {
    int n;
    long last_i;
    char lines[8][64];
    int exits;
    char stop[32];
    long long exit_status;
};

static void on_rec(void *arg, const struct gw_spool_rec *rec)
{
    struct seen *s = arg;
    if (rec->kind == GW_SPOOL_LOG && s->n < 8)
        snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s:%.*s", rec->stream, (int)rec->len,
                 rec->line);
    if (rec->kind == GW_SPOOL_EXIT) {
        s->exits++;
        snprintf(s->stop, sizeof(s->stop), "%s", rec->stop);
        s->exit_status = (long long)rec->exit_status;
    }
    s->n++;
    s->last_i = rec->i;
}

/* The text's length is strlen: records never hold a NUL (the log line is
 * cleaned), which this also checks. */
static void put(FILE *f, char *text)
{
    fputs(text, f);
    free(text);
}

static int read_back(const char *path, struct seen *s, int *ended)
{
    struct gw_error err;
    memset(s, 0, sizeof(*s));
    return gw_spool_read(path, on_rec, s, ended, &err);
}

int main(void)
{
    char dir[] = "/tmp/gw-spool-test-XXXXXX", path[128];
    struct seen s;
    int ended, rc;
    size_t n;
    FILE *f;
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof(path), "%s/spool", dir);

    /* Nothing spooled yet. */
    rc = read_back(path, &s, &ended);
    CHECK(rc == 0 && s.n == 0 && !ended, "a missing spool has no records");

    /* A finished spool: lines (one with invalid UTF-8 and a quote), then EXIT. */
    f = fopen(path, "w");
    put(f, gw_spool_log_text(1, "stdout", "line 1", 6, &n));
    put(f, gw_spool_log_text(2, "stderr", "bad \xff \"q\"", 9, &n));
    put(f, gw_spool_exit_text(3, 7, 0, "none", NULL, &n));
    fclose(f);
    rc = read_back(path, &s, &ended);
    CHECK(rc == 3 && ended, "a finished spool: 3 records, ended (rc %d)", rc);
    CHECK(strcmp(s.lines[0], "stdout:line 1") == 0, "line 1 round-trips");
    CHECK(strcmp(s.lines[1], "stderr:bad \xEF\xBF\xBD \"q\"") == 0,
          "invalid UTF-8 is replaced, quotes survive (%s)", s.lines[1]);
    CHECK(s.exits == 1 && strcmp(s.stop, "none") == 0 && s.exit_status == 7,
          "the EXIT record carries stop and exit status");

    /* A crash in the middle of a write: the last line has no '\n'. */
    f = fopen(path, "w");
    put(f, gw_spool_log_text(1, "stdout", "a", 1, &n));
    put(f, gw_spool_log_text(2, "stdout", "b", 1, &n));
    {
        char *t = gw_spool_log_text(3, "stdout", "cut short", 9, &n);
        fwrite(t, 1, n / 2, f); /* half of it, no newline */
        free(t);
    }
    fclose(f);
    rc = read_back(path, &s, &ended);
    CHECK(rc == 2 && !ended && s.last_i == 2,
          "a truncated last line is ignored, the records before it delivered (rc %d)", rc);

    /* A complete but malformed line, and anything after it, is ignored. */
    f = fopen(path, "w");
    put(f, gw_spool_log_text(1, "stdout", "a", 1, &n));
    fputs("{\"i\":2,\"s\":\"stdout\"\n", f);
    put(f, gw_spool_log_text(3, "stdout", "c", 1, &n));
    fclose(f);
    rc = read_back(path, &s, &ended);
    CHECK(rc == 1 && s.last_i == 1, "a malformed line ends the read (rc %d)", rc);

    /* A gap in the numbering ends it too: nothing is delivered out of order. */
    f = fopen(path, "w");
    put(f, gw_spool_log_text(1, "stdout", "a", 1, &n));
    put(f, gw_spool_log_text(3, "stdout", "c", 1, &n));
    fclose(f);
    rc = read_back(path, &s, &ended);
    CHECK(rc == 1 && s.last_i == 1, "a record out of sequence ends the read (rc %d)", rc);

    /* The parser refuses what is not a record. */
    {
        struct gw_spool_rec rec;
        CHECK(gw_spool_parse("[]", 2, &rec) < 0, "an array is not a record");
        CHECK(gw_spool_parse("{\"i\":0,\"s\":\"stdout\",\"l\":\"x\"}", 29, &rec) < 0,
              "i starts at 1");
        CHECK(gw_spool_parse("{\"i\":1,\"s\":\"other\",\"l\":\"x\"}", 28, &rec) < 0,
              "the stream is stdout or stderr");
        CHECK(gw_spool_parse("{\"i\":1,\"exit\":0,\"sig\":0}", 24, &rec) < 0,
              "an EXIT record needs its stop");
    }

    unlink(path);
    rmdir(dir);
    return failures != 0;
}
