/* cmd_pull.c — `reprobox pull [OPTIONS] docker://NAME[:TAG|@DIGEST]`: fetch an image's manifest,
 * config and layers into the store, so that run, unpack and build find it without network. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

static void pull_usage(FILE *out)
{
    fputs("Usage: reprobox pull [OPTIONS] docker://[HOST[:PORT]/]NAME[:TAG|@DIGEST]\n\n"
          "Download an image from a registry into the store (blobs verified by digest, resumed\n"
          "after an interruption). A short name is on Docker Hub: docker://node:20 is\n"
          "docker.io/library/node:20. The tag is always resolved again; layers already in the\n"
          "store are not downloaded again.\n\n"
          "Options:\n"
          "      --platform OS/ARCH[/VARIANT]  choose from a multi-platform image (default: this\n"
          "                             host's)\n" CLI_REGISTRY_HELP
          "  -q, --quiet                print nothing but errors\n"
          "  -h, --help                 this help\n",
          out);
}

int cmd_pull(int argc, char **argv)
{
    static const struct option opts[] = {
        {"platform", required_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_REGISTRY_LONG_OPTIONS,
        {0},
    };
    struct rbx_error *err = NULL;
    struct rbx_registry_opts ropts = {0};
    const char *platform = NULL;
    bool quiet = rbx_globals.quiet;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
        int r = cli_registry_flag(c, optarg, &ropts, &err);
        if (r < 0)
            return cli_fail(err);
        if (r > 0)
            continue;
        switch (c) {
        case 'p': platform = optarg; break;
        case 'q': quiet = true; break;
        case 'h': pull_usage(stdout); return 0;
        case '?':
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                          "pull: unknown option \"%s\" (see reprobox pull --help)",
                          argv[optind - 1]);
            return cli_fail(err);
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL, "pull: option \"%s\" needs a value",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    if (optind + 1 != argc) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      optind >= argc ? "pull: no image given (see reprobox pull --help)"
                                     : "pull: one image at a time");
        return cli_fail(err);
    }
    const char *reference = argv[optind];
    if (strncmp(reference, "docker://", 9) != 0) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "pull: \"%s\" is not a registry image (docker://NAME[:TAG])", reference);
        return cli_fail(err);
    }
    struct rbx_platform plat;
    struct rbx_pull_stats stats = {0};
    struct rbx_open_opts oopts = {
        .pull = RBX_PULL_ALWAYS, .registry = &ropts, .pull_stats = &stats};
    if (platform) {
        if (rbx_platform_parse(platform, &plat, &err) < 0)
            return cli_fail(err);
        oopts.platform = &plat;
    }
    struct cli_pull_progress *progress =
        !quiet && cli_progress_enabled() ? cli_pull_progress_new() : NULL;
    if (progress) {
        ropts.progress = cli_pull_progress_event;
        ropts.progress_data = progress;
    }
    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    int r = cli_open_store(&store, &err);
    if (r == 0)
        r = rbx_image_open(store, reference, &oopts, &img, &err);
    cli_pull_progress_free(progress);
    if (r < 0)
        return cli_fail(err);
    if (!quiet) {
        _cleanup_free_ char *summary = cli_pull_summary(reference, &stats);
        printf("%s\n", summary);
    }
    return 0;
}
