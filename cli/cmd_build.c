/* cmd_build.c — `reprobox build [OPTIONS] CONTEXT`: docker build's flags in; progress as docker
 * shows it (a live tail on a terminal, plain lines otherwise); on a failed step, the Dockerfile
 * lines around it, the command, its status, duration and output; exit 1 as docker build. */
#include "builder/builder.h"
#include "cli/cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/ioctl.h>

extern char **environ;

#define LIVE_LINES 6

static void build_usage(FILE *out)
{
    fputs("Usage: reprobox build [OPTIONS] CONTEXT\n\n"
          "Replay a Dockerfile step by step in the sandbox and write a reproducible OCI image.\n\n"
          "Options:\n"
          "  -f, --file FILE              the Dockerfile (default: CONTEXT/Dockerfile)\n"
          "  -t, --tag REF                write the image: oci:DIR[:TAG] or\n"
          "                               docker-archive:FILE[:NAME:TAG] (repeatable)\n"
          "      --build-arg K[=V]        a build arg (K alone: from this environment)\n"
          "      --build-context NAME=REF FROM NAME / --from=NAME read the image REF\n"
          "      --target STAGE           build this stage (and what it needs)\n"
          "      --network MODE           RUN's network: host (default, as docker) or none\n"
          "      --allow network.host     let RUN --network=host through under --network none\n"
          "      --secret id=ID,src=FILE  a secret for RUN --mount=type=secret (or env=VAR)\n"
          "      --platform OS/ARCH       the platform of the base images (default: this host)\n"
          "      --pull POLICY            docker:// base images (a FROM name without a transport\n"
          "                               is one): missing (default), always or never\n"
          "      --source-date-epoch N    clamp mtimes and set `created` to N (default:\n"
          "                               $SOURCE_DATE_EPOCH, else 0)\n"
          "      --no-cache               run every step (results are still cached)\n"
          "      --keep-failed            keep a failed step's changes for `reprobox shell "
          "--failed`\n"
          "      --check                  build again under varied conditions and compare digests\n"
          "      --report FILE            write a JSON report of the build (docs/build.md)\n"
          "      --progress MODE          auto (default), plain or tty\n"
          "  -q, --quiet                  no progress: only errors and the digest\n"
          "  -h, --help                   this help\n\n"
          "Registry options, for docker:// base images:\n" CLI_REGISTRY_HELP "\n"
          "Prints the image's manifest digest on stdout. Exit status: 0; 1 when a step fails,\n"
          "the Dockerfile is wrong or --check finds a difference; 125 for bad flags.\n",
          out);
}

/* ---- progress ---------------------------------------------------------------------------------
 */

struct progress {
    bool tty;
    bool quiet;
    bool header_printed;
    char *header;
    /* tty: the last lines of output drawn under the step line */
    char *lines[LIVE_LINES];
    size_t n_lines;
    size_t drawn;
    char partial[512];
    size_t partial_len;
    uint64_t last_draw;
    unsigned width;
};

static void drop_lines(struct progress *p)
{
    for (size_t i = 0; i < p->n_lines; i++) {
        free(p->lines[i]);
        p->lines[i] = NULL;
    }
    p->n_lines = 0;
}

static void progress_clear(struct progress *p)
{
    free(p->header);
    drop_lines(p);
    memset(p, 0, sizeof(*p));
}

static void erase_live(struct progress *p)
{
    for (size_t i = 0; i < p->drawn; i++)
        fputs("\033[A\r\033[K", stderr);
    p->drawn = 0;
}

static void draw_live(struct progress *p)
{
    erase_live(p);
    for (size_t i = 0; i < p->n_lines; i++) {
        unsigned w = p->width > 8 ? p->width - 6 : 74;
        fprintf(stderr, "  | %.*s\n", (int)w, p->lines[i]);
    }
    p->drawn = p->n_lines;
    fflush(stderr);
}

