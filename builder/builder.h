/* builder.h — the one public header of builder/: Dockerfiles parsed into stages of instructions
 * (BuildKit's grammar), Docker's variable substitution, and .dockerignore matching. */
#pragma once

#include "common/common.h"

/* ---- bounds: everything the Dockerfile controls is capped (STYLE.md §6) ---------------------- */

#define RBX_DF_MAX_SIZE (4u << 20)      /* whole file */
#define RBX_DF_MAX_LINE 65535u          /* one physical line, as BuildKit's scanner */
#define RBX_DF_MAX_INSTRUCTIONS 10000u  /* instructions, including ONBUILD triggers */
#define RBX_DF_MAX_HEREDOC (1u << 20)   /* one heredoc body */
#define RBX_DF_MAX_HEREDOCS 64u         /* heredocs on one instruction */
#define RBX_DF_MAX_EXPANSION (4u << 20) /* one substitution result */

/* ---- the parsed Dockerfile ------------------------------------------------------------------- */

enum rbx_df_kind {
    RBX_DF_FROM,
    RBX_DF_RUN,
    RBX_DF_CMD,
    RBX_DF_ENTRYPOINT,
    RBX_DF_SHELL,
    RBX_DF_COPY,
    RBX_DF_ADD,
    RBX_DF_ENV,
    RBX_DF_ARG,
    RBX_DF_LABEL,
    RBX_DF_MAINTAINER,
    RBX_DF_WORKDIR,
    RBX_DF_USER,
    RBX_DF_STOPSIGNAL,
    RBX_DF_EXPOSE,
    RBX_DF_VOLUME,
    RBX_DF_HEALTHCHECK,
    RBX_DF_ONBUILD,
};
/* "RUN", "COPY"...: the instruction as Docker prints it. */
const char *rbx_df_kind_name(enum rbx_df_kind kind);

/* RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK CMD: the exec (JSON) form is the array as written;
 * the shell form is one element, the text as written (continuations joined), which the
 * builder wraps in the stage's SHELL. Neither form is substituted: the shell does that. */
struct rbx_df_command {
    char **args;
    bool exec;
};

/* ENV, LABEL, ARG and MAINTAINER entries, as written (quotes still in place: substitution
 * removes them). `value` is NULL for an ARG without a default. */
struct rbx_df_pair {
    char *key;
    char *value;
};

/* `<<EOF` ... `EOF` attached to RUN, COPY or ADD. */
struct rbx_df_heredoc {
    char *name;    /* the delimiter with its quotes removed: also the file name for COPY */
    char *content; /* every line up to the delimiter, each with its newline, as written */
    unsigned fd;   /* "3<<EOF" gives 3; 0 when no descriptor is written */
    bool expand;   /* no part of the delimiter was quoted: COPY substitutes the body */
    bool chomp;    /* "<<-": leading tabs are stripped (rbx_df_heredoc_body; already done in
                    * what rbx_df_instr_expand gives for COPY and ADD) */
};
/* The body a COPY or ADD writes, unsubstituted: content with leading tabs removed when chomp
 * is set. */
char *rbx_df_heredoc_body(const struct rbx_df_heredoc *h);

enum rbx_df_mount_type {
    RBX_DF_MOUNT_BIND = 0,
    RBX_DF_MOUNT_CACHE,
    RBX_DF_MOUNT_TMPFS,
    RBX_DF_MOUNT_SECRET,
    RBX_DF_MOUNT_SSH,
};

/* One RUN --mount, parsed from its CSV. Strings are NULL when not given. */
struct rbx_df_mount {
    enum rbx_df_mount_type type;
    char *from, *source, *target, *id, *sharing, *env, *size;
    bool readonly; /* defaults: read-only for bind, secret and ssh; writable for cache, tmpfs */
    bool required; /* secret and ssh only */
    bool has_mode, has_uid, has_gid;
    unsigned mode, uid, gid;
};
void rbx_df_mount_clear(struct rbx_df_mount *m);

/* A lookup for substitution: the value of `name`, or NULL when it is unset. The returned
 * string must stay valid until the call that made the lookup returns. */
