/* runstep.c — RUN: the command (exec form, shell form, heredocs as BuildKit runs them), its
 * environment, network and mounts (bind, cache, tmpfs, secret; /etc/hosts and /etc/resolv.conf),
 * run in the sandbox over the stage's layers; its output relayed as it comes; the upper dir,
 * cleared of the sandbox's mount points, written as the step's layer. */
#include "builder/builder-internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define BUILD_HOSTNAME "reprobox"
#define TAIL_LINES 40
#define TAIL_BYTES (64 * 1024)

static const char *const proxy_args[] = {
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

/* What RUN sees, apart from what never enters a cache key (the epoch is keyed on its own, the
 * proxies are the machine's). */
static char **key_env(const struct rbx_bstage *st)
{
    char **env = rbx_strv_copy(st->state_env);
    if (!env)
        env = rbx_xcalloc(1, sizeof(char *));
    if (!rbx_env_get(env, "PATH"))
        rbx_env_set(&env, DEFAULT_PATH);
    return env;
}

char **rbx_run_env(const struct rbx_build_state *b, const struct rbx_bstage *st)
{
    char **env = key_env(st);
    for (size_t i = 0; i < RBX_ARRAY_SIZE(proxy_args); i++) {
        const char *v = rbx_env_get(b->build_args, proxy_args[i]);
        if (v && !rbx_env_get(env, proxy_args[i])) {
            _cleanup_free_ char *kv = rbx_xasprintf("%s=%s", proxy_args[i], v);
            rbx_env_set(&env, kv);
        }
    }
    _cleanup_free_ char *sde =
        rbx_xasprintf("SOURCE_DATE_EPOCH=%lld", (long long)b->opts->source_date_epoch);
    rbx_env_set(&env, sde);
    if (!rbx_env_get(env, "TZ"))
        rbx_env_set(&env, "TZ=UTC");
    return env;
}

/* ---- output relay -------------------------------------------------------------------------------
 */

struct relay {
    int rfd;
    struct rbx_build_state *b;
    struct rbx_tail *tail;
    pthread_t th;
    bool started;
};

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    char buf[16384];
    for (;;) {
        ssize_t n = read(r->rfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        rbx_tail_feed(r->tail, buf, (size_t)n);
        if (r->b->opts->events.output)
            r->b->opts->events.output(r->b->opts->events.userdata, &r->b->cur, buf, (size_t)n);
    }
    return NULL;
}

/* ---- the command
 * ---------------------------------------------------------------------------------- */

/* Is the shell-form text nothing but a heredoc word ("<<EOF", "<<-'EOF'")? */
static bool only_heredoc(const char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (strncmp(text, "<<", 2) != 0)
        return false;
    return text[strcspn(text, " \t")] == '\0';
}

struct command {
    char **argv;
    char *script;        /* a heredoc with #!: its body, run as a file ... */
    char *script_path;   /* ... written here (when a run dir was given) */
    char *script_target; /* ... and mounted there: /dev/pipes/NAME */
};

static void command_clear(struct command *c)
{
    rbx_strv_free(c->argv);
    free(c->script);
    free(c->script_path);
    free(c->script_target);
}

static int make_command(const struct rbx_bstage *st, const struct rbx_df_instr *in,
                        const char *rundir, struct command *c, struct rbx_error **err)
{
    const struct rbx_df_command *cmd = &in->run.cmd;
    if (cmd->exec) {
        c->argv = rbx_strv_copy(cmd->args);
        return 0;
    }
    if (in->n_heredocs == 0) {
        c->argv = rbx_stage_shell_wrap(st, cmd->args[0]);
        return 0;
    }
    if (only_heredoc(cmd->args[0])) {
        _cleanup_free_ char *data = rbx_df_heredoc_body(&in->heredocs[0]);
        if (strncmp(data, "#!", 2) == 0) {
            /* A script with its interpreter: run as a file, as BuildKit does. */
            const char *name = in->heredocs[0].name;
            if (strchr(name, '/') || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "heredoc name \"%s\"", name);
            c->script_target = rbx_xasprintf("/dev/pipes/%s", name);
            c->script = rbx_xstrdup(data);
            if (rundir) {
                c->script_path = rbx_xasprintf("%s/heredoc-%s", rundir, name);
                int fd = open(c->script_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
                if (fd < 0)
                    return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", c->script_path);
                size_t len = strlen(data);
                bool ok = write(fd, data, len) == (ssize_t)len && fchmod(fd, 0755) == 0;
                close(fd);
                if (!ok)
                    return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", c->script_path);
            }
            rbx_strv_push(&c->argv, c->script_target);
            return 0;
        }
        c->argv = rbx_stage_shell_wrap(st, data);
        return 0;
    }
    /* The shell reads the heredocs itself: the line, then each body and its delimiter. */
    _cleanup_free_ char *script = rbx_xstrdup(cmd->args[0]);
    for (size_t i = 0; i < in->n_heredocs; i++) {
        char *s = rbx_xasprintf("%s\n%s%s", script, in->heredocs[i].content, in->heredocs[i].name);
        free(script);
        script = s;
    }
    c->argv = rbx_stage_shell_wrap(st, script);
    return 0;
}

/* ---- mounts
 * ---------------------------------------------------------------------------------------- */

struct mounts {
    struct rbx_mount_spec *v;
    size_t n;
    char **targets; /* cleaned, relative: what the sandbox may have made in the upper dir */
    int locks[64];
    size_t n_locks;
    char **env; /* secrets given as variables */
};

static void mounts_clear(struct mounts *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].source);
        free(m->v[i].target);
        free(m->v[i].type);
    }
    free(m->v);
    rbx_strv_free(m->targets);
    for (size_t i = 0; i < m->n_locks; i++)
        close(m->locks[i]);
    rbx_strv_free(m->env);
    memset(m, 0, sizeof(*m));
}

