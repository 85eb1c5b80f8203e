/* build.c — rbx_build: the Dockerfile read with its .dockerignore, build args and global ARGs
 * resolved, the stages the target needs found, each built step by step (FROM an image, a stage or
 * scratch; config instructions; RUN, COPY, ADD and WORKDIR through the step cache), the image
 * config written canonically and the image written to every tag. */
#include "builder/builder-internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int64_t rbx_build_now(const struct rbx_build_state *b)
{
    return (int64_t)time(NULL) + b->opts->clock_offset_s;
}

void rbx_build_warn(struct rbx_build_state *b, const char *fmt, ...)
{
    if (!b->opts->events.warning)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    b->opts->events.warning(b->opts->events.userdata, msg);
    free(msg);
}

/* ---- results -----------------------------------------------------------------------------------
 */

void rbx_build_result_clear(struct rbx_build_result *res)
{
    free(res->config);
    for (size_t i = 0; i < res->n_layers; i++) {
        if (res->layers[i].blob_dirfd >= 0)
            close(res->layers[i].blob_dirfd);
        free(res->layer_steps[i]);
    }
    free(res->layers);
    free(res->layer_steps);
    json_decref(res->steps);
    rbx_strv_free(res->written);
    struct rbx_build_failure *f = &res->failure;
    free(f->stage);
    free(f->instruction);
    rbx_strv_free(f->command);
    free(f->output_tail);
    free(f->message);
    free(f->kept_rootfs);
    memset(res, 0, sizeof(*res));
}

/* ---- stages ------------------------------------------------------------------------------------
 */

static void stage_clear(struct rbx_bstage *st)
{
    for (size_t i = 0; i < st->n_layers; i++) {
        free(st->layers[i].dir);
        free(st->layers[i].links_dir);
        free(st->layers[i].step);
    }
    free(st->layers);
    rbx_image_free(st->base);
    json_decref(st->config);
    json_decref(st->history);
    rbx_strv_free(st->cfg_env);
    rbx_strv_free(st->state_env);
    rbx_strv_free(st->args);
    free(st->workdir);
    free(st->user);
    rbx_strv_free(st->shell);
    free(st->name);
    free(st->author);
}

char **rbx_stage_layer_dirs(const struct rbx_bstage *st)
{
    char **v = rbx_xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < st->n_layers; i++) {
        rbx_strv_push(&v, st->layers[i].dir);
        if (st->layers[i].links_dir)
            rbx_strv_push(&v, st->layers[i].links_dir);
    }
    return v;
}

static struct rbx_blayer *push_layer(struct rbx_bstage *st)
{
    st->layers = rbx_xrealloc(st->layers, (st->n_layers + 1) * sizeof(*st->layers));
    struct rbx_blayer *l = &st->layers[st->n_layers++];
    memset(l, 0, sizeof(*l));
    l->out.blob_dirfd = -1;
    return l;
}

int rbx_stage_add_layer(struct rbx_build_state *b, struct rbx_bstage *st,
                        const struct rbx_layer_blob *blob, const char *step_text,
                        struct rbx_error **err)
{
    _cleanup_free_ char *dir = NULL;
    int r = rbx_store_layer_path(b->store, blob->diff_id, &dir, err);
    if (r < 0)
        return r == -ENOENT ? rbx_error_set(err, RBX_ERR_INTERNAL, ENOENT,
                                            "layer %s is not in the cache", blob->diff_id)
                            : r;
    struct rbx_blayer *l = push_layer(st);
    memcpy(l->out.digest, blob->digest, sizeof(l->out.digest));
    memcpy(l->out.diff_id, blob->diff_id, sizeof(l->out.diff_id));
    snprintf(l->out.media_type, sizeof(l->out.media_type), "%s",
             "application/vnd.oci.image.layer.v1.tar+gzip");
    l->out.size = blob->size;
    l->out.blob_dirfd = rbx_store_blob_dirfd(b->store);
    l->dir = TAKE_PTR(dir);
    (void)step_text;
    l->step = rbx_xasprintf("%s:%u %s", b->df_name, b->cur.line, b->cur.text);
    return 0;
}

