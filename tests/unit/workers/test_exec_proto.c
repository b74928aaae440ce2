/* The line protocol of exec's persistent mode (exec_proto.h): every kind of
 * line a program may write, every way to get one wrong, and random and
 * mutated input, which must only ever be an error with a reason. */
#define CHECK_NAMED
#include <stdint.h>
#include <string.h>

#include "exec_proto.h"
#include "gw/error.h"
#include "wtest.h"

static int parse(const char *line, struct exec_msg *m, char *why, size_t whysz)
{
    return gw_exec_msg_parse(line, strlen(line), m, why, whysz);
}

static void test_good(void)
{
    struct exec_msg m;
    char why[256];

    CHECK(parse("{\"type\":\"hello\",\"protocol\":1}", &m, why, sizeof(why)) == 0 &&
              m.type == EXEC_MSG_HELLO && m.protocol == 1,
          "hello");
    gw_exec_msg_finish(&m);
    CHECK(parse("{\"type\":\"log\",\"id\":\"r/1\",\"line\":\"a\\u00e9\"}", &m, why, sizeof(why)) ==
                  0 &&
              m.type == EXEC_MSG_LOG && strcmp(m.stream, "stdout") == 0 && m.line_len == 3 &&
              strcmp(m.id, "r/1") == 0,
          "log: stream defaults to stdout, escapes decoded");
    gw_exec_msg_finish(&m);
    CHECK(parse("{\"type\":\"log\",\"id\":\"r/1\",\"stream\":\"stderr\",\"line\":\"\"}", &m, why,
                sizeof(why)) == 0 &&
              strcmp(m.stream, "stderr") == 0,
          "log on stderr");
    gw_exec_msg_finish(&m);
    CHECK(parse("{\"type\":\"result\",\"id\":\"r/1\",\"status\":\"succeeded\"}", &m, why,
                sizeof(why)) == 0 &&
              m.succeeded && json_is_object(m.outputs) && json_object_size(m.outputs) == 0,
          "succeeded without outputs: {}");
    gw_exec_msg_finish(&m);
    CHECK(
        parse("{\"type\":\"result\",\"id\":\"r/1\",\"status\":\"succeeded\",\"outputs\":{\"a\":1}}",
              &m, why, sizeof(why)) == 0 &&
            json_integer_value(json_object_get(m.outputs, "a")) == 1,
        "succeeded with outputs");
    gw_exec_msg_finish(&m);
    CHECK(parse("{\"type\":\"result\",\"id\":\"r/1\",\"status\":\"failed\"}", &m, why,
                sizeof(why)) == 0 &&
              !m.succeeded && m.exit_code == 1 && m.message == NULL,
          "failed: exit code 1 unless given");
    gw_exec_msg_finish(&m);
    CHECK(parse("{\"type\":\"result\",\"id\":\"r/1\",\"status\":\"failed\",\"exit_code\":7,"
                "\"message\":\"no\"}",
                &m, why, sizeof(why)) == 0 &&
              m.exit_code == 7 && strcmp(m.message, "no") == 0,
          "failed with code and message");
    gw_exec_msg_finish(&m);
    CHECK(parse("{\"type\":\"cancelled\",\"id\":\"r/1\"}", &m, why, sizeof(why)) == 0 &&
              m.type == EXEC_MSG_CANCELLED,
          "cancelled");
    gw_exec_msg_finish(&m);
    gw_exec_msg_finish(NULL);
}

static void test_bad(void)
{
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"", "empty line"},
        {"not json", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"type\":\"hello\"} x", "not JSON"},
        {"{\"type\":\"hello\",\"protocol\":1,\"protocol\":2}", "not JSON"},
        {"{}", "no \"type\""},
        {"{\"type\":3}", "no \"type\""},
        {"{\"type\":\"hello\"}", "protocol"},
        {"{\"type\":\"hello\",\"protocol\":0}", "protocol"},
        {"{\"type\":\"hello\",\"protocol\":\"1\"}", "protocol"},
        {"{\"type\":\"log\",\"line\":\"x\"}", "no \"id\""},
        {"{\"type\":\"log\",\"id\":\"\",\"line\":\"x\"}", "no \"id\""},
        {"{\"type\":\"log\",\"id\":5,\"line\":\"x\"}", "no \"id\""},
        {"{\"type\":\"log\",\"id\":\"r\"}", "no \"line\""},
        {"{\"type\":\"log\",\"id\":\"r\",\"line\":1}", "no \"line\""},
        {"{\"type\":\"log\",\"id\":\"r\",\"line\":\"x\",\"stream\":\"tty\"}", "stream"},
        {"{\"type\":\"result\",\"id\":\"r\"}", "status"},
        {"{\"type\":\"result\",\"id\":\"r\",\"status\":\"ok\"}", "status"},
        {"{\"type\":\"result\",\"id\":\"r\",\"status\":\"succeeded\",\"outputs\":[]}", "outputs"},
        {"{\"type\":\"result\",\"id\":\"r\",\"status\":\"failed\",\"exit_code\":256}", "exit_code"},
        {"{\"type\":\"result\",\"id\":\"r\",\"status\":\"failed\",\"exit_code\":-1}", "exit_code"},
        {"{\"type\":\"result\",\"id\":\"r\",\"status\":\"failed\",\"message\":{}}", "message"},
        {"{\"type\":\"run\",\"id\":\"r\"}", "unknown type"},
        {"{\"type\":\"log\",\"id\":\"r\",\"line\":\"\xff\xfe\"}", "not JSON"},
        {"{\"type\":\"log\",\"id\":\"r\",\"line\":\"a\\u0000b\"}", "not JSON"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct exec_msg m;
        char why[256] = "";
        int rc = parse(bad[i].line, &m, why, sizeof(why));
        CHECK(rc < 0 && strstr(why, bad[i].why) != NULL && m.doc == NULL,
              "bad line %zu refused: %s", i, why);
    }
}

