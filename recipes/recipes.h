/* recipes.h — the one public header of recipes/: turning an image and a user's request into a
 * sandbox spec exactly as `docker run` would, and the reports of what happened. */
#pragma once

#include "common/common.h"
#include "layers/layers.h"
#include "sandbox/sandbox.h"

#include <pthread.h>

/* ---- a run request: what `reprobox run` (or a recipe step) asks of an image --------------- */

struct rbx_run_request {
    char **args;            /* after the image reference: replace Cmd */
    const char *entrypoint; /* --entrypoint: replaces Entrypoint and clears Cmd ("" clears it) */
    char **env;             /* -e K=V, or -e K (taken from caller_env; dropped when unset there) */
    char **env_files;       /* --env-file paths, in order, applied before -e */
    char *const *caller_env;
    const char *workdir;    /* -w */
    const char *user;       /* -u */
    const char *hostname;   /* --hostname */
};

/* What composing decided, for the report. */
struct rbx_compose_info {
    bool workdir_from_image;
    char **env_names; /* names only, sorted: reports never carry values */
};

/* Combine the image config and the request into spec->argv, env, cwd, user, hostname, as docker
 * does: Entrypoint + Cmd, args replace Cmd, --entrypoint clears Cmd, env files then -e override
 * the image's Env, PATH and HOSTNAME defaults. Errors: no command (RBX_ERR_USAGE), unreadable or
 * malformed env file (with file:line). */
int rbx_run_compose(const struct rbx_image_config *cfg, const struct rbx_run_request *req,
                    struct rbx_spec *spec, struct rbx_compose_info *info, struct rbx_error **err);

/* Point spec's rootfs at img in the run dir rd (replacing lower, upper, work and rootfs dirs):
 * an overlay of the cached layers (unpacked before) with rd's upper, work and merged dirs, or,
 * where overlayfs is not usable here (rbx_store_overlay_unusable), a flat copy of the image made
 * in rd from the blobs, with flat_opts' progress. Returns 1 for a flat copy, 0 for an overlay. */
int rbx_run_rootfs(struct rbx_store *store, const struct rbx_image *img, struct rbx_run_dir *rd,
                   const struct rbx_unpack_opts *flat_opts, struct rbx_spec *spec,
                   struct rbx_error **err);
void rbx_compose_info_clear(struct rbx_compose_info *info);

/* Parse an env file (docker's --env-file format): "K=V", "K" (from caller_env), '#' comments,
 * blank lines. Appends to *env. */
int rbx_env_file_parse(const char *path, char *const *caller_env, char ***env, struct rbx_error **err);

/* ---- the run report (docs/report.md) -------------------------------------------------------- */

struct rbx_run_timings {
    uint64_t unpack_ns, setup_ns, run_ns;
};

/* Build the JSON run report. `error` may be NULL. The caller owns the result. */
json_t *rbx_run_report(const struct rbx_image *img, const struct rbx_spec *spec,
                       const struct rbx_compose_info *info, const struct rbx_result *res,
                       const struct rbx_run_timings *t, const struct rbx_error *error);
/* The report's "sandbox" object: capabilities, seccomp, init, network, limits as applied, timeouts. */
json_t *rbx_run_report_sandbox(const struct rbx_spec *spec, const struct rbx_result *res);
/* Write a JSON document to a file, atomically, pretty-printed. */
int rbx_report_write(const json_t *report, const char *path, struct rbx_error **err);

/* ---- recipes (docs/recipes.md, docs/recipe.schema.json) ----------------------------------- */
/* A recipe replays what production runs: services (sidecars) and steps (a migration, the server
 * start) over one image, in one network namespace, with readiness probes and expectations. */

#define RBX_RECIPE_MAX_BYTES (1u << 20)
#define RBX_RECIPE_MAX_STEPS 64
#define RBX_RECIPE_MAX_SERVICES 16
#define RBX_RECIPE_MAX_CHECKS 64 /* http and files checks of one step */
#define RBX_RECIPE_MAX_TIMEOUT_S 86400

enum rbx_probe_kind {
    RBX_PROBE_NONE = 0,
    RBX_PROBE_HTTP, /* GET url answers 2xx/3xx (or `status`) */
    RBX_PROBE_TCP,  /* host:port accepts a connection */
    RBX_PROBE_EXEC, /* argv run in the container exits 0 */
};

