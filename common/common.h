/* common.h — the one public header of common/: the error contract, ownership helpers, string
 * vectors, filesystem work relative to a root fd, sha256 digests and strict JSON loading. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- ownership (STYLE.md §2) ------------------------------------------------------------- */

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void rbx_freep(void *p) { free(*(void **)p); }
static inline void rbx_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
static inline void rbx_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
static inline void rbx_closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}
static inline void rbx_json_decrefp(json_t **j) { json_decref(*j); }

#define _cleanup_free_ _cleanup_(rbx_freep)
#define _cleanup_close_ _cleanup_(rbx_closep)
#define _cleanup_fclose_ _cleanup_(rbx_fclosep)
#define _cleanup_closedir_ _cleanup_(rbx_closedirp)
#define _cleanup_json_ _cleanup_(rbx_json_decrefp)

/* Move ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _taken = (p);                                                                \
        (p) = NULL;                                                                                \
        _taken;                                                                                    \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _taken = (fd);                                                                         \
        (fd) = -1;                                                                                 \
        _taken;                                                                                    \
    })

/* Declares `static inline void NAMEp(type **p)` calling a NULL-safe `type *NAME(type *)`. */
#define RBX_DEFINE_CLEANUP(type, func)                                                             \
    static inline void func##p(type **p)                                                           \
    {                                                                                              \
        if (*p)                                                                                    \
            (void)func(*p);                                                                        \
    }

#define RBX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RBX_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Allocation failure is not a recoverable condition in a CLI tool: abort with a message. */
void *rbx_xmalloc(size_t n);
void *rbx_xcalloc(size_t n, size_t size);
void *rbx_xrealloc(void *p, size_t n);
char *rbx_xstrdup(const char *s);
char *rbx_xstrndup(const char *s, size_t n);
char *rbx_xasprintf(const char *fmt, ...) RBX_PRINTF(1, 2);

/* ---- errors (STYLE.md §1) ------------------------------------------------------------------ */

/* Stable, machine-readable kinds: they appear in JSON reports and tests. Append only. */
enum rbx_error_kind {
    RBX_ERR_INTERNAL = 0,   /* "internal": a bug or an unexpected system state */
    RBX_ERR_USAGE,          /* "usage": bad flags or arguments */
    RBX_ERR_IO,             /* "io": a system call failed */
    RBX_ERR_NOT_FOUND,      /* "not-found": a file, tag, blob, image or user that is not there */
    RBX_ERR_REFERENCE,      /* "invalid-reference": an image reference that does not parse */
    RBX_ERR_MALFORMED,      /* "malformed": input that does not follow its format */
    RBX_ERR_DIGEST,         /* "digest-mismatch": content whose digest or size is not the promised one */
    RBX_ERR_UNSUPPORTED,    /* "unsupported": valid input reprobox does not handle */
    RBX_ERR_ESCAPE,         /* "escape": a path from an image that leaves its root */
    RBX_ERR_LIMIT,          /* "limit": input over a bound (size, depth, count) */
    RBX_ERR_PERMISSION,     /* "permission": not allowed for this user */
    RBX_ERR_SANDBOX,        /* "sandbox": namespaces, mounts or confinement could not be set up */
    RBX_ERR_EXEC_NOT_FOUND, /* "command-not-found": exit 127 */
    RBX_ERR_EXEC_DENIED,    /* "not-executable": exit 126 */
    RBX_ERR_EXEC_FORMAT,    /* "exec-format": not a binary this kernel runs, or a missing interpreter */
    RBX_ERR_NETWORK,        /* "network": a connection or protocol failure */
    RBX_ERR_AUTH,           /* "auth": credentials refused */
    RBX_ERR_BUILD,          /* "build": a build step failed */
    RBX_ERR_OVERLAY,        /* "overlay-unavailable": the kernel refused the overlay rootfs here */
    RBX_ERR__MAX
};

struct rbx_error {
    enum rbx_error_kind kind;
    int errnum;    /* positive errno, 0 when none applies */
    char *message; /* with context, outermost first: "layer sha256:ab..: entry \"x\": ..." */
};

/* Set *err (when err is non-NULL and *err is still NULL) and return -errnum, or -EINVAL when
 * errnum is 0. The message is the formatted text alone. */
int rbx_error_set(struct rbx_error **err, enum rbx_error_kind kind, int errnum, const char *fmt, ...)
    RBX_PRINTF(4, 5);
/* Same, with ": <strerror(errnum)>" appended. */
int rbx_error_set_errno(struct rbx_error **err, enum rbx_error_kind kind, int errnum, const char *fmt,
                        ...) RBX_PRINTF(4, 5);
/* Prefix the message of an error already set with "<context>: " and return its -errnum. */
int rbx_error_wrap(struct rbx_error **err, const char *fmt, ...) RBX_PRINTF(2, 3);
struct rbx_error *rbx_error_free(struct rbx_error *e);
const char *rbx_error_kind_name(enum rbx_error_kind kind);
RBX_DEFINE_CLEANUP(struct rbx_error, rbx_error_free)
#define _cleanup_error_ _cleanup_(rbx_error_freep)

