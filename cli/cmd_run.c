/* cmd_run.c — `reprobox run [OPTIONS] IMAGE [COMMAND] [ARG...]`: docker's flags in, the
 * command's exit status out (125/126/127 for reprobox's own failures, as docker). */
#include "cli/cli.h"
#include "recipes/recipes.h"

#include <getopt.h>
#include <string.h>

extern char **environ;

static void run_usage(FILE *out)
{
    fputs("Usage: reprobox run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
          "Run a command in a new sandbox made from IMAGE (its Entrypoint and Cmd by default;\n"
          "COMMAND and ARGs replace Cmd, as in docker run).\n\n"
          "Options:\n"
          "  -e, --env KEY=VALUE      set a variable; -e KEY takes KEY from this environment\n"
          "      --env-file FILE      read KEY=VALUE lines from FILE\n"
          "  -w, --workdir DIR        working directory inside (created when missing)\n"
          "  -u, --user USER[:GROUP]  a name or uid[:gid] of the image's /etc/passwd\n"
          "      --entrypoint CMD     replace the image's Entrypoint (and drop its Cmd)\n"
          "      --hostname NAME      the sandbox's hostname (default reprobox)\n"
          "      --network MODE       none (default: loopback only) or host\n"
          "  -v, --volume SRC:DST[:ro] bind-mount a host path\n"
          "      --read-only          mount the image's rootfs read-only\n"
          "      --platform OS/ARCH   choose from a multi-platform image (default: this host's)\n"
          "      --pull POLICY        docker:// images: missing (default: pull when not in the\n"
          "                           store), always (resolve the tag again) or "
          "never\n" CLI_REGISTRY_HELP
          "      --report FILE        write a JSON report of the run (docs/report.md)\n"
          "      --keep               keep the run's changes to the rootfs and print where\n"
          "      --rm, -i             accepted for docker compatibility (always so)\n"
          "  -h, --help               this help\n\n"
          "Exit status: the command's; 128+N when killed by signal N; 125 when reprobox fails;\n"
          "126 when the command cannot be executed; 127 when it is not found.\n",
          out);
}

struct run_flags {
    struct rbx_run_request req;
    char **env, **env_files, **volumes;
    const char *network, *platform, *report;
    bool keep, read_only;
    enum rbx_pull_policy pull;
    struct rbx_registry_opts registry;
};

