/* main.c — global options and subcommand dispatch; each subcommand lives in cmd_<name>.c. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>

struct rbx_globals rbx_globals;

static const struct rbx_command commands[] = {
    {"pull", "download an image from a registry into the store", cmd_pull, true},
    {"run", "run a command in a new sandbox from an image", cmd_run, true},
    {"replay", "replay a recipe's services and steps, explain what failed", cmd_replay, true},
    {"test", "replay recipes and check their expectations", cmd_test, true},
    {"doctor", "find what would fail in an image before anything runs", cmd_doctor, true},
    {"spec", "write an OCI runtime bundle (config.json + rootfs) for a run", cmd_spec, true},
    {"unpack", "write an image's root filesystem into a directory", cmd_unpack, true},
    {"images", "list the images and layers the cache holds", cmd_images, true},
    {"cache", "show what the cache takes on disk (du), free it (prune)", cmd_cache, true},
    {"build", "build an image from a Dockerfile, reproducibly", cmd_build, true},
    {"shell", "open a shell where the last failed build step ran", cmd_shell, true},
    {"version", "print the version", cmd_version, false},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: reprobox [--root DIR] [--quiet] COMMAND [OPTIONS] [ARGS...]\n\n"
                 "See a container's failure on your own machine, exactly as in CI or production.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < RBX_ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nGlobal options:\n"
                 "  --root DIR   the image and layer cache (default: /var/lib/reprobox as root,\n"
                 "               $XDG_CACHE_HOME/reprobox otherwise)\n"
                 "  -q, --quiet  print nothing but errors\n"
                 "  -h, --help   this help; `reprobox COMMAND --help` for a command's\n"
                 "  --version    print the version\n\n"
                 "Images: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG],\n"
                 "        docker://[HOST[:PORT]/]NAME[:TAG|@DIGEST]\n");
}

int cli_exit_code(const struct rbx_error *err)
{
    if (!err)
        return 0;
    switch (err->kind) {
    case RBX_ERR_EXEC_NOT_FOUND: return RBX_EXIT_NOT_FOUND;
    case RBX_ERR_EXEC_DENIED:
    case RBX_ERR_EXEC_FORMAT: return RBX_EXIT_CANNOT_EXEC;
    default: return RBX_EXIT_FAILURE;
    }
}

int cli_fail(struct rbx_error *err)
{
    int code = cli_exit_code(err);
    fprintf(stderr, "reprobox: error: %s\n", err ? err->message : "unknown error");
    rbx_error_free(err);
    return code ? code : RBX_EXIT_FAILURE;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("reprobox: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_progress_enabled(void) { return !rbx_globals.quiet && isatty(STDERR_FILENO); }

static char *store_dir(void)
{
    return rbx_globals.root ? rbx_xstrdup(rbx_globals.root)
                            : rbx_store_default_dir(rbx_globals.priv == RBX_PRIV_ROOTLESS);
}

int cli_open_store(struct rbx_store **store, struct rbx_error **err)
{
    _cleanup_free_ char *dir = store_dir();
    return rbx_store_open(dir, store, err);
}

int cli_open_store_for_run(struct rbx_store **store, struct rbx_error **err)
{
    _cleanup_free_ char *dir = store_dir();
    return rbx_store_open_for_run(dir, store, err);
}

bool cli_store_goes_flat(struct rbx_store *store)
{
    if (!rbx_store_overlay_unusable(store))
        return false;
    if (rbx_store_overlay_recorded(store))
        return true; /* said before */
    _cleanup_free_ char *why = rbx_xasprintf("the store %s is on overlayfs", rbx_store_dir(store));
    struct rbx_error *err = NULL;
    if (rbx_store_set_overlay_unusable(store, why, &err) < 0)
        err = rbx_error_free(err); /* said again next time, then */
    if (!rbx_globals.quiet)
        cli_warn("overlayfs is not usable here (%s); runs with this store use a flat copy of the image "
                 "(slower to start)",
                 why);
    return true;
}

/* Deep layer trees are walked with one fd per level: give ourselves the hard limit. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    int c;

    rbx_globals.argv = argv;
    while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rbx_globals.root = optarg; break;
        case 'q': rbx_globals.quiet = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': return cmd_version(0, NULL);
        default: usage(stderr); return RBX_EXIT_FAILURE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return RBX_EXIT_FAILURE;
    }
    const char *name = argv[optind];
    const struct rbx_command *cmd = NULL;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(commands); i++)
        if (strcmp(name, commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "reprobox: error: unknown command \"%s\" (see reprobox --help)\n", name);
        return RBX_EXIT_FAILURE;
    }
    if (rbx_globals.root && rbx_globals.root[0] != '/') {
        /* Resolve now: a rootless re-execution must see the same store. */
        char *abs = realpath(rbx_globals.root, NULL);
        if (!abs) {
            _cleanup_free_ char *cwd = getcwd(NULL, 0);
            abs = rbx_xasprintf("%s/%s", cwd ? cwd : ".", rbx_globals.root);
        }
        rbx_globals.root = abs; /* lives as long as the process */
    }
    raise_nofile();
    if (cmd->needs_privilege) {
        /* --help needs no privilege; anything else decides it once, here. */
        bool help = false;
        for (int i = optind + 1; i < argc && strcmp(argv[i], "--") != 0; i++)
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
                help = true;
        struct rbx_error *err = NULL;
        if (!help && rbx_privilege_setup(argv, &rbx_globals.priv, &rbx_globals.mapped_ids, &err) < 0)
            return cli_fail(err);
    }
    int first = optind;
    optind = 0; /* the subcommand runs getopt over its own argv, from its name on */
    return cmd->fn(argc - first, argv + first);
}

int cmd_version(int argc, char **argv)
{
    printf("reprobox %s\n", REPROBOX_VERSION);
    return 0;
}
