/* builder-internal.h — what builder/'s own files share: the shell lexer's modes (heredoc
 * detection lexes lines raw) and Go's CSV field splitting for RUN --mount. */
#pragma once

#include "builder/builder.h"

#include <sys/stat.h>

/* BuildKit's Lex switches: keep quotes and escapes in the output, leave unset variables as
 * written, treat quotes as ordinary characters (COPY heredoc bodies). */
struct rbx_df_lex_opts {
    bool raw_quotes, raw_escapes, skip_unset, skip_quotes;
};

/* Lex `word`: the substituted text into *result and/or the split words into *words (either may
 * be NULL). `lookup` may be NULL (everything unset). */
int rbx_df_lex(const char *word, char escape, const struct rbx_df_lex_opts *opts,
               rbx_df_lookup_fn lookup, void *userdata, char **result, char ***words,
               struct rbx_error **err);

/* Split one CSV record as Go's encoding/csv reads it (',' separated, '"' quoting, "" inside
 * quotes for a quote). Errors name the problem; the caller adds context. */
int rbx_df_csv_split(const char *s, char ***fields, struct rbx_error **err);

/* UTF-8 helpers shared by the lexer and the ignore matcher: decode one rune at s[i] (invalid
 * bytes decode to 0x80000000 | byte, length 1). */
uint32_t rbx_utf8_decode(const unsigned char *s, size_t len, size_t i, size_t *n);
bool rbx_rune_is_space(uint32_t r);

/* Make room for element `k` of an array grown one element at a time, k = 0, 1, 2...: the
 * capacity doubles at powers of two, so n pushes cost O(n) even where realloc always copies. */
static inline void *rbx_grow(void *p, size_t k, size_t size)
{
    if (k >= 4 && (k & (k - 1)) != 0)
        return p;
    return rbx_xrealloc(p, (k < 4 ? 4 : 2 * k) * size);
}

/* A NULL-terminated string vector that knows its length. */
struct rbx_strvec {
    char **v;
    size_t n;
};

static inline void rbx_strvec_push_take(struct rbx_strvec *sv, char *s)
{
    sv->v = rbx_grow(sv->v, sv->n + 1, sizeof(char *));
    sv->v[sv->n++] = s;
    sv->v[sv->n] = NULL;
}

/* The vector (never NULL), leaving sv empty. */
static inline char **rbx_strvec_take(struct rbx_strvec *sv)
{
    char **v = sv->v ? sv->v : (char **)rbx_xcalloc(1, sizeof(char *));
    sv->v = NULL;
    sv->n = 0;
    return v;
}

/* ---- a read-only view of a rootfs made of layer dirs (view.c) -------------------------------- */

struct rbx_view;
/* A resolved entry. Directories carry their dir in every layer that contributes to them. */
struct rbx_vnode {
    int fd; /* O_PATH, O_NOFOLLOW: the entry in its topmost layer */
    struct stat st;
    size_t layer;   /* that layer, counted from the top (0) */
    int *dirs;      /* a directory: its O_PATH fds, top layer first */
    size_t *layers; /* ... and which layer each is */
    size_t n_dirs;
    char *path; /* canonical, relative to the root ("" for the root) */
};
/* `dirs` lowest first (as images list layers). `overlay`: 0/0 character devices are whiteouts and
 * user.overlay.opaque directories hide what is below. `ignore` (borrowed, may be NULL) hides the
 * context's excluded paths. */
int rbx_view_new(char *const *dirs, bool overlay, const struct rbx_ignore *ignore,
                 struct rbx_view **out, struct rbx_error **err);
struct rbx_view *rbx_view_free(struct rbx_view *v);
RBX_DEFINE_CLEANUP(struct rbx_view, rbx_view_free)
/* Resolve `path` with chroot semantics (absolute symlinks from the view's root, ".." stops
 * there). -ENOENT / -ENOTDIR without err when absent. */
int rbx_view_lookup(const struct rbx_view *v, const char *path, bool follow_last,
                    struct rbx_vnode *out, struct rbx_error **err);
/* The names in a directory node, sorted, as a container would list them. */
int rbx_view_list(const struct rbx_view *v, const struct rbx_vnode *dir, char ***names,
                  struct rbx_error **err);
