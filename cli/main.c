/* main.c — subcommand dispatch; each subcommand lives in cmd_<name>.c. */
#include "cli/cli.h"

#include <string.h>

static const struct rbx_command commands[] = {
    {"version", "print the version", cmd_version},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: reprobox COMMAND [ARGS]\n");
        return 125;
    }
    for (size_t i = 0; i < RBX_ARRAY_SIZE(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "reprobox: error: unknown command \"%s\"\n", argv[1]);
    return 125;
}

int cmd_version(int argc, char **argv)
{
    printf("reprobox %s\n", REPROBOX_VERSION);
    return 0;
}
