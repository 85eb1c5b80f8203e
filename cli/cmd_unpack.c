/* cmd_unpack.c — `reprobox unpack [OPTIONS] IMAGE DEST`: the image's root filesystem, every
 * layer applied and whiteouts carried out, written into DEST. */
#include "cli/cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

static void unpack_usage(FILE *out)
{
    fputs(
        "Usage: reprobox unpack [OPTIONS] IMAGE DEST\n"
        "       reprobox unpack --bundle [OPTIONS] IMAGE DEST\n\n"
        "Write IMAGE's root filesystem into DEST (absent, or an empty directory): every layer\n"
        "applied in order, whiteouts and opaque directories carried out, owners (as root;\n"
        "rootless: as mapped), modes, times, xattrs and hardlinks kept. The tree is built beside\n"
        "DEST and renamed into place: DEST never holds half an image.\n\n"
        "With --bundle, DEST becomes an OCI runtime bundle instead: DEST/config.json, made from\n"
        "the image's config as `reprobox run IMAGE` would run it (see reprobox spec), and\n"
        "DEST/rootfs. `runc run -b DEST ID` and `reprobox run --bundle DEST` run it as it is.\n\n"
        "Options:\n"
        "      --bundle                      write an OCI runtime bundle (config.json + rootfs)\n"
        "      --platform OS/ARCH[/VARIANT]  choose from a multi-platform image\n"
        "      --max-layer-size SIZE         refuse a layer that expands beyond SIZE (32g)\n"
        "      --pull POLICY                 docker:// images: missing (default), always, never\n"
        "  -q, --quiet                       print nothing but errors\n"
        "  -h, --help                        this help\n\n"
        "Registry options, for docker:// images:\n" CLI_REGISTRY_HELP,
        out);
}

/* --bundle: `reprobox spec` writes the bundle into a dir beside DEST, renamed over it when done. */
static int unpack_bundle(char **pass, const char *image, const char *dest)
{
    struct rbx_error *err = NULL;
    if (rbx_dest_check(dest, &err) < 0)
        return cli_fail(err);
    _cleanup_free_ char *copy = rbx_xstrdup(dest), *parent = rbx_xstrdup(dirname(copy));
    _cleanup_free_ char *base = rbx_xstrdup(basename(strcpy(copy, dest)));
    _cleanup_free_ char *tmp = rbx_xasprintf("%s/.%s.bundle-%d", parent, base, (int)getpid());
    _cleanup_strv_ char **argv = NULL;
    rbx_strv_push(&argv, "spec");
    for (size_t i = 0; pass && pass[i]; i++)
        rbx_strv_push(&argv, pass[i]);
    rbx_strv_push(&argv, image);
    rbx_strv_push(&argv, tmp);
    /* spec rearranges its argv: hand it a copy of the pointers, not the strings we free. */
    size_t n = rbx_strv_len(argv);
    _cleanup_free_ char **view = rbx_xcalloc(n + 1, sizeof(*view));
    memcpy(view, argv, n * sizeof(*view));
    optind = 0;
    int code = cli_spec_write((int)n, view, false);
    if (code == 0 && rename(tmp, dest) < 0) {
        rbx_error_set_errno(&err, RBX_ERR_IO, errno, "unpack: %s", dest);
        code = cli_fail(err);
    }
    if (code != 0)
        (void)rbx_rm_rf_at(AT_FDCWD, tmp, NULL);
    return code;
}