/* ---- images named by FROM, --from and from=
 * ------------------------------------------------------ */

static int open_image(struct rbx_build_state *b, const char *name,
                      const struct rbx_platform *platform, struct rbx_ctx_image **out,
                      struct rbx_error **err)
{
    for (size_t i = 0; i < b->n_images; i++)
        if (strcmp(b->images[i].name, name) == 0) {
            *out = &b->images[i];
            return 0;
        }
    /* A build context names an image for a short name; otherwise the name is a reference. */
    const char *ref = NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; b->opts->build_contexts && b->opts->build_contexts[i]; i++) {
        const char *c = b->opts->build_contexts[i];
        if (strncmp(c, name, nlen) == 0 && c[nlen] == '=')
            ref = c + nlen + 1;
    }
    /* A name without a transport is docker's: a registry image, docker:// here. */
    _cleanup_free_ char *docker = NULL;
    if (!ref) {
        struct rbx_ref parsed;
        if (rbx_ref_parse(name, &parsed, NULL) == 0) {
            rbx_ref_clear(&parsed);
            ref = name;
        } else {
            docker = rbx_xasprintf("docker://%s", name);
            ref = docker;
        }
    }
    struct rbx_open_opts oo = {
        .platform = platform, .pull = b->opts->pull, .registry = b->opts->registry};
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    int r = rbx_image_open(b->store, ref, &oo, &img, err);
    if (r < 0 && docker && err && *err) {
        char *m = rbx_xasprintf("%s (a local image can stand for it: --build-context "
                                "%s=oci:DIR:TAG)",
                                (*err)->message, name);
        free((*err)->message);
        (*err)->message = m;
    }
    if (r < 0)
        return r;
    struct rbx_unpack_stats stats;
    if ((r = rbx_image_unpack(b->store, img, NULL, &stats, err)) < 0)
        return r;
    _cleanup_strv_ char **dirs = NULL;
    if ((r = rbx_image_layer_dirs(b->store, img, &dirs, err)) < 0)
        return r;
    b->images = rbx_xrealloc(b->images, (b->n_images + 1) * sizeof(*b->images));
    struct rbx_ctx_image *ci = &b->images[b->n_images++];
    ci->name = rbx_xstrdup(name);
    ci->img = TAKE_PTR(img);
    ci->dirs = TAKE_PTR(dirs);
    *out = ci;
    return 0;
}

int rbx_build_source_view(struct rbx_build_state *b, const char *from, struct rbx_view **view,
                          char *key, struct rbx_error **err)
{
    ssize_t idx = rbx_dockerfile_find_stage(b->df, from);
    _cleanup_strv_ char **dirs = NULL;
    if (idx >= 0) {
        struct rbx_bstage *src = &b->stages[idx];
        if (!src->built)
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "cannot copy from stage \"%s\": it needs to be defined before "
                                 "the current stage",
                                 from);
        dirs = rbx_stage_layer_dirs(src);
        memcpy(key, src->chain, RBX_DIGEST_LEN + 1);
    } else {
        struct rbx_ctx_image *ci;
        int r = open_image(b, from, &b->platform, &ci, err);
        if (r < 0)
            return r;
        dirs = rbx_strv_copy(ci->dirs);
        snprintf(key, RBX_DIGEST_LEN + 1, "%s", ci->img->config_digest);
    }
    return rbx_view_new(dirs, true, NULL, view, err);
}