struct rbx_probe {
    enum rbx_probe_kind kind;
    char *url;            /* http */
    char *host;           /* tcp: "127.0.0.1" unless given */
    int port;             /* tcp */
    char **argv;          /* exec */
    int status;           /* http: the status that means ready, 0: any 2xx or 3xx */
    uint64_t timeout_ms;  /* how long to keep trying: 30 s unless given */
    uint64_t interval_ms; /* between attempts: 250 ms unless given */
};

struct rbx_http_check {
    char *get;    /* "/path" (on http://127.0.0.1:<port of the ready probe>) or a full URL */
    int status;   /* 0: any 2xx */
    char *body_contains, *body_matches;
};

struct rbx_file_check {
    char *path;   /* absolute, inside the container */
    int exists;   /* 1 exists, 0 absent, -1 not asked */
    char *contains;
};

struct rbx_expect {
    bool set;           /* the step has an "expect" object */
    bool has_exit;
    int exit_code;
    int signal;         /* 0: not asked */
    char *diagnosis;    /* a kind, "none" for no diagnosis */
    char *diagnosis_contains;
    char *stdout_contains, *stderr_contains, *stdout_matches, *stderr_matches;
    struct rbx_http_check *http;
    size_t n_http;
    struct rbx_file_check *files;
    size_t n_files;
    double max_seconds; /* 0: not asked */
};

/* A service (a sidecar with its own image) or a step (run in the recipe's image). */
struct rbx_recipe_proc {
    char *name;
    char *image;      /* services: the reference, ${VAR} expanded, relative paths made absolute */
    char **command;   /* replaces the image's Cmd; NULL: the image's */
    char *entrypoint; /* replaces the image's Entrypoint ("" clears it); NULL: the image's */
    char **env;       /* "K=V", applied after the recipe's env */
    char *user, *workdir;
    char **requires_env; /* variables that must be set when it starts (doctor checks them) */
    uint64_t timeout_ms, idle_timeout_ms, stop_timeout_ms;
    bool detach;      /* keep running while later steps run; stopped at the end */
    struct rbx_probe ready;
    struct rbx_expect expect;
};

struct rbx_recipe_build {
    char *context;    /* absolute */
    char *dockerfile; /* relative to the context: "Dockerfile" unless given */
    char *target;
    char **args;      /* "K=V" */
};

struct rbx_recipe {
    char *path;        /* the file as given, for messages */
    char *dir;         /* its directory, absolute: relative paths resolve from it */
    char *name, *description;
    char *image;       /* or build, never both */
    struct rbx_recipe_build *build;
    char **env;        /* "K=V" */
    char **env_files;  /* absolute */
    char **requires_env; /* variables every step needs set (doctor checks them) */
    enum rbx_network_mode network;
    bool init;
    char *user, *workdir;
    struct rbx_recipe_proc *services;
    size_t n_services;
    struct rbx_recipe_proc *steps;
    size_t n_steps;
};

/* Load and validate a recipe file. Unknown fields, wrong types, out-of-range values are errors
 * (RBX_ERR_MALFORMED) that name the file and the JSON path: "api.json: steps[1].ready.http:
 * expected a string". `${NAME}` and `${NAME:-default}` in image references and the build context
 * are taken from caller_env. */
int rbx_recipe_load(const char *path, char *const *caller_env, struct rbx_recipe **out,
                    struct rbx_error **err);
/* The same from a buffer; `path` names it in errors and gives the directory for relative paths. */
int rbx_recipe_parse(const char *buf, size_t len, const char *path, char *const *caller_env,
                     struct rbx_recipe **out, struct rbx_error **err);
struct rbx_recipe *rbx_recipe_free(struct rbx_recipe *r);
RBX_DEFINE_CLEANUP(struct rbx_recipe, rbx_recipe_free)

/* ---- building (build.c) --------------------------------------------------------------------- */

/* Build the recipe's image with the builder into a new scratch OCI layout; *scratch_dir (set
 * also on failure, for the caller to remove) holds it and *image_ref names it. The build's
 * steps and RUN output go to log_fd (-1: nowhere). */