static void mount_add(struct mounts *m, const char *type, const char *source, const char *target,
                      bool ro)
{
    m->v = rbx_xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
    m->v[m->n++] = (struct rbx_mount_spec){
        .source = source ? rbx_xstrdup(source) : NULL,
        .target = target[0] == '/' ? rbx_xstrdup(target) : rbx_xasprintf("/%s", target),
        .type = rbx_xstrdup(type),
        .readonly = ro,
    };
    rbx_strv_push_take(&m->targets, rbx_path_clean_clamped(target));
}

/* The secret given for `id` on the command line: its file or its variable's value. */
static int secret_value(const struct rbx_build_state *b, const char *id, char **out, size_t *len,
                        struct rbx_error **err)
{
    for (size_t i = 0; b->opts->secrets && b->opts->secrets[i]; i++) {
        _cleanup_free_ char *copy = rbx_xstrdup(b->opts->secrets[i]);
        const char *sid = NULL, *src = NULL, *env = NULL;
        char *save = NULL;
        for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
            if (strncmp(f, "id=", 3) == 0)
                sid = f + 3;
            else if (strncmp(f, "src=", 4) == 0 || strncmp(f, "source=", 7) == 0)
                src = strchr(f, '=') + 1;
            else if (strncmp(f, "env=", 4) == 0)
                env = f + 4;
        }
        if (!sid || strcmp(sid, id) != 0)
            continue;
        if (src) {
            int r = rbx_read_file_at(AT_FDCWD, src, 1 << 20, out, len, err);
            return r < 0 ? rbx_error_wrap(err, "secret %s", id) : 1;
        }
        const char *v = rbx_env_get(b->opts->caller_env, env ? env : id);
        if (!v)
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                 "secret %s: the variable %s is not set", id, env ? env : id);
        *out = rbx_xstrdup(v);
        *len = strlen(v);
        return 1;
    }
    return 0;
}