static int parse_volume(const char *v, struct rbx_mount_spec *m, struct rbx_error **err)
{
    _cleanup_free_ char *copy = rbx_xstrdup(v);
    char *dst = strchr(copy, ':');
    if (!dst || dst == copy)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "-v \"%s\": expected HOST:CONTAINER[:ro]", v);
    *dst++ = '\0';
    char *mode = strchr(dst, ':');
    if (mode)
        *mode++ = '\0';
    if (copy[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "-v \"%s\": the host path must be absolute (named volumes are not supported)", v);
    if (dst[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "-v \"%s\": the container path must be absolute", v);
    if (mode && strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "-v \"%s\": unknown mode \"%s\" (ro or rw)", v, mode);
    m->source = rbx_xstrdup(copy);
    m->target = rbx_xstrdup(dst);
    m->type = rbx_xstrdup("bind");
    m->readonly = mode && strcmp(mode, "ro") == 0;
    return 0;
}

static int parse_flags(int argc, char **argv, struct run_flags *f, int *image_index, struct rbx_error **err)
{
    enum { OPT_ENV_FILE = 256, OPT_ENTRYPOINT, OPT_HOSTNAME, OPT_NETWORK, OPT_PLATFORM, OPT_REPORT,
           OPT_KEEP, OPT_RM, OPT_READ_ONLY };
    static const struct option opts[] = {
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
        {"hostname", required_argument, NULL, OPT_HOSTNAME},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"net", required_argument, NULL, OPT_NETWORK},
        {"volume", required_argument, NULL, 'v'},
        {"read-only", no_argument, NULL, OPT_READ_ONLY},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"report", required_argument, NULL, OPT_REPORT},
        {"keep", no_argument, NULL, OPT_KEEP},
        {"rm", no_argument, NULL, OPT_RM},
        {"interactive", no_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {"pull", required_argument, NULL, CLI_OPT_PULL},
        CLI_REGISTRY_LONG_OPTIONS,
        {0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+e:w:u:v:ih", opts, NULL)) != -1) {
        int rr = cli_registry_flag(c, optarg, &f->registry, err);
        if (rr < 0)
            return rr;
        if (rr > 0)
            continue;
        switch (c) {
        case CLI_OPT_PULL:
            if ((rr = rbx_pull_policy_parse(optarg, &f->pull, err)) < 0)
                return rr;
            break;
        case 'e': rbx_strv_push(&f->env, optarg); break;
        case OPT_ENV_FILE: rbx_strv_push(&f->env_files, optarg); break;
        case 'w': f->req.workdir = optarg; break;
        case 'u': f->req.user = optarg; break;
        case OPT_ENTRYPOINT: f->req.entrypoint = optarg; break;
        case OPT_HOSTNAME: f->req.hostname = optarg; break;
        case OPT_NETWORK: f->network = optarg; break;
        case 'v': rbx_strv_push(&f->volumes, optarg); break;
        case OPT_READ_ONLY: f->read_only = true; break;
        case OPT_PLATFORM: f->platform = optarg; break;
        case OPT_REPORT: f->report = optarg; break;
        case OPT_KEEP: f->keep = true; break;
        case OPT_RM:
        case 'i': break;
        case 'h': run_usage(stdout); return 1;
        case '?':
            if (optopt)
                return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "run: unknown option \"-%c\" (see reprobox run --help)", optopt);
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "run: unknown option \"%s\" (see reprobox run --help)",
                                 argv[optind - 1]);
        case ':':
        default:
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "run: option \"%s\" needs a value", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "run: no image given (see reprobox run --help)");
    if (f->network && strcmp(f->network, "none") != 0 && strcmp(f->network, "host") != 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--network \"%s\": expected none or host", f->network);
    *image_index = optind;
    return 0;
}

struct run_state {
    struct run_flags flags;
    struct rbx_store *store;
    struct rbx_image *img;
    struct rbx_run_dir *rd;
    struct rbx_spec spec;
    struct rbx_compose_info info;
    struct rbx_result res;
    struct rbx_run_timings t;
};

static void run_state_clear(struct run_state *s)
{
    rbx_strv_free(s->flags.env);
    rbx_strv_free(s->flags.env_files);
    rbx_strv_free(s->flags.volumes);
    rbx_result_clear(&s->res);
    rbx_compose_info_clear(&s->info);
    rbx_spec_clear(&s->spec);
    if (s->rd) {
        bool keep = s->flags.keep;
        if (keep)
            fprintf(stderr, "reprobox: kept the run's changes in %s\n", rbx_run_dir_upper(s->rd));
        s->rd = rbx_run_dir_close(s->rd, keep);
    }
    s->img = rbx_image_free(s->img);
    s->store = rbx_store_free(s->store);
}