int rbx_recipe_build(struct rbx_store *store, const struct rbx_recipe *recipe, int log_fd,
                     char **scratch_dir, char **image_ref, struct rbx_error **err);
/* Where a command that the built image lacks appears in another stage of the Dockerfile:
 * "it was only in the build stage \"builder\" (Dockerfile:5: RUN npm install -g pnpm)", or NULL. */
char *rbx_recipe_build_stage_of(const struct rbx_recipe_build *b, const char *command);

/* ---- probes (probe.c): run inside a pod's network namespace -------------------------------- */

struct rbx_http_response {
    long status;       /* 0: no response */
    char *body;        /* at most 64 KiB, NUL-terminated */
    char error[256];   /* why there was no response ("Connection refused") */
};
void rbx_http_response_clear(struct rbx_http_response *r);

/* One HTTP GET from inside the network namespace netns_fd (-1: this process's), with a per
 * attempt limit. Returns 0 when a response came (any status), -errno otherwise (r->error says
 * why); never sets an rbx_error for the network's own failures. */
int rbx_http_get_in_netns(int netns_fd, const char *url, uint64_t limit_ms,
                          struct rbx_http_response *r);
/* One TCP connect from inside netns_fd: 0 when it connected, else -errno. */
int rbx_tcp_connect_in_netns(int netns_fd, const char *host, int port, uint64_t limit_ms);
/* The TCP ports in LISTEN state in netns_fd (from /proc/thread-self/net/tcp and tcp6), sorted,
 * without duplicates. */
int rbx_listening_ports_in_netns(int netns_fd, int *ports, size_t max, size_t *n,
                                 struct rbx_error **err);
/* Parse the text of /proc/net/tcp or tcp6 and add the LISTEN ports. */
void rbx_proc_net_tcp_listening(const char *text, int *ports, size_t max, size_t *n);

struct rbx_probe_result {
    bool ready;
    unsigned attempts;
    uint64_t elapsed_ms;
    bool ever_connected;  /* some attempt reached a listening socket */
    bool target_exited;   /* the probed process ended first */
    long last_status;     /* http */
    char last_error[256];
};

/* What a probe needs from its caller: running an exec probe, and whether the probed process is
 * still there (which also lets the caller relay its output between attempts). */
struct rbx_probe_env {
    int netns_fd;
    int (*exec)(void *userdata, char *const *argv, uint64_t limit_ms); /* exit status or -errno */
    bool (*alive)(void *userdata);
    void *userdata;
};

/* Retry the probe until it succeeds, its timeout passes or the process is gone. */
void rbx_probe_run(const struct rbx_probe *p, const struct rbx_probe_env *env,
                   struct rbx_probe_result *res);

/* ---- what happened: outcomes of services and steps --------------------------------------- */

struct rbx_http_outcome {
    char *url;
    struct rbx_http_response resp;
};

enum rbx_proc_state {
    RBX_PROC_NOT_RUN = 0, /* an earlier step or service failed */
    RBX_PROC_OK,          /* exited 0, or (detached) ready and still running when checked */
    RBX_PROC_FAILED,
};

struct rbx_outcome {
    const struct rbx_recipe_proc *proc;
    bool is_service;
    enum rbx_proc_state state;
    /* the process as composed */
    char **argv, **env;
    char *cwd, *user;
    bool cwd_missing;             /* the working directory was not in the image */
    const struct rbx_recipe_build *build; /* the image was built from this (a step's) */
    enum rbx_network_mode network;
    /* how it ended */
    struct rbx_error *error;      /* it could not be started (command not found...) */
    struct rbx_result res;
    bool ended;                   /* res is final */
    bool exited_early;            /* a detached step that ended before it was stopped */
    bool has_ready;
    struct rbx_probe_result ready;
    struct rbx_http_outcome *http; /* one per expect.http check, in order */
    size_t n_http;
    int listening[32];             /* TCP ports listening in the pod when readiness failed */
    size_t n_listening;
    bool listening_known;
    uint64_t duration_ms;
    char *output_at_failure;      /* stdout and stderr as they came, up to a failure it survived */
    /* judgement */
    const char *diag_kind;        /* NULL: nothing to explain */
    char *diag_message, *diag_hint;
    char *outcome_text;           /* "exit 127", "not ready after 20 s", ... */
    char *unmet;                  /* the first unmet expectation, NULL when all are met */
};

