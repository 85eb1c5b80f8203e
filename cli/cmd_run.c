/* cmd_run.c — `reprobox run [OPTIONS] IMAGE [COMMAND] [ARG...]` and `reprobox run --bundle DIR`:
 * docker's flags in, the command's exit status out (125/126/127 for reprobox's own failures, as
 * docker). The options are shared with `reprobox spec`, which writes the same run as a bundle. */
#include "cli/cli.h"
#include "recipes/recipes.h"

#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <string.h>

extern char **environ;

static void run_usage(FILE *out)
{
    fputs("Usage: reprobox run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
          "       reprobox run [OPTIONS] --bundle DIR\n\n"
          "Run a command in a new sandbox made from IMAGE (its Entrypoint and Cmd by default;\n"
          "COMMAND and ARGs replace Cmd, as in docker run), or an OCI runtime bundle.\n\n"
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
          "      --init               run reprobox's init as pid 1 (reaps, forwards signals)\n"
          "  -t, --tty                give the command a terminal of its own\n"
          "      --memory SIZE        memory limit (512m, 2g); an OOM kill is reported\n"
          "      --pids-limit N       processes at most (default 2048; -1: unlimited)\n"
          "      --cpus N             CPU time, in CPUs (1.5)\n"
          "      --ulimit NAME=SOFT[:HARD]  an rlimit (nofile=1024:4096); repeatable\n"
          "      --cap-add CAP        add a capability (or ALL); repeatable\n"
          "      --cap-drop CAP       drop a capability (or ALL); repeatable\n"
          "      --security-opt OPT   seccomp=FILE (a Docker JSON profile), seccomp=unconfined,\n"
          "                           no-new-privileges (always on)\n"
          "      --timeout DURATION   stop the command after this long (30, 1.5s, 500ms, 2m)\n"
          "      --idle-timeout DURATION  stop it after this long without output (a hang)\n"
          "      --stop-timeout DURATION  grace between SIGTERM and SIGKILL (default 10s)\n"
          "      --log-dir DIR        also write stdout.log and stderr.log there (capped)\n"
          "      --bundle DIR         run an OCI bundle (config.json + rootfs) instead of IMAGE\n"
          "      --report FILE        write a JSON report of the run (docs/report.md)\n"
          "      --keep               keep the run's changes to the rootfs and print where\n"
          "      --rm, -i             accepted for docker compatibility (always so)\n"
          "  -h, --help               this help\n\n"
          "Exit status: the command's; 128+N when killed by signal N; 125 when reprobox fails;\n"
          "126 when the command cannot be executed; 127 when it is not found.\n",
          out);
}

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

/* "30", "1.5", "1.5s", "500ms", "2m", "1h" -> milliseconds. */
static int parse_duration(const char *flag, const char *s, uint64_t *ms, struct rbx_error **err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    double unit = 1000;
    if (end && strcmp(end, "ms") == 0)
        unit = 1;
    else if (end && (strcmp(end, "s") == 0 || *end == '\0'))
        unit = 1000;
    else if (end && strcmp(end, "m") == 0)
        unit = 60000;
    else if (end && strcmp(end, "h") == 0)
        unit = 3600000;
    else
        end = NULL;
    if (!end || end == s || errno || !isfinite(v) || v < 0 || v * unit > 1e12)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "%s \"%s\": expected a duration (30, 1.5s, 500ms, 2m, 1h)", flag, s);
    *ms = (uint64_t)(v * unit + 0.5);
    return 0;
}

void cli_run_opts_clear(struct cli_run_opts *o)
{
    rbx_strv_free(o->env);
    rbx_strv_free(o->env_files);
    rbx_strv_free(o->volumes);
    rbx_strv_free(o->ulimits);
    rbx_strv_free(o->cap_add);
    rbx_strv_free(o->cap_drop);
    rbx_strv_free(o->security_opts);
    memset(o, 0, sizeof(*o));
}