/* ---- string vectors: NULL-terminated char ** ------------------------------------------------ */

size_t rbx_strv_len(char *const *v);
char **rbx_strv_free(char **v);
char **rbx_strv_copy(char *const *v);
/* Append a copy of s; *v may be NULL. */
void rbx_strv_push(char ***v, const char *s);
/* Append and take ownership of s. */
void rbx_strv_push_take(char ***v, char *s);
/* For "KEY=VALUE" vectors: replace the entry with the same KEY or append. */
void rbx_env_set(char ***env, const char *kv);
const char *rbx_env_get(char *const *env, const char *key);
RBX_DEFINE_CLEANUP(char *, rbx_strv_free)
#define _cleanup_strv_ _cleanup_(rbx_strv_freep)

/* ---- filesystem relative to a root fd (STYLE.md §5) ------------------------------------- */

#define RBX_PATH_MAX 4096 /* longest path accepted from an image */
#define RBX_NAME_MAX 255  /* longest component */
#define RBX_SYMLINK_HOPS 40

enum {
    RBX_RESOLVE_NOFOLLOW = 1 << 0,    /* do not follow a symlink in the last component */
    RBX_RESOLVE_NO_SYMLINKS = 1 << 1, /* follow no symlink anywhere: ELOOP when one is met */
};

/* Open `path` relative to `rootfd` with chroot semantics: ".." stops at the root and absolute or
 * escaping symlinks resolve back inside it; magic links are refused. Uses openat2(RESOLVE_IN_ROOT)
 * when the kernel has it, a component walker otherwise. Returns an fd or a negative errno;
 * ENOENT and ENOTDIR are returned without setting err so callers can probe. With O_CREAT the
 * last component is never followed. */
int rbx_open_in_root(int rootfd, const char *path, int flags, mode_t mode, unsigned rflags,
                     struct rbx_error **err);
/* Create every missing directory of `path` inside the root (exactly `mode` for the new ones,
 * whatever the umask) and return an O_PATH|O_DIRECTORY fd of the last. *created (optional) tells whether the last one was made. */
int rbx_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, bool *created, struct rbx_error **err);
/* Split "a/b/c" into the parent dir fd (resolved in root, created when `create` is set) and the
 * last component, copied to `name` (RBX_NAME_MAX + 1 bytes). Refuses "", ".", "..". */
int rbx_open_parent_in_root(int rootfd, const char *path, bool create, char *name, struct rbx_error **err);
/* Remove the tree below dirfd/name without following symlinks. Missing is not an error. */
int rbx_rm_rf_at(int dirfd, const char *name, struct rbx_error **err);
/* The directory open at fd holds nothing but "." and "..". fd stays open; its read position
 * is rewound and then moved (it is shared with the dup this reads through). */
bool rbx_dir_is_empty(int fd);
/* Read a whole small file (at most max bytes, else -EFBIG / RBX_ERR_LIMIT) into a NUL-terminated
 * buffer. `path` is opened plainly: use it for reprobox's own files, rbx_read_fd for an image's. */
int rbx_read_fd(int fd, size_t max, const char *what, char **out, size_t *len, struct rbx_error **err);
int rbx_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len, struct rbx_error **err);
/* Write data to dirfd/path through a temporary file and an atomic rename. */
int rbx_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                             struct rbx_error **err);
/* The same without the fdatasync: for files whose durability comes later (one syncfs before a
 * publish) or does not matter (records rebuilt on a miss). Readers still never see half a file. */
int rbx_write_file_replace_at(int dirfd, const char *path, const void *data, size_t len,
                              mode_t mode, struct rbx_error **err);
/* Normalise a path from an image: collapse "//" and "./", strip leading "/" and "./", refuse ".."
 * that would climb above the top and components over RBX_NAME_MAX. Result is relative ("" = root). */
int rbx_path_clean(const char *in, char **out, struct rbx_error **err);
bool rbx_openat2_available(void);
/* The canonical absolute path of `path` in the root ("/app/node_modules/express"): symlinks
 * expanded with chroot semantics, "." and ".." resolved. A relative path is taken from the root.
 * -ENOENT / -ENOTDIR are returned without setting err (callers probe) and then *out names where
 * the resolution broke: the canonical path of the first missing component ("/app/node_modules/
 * .pnpm"), or of the non-directory met on the way. -ELOOP after RBX_SYMLINK_HOPS links. */
int rbx_realpath_in_root(int rootfd, const char *path, char **out, struct rbx_error **err);

/* ---- sha256 digests ------------------------------------------------------------------------ */

#define RBX_DIGEST_HEX_LEN 64
#define RBX_DIGEST_LEN (7 + RBX_DIGEST_HEX_LEN) /* "sha256:" + hex */