/* What each mount contributes to the key, and (when `rundir` is given) the mount itself. */
static int prepare_mounts(struct rbx_build_state *b, struct rbx_bstage *st,
                          const struct rbx_df_instr *in, const char *rundir, struct mounts *m,
                          json_t *keys, struct rbx_error **err)
{
    for (size_t i = 0; i < in->run.n_mounts; i++) {
        const struct rbx_df_mount *mt = &in->run.mounts[i];
        int r;
        switch (mt->type) {
        case RBX_DF_MOUNT_SSH:
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                 "RUN --mount=type=ssh is not supported: reprobox forwards no "
                                 "SSH agent (give the key as a secret)");
        case RBX_DF_MOUNT_TMPFS:
            json_array_append_new(keys,
                                  json_pack("{s:s, s:s}", "type", "tmpfs", "target", mt->target));
            if (rundir)
                mount_add(m, "tmpfs", NULL, mt->target, false);
            break;
        case RBX_DF_MOUNT_BIND: {
            const char *src = mt->source ? mt->source : "/";
            struct rbx_view *v = b->ctx;
            _cleanup_(rbx_view_freep) struct rbx_view *owned = NULL;
            char from_key[RBX_DIGEST_LEN + 1] = "context";
            if (mt->from) {
                if ((r = rbx_build_source_view(b, mt->from, &owned, from_key, err)) < 0)
                    return r;
                v = owned;
            }
            char digest[RBX_DIGEST_LEN + 1];
            if ((r = rbx_copy_materialize(b, v, !mt->from, src, NULL, digest, err)) < 0)
                return rbx_error_wrap(err, "--mount=type=bind,source=%s", src);
            json_array_append_new(keys,
                                  json_pack("{s:s, s:s, s:s, s:b}", "type", "bind", "target",
                                            mt->target, "content", digest, "ro", mt->readonly));
            if (!rundir)
                break;
            struct rbx_vnode n;
            if ((r = rbx_view_lookup(v, src, true, &n, err)) < 0)
                return r == -ENOENT ? rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                                    "--mount source \"%s\": not found", src)
                                    : r;
            bool is_dir = S_ISDIR(n.st.st_mode);
            _cleanup_free_ char *name =
                rbx_xstrdup(strrchr(n.path, '/') ? strrchr(n.path, '/') + 1 : n.path);
            _cleanup_free_ char *direct = NULL;
            if (!mt->from && !b->ignore && mt->readonly) {
                /* The context as it is: the bind is read-only and nothing is ignored. */
                char proc[32], real[RBX_PATH_MAX + 1];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", n.fd);
                ssize_t k = readlink(proc, real, sizeof(real) - 1);
                if (k > 0) {
                    real[k] = '\0';
                    direct = rbx_xstrdup(real);
                }
            }
            rbx_vnode_clear(&n);
            if (direct) {
                mount_add(m, "bind", direct, mt->target, true);
                break;
            }
            _cleanup_free_ char *dir = rbx_xasprintf("%s/mount-%zu", rundir, i);
            if (mkdir(dir, 0755) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", dir);
            if ((r = rbx_copy_materialize(b, v, !mt->from, src, dir, digest, err)) < 0)
                return r;
            _cleanup_free_ char *source =
                is_dir ? rbx_xstrdup(dir) : rbx_xasprintf("%s/%s", dir, name);
            /* a read-write bind's writes land in this copy and are thrown away, as BuildKit */
            mount_add(m, "bind", source, mt->target, mt->readonly);
            break;
        }
        case RBX_DF_MOUNT_CACHE: {
            if (mt->from)
                return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                     "RUN --mount=type=cache,from=... is not supported");
            const char *id = mt->id ? mt->id : mt->target;
            json_array_append_new(keys, json_pack("{s:s, s:s, s:s}", "type", "cache", "target",
                                                  mt->target, "id", id));
            if (!rundir)
                break;
            char hash[RBX_DIGEST_LEN + 1];
            rbx_sha256_buf(id, strlen(id), hash);
            _cleanup_free_ char *top = rbx_builder_dir(b, "cache-mounts", err);
            if (!top)
                return -EIO;
            _cleanup_free_ char *dir = rbx_xasprintf("%s/%s", top, rbx_digest_hex(hash));
            _cleanup_free_ char *data = rbx_xasprintf("%s/data", dir);
            if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", dir);
            if (mkdir(data, 0700) == 0) {
                if (chown(data, mt->has_uid ? mt->uid : 0, mt->has_gid ? mt->gid : 0) < 0 ||
                    chmod(data, mt->has_mode ? mt->mode : 0755) < 0)
                    return rbx_error_set_errno(err, RBX_ERR_IO, errno, "cache mount %s", id);
            } else if (errno != EEXIST) {
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", data);
            }
            if (m->n_locks < RBX_ARRAY_SIZE(m->locks)) {
                int lfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                bool locked = mt->sharing && strcmp(mt->sharing, "locked") == 0;
                if (lfd >= 0 && flock(lfd, locked ? LOCK_EX : LOCK_SH) == 0)
                    m->locks[m->n_locks++] = lfd;
                else if (lfd >= 0)
                    close(lfd);
            }
            mount_add(m, "bind", data, mt->target, mt->readonly);
            break;
        }
        case RBX_DF_MOUNT_SECRET: {
            const char *id = mt->id;
            _cleanup_free_ char *idbuf = NULL;
            if (!id && mt->target) {
                const char *s = strrchr(mt->target, '/');
                idbuf = rbx_xstrdup(s ? s + 1 : mt->target);
                id = idbuf;
            }
            if (!id || !*id)
                return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "secret mount without an id");
            /* Only the id enters the key: never the value. */
            json_array_append_new(keys, json_pack("{s:s, s:s, s:s?, s:s?}", "type", "secret", "id",
                                                  id, "target", mt->target, "env", mt->env));
            if (!rundir)
                break;
            _cleanup_free_ char *value = NULL;
            size_t len = 0;
            r = secret_value(b, id, &value, &len, err);
            if (r < 0)
                return r;
            if (r == 0) {
                if (mt->required)
                    return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                         "secret %s: required and not given (--secret id=%s,"
                                         "src=FILE)",
                                         id, id);
                break;
            }
            if (mt->env) {
                _cleanup_free_ char *kv = rbx_xasprintf("%s=%s", mt->env, value);
                rbx_strv_push(&m->env, kv);
                if (!mt->target)
                    break;
            }
            _cleanup_free_ char *file = rbx_xasprintf("%s/secret-%zu", rundir, i);
            int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
            if (fd < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "secret %s", id);
            bool ok = write(fd, value, len) == (ssize_t)len &&
                      fchown(fd, mt->has_uid ? mt->uid : 0, mt->has_gid ? mt->gid : 0) == 0 &&
                      fchmod(fd, mt->has_mode ? mt->mode : 0400) == 0;
            close(fd);
            if (!ok)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "secret %s", id);
            _cleanup_free_ char *target =
                mt->target ? rbx_xstrdup(mt->target) : rbx_xasprintf("/run/secrets/%s", id);
            mount_add(m, "bind", file, target, true);
            break;
        }
        }
    }
    return 0;
}