/* FROM: the stage starts as the image, the earlier stage or nothing. */
static int stage_from(struct rbx_build_state *b, struct rbx_bstage *st, const char *image,
                      const char *platform_s, struct rbx_error **err)
{
    st->config = json_object();
    st->history = json_array();
    st->workdir = rbx_xstrdup("/");
    st->platform = b->platform;
    if (platform_s && *platform_s) {
        int r = rbx_platform_parse(platform_s, &st->platform, err);
        if (r < 0)
            return r;
    }
    if (strcasecmp(image, "scratch") == 0) {
        rbx_strv_push(&st->cfg_env, DEFAULT_PATH);
        st->state_env = rbx_strv_copy(st->cfg_env);
        rbx_sha256_buf("scratch", 7, st->chain);
        return 0;
    }
    ssize_t idx = rbx_dockerfile_find_stage(b->df, image);
    if (idx >= 0 && (size_t)idx < st->index && b->df->stages[idx].from.from.name) {
        const struct rbx_bstage *base = &b->stages[idx];
        for (size_t i = 0; i < base->n_layers; i++) {
            struct rbx_blayer *l = push_layer(st);
            l->out = base->layers[i].out;
            l->dir = rbx_xstrdup(base->layers[i].dir);
            l->links_dir = base->layers[i].links_dir ? rbx_xstrdup(base->layers[i].links_dir) : NULL;
            l->step = rbx_xstrdup(base->layers[i].step);
        }
        json_decref(st->config);
        json_decref(st->history);
        st->config = json_deep_copy(base->config);
        json_object_del(st->config, "OnBuild"); /* triggers do not carry over */
        st->history = json_deep_copy(base->history);
        st->cfg_env = rbx_strv_copy(base->cfg_env);
        st->state_env = rbx_strv_copy(base->state_env);
        st->args = rbx_strv_copy(base->args);
        free(st->workdir);
        st->workdir = rbx_xstrdup(base->workdir);
        st->user = base->user ? rbx_xstrdup(base->user) : NULL;
        st->shell = rbx_strv_copy(base->shell);
        st->platform = base->platform;
        st->author = base->author ? rbx_xstrdup(base->author) : NULL;
        memcpy(st->chain, base->chain, sizeof(st->chain));
        return 0;
    }
    struct rbx_ctx_image *ci;
    int r = open_image(b, image, &st->platform, &ci, err);
    if (r < 0)
        return r;
    const struct rbx_image *img = ci->img;
    json_t *cfg = json_object_get(img->config_json, "config");
    if (json_is_object(cfg)) {
        json_decref(st->config);
        st->config = json_deep_copy(cfg);
    }
    json_t *onbuild = json_object_get(st->config, "OnBuild");
    if (json_array_size(onbuild) > 0)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "base image %s has ONBUILD triggers, which reprobox does not run",
                             image);
    json_object_del(st->config, "OnBuild");
    json_t *hist = json_object_get(img->config_json, "history");
    if (json_is_array(hist)) {
        json_decref(st->history);
        st->history = json_deep_copy(hist);
    }
    st->cfg_env = rbx_strv_copy(img->config.env);
    if (!st->cfg_env)
        st->cfg_env = rbx_xcalloc(1, sizeof(char *));
    st->state_env = rbx_strv_copy(st->cfg_env);
    if (img->config.working_dir) {
        free(st->workdir);
        st->workdir = rbx_xstrdup(img->config.working_dir);
    }
    st->user = img->config.user ? rbx_xstrdup(img->config.user) : NULL;
    _cleanup_strv_ char **shell = NULL;
    (void)rbx_json_get_strv(st->config, "Shell", "config", &shell, NULL);
    st->shell = TAKE_PTR(shell);
    if (img->config.os)
        snprintf(st->platform.os, sizeof(st->platform.os), "%s", img->config.os);
    if (img->config.architecture)
        snprintf(st->platform.architecture, sizeof(st->platform.architecture), "%s",
                 img->config.architecture);
    snprintf(st->platform.variant, sizeof(st->platform.variant), "%s",
             img->config.variant ? img->config.variant : "");
    json_t *author = json_object_get(img->config_json, "author");
    if (json_is_string(author))
        st->author = rbx_xstrdup(json_string_value(author));
    for (size_t i = 0; i < img->n_layers; i++) {
        struct rbx_blayer *l = push_layer(st);
        snprintf(l->out.digest, sizeof(l->out.digest), "%s", img->layers[i].digest);
        snprintf(l->out.diff_id, sizeof(l->out.diff_id), "%s", img->layers[i].diff_id);
        snprintf(l->out.media_type, sizeof(l->out.media_type), "%s", img->layers[i].media_type);
        l->out.size = img->layers[i].size;
        l->out.blob_dirfd = img->blob_dirfd;
        l->step = rbx_xasprintf("base image layer %zu", i + 1);
        if ((r = rbx_image_layer_dir(b->store, img, i, &l->dir, &l->links_dir, err)) < 0)
            return r;
    }
    /* The base is known by its config: every layer's diff_id and the whole config. */
    rbx_sha256_buf(img->config_digest, strlen(img->config_digest), st->chain);
    return 0;
}