typedef const char *(*rbx_df_lookup_fn)(void *userdata, const char *name);
/* A lookup over a "K=V" vector (the last entry of a name wins, as in BuildKit). */
const char *rbx_df_lookup_env(void *env_strv, const char *name);

/* Parse one --mount value (Go's CSV, "key=value" fields, BuildKit's keys and rules). With a
 * lookup, each value is substituted first, as the builder does when it runs the step; without,
 * values are kept as written and only those without a '$' are checked. `from` never takes a
 * variable. */
int rbx_df_mount_parse(const char *spec, char escape, rbx_df_lookup_fn lookup, void *userdata,
                       struct rbx_df_mount *out, struct rbx_error **err);

struct rbx_df_instr {
    enum rbx_df_kind kind;
    unsigned line, column; /* of the instruction word, 1-based */
    unsigned end_line;     /* last physical line, heredoc bodies included */
    char *original;        /* the logical line: continuations joined, comment lines dropped */
    struct rbx_df_heredoc *heredocs; /* RUN, COPY, ADD in shell form, in order of appearance */
    size_t n_heredocs;
    union {
        struct {            /* FROM [--platform=P] image [AS name] */
            char *image;    /* as written: substituted with the global ARGs */
            char *name;     /* lowercased stage name, NULL when unnamed */
            char *platform; /* as written, NULL when absent */
        } from;
        struct { /* RUN [--mount=...]... [--network=...] [--security=...] [--device=...] cmd */
            struct rbx_df_command cmd;
            char **mount_specs;          /* every --mount value as written */
            struct rbx_df_mount *mounts; /* the same, parsed (values not substituted) */
            size_t n_mounts;
            char *network;  /* "default", "none", "host"; NULL when not given */
            char *security; /* "sandbox", "insecure"; NULL when not given */
            char **devices; /* --device values */
        } run;
        struct rbx_df_command cmd; /* CMD, ENTRYPOINT, SHELL (always exec form) */
        struct {                   /* COPY and ADD */
            char **srcs;           /* path sources, as written; heredoc sources are in heredocs */
            char *dest;
            bool exec;  /* written as a JSON array */
            char *from; /* COPY --from: stage name, stage index or image; never substituted */
            char *chown, *chmod;
            bool link;
            char **excludes;                       /* --exclude patterns, never substituted */
            bool parents;                          /* COPY --parents */
            char *checksum;                        /* ADD --checksum */
            bool keep_git_dir, unpack, unpack_set; /* ADD --keep-git-dir, --unpack */
        } copy;
        struct { /* ENV, LABEL, ARG, MAINTAINER (one pair, key "maintainer", kept as a label) */
            struct rbx_df_pair *pairs;
            size_t n_pairs;
        } kv;
        char *arg; /* WORKDIR, USER, STOPSIGNAL: the rest of the line, as written */
        struct {   /* EXPOSE (sorted as Docker sorts them), VOLUME */
            char **words;
            bool exec; /* VOLUME written as a JSON array */
        } list;
        struct { /* HEALTHCHECK NONE | [--interval=..] ... CMD command */
            bool none;
            struct rbx_df_command cmd;
            uint64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns; /* 0: unset */
            unsigned retries;                                                     /* 0: unset */
        } health;
        struct {              /* ONBUILD: recorded for images built FROM this one, never run here */
            char *expression; /* the trigger text (and its heredocs), as Docker stores it */
            struct rbx_df_instr *trigger;
        } onbuild;
    };
};

struct rbx_df_stage {
    struct rbx_df_instr from; /* kind RBX_DF_FROM */
    struct rbx_df_instr *instrs;
    size_t n_instrs;
};

struct rbx_dockerfile {
    char *name;   /* as given to the parser, used in every message */
    char escape;  /* '\\' or '`' (the escape parser directive) */
    char *syntax; /* the syntax directive, NULL when absent; reprobox runs no frontend image */
    struct rbx_df_instr *global_args; /* ARG instructions before the first FROM */
    size_t n_global_args;
    struct rbx_df_stage *stages;
    size_t n_stages;
};

