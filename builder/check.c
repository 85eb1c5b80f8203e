/* check.c — `build --check`: the same build again in a child process under other conditions (TZ,
 * umask, locale, hostname, environment order, HOME, context path, CPU affinity, clock) without
 * the step cache, the two manifest digests compared, and the first difference named: the layer,
 * the entry and the field; or the config field. Also the JSON report of a build. */
#include "builder/builder-internal.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define CHECK_CLOCK_OFFSET ((int64_t)400 * 86400 + 12345)
#define CHECK_HOSTNAME "reprobox-check"

void rbx_check_result_clear(struct rbx_check_result *c)
{
    rbx_strv_free(c->variations);
    free(c->step);
    free(c->path);
    free(c->field);
    free(c->detail);
    memset(c, 0, sizeof(*c));
}

/* ---- the context, copied elsewhere: same content, other path, new mtimes -----------------------
 */

static int copy_tree(int src, int dst, unsigned depth, struct rbx_error **err)
{
    if (depth > RBX_PATH_MAX / 2)
        return rbx_error_set(err, RBX_ERR_LIMIT, ELOOP, "context too deep");
    int dfd = fcntl(src, F_DUPFD_CLOEXEC, 3);
    _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read context");
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "context \"%s\"", n);
        int r = 0;
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(dst, n, 0700) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
            _cleanup_close_ int s2 =
                openat(src, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_close_ int d2 =
                openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
            if ((r = copy_tree(s2, d2, depth + 1, err)) < 0)
                return r;
            if (fchmod(d2, st.st_mode & 07777) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
        } else if (S_ISLNK(st.st_mode)) {
            char buf[RBX_PATH_MAX + 1];
            ssize_t k = readlinkat(src, n, buf, sizeof(buf) - 1);
            if (k < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
            buf[k] = '\0';
            if (symlinkat(buf, dst, n) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
        } else if (S_ISREG(st.st_mode)) {
            _cleanup_close_ int in = openat(src, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_close_ int out =
                openat(dst, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (in < 0 || out < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
            char buf[65536];
            ssize_t k;
            while ((k = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t)k) != k)
                    return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
            if (k < 0 || fchmod(out, st.st_mode & 07777) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", n);
        }
        /* sockets, fifos and devices have no place in a build context */
    }
    return 0;
}

/* ---- the second build, in a child
 * ----------------------------------------------------------------- */

static json_t *result_json(const struct rbx_build_result *res, const struct rbx_error *e)
{
    json_t *ls = json_array();
    for (size_t i = 0; i < res->n_layers; i++)
        json_array_append_new(ls, json_pack("{s:s, s:s, s:s, s:I}", "digest", res->layers[i].digest,
                                            "diff_id", res->layers[i].diff_id, "media_type",
                                            res->layers[i].media_type, "size",
                                            (json_int_t)res->layers[i].size));
    return json_pack("{s:s?, s:s, s:s?, s:o}", "error", e ? e->message : NULL, "manifest",
                     res->manifest_digest, "config", res->config, "layers", ls);
}

static _Noreturn void second_build(struct rbx_store *store, struct rbx_build_opts *o, int wfd,
                                   const char *home)
{
    /* Conditions a reproducible build must not see. */
    umask(077);
    if (unshare(CLONE_NEWUTS) == 0 && sethostname(CHECK_HOSTNAME, strlen(CHECK_HOSTNAME)) < 0) {
        /* the host's name stays: the sandbox gives RUN its own anyway */
    }
    setenv("TZ", "Pacific/Chatham", 1);
    setenv("LC_ALL", "tr_TR.UTF-8", 1);
    setenv("LANG", "tr_TR.UTF-8", 1);
    setenv("HOME", home, 1);
    extern char **environ;
    size_t n = rbx_strv_len(environ);
    for (size_t i = 0; i < n / 2; i++) {
        char *t = environ[i];
        environ[i] = environ[n - 1 - i];
        environ[n - 1 - i] = t;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1) {
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) {
                CPU_ZERO(&set);
                CPU_SET(c, &set);
                (void)sched_setaffinity(0, sizeof(set), &set);
                break;
            }
    }
    /* Another second of the wall clock than the first build's last step: what a step stamps
     * with the time differs even at a one-second resolution. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000000L - now.tv_nsec + 20000000L};
    if (pause.tv_nsec >= 1000000000L) {
        pause.tv_sec = 1;
        pause.tv_nsec -= 1000000000L;
    }
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        ;
    struct rbx_build_result res;
    struct rbx_error *e = NULL;
    (void)rbx_build(store, o, &res, &e);
    json_t *j = result_json(&res, e);
    char *text = rbx_json_dump_canonical(j);
    size_t len = strlen(text);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(wfd, text + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    _exit(e ? 1 : 0);
}

/* The first JSON path where two values differ: "config.Env[1]". */
static bool json_first_diff(json_t *a, json_t *b, const char *path, char **out)
{
    if (json_equal(a, b))
        return false;
    if (json_is_object(a) && json_is_object(b)) {
        /* sorted keys, so that the answer does not depend on the hash order */
        const char *k;
        json_t *v;
        _cleanup_strv_ char **keys = NULL;
        json_object_foreach (a, k, v)
            rbx_strv_push(&keys, k);
        json_object_foreach (b, k, v)
            if (!json_object_get(a, k))
                rbx_strv_push(&keys, k);
        size_t n = rbx_strv_len(keys);
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (strcmp(keys[i], keys[j]) > 0) {
                    char *t = keys[i];
                    keys[i] = keys[j];
                    keys[j] = t;
                }
        for (size_t i = 0; i < n; i++) {
            _cleanup_free_ char *p =
                *path ? rbx_xasprintf("%s.%s", path, keys[i]) : rbx_xstrdup(keys[i]);
            json_t *va = json_object_get(a, keys[i]), *vb = json_object_get(b, keys[i]);
            if (!va || !vb) {
                *out = TAKE_PTR(p);
                return true;
            }
            if (json_first_diff(va, vb, p, out))
                return true;
        }
    }
    if (json_is_array(a) && json_is_array(b)) {
        size_t n =
            json_array_size(a) > json_array_size(b) ? json_array_size(a) : json_array_size(b);
        for (size_t i = 0; i < n; i++) {
            _cleanup_free_ char *p = rbx_xasprintf("%s[%zu]", path, i);
            json_t *va = json_array_get(a, i), *vb = json_array_get(b, i);
            if (!va || !vb) {
                *out = TAKE_PTR(p);
                return true;
            }
            if (json_first_diff(va, vb, p, out))
                return true;
        }
    }
    *out = rbx_xstrdup(path);
    return true;
}

static void push_variations(struct rbx_check_result *c, const char *ctx_copy)
{
    cpu_set_t set;
    bool one_cpu = sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
    const char *v[] = {
        "TZ=Pacific/Chatham",
        "umask 077",
        "LC_ALL=tr_TR.UTF-8",
        "hostname " CHECK_HOSTNAME,
        "environment in reverse order",
        "HOME elsewhere",
        one_cpu ? "one CPU (affinity)" : "CPU affinity unchanged (one CPU here)",
        "clock +400 days for what reprobox stamps; a later wall clock for RUN",
        "no step cache",
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(v); i++)
        rbx_strv_push(&c->variations, v[i]);
    _cleanup_free_ char *ctx = rbx_xasprintf("context copied to %s", ctx_copy);
    rbx_strv_push(&c->variations, ctx);
}

/* The second build and the comparison, in the scratch area (removed by the caller). */
static int check_in(struct rbx_store *store, const struct rbx_build_opts *opts,
                    struct rbx_build_result *first, struct rbx_check_result *check,
                    const char *ctx_real, const char *ctx, const char *home, struct rbx_error **err)
{
    int r = 0;
    {
        _cleanup_close_ int s = open(ctx_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int d = open(ctx, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s < 0 || d < 0) {
            r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "context copy");
            return r;
        }
        if ((r = copy_tree(s, d, 0, err)) < 0)
            return r;
    }
    push_variations(check, ctx);

    struct rbx_build_opts o2 = *opts;
    o2.context = ctx;
    _cleanup_free_ char *df2 = NULL;
    if (opts->dockerfile) {
        /* the Dockerfile follows the context when it is inside it */
        _cleanup_free_ char *dreal = realpath(opts->dockerfile, NULL);
        size_t cl = strlen(ctx_real);
        if (dreal && strncmp(dreal, ctx_real, cl) == 0 && dreal[cl] == '/')
            df2 = rbx_xasprintf("%s%s", ctx, dreal + cl);
        o2.dockerfile = df2 ? df2 : opts->dockerfile;
    }
    o2.tags = NULL;
    o2.cache_off = true;
    o2.no_cache = true;
    o2.keep_failed = false;
    o2.no_failure_record = true;
    o2.clock_offset_s = CHECK_CLOCK_OFFSET;

    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "pipe");
        return r;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "fork");
        return r;
    }
    if (pid == 0) {
        close(p[0]);
        second_build(store, &o2, p[1], home);
    }
    close(p[1]);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    r = rbx_read_fd(p[0], 64u << 20, "second build", &text, &len, err);
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return r;
    _cleanup_json_ json_t *sj = rbx_json_loadb(text, len, "second build", NULL);
    if (!json_is_object(sj)) {
        r = rbx_error_set(err, RBX_ERR_INTERNAL, EIO, "the second build ended without a result");
        return r;
    }
    const char *serr = json_string_value(json_object_get(sj, "error"));
    if (serr) {
        r = rbx_error_set(err, RBX_ERR_BUILD, EIO,
                          "the second build (varied conditions) failed: %s", serr);
        return r;
    }
    snprintf(check->first_digest, sizeof(check->first_digest), "%s", first->manifest_digest);
    snprintf(check->second_digest, sizeof(check->second_digest), "%s",
             json_string_value(json_object_get(sj, "manifest")));
    if (strcmp(check->first_digest, check->second_digest) == 0) {
        check->reproducible = true;
        return r;
    }
    /* The first layer that differs, then its first entry that differs. */
    json_t *ls = json_object_get(sj, "layers");
    size_t n2 = json_array_size(ls);
    for (size_t i = 0; i < first->n_layers || i < n2; i++) {
        json_t *l2 = json_array_get(ls, i);
        if (i < first->n_layers && l2 &&
            strcmp(first->layers[i].diff_id, json_string_value(json_object_get(l2, "diff_id"))) ==
                0)
            continue;
        check->layer = (long)i;
        check->step = rbx_xstrdup(i < first->n_layers ? first->layer_steps[i] : "(none)");
        if (i >= first->n_layers || !l2) {
            check->path = rbx_xstrdup("");
            check->field = rbx_xstrdup("missing");
            check->detail = rbx_xasprintf("%zu layers in the first build, %zu in the second",
                                          first->n_layers, n2);
            return r;
        }
        struct rbx_out_layer b2 = {.size = json_integer_value(json_object_get(l2, "size")),
                                   .blob_dirfd = rbx_store_blob_dirfd(store)};
        snprintf(b2.digest, sizeof(b2.digest), "%s",
                 json_string_value(json_object_get(l2, "digest")));
        snprintf(b2.diff_id, sizeof(b2.diff_id), "%s",
                 json_string_value(json_object_get(l2, "diff_id")));
        snprintf(b2.media_type, sizeof(b2.media_type), "%s",
                 json_string_value(json_object_get(l2, "media_type")));
        struct rbx_layer_difference d;
        int dr = rbx_layer_diff(&first->layers[i], &b2, &d, err);
        if (dr < 0) {
            r = dr;
            return r;
        }
        check->path = d.path ? rbx_xstrdup(d.path) : rbx_xstrdup("");
        check->field = d.field ? rbx_xstrdup(d.field) : rbx_xstrdup("content");
        check->detail = d.detail ? rbx_xstrdup(d.detail) : rbx_xstrdup("");
        rbx_layer_difference_clear(&d);
        return r;
    }
    /* Same layers: the config differs. */
    {
        _cleanup_json_ json_t *c1 =
            rbx_json_loadb(first->config, strlen(first->config), "config", NULL);
        const char *c2text = json_string_value(json_object_get(sj, "config"));
        _cleanup_json_ json_t *c2 =
            c2text ? rbx_json_loadb(c2text, strlen(c2text), "config", NULL) : NULL;
        char *where = NULL;
        if (c1 && c2 && json_first_diff(c1, c2, "", &where)) {
            check->path = where;
        } else {
            free(where);
            check->path = rbx_xstrdup("");
        }
        check->field = rbx_xstrdup("config");
        check->step = rbx_xstrdup("image config");
        check->detail = rbx_xstrdup("the image configs differ");
    }
    return r;
}

int rbx_build_check(struct rbx_store *store, const struct rbx_build_opts *opts,
                    struct rbx_build_result *first, struct rbx_check_result *check,
                    struct rbx_error **err)
{
    memset(check, 0, sizeof(*check));
    check->layer = -1;
    int r = rbx_build(store, opts, first, err);
    if (r < 0)
        return r;

    /* A scratch area of our own in the store: the context copy and a HOME. */
    _cleanup_free_ char *top = rbx_xasprintf("%s/builder", rbx_store_dir(store));
    (void)mkdir(top, 0700);
    char rnd[13];
    rbx_random_hex(rnd, 12);
    _cleanup_free_ char *area = rbx_xasprintf("%s/check-%s", top, rnd);
    _cleanup_free_ char *ctx = rbx_xasprintf("%s/elsewhere/context-copy", area);
    _cleanup_free_ char *home = rbx_xasprintf("%s/home", area);
    _cleanup_free_ char *ctx_real = realpath(opts->context ? opts->context : ".", NULL);
    if (!ctx_real)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "context");
    _cleanup_free_ char *mid = rbx_xasprintf("%s/elsewhere", area);
    if (mkdir(area, 0700) < 0 || mkdir(mid, 0755) < 0 || mkdir(ctx, 0755) < 0 ||
        mkdir(home, 0700) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", area);
        (void)rbx_rm_rf_at(AT_FDCWD, area, NULL);
        return r;
    }
    r = check_in(store, opts, first, check, ctx_real, ctx, home, err);
    (void)rbx_rm_rf_at(AT_FDCWD, area, NULL);
    return r;
}