/* ---- build args and the global ARGs
 * -------------------------------------------------------------- */

static const char *const proxy_args[] = {
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
    "ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

static int setup_args(struct rbx_build_state *b, struct rbx_error **err)
{
    for (size_t i = 0; b->opts->build_args && b->opts->build_args[i]; i++) {
        const char *a = b->opts->build_args[i];
        if (!*a || *a == '=')
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--build-arg \"%s\": no name", a);
        if (strchr(a, '=')) {
            rbx_env_set(&b->build_args, a);
        } else {
            const char *v = rbx_env_get(b->opts->caller_env, a);
            if (v) {
                _cleanup_free_ char *kv = rbx_xasprintf("%s=%s", a, v);
                rbx_env_set(&b->build_args, kv);
            }
        }
    }
    for (size_t i = 0; i < RBX_ARRAY_SIZE(proxy_args); i++)
        if (rbx_env_get(b->build_args, proxy_args[i]))
            rbx_strv_push(&b->used_args, proxy_args[i]);

    /* The platform ARGs BuildKit defines in the global scope. */
    const struct rbx_platform *p = &b->platform;
    char plat[100];
    snprintf(plat, sizeof(plat), "%s/%s%s%s", p->os, p->architecture, p->variant[0] ? "/" : "",
             p->variant);
    const char *auto_args[][2] = {
        {"BUILDPLATFORM", plat},         {"BUILDOS", p->os},
        {"BUILDARCH", p->architecture},  {"BUILDVARIANT", p->variant},
        {"TARGETPLATFORM", plat},        {"TARGETOS", p->os},
        {"TARGETARCH", p->architecture}, {"TARGETVARIANT", p->variant},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(auto_args); i++) {
        const char *given = rbx_env_get(b->build_args, auto_args[i][0]);
        _cleanup_free_ char *kv =
            rbx_xasprintf("%s=%s", auto_args[i][0], given ? given : auto_args[i][1]);
        rbx_env_set(&b->global_env, kv);
        rbx_strv_push(&b->global_args, auto_args[i][0]);
        if (given)
            rbx_strv_push(&b->used_args, auto_args[i][0]);
    }
    for (size_t i = 0; i < b->df->n_global_args; i++) {
        const struct rbx_df_instr *in = &b->df->global_args[i];
        for (size_t k = 0; k < in->kv.n_pairs; k++) {
            const char *key = in->kv.pairs[k].key;
            const char *given = rbx_env_get(b->build_args, key);
            _cleanup_free_ char *value = NULL;
            if (given) {
                value = rbx_xstrdup(given);
            } else if (in->kv.pairs[k].value) {
                int r = rbx_df_expand_word(in->kv.pairs[k].value, b->df->escape,
                                           (rbx_df_lookup_fn)rbx_df_lookup_env, b->global_env,
                                           &value, err);
                if (r < 0)
                    return rbx_error_wrap(err, "%s:%u", b->df_name, in->line);
            }
            rbx_strv_push(&b->global_args, key);
            rbx_strv_push(&b->used_args, key);
            if (value) {
                _cleanup_free_ char *kv = rbx_xasprintf("%s=%s", key, value);
                rbx_env_set(&b->global_env, kv);
            }
        }
    }
    return 0;
}

