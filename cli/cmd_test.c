/* cmd_test.c — `reprobox test [--junit FILE] [--report DIR] PATH...`: every recipe as a test of
 * its expectations; one PASS/FAIL line each, then exactly "N passed, N failed". */
#include "cli/cli.h"
#include "recipes/recipes.h"

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

static void test_usage(FILE *out)
{
    fputs("Usage: reprobox test [OPTIONS] PATH...\n\n"
          "Replay each recipe (a .json file, or every .json file of a directory, in name order)\n"
          "and check its expectations. Prints one line per recipe, PASS or FAIL with the first\n"
          "unmet expectation, then \"N passed, N failed\".\n\n"
          "Options:\n"
          "      --junit FILE    write JUnit XML\n"
          "      --report DIR    write each recipe's JSON report to DIR/<name>.json\n"
          "  -v, --verbose       show the processes' output and each recipe's summary\n"
          "      --pull POLICY   docker:// images: missing (default), always or never\n"
          "  -h, --help          this help\n\n"
          "Registry options, for docker:// images:\n" CLI_REGISTRY_HELP "\n"
          "Exit status: 0 when every recipe passes, 1 when one fails, 125 on a usage error.\n",
          out);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int collect_paths(const char *arg, char ***paths, struct rbx_error **err)
{
    struct stat st;
    if (stat(arg, &st) < 0)
        return rbx_error_set_errno(err, RBX_ERR_NOT_FOUND, errno, "test: %s", arg);
    if (!S_ISDIR(st.st_mode)) {
        rbx_strv_push(paths, arg);
        return 0;
    }
    _cleanup_closedir_ DIR *d = opendir(arg);
    if (!d)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "test: %s", arg);
    _cleanup_strv_ char **found = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        rbx_strv_push_take(
            &found,
            rbx_xasprintf("%s%s%s", arg, arg[strlen(arg) - 1] == '/' ? "" : "/", e->d_name));
    }
    if (!found)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "test: %s holds no .json recipe", arg);
    qsort(found, rbx_strv_len(found), sizeof(char *), cmp_str);
    for (size_t i = 0; found[i]; i++)
        rbx_strv_push(paths, found[i]);
    return 0;
}

struct test_case {
    char *name, *file, *message, *detail;
    bool passed, errored;
    double seconds;
};

int cmd_test(int argc, char **argv)
{
    enum { OPT_JUNIT = 256, OPT_REPORT };
    static const struct option opts[] = {
        {"junit", required_argument, NULL, OPT_JUNIT},
        {"report", required_argument, NULL, OPT_REPORT},
        {"verbose", no_argument, NULL, 'v'},
        {"pull", required_argument, NULL, CLI_OPT_PULL},
        CLI_REGISTRY_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *junit = NULL, *report_dir = NULL;
    bool verbose = false;
    struct cli_pull_flags rf = {0};
    struct rbx_error *err = NULL;
    int c, rr;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
        if ((rr = cli_pull_flag(c, optarg, &rf, &err)) != 0) {
            if (rr < 0)
                return cli_fail(err);
            continue;
        }
        switch (c) {
        case OPT_JUNIT: junit = optarg; break;
        case OPT_REPORT: report_dir = optarg; break;
        case 'v': verbose = true; break;
        case 'h': test_usage(stdout); return 0;
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                          "test: unknown option or missing value "
                          "\"%s\" (see reprobox test --help)",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    if (optind >= argc) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "test: no recipe given (see reprobox test --help)");
        return cli_fail(err);
    }
    _cleanup_strv_ char **paths = NULL;
    for (int i = optind; i < argc; i++)
        if (collect_paths(argv[i], &paths, &err) < 0)
            return cli_fail(err);
    if (report_dir && mkdir(report_dir, 0755) < 0 && errno != EEXIST) {
        rbx_error_set_errno(&err, RBX_ERR_IO, errno, "test: --report %s", report_dir);
        return cli_fail(err);
    }
    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    struct rbx_replay_opts ro;
    if (cli_replay_opts(&ro, &store, verbose ? STDERR_FILENO : -1, &rf, &err) < 0)
        return cli_fail(err);

    size_t n = rbx_strv_len(paths), passed = 0, failed = 0;
    struct test_case *cases = rbx_xcalloc(n + 1, sizeof(*cases));
    for (size_t i = 0; i < n; i++) {
        struct test_case *tc = &cases[i];
        tc->file = rbx_xstrdup(paths[i]);
        uint64_t t0 = rbx_now_ns();
        _cleanup_(rbx_recipe_freep) struct rbx_recipe *recipe = NULL;
        struct rbx_error *e = NULL;
        if (rbx_recipe_load(paths[i], environ, &recipe, &e) < 0) {
            const char *base = strrchr(paths[i], '/');
            tc->name = rbx_xstrdup(base ? base + 1 : paths[i]);
            tc->errored = true;
            tc->message = rbx_xstrdup(e->message);
            rbx_error_free(e);
        } else {
            tc->name = rbx_xstrdup(recipe->name);
            struct rbx_replay rep;
            int r = rbx_replay_run(recipe, &ro, &rep, &e);
            tc->passed = r == 0 && rep.passed;
            tc->errored = r < 0;
            tc->message = rbx_xstrdup(rep.unmet ? rep.unmet : e ? e->message : "");
            tc->detail = rbx_replay_summary(&rep);
            if (report_dir) {
                _cleanup_json_ json_t *j = rbx_replay_report(&rep);
                _cleanup_free_ char *file = rbx_xasprintf("%s/%s.json", report_dir, recipe->name);
                struct rbx_error *werr = NULL;
                if (rbx_report_write(j, file, &werr) < 0) {
                    cli_warn("%s", werr->message);
                    rbx_error_free(werr);
                }
            }
            rbx_error_free(e);
            rbx_replay_clear(&rep);
        }
        tc->seconds = (double)(rbx_now_ns() - t0) / 1e9;
        if (tc->passed) {
            passed++;
            printf("PASS %s (%.1f s)\n", tc->name, tc->seconds);
        } else {
            failed++;
            printf("FAIL %s: %s (%.1f s)\n", tc->name, tc->message, tc->seconds);
        }
        if (verbose && tc->detail)
            printf("%s\n", tc->detail);
        fflush(stdout);
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    fflush(stdout);

    int code = failed ? 1 : 0;
    if (junit) {
        struct rbx_junit_case *jc = rbx_xcalloc(n + 1, sizeof(*jc));
        for (size_t i = 0; i < n; i++)
            jc[i] = (struct rbx_junit_case){.name = cases[i].name,
                                            .file = cases[i].file,
                                            .passed = cases[i].passed,
                                            .errored = cases[i].errored,
                                            .message = cases[i].message,
                                            .detail = cases[i].detail,
                                            .seconds = cases[i].seconds};
        _cleanup_free_ char *xml = rbx_junit_xml("reprobox", jc, n);
        free(jc);
        if (rbx_write_file_atomic_at(AT_FDCWD, junit, xml, strlen(xml), 0644, &err) < 0) {
            rbx_error_wrap(&err, "--junit");
            code = cli_fail(err);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(cases[i].name);
        free(cases[i].file);
        free(cases[i].message);
        free(cases[i].detail);
    }
    free(cases);
    return code;
}