struct rbx_sha256;
struct rbx_sha256 *rbx_sha256_new(void);
void rbx_sha256_update(struct rbx_sha256 *h, const void *data, size_t len);
/* Writes "sha256:<hex>" (RBX_DIGEST_LEN + 1 bytes); the hasher can not be updated afterwards. */
void rbx_sha256_final(struct rbx_sha256 *h, char out[RBX_DIGEST_LEN + 1]);
struct rbx_sha256 *rbx_sha256_free(struct rbx_sha256 *h);
RBX_DEFINE_CLEANUP(struct rbx_sha256, rbx_sha256_free)
void rbx_sha256_buf(const void *data, size_t len, char out[RBX_DIGEST_LEN + 1]);
/* "sha256:" followed by exactly 64 lowercase hex digits. Other algorithms are refused. */
bool rbx_digest_valid(const char *digest);
/* The hex part of a valid digest. */
static inline const char *rbx_digest_hex(const char *digest) { return digest + 7; }

/* ---- JSON (STYLE.md §6) -------------------------------------------------------------------- */

#define RBX_JSON_MAX_DEPTH 64

/* Parse with JSON_REJECT_DUPLICATES after checking nesting depth; `what` names the input in
 * errors ("index.json", "manifest sha256:ab..") and errors carry line and column. */
json_t *rbx_json_loadb(const char *buf, size_t len, const char *what, struct rbx_error **err);
/* Canonical form: sorted keys, compact, no trailing newline. Caller frees. */
char *rbx_json_dump_canonical(const json_t *j);
/* Typed getters for optional members: NULL/-1 when absent; error (with `what`.key) on wrong type. */
int rbx_json_get_string(const json_t *obj, const char *key, const char *what, const char **out,
                        struct rbx_error **err);
/* A JSON array of strings (or null / absent -> *out = NULL) into a strv. */
int rbx_json_get_strv(const json_t *obj, const char *key, const char *what, char ***out,
                      struct rbx_error **err);

/* ---- small utilities ------------------------------------------------------------------------ */

uint64_t rbx_now_ns(void); /* CLOCK_MONOTONIC */
/* pthread_create with every signal blocked in the new thread: helper threads (probes, log
 * relays, sweeps) never take a signal meant for the sandbox's supervision. */
int rbx_thread_create_quiet(pthread_t *t, void *(*fn)(void *), void *arg);
/* Parse sizes like "512m", "2g", "1048576" (binary multiples). */
int rbx_parse_size(const char *s, uint64_t *out);
/* Human size "1.2 MiB" into buf. */
const char *rbx_format_size(uint64_t bytes, char *buf, size_t len);
/* Random lowercase hex id of `len` chars into buf (len + 1 bytes). */
void rbx_random_hex(char *buf, size_t len);

/* Bounded tail of a byte stream: keeps the last `max_lines` lines (and at most max_bytes). */
struct rbx_tail;
struct rbx_tail *rbx_tail_new(size_t max_lines, size_t max_bytes);
void rbx_tail_feed(struct rbx_tail *t, const char *data, size_t len);
/* The kept text, NUL-terminated; valid until the next feed or free. */
const char *rbx_tail_text(struct rbx_tail *t);
uint64_t rbx_tail_total(const struct rbx_tail *t); /* all bytes ever fed */
struct rbx_tail *rbx_tail_free(struct rbx_tail *t);
RBX_DEFINE_CLEANUP(struct rbx_tail, rbx_tail_free)

/* ---- progress ----------------------------------------------------------------------------- */

/* What a library reports while it works (unpack, pull): it never prints, it calls back. */
struct rbx_progress_event {
    const char *phase; /* "unpack", "pull" */
    unsigned items_done, items_total; /* layers */
    uint64_t bytes_done, bytes_total; /* bytes_total may be 0 when unknown */
};
typedef void (*rbx_progress_fn)(void *userdata, const struct rbx_progress_event *ev);

/* A one-line progress bar for people on a terminal (the CLI's; rate-limited, redrawn with \r). */
struct rbx_progress_bar;
struct rbx_progress_bar *rbx_progress_bar_new(int fd);
void rbx_progress_bar_update(void *bar, const struct rbx_progress_event *ev); /* an rbx_progress_fn */
/* Erase the line (or leave a summary line when `summary` is non-NULL). */
struct rbx_progress_bar *rbx_progress_bar_free(struct rbx_progress_bar *bar, const char *summary);
static inline void rbx_progress_bar_freep(struct rbx_progress_bar **b)
{
    if (*b)
        rbx_progress_bar_free(*b, NULL);
}

/* Several bars, one line each (a pull's layers): redrawn in place with cursor movements, at most
 * ten times a second. Each line: "<label> [=====>   ] 1.2 MiB / 3.4 MiB <status>". */
struct rbx_progress_lines;
struct rbx_progress_lines *rbx_progress_lines_new(int fd, size_t n_lines);
/* Update line i (ignored when out of range); label and status are copied. */
void rbx_progress_lines_set(struct rbx_progress_lines *p, size_t i, const char *label,
                            uint64_t done, uint64_t total, const char *status);
/* Draw the last state (the lines stay on the screen), then the summary line when non-NULL. */
struct rbx_progress_lines *rbx_progress_lines_free(struct rbx_progress_lines *p,
                                                   const char *summary);
static inline void rbx_progress_lines_freep(struct rbx_progress_lines **p)
{
    if (*p)
        rbx_progress_lines_free(*p, NULL);
}