static void push_line(struct progress *p, const char *line, size_t len)
{
    if (p->n_lines == LIVE_LINES) {
        free(p->lines[0]);
        memmove(p->lines, p->lines + 1, (LIVE_LINES - 1) * sizeof(char *));
        p->lines[LIVE_LINES - 1] = NULL;
        p->n_lines--;
    }
    char *l = rbx_xstrndup(line, len);
    for (char *c = l; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t')
            *c = ' ';
    p->lines[p->n_lines++] = l;
}

static const char *status_word(enum rbx_step_state s)
{
    return s == RBX_STEP_CACHED ? "CACHED" : s == RBX_STEP_FAILED ? "ERROR" : "DONE";
}

static void on_step(void *ud, const struct rbx_build_step *st)
{
    struct progress *p = ud;
    if (p->quiet)
        return;
    if (st->state == RBX_STEP_START) {
        free(p->header);
        p->header = rbx_xasprintf("[%s %u/%u] %s", st->stage, st->index, st->total, st->text);
        p->header_printed = false;
        p->partial_len = 0;
        drop_lines(p);
        if (p->tty) {
            fprintf(stderr, "%s\n", p->header);
            p->header_printed = true;
            fflush(stderr);
        }
        return;
    }
    char dur[32] = "";
    if (st->state != RBX_STEP_CACHED)
        snprintf(dur, sizeof(dur), " %.1fs", (double)st->duration_ns / 1e9);
    if (p->tty) {
        /* the step line again, with how it ended; its output tail goes away */
        erase_live(p);
        fputs("\033[A\r\033[K", stderr);
        fprintf(stderr, "%s  %s%s\n", p->header, status_word(st->state), dur);
    } else if (!p->header_printed) {
        fprintf(stderr, "%s  %s%s\n", p->header, status_word(st->state), dur);
    } else {
        if (p->partial_len)
            fprintf(stderr, "  | %.*s\n", (int)p->partial_len, p->partial);
        fprintf(stderr, "  => %s%s\n", status_word(st->state), dur);
    }
    p->partial_len = 0;
    fflush(stderr);
}

static void on_output(void *ud, const struct rbx_build_step *st, const char *data, size_t len)
{
    (void)st;
    struct progress *p = ud;
    if (p->quiet)
        return;
    if (!p->tty && !p->header_printed) {
        fprintf(stderr, "%s\n", p->header);
        p->header_printed = true;
    }
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\n' || c == '\r' || p->partial_len == sizeof(p->partial)) {
            if (c == '\r' && i + 1 < len && data[i + 1] == '\n')
                continue;
            if (p->tty)
                push_line(p, p->partial, p->partial_len);
            else
                fprintf(stderr, "  | %.*s\n", (int)p->partial_len, p->partial);
            p->partial_len = 0;
            if (c == '\n' || c == '\r')
                continue;
        }
        p->partial[p->partial_len++] = c;
    }
    if (p->tty) {
        uint64_t now = rbx_now_ns();
        if (now - p->last_draw > 100000000ull) {
            draw_live(p);
            p->last_draw = now;
        }
    } else {
        fflush(stderr);
    }
}

static void on_warning(void *ud, const char *msg)
{
    struct progress *p = ud;
    if (p->tty)
        erase_live(p);
    cli_warn("%s", msg);
}

/* ---- failure ------------------------------------------------------------------------------------
 */

/* The Dockerfile lines around the failed one, as docker prints them. */
static void print_excerpt(const char *dockerfile, const char *context, unsigned line)
{
    _cleanup_free_ char *path =
        dockerfile ? rbx_xstrdup(dockerfile) : rbx_xasprintf("%s/Dockerfile", context);
    _cleanup_free_ char *text = NULL;
    if (!line || rbx_read_file_at(AT_FDCWD, path, 4u << 20, &text, NULL, NULL) < 0)
        return;
    fputs("--------------------\n", stderr);
    unsigned n = 1;
    for (char *l = text; l && *l; n++) {
        char *end = strchr(l, '\n');
        int len = end ? (int)(end - l) : (int)strlen(l);
        if (n + 2 >= line && n <= line + 2)
            fprintf(stderr, "%4u | %s%.*s\n", n, n == line ? ">>> " : "    ", len > 200 ? 200 : len,
                    l);
        l = end ? end + 1 : NULL;
    }
    fputs("--------------------\n", stderr);
}

