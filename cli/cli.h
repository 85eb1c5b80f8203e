/* cli.h — what the subcommands share: the command table and exit-code conventions. */
#pragma once

#include "common/common.h"

struct rbx_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
};

int cmd_version(int argc, char **argv);
