/* Placeholder until the migrate command lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"

int gw_cmd_migrate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gangway migrate: not built yet\n");
    return 2;
}
