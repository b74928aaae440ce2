/* Placeholder until the schema command lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"

int gw_cmd_schema(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gangway schema: not built yet\n");
    return 2;
}
