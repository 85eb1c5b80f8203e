/* cli.h — what the subcommands share: global options, the command table, printing errors and
 * choosing exit codes. Only cli/ prints, reads argv or decides how the process exits. */
#pragma once

#include "common/common.h"
#include "layers/layers.h"
#include "sandbox/sandbox.h"

/* Exit codes as docker's: the command's own status passes through; these are reprobox's. */
#define RBX_EXIT_FAILURE 125      /* reprobox itself failed */
#define RBX_EXIT_CANNOT_EXEC 126  /* the command was found but could not be executed */
#define RBX_EXIT_NOT_FOUND 127    /* the command was not found */

struct rbx_globals {
    const char *root; /* --root DIR: the store */
    bool quiet;       /* --quiet: nothing but errors */
    enum rbx_privilege priv;
    unsigned mapped_ids;
    char **argv;      /* the whole original argv, for re-execution */
};
extern struct rbx_globals rbx_globals;

struct rbx_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
    bool needs_privilege; /* touches the store or runs something: rootless re-exec first */
};

/* Print "reprobox: error: <message>" for err (consumed) and return the exit code its kind
 * calls for (125, 126 or 127). */
int cli_fail(struct rbx_error *err);
int cli_exit_code(const struct rbx_error *err);
void cli_warn(const char *fmt, ...) RBX_PRINTF(1, 2);
/* Open the store named by --root or the default for this user. */
int cli_open_store(struct rbx_store **store, struct rbx_error **err);
/* Whether progress bars may be drawn: stderr is a terminal and --quiet is off. */
bool cli_progress_enabled(void);

int cmd_run(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_version(int argc, char **argv);