int cli_run_parse(int argc, char **argv, const char *cmd, struct cli_run_opts *f, int *image_index,
                  struct rbx_error **err)
{
    enum {
        OPT_ENV_FILE = 256, OPT_ENTRYPOINT, OPT_HOSTNAME, OPT_NETWORK, OPT_PLATFORM, OPT_REPORT,
        OPT_KEEP, OPT_RM, OPT_READ_ONLY, OPT_INIT, OPT_MEMORY, OPT_PIDS, OPT_CPUS, OPT_ULIMIT,
        OPT_TIMEOUT, OPT_STOP_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_LOG_DIR, OPT_CAP_ADD, OPT_CAP_DROP,
        OPT_SECURITY_OPT, OPT_BUNDLE
    };
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
        {"tty", no_argument, NULL, 't'},
        {"init", no_argument, NULL, OPT_INIT},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"pids-limit", required_argument, NULL, OPT_PIDS},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"ulimit", required_argument, NULL, OPT_ULIMIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"log-dir", required_argument, NULL, OPT_LOG_DIR},
        {"cap-add", required_argument, NULL, OPT_CAP_ADD},
        {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
        {"security-opt", required_argument, NULL, OPT_SECURITY_OPT},
        {"bundle", required_argument, NULL, OPT_BUNDLE},
        {"help", no_argument, NULL, 'h'},
        {"pull", required_argument, NULL, CLI_OPT_PULL},
        CLI_REGISTRY_LONG_OPTIONS,
        {0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+e:w:u:v:ith", opts, NULL)) != -1) {
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
        case 't': f->tty = true; break;
        case OPT_INIT: f->init = true; break;
        case OPT_MEMORY: f->memory = optarg; break;
        case OPT_PIDS: f->pids = optarg; break;
        case OPT_CPUS: f->cpus = optarg; break;
        case OPT_ULIMIT: rbx_strv_push(&f->ulimits, optarg); break;
        case OPT_TIMEOUT: f->timeout = optarg; break;
        case OPT_STOP_TIMEOUT: f->stop_timeout = optarg; break;
        case OPT_IDLE_TIMEOUT: f->idle_timeout = optarg; break;
        case OPT_LOG_DIR: f->log_dir = optarg; break;
        case OPT_CAP_ADD: rbx_strv_push(&f->cap_add, optarg); break;
        case OPT_CAP_DROP: rbx_strv_push(&f->cap_drop, optarg); break;
        case OPT_SECURITY_OPT: rbx_strv_push(&f->security_opts, optarg); break;
        case OPT_BUNDLE: f->bundle = optarg; break;
        case OPT_RM:
        case 'i': break;
        case 'h': return 1;
        case '?':
            if (optopt)
                return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "%s: unknown option \"-%c\" (see reprobox %s --help)",
                                     cmd, optopt, cmd);
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "%s: unknown option \"%s\" (see reprobox %s --help)",
                                 cmd, argv[optind - 1], cmd);
        case ':':
        default:
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "%s: option \"%s\" needs a value", cmd, argv[optind - 1]);
        }
    }
    if (!f->bundle && optind >= argc)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "%s: no image given (see reprobox %s --help)", cmd, cmd);
    if (f->network && strcmp(f->network, "none") != 0 && strcmp(f->network, "host") != 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--network \"%s\": expected none or host", f->network);
    *image_index = optind;
    return 0;
}

/* --network, checked by cli_run_parse: host, else none (the default). */
static enum rbx_network_mode run_network(const struct cli_run_opts *f)
{
    return f->network && strcmp(f->network, "host") == 0 ? RBX_NETWORK_HOST : RBX_NETWORK_NONE;
}