/* ---- diagnosis (diagnose.c): a table of rules over an outcome ------------------------------ */

/* Decide what went wrong: sets o->diag_kind, diag_message and diag_hint (kind NULL when the
 * process did fine). rootfd (-1: none) lets rules look into the container's filesystem: is the
 * missing command anywhere in the image, is a symlink on the module path broken. */
void rbx_diagnose(struct rbx_outcome *o, int rootfd);
/* The stable kinds, in rule order, NULL-terminated (for docs and tests). */
extern const char *const rbx_diagnosis_kinds[];
bool rbx_diagnosis_kind_valid(const char *kind);
/* "exit 127", "killed by SIGKILL", "stopped after 30 s without output"... into o->outcome_text. */
void rbx_outcome_describe(struct rbx_outcome *o);
/* Whether the process failed, by the facts alone (exit status, stop, readiness, 5xx). */
bool rbx_outcome_failed(const struct rbx_outcome *o);

/* ---- expectations (expect.c) ---------------------------------------------------------------- */

/* Judge the outcome against proc->expect (and, where the expectation does not say otherwise,
 * against success): sets o->unmet to the first unmet expectation. rootfd for `files`. Returns
 * true when all are met. */
bool rbx_expect_check(struct rbx_outcome *o, int rootfd);

void rbx_outcome_clear(struct rbx_outcome *o);

/* ---- replay (replay.c) ---------------------------------------------------------------------- */

/* Builds the recipe's image when it says "build"; sets *image_ref to an image reference. Without
 * one, the replay builds with rbx_recipe_build. */
typedef int (*rbx_recipe_build_fn)(void *userdata, const struct rbx_recipe *recipe,
                                   char **image_ref, struct rbx_error **err);

struct rbx_replay_opts {
    struct rbx_store *store;
    char *const *caller_env;
    bool keep;                 /* keep the run dirs (their paths go in the report) */
    int log_fd;                /* where the processes' output goes as it comes (-1: nowhere) */
    rbx_recipe_build_fn build; /* NULL: rbx_recipe_build */
    void *build_data;
    rbx_progress_fn progress;  /* unpacking the images (may be NULL) */
    void *progress_data;
    /* docker:// images of the recipe and its services: pulled as these say (registry NULL:
     * the defaults, credentials from the auth files) */
    enum rbx_pull_policy pull;
    const struct rbx_registry_opts *registry;
};

struct rbx_replay {
    const struct rbx_recipe *recipe;
    char *image_ref;                /* what ran (after a build) */
    struct rbx_outcome *outcomes;   /* services first, then steps, in recipe order */
    size_t n_outcomes;
    struct rbx_error *error;        /* reprobox itself failed (image missing, sandbox...) */
    const struct rbx_outcome *first_failure; /* the outcome the summary leads with */
    bool passed;                    /* every expectation met */
    char *unmet;                    /* "step: what" of the first unmet expectation */
    char **kept_dirs;
    uint64_t duration_ms;
};

/* Run the recipe: services, then steps in order in one container; probes; expectations;
 * diagnosis. Returns 0 when the recipe could be replayed (whatever the steps did) and -errno
 * when reprobox itself failed (out->error is set too, and the report says so). */
int rbx_replay_run(const struct rbx_recipe *recipe, const struct rbx_replay_opts *opts,
                   struct rbx_replay *out, struct rbx_error **err);
void rbx_replay_clear(struct rbx_replay *r);
/* Whether every step and service did fine (what `reprobox replay` exits 0 on). */
bool rbx_replay_succeeded(const struct rbx_replay *r);

/* The JSON report of a replay (schema "reprobox.replay/v1", docs/recipes.md). */
json_t *rbx_replay_report(const struct rbx_replay *r);
/* The human summary: one line per service and step, leading with the diagnosis:
 * `migrate: exit 127 — command-not-found: "pnpm" is not in the image (PATH=...)`, then its hint.
 * Caller frees. */
char *rbx_replay_summary(const struct rbx_replay *r);

/* ---- JUnit XML (junit.c) -------------------------------------------------------------------- */

