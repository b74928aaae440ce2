/*
 * Unit test of lib/gw/subject.h: every spelling one person arrives in
 * becomes the same canonical subject, and bad input is refused with a
 * message (never quoting it), never a crash or a silent mapping.
 */
#include "gw/subject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_NAMED
#include "../check.h"

static void same(const char *in, const char *want)
{
    char out[GW_SUBJECT_MAX];
    struct gw_error err;
    gw_error_clear(&err);
    int rc = gw_subject_canonical(in, NULL, 0, out, &err);
    CHECK(rc == 0 && strcmp(out, want) == 0, "'%s' -> '%s' (got rc %d '%s' %s)", in, want, rc, out,
          err.message);
}

/* Refused, with `why` in the message and the input nowhere in it. */
static void refused(const char *label, const char *in, const char *why)
{
    char out[GW_SUBJECT_MAX] = "junk";
    struct gw_error err;
    gw_error_clear(&err);
    int rc = gw_subject_canonical(in, NULL, 0, out, &err);
    CHECK(rc == GW_EINVAL && out[0] == '\0' && strstr(err.message, why) != NULL,
          "%s refused: '%s' (got rc %d, '%s')", label, why, rc, err.message);
    if (in != NULL && strlen(in) > 6)
        CHECK(strstr(err.message, in) == NULL, "%s: the message does not echo the input", label);
}

static void test_forms(void)
{
    /* One person, every spelling. */
    same("mia", "user:default/mia");
    same("user:default/mia", "user:default/mia");
    same("User:Default/Mia", "user:default/mia");
    same("USER:DEFAULT/MIA", "user:default/mia");
    same("default/mia", "user:default/mia");
    same("user:mia", "user:default/mia");
    /* Other namespaces and kinds stay what they are. */
    same("ops/mia", "user:ops/mia");
    same("user:ops/mia", "user:ops/mia");
    same("service:portal", "service:default/portal");
    same("plugin:default/scaffolder", "plugin:default/scaffolder");
    same("svc:backstage", "svc:default/backstage");
    /* E-mail subjects keep their domain (decision 0031). */
    same("Mia@Example.COM", "user:default/mia@example.com");
    same("mia+ci@example.com", "user:default/mia+ci@example.com");
    same("auth0|5f1c2a", "user:default/auth0|5f1c2a");
    same("00u1abcD2x", "user:default/00u1abcd2x");
    same("a", "user:default/a");
    same("k-8.s_x", "user:default/k-8.s_x");
}

static void test_defaults(void)
{
    char out[GW_SUBJECT_MAX];
    struct gw_error err;
    struct gw_subject_defaults d = {.kind = "service", .ns = "okta"};
    CHECK(gw_subject_canonical("Mia", &d, 0, out, &err) == 0 &&
              strcmp(out, "service:okta/mia") == 0,
          "defaults apply to a bare name (%s)", out);
    CHECK(gw_subject_canonical("user:default/mia", &d, 0, out, &err) == 0 &&
              strcmp(out, "user:default/mia") == 0,
          "defaults never override what the subject says (%s)", out);
    d.ns = "Bad NS";
    CHECK(gw_subject_canonical("mia", &d, 0, out, &err) == GW_EINVAL,
          "a bad default namespace is refused: %s", err.message);
}

static void test_patterns(void)
{
    char out[GW_SUBJECT_MAX];
    struct gw_error err;
    CHECK(gw_subject_canonical("user:default/root*", NULL, GW_SUBJECT_PATTERN, out, &err) == 0 &&
              strcmp(out, "user:default/root*") == 0,
          "a glob stays a glob");
    CHECK(gw_subject_canonical("Root*", NULL, GW_SUBJECT_PATTERN, out, &err) == 0 &&
              strcmp(out, "user:default/root*") == 0,
          "a bare glob gets its kind and namespace (%s)", out);
    CHECK(gw_subject_canonical("*:ops/?a", NULL, GW_SUBJECT_PATTERN, out, &err) == 0 &&
              strcmp(out, "*:ops/?a") == 0,
          "globs in the kind");
    CHECK(gw_subject_canonical("root*", NULL, 0, out, &err) == GW_EINVAL,
          "'*' is no name character outside patterns: %s", err.message);
}