/* One entry of a directory node (not followed); -ENOENT when absent. */
int rbx_view_child(const struct rbx_view *v, const struct rbx_vnode *dir, const char *name,
                   struct rbx_vnode *out, struct rbx_error **err);
/* The root fd of a layer (0 = top), borrowed. */
int rbx_view_root_fd(const struct rbx_view *v, size_t layer);
/* Open a regular file node for reading. */
int rbx_vnode_open(const struct rbx_vnode *n, struct rbx_error **err);
void rbx_vnode_clear(struct rbx_vnode *n);
/* A small regular file of the view (followed), e.g. /etc/passwd. */
int rbx_view_read_file(const struct rbx_view *v, const char *path, size_t max, char **out,
                       size_t *len, struct rbx_error **err);
/* filepath.Clean("/" + p) without the leading "/": ".." at the top stays at the top. */
char *rbx_path_clean_clamped(const char *in);

/* ---- the build's state (build.c), shared by the steps ---------------------------------------- */

struct rbx_blayer {
    struct rbx_out_layer out; /* blob_dirfd borrowed from an image or the store */
    char *dir;                /* unpacked in the cache */
    char *links_dir;          /* copies of files it hardlinks from lower layers, or NULL */
    char *step;               /* what made it, for reports */
};

struct rbx_bstage {
    size_t index;
    const struct rbx_df_stage *df;
    char *name; /* as shown */
    bool needed, built, building;
    struct rbx_blayer *layers;
    size_t n_layers;
    struct rbx_image *base; /* kept open: its blobs are the stage's first layers */
    json_t *config;         /* the image config's "config" object */
    json_t *history;
    char **cfg_env;   /* Env */
    char **state_env; /* what RUN and substitution see: Env and the ARGs, the last set winning */
    char **args;      /* the ARGs in scope, by name */
    char *workdir;    /* absolute, "/" by default */
    char *user;       /* NULL: root */
    char **shell;     /* NULL: ["/bin/sh", "-c"] */
    bool cmd_set;     /* CMD given in this stage: ENTRYPOINT leaves it */
    struct rbx_platform platform;
    char chain[RBX_DIGEST_LEN + 1]; /* the cache key of the rootfs so far */
    char *author;
};

struct rbx_ctx_image {
    char *name; /* the reference or build-context name as written */
    struct rbx_image *img;
    char **dirs;
};

struct rbx_build_state {
    struct rbx_store *store;
    const struct rbx_build_opts *opts;
    struct rbx_build_result *res;
    struct rbx_dockerfile *df;
    char *df_name;  /* "Dockerfile", as messages name it */
    char *ctx_path; /* absolute */
    struct rbx_ignore *ignore;
    struct rbx_view *ctx; /* the context, .dockerignore applied */
    char **build_args;    /* "K=V" given on the command line */
    char **used_args;     /* names consumed by some ARG */
    char **global_env;    /* the global ARGs' values ("K=V"), for FROM */
    char **global_args;   /* their names */
    struct rbx_bstage *stages;
    size_t n_stages;
    struct rbx_ctx_image *images;
    size_t n_images;
    struct rbx_platform platform;
    /* the step running now, for events and failures */
    struct rbx_build_step cur;
    const struct rbx_bstage *cur_stage;
    const struct rbx_df_instr *cur_instr;
    uint64_t cur_start;
};

/* Seconds since the epoch as the builder stamps them (with --check's offset). */
int64_t rbx_build_now(const struct rbx_build_state *b);
void rbx_build_warn(struct rbx_build_state *b, const char *fmt, ...) RBX_PRINTF(2, 3);
/* The stage or image `--from`/`from=` names, as a view (borrowed; built on first use). */
int rbx_build_source_view(struct rbx_build_state *b, const char *from, struct rbx_view **view,
                          char *key, struct rbx_error **err);
/* Add a layer to the stage: the blob written, the tree adopted (or cached), history. */
int rbx_stage_add_layer(struct rbx_build_state *b, struct rbx_bstage *st,
                        const struct rbx_layer_blob *blob, const char *step_text,
                        struct rbx_error **err);
