/* cmd_replay.c — `reprobox replay [--report FILE] [--keep] RECIPE`: run a recipe's services and
 * steps as production would and explain, in one line, what failed. */
#include "cli/cli.h"
#include "recipes/recipes.h"

#include <getopt.h>
#include <string.h>

extern char **environ;

static void replay_usage(FILE *out)
{
    fputs("Usage: reprobox replay [OPTIONS] RECIPE\n\n"
          "Run the recipe's services and steps as production would (docs/recipes.md), then say\n"
          "what happened: one line per service and step, led by the diagnosis of the first\n"
          "failure. The processes' output goes to stderr as it comes.\n\n"
          "Options:\n"
          "      --report FILE   write the JSON report of the replay (schema reprobox.replay/v1)\n"
          "      --keep          keep the containers' changes to their rootfs and print where\n"
          "      --pull POLICY   docker:// images: missing (default), always or never\n"
          "  -h, --help          this help\n\n"
          "Registry options, for docker:// images:\n" CLI_REGISTRY_HELP "\n"
          "Exit status: 0 when every service and step did fine, 1 when one failed, 125 when\n"
          "reprobox could not replay the recipe (a bad recipe, a missing image).\n",
          out);
}

int cli_replay_opts(struct rbx_replay_opts *o, struct rbx_store **store, int log_fd,
                    const struct cli_pull_flags *f, struct rbx_error **err)
{
    int r = cli_open_store(store, err);
    if (r < 0)
        return r;
    (void)cli_store_goes_flat(*store); /* says so once where overlayfs is not usable */
    memset(o, 0, sizeof(*o));
    o->store = *store;
    o->caller_env = environ;
    o->log_fd = log_fd;
    o->pull = f->pull;
    o->registry = &f->registry;
    return 0;
}

int cmd_replay(int argc, char **argv)
{
    enum { OPT_REPORT = 256, OPT_KEEP };
    static const struct option opts[] = {
        {"report", required_argument, NULL, OPT_REPORT},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"pull", required_argument, NULL, CLI_OPT_PULL},
        CLI_REGISTRY_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *report = NULL;
    bool keep = false;
    struct cli_pull_flags rf = {0};
    struct rbx_error *err = NULL;
    int c, rr;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if ((rr = cli_pull_flag(c, optarg, &rf, &err)) != 0) {
            if (rr < 0)
                return cli_fail(err);
            continue;
        }
        switch (c) {
        case OPT_REPORT: report = optarg; break;
        case OPT_KEEP: keep = true; break;
        case 'h': replay_usage(stdout); return 0;
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                          "replay: unknown option or missing value "
                          "\"%s\" (see reprobox replay --help)",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    if (optind != argc - 1) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "replay: expected one recipe file (see reprobox replay --help)");
        return cli_fail(err);
    }
    _cleanup_(rbx_recipe_freep) struct rbx_recipe *recipe = NULL;
    if (rbx_recipe_load(argv[optind], environ, &recipe, &err) < 0)
        return cli_fail(err);

    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    struct rbx_replay_opts ro;
    if (cli_replay_opts(&ro, &store, rbx_globals.quiet ? -1 : STDERR_FILENO, &rf, &err) < 0)
        return cli_fail(err);
    ro.keep = keep;
    struct rbx_progress_bar *bar =
        cli_progress_enabled() ? rbx_progress_bar_new(STDERR_FILENO) : NULL;
    ro.progress = bar ? rbx_progress_bar_update : NULL;
    ro.progress_data = bar;
    struct rbx_replay rep;
    int r = rbx_replay_run(recipe, &ro, &rep, &err);
    if (bar)
        rbx_progress_bar_free(bar, NULL);
    int code = r < 0 ? RBX_EXIT_FAILURE : rbx_replay_succeeded(&rep) ? 0 : 1;
    if (!rbx_globals.quiet || code) {
        _cleanup_free_ char *summary = rbx_replay_summary(&rep);
        fputs(summary, stdout);
        fflush(stdout);
    }
    if (report) {
        _cleanup_json_ json_t *j = rbx_replay_report(&rep);
        struct rbx_error *werr = NULL;
        if (rbx_report_write(j, report, &werr) < 0) {
            fprintf(stderr, "reprobox: error: %s\n", werr->message);
            rbx_error_free(werr);
            code = RBX_EXIT_FAILURE;
        }
    }
    rbx_replay_clear(&rep);
    if (r < 0)
        return cli_fail(err);
    return code;
}
