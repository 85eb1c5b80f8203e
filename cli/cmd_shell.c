/* cmd_shell.c — `reprobox shell --failed [-- COMMAND...]`: a shell (or a command) exactly where
 * the last failed build step ran: its layers (and its kept changes), its environment, user,
 * working directory and network. Changes made in the shell are thrown away. */
#include "builder/builder.h"
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

static void shell_usage(FILE *out)
{
    fputs("Usage: reprobox shell --failed [-- COMMAND [ARG...]]\n\n"
          "Open the stage's shell (SHELL, else /bin/sh) where the last failed `reprobox build`\n"
          "step ran: the same layers, plus the step's own changes when the build ran with\n"
          "--keep-failed; the same environment, user, working directory and network.\n"
          "With COMMAND, run that instead. What you change there is thrown away.\n\n"
          "Options:\n"
          "      --failed   the last failed build step (the only place for now)\n"
          "  -h, --help     this help\n\n"
          "Exit status: the shell's or the command's; 125 when reprobox fails.\n",
          out);
}

int cmd_shell(int argc, char **argv)
{
    static const struct option opts[] = {
        {"failed", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool failed = false;
    struct rbx_error *err = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'F': failed = true; break;
        case 'h': shell_usage(stdout); return 0;
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                          "shell: unknown option \"%s\" (see reprobox shell --help)",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    if (!failed) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "shell: say where: --failed (see reprobox shell --help)");
        return cli_fail(err);
    }
    char **cmd = &argv[optind];
    struct rbx_store *store = NULL;
    struct rbx_failed_step f = {0};
    struct rbx_run_dir *rd = NULL;
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    struct rbx_result res;
    memset(&res, 0, sizeof(res));
    int r = cli_open_store(&store, &err);
    if (r == 0)
        r = rbx_build_failed_load(store, &f, &err);
    if (r == 0)
        r = rbx_run_dir_create(store, &rd, &err);
    if (r == 0) {
        spec.lower_dirs = rbx_strv_copy(f.lowers);
        spec.upper_dir = rbx_xstrdup(rbx_run_dir_upper(rd));
        spec.work_dir = rbx_xstrdup(rbx_run_dir_work(rd));
        spec.rootfs_dir = rbx_xstrdup(rbx_run_dir_merged(rd));
        if (cmd[0]) {
            spec.argv = rbx_strv_copy(cmd);
        } else {
            rbx_strv_push(&spec.argv, f.shell && f.shell[0] ? f.shell[0] : "/bin/sh");
            /* stdout goes through the relay, not the terminal: ask for a prompt anyway */
            if (isatty(STDIN_FILENO))
                rbx_strv_push(&spec.argv, "-i");
        }
        spec.env = rbx_strv_copy(f.env);
        spec.cwd = rbx_xstrdup(f.cwd);
        spec.user = f.user ? rbx_xstrdup(f.user) : NULL;
        spec.hostname = rbx_xstrdup("reprobox");
        spec.network = f.network;
        spec.stdin_fd = STDIN_FILENO;
        spec.stdout_fd = STDOUT_FILENO;
        spec.stderr_fd = STDERR_FILENO;
        if (!rbx_globals.quiet)
            fprintf(stderr, "reprobox: %s at %s%s\n", cmd[0] ? "running" : "shell", f.where,
                    f.has_changes ? " (with the step's changes)"
                                  : " (as the step started; --keep-failed keeps its changes)");
        r = rbx_sandbox_run(&spec, &res, &err);
    }
    int code = r < 0 ? cli_exit_code(err) : res.exit_code;
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
    rbx_run_dir_close(rd, false);
    rbx_failed_step_clear(&f);
    rbx_store_free(store);
    if (r < 0)
        return cli_fail(err);
    return code;
}
