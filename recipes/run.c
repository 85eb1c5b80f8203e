/* run.c — an image config plus a user's request becomes a sandbox spec, by docker's rules:
 * Entrypoint + Cmd, arguments replace Cmd, --entrypoint clears Cmd, env files then -e override
 * the image's Env, and docker's PATH and HOSTNAME defaults. */
#include "recipes/recipes.h"

#include <string.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_HOSTNAME "reprobox"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void rbx_compose_info_clear(struct rbx_compose_info *info)
{
    rbx_strv_free(info->env_names);
    memset(info, 0, sizeof(*info));
}

static int compose_argv(const struct rbx_image_config *cfg, const struct rbx_run_request *req,
                        char ***argv, struct rbx_error **err)
{
    _cleanup_strv_ char **out = NULL;
    char *const *cmd = cfg->cmd;

    if (req->entrypoint) {
        /* docker: --entrypoint replaces the image's Entrypoint and resets its Cmd. */
        if (*req->entrypoint)
            rbx_strv_push(&out, req->entrypoint);
        cmd = NULL;
    } else {
        for (size_t i = 0; cfg->entrypoint && cfg->entrypoint[i]; i++)
            rbx_strv_push(&out, cfg->entrypoint[i]);
    }
    if (req->args && req->args[0])
        cmd = req->args;
    for (size_t i = 0; cmd && cmd[i]; i++)
        rbx_strv_push(&out, cmd[i]);
    if (!out || !out[0])
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "no command specified: the image has no Entrypoint or Cmd and none "
                             "was given");
    if (!*out[0])
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "the command is an empty string");
    *argv = TAKE_PTR(out);
    return 0;
}

static int compose_env(const struct rbx_image_config *cfg, const struct rbx_run_request *req,
                       const char *hostname, char ***env, struct rbx_error **err)
{
    _cleanup_strv_ char **out = NULL;
    _cleanup_free_ char *host = rbx_xasprintf("HOSTNAME=%s", hostname);

    /* docker puts HOSTNAME first and lets the image and the user override it. */
    rbx_strv_push(&out, host);
    for (size_t i = 0; cfg->env && cfg->env[i]; i++) {
        if (!strchr(cfg->env[i], '=') || cfg->env[i][0] == '=')
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "image config: Env[%zu] \"%s\" is not KEY=VALUE", i, cfg->env[i]);
        rbx_env_set(&out, cfg->env[i]);
    }
    for (size_t i = 0; req->env_files && req->env_files[i]; i++) {
        int r = rbx_env_file_parse(req->env_files[i], req->caller_env, &out, err);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; req->env && req->env[i]; i++) {
        const char *kv = req->env[i];
        const char *eq = strchr(kv, '=');
        if (kv[0] == '=' || !kv[0])
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "-e \"%s\": no variable name", kv);
        if (eq) {
            rbx_env_set(&out, kv);
        } else {
            const char *v = rbx_env_get(req->caller_env, kv);
            if (v) {
                _cleanup_free_ char *full = rbx_xasprintf("%s=%s", kv, v);
                rbx_env_set(&out, full);
            }
        }
    }
    if (!rbx_env_get(out, "PATH"))
        rbx_env_set(&out, DEFAULT_PATH);
    *env = TAKE_PTR(out);
    return 0;
}

int rbx_run_rootfs(struct rbx_store *store, const struct rbx_image *img, struct rbx_run_dir *rd,
                   const struct rbx_unpack_opts *flat_opts, struct rbx_spec *spec,
                   struct rbx_error **err)
{
    spec->lower_dirs = rbx_strv_free(spec->lower_dirs);
    free(spec->upper_dir);
    free(spec->work_dir);
    free(spec->rootfs_dir);
    spec->upper_dir = spec->work_dir = spec->rootfs_dir = NULL;
    if (rbx_store_overlay_unusable(store)) {
        int r = rbx_run_dir_flatten(rd, img, flat_opts, err);
        if (r < 0)
            return rbx_error_wrap(err, "flat rootfs");
        spec->rootfs_dir = rbx_xstrdup(rbx_run_dir_rootfs(rd));
        return 1;
    }
    int r = rbx_image_layer_dirs(store, img, &spec->lower_dirs, err);
    if (r < 0)
        return r;
    char *init = NULL;
    r = rbx_store_init_layer(store, &init, err);
    if (r < 0)
        return r;
    rbx_strv_push_take(&spec->lower_dirs, init);
    spec->upper_dir = rbx_xstrdup(rbx_run_dir_upper(rd));
    spec->work_dir = rbx_xstrdup(rbx_run_dir_work(rd));
    spec->upper_volatile = true; /* a caller keeping the run says otherwise */
    spec->rootfs_dir = rbx_xstrdup(rbx_run_dir_merged(rd));
    return 0;
}

int rbx_run_compose(const struct rbx_image_config *cfg, const struct rbx_run_request *req,
                    struct rbx_spec *spec, struct rbx_compose_info *info, struct rbx_error **err)
{
    const char *hostname = req->hostname && *req->hostname ? req->hostname : DEFAULT_HOSTNAME;
    const char *cwd = req->workdir && *req->workdir ? req->workdir : NULL;
    int r;

    if (strlen(hostname) > 64)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "hostname \"%s\" is longer than 64 bytes",
                             hostname);
    if (!cwd && cfg->working_dir && *cfg->working_dir) {
        cwd = cfg->working_dir;
        info->workdir_from_image = true;
    }
    if (!cwd)
        cwd = "/";
    if (cwd[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "the working directory \"%s\" is invalid: it must be an absolute path",
                             cwd);

    r = compose_argv(cfg, req, &spec->argv, err);
    if (r < 0)
        return r;
    r = compose_env(cfg, req, hostname, &spec->env, err);
    if (r < 0)
        return r;
    spec->cwd = rbx_xstrdup(cwd);
    const char *user = req->user ? req->user : cfg->user;
    spec->user = user && *user ? rbx_xstrdup(user) : NULL;
    spec->hostname = rbx_xstrdup(hostname);

    size_t n = rbx_strv_len(spec->env);
    info->env_names = rbx_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        info->env_names[i] = rbx_xstrndup(spec->env[i], strcspn(spec->env[i], "="));
    qsort(info->env_names, n, sizeof(char *), cmp_str);
    return 0;
}