/* ---- which stages the target needs ----------------------------------------------------------- */

static int expand_from(struct rbx_build_state *b, const struct rbx_df_stage *s, char **image,
                       char **platform, struct rbx_error **err)
{
    struct rbx_df_instr ex;
    int r = rbx_df_instr_expand(&s->from, b->df->escape, (rbx_df_lookup_fn)rbx_df_lookup_env,
                                b->global_env, &ex, err);
    if (r < 0)
        return rbx_error_wrap(err, "%s:%u", b->df_name, s->from.line);
    *image = rbx_xstrdup(ex.from.image);
    *platform = ex.from.platform ? rbx_xstrdup(ex.from.platform) : NULL;
    rbx_df_instr_clear(&ex);
    return 0;
}

static int mark_needed(struct rbx_build_state *b, size_t i, unsigned depth, struct rbx_error **err)
{
    struct rbx_bstage *st = &b->stages[i];
    if (st->needed)
        return 0;
    st->needed = true;
    if (depth > b->n_stages)
        return rbx_error_set(err, RBX_ERR_MALFORMED, ELOOP,
                             "stages depend on each other in a loop");
    const struct rbx_df_stage *s = st->df;
    _cleanup_free_ char *image = NULL, *platform = NULL;
    int r = expand_from(b, s, &image, &platform, err);
    if (r < 0)
        return r;
    ssize_t dep = rbx_dockerfile_find_stage(b->df, image);
    if (dep >= 0 && (size_t)dep < i && b->df->stages[dep].from.from.name &&
        (r = mark_needed(b, (size_t)dep, depth + 1, err)) < 0)
        return r;
    for (size_t k = 0; k < s->n_instrs; k++) {
        const struct rbx_df_instr *in = &s->instrs[k];
        const char *froms[64];
        size_t n = 0;
        if ((in->kind == RBX_DF_COPY) && in->copy.from)
            froms[n++] = in->copy.from;
        if (in->kind == RBX_DF_RUN)
            for (size_t m = 0; m < in->run.n_mounts && n < RBX_ARRAY_SIZE(froms); m++)
                if (in->run.mounts[m].from)
                    froms[n++] = in->run.mounts[m].from;
        for (size_t f = 0; f < n; f++) {
            ssize_t d = rbx_dockerfile_find_stage(b->df, froms[f]);
            if (d < 0)
                continue; /* an image */
            if ((size_t)d >= i)
                return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                     "%s:%u: cannot copy from stage \"%s\": it needs to be "
                                     "defined before the current stage",
                                     b->df_name, in->line, froms[f]);
            if ((r = mark_needed(b, (size_t)d, depth + 1, err)) < 0)
                return r;
        }
    }
    return 0;
}

/* ---- one stage, step by step
 * ---------------------------------------------------------------------- */

static void step_event(struct rbx_build_state *b, enum rbx_step_state state)
{
    b->cur.state = state;
    b->cur.duration_ns = state == RBX_STEP_START ? 0 : rbx_now_ns() - b->cur_start;
    if (b->opts->events.step)
        b->opts->events.step(b->opts->events.userdata, &b->cur);
    if (state == RBX_STEP_START)
        return;
    const char *status = state == RBX_STEP_CACHED   ? "cached"
                         : state == RBX_STEP_FAILED ? "failed"
                                                    : "done";
    json_array_append_new(b->res->steps,
                          json_pack("{s:s, s:i, s:i, s:i, s:s, s:s, s:I}", "stage", b->cur.stage,
                                    "index", b->cur.index, "total", b->cur.total, "line",
                                    b->cur.line, "instruction", b->cur.text, "status", status,
                                    "duration_ms", (json_int_t)(b->cur.duration_ns / 1000000)));
    b->res->n_steps++;
    if (state == RBX_STEP_CACHED)
        b->res->n_cached++;
}