struct rbx_junit_case {
    const char *name;      /* the recipe's */
    const char *file;
    bool passed;
    bool errored;          /* reprobox could not run it */
    const char *message;   /* the first unmet expectation or the error */
    const char *detail;    /* the summary */
    double seconds;
};
/* One <testsuite> of the cases. Caller frees. */
char *rbx_junit_xml(const char *suite, const struct rbx_junit_case *cases, size_t n);

/* ---- doctor (doctor*.c, docs/doctor.md): what would fail, read in the image before it runs - */
/* The image's merged rootfs is mounted in a container where nothing is run, and read through its
 * root fd with rbx_open_in_root only: no host path is made of image data, nothing of the image is
 * executed, nothing goes to the network. */

enum rbx_severity {
    RBX_SEVERITY_ERROR = 0, /* it will fail */
    RBX_SEVERITY_WARNING,   /* it may fail, or the doctor could not tell */
};

struct rbx_finding {
    const char *check; /* a stable id of rbx_doctor_checks[] */
    enum rbx_severity severity;
    char **processes; /* the names of the processes it concerns; NULL: the image as such */
    char *message;    /* one line */
    char **evidence;  /* paths, link targets, script lines: what the message rests on */
    char *hint;       /* what to change; NULL when there is nothing to add */
};

/* One process as it will be started, composed as `docker run` composes it. */
struct rbx_doctor_process {
    const char *name; /* "image" for the image's own command, else the step's name */
    char *const *argv;
    char *const *env; /* the whole environment: image Env, recipe, env files */
    const char *cwd;
    const char *user;          /* NULL or "": root */
    char *const *requires_env; /* names the recipe marks required (NULL: none) */
};

struct rbx_doctor_report {
    char *image;                  /* the reference checked */
    struct rbx_finding *findings; /* errors first, then warnings, each in the order found */
    size_t n_findings, n_errors, n_warnings;
    char **processes;        /* the names of the processes checked */
    uint64_t entries_walked; /* files, directories and links looked at */
    size_t links_elsewhere;  /* broken links outside the processes' directories, not listed
                              * unless RBX_DOCTOR_ALL_LINKS */
    uint64_t elapsed_ns;
};

enum {
    /* list every broken link; by default only those under a process's working directory or
     * PATH (a dangling link in /usr/share/doc breaks nothing) */
    RBX_DOCTOR_ALL_LINKS = 1 << 0,
};

/* The stable check ids, NULL-terminated (docs/doctor.md lists each with an example). */
extern const char *const rbx_doctor_checks[];

/* Check the processes against the rootfs at rootfd: command resolution as execve and the shell
 * would do it (PATH, #!, ELF loader and libraries, the commands of sh -c strings and scripts),
 * working directory and user, broken symlinks, Node module resolution, the environment and a
 * Prisma schema. `arch` is the image's architecture ("amd64"; NULL: not checked). Findings go in
 * `out`; an error return is reserved for reprobox's own failures. */
int rbx_doctor_check(int rootfd, const char *arch, const struct rbx_doctor_process *procs, size_t n,
                     unsigned flags, struct rbx_doctor_report *out, struct rbx_error **err);

struct rbx_doctor_opts {
    struct rbx_store *store;
    const char *image;                 /* the reference; NULL: the recipe's */
    const struct rbx_recipe *recipe;   /* NULL: the image's own Entrypoint and Cmd */
    const struct rbx_run_request *req; /* without a recipe: args, env, workdir, user as for run */
    char *const *caller_env;
    const struct rbx_platform *platform; /* NULL: the host's */
    unsigned flags;                      /* RBX_DOCTOR_* */
};

/* Open and unpack the image, mount its rootfs in a container where nothing runs, compose the
 * processes (each step of the recipe, or the image's command changed by req) and check them. */
int rbx_doctor_image(const struct rbx_doctor_opts *o, struct rbx_doctor_report *out,
                     struct rbx_error **err);
/* The JSON report (schema "reprobox.doctor/v1", docs/doctor.md). Caller owns it. */
json_t *rbx_doctor_report_json(const struct rbx_doctor_report *r);
/* The human report: errors, then warnings, each with its evidence and hint. Caller frees. */
char *rbx_doctor_report_text(const struct rbx_doctor_report *r);
void rbx_doctor_report_clear(struct rbx_doctor_report *r);
