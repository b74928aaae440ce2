/* Placeholder until the worker command lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"

int gw_cmd_worker(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gangway worker: not built yet\n");
    return 2;
}
