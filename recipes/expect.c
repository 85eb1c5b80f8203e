/* expect.c — judging a service or step against its expectations. What an expectation does not
 * say, success stands for: a step without "exit", "signal" or "diagnosis" must succeed. */
#include "recipes/recipes.h"

#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <string.h>

RBX_PRINTF(2, 3)
static bool unmet(struct rbx_outcome *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    free(o->unmet);
    o->unmet = m;
    return false;
}

static bool matches(const char *re, const char *text)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
        return false;
    bool m = regexec(&r, text ? text : "", 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

static int exit_code_of(const struct rbx_outcome *o)
{
    if (o->error && !o->res.exit_code)
        return o->error->kind == RBX_ERR_EXEC_NOT_FOUND ? 127
               : o->error->kind == RBX_ERR_EXEC_DENIED || o->error->kind == RBX_ERR_EXEC_FORMAT
                   ? 126
                   : 125;
    return o->res.exit_code;
}

static const char *sig_name(int sig, char *buf, size_t len)
{
    const char *a = sigabbrev_np(sig);
    if (a)
        snprintf(buf, len, "SIG%s", a);
    else
        snprintf(buf, len, "%d", sig);
    return buf;
}

static bool check_output(struct rbx_outcome *o, const char *which, const char *text,
                         const char *contains, const char *re)
{
    if (contains && !strstr(text ? text : "", contains))
        return unmet(o, "%s_contains \"%s\": not in its %s", which, contains, which);
    if (re && !matches(re, text))
        return unmet(o, "%s_matches \"%s\": no line of its %s matches", which, re, which);
    return true;
}

static bool check_http(struct rbx_outcome *o)
{
    const struct rbx_expect *e = &o->proc->expect;
    for (size_t i = 0; i < e->n_http; i++) {
        const struct rbx_http_check *c = &e->http[i];
        if (i >= o->n_http)
            return unmet(o, "http[%zu] GET %s: not checked (the step was not ready)", i, c->get);
        const struct rbx_http_response *r = &o->http[i].resp;
        if (r->status == 0)
            return unmet(o, "http[%zu] GET %s: no answer (%s)", i, c->get, r->error);
        if (c->status ? r->status != c->status : (r->status < 200 || r->status > 299)) {
            if (c->status)
                return unmet(o, "http[%zu] GET %s: expected status %d, got %ld", i, c->get,
                             c->status, r->status);
            return unmet(o, "http[%zu] GET %s: expected a 2xx status, got %ld", i, c->get,
                         r->status);
        }
        if (c->body_contains && !strstr(r->body ? r->body : "", c->body_contains))
            return unmet(o, "http[%zu] GET %s: body_contains \"%s\": not in the body", i, c->get,
                         c->body_contains);
        if (c->body_matches && !matches(c->body_matches, r->body))
            return unmet(o, "http[%zu] GET %s: body_matches \"%s\": the body does not match", i,
                         c->get, c->body_matches);
    }
    return true;
}

static bool check_files(struct rbx_outcome *o, int rootfd)
{
    const struct rbx_expect *e = &o->proc->expect;
    for (size_t i = 0; i < e->n_files; i++) {
        const struct rbx_file_check *f = &e->files[i];
        if (rootfd < 0)
            return unmet(o, "files[%zu] %s: the container's filesystem is gone", i, f->path);
        _cleanup_close_ int fd =
            rbx_open_in_root(rootfd, f->path, O_RDONLY | O_CLOEXEC, 0, 0, NULL);
        bool exists = fd >= 0 || fd == -EISDIR;
        if (fd == -EISDIR || fd == -EACCES) {
            _cleanup_close_ int p =
                rbx_open_in_root(rootfd, f->path, O_PATH | O_CLOEXEC, 0, 0, NULL);
            exists = p >= 0;
        }
        if (f->exists == 0) {
            if (exists)
                return unmet(o, "files[%zu] %s: exists, expected absent", i, f->path);
            continue;
        }
        if (!exists)
            return unmet(o, "files[%zu] %s: does not exist", i, f->path);
        if (f->contains) {
            _cleanup_free_ char *buf = NULL;
            size_t len = 0;
            if (fd < 0 || rbx_read_fd(fd, 16u << 20, f->path, &buf, &len, NULL) < 0)
                return unmet(o, "files[%zu] %s: can not be read", i, f->path);
            if (!memmem(buf, len, f->contains, strlen(f->contains)))
                return unmet(o, "files[%zu] %s: does not contain \"%s\"", i, f->path, f->contains);
        }
    }
    return true;
}

bool rbx_expect_check(struct rbx_outcome *o, int rootfd)
{
    free(o->unmet);
    o->unmet = NULL;
    const struct rbx_expect *e = &o->proc->expect;
    if (o->state == RBX_PROC_NOT_RUN)
        return unmet(o, "not run: an earlier service or step failed");

    bool judged_by_status = e->has_exit || e->signal || e->diagnosis;
    if (!judged_by_status && rbx_outcome_failed(o)) {
        if (o->diag_kind)
            return unmet(o, "expected success, got %s (%s)",
                         o->outcome_text ? o->outcome_text : "a failure", o->diag_kind);
        return unmet(o, "expected success, got %s",
                     o->outcome_text ? o->outcome_text : "a failure");
    }
    if (e->has_exit) {
        if (!o->ended && !o->error)
            return unmet(o, "exit: expected %d, but it was still running", e->exit_code);
        if (o->res.signal && !o->error)
            return unmet(o, "exit: expected %d, got %s", e->exit_code, o->outcome_text);
        if (exit_code_of(o) != e->exit_code)
            return unmet(o, "exit: expected %d, got %d", e->exit_code, exit_code_of(o));
    }
    if (e->signal) {
        char want[32], got[32];
        if (o->res.signal != e->signal)
            return unmet(o, "signal: expected %s, got %s", sig_name(e->signal, want, sizeof(want)),
                         o->res.signal     ? sig_name(o->res.signal, got, sizeof(got))
                         : o->outcome_text ? o->outcome_text
                                           : "none");
    }
    if (e->diagnosis) {
        const char *got = o->diag_kind ? o->diag_kind : "none";
        if (strcmp(got, e->diagnosis) != 0)
            return unmet(o, "diagnosis: expected %s, got %s%s%s", e->diagnosis, got,
                         o->diag_message ? ": " : "", o->diag_message ? o->diag_message : "");
    }
    if (e->diagnosis_contains) {
        bool in = (o->diag_message && strstr(o->diag_message, e->diagnosis_contains)) ||
                  (o->diag_hint && strstr(o->diag_hint, e->diagnosis_contains));
        if (!in)
            return unmet(o, "diagnosis_contains \"%s\": not in \"%s\"", e->diagnosis_contains,
                         o->diag_message ? o->diag_message : "(no diagnosis)");
    }
    if (!check_output(o, "stdout", o->res.stdout_tail, e->stdout_contains, e->stdout_matches) ||
        !check_output(o, "stderr", o->res.stderr_tail, e->stderr_contains, e->stderr_matches))
        return false;
    if (!check_http(o) || !check_files(o, rootfd))
        return false;
    if (e->max_seconds > 0 && (double)o->duration_ms / 1000.0 > e->max_seconds)
        return unmet(o, "max_seconds %g: it took %.1f s", e->max_seconds,
                     (double)o->duration_ms / 1000.0);
    return true;
}
