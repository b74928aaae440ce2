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
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gw/doc.h"
#include "gw/jsonschema.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gangway schema validate [--ref-dir URI=DIR]... [--draft 2020-12|7]\n"
               "                               [--format-assert] SCHEMA INSTANCE...\n"
               "  (files ending in .yaml or .yml are read as YAML, others as JSON)\n"
               "  --ref-dir URI=DIR  resolve $refs under URI from the *.json files in DIR\n"
               "  --draft D          draft for schemas without $schema (default 2020-12)\n"
               "  --format-assert    treat \"format\" as an assertion\n"
               "exit: 0 all valid, 1 some invalid, 2 bad schema or unreadable file\n");
}

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

static int cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ref-dir", required_argument, NULL, 'r'},
        {"draft", required_argument, NULL, 'd'},
        {"format-assert", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct gw_schema_options sopts = {.default_draft = GW_SCHEMA_DRAFT_2020_12};
    struct gw_error err = {0};
    struct gw_schema_registry *reg = gw_schema_registry_create(&err);
    int rc = 2, c;
    if (!reg) {
        fprintf(stderr, "gangway schema: %s\n", err.message);
        return 2;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:d:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "gangway schema: --ref-dir wants URI=DIR\n");
                goto out;
            }
            *eq = '\0';
            if (gw_schema_registry_add_dir(reg, optarg, eq + 1, &err) < 0) {
                fprintf(stderr, "gangway schema: --ref-dir %s: %s\n", optarg, err.message);
                goto out;
            }
            break;
        }
        case 'd':
            if (strcmp(optarg, "2020-12") == 0) {
                sopts.default_draft = GW_SCHEMA_DRAFT_2020_12;
            } else if (strcmp(optarg, "7") == 0 || strcmp(optarg, "07") == 0) {
                sopts.default_draft = GW_SCHEMA_DRAFT_7;
            } else {
                fprintf(stderr, "gangway schema: --draft must be 2020-12 or 7\n");
                goto out;
            }
            break;
        case 'f':
            sopts.format_assert = true;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (argc - optind < 2) {
        usage(stderr);
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
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    fprintf(stderr, "gangway schema: unknown subcommand %s\n", argv[1]);
    usage(stderr);
    return 2;
}
