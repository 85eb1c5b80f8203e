/* cli.h — what the subcommands share: global options, the command table, printing errors and
 * choosing exit codes. Only cli/ prints, reads argv or decides how the process exits. */
#pragma once

#include "common/common.h"
#include "layers/layers.h"
#include "recipes/recipes.h"
#include "sandbox/sandbox.h"

/* Exit codes as docker's: the command's own status passes through; these are reprobox's. */
#define RBX_EXIT_FAILURE 125      /* reprobox itself failed */
#define RBX_EXIT_CANNOT_EXEC 126  /* the command was found but could not be executed */
#define RBX_EXIT_NOT_FOUND 127    /* the command was not found */

struct rbx_globals {
    const char *root; /* --root DIR: the store */
    bool quiet;       /* --quiet: nothing but errors */
    enum rbx_privilege priv;
    unsigned mapped_ids;
    char **argv;      /* the whole original argv, for re-execution */
};
extern struct rbx_globals rbx_globals;

struct rbx_command {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
    bool needs_privilege; /* touches the store or runs something: rootless re-exec first */
};

/* Print "reprobox: error: <message>" for err (consumed) and return the exit code its kind
 * calls for (125, 126 or 127). */
int cli_fail(struct rbx_error *err);
int cli_exit_code(const struct rbx_error *err);
void cli_warn(const char *fmt, ...) RBX_PRINTF(1, 2);
/* Open the store named by --root or the default for this user. */
int cli_open_store(struct rbx_store **store, struct rbx_error **err);
/* The same for a command that makes one run dir (rbx_store_open_for_run). */
int cli_open_store_for_run(struct rbx_store **store, struct rbx_error **err);
/* Whether runs with this store use a flat copy of the image rather than an overlay of cached
 * layers: overlayfs was refused here before (the store remembers it), or the store itself is on
 * overlayfs (decided now, remembered, and said once). */
bool cli_store_goes_flat(struct rbx_store *store);
/* Whether progress bars may be drawn: stderr is a terminal and --quiet is off. */
bool cli_progress_enabled(void);

/* The options `run` and `spec` share: docker's flags for one run. */
struct cli_run_opts {
    struct rbx_run_request req;
    char **env, **env_files, **volumes, **ulimits, **cap_add, **cap_drop, **security_opts;
    const char *network, *platform, *report, *memory, *pids, *cpus;
    const char *timeout, *stop_timeout, *idle_timeout, *log_dir, *bundle;
    bool keep, read_only, init, tty;
    enum rbx_pull_policy pull;
    struct rbx_registry_opts registry;
};
/* Parse; 1 for --help, 0 with *image_index at the first non-option, or an error. */
int cli_run_parse(int argc, char **argv, const char *cmd, struct cli_run_opts *o, int *image_index,
                  struct rbx_error **err);
/* Apply everything but the image (volumes, network, limits, confinement...) to a spec. */
int cli_run_apply(const struct cli_run_opts *o, struct rbx_spec *spec, struct rbx_error **err);
/* Open the store and the image at argv[image_index], unpack it and compose the spec (argv after
 * the image replaces Cmd), with the layers as lower dirs. */
int cli_run_compose_image(struct cli_run_opts *o, int argc, char **argv, int image_index,
                          struct rbx_store **store, struct rbx_image **img, struct rbx_spec *spec,
                          struct rbx_compose_info *info, struct rbx_run_timings *t,
                          struct rbx_error **err);
void cli_run_opts_clear(struct cli_run_opts *o);

/* Registry flags shared by pull and run (cli/registry_flags.c): CLI_REGISTRY_LONG_OPTIONS goes
 * into a command's getopt table; cli_registry_flag handles their codes (1 when it did). */
enum {
    CLI_OPT_PULL = 1000,
    CLI_OPT_CREDS,
    CLI_OPT_TLS_VERIFY,
    CLI_OPT_CERT_DIR,
    CLI_OPT_MAX_CONCURRENT,
    CLI_OPT_LIMIT_RATE,
};
/* clang-format off */
#define CLI_REGISTRY_LONG_OPTIONS                                                                  \
    {"creds", required_argument, NULL, CLI_OPT_CREDS},                                             \
    {"tls-verify", optional_argument, NULL, CLI_OPT_TLS_VERIFY},                                   \
    {"cert-dir", required_argument, NULL, CLI_OPT_CERT_DIR},                                       \
    {"max-concurrent", required_argument, NULL, CLI_OPT_MAX_CONCURRENT},                           \
    {"limit-rate", required_argument, NULL, CLI_OPT_LIMIT_RATE}
#define CLI_REGISTRY_HELP                                                                          \
    "      --creds USER:PASSWORD  registry credentials (default: the auth files, docs/registry.md)\n" \
    "      --tls-verify=BOOL      check the registry's certificate (default true); false also\n"   \
    "                             allows plain HTTP to a registry on a loopback address\n"         \
    "      --cert-dir DIR         CA certificates (*.crt) and client certificate (*.cert/*.key)\n" \
    "      --max-concurrent N     layers downloaded at once (default 3)\n"                         \
    "      --limit-rate RATE      bytes per second per layer, e.g. 10m (default: no limit)\n"
/* clang-format on */
int cli_registry_flag(int opt, const char *arg, struct rbx_registry_opts *o,
                      struct rbx_error **err);
/* --pull (CLI_OPT_PULL) and the registry options together, for commands that open docker://
 * images (unpack, replay, test): 1 when opt was one of them, 0 when not, -errno on a bad value. */
struct cli_pull_flags {
    enum rbx_pull_policy pull;
    struct rbx_registry_opts registry;
};
int cli_pull_flag(int opt, const char *arg, struct cli_pull_flags *f, struct rbx_error **err);
/* Progress of a pull, drawn one line per layer on a terminal (the rbx_pull_progress_fn). */
struct cli_pull_progress;
struct cli_pull_progress *cli_pull_progress_new(void);
void cli_pull_progress_event(void *ud, const struct rbx_pull_event *ev);
void cli_pull_progress_free(struct cli_pull_progress *p);
/* "Pulled NAME (os/arch) sha256:..: 3 layers, 2 downloaded (4.1 MiB), 1 present, in 0.8 s". */
char *cli_pull_summary(const char *reference, const struct rbx_pull_stats *st);

int cmd_pull(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_replay(int argc, char **argv);
/* What every replay gets from the CLI (cmd_replay.c): the store, the caller's environment and
 * where the processes' output goes. */
struct rbx_replay_opts;
int cli_replay_opts(struct rbx_replay_opts *o, struct rbx_store **store, int log_fd,
                    const struct cli_pull_flags *f, struct rbx_error **err);
int cmd_test(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_spec(int argc, char **argv);
/* `reprobox spec` itself; `announce`: say on stderr what was written (unpack --bundle does not:
 * it writes into a temporary dir it then renames). */
int cli_spec_write(int argc, char **argv, bool announce);
int cmd_unpack(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_cache(int argc, char **argv);
/* "3 minutes ago" for a unix time. */
const char *cli_format_age(int64_t when, char *buf, size_t len);
int cmd_build(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_version(int argc, char **argv);
