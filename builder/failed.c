/* failed.c — the record a failed build leaves in the store (<store>/builder/failed.json): the
 * layers the step ran on, its kept changes, and the environment, user, workdir, shell and network
 * it had, so that `reprobox shell --failed` opens a shell exactly there. */
#include "builder/builder-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define RECORD "failed.json"

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The changes the previous record kept go when it is replaced: only the last failed step is
 * opened by `shell --failed`, and a kept run dir is not swept. */
static void drop_previous(struct rbx_build_state *b, const char *dir, const char *keep)
{
    _cleanup_free_ char *path = rbx_xasprintf("%s/" RECORD, dir);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (rbx_read_file_at(AT_FDCWD, path, 1 << 22, &text, &len, NULL) < 0)
        return;
    _cleanup_json_ json_t *j = rbx_json_loadb(text, len, path, NULL);
    const char *changes = json_string_value(json_object_get(j, "changes"));
    if (!changes || (keep && strcmp(changes, keep) == 0))
        return;
    /* <store>/runs/<id>/upper: the run dir and its marker, nothing outside runs/ */
    _cleanup_free_ char *runs = rbx_xasprintf("%s/runs/", rbx_store_dir(b->store));
    size_t rl = strlen(runs);
    const char *id = changes + rl;
    size_t idl = strcspn(id, "/");
    if (strncmp(changes, runs, rl) != 0 || idl == 0 || strcmp(id + idl, "/upper") != 0)
        return;
    _cleanup_free_ char *run = rbx_xstrndup(changes, rl + idl);
    _cleanup_free_ char *marker = rbx_xasprintf("%s.kept", run);
    (void)rbx_rm_rf_at(AT_FDCWD, run, NULL);
    (void)unlink(marker);
}

int rbx_failed_record_write(struct rbx_build_state *b, const struct rbx_bstage *st,
                            struct rbx_error **err)
{
    _cleanup_free_ char *dir = rbx_builder_dir(b, ".", err);
    if (!dir)
        return -EIO;
    drop_previous(b, dir, b->res->failure.kept_rootfs);
    _cleanup_strv_ char **lowers = rbx_stage_layer_dirs(st);
    _cleanup_strv_ char **env = rbx_run_env(b, st);
    _cleanup_strv_ char **shell = NULL;
    if (st->shell && st->shell[0]) {
        shell = rbx_strv_copy(st->shell);
    } else {
        rbx_strv_push(&shell, "/bin/sh");
        rbx_strv_push(&shell, "-c");
    }
    const struct rbx_build_failure *f = &b->res->failure;
    _cleanup_free_ char *where =
        rbx_xasprintf("%s:%u %s", b->df_name, f->line, f->instruction ? f->instruction : "");
    _cleanup_json_ json_t *j = json_pack(
        "{s:o, s:s?, s:o, s:s?, s:s, s:o, s:s, s:s, s:s}", "lowers", strv_json(lowers), "changes",
        f->kept_rootfs, "env", strv_json(env), "user", st->user, "cwd", st->workdir, "shell",
        strv_json(shell), "network", b->opts->network == RBX_NETWORK_HOST ? "host" : "none",
        "where", where, "stage", st->name);
    if (!j)
        abort();
    _cleanup_free_ char *text = rbx_json_dump_canonical(j);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", dir);
    return rbx_write_file_atomic_at(dfd, RECORD, text, strlen(text), 0600, err);
}

void rbx_failed_step_clear(struct rbx_failed_step *f)
{
    rbx_strv_free(f->lowers);
    rbx_strv_free(f->env);
    free(f->user);
    free(f->cwd);
    rbx_strv_free(f->shell);
    free(f->where);
    memset(f, 0, sizeof(*f));
}

int rbx_build_failed_load(struct rbx_store *store, struct rbx_failed_step *out,
                          struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *path = rbx_xasprintf("%s/builder/" RECORD, rbx_store_dir(store));
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (rbx_read_file_at(AT_FDCWD, path, 1 << 22, &text, &len, NULL) < 0)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "no failed build step recorded in %s",
                             rbx_store_dir(store));
    _cleanup_json_ json_t *j = rbx_json_loadb(text, len, path, err);
    if (!j)
        return -EINVAL;
    struct rbx_failed_step f = {0};
    const char *user = NULL, *cwd = NULL, *where = NULL, *net = NULL, *changes = NULL;
    int r;
    if ((r = rbx_json_get_strv(j, "lowers", path, &f.lowers, err)) < 0 ||
        (r = rbx_json_get_strv(j, "env", path, &f.env, err)) < 0 ||
        (r = rbx_json_get_strv(j, "shell", path, &f.shell, err)) < 0 ||
        (r = rbx_json_get_string(j, "user", path, &user, err)) < 0 ||
        (r = rbx_json_get_string(j, "cwd", path, &cwd, err)) < 0 ||
        (r = rbx_json_get_string(j, "where", path, &where, err)) < 0 ||
        (r = rbx_json_get_string(j, "network", path, &net, err)) < 0 ||
        (r = rbx_json_get_string(j, "changes", path, &changes, err)) < 0) {
        rbx_failed_step_clear(&f);
        return r;
    }
    f.user = user ? rbx_xstrdup(user) : NULL;
    f.cwd = rbx_xstrdup(cwd ? cwd : "/");
    f.where = rbx_xstrdup(where ? where : "");
    f.network = net && strcmp(net, "host") == 0 ? RBX_NETWORK_HOST : RBX_NETWORK_NONE;
    for (size_t i = 0; f.lowers && f.lowers[i]; i++) {
        struct stat st;
        if (stat(f.lowers[i], &st) < 0) {
            r = rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                              "the failed step's layer %s is no longer in the cache: build again",
                              f.lowers[i]);
            rbx_failed_step_clear(&f);
            return r;
        }
    }
    struct stat st;
    if (changes && stat(changes, &st) == 0 && S_ISDIR(st.st_mode)) {
        rbx_strv_push(&f.lowers, changes);
        f.has_changes = true;
    }
    *out = f;
    return 0;
}