static void print_failure(const struct rbx_build_result *res, const char *dockerfile,
                          const char *context)
{
    const struct rbx_build_failure *f = &res->failure;
    print_excerpt(dockerfile, context, f->line);
    if (f->command) {
        _cleanup_free_ char *cmd = rbx_xstrdup("");
        for (size_t i = 0; f->command[i]; i++) {
            char *c = rbx_xasprintf("%s%s%s", cmd, i ? " " : "", f->command[i]);
            free(cmd);
            cmd = c;
        }
        fprintf(stderr, "command:   %s\n", cmd);
        fprintf(stderr, "exit code: %d after %.1fs (stage %s, step %u/%u)\n", f->exit_code,
                (double)f->duration_ns / 1e9, f->stage ? f->stage : "?", f->index, f->total);
        if (f->output_tail && *f->output_tail) {
            fputs("output (last lines):\n", stderr);
            for (const char *l = f->output_tail; *l;) {
                const char *e = strchr(l, '\n');
                int len = e ? (int)(e - l) : (int)strlen(l);
                fprintf(stderr, "  | %.*s\n", len, l);
                if (!e)
                    break;
                l = e + 1;
            }
        }
    } else {
        fprintf(stderr, "after %.1fs (stage %s, step %u/%u)\n", (double)f->duration_ns / 1e9,
                f->stage ? f->stage : "?", f->index, f->total);
    }
    if (f->kept_rootfs)
        fprintf(stderr, "the step's changes are kept: `reprobox shell --failed` opens a shell in "
                        "them\n");
    else
        fprintf(stderr, "`reprobox shell --failed` opens a shell where the step started "
                        "(--keep-failed keeps its changes too)\n");
}

/* ---- flags --------------------------------------------------------------------------------------
 */

struct build_flags {
    struct rbx_build_opts o;
    struct rbx_registry_opts registry;
    char **tags, **args, **contexts, **secrets, **allow;
    const char *network, *platform, *report, *progress, *epoch;
    bool check;
};

static void flags_clear(struct build_flags *f)
{
    rbx_strv_free(f->tags);
    rbx_strv_free(f->args);
    rbx_strv_free(f->contexts);
    rbx_strv_free(f->secrets);
    rbx_strv_free(f->allow);
}

static int parse_epoch(const char *s, int64_t *out, struct rbx_error **err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 253402300799LL)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "source date epoch \"%s\": expected seconds since 1970", s);
    *out = v;
    return 0;
}