static void failure_fill(struct rbx_build_state *b, const struct rbx_bstage *st,
                         const struct rbx_error *e)
{
    struct rbx_build_failure *f = &b->res->failure;
    b->res->failed = true;
    if (!f->stage) {
        f->stage = rbx_xstrdup(st->name);
        f->line = b->cur.line;
        f->index = b->cur.index;
        f->total = b->cur.total;
        f->instruction = rbx_xstrdup(b->cur.text);
        f->duration_ns = rbx_now_ns() - b->cur_start;
    }
    if (!f->command)
        f->exit_code = -1;
    free(f->message);
    f->message = rbx_xstrdup(e ? e->message : "failed");
}

static int run_instruction(struct rbx_build_state *b, struct rbx_bstage *st,
                           const struct rbx_df_instr *in, struct rbx_error **err)
{
    if (in->kind == RBX_DF_ARG || in->kind == RBX_DF_ONBUILD)
        return rbx_instr_config(b, st, in, err);
    struct rbx_df_instr ex;
    int r = rbx_df_instr_expand(in, b->df->escape, (rbx_df_lookup_fn)rbx_df_lookup_env,
                                st->state_env, &ex, err);
    if (r < 0)
        return r;
    switch (in->kind) {
    case RBX_DF_RUN: r = rbx_step_run(b, st, &ex, in, err); break;
    case RBX_DF_COPY:
    case RBX_DF_ADD: r = rbx_step_copy(b, st, &ex, err); break;
    case RBX_DF_WORKDIR:
        r = rbx_instr_config(b, st, &ex, err);
        if (r == 0)
            r = rbx_step_workdir(b, st, err);
        break;
    default: r = rbx_instr_config(b, st, &ex, err); break;
    }
    rbx_df_instr_clear(&ex);
    return r;
}

