/* spec.c — lifetime of the spec and result structures. */
#include "sandbox/sandbox.h"

#include <string.h>

void rbx_spec_init(struct rbx_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->stdin_fd = spec->stdout_fd = spec->stderr_fd = -1;
}

void rbx_spec_clear(struct rbx_spec *spec)
{
    rbx_strv_free(spec->lower_dirs);
    free(spec->upper_dir);
    free(spec->work_dir);
    free(spec->rootfs_dir);
    rbx_strv_free(spec->argv);
    rbx_strv_free(spec->env);
    free(spec->cwd);
    free(spec->user);
    free(spec->additional_gids);
    free(spec->hostname);
    for (size_t i = 0; i < spec->n_mounts; i++) {
        free(spec->mounts[i].source);
        free(spec->mounts[i].target);
        free(spec->mounts[i].type);
    }
    free(spec->mounts);
    free(spec->log_dir);
    rbx_strv_free(spec->cap_add);
    rbx_strv_free(spec->cap_drop);
    rbx_seccomp_free(spec->seccomp);
    free(spec->seccomp_cache_dir);
    free(spec->rlimits);
    rbx_spec_init(spec);
}

void rbx_result_clear(struct rbx_result *res)
{
    free(res->exec_path);
    free(res->stdout_tail);
    free(res->stderr_tail);
    free(res->limits_note);
    memset(res, 0, sizeof(*res));
}