static int parse_flags(int argc, char **argv, struct build_flags *f, struct rbx_error **err)
{
    enum {
        OPT_ARG = 256,
        OPT_CONTEXT,
        OPT_TARGET,
        OPT_NETWORK,
        OPT_ALLOW,
        OPT_SECRET,
        OPT_PLATFORM,
        OPT_EPOCH,
        OPT_NO_CACHE,
        OPT_KEEP,
        OPT_CHECK,
        OPT_REPORT,
        OPT_PROGRESS
    };
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"tag", required_argument, NULL, 't'},
        {"build-arg", required_argument, NULL, OPT_ARG},
        {"build-context", required_argument, NULL, OPT_CONTEXT},
        {"target", required_argument, NULL, OPT_TARGET},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"source-date-epoch", required_argument, NULL, OPT_EPOCH},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"keep-failed", no_argument, NULL, OPT_KEEP},
        {"check", no_argument, NULL, OPT_CHECK},
        {"report", required_argument, NULL, OPT_REPORT},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"pull", required_argument, NULL, CLI_OPT_PULL},
        CLI_REGISTRY_LONG_OPTIONS,
        {0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:t:qh", opts, NULL)) != -1) {
        int rr = cli_registry_flag(c, optarg, &f->registry, err);
        if (rr < 0)
            return rr;
        if (rr > 0)
            continue;
        switch (c) {
        case CLI_OPT_PULL:
            if ((rr = rbx_pull_policy_parse(optarg, &f->o.pull, err)) < 0)
                return rr;
            break;
        case 'q': rbx_globals.quiet = true; break;
        case 'f': f->o.dockerfile = optarg; break;
        case 't': rbx_strv_push(&f->tags, optarg); break;
        case OPT_ARG: rbx_strv_push(&f->args, optarg); break;
        case OPT_CONTEXT:
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                     "--build-context \"%s\": expected NAME=REF", optarg);
            rbx_strv_push(&f->contexts, optarg);
            break;
        case OPT_TARGET: f->o.target = optarg; break;
        case OPT_NETWORK: f->network = optarg; break;
        case OPT_ALLOW:
            if (strcmp(optarg, "network.host") != 0)
                return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                     "--allow \"%s\": only network.host can be allowed", optarg);
            rbx_strv_push(&f->allow, optarg);
            break;
        case OPT_SECRET:
            if (strncmp(optarg, "id=", 3) != 0 && !strstr(optarg, ",id="))
                return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                     "--secret \"%s\": expected id=ID,src=FILE or id=ID,env=VAR",
                                     optarg);
            rbx_strv_push(&f->secrets, optarg);
            break;
        case OPT_PLATFORM: f->platform = optarg; break;
        case OPT_EPOCH: f->epoch = optarg; break;
        case OPT_NO_CACHE: f->o.no_cache = true; break;
        case OPT_KEEP: f->o.keep_failed = true; break;
        case OPT_CHECK: f->check = true; break;
        case OPT_REPORT: f->report = optarg; break;
        case OPT_PROGRESS: f->progress = optarg; break;
        case 'h': build_usage(stdout); return 1;
        case '?':
            if (optopt && optopt < 256)
                return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                     "build: unknown option \"-%c\" (see reprobox build --help)",
                                     optopt);
            return rbx_error_set(
                err, RBX_ERR_USAGE, EINVAL,
                "build: unknown option or missing value \"%s\" (see reprobox build "
                "--help)",
                argv[optind - 1]);
        default:
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "build: option \"%s\" needs a value",
                                 argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "build: no build context given (see reprobox build --help)");
    if (optind + 1 < argc)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "build: one build context, not \"%s\"",
                             argv[optind + 1]);
    f->o.context = argv[optind];
    if (f->network && strcmp(f->network, "host") != 0 && strcmp(f->network, "none") != 0 &&
        strcmp(f->network, "default") != 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--network \"%s\": expected host or none",
                             f->network);
    f->o.network =
        f->network && strcmp(f->network, "none") == 0 ? RBX_NETWORK_NONE : RBX_NETWORK_HOST;
    if (f->progress && strcmp(f->progress, "auto") != 0 && strcmp(f->progress, "plain") != 0 &&
        strcmp(f->progress, "tty") != 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "--progress \"%s\": expected auto, plain or tty", f->progress);
    for (size_t i = 0; f->tags && f->tags[i]; i++) {
        struct rbx_ref ref;
        int r = rbx_ref_parse(f->tags[i], &ref, err);
        if (r < 0)
            return r;
        bool ok =
            ref.transport == RBX_TRANSPORT_OCI || ref.transport == RBX_TRANSPORT_DOCKER_ARCHIVE;
        rbx_ref_clear(&ref);
        if (!ok)
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "-t \"%s\": images are written as oci:DIR[:TAG] or "
                                 "docker-archive:FILE[:NAME:TAG]",
                                 f->tags[i]);
    }
    /* --source-date-epoch, else the build arg, else the environment's, else 0 */
    const char *epoch = f->epoch;
    for (size_t i = 0; !epoch && f->args && f->args[i]; i++)
        if (strncmp(f->args[i], "SOURCE_DATE_EPOCH=", 18) == 0)
            epoch = f->args[i] + 18;
    if (!epoch)
        epoch = getenv("SOURCE_DATE_EPOCH");
    if (epoch) {
        int r = parse_epoch(epoch, &f->o.source_date_epoch, err);
        if (r < 0)
            return r;
    }
    f->o.tags = f->tags;
    f->o.build_args = f->args;
    f->o.build_contexts = f->contexts;
    f->o.secrets = f->secrets;
    f->o.allow = f->allow;
    f->o.caller_env = environ;
    f->o.registry = &f->registry;
    return 0;
}