static int build_stage(struct rbx_build_state *b, struct rbx_bstage *st, struct rbx_error **err)
{
    const struct rbx_df_stage *s = st->df;
    st->building = true;
    b->cur_stage = st;
    b->cur = (struct rbx_build_step){
        .stage = st->name, .index = 1, .total = (unsigned)s->n_instrs + 1, .line = s->from.line};
    _cleanup_free_ char *image = NULL, *platform = NULL;
    int r = expand_from(b, s, &image, &platform, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *text = rbx_xasprintf("FROM %s", image);
    b->cur.text = text;
    b->cur_instr = &s->from;
    b->cur_start = rbx_now_ns();
    step_event(b, RBX_STEP_START);
    r = stage_from(b, st, image, platform, err);
    if (r < 0) {
        rbx_error_wrap(err, "%s:%u: FROM %s", b->df_name, s->from.line, image);
        failure_fill(b, st, err ? *err : NULL);
        step_event(b, RBX_STEP_FAILED);
        return r;
    }
    step_event(b, RBX_STEP_DONE);

    for (size_t k = 0; k < s->n_instrs; k++) {
        const struct rbx_df_instr *in = &s->instrs[k];
        b->cur.index = (unsigned)k + 2;
        b->cur.line = in->line;
        /* As docker shows a step: variables it knows substituted, quotes and unknown ones
         * left as written. */
        _cleanup_free_ char *shown = NULL;
        struct rbx_df_lex_opts lo = {.raw_quotes = true, .raw_escapes = true, .skip_unset = true};
        if (rbx_df_lex(in->original, b->df->escape, &lo, (rbx_df_lookup_fn)rbx_df_lookup_env,
                       st->state_env, &shown, NULL, NULL) < 0)
            shown = NULL;
        b->cur.text = shown ? shown : in->original;
        b->cur_instr = in;
        b->cur_start = rbx_now_ns();
        b->cur.state = RBX_STEP_START;
        step_event(b, RBX_STEP_START);
        r = run_instruction(b, st, in, err);
        if (r < 0) {
            if (err && *err && !strstr((*err)->message, b->df_name))
                rbx_error_wrap(err, "%s:%u: %s", b->df_name, in->line, in->original);
            failure_fill(b, st, err ? *err : NULL);
            step_event(b, RBX_STEP_FAILED);
            if (!b->opts->no_failure_record)
                (void)rbx_failed_record_write(b, st, NULL);
            return r;
        }
        /* rbx_step_* reported CACHED themselves when they hit */
        if (b->cur.state == RBX_STEP_START)
            step_event(b, RBX_STEP_DONE);
    }
    st->built = true;
    st->building = false;
    return 0;
}

/* ---- the whole build
 * ------------------------------------------------------------------------------ */

static void state_clear(struct rbx_build_state *b)
{
    for (size_t i = 0; i < b->n_stages; i++)
        stage_clear(&b->stages[i]);
    free(b->stages);
    for (size_t i = 0; i < b->n_images; i++) {
        free(b->images[i].name);
        rbx_image_free(b->images[i].img);
        rbx_strv_free(b->images[i].dirs);
    }
    free(b->images);
    rbx_dockerfile_free(b->df);
    free(b->df_name);
    free(b->ctx_path);
    rbx_ignore_free(b->ignore);
    rbx_view_free(b->ctx);
    rbx_strv_free(b->build_args);
    rbx_strv_free(b->used_args);
    rbx_strv_free(b->global_env);
    rbx_strv_free(b->global_args);
}

static int read_context(struct rbx_build_state *b, struct rbx_error **err)
{
    const struct rbx_build_opts *o = b->opts;
    b->ctx_path = realpath(o->context ? o->context : ".", NULL);
    if (!b->ctx_path)
        return rbx_error_set_errno(err, RBX_ERR_NOT_FOUND, errno, "build context %s",
                                   o->context ? o->context : ".");
    _cleanup_free_ char *dfpath =
        o->dockerfile ? rbx_xstrdup(o->dockerfile) : rbx_xasprintf("%s/Dockerfile", b->ctx_path);
    b->df_name = rbx_xstrdup(o->dockerfile ? o->dockerfile : "Dockerfile");
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = rbx_read_file_at(AT_FDCWD, dfpath, RBX_DF_MAX_SIZE, &text, &len, err);
    if (r < 0)
        return r;
    if ((r = rbx_dockerfile_parse(text, len, b->df_name, &b->df, err)) < 0)
        return r;
    /* <Dockerfile>.dockerignore beside it wins over the context's .dockerignore, as BuildKit. */
    _cleanup_free_ char *ign_path = rbx_xasprintf("%s.dockerignore", dfpath);
    _cleanup_free_ char *ign = NULL;
    size_t ilen = 0;
    const char *ign_name = ign_path;
    if (rbx_read_file_at(AT_FDCWD, ign_path, RBX_DF_MAX_SIZE, &ign, &ilen, NULL) < 0) {
        free(ign_path);
        ign_path = rbx_xasprintf("%s/.dockerignore", b->ctx_path);
        ign_name = ".dockerignore";
        if (rbx_read_file_at(AT_FDCWD, ign_path, RBX_DF_MAX_SIZE, &ign, &ilen, NULL) < 0)
            ign = NULL;
    }
    if (ign && (r = rbx_ignore_parse(ign, ilen, ign_name, &b->ignore, err)) < 0)
        return r;
    char *dirs[] = {b->ctx_path, NULL};
    return rbx_view_new(dirs, false, b->ignore, &b->ctx, err);
}

static int write_outputs(struct rbx_build_state *b, const struct rbx_bstage *st,
                         struct rbx_error **err)
{
    struct rbx_build_result *res = b->res;
    res->config = rbx_stage_config_json(b, st);
    rbx_sha256_buf(res->config, strlen(res->config), res->config_digest);
    res->layers = rbx_xcalloc(st->n_layers + 1, sizeof(*res->layers));
    res->layer_steps = rbx_xcalloc(st->n_layers + 1, sizeof(char *));
    struct rbx_out_layer *ls = rbx_xcalloc(st->n_layers + 1, sizeof(*ls));
    for (size_t i = 0; i < st->n_layers; i++) {
        ls[i] = st->layers[i].out;
        res->layers[i] = st->layers[i].out;
        res->layers[i].blob_dirfd = fcntl(st->layers[i].out.blob_dirfd, F_DUPFD_CLOEXEC, 3);
        res->layer_steps[i] = rbx_xstrdup(st->layers[i].step);
        res->n_layers = i + 1;
    }
    _cleanup_free_ char *manifest =
        rbx_manifest_build(res->config_digest, (int64_t)strlen(res->config), ls, st->n_layers);
    rbx_sha256_buf(manifest, strlen(manifest), res->manifest_digest);
    int r = 0;
    for (size_t i = 0; r == 0 && b->opts->tags && b->opts->tags[i]; i++) {
        char md[RBX_DIGEST_LEN + 1];
        r = rbx_image_write(b->opts->tags[i], res->config, strlen(res->config), ls, st->n_layers,
                            &st->platform, md, err);
        if (r == 0)
            rbx_strv_push(&res->written, b->opts->tags[i]);
    }
    free(ls);
    return r;
}

/* docker's warning for build args no ARG asked for */
static void warn_unused_args(struct rbx_build_state *b)
{
    _cleanup_strv_ char **unused = NULL;
    for (size_t i = 0; b->build_args && b->build_args[i]; i++) {
        _cleanup_free_ char *name = rbx_xstrndup(b->build_args[i], strcspn(b->build_args[i], "="));
        bool used = false;
        for (size_t k = 0; b->used_args && b->used_args[k]; k++)
            used |= strcmp(b->used_args[k], name) == 0;
        if (!used)
            rbx_strv_push(&unused, name);
    }
    if (unused) {
        _cleanup_free_ char *list = rbx_xstrdup("");
        for (size_t i = 0; unused[i]; i++) {
            char *l = rbx_xasprintf("%s%s%s", list, i ? " " : "", unused[i]);
            free(list);
            list = l;
        }
        rbx_build_warn(b, "one or more build args were not consumed: [%s]", list);
    }
}

int rbx_build(struct rbx_store *store, const struct rbx_build_opts *opts,
              struct rbx_build_result *res, struct rbx_error **err)
{
    memset(res, 0, sizeof(*res));
    res->steps = json_array();
    res->network = opts->network;
    uint64_t t0 = rbx_now_ns();
    struct rbx_build_state b = {.store = store, .opts = opts, .res = res};
    if (opts->platform)
        b.platform = *opts->platform;
    else
        rbx_platform_host(&b.platform);
    int r = read_context(&b, err);
    if (r == 0)
        r = setup_args(&b, err);
    if (r < 0)
        goto out;

    b.n_stages = b.df->n_stages;
    b.stages = rbx_xcalloc(b.n_stages, sizeof(*b.stages));
    for (size_t i = 0; i < b.n_stages; i++) {
        b.stages[i].index = i;
        b.stages[i].df = &b.df->stages[i];
        b.stages[i].name = b.df->stages[i].from.from.name
                               ? rbx_xstrdup(b.df->stages[i].from.from.name)
                               : rbx_xasprintf("stage-%zu", i);
    }
    size_t target = b.n_stages - 1;
    if (opts->target) {
        ssize_t t = rbx_dockerfile_find_stage(b.df, opts->target);
        if (t < 0) {
            r = rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "target stage \"%s\" could not be found",
                              opts->target);
            goto out;
        }
        target = (size_t)t;
    }
    if ((r = mark_needed(&b, target, 0, err)) < 0)
        goto out;
    for (size_t i = 0; i <= target && r == 0; i++)
        if (b.stages[i].needed)
            r = build_stage(&b, &b.stages[i], err);
    if (r < 0)
        goto out;

    warn_unused_args(&b);
    r = write_outputs(&b, &b.stages[target], err);
out:
    res->duration_ns = rbx_now_ns() - t0;
    state_clear(&b);
    return r;
}