/* ---- the sandbox's traces in the upper dir
 * ----------------------------------------------------------- */

struct stub {
    char *path;
    bool existed;
    mode_t mode;
    uid_t uid;
    gid_t gid;
};

static void stubs_collect(const struct rbx_view *lower, char *const *targets, struct stub **out,
                          size_t *n_out)
{
    static const char *const fixed[] = {"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf"};
    _cleanup_strv_ char **all = NULL;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(fixed); i++)
        rbx_strv_push(&all, fixed[i]);
    for (size_t i = 0; targets && targets[i]; i++)
        rbx_strv_push(&all, targets[i]);
    /* every target and each of its parents, with what the lower layers had there */
    struct stub *v = NULL;
    size_t n = 0;
    for (size_t i = 0; all && all[i]; i++) {
        _cleanup_free_ char *p = rbx_xstrdup(all[i]);
        for (;;) {
            bool dup = false;
            for (size_t k = 0; k < n; k++)
                dup |= strcmp(v[k].path, p) == 0;
            if (!dup && *p) {
                v = rbx_xrealloc(v, (n + 1) * sizeof(*v));
                struct stub *s = &v[n++];
                memset(s, 0, sizeof(*s));
                s->path = rbx_xstrdup(p);
                struct rbx_vnode node;
                if (rbx_view_lookup(lower, p, false, &node, NULL) == 0) {
                    s->existed = true;
                    s->mode = node.st.st_mode;
                    s->uid = node.st.st_uid;
                    s->gid = node.st.st_gid;
                    rbx_vnode_clear(&node);
                }
            }
            char *slash = strrchr(p, '/');
            if (!slash)
                break;
            *slash = '\0';
        }
    }
    *out = v;
    *n_out = n;
}

static int cmp_stub_desc(const void *a, const void *b)
{
    return strcmp(((const struct stub *)b)->path, ((const struct stub *)a)->path);
}

/* Remove the mount points the sandbox made (empty files and dirs where the lower layers had
 * nothing) and the directories it copied up only to make them, deepest first. */
