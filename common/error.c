/* error.c — the error object threaded through every fallible call (STYLE.md §1). */
#include "common/common.h"

#include <string.h>

static const char *const kind_names[RBX_ERR__MAX] = {
    [RBX_ERR_INTERNAL] = "internal",
    [RBX_ERR_USAGE] = "usage",
    [RBX_ERR_IO] = "io",
    [RBX_ERR_NOT_FOUND] = "not-found",
    [RBX_ERR_REFERENCE] = "invalid-reference",
    [RBX_ERR_MALFORMED] = "malformed",
    [RBX_ERR_DIGEST] = "digest-mismatch",
    [RBX_ERR_UNSUPPORTED] = "unsupported",
    [RBX_ERR_ESCAPE] = "escape",
    [RBX_ERR_LIMIT] = "limit",
    [RBX_ERR_PERMISSION] = "permission",
    [RBX_ERR_SANDBOX] = "sandbox",
    [RBX_ERR_EXEC_NOT_FOUND] = "command-not-found",
    [RBX_ERR_EXEC_DENIED] = "not-executable",
    [RBX_ERR_EXEC_FORMAT] = "exec-format",
    [RBX_ERR_NETWORK] = "network",
    [RBX_ERR_AUTH] = "auth",
    [RBX_ERR_BUILD] = "build",
    [RBX_ERR_OVERLAY] = "overlay-unavailable",
};

const char *rbx_error_kind_name(enum rbx_error_kind kind)
{
    if ((unsigned)kind >= RBX_ERR__MAX || !kind_names[kind])
        return "internal";
    return kind_names[kind];
}

/* printf-checked like its callers (clang's -Wformat-nonliteral wants the attribute here) */
RBX_PRINTF(5, 0)
static int error_setv(struct rbx_error **err, enum rbx_error_kind kind, int errnum, bool with_errno,
                      const char *fmt, va_list ap)
{
    int ret = errnum > 0 ? -errnum : (errnum < 0 ? errnum : -EINVAL);

    if (!err || *err)
        return ret;
    struct rbx_error *e = rbx_xcalloc(1, sizeof(*e));
    e->kind = kind;
    e->errnum = -ret;
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    if (with_errno && errnum != 0) {
        e->message = rbx_xasprintf("%s: %s", msg, strerror(-ret));
        free(msg);
    } else {
        e->message = msg;
    }
    *err = e;
    return ret;
}

int rbx_error_set(struct rbx_error **err, enum rbx_error_kind kind, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int ret = error_setv(err, kind, errnum, false, fmt, ap);
    va_end(ap);
    return ret;
}

int rbx_error_set_errno(struct rbx_error **err, enum rbx_error_kind kind, int errnum, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    int ret = error_setv(err, kind, errnum, true, fmt, ap);
    va_end(ap);
    return ret;
}

int rbx_error_wrap(struct rbx_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -EINVAL;
    _cleanup_free_ char *ctx = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&ctx, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *msg = rbx_xasprintf("%s: %s", ctx, (*err)->message);
    free((*err)->message);
    (*err)->message = msg;
    return -(*err)->errnum;
}

struct rbx_error *rbx_error_free(struct rbx_error *e)
{
    if (e) {
        free(e->message);
        free(e);
    }
    return NULL;
}
