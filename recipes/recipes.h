/* recipes.h — the one public header of recipes/: turning an image and a user's request into a
 * sandbox spec exactly as `docker run` would, and the reports of what happened. */
#pragma once

#include "common/common.h"
#include "layers/layers.h"
#include "sandbox/sandbox.h"

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