/* The stage's layer dirs, lowest first. */
char **rbx_stage_layer_dirs(const struct rbx_bstage *st);
void rbx_stage_history(struct rbx_build_state *b, struct rbx_bstage *st, const char *created_by,
                       bool empty_layer);

/* ---- instructions that only change the config (instr.c) -------------------------------------- */

/* ENV, LABEL, MAINTAINER, WORKDIR (the config part), USER, CMD, ENTRYPOINT, SHELL, EXPOSE,
 * VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, ARG; `in` is substituted already (ARG is not). */
int rbx_instr_config(struct rbx_build_state *b, struct rbx_bstage *st,
                     const struct rbx_df_instr *in, struct rbx_error **err);
/* The command a shell-form RUN/CMD/ENTRYPOINT runs: the stage's SHELL + the text. */
char **rbx_stage_shell_wrap(const struct rbx_bstage *st, const char *text);
/* The final image config (canonical JSON). */
char *rbx_stage_config_json(struct rbx_build_state *b, const struct rbx_bstage *st);
/* "1970-01-01T00:00:00Z" for a unix time. */
void rbx_rfc3339(int64_t t, char out[32]);

/* ---- the step cache (cache.c) ---------------------------------------------------------------- */

struct rbx_cache_hit {
    struct rbx_layer_blob blob;
    bool empty; /* the step made no change: no layer */
};
/* The key of a step: the stage's chain, the step, what it ran with, its inputs. `step` is a JSON
 * object the caller fills; the chain and the format version are added here. */
void rbx_cache_key(const struct rbx_bstage *st, json_t *step, int64_t epoch,
                   char out[RBX_DIGEST_LEN + 1]);
/* 1 on a hit whose blob and layer dir are still in the store, 0 on a miss. */
int rbx_cache_get(struct rbx_build_state *b, const char *key, struct rbx_cache_hit *hit);
int rbx_cache_put(struct rbx_build_state *b, const char *key, const struct rbx_cache_hit *hit,
                  struct rbx_error **err);
/* The store's builder dir (<store>/builder/<sub>), created. Caller frees. */
char *rbx_builder_dir(struct rbx_build_state *b, const char *sub, struct rbx_error **err);

/* ---- RUN (runstep.c) and COPY/ADD (copy.c) --------------------------------------------------- */

int rbx_step_run(struct rbx_build_state *b, struct rbx_bstage *st, const struct rbx_df_instr *in,
                 const struct rbx_df_instr *raw, struct rbx_error **err);
int rbx_step_copy(struct rbx_build_state *b, struct rbx_bstage *st, const struct rbx_df_instr *in,
                  struct rbx_error **err);
/* WORKDIR's directory, made as docker makes it (a layer when it was missing). */
int rbx_step_workdir(struct rbx_build_state *b, struct rbx_bstage *st, struct rbx_error **err);
/* Resolve "user[:group]" as COPY --chown does: names in the view's /etc/passwd and /etc/group,
 * numbers as they are, the group defaulting to the uid. */
int rbx_chown_resolve(const struct rbx_view *v, const char *spec, uid_t *uid, gid_t *gid,
                      struct rbx_error **err);
/* A `--chmod` value: octal, or symbolic (u+x,g-w,...) applied to `mode`. */
int rbx_chmod_parse(const char *spec, mode_t mode, bool is_dir, mode_t *out,
                    struct rbx_error **err);
/* Copy what `src` names in the view (a directory's contents, or one file) into dest_dir, as a
 * bind mount of it would show it; digest covers what was (or would be) copied. With a NULL
 * dest_dir only the digest is computed. */
int rbx_copy_materialize(struct rbx_build_state *b, const struct rbx_view *v, bool context,
                         const char *src, const char *dest_dir, char digest[RBX_DIGEST_LEN + 1],
                         struct rbx_error **err);
/* The environment RUN gets in the stage: Env and ARGs, PATH when missing, SOURCE_DATE_EPOCH,
 * TZ=UTC unless set, and the proxy build args. */
char **rbx_run_env(const struct rbx_build_state *b, const struct rbx_bstage *st);
/* Record the failed step for `reprobox shell --failed` (failed.c). */
int rbx_failed_record_write(struct rbx_build_state *b, const struct rbx_bstage *st,
                            struct rbx_error **err);
