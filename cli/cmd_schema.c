/*
 * `gangway schema validate SCHEMA.json INSTANCE.json...` for platform teams
 * writing action input schemas.
 *
 * One line per instance: "<file>: valid" or "<file>: invalid <errors as
 * compact JSON>". Exit 0 when all are valid, 1 when any is invalid, 2 when
 * the schema is bad or a file cannot be read. `$ref`s to other documents
 * resolve only through --ref-dir URI=DIR mappings and the bundled
 * metaschemas; nothing is fetched.
 */
#include <getopt.h> /* optind */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gw/doc.h"
#include "gw/jsonschema.h"
#include "options.h"

static const char usage_text[] =
    "usage: gangway schema validate [--ref-dir URI=DIR]... [--draft 2020-12|7]\n"
    "                               [--format-assert] SCHEMA INSTANCE...\n"
    "  (files ending in .yaml or .yml are read as YAML, others as JSON)\n"
    "  --ref-dir URI=DIR  resolve $refs under URI from the *.json files in DIR\n"
    "  --draft D          draft for schemas without $schema (default 2020-12)\n"
    "  --format-assert    treat \"format\" as an assertion\n"
    "exit: 0 all valid, 1 some invalid, 2 bad schema or unreadable file\n";

static int validate_files(struct gw_schema *s, int n, char **files)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        json_error_t jerr;
        struct gw_error yerr;
        json_t *inst;
        if (gw_doc_is_yaml(files[i])) {
            inst = gw_doc_load_file(files[i], 0, &yerr);
            if (!inst) {
                printf("%s: error %s\n", files[i], yerr.message);
                rc = 2;
                continue;
            }
        } else if (!(inst = json_load_file(files[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr))) {
            printf("%s: error %s:%d: %s\n", files[i], jerr.source, jerr.line, jerr.text);
            rc = 2;
            continue;
        }
        json_t *errors = NULL;
        if (gw_schema_validate(s, inst, &errors)) {
            printf("%s: valid\n", files[i]);
        } else {
            char *text = errors ? json_dumps(errors, JSON_COMPACT) : NULL;
            printf("%s: invalid %s\n", files[i], text ? text : "[]");
            free(text);
            if (rc == 0)
                rc = 1;
        }
        json_decref(errors);
        json_decref(inst);
    }
    return rc;
}

/* What --ref-dir adds its mappings to. */
struct ref_dirs {
    struct gw_schema_registry *reg;
    struct gw_error *err;
};

static int add_ref_dir(const char *value, void *dest)
{
    struct ref_dirs *r = dest;
    char *eq = strchr(value, '=');
    if (!eq) {
        fprintf(stderr, "gangway schema: --ref-dir wants URI=DIR\n");
        return 2;
    }
    *eq = '\0';
    if (gw_schema_registry_add_dir(r->reg, value, eq + 1, r->err) < 0) {
        fprintf(stderr, "gangway schema: --ref-dir %s: %s\n", value, r->err->message);
        return 2;
    }
    return GW_OPT_OK;
}

static int set_draft(const char *value, void *dest)
{
    enum gw_schema_draft *draft = dest;
    if (strcmp(value, "2020-12") == 0) {
        *draft = GW_SCHEMA_DRAFT_2020_12;
    } else if (strcmp(value, "7") == 0 || strcmp(value, "07") == 0) {
        *draft = GW_SCHEMA_DRAFT_7;
    } else {
        fprintf(stderr, "gangway schema: --draft must be 2020-12 or 7\n");
        return 2;
    }
    return GW_OPT_OK;
}

static int cmd_validate(int argc, char **argv)
{
    struct gw_schema_options sopts = {.default_draft = GW_SCHEMA_DRAFT_2020_12};
    struct gw_error err = {0};
    struct gw_schema_registry *reg = gw_schema_registry_create(&err);
    struct ref_dirs refs = {reg, &err};
    const struct gw_opt_spec specs[] = {
        {"ref-dir", GW_OPT_CALL, &refs, 'r', .call = add_ref_dir},
        {"draft", GW_OPT_CALL, &sopts.default_draft, 'd', .call = set_draft},
        {"format-assert", GW_OPT_BOOL, &sopts.format_assert, 'f'},
        {0},
    };
    int rc = 2;
    if (!reg) {
        fprintf(stderr, "gangway schema: %s\n", err.message);
        return 2;
    }
    rc = gw_opt_parse(argc, argv, specs, usage_text);
    if (rc != GW_OPT_OK)
        goto out;
    rc = 2;
    if (argc - optind < 2) {
        fputs(usage_text, stderr);
        goto out;
    }
    const char *schema_file = argv[optind];
    json_error_t jerr;
    json_t *doc;
    if (gw_doc_is_yaml(schema_file)) {
        if (!(doc = gw_doc_load_file(schema_file, 0, &err))) {
            fprintf(stderr, "%s: error %s\n", schema_file, err.message);
            goto out;
        }
    } else if (!(doc = json_load_file(schema_file, JSON_DECODE_ANY, &jerr))) {
        fprintf(stderr, "%s: error %s:%d: %s\n", schema_file, jerr.source, jerr.line, jerr.text);
        goto out;
    }
    /* The schema's own file URI is its base, so relative $refs resolve
     * next to it (through a --ref-dir mapping of that directory). */
    char real[PATH_MAX], base[PATH_MAX + 8];
    if (realpath(schema_file, real))
        snprintf(base, sizeof(base), "file://%s", real);
    else
        snprintf(base, sizeof(base), "file:///schema.json");
    struct gw_schema *s = gw_schema_compile(reg, doc, base, &sopts, &err);
    json_decref(doc);
    if (!s) {
        fprintf(stderr, "%s: %s\n", schema_file, err.message);
        goto out;
    }
    rc = validate_files(s, argc - optind - 1, argv + optind + 1);
    gw_schema_destroy(s);
out:
    gw_schema_registry_destroy(reg);
    return rc;
}

int gw_cmd_schema(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    fprintf(stderr, "gangway schema: unknown subcommand %s\n", argv[1]);
    fputs(usage_text, stderr);
    return 2;
}