/* Parse a Dockerfile. `name` prefixes every message: "Dockerfile:7:1: unknown instruction
 * \"RUNN\" (did you mean RUN?)". Errors are RBX_ERR_MALFORMED, or RBX_ERR_LIMIT for inputs over
 * the bounds above. Instructions are checked (arguments, flags, JSON forms, heredocs, stage
 * names) but nothing is substituted: see rbx_df_instr_expand. */
int rbx_dockerfile_parse(const char *buf, size_t len, const char *name, struct rbx_dockerfile **out,
                         struct rbx_error **err);
struct rbx_dockerfile *rbx_dockerfile_free(struct rbx_dockerfile *df);
RBX_DEFINE_CLEANUP(struct rbx_dockerfile, rbx_dockerfile_free)

/* The stage a FROM, --from or --target names: its (case-insensitive) name, or its index when
 * `ref` is a number. -1 when none matches. */
ssize_t rbx_dockerfile_find_stage(const struct rbx_dockerfile *df, const char *ref);

void rbx_df_instr_clear(struct rbx_df_instr *in);
/* Deep copy. */
void rbx_df_instr_copy(const struct rbx_df_instr *in, struct rbx_df_instr *out);

/* ---- substitution (Docker's shell-lex rules; expand.c) --------------------------------------- */

/* Substitute one word: $VAR, ${VAR}, ${VAR:-w}, ${VAR-w}, ${VAR:+w}, ${VAR+w}, ${VAR:?msg},
 * ${VAR?msg}, ${VAR#p}, ${VAR##p}, ${VAR%p}, ${VAR%%p}, ${VAR/p/r}, ${VAR//p/r}; quotes are
 * removed (single quotes keep everything literal), `escape` escapes the next character.
 * Unset variables are empty. Errors (RBX_ERR_MALFORMED; RBX_ERR_USAGE for ${VAR?msg}) read
 * `failed to process "<word>": <why>`. */
int rbx_df_expand_word(const char *word, char escape, rbx_df_lookup_fn lookup, void *userdata,
                       char **out, struct rbx_error **err);
/* The same, then split into words at unquoted blanks (values of variables are split too). */
int rbx_df_expand_words(const char *word, char escape, rbx_df_lookup_fn lookup, void *userdata,
                        char ***out, struct rbx_error **err);

/* The instruction with its arguments substituted as Docker does at that step, with the lookup
 * answering from the stage's environment at that point (ENV and ARG so far; for FROM, the
 * global ARGs). Substituted: FROM image and --platform; ENV and LABEL keys and values; WORKDIR,
 * USER, STOPSIGNAL; VOLUME items; EXPOSE items, then split into words; COPY/ADD sources,
 * destination, --chown, --chmod, ADD --checksum, and heredoc bodies whose delimiter was not
 * quoted; RUN --mount values. Not substituted: RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK commands,
 * MAINTAINER, ONBUILD, --from, --exclude, --network — and ARG defaults, which the builder
 * substitutes with rbx_df_expand_word only when no --build-arg gives the value. An empty FROM
 * image is an error. `out` is a new instruction the caller clears. */
int rbx_df_instr_expand(const struct rbx_df_instr *in, char escape, rbx_df_lookup_fn lookup,
                        void *userdata, struct rbx_df_instr *out, struct rbx_error **err);

/* The build args (among `args`, the names of the ARGs in scope) this instruction depends on,
 * for its cache key: for RUN, all of them, because Docker gives every ARG in scope to the
 * command's environment; for the others, those its substitution reads (ARG defaults
 * included). Sorted, without duplicates; an empty vector when none. */
int rbx_df_instr_used_args(const struct rbx_df_instr *in, char escape, char *const *args,
                           char ***used, struct rbx_error **err);

/* ---- .dockerignore (ignore.c) ---------------------------------------------------------------- */

struct rbx_ignore;

