/* cmd_cache.c — `reprobox cache du|prune`: what the cache takes on disk, by kind, and freeing
 * what no recent image and no kept run needs (the policy is rbx_store_prune's, in layers.h). */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

static void cache_usage(FILE *out)
{
    fputs("Usage: reprobox cache du [--json]\n"
          "       reprobox cache prune [--all] [--older-than DURATION]\n\n"
          "du     what the cache takes on disk: imported blobs, unpacked layers, runs (kept\n"
          "       ones apart), work in progress and records\n"
          "prune  forget images last used more than DURATION ago (default 7d) or whose source\n"
          "       (layout dir, archive) is gone or changed, then remove the layers, blobs and\n"
          "       records that no remaining image and no kept run (--keep) needs. Layers a\n"
          "       running reprobox uses are left alone.\n\n"
          "Options:\n"
          "      --all                 remove everything, kept runs too (not what is in use)\n"
          "      --older-than DURATION  e.g. 30m, 12h, 7d (default 7d); 0 forgets every image\n"
          "      --json                 print JSON (du)\n"
          "  -h, --help                 this help\n",
          out);
}

/* "90", "90s", "15m", "12h", "7d" -> seconds. */
static int parse_duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -EINVAL;
    int64_t mult = 1;
    if (*end) {
        if (end[1])
            return -EINVAL;
        switch (*end) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        default: return -EINVAL;
        }
    }
    if (v > INT64_MAX / mult)
        return -ERANGE;
    *out = (int64_t)v * mult;
    return 0;
}

static int cache_du(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct rbx_error *err = NULL;
    bool as_json = false;
    int c;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'h': cache_usage(stdout); return 0;
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL, "cache du: unknown option \"%s\"",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    struct rbx_cache_usage u;
    if (cli_open_store(&store, &err) < 0 || rbx_store_du(store, &u, &err) < 0)
        return cli_fail(err);
    const struct {
        const char *kind;
        const char *note;
        uint64_t count, bytes;
    } rows[] = {
        {"blobs", "imported from archives", u.blobs.count, u.blobs.bytes},
        {"layers", "unpacked", u.layers.count, u.layers.bytes},
        {"runs", "", u.runs.count, u.runs.bytes},
        {"kept", "runs kept with --keep (in runs)", u.kept_runs.count, u.kept_runs.bytes},
        {"tmp", "work in progress", u.tmp.count, u.tmp.bytes},
        {"records", "images and archives", u.records.count, u.records.bytes},
    };
    uint64_t total = u.blobs.bytes + u.layers.bytes + u.runs.bytes + u.tmp.bytes + u.records.bytes;
    if (as_json) {
        _cleanup_json_ json_t *j = json_object();
        for (size_t i = 0; i < RBX_ARRAY_SIZE(rows); i++)
            json_object_set_new(j, rows[i].kind,
                                json_pack("{s:I, s:I}", "count", (json_int_t)rows[i].count, "bytes",
                                          (json_int_t)rows[i].bytes));
        json_object_set_new(j, "total", json_pack("{s:I}", "bytes", (json_int_t)total));
        json_object_set_new(j, "dir", json_string(rbx_store_dir(store)));
        _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(text);
        return 0;
    }
    char size[32];
    printf("%-8s %7s %10s\n", "KIND", "COUNT", "SIZE");
    for (size_t i = 0; i < RBX_ARRAY_SIZE(rows); i++)
        printf("%-8s %7llu %10s  %s\n", rows[i].kind, (unsigned long long)rows[i].count,
               rbx_format_size(rows[i].bytes, size, sizeof(size)), rows[i].note);
    printf("%-8s %7s %10s  %s\n", "total", "", rbx_format_size(total, size, sizeof(size)),
           rbx_store_dir(store));
    return 0;
}

static int cache_prune(int argc, char **argv)
{
    enum { OPT_OLDER = 256 };
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"older-than", required_argument, NULL, OPT_OLDER},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct rbx_error *err = NULL;
    struct rbx_prune_opts po = {.older_than = -1};
    int c;
    while ((c = getopt_long(argc, argv, "+ah", opts, NULL)) != -1) {
        switch (c) {
        case 'a': po.all = true; break;
        case OPT_OLDER:
            if (parse_duration(optarg, &po.older_than) < 0) {
                rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                              "--older-than \"%s\": expected a duration like 30m, 12h or 7d",
                              optarg);
                return cli_fail(err);
            }
            break;
        case 'h': cache_usage(stdout); return 0;
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL, "cache prune: unknown option \"%s\"",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    if (optind != argc) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL, "cache prune: no arguments expected");
        return cli_fail(err);
    }
    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    struct rbx_prune_stats st;
    if (cli_open_store(&store, &err) < 0 || rbx_store_prune(store, &po, &st, &err) < 0)
        return cli_fail(err);
    if (!rbx_globals.quiet) {
        char size[32];
        printf("removed %llu image records, %llu layers, %llu blobs, %llu kept runs: %s freed\n",
               (unsigned long long)st.images, (unsigned long long)st.layers,
               (unsigned long long)st.blobs, (unsigned long long)st.runs,
               rbx_format_size(st.bytes, size, sizeof(size)));
        if (st.layers_in_use)
            printf("left %llu layers in use by a running reprobox\n",
                   (unsigned long long)st.layers_in_use);
    }
    return 0;
}

int cmd_cache(int argc, char **argv)
{
    struct rbx_error *err = NULL;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cache_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RBX_EXIT_FAILURE : 0;
    }
    opterr = 0;
    optind = 0;
    if (strcmp(argv[1], "du") == 0)
        return cache_du(argc - 1, argv + 1);
    if (strcmp(argv[1], "prune") == 0)
        return cache_prune(argc - 1, argv + 1);
    rbx_error_set(&err, RBX_ERR_USAGE, EINVAL, "cache: unknown subcommand \"%s\" (du or prune)",
                  argv[1]);
    return cli_fail(err);
}
