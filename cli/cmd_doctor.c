/* cmd_doctor.c — `reprobox doctor [OPTIONS] [IMAGE] [-- COMMAND [ARG...]]`: what would fail when
 * the image starts, read from its files before anything runs; exit 1 when an error is found. */
#include "cli/cli.h"
#include "recipes/recipes.h"

#include <getopt.h>
#include <string.h>

extern char **environ;

static void doctor_usage(FILE *out)
{
    fputs("Usage: reprobox doctor [OPTIONS] IMAGE [--] [COMMAND [ARG...]]\n"
          "       reprobox doctor [OPTIONS] --recipe FILE [IMAGE]\n\n"
          "Read the image and say what would fail when it starts, before anything runs: commands\n"
          "not on PATH or not executable, missing #! interpreters, ELF loaders and libraries,\n"
          "binaries for another architecture, the commands inside sh -c strings and scripts, a\n"
          "missing working directory or user, broken symlinks, Node modules that will not\n"
          "resolve, required variables that are unset, a Prisma schema against DATABASE_URL.\n"
          "Nothing of the image is executed and nothing goes to the network (docs/doctor.md).\n\n"
          "The image's Entrypoint and Cmd are checked; COMMAND and ARGs replace Cmd as in run.\n"
          "With --recipe, every step is checked with its command, env, workdir and user.\n\n"
          "Options:\n"
          "      --recipe FILE        check the recipe's steps (in IMAGE when given)\n"
          "      --json               print the JSON report (schema reprobox.doctor/v1)\n"
          "      --all-links          list every broken symlink, not only those under the\n"
          "                           working directories and PATH\n"
          "  -e, --env KEY=VALUE      set a variable; -e KEY takes KEY from this environment\n"
          "      --env-file FILE      read KEY=VALUE lines from FILE\n"
          "  -w, --workdir DIR        the working directory\n"
          "  -u, --user USER[:GROUP]  the user\n"
          "      --entrypoint CMD     replace the image's Entrypoint (and drop its Cmd)\n"
          "      --platform OS/ARCH   choose from a multi-platform image (default: this host's)\n"
          "  -h, --help               this help\n\n"
          "Exit status: 0 when no error was found (warnings may be), 1 when one was, 125 when\n"
          "reprobox could not read the image or the recipe.\n",
          out);
}

struct doctor_flags {
    struct rbx_run_request req;
    char **env, **env_files;
    const char *recipe, *platform;
    bool json;
    unsigned flags;
};

static int parse_flags(int argc, char **argv, struct doctor_flags *f, int *rest,
                       struct rbx_error **err)
{
    enum { OPT_RECIPE = 256, OPT_JSON, OPT_ENV_FILE, OPT_ENTRYPOINT, OPT_PLATFORM, OPT_ALL_LINKS };
    static const struct option opts[] = {
        {"recipe", required_argument, NULL, OPT_RECIPE},
        {"json", no_argument, NULL, OPT_JSON},
        {"all-links", no_argument, NULL, OPT_ALL_LINKS},
        {"env", required_argument, NULL, 'e'},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
        {"workdir", required_argument, NULL, 'w'},
        {"user", required_argument, NULL, 'u'},
        {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+e:w:u:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_RECIPE: f->recipe = optarg; break;
        case OPT_JSON: f->json = true; break;
        case OPT_ALL_LINKS: f->flags |= RBX_DOCTOR_ALL_LINKS; break;
        case 'e': rbx_strv_push(&f->env, optarg); break;
        case OPT_ENV_FILE: rbx_strv_push(&f->env_files, optarg); break;
        case 'w': f->req.workdir = optarg; break;
        case 'u': f->req.user = optarg; break;
        case OPT_ENTRYPOINT: f->req.entrypoint = optarg; break;
        case OPT_PLATFORM: f->platform = optarg; break;
        case 'h': doctor_usage(stdout); return 1;
        default:
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "doctor: unknown option or missing value \"%s\" (see reprobox "
                                 "doctor --help)",
                                 argv[optind - 1]);
        }
    }
    *rest = optind;
    return 0;
}

int cmd_doctor(int argc, char **argv)
{
    struct doctor_flags f = {0};
    struct rbx_error *err = NULL;
    int rest = 0;
    int r = parse_flags(argc, argv, &f, &rest, &err);
    _cleanup_strv_ char **env = f.env, **env_files = f.env_files;
    if (r != 0)
        return r > 0 ? 0 : cli_fail(err);

    const char *image = rest < argc && strcmp(argv[rest], "--") != 0 ? argv[rest++] : NULL;
    if (rest < argc && strcmp(argv[rest], "--") == 0)
        rest++;
    if (!image && !f.recipe) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "doctor: no image and no --recipe given (see reprobox doctor --help)");
        return cli_fail(err);
    }
    if (f.recipe &&
        (rest < argc || f.env || f.env_files || f.req.workdir || f.req.user || f.req.entrypoint)) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "doctor: with --recipe, the steps say the commands, env, workdir and user");
        return cli_fail(err);
    }
    struct rbx_platform plat;
    if (f.platform && rbx_platform_parse(f.platform, &plat, &err) < 0)
        return cli_fail(err);

    _cleanup_(rbx_recipe_freep) struct rbx_recipe *recipe = NULL;
    if (f.recipe && rbx_recipe_load(f.recipe, environ, &recipe, &err) < 0)
        return cli_fail(err);
    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    if (cli_open_store(&store, &err) < 0)
        return cli_fail(err);
    (void)cli_store_goes_flat(store); /* says so once where overlayfs is not usable */

    f.req.args = &argv[rest];
    f.req.env = env;
    f.req.env_files = env_files;
    f.req.caller_env = environ;
    struct rbx_doctor_opts o = {
        .store = store,
        .image = image,
        .recipe = recipe,
        .req = &f.req,
        .caller_env = environ,
        .platform = f.platform ? &plat : NULL,
        .flags = f.flags,
    };
    struct rbx_doctor_report rep;
    if (rbx_doctor_image(&o, &rep, &err) < 0) {
        rbx_doctor_report_clear(&rep);
        return cli_fail(err);
    }
    if (f.json) {
        _cleanup_json_ json_t *j = rbx_doctor_report_json(&rep);
        _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text);
    } else {
        _cleanup_free_ char *text = rbx_doctor_report_text(&rep);
        fputs(text, stdout);
    }
    int code = rep.n_errors ? 1 : 0;
    rbx_doctor_report_clear(&rep);
    return code;
}
