/* Placeholder until the token command lands; replaced by its owner. */
#include <stdio.h>

#include "commands.h"

int gw_cmd_token(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "gangway token: not built yet\n");
    return 2;
}