/* Parse a .dockerignore: one pattern a line; '#' in the first column starts a comment; lines
 * are trimmed; "!" re-includes; patterns are cleaned (filepath.Clean) and a leading "/" is
 * dropped. Patterns follow Go's filepath.Match plus "**"; a malformed one is an error naming
 * `name` and the line. */
int rbx_ignore_parse(const char *buf, size_t len, const char *name, struct rbx_ignore **out,
                     struct rbx_error **err);
struct rbx_ignore *rbx_ignore_free(struct rbx_ignore *ign);
RBX_DEFINE_CLEANUP(struct rbx_ignore, rbx_ignore_free)
/* The cleaned patterns, in order ("!" kept), NULL-terminated: what a cache key records. */
char *const *rbx_ignore_patterns(const struct rbx_ignore *ign);

enum rbx_ignore_verdict {
    RBX_IGNORE_KEEP = 0,     /* part of the context */
    RBX_IGNORE_EXCLUDE,      /* left out; for a directory, something below may still be kept */
    RBX_IGNORE_EXCLUDE_TREE, /* a directory left out with everything below it: skip the walk */
};

/* Docker's verdict for a path relative to the context root ("a/b", no leading "/" needed): the
 * last pattern that matches the path or one of its parent directories wins. RBX_IGNORE_EXCLUDE_TREE
 * is only given for an excluded directory when no later "!" pattern could match anything
 * below it. A NULL `ign` keeps everything; the context root itself is always kept. */
enum rbx_ignore_verdict rbx_ignore_match(const struct rbx_ignore *ign, const char *path,
                                         bool is_dir);

/* ---- building: a Dockerfile replayed in the sandbox into an image (build.c) ------------------ */

#include "layers/layers.h"
#include "sandbox/sandbox.h"

enum rbx_step_state {
    RBX_STEP_START,
    RBX_STEP_DONE,
    RBX_STEP_CACHED,
    RBX_STEP_FAILED,
};

/* One step as docker shows it: "[builder 3/6] RUN pnpm install". */
struct rbx_build_step {
    const char *stage;     /* the stage's name, or "stage-N" */
    unsigned index, total; /* 1-based within the stage; FROM is 1 */
    unsigned line;         /* in the Dockerfile */
    const char *text; /* the instruction, variables it knows substituted (as docker shows it) */
    enum rbx_step_state state;
    uint64_t duration_ns; /* DONE, CACHED, FAILED */
};

/* What a build reports while it works; the library never prints. Any callback may be NULL. */
struct rbx_build_events {
    void *userdata;
    void (*step)(void *userdata, const struct rbx_build_step *st);
    /* RUN's output (stdout and stderr interleaved) as it comes */
    void (*output)(void *userdata, const struct rbx_build_step *st, const char *data, size_t len);
    void (*warning)(void *userdata, const char *message);
};

struct rbx_build_opts {
    const char *context;     /* the build context directory */
    const char *dockerfile;  /* NULL: CONTEXT/Dockerfile */
    const char *target;      /* the stage to build; NULL: the last */
    char *const *build_args; /* "K=V", or "K" taking the value from caller_env */
    char *const *caller_env;
    char *const *build_contexts; /* "NAME=REF": FROM NAME and --from=NAME read the image REF */
    char *const *secrets;        /* "id=ID,src=FILE" or "id=ID,env=VAR" */
    char *const *allow;          /* entitlements: "network.host" (RUN --network=host) */
    char *const *tags;           /* where the image is written: oci:DIR[:TAG], docker-archive:... */
    enum rbx_network_mode network;       /* for RUN: RBX_NETWORK_HOST (docker's default) or NONE */
    int64_t source_date_epoch;           /* mtimes clamped to it, `created` set to it */
    const struct rbx_platform *platform; /* NULL: the host's */
    enum rbx_pull_policy pull;           /* docker:// base images (a bare FROM name is one) */
    const struct rbx_registry_opts *registry; /* NULL: defaults */
    bool no_cache;                            /* run every step (the results are still cached) */
    bool keep_failed; /* keep the failed step's rootfs changes for `reprobox shell --failed` */
    struct rbx_build_events events;
    /* for --check's second build */
    int64_t clock_offset_s; /* added to every time the builder itself stamps */
    bool cache_off;         /* neither read nor write the step cache */
    bool no_failure_record;
};