static void stubs_remove(int upperfd, struct stub *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_stub_desc);
    for (size_t i = 0; i < n; i++) {
        char name[RBX_NAME_MAX + 1];
        _cleanup_close_ int parent = rbx_open_parent_in_root(upperfd, v[i].path, false, name, NULL);
        struct stat st;
        if (parent < 0 || fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            _cleanup_close_ int fd =
                openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 || !rbx_dir_is_empty(fd))
                continue;
            /* a copied-up parent goes only when nothing about it changed */
            if (v[i].existed &&
                (!S_ISDIR(v[i].mode) || (st.st_mode & 07777) != (v[i].mode & 07777) ||
                 st.st_uid != v[i].uid || st.st_gid != v[i].gid))
                continue;
            (void)unlinkat(parent, name, AT_REMOVEDIR);
        } else if (S_ISREG(st.st_mode) && st.st_size == 0 && !v[i].existed) {
            (void)unlinkat(parent, name, 0);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

/* ---- RUN
 * ---------------------------------------------------------------------------------------------- */

static char *argv_text(char *const *argv)
{
    char *s = rbx_xstrdup("");
    for (size_t i = 0; argv && argv[i]; i++) {
        char *t = rbx_xasprintf("%s%s%s", s, i ? " " : "", argv[i]);
        free(s);
        s = t;
    }
    return s;
}

static int run_failed(struct rbx_build_state *b, struct rbx_run_dir **rd, char *const *argv,
                      const struct rbx_result *res, const char *tail, struct rbx_error **err)
{
    struct rbx_build_failure *f = &b->res->failure;
    f->command = rbx_strv_copy(argv);
    f->exit_code = res->exit_code;
    f->output_tail = rbx_xstrdup(tail ? tail : "");
    f->duration_ns = rbx_now_ns() - b->cur_start;
    if (b->opts->keep_failed && *rd) {
        f->kept_rootfs = rbx_xstrdup(rbx_run_dir_upper(*rd));
        *rd = rbx_run_dir_close(*rd, true);
    }
    if (err && *err)
        return -(*err)->errnum ? -(*err)->errnum : -EIO;
    _cleanup_free_ char *cmd = argv_text(argv);
    if (res->signal)
        return rbx_error_set(err, RBX_ERR_BUILD, ECHILD,
                             "process \"%s\" was killed by signal %d (exit code %d)", cmd,
                             res->signal, res->exit_code);
    return rbx_error_set(err, RBX_ERR_BUILD, ECHILD,
                         "process \"%s\" did not complete successfully: exit code: %d", cmd,
                         res->exit_code);
}

int rbx_step_run(struct rbx_build_state *b, struct rbx_bstage *st, const struct rbx_df_instr *in,
                 const struct rbx_df_instr *raw, struct rbx_error **err)
{
    (void)raw;
    enum rbx_network_mode net = b->opts->network;
    const char *netword = in->run.network;
    if (netword && strcmp(netword, "none") == 0) {
        net = RBX_NETWORK_NONE;
    } else if (netword && strcmp(netword, "host") == 0) {
        bool allowed = b->opts->network == RBX_NETWORK_HOST;
        for (size_t i = 0; b->opts->allow && b->opts->allow[i]; i++)
            allowed |= strcmp(b->opts->allow[i], "network.host") == 0;
        if (!allowed)
            return rbx_error_set(err, RBX_ERR_PERMISSION, EPERM,
                                 "RUN --network=host needs the network.host entitlement "
                                 "(--allow network.host) in a build run with --network none");
        net = RBX_NETWORK_HOST;
    }
    if (in->run.security && strcmp(in->run.security, "insecure") == 0)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "RUN --security=insecure is not supported: no step gets every "
                             "capability");
    if (in->run.devices && in->run.devices[0])
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP, "RUN --device is not supported");

    _cleanup_strv_ char **kenv = key_env(st);
    /* The key: the command as it will run (a script's body included), and what it runs with. */
    struct command probe = {0};
    int r = make_command(st, in, NULL, &probe, err);
    if (r < 0) {
        command_clear(&probe);
        return r;
    }
    json_t *mkeys = json_array();
    _cleanup_json_ json_t *keyobj = json_pack(
        "{s:s, s:o, s:o, s:s?, s:s, s:s, s:o, s:s?}", "kind", "RUN", "argv", json_array(), "env",
        json_array(), "user", st->user, "workdir", st->workdir, "network",
        net == RBX_NETWORK_HOST ? "host" : "none", "mounts", mkeys, "script", probe.script);
    for (size_t i = 0; probe.argv[i]; i++)
        json_array_append_new(json_object_get(keyobj, "argv"), json_string(probe.argv[i]));
    for (size_t i = 0; kenv[i]; i++)
        json_array_append_new(json_object_get(keyobj, "env"), json_string(kenv[i]));
    command_clear(&probe);
    struct mounts m = {0};
    if ((r = prepare_mounts(b, st, in, NULL, &m, mkeys, err)) < 0)
        return r;
    char key[RBX_DIGEST_LEN + 1];
    rbx_cache_key(st, keyobj, b->opts->source_date_epoch, key);
    _cleanup_free_ char *history = NULL;
    {
        /* BuildKit's history line: "|N K=V ... " for the build args, then the command. */
        _cleanup_free_ char *args = rbx_xstrdup("");
        size_t n_args = 0;
        for (size_t i = 0; st->args && st->args[i]; i++) {
            const char *v = rbx_env_get(st->state_env, st->args[i]);
            char *t = rbx_xasprintf("%s %s=%s", args, st->args[i], v ? v : "");
            free(args);
            args = t;
            n_args++;
        }
        _cleanup_free_ char *cmd = NULL;
        struct command c2 = {0};
        if (make_command(st, in, NULL, &c2, NULL) == 0)
            cmd = argv_text(c2.argv);
        command_clear(&c2);
        history = n_args ? rbx_xasprintf("RUN |%zu%s %s", n_args, args, cmd ? cmd : "")
                         : rbx_xasprintf("RUN %s", cmd ? cmd : "");
    }

    struct rbx_cache_hit hit;
    if (rbx_cache_get(b, key, &hit) == 1) {
        mounts_clear(&m);
        if (hit.empty) {
            rbx_stage_history(b, st, history, true);
        } else {
            if ((r = rbx_stage_add_layer(b, st, &hit.blob, history, err)) < 0)
                return r;
            rbx_stage_history(b, st, history, false);
            memcpy(st->chain, key, sizeof(st->chain));
        }
        b->cur.state = RBX_STEP_CACHED;
        b->cur.duration_ns = rbx_now_ns() - b->cur_start;
        if (b->opts->events.step)
            b->opts->events.step(b->opts->events.userdata, &b->cur);
        json_array_append_new(
            b->res->steps, json_pack("{s:s, s:i, s:i, s:i, s:s, s:s, s:I}", "stage", b->cur.stage,
                                     "index", b->cur.index, "total", b->cur.total, "line",
                                     b->cur.line, "instruction", b->cur.text, "status", "cached",
                                     "duration_ms", (json_int_t)(b->cur.duration_ns / 1000000)));
        b->res->n_steps++;
        b->res->n_cached++;
        return 0;
    }

    /* A miss: run it. */
    struct rbx_run_dir *rd = NULL;
    if ((r = rbx_run_dir_create(b->store, &rd, err)) < 0) {
        mounts_clear(&m);
        return r;
    }
    const char *rundir = rbx_run_dir_path(rd);
    struct command c = {0};
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    struct rbx_result res;
    memset(&res, 0, sizeof(res));
    _cleanup_(rbx_tail_freep) struct rbx_tail *tail = rbx_tail_new(TAIL_LINES, TAIL_BYTES);
    struct relay rl = {.rfd = -1, .b = b, .tail = tail};
    int pipefd[2] = {-1, -1};
    _cleanup_(rbx_view_freep) struct rbx_view *lower = NULL;
    struct stub *stubs = NULL;
    size_t n_stubs = 0;
    _cleanup_free_ char *hosts = rbx_xasprintf("%s/hosts", rundir);

    mounts_clear(&m);
    if ((r = make_command(st, in, rundir, &c, err)) < 0)
        goto out;
    json_t *scratch_keys = json_array();
    r = prepare_mounts(b, st, in, rundir, &m, scratch_keys, err);
    json_decref(scratch_keys);
    if (r < 0)
        goto out;
    if (c.script_path)
        mount_add(&m, "bind", c.script_path, c.script_target, true);
    {
        static const char text[] = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                   "ip6-loopback\n127.0.1.1\t" BUILD_HOSTNAME "\n";
        _cleanup_close_ int dfd = open(rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 ||
            (r = rbx_write_file_atomic_at(dfd, "hosts", text, sizeof(text) - 1, 0644, err)) < 0) {
            if (dfd < 0)
                r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", rundir);
            goto out;
        }
        chmod(hosts, 0644);
        mount_add(&m, "bind", hosts, "/etc/hosts", true);
        if (net == RBX_NETWORK_HOST && access("/etc/resolv.conf", R_OK) == 0)
            mount_add(&m, "bind", "/etc/resolv.conf", "/etc/resolv.conf", true);
    }

    spec.lower_dirs = rbx_stage_layer_dirs(st);
    if (!spec.lower_dirs[0]) {
        /* FROM scratch: an empty layer to mount over */
        _cleanup_free_ char *empty = rbx_xasprintf("%s/empty", rundir);
        if (mkdir(empty, 0755) < 0) {
            r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", empty);
            goto out;
        }
        rbx_strv_push(&spec.lower_dirs, empty);
    }
    if ((r = rbx_view_new(spec.lower_dirs, true, NULL, &lower, err)) < 0)
        goto out;
    stubs_collect(lower, m.targets, &stubs, &n_stubs);
    spec.upper_dir = rbx_xstrdup(rbx_run_dir_upper(rd));
    spec.work_dir = rbx_xstrdup(rbx_run_dir_work(rd));
    /* The step's files (script, hosts, empty layer) are bind sources in the run dir: the overlay
     * goes on a dir of its own there rather than on the run dir itself, which it would hide. */
    spec.rootfs_dir = rbx_xasprintf("%s/merged", rundir);
    if (mkdir(spec.rootfs_dir, 0755) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", spec.rootfs_dir);
        goto out;
    }
    spec.argv = rbx_strv_copy(c.argv);
    spec.env = rbx_run_env(b, st);
    for (size_t i = 0; m.env && m.env[i]; i++)
        rbx_env_set(&spec.env, m.env[i]);
    spec.cwd = rbx_xstrdup(st->workdir);
    spec.user = st->user ? rbx_xstrdup(st->user) : NULL;
    spec.hostname = rbx_xstrdup(BUILD_HOSTNAME);
    spec.network = net;
    spec.mounts = TAKE_PTR(m.v);
    spec.n_mounts = m.n;
    m.n = 0;
    spec.stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (spec.stdin_fd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "pipe");
        goto out;
    }
    spec.stdout_fd = spec.stderr_fd = pipefd[1];
    spec.tail_lines = TAIL_LINES;
    rl.rfd = pipefd[0];
    if (pthread_create(&rl.th, NULL, relay_main, &rl) != 0) {
        r = rbx_error_set(err, RBX_ERR_INTERNAL, EAGAIN, "output thread");
        goto out;
    }
    rl.started = true;
    r = rbx_sandbox_run(&spec, &res, err);
    close(pipefd[1]);
    pipefd[1] = -1;
    pthread_join(rl.th, NULL);
    rl.started = false;
    if (r < 0 || res.exit_code != 0) {
        r = run_failed(b, &rd, c.argv, &res, rbx_tail_text(tail), err);
        goto out;
    }

    {
        _cleanup_close_ int upfd = open(rbx_run_dir_upper(rd), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (upfd < 0) {
            r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "upper dir");
            goto out;
        }
        stubs_remove(upfd, stubs, n_stubs);
        stubs = NULL;
        n_stubs = 0;
        char *excl[] = {"etc/hosts", "etc/resolv.conf", "etc/hostname", NULL};
        struct rbx_layer_write_opts wo = {.source_date_epoch = b->opts->source_date_epoch,
                                          .overlay = true,
                                          .normalize = true,
                                          .exclude = excl};
        struct rbx_cache_hit made = {0};
        if ((r = rbx_layer_write(b->store, upfd, &wo, &made.blob, err)) < 0)
            goto out;
        if (made.blob.entries == 0) {
            made.empty = true;
            rbx_stage_history(b, st, history, true);
        } else {
            if ((r = rbx_store_adopt_layer(b->store, &made.blob, rbx_run_dir_upper(rd), err)) < 0 ||
                (r = rbx_stage_add_layer(b, st, &made.blob, history, err)) < 0)
                goto out;
            rbx_stage_history(b, st, history, false);
            memcpy(st->chain, key, sizeof(st->chain));
        }
        r = rbx_cache_put(b, key, &made, err);
    }
out:
    if (rl.started) {
        if (pipefd[1] >= 0)
            close(pipefd[1]);
        pipefd[1] = -1;
        pthread_join(rl.th, NULL);
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (spec.stdin_fd > 0)
        close(spec.stdin_fd);
    spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = -1;
    for (size_t i = 0; i < n_stubs; i++)
        free(stubs[i].path);
    free(stubs);
    rbx_spec_clear(&spec);
    rbx_result_clear(&res);
    mounts_clear(&m);
    command_clear(&c);
    if (rd)
        rbx_run_dir_close(rd, false);
    return r;
}
