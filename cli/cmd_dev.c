/* Placeholder until the dev command lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"

int gw_cmd_dev(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gangway dev: not built yet\n");
    return 2;
}