/* Open, unpack and compose: everything before the sandbox starts. */
static int prepare(struct run_state *s, int argc, char **argv, int image_index, struct rbx_error **err)
{
    struct rbx_platform plat;
    struct rbx_pull_stats pstats = {0};
    struct rbx_open_opts oopts = {
        .pull = s->flags.pull, .registry = &s->flags.registry, .pull_stats = &pstats};
    int r;

    if (s->flags.platform) {
        r = rbx_platform_parse(s->flags.platform, &plat, err);
        if (r < 0)
            return r;
        oopts.platform = &plat;
    }
    r = cli_open_store(&s->store, err);
    if (r < 0)
        return r;
    struct cli_pull_progress *pp = cli_progress_enabled() ? cli_pull_progress_new() : NULL;
    if (pp) {
        s->flags.registry.progress = cli_pull_progress_event;
        s->flags.registry.progress_data = pp;
    }
    r = rbx_image_open(s->store, argv[image_index], &oopts, &s->img, err);
    cli_pull_progress_free(pp);
    if (r < 0)
        return r;
    if (pstats.contacted && !rbx_globals.quiet) {
        /* stdout is the command's: what was pulled is said on stderr. */
        _cleanup_free_ char *summary = cli_pull_summary(argv[image_index], &pstats);
        fprintf(stderr, "%s\n", summary);
    }

    uint64_t t0 = rbx_now_ns();
    _cleanup_(rbx_progress_bar_freep) struct rbx_progress_bar *bar =
        cli_progress_enabled() ? rbx_progress_bar_new(STDERR_FILENO) : NULL;
    struct rbx_unpack_opts uopts = {.progress = bar ? rbx_progress_bar_update : NULL, .progress_data = bar};
    struct rbx_unpack_stats stats = {0};
    r = rbx_image_unpack(s->store, s->img, &uopts, &stats, err);
    s->t.unpack_ns = rbx_now_ns() - t0;
    if (r < 0)
        return r;

    s->flags.req.args = &argv[image_index + 1];
    s->flags.req.env = s->flags.env;
    s->flags.req.env_files = s->flags.env_files;
    s->flags.req.caller_env = environ;
    r = rbx_run_compose(&s->img->config, &s->flags.req, &s->spec, &s->info, err);
    if (r < 0)
        return r;

    for (size_t i = 0; s->flags.volumes && s->flags.volumes[i]; i++) {
        s->spec.mounts = rbx_xrealloc(s->spec.mounts, (s->spec.n_mounts + 1) * sizeof(*s->spec.mounts));
        memset(&s->spec.mounts[s->spec.n_mounts], 0, sizeof(*s->spec.mounts));
        r = parse_volume(s->flags.volumes[i], &s->spec.mounts[s->spec.n_mounts], err);
        s->spec.n_mounts++;
        if (r < 0)
            return r;
    }
    s->spec.network = s->flags.network && strcmp(s->flags.network, "host") == 0 ? RBX_NETWORK_HOST
                                                                               : RBX_NETWORK_NONE;
    s->spec.readonly_rootfs = s->flags.read_only;

    r = rbx_image_layer_dirs(s->store, s->img, &s->spec.lower_dirs, err);
    if (r < 0)
        return r;
    r = rbx_run_dir_create(s->store, &s->rd, err);
    if (r < 0)
        return r;
    s->spec.upper_dir = rbx_xstrdup(rbx_run_dir_upper(s->rd));
    s->spec.work_dir = rbx_xstrdup(rbx_run_dir_work(s->rd));
    s->spec.rootfs_dir = rbx_xasprintf("%s/merged", rbx_run_dir_path(s->rd));
    s->spec.stdin_fd = STDIN_FILENO;
    s->spec.stdout_fd = STDOUT_FILENO;
    s->spec.stderr_fd = STDERR_FILENO;
    s->spec.tail_lines = 64;
    return 0;
}

int cmd_run(int argc, char **argv)
{
    struct run_state s = {0};
    struct rbx_error *err = NULL;
    int image_index = 0, r;

    rbx_spec_clear(&s.spec);
    r = parse_flags(argc, argv, &s.flags, &image_index, &err);
    if (r != 0) {
        run_state_clear(&s);
        return r > 0 ? 0 : cli_fail(err);
    }
    r = prepare(&s, argc, argv, image_index, &err);
    if (r == 0) {
        r = rbx_sandbox_run(&s.spec, &s.res, &err);
        s.t.setup_ns = s.res.setup_ns;
        s.t.run_ns = s.res.run_ns;
    }
    int code = r < 0 ? cli_exit_code(err) : s.res.exit_code;
    if (s.flags.report) {
        _cleanup_json_ json_t *report = rbx_run_report(s.img, s.spec.argv ? &s.spec : NULL, &s.info,
                                                       &s.res, &s.t, err);
        if (r < 0)
            json_object_set_new(json_object_get(report, "result"), "exit_code", json_integer(code));
        struct rbx_error *werr = NULL;
        if (rbx_report_write(report, s.flags.report, &werr) < 0) {
            fprintf(stderr, "reprobox: error: %s\n", werr->message);
            rbx_error_free(werr);
            if (r == 0)
                code = RBX_EXIT_FAILURE;
        }
    }
    run_state_clear(&s);
    if (r < 0)
        return cli_fail(err);
    return code;
}