int cmd_unpack(int argc, char **argv)
{
    enum { OPT_PLATFORM = 256, OPT_MAX, OPT_BUNDLE };
    static const struct option opts[] = {
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"bundle", no_argument, NULL, OPT_BUNDLE},
        {"max-layer-size", required_argument, NULL, OPT_MAX},
        {"pull", required_argument, NULL, CLI_OPT_PULL},
        CLI_REGISTRY_LONG_OPTIONS,
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct rbx_error *err = NULL;
    const char *platform = NULL;
    uint64_t max = 0;
    bool bundle = false;
    struct cli_pull_flags pf = {0};
    _cleanup_strv_ char **pass = NULL; /* the options --bundle hands to reprobox spec */
    int c, idx = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+qh", opts, &idx)) != -1) {
        if (c >= CLI_OPT_PULL)
            rbx_strv_push_take(&pass, optarg ? rbx_xasprintf("--%s=%s", opts[idx].name, optarg)
                                             : rbx_xasprintf("--%s", opts[idx].name));
        int rr = cli_pull_flag(c, optarg, &pf, &err);
        if (rr < 0)
            return cli_fail(err);
        if (rr > 0)
            continue;
        switch (c) {
        case OPT_PLATFORM:
            platform = optarg;
            rbx_strv_push_take(&pass, rbx_xasprintf("--platform=%s", optarg));
            break;
        case OPT_BUNDLE: bundle = true; break;
        case OPT_MAX:
            if (rbx_parse_size(optarg, &max) < 0 || max == 0) {
                rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                              "--max-layer-size \"%s\": expected a size like 512m or 8g", optarg);
                return cli_fail(err);
            }
            break;
        case 'q': rbx_globals.quiet = true; break;
        case 'h': unpack_usage(stdout); return 0;
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                          "unpack: unknown option \"%s\" (see reprobox unpack --help)",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    if (argc - optind != 2) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "unpack: want IMAGE and DEST (see reprobox unpack --help)");
        return cli_fail(err);
    }
    const char *image = argv[optind], *dest = argv[optind + 1];
    if (bundle && max) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "unpack: --max-layer-size is for the flat tree; --bundle goes through the layer cache");
        return cli_fail(err);
    }
    if (bundle)
        return unpack_bundle(pass, image, dest);

    struct rbx_platform plat;
    struct rbx_pull_stats pstats = {0};
    struct rbx_open_opts oopts = {.pull = pf.pull, .registry = &pf.registry, .pull_stats = &pstats};
    if (platform) {
        if (rbx_platform_parse(platform, &plat, &err) < 0)
            return cli_fail(err);
        oopts.platform = &plat;
    }
    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    if (cli_open_store(&store, &err) < 0)
        return cli_fail(err);
    struct cli_pull_progress *pp = cli_progress_enabled() ? cli_pull_progress_new() : NULL;
    if (pp) {
        pf.registry.progress = cli_pull_progress_event;
        pf.registry.progress_data = pp;
    }
    int r = rbx_image_open(store, image, &oopts, &img, &err);
    cli_pull_progress_free(pp);
    if (r < 0)
        return cli_fail(err);
    if (pstats.contacted && !rbx_globals.quiet) {
        _cleanup_free_ char *summary = cli_pull_summary(image, &pstats);
        fprintf(stderr, "%s\n", summary);
    }

    _cleanup_(rbx_progress_bar_freep) struct rbx_progress_bar *bar =
        cli_progress_enabled() ? rbx_progress_bar_new(STDERR_FILENO) : NULL;
    struct rbx_unpack_opts uopts = {
        .progress = bar ? rbx_progress_bar_update : NULL,
        .progress_data = bar,
        .max_layer_bytes = max,
    };
    _cleanup_(rbx_flat_stats_clear) struct rbx_flat_stats st = {0};
    uint64_t t0 = rbx_now_ns();
    if (rbx_image_unpack_to(img, dest, &uopts, &st, &err) < 0) {
        bar = rbx_progress_bar_free(bar, NULL);
        return cli_fail(err);
    }
    if (bar) {
        char line[256], size[32];
        snprintf(line, sizeof(line), "unpacked %u layers (%s, %llu entries) into %s in %.1f s",
                 st.layers, rbx_format_size(st.bytes_read, size, sizeof(size)),
                 (unsigned long long)st.entries, dest, (double)(rbx_now_ns() - t0) / 1e9);
        bar = rbx_progress_bar_free(bar, line);
    }
    if (st.skipped_devices && !rbx_globals.quiet) {
        _cleanup_free_ char *names = rbx_xstrdup("");
        for (size_t i = 0; st.skipped_names && st.skipped_names[i]; i++) {
            char *n = rbx_xasprintf("%s%s/%s", names, i ? ", " : "", st.skipped_names[i]);
            free(names);
            names = n;
        }
        cli_warn("%llu device nodes or fifos not made (not permitted here): %s%s",
                 (unsigned long long)st.skipped_devices, names,
                 st.skipped_devices > rbx_strv_len(st.skipped_names) ? ", ..." : "");
    }
    if (st.skipped_owners && !rbx_globals.quiet)
        cli_warn("%llu owners not kept: their ids are not mapped here (files left as yours)",
                 (unsigned long long)st.skipped_owners);
    return 0;
}
