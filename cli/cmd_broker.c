/* Placeholder until the broker command lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"

int gw_cmd_broker(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gangway broker: not built yet\n");
    return 2;
}
