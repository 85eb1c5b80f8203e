/* archive_lazy.c — libarchive, loaded the first time a layer is read. libarchive brings eleven
 * shared libraries (libxml2, ICU, libstdc++, every compressor...) that a run on a warm cache
 * never uses but would load before main(). These definitions stand in for the libarchive
 * functions layers/ calls and forward to the real ones, found with dlopen. */
#include <archive.h>
#include <archive_entry.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Each forwarder: its pointer, its name, and what it returns when libarchive is missing. */
#define RBX_ARCHIVE_FUNCS(X)                                                                       \
    X(time_t, archive_entry_atime, (struct archive_entry * e), (e), 0)                             \
    X(int, archive_entry_atime_is_set, (struct archive_entry * e), (e), 0)                         \
    X(long, archive_entry_atime_nsec, (struct archive_entry * e), (e), 0)                          \
    X(__LA_MODE_T, archive_entry_filetype, (struct archive_entry * e), (e), 0)                     \
    X(la_int64_t, archive_entry_gid, (struct archive_entry * e), (e), 0)                           \
    X(const char *, archive_entry_hardlink, (struct archive_entry * e), (e), NULL)                 \
    X(time_t, archive_entry_mtime, (struct archive_entry * e), (e), 0)                             \
    X(int, archive_entry_mtime_is_set, (struct archive_entry * e), (e), 0)                         \
    X(long, archive_entry_mtime_nsec, (struct archive_entry * e), (e), 0)                          \
    X(const char *, archive_entry_pathname, (struct archive_entry * e), (e), NULL)                 \
    X(__LA_MODE_T, archive_entry_perm, (struct archive_entry * e), (e), 0)                         \
    X(dev_t, archive_entry_rdev, (struct archive_entry * e), (e), 0)                               \
    X(la_int64_t, archive_entry_size, (struct archive_entry * e), (e), 0)                          \
    X(int, archive_entry_size_is_set, (struct archive_entry * e), (e), 0)                          \
    X(const char *, archive_entry_symlink, (struct archive_entry * e), (e), NULL)                  \
    X(la_int64_t, archive_entry_uid, (struct archive_entry * e), (e), 0)                           \
    X(int, archive_entry_xattr_next,                                                               \
      (struct archive_entry * e, const char **name, const void **value, size_t *size),             \
      (e, name, value, size), ARCHIVE_FATAL)                                                       \
    X(int, archive_entry_xattr_reset, (struct archive_entry * e), (e), 0)                          \
    X(const char *, archive_error_string, (struct archive * a), (a),                               \
      "libarchive (libarchive.so.13) could not be loaded")                                         \
    X(int, archive_read_data_block,                                                                \
      (struct archive * a, const void **buf, size_t *size, la_int64_t *offset),                    \
      (a, buf, size, offset), ARCHIVE_FATAL)                                                       \
    X(int, archive_read_free, (struct archive * a), (a), ARCHIVE_FATAL)                            \
    X(struct archive *, archive_read_new, (void), (), NULL)                                        \
    X(int, archive_read_next_header, (struct archive * a, struct archive_entry * *e), (a, e),      \
      ARCHIVE_FATAL)                                                                               \
    X(int, archive_read_open,                                                                      \
      (struct archive * a, void *data, archive_open_callback *o, archive_read_callback *r,          \
       archive_close_callback *c),                                                                 \
      (a, data, o, r, c), ARCHIVE_FATAL)                                                           \
    X(int, archive_read_support_filter_none, (struct archive * a), (a), ARCHIVE_FATAL)             \
    X(int, archive_read_support_format_tar, (struct archive * a), (a), ARCHIVE_FATAL)

#define DECLARE(ret, name, params, args, fail) ret(*name) params;
static struct {
    RBX_ARCHIVE_FUNCS(DECLARE)
    void (*archive_set_error)(struct archive *, int, const char *, ...);
} fn;
static bool loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    bool ok = true;
    /* POSIX makes dlsym's void * convertible to a function pointer. */
#define RESOLVE(ret, name, params, args, fail)                                                    \
    if (!(*(void **)&fn.name = dlsym(h, #name)))                                                   \
        ok = false;
    RBX_ARCHIVE_FUNCS(RESOLVE)
    if (!(*(void **)&fn.archive_set_error = dlsym(h, "archive_set_error")))
        ok = false;
    loaded = ok;
}

static bool ready(void)
{
    pthread_once(&once, load);
    return loaded;
}

#define FORWARD(ret, name, params, args, fail)                                                    \
    ret name params                                                                                \
    {                                                                                              \
        return ready() ? fn.name args : (fail);                                                    \
    }
RBX_ARCHIVE_FUNCS(FORWARD)

void archive_set_error(struct archive *a, int err, const char *fmt, ...)
{
    if (!ready())
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fn.archive_set_error(a, err, "%s", buf);
}
