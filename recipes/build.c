/* build.c — a recipe that says "build": the image is built with the builder into a scratch OCI
 * layout for the replay, and a command missing at run time is looked for in the Dockerfile's
 * other stages ("it was only in the build stage"). */
#include "builder/builder.h"
#include "recipes/recipes.h"

#include <ctype.h>
#include <fcntl.h>
#include <string.h>

/* RUN output on its way to the log, a line at a time, "build      | ...". */
struct build_log {
    int fd;
    char line[4096];
    size_t len;
};

static void log_flush(struct build_log *l)
{
    if (l->fd < 0 || !l->len)
        return;
    char out[sizeof(l->line) + 16];
    int n = snprintf(out, sizeof(out), "%-10s | %.*s\n", "build", (int)l->len, l->line);
    if (n > 0)
        (void)!write(l->fd, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
    l->len = 0;
}

static void on_output(void *userdata, const struct rbx_build_step *st, const char *data, size_t len)
{
    struct build_log *l = userdata;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' || l->len == sizeof(l->line)) {
            log_flush(l);
            if (data[i] == '\n')
                continue;
        }
        l->line[l->len++] = data[i];
    }
}

static void on_step(void *userdata, const struct rbx_build_step *st)
{
    struct build_log *l = userdata;
    if (l->fd < 0 || st->state != RBX_STEP_START)
        return;
    log_flush(l);
    dprintf(l->fd, "%-10s | [%s %u/%u] %s\n", "build", st->stage, st->index, st->total, st->text);
}

int rbx_recipe_build(struct rbx_store *store, const struct rbx_recipe *recipe, int log_fd,
                     char **scratch_dir, char **image_ref, struct rbx_error **err)
{
    const struct rbx_recipe_build *b = recipe->build;
    const char *tmp = getenv("TMPDIR");
    _cleanup_free_ char *dir =
        rbx_xasprintf("%s/reprobox-recipe-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s: build: a scratch directory",
                                   recipe->path);
    _cleanup_free_ char *tag = rbx_xasprintf("oci:%s/image:recipe", dir);
    char *tags[] = {tag, NULL};
    _cleanup_free_ char *dockerfile = rbx_xasprintf("%s/%s", b->context, b->dockerfile);
    struct build_log log = {.fd = log_fd};
    struct rbx_build_opts o = {
        .context = b->context,
        .dockerfile = dockerfile,
        .target = b->target,
        .build_args = b->args,
        .tags = tags,
        .network = RBX_NETWORK_HOST, /* docker build's default for RUN */
        .events = {.userdata = &log, .step = on_step, .output = on_output},
    };
    struct rbx_build_result res;
    memset(&res, 0, sizeof(res));
    int r = rbx_build(store, &o, &res, err);
    log_flush(&log);
    rbx_build_result_clear(&res);
    *scratch_dir = TAKE_PTR(dir);
    if (r < 0)
        return r;
    *image_ref = rbx_xstrdup(tag);
    return 0;
}

/* `name` as a word of `text`: not inside a longer name. */
static bool has_word(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)); p++) {
        bool start = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '-');
        char after = p[n];
        bool end = !(isalnum((unsigned char)after) || after == '_' || after == '-');
        if (start && end)
            return true;
    }
    return false;
}

char *rbx_recipe_build_stage_of(const struct rbx_recipe_build *b, const char *command)
{
    if (!b || !command || !*command)
        return NULL;
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", b->context, b->dockerfile);
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (rbx_read_file_at(AT_FDCWD, path, 4u << 20, &buf, &len, NULL) < 0)
        return NULL;
    _cleanup_(rbx_dockerfile_freep) struct rbx_dockerfile *df = NULL;
    if (rbx_dockerfile_parse(buf, len, b->dockerfile, &df, NULL) < 0 || !df->n_stages)
        return NULL;
    ssize_t target =
        b->target ? rbx_dockerfile_find_stage(df, b->target) : (ssize_t)df->n_stages - 1;
    for (size_t s = 0; s < df->n_stages; s++) {
        if ((ssize_t)s == target)
            continue;
        const struct rbx_df_stage *st = &df->stages[s];
        for (size_t i = 0; i < st->n_instrs; i++) {
            const struct rbx_df_instr *in = &st->instrs[i];
            if (!in->original || !has_word(in->original, command))
                continue;
            _cleanup_free_ char *name = st->from.from.name ? rbx_xstrdup(st->from.from.name)
                                                           : rbx_xasprintf("stage-%zu", s);
            size_t olen = strlen(in->original);
            return rbx_xasprintf("it was only in the build stage \"%s\" (%s:%u: %.*s%s)", name,
                                 b->dockerfile, in->line, (int)(olen > 60 ? 60 : olen),
                                 in->original, olen > 60 ? "..." : "");
        }
    }
    return NULL;
}