/* Everything but the image: confinement, limits, supervision, I/O. */
int cli_run_apply(const struct cli_run_opts *f, struct rbx_spec *spec, struct rbx_error **err)
{
    int r;
    for (size_t i = 0; f->volumes && f->volumes[i]; i++) {
        spec->mounts = rbx_xrealloc(spec->mounts, (spec->n_mounts + 1) * sizeof(*spec->mounts));
        memset(&spec->mounts[spec->n_mounts], 0, sizeof(*spec->mounts));
        r = parse_volume(f->volumes[i], &spec->mounts[spec->n_mounts], err);
        spec->n_mounts++;
        if (r < 0)
            return r;
    }
    if (f->network)
        spec->network = run_network(f);
    if (f->read_only)
        spec->readonly_rootfs = true;
    if (f->init)
        spec->init = true;
    if (f->tty)
        spec->tty = true;
    if (f->memory) {
        uint64_t v;
        if (rbx_parse_size(f->memory, &v) < 0 || v < (6ULL << 20))
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "--memory \"%s\": expected a size of at least 6m (512m, 2g)", f->memory);
        spec->limits.memory_bytes = v;
    }
    if (f->pids) {
        char *end = NULL;
        long long v = strtoll(f->pids, &end, 10);
        if (!end || *end || end == f->pids || v < -1 || v > (1LL << 30))
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--pids-limit \"%s\": expected a number (-1: unlimited)",
                                 f->pids);
        spec->limits.pids = v <= 0 ? -1 : v;
    }
    if (f->cpus) {
        char *end = NULL;
        double v = strtod(f->cpus, &end);
        if (!end || *end || end == f->cpus || !(v > 0) || v > 4096)
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--cpus \"%s\": expected a number of CPUs (1.5)", f->cpus);
        spec->limits.cpu_millis = (uint64_t)(v * 1000 + 0.5);
    }
    for (size_t i = 0; f->ulimits && f->ulimits[i]; i++) {
        spec->rlimits = rbx_xrealloc(spec->rlimits, (spec->n_rlimits + 1) * sizeof(*spec->rlimits));
        r = rbx_rlimit_parse(f->ulimits[i], &spec->rlimits[spec->n_rlimits], err);
        if (r < 0)
            return r;
        spec->n_rlimits++;
    }
    if (f->timeout && (r = parse_duration("--timeout", f->timeout, &spec->timeout_ms, err)) < 0)
        return r;
    if (f->idle_timeout && (r = parse_duration("--idle-timeout", f->idle_timeout, &spec->idle_timeout_ms, err)) < 0)
        return r;
    if (f->stop_timeout && (r = parse_duration("--stop-timeout", f->stop_timeout, &spec->stop_timeout_ms, err)) < 0)
        return r;
    if (f->stop_timeout && spec->stop_timeout_ms == 0)
        spec->stop_timeout_ms = 1; /* 0 means "the default": make it immediate instead */
    if (f->log_dir) {
        free(spec->log_dir);
        spec->log_dir = rbx_xstrdup(f->log_dir);
    }
    for (size_t i = 0; f->cap_add && f->cap_add[i]; i++)
        rbx_strv_push(&spec->cap_add, f->cap_add[i]);
    for (size_t i = 0; f->cap_drop && f->cap_drop[i]; i++)
        rbx_strv_push(&spec->cap_drop, f->cap_drop[i]);
    /* Resolve once here: a wrong name is a usage error before anything starts. */
    uint64_t caps;
    if ((r = rbx_caps_resolve(spec->cap_add, spec->cap_drop, &caps, err)) < 0)
        return r;
    for (size_t i = 0; f->security_opts && f->security_opts[i]; i++) {
        const char *o = f->security_opts[i];
        if (strcmp(o, "no-new-privileges") == 0 || strcmp(o, "no-new-privileges:true") == 0 ||
            strcmp(o, "no-new-privileges=true") == 0)
            continue;
        if (strncmp(o, "no-new-privileges", 17) == 0)
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "--security-opt %s: no_new_privs is always on in reprobox", o);
        if (strncmp(o, "seccomp=", 8) == 0 || strncmp(o, "seccomp:", 8) == 0) {
            const char *v = o + 8;
            spec->seccomp = rbx_seccomp_free(spec->seccomp);
            if (strcmp(v, "unconfined") == 0) {
                spec->seccomp_mode = RBX_SECCOMP_UNCONFINED;
                continue;
            }
            r = rbx_seccomp_load_file(v, &spec->seccomp, err);
            if (r < 0)
                return rbx_error_wrap(err, "--security-opt seccomp");
            spec->seccomp_mode = RBX_SECCOMP_PROFILE;
            continue;
        }
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "--security-opt %s: expected seccomp=FILE, seccomp=unconfined or no-new-privileges",
                             o);
    }
    return 0;
}

struct run_state {
    struct cli_run_opts flags;
    struct rbx_store *store;
    struct rbx_image *img;
    struct rbx_run_dir *rd;
    struct rbx_spec spec;
    struct rbx_compose_info info;
    struct rbx_result res;
    struct rbx_run_timings t;
    bool flat; /* the rootfs is a flat copy in the run dir, not an overlay */
    struct rbx_prestart *prestart; /* the sandbox's holder, started before the image is open */
};

static void run_state_clear(struct run_state *s)
{
    bool keep = s->flags.keep;
    s->prestart = rbx_prestart_free(s->prestart);
    cli_run_opts_clear(&s->flags);
    rbx_result_clear(&s->res);
    rbx_compose_info_clear(&s->info);
    rbx_spec_clear(&s->spec);
    if (s->rd) {
        if (keep)
            fprintf(stderr, "reprobox: kept the run's %s in %s\n", s->flat ? "rootfs" : "changes",
                    s->flat ? rbx_run_dir_rootfs(s->rd) : rbx_run_dir_upper(s->rd));
        s->rd = keep ? rbx_run_dir_close(s->rd, true) : rbx_run_dir_leave(s->rd);
    }
    s->img = rbx_image_free(s->img);
    s->store = rbx_store_free(s->store);
}