/* ---- the report
 * ------------------------------------------------------------------------------------- */

json_t *rbx_build_report(const struct rbx_build_result *res, const struct rbx_check_result *check,
                         const struct rbx_error *error)
{
    json_t *j = json_object();
    json_object_set_new(j, "status",
                        json_string(res->failed ? "failed"
                                    : error     ? "error"
                                                : "succeeded"));
    json_object_set_new(j, "network",
                        json_string(res->network == RBX_NETWORK_HOST ? "host" : "none"));
    json_object_set_new(j, "duration_ms", json_integer((json_int_t)(res->duration_ns / 1000000)));
    json_object_set_new(j, "steps", res->steps ? json_deep_copy(res->steps) : json_array());
    json_object_set_new(j, "steps_cached", json_integer(res->n_cached));
    if (res->manifest_digest[0]) {
        json_t *img = json_pack("{s:s, s:s}", "manifest_digest", res->manifest_digest,
                                "config_digest", res->config_digest);
        json_t *ls = json_array();
        for (size_t i = 0; i < res->n_layers; i++)
            json_array_append_new(
                ls, json_pack("{s:s, s:s, s:I, s:s}", "digest", res->layers[i].digest, "diff_id",
                              res->layers[i].diff_id, "size", (json_int_t)res->layers[i].size,
                              "made_by", res->layer_steps[i]));
        json_object_set_new(img, "layers", ls);
        json_t *w = json_array();
        for (size_t i = 0; res->written && res->written[i]; i++)
            json_array_append_new(w, json_string(res->written[i]));
        json_object_set_new(img, "written", w);
        json_object_set_new(j, "image", img);
    }
    if (res->failed) {
        const struct rbx_build_failure *f = &res->failure;
        json_t *fj = json_pack("{s:s?, s:i, s:s?, s:I, s:s?, s:s?}", "stage", f->stage, "line",
                               f->line, "instruction", f->instruction, "duration_ms",
                               (json_int_t)(f->duration_ns / 1000000), "output_tail",
                               f->output_tail, "message", f->message);
        if (f->command) {
            json_t *c = json_array();
            for (size_t i = 0; f->command[i]; i++)
                json_array_append_new(c, json_string(f->command[i]));
            json_object_set_new(fj, "command", c);
            json_object_set_new(fj, "exit_code", json_integer(f->exit_code));
        }
        if (f->kept_rootfs)
            json_object_set_new(fj, "kept_rootfs", json_string(f->kept_rootfs));
        json_object_set_new(j, "failure", fj);
    }
    if (error)
        json_object_set_new(j, "error",
                            json_pack("{s:s, s:s}", "kind", rbx_error_kind_name(error->kind),
                                      "message", error->message));
    if (check && (check->first_digest[0] || check->variations)) {
        json_t *cj = json_pack("{s:b, s:s, s:s}", "reproducible", check->reproducible, "first",
                               check->first_digest, "second", check->second_digest);
        json_t *v = json_array();
        for (size_t i = 0; check->variations && check->variations[i]; i++)
            json_array_append_new(v, json_string(check->variations[i]));
        json_object_set_new(cj, "variations", v);
        if (!check->reproducible && check->field)
            json_object_set_new(cj, "difference",
                                json_pack("{s:I, s:s?, s:s?, s:s?, s:s?}", "layer",
                                          (json_int_t)(check->layer + 1), "made_by", check->step,
                                          "path", check->path, "field", check->field, "detail",
                                          check->detail));
        json_object_set_new(j, "check", cj);
    }
    return j;
}