static void test_refused(void)
{
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    char justfits[GW_SUBJECT_MAX];
    /* 255 bytes in, 255 + "user:default/" out: too long once completed. */
    memset(justfits, 'b', sizeof(justfits) - 1);
    justfits[sizeof(justfits) - 1] = '\0';
    char longkind[80];
    snprintf(longkind, sizeof(longkind), "%064d:x", 0);
    longkind[0] = 'k';

    refused("NULL", NULL, "empty");
    refused("empty", "", "empty");
    refused("too long", longname, "longer than 255 bytes");
    refused("too long once completed", justfits, "once its kind and namespace");
    refused("kind too long", longkind, "kind is longer than 63");
    refused("leading space", " mia", "a space at offset 0");
    refused("trailing space", "mia ", "a space at offset 3");
    refused("inner space", "user:default/m ia", "a space");
    refused("tab", "mia\t", "byte 0x09");
    refused("newline", "mia\nuser:default/root", "byte 0x0a");
    refused("DEL",
            "mi\x7f"
            "a",
            "byte 0x7f");
    /* Unicode: never case-folded, so no look-alike (KELVIN SIGN, dotted I,
     * fullwidth letters) becomes somebody else. */
    refused("Kelvin sign", "user:default/\xe2\x84\xaaim", "non-ASCII byte at offset 13");
    refused("Turkish dotted I",
            "M\xc4\xb0"
            "A",
            "non-ASCII");
    refused("fullwidth", "\xef\xbd\x8d\xef\xbd\x89\xef\xbd\x81", "non-ASCII byte at offset 0");
    refused("invalid UTF-8", "mi\xff", "non-ASCII");
    refused("group kind", "group:default/sre", "a group is not a subject");
    refused("group kind, any case", "Group:sre", "a group is not a subject");
    refused("empty kind", ":default/mia", "kind is empty");
    refused("empty namespace", "user:/mia", "namespace is empty");
    refused("empty name", "user:default/", "name is empty");
    refused("only a colon", ":", "kind is empty");
    refused("two colons", "user:default:mia", "more than one ':'");
    refused("two slashes", "user:a/b/mia", "more than one '/'");
    refused("kind starting with a digit", "1user:mia", "must start with a letter");
    refused("quote", "user:default/mi\"a", "'\"' is not allowed in the subject's name");
    refused("percent", "mi%61", "'%' is not allowed");
    refused("at in a namespace", "user:a@b/mia", "'@' is not allowed in the subject's namespace");
    refused("underscore in a kind", "my_kind:mia", "'_' is not allowed in the subject's kind");
    refused("glob outside a pattern", "*", "'*' is not allowed");
}

static void team(const char *in, const char *want)
{
    char out[GW_TEAM_MAX];
    struct gw_error err;
    gw_error_clear(&err);
    int rc = gw_team_canonical(in, out, &err);
    if (want != NULL)
        CHECK(rc == 0 && strcmp(out, want) == 0, "team '%s' -> '%s' (got %d '%s' %s)", in, want, rc,
              out, err.message);
    else
        CHECK(rc == GW_EINVAL && out[0] == '\0', "team '%s' refused: %s", in ? in : "(null)",
              err.message);
}

static void test_teams(void)
{
    team("payments", "payments");
    team("Payments", "payments");
    team("group:default/SRE", "sre");
    team("Group:Default/sre", "sre");
    team("group:ops/sre", "ops/sre");
    team("ops/SRE", "ops/sre");
    team("default/sre", "default/sre"); /* no kind: the namespace is part of the name */
    team("Platform Engineering", "platform engineering");
    team("D\xc3\xa9veloppeurs", "d\xc3\xa9veloppeurs"); /* non-ASCII kept, not folded */
    team(NULL, NULL);
    team("", NULL);
    team(" sre", NULL);
    team("sre ", NULL);
    team("s\nre", NULL);
    team("group:", NULL);
    team("group:default/", NULL);
    char longteam[200];
    memset(longteam, 't', sizeof(longteam) - 1);
    longteam[sizeof(longteam) - 1] = '\0';
    team(longteam, NULL);
}

int main(void)
{
    test_teams();
    test_forms();
    test_defaults();
    test_patterns();
    test_refused();
    printf("%d failures\n", failures);
    return failures != 0;
}