int cli_run_compose_image(struct cli_run_opts *f, int argc, char **argv, int image_index, struct rbx_store **store,
                          struct rbx_image **img, struct rbx_spec *spec, struct rbx_compose_info *info,
                          struct rbx_run_timings *t, struct rbx_error **err)
{
    struct rbx_platform plat;
    struct rbx_pull_stats pstats = {0};
    struct rbx_open_opts oopts = {.pull = f->pull, .registry = &f->registry, .pull_stats = &pstats};
    int r;
    (void)argc;

    if (f->platform) {
        r = rbx_platform_parse(f->platform, &plat, err);
        if (r < 0)
            return r;
        oopts.platform = &plat;
    }
    r = cli_open_store_for_run(store, err);
    if (r < 0)
        return r;
    struct cli_pull_progress *pp = cli_progress_enabled() ? cli_pull_progress_new() : NULL;
    if (pp) {
        f->registry.progress = cli_pull_progress_event;
        f->registry.progress_data = pp;
    }
    r = rbx_image_open(*store, argv[image_index], &oopts, img, err);
    cli_pull_progress_free(pp);
    if (r < 0)
        return r;
    if (pstats.contacted && !rbx_globals.quiet) {
        /* stdout is the command's: what was pulled is said on stderr. */
        _cleanup_free_ char *summary = cli_pull_summary(argv[image_index], &pstats);
        fprintf(stderr, "%s\n", summary);
    }

    /* Flat runs copy the image from its blobs later: the layer cache is not needed. */
    if (!cli_store_goes_flat(*store)) {
        uint64_t t0 = rbx_now_ns();
        _cleanup_(rbx_progress_bar_freep) struct rbx_progress_bar *bar =
            cli_progress_enabled() ? rbx_progress_bar_new(STDERR_FILENO) : NULL;
        struct rbx_unpack_opts uopts = {.progress = bar ? rbx_progress_bar_update : NULL, .progress_data = bar};
        struct rbx_unpack_stats stats = {0};
        r = rbx_image_unpack(*store, *img, &uopts, &stats, err);
        if (t)
            t->unpack_ns = rbx_now_ns() - t0;
        if (r < 0)
            return r;
    }

    f->req.args = &argv[image_index + 1];
    f->req.env = f->env;
    f->req.env_files = f->env_files;
    f->req.caller_env = environ;
    r = rbx_run_compose(&(*img)->config, &f->req, spec, info, err);
    if (r < 0)
        return r;
    r = cli_run_apply(f, spec, err);
    if (r < 0)
        return r;
    spec->seccomp_cache_dir = rbx_xasprintf("%s/seccomp", rbx_store_dir(*store));
    return 0;
}

/* The rootfs in the run dir: an overlay of the cached layers, or a flat copy (counted as
 * unpacking, with the progress bar) where overlayfs is not usable. */
static int set_rootfs(struct run_state *s, struct rbx_error **err)
{
    uint64_t t0 = rbx_now_ns();
    _cleanup_(rbx_progress_bar_freep) struct rbx_progress_bar *bar =
        cli_progress_enabled() ? rbx_progress_bar_new(STDERR_FILENO) : NULL;
    struct rbx_unpack_opts uopts = {.progress = bar ? rbx_progress_bar_update : NULL, .progress_data = bar};
    int r = rbx_run_rootfs(s->store, s->img, s->rd, &uopts, &s->spec, err);
    s->t.unpack_ns += rbx_now_ns() - t0;
    if (r < 0)
        return r;
    s->flat = r == 1;
    s->spec.upper_volatile = !s->flags.keep;
    return 0;
}

/* Open, unpack and compose: everything before the sandbox starts. */
static int prepare(struct run_state *s, int argc, char **argv, int image_index, struct rbx_error **err)
{
    /* Meanwhile the sandbox's holder makes its namespaces (docs/sandbox.md); should that fail,
     * the run makes them itself, and says why if it fails too. */
    _cleanup_error_ struct rbx_error *ignored = NULL;
    if (rbx_prestart_new(run_network(&s->flags), s->flags.req.hostname, &s->prestart, &ignored) < 0)
        s->prestart = NULL;
    int r = cli_run_compose_image(&s->flags, argc, argv, image_index, &s->store, &s->img, &s->spec, &s->info,
                                  &s->t, err);
    if (r < 0)
        return r;
    r = rbx_run_dir_create(s->store, &s->rd, err);
    if (r < 0)
        return r;
    return set_rootfs(s, err);
}

/* The kernel refused the overlay rootfs before anything ran (no overlayfs, or not for this user
 * or filesystem): remember it in the store, say so once, and run on a flat copy instead. */