static void test_limits(void)
{
    struct exec_msg m;
    char why[256];
    size_t big = (1u << 20) + 64;
    char *line = malloc(big + 128);
    CHECK(line != NULL, "memory");
    if (line == NULL)
        return;
    /* Outputs over 1 MiB are refused even though the line fits. */
    int n = snprintf(line, 128,
                     "{\"type\":\"result\",\"id\":\"r\",\"status\":\"succeeded\","
                     "\"outputs\":{\"a\":\"");
    memset(line + n, 'x', big);
    memcpy(line + n + big, "\"}}", 4);
    CHECK(parse(line, &m, why, sizeof(why)) < 0 && strstr(why, "outputs larger") != NULL,
          "outputs over 1 MiB: %s", why);
    free(line);
    /* A length over the line limit is refused before parsing. */
    CHECK(gw_exec_msg_parse("{}", GW_EXEC_LINE_MAX + 1, &m, why, sizeof(why)) < 0 &&
              strstr(why, "longer") != NULL,
          "a line over the limit: %s", why);
    /* A tiny reason buffer still gets a terminated reason. */
    CHECK(parse("nope", &m, why, 4) < 0 && strlen(why) == 3, "reasons are cut, not overflowed");
}

/* xorshift: the same sequence on every run. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_random(void)
{
    static const char *seeds[] = {
        "{\"type\":\"hello\",\"protocol\":1}",
        "{\"type\":\"log\",\"id\":\"r/1\",\"stream\":\"stderr\",\"line\":\"abc\"}",
        "{\"type\":\"result\",\"id\":\"r/1\",\"status\":\"succeeded\",\"outputs\":{\"k\":[1,{}]}}",
        "{\"type\":\"result\",\"id\":\"r/"
        "1\",\"status\":\"failed\",\"exit_code\":3,\"message\":\"m\"}",
        "{\"type\":\"cancelled\",\"id\":\"r/1\"}",
    };
    uint32_t s = 0x9e3779b9;
    int ok = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        char buf[256], why[256];
        struct exec_msg m;
        size_t len;
        if (i % 2 == 0) {
            /* A valid line with a few bytes changed, cut or not. */
            const char *seed = seeds[rnd(&s) % ARRAY_SIZE(seeds)];
            len = strlen(seed);
            memcpy(buf, seed, len);
            for (int k = 0, edits = 1 + rnd(&s) % 3; k < edits; k++)
                buf[rnd(&s) % len] = (char)(rnd(&s) & 0xff);
            if (rnd(&s) % 4 == 0)
                len = rnd(&s) % len;
        } else {
            len = rnd(&s) % sizeof(buf);
            for (size_t k = 0; k < len; k++)
                buf[k] = (char)(rnd(&s) & 0xff);
        }
        why[0] = '\0';
        if (gw_exec_msg_parse(buf, len, &m, why, sizeof(why)) == 0) {
            ok++;
            gw_exec_msg_finish(&m);
        } else {
            refused += why[0] != '\0';
        }
    }
    CHECK(ok + refused == 20000,
          "20000 random and mutated lines: %d parsed, %d refused with a reason", ok, refused);
}

static void test_lines_out(void)
{
    char *h = gw_exec_line_hello(), *c = gw_exec_line_cancel("r/1", "timeout");
    char *r = gw_exec_line_run(json_pack("{s:s, s:{s:s}}", "id", "r/1", "inputs", "a", "\n"));
    CHECK(h && strcmp(h, "{\"type\":\"hello\",\"protocol\":1}\n") == 0, "hello line: %s",
          h ? h : "(null)");
    CHECK(c && strcmp(c, "{\"type\":\"cancel\",\"id\":\"r/1\",\"reason\":\"timeout\"}\n") == 0,
          "cancel line: %s", c ? c : "(null)");
    CHECK(r && strchr(r, '\n') == r + strlen(r) - 1 && strstr(r, "\"type\":\"run\""),
          "run line: one line, newlines in inputs escaped: %s", r ? r : "(null)");
    free(h);
    free(c);
    free(r);
}

int main(void)
{
    test_good();
    test_bad();
    test_limits();
    test_random();
    test_lines_out();
    return failures != 0;
}