int cmd_build(int argc, char **argv)
{
    struct build_flags f = {0};
    struct rbx_error *err = NULL;
    int r = parse_flags(argc, argv, &f, &err);
    if (r != 0) {
        flags_clear(&f);
        return r > 0 ? 0 : cli_fail(err);
    }
    struct rbx_platform plat;
    if (f.platform) {
        if ((r = rbx_platform_parse(f.platform, &plat, &err)) < 0) {
            flags_clear(&f);
            return cli_fail(err);
        }
        f.o.platform = &plat;
    }
    struct progress p = {0};
    p.quiet = rbx_globals.quiet;
    p.tty = f.progress ? strcmp(f.progress, "tty") == 0 : isatty(STDERR_FILENO);
    struct winsize ws;
    p.width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
    f.o.events = (struct rbx_build_events){
        .userdata = &p, .step = on_step, .output = on_output, .warning = on_warning};

    struct rbx_store *store = NULL;
    struct rbx_build_result res;
    memset(&res, 0, sizeof(res));
    struct rbx_check_result check;
    memset(&check, 0, sizeof(check));
    r = cli_open_store(&store, &err);
    if (r == 0) {
        if (f.check)
            r = rbx_build_check(store, &f.o, &res, &check, &err);
        else
            r = rbx_build(store, &f.o, &res, &err);
    }
    int code = 0;
    if (r < 0) {
        fprintf(stderr, "reprobox: error: %s\n", err ? err->message : "build failed");
        if (res.failed)
            print_failure(&res, f.o.dockerfile, f.o.context);
        code = 1; /* docker build's status for any failed build */
    } else {
        for (size_t i = 0; !p.quiet && res.written && res.written[i]; i++)
            fprintf(stderr, "=> wrote %s\n", res.written[i]);
        if (f.check) {
            if (check.reproducible) {
                fprintf(stderr,
                        "=> check: reproducible (%s), second build with:", check.first_digest);
                for (size_t i = 0; check.variations && check.variations[i]; i++)
                    fprintf(stderr, "%s %s", i ? ";" : "", check.variations[i]);
                fputc('\n', stderr);
            } else {
                fprintf(stderr, "reprobox: error: not reproducible: %s, then %s\n",
                        check.first_digest, check.second_digest);
                if (check.layer >= 0)
                    fprintf(stderr, "  first difference: layer %ld (%s): \"%s\": %s: %s\n",
                            check.layer + 1, check.step ? check.step : "",
                            check.path ? check.path : "", check.field ? check.field : "",
                            check.detail ? check.detail : "");
                else
                    fprintf(stderr, "  first difference: the image config, at %s\n",
                            check.path && *check.path ? check.path : "(top)");
                code = 1;
            }
        }
        printf("%s\n", res.manifest_digest);
    }
    if (f.report) {
        _cleanup_json_ json_t *rep = rbx_build_report(&res, f.check ? &check : NULL, err);
        struct rbx_error *werr = NULL;
        char *text = json_dumps(rep, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (rbx_write_file_atomic_at(AT_FDCWD, f.report, text, strlen(text), 0644, &werr) < 0) {
            fprintf(stderr, "reprobox: error: %s\n", werr->message);
            rbx_error_free(werr);
            if (code == 0)
                code = RBX_EXIT_FAILURE;
        }
        free(text);
    }
    rbx_error_free(err);
    rbx_check_result_clear(&check);
    rbx_build_result_clear(&res);
    rbx_store_free(store);
    progress_clear(&p);
    flags_clear(&f);
    return code;
}