struct rbx_build_failure {
    char *stage;
    unsigned line, index, total;
    char *instruction; /* the step as shown */
    char **command;    /* the argv as run (RUN), else NULL */
    int exit_code;     /* RUN's status (docker's: 128+N for signal N); -1 for other steps */
    char *output_tail; /* the last lines of its output */
    uint64_t duration_ns;
    char *message;     /* the error as printed */
    char *kept_rootfs; /* with keep_failed: the failed step's changes */
};

struct rbx_build_result {
    char manifest_digest[RBX_DIGEST_LEN + 1];
    char config_digest[RBX_DIGEST_LEN + 1];
    char *config;                 /* canonical JSON */
    struct rbx_out_layer *layers; /* blob_dirfd owned by the result */
    char **layer_steps;           /* what made each layer: "base image", "Dockerfile:7 RUN ..." */
    size_t n_layers;
    json_t *steps; /* [{stage, index, total, line, instruction, status, duration_ms}] */
    unsigned n_steps, n_cached;
    uint64_t duration_ns;
    enum rbx_network_mode network;
    char **written; /* the references written */
    bool failed;    /* a step failed: see failure */
    struct rbx_build_failure failure;
};

/* Build opts->target (and only the stages it needs) and write it to opts->tags. A failing step
 * returns RBX_ERR_BUILD with res->failed and res->failure filled, and leaves a record that
 * rbx_build_failed_load reads (unless no_failure_record). */
int rbx_build(struct rbx_store *store, const struct rbx_build_opts *opts,
              struct rbx_build_result *res, struct rbx_error **err);
void rbx_build_result_clear(struct rbx_build_result *res);

/* ---- --check: build again under other conditions and compare (check.c) ----------------------- */

struct rbx_check_result {
    bool reproducible;
    char first_digest[RBX_DIGEST_LEN + 1], second_digest[RBX_DIGEST_LEN + 1];
    char **variations; /* what the second build changed, for people */
    /* when not reproducible: the first difference */
    long layer;   /* index of the first differing layer, -1 when the layers agree */
    char *step;   /* what made it */
    char *path;   /* the entry, or the config field */
    char *field;  /* "content", "mtime", "mode", "owner", "order", "type", "link", "xattrs",
                   * "size", "missing", "config" */
    char *detail; /* "mtime 0 vs 1700000000" */
};

/* Build opts as rbx_build does (first result in `first`), then again in a child process with
 * another TZ, umask, locale, hostname, environment order, HOME, context path, CPU affinity and
 * clock, without the step cache; compare the manifest digests and, when they differ, name the
 * first difference. */
int rbx_build_check(struct rbx_store *store, const struct rbx_build_opts *opts,
                    struct rbx_build_result *first, struct rbx_check_result *check,
                    struct rbx_error **err);
void rbx_check_result_clear(struct rbx_check_result *c);

/* The JSON report of a build (docs/build.md); check may be NULL. */
json_t *rbx_build_report(const struct rbx_build_result *res, const struct rbx_check_result *check,
                         const struct rbx_error *error);

/* ---- the failed step, for `reprobox shell --failed` (failed.c) ------------------------------- */

struct rbx_failed_step {
    char **lowers;    /* layer dirs, lowest first; the kept changes on top when there are some */
    bool has_changes; /* the step's own changes are there (it was kept) */
    char **env;
    char *user, *cwd;
    char **shell; /* the stage's SHELL, else /bin/sh -c */
    enum rbx_network_mode network;
    char *where; /* "Dockerfile:7 RUN pnpm build" */
};
/* Read the record the last failed build left in the store. RBX_ERR_NOT_FOUND when none. */
int rbx_build_failed_load(struct rbx_store *store, struct rbx_failed_step *out,
                          struct rbx_error **err);
void rbx_failed_step_clear(struct rbx_failed_step *f);