static int fall_back_flat(struct run_state *s, const struct rbx_error *why, struct rbx_error **err)
{
    if (!rbx_globals.quiet)
        cli_warn("overlayfs is not usable here (%s); this run and the next ones with this store use a flat "
                 "copy of the image (slower to start)",
                 why->message);
    int r = rbx_store_set_overlay_unusable(s->store, why->message, err);
    return r < 0 ? r : set_rootfs(s, err);
}

/* An OCI bundle: its config.json says everything; our flags may add supervision and I/O. */
static int prepare_bundle(struct run_state *s, int argc, int image_index, struct rbx_error **err)
{
    if (image_index < argc)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "run --bundle: the bundle's config.json says what to run; no IMAGE or COMMAND");
    if (s->flags.req.workdir || s->flags.req.user || s->flags.req.entrypoint || s->flags.env || s->flags.env_files ||
        s->flags.volumes || s->flags.platform || s->flags.keep)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "run --bundle: -e, -w, -u, -v, --entrypoint, --platform and --keep belong in the "
                             "bundle's config.json");
    _cleanup_free_ char *dir = realpath(s->flags.bundle, NULL);
    if (!dir)
        return rbx_error_set_errno(err, errno == ENOENT ? RBX_ERR_NOT_FOUND : RBX_ERR_IO, errno, "bundle %s",
                                   s->flags.bundle);
    _cleanup_free_ char *path = rbx_xasprintf("%s/config.json", dir);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = rbx_read_file_at(AT_FDCWD, path, 16 << 20, &text, &len, err);
    if (r < 0)
        return rbx_error_wrap(err, "bundle");
    _cleanup_json_ json_t *j = rbx_json_loadb(text, len, path, err);
    if (!j)
        return -EINVAL;
    r = rbx_spec_from_oci_config(j, dir, &s->spec, err);
    if (r < 0)
        return r;
    r = cli_run_apply(&s->flags, &s->spec, err);
    if (r < 0)
        return r;
    if (cli_open_store(&s->store, err) == 0)
        s->spec.seccomp_cache_dir = rbx_xasprintf("%s/seccomp", rbx_store_dir(s->store));
    else
        *err = rbx_error_free(*err); /* only a cache: run without it */
    return 0;
}

int cmd_run(int argc, char **argv)
{
    struct run_state s = {0};
    struct rbx_error *err = NULL;
    int image_index = 0, r;

    rbx_spec_init(&s.spec);
    r = cli_run_parse(argc, argv, "run", &s.flags, &image_index, &err);
    if (r != 0) {
        if (r > 0)
            run_usage(stdout);
        run_state_clear(&s);
        return r > 0 ? 0 : cli_fail(err);
    }
    r = s.flags.bundle ? prepare_bundle(&s, argc, image_index, &err) : prepare(&s, argc, argv, image_index, &err);
    if (r == 0) {
        s.spec.stdin_fd = STDIN_FILENO;
        s.spec.stdout_fd = STDOUT_FILENO;
        s.spec.stderr_fd = STDERR_FILENO;
        s.spec.tail_lines = 64;
        s.spec.prestart = s.prestart;
        r = rbx_sandbox_run(&s.spec, &s.res, &err);
        s.spec.prestart = NULL; /* once: a flat retry makes its own */
        if (r < 0 && err->kind == RBX_ERR_OVERLAY && !s.flags.bundle && !s.flat) {
            _cleanup_error_ struct rbx_error *why = err;
            err = NULL;
            rbx_result_clear(&s.res);
            r = fall_back_flat(&s, why, &err);
            if (r == 0)
                r = rbx_sandbox_run(&s.spec, &s.res, &err);
        }
        s.t.setup_ns = s.res.setup_ns;
        s.t.run_ns = s.res.run_ns;
        if (s.res.limits_note && !rbx_globals.quiet)
            cli_warn("%s", s.res.limits_note);
    }
    int code = r < 0 ? cli_exit_code(err) : s.res.exit_code;
    if (r == 0 && !rbx_globals.quiet) {
        if (s.res.stop_reason == RBX_STOP_TIMEOUT || s.res.stop_reason == RBX_STOP_IDLE)
            cli_warn("%s: the command was stopped%s",
                     s.res.stop_reason == RBX_STOP_TIMEOUT ? "--timeout" : "--idle-timeout (no output: a hang?)",
                     s.res.killed_after_grace ? " (SIGKILL after the grace of --stop-timeout)" : "");
        if (s.res.oom_killed)
            cli_warn("the command was killed by the OOM killer (--memory %s)", s.flags.memory ? s.flags.memory : "");
    }
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
