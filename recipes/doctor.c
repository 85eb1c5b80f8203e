/* doctor.c — `reprobox doctor`: the processes an image (or a recipe) will start, checked against
 * the image's files before anything runs; the findings, merged across processes, and their
 * JSON and human reports. The checks themselves live in doctor_{exec,fs,node,env}.c. */
#include "recipes/doctor-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

const char *const rbx_doctor_checks[] = {
    "command-not-found", "not-executable",    "exec-format",        "interpreter-missing",
    "elf-arch-mismatch", "elf-loader-missing", "musl-glibc-mismatch", "library-missing",
    "script-missing",    "command-unresolved", "npx-download",       "workdir-missing",
    "workdir-not-dir",   "workdir-denied",     "user-unknown",       "group-unknown",
    "broken-symlinks",   "module-not-found",   "prisma-client-missing", "env-missing",
    "env-empty",         "provider-mismatch",  "migrations-missing", NULL,
};

/* ---- findings ------------------------------------------------------------------------------- */

struct rbx_finding *rbx_doctor_add(struct rbx_doctor *d, const char *check, enum rbx_severity sev,
                                   const char *hint, const char *fmt, ...)
{
    struct rbx_doctor_report *r = d->rep;
    r->findings = rbx_xrealloc(r->findings, (r->n_findings + 1) * sizeof(*r->findings));
    struct rbx_finding *f = &r->findings[r->n_findings++];
    memset(f, 0, sizeof(*f));
    f->check = check;
    f->severity = sev;
    f->processes = d->proc ? rbx_xstrdup(d->proc->name) : NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&f->message, fmt, ap) < 0)
        abort();
    va_end(ap);
    f->hint = hint ? rbx_xstrdup(hint) : NULL;
    return f;
}

void rbx_finding_evidence(struct rbx_finding *f, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    for (size_t i = 0; f->evidence && f->evidence[i]; i++)
        if (strcmp(f->evidence[i], s) == 0) {
            free(s);
            return;
        }
    rbx_strv_push_take(&f->evidence, s);
}

bool rbx_doctor_seen(struct rbx_doctor *d, const char *key, bool image_wide)
{
    char ***set = image_wide ? &d->seen_image : &d->seen;
    for (size_t i = 0; *set && (*set)[i]; i++)
        if (strcmp((*set)[i], key) == 0)
            return true;
    rbx_strv_push(set, key);
    return false;
}

int rbx_doctor_read(struct rbx_doctor *d, const char *path, size_t max, char **out, size_t *len)
{
    _cleanup_close_ int fd = rbx_open_in_root(d->rootfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK,
                                              0, 0, NULL);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    if ((uint64_t)st.st_size > max)
        return -EFBIG;
    return rbx_read_fd(fd, max, path, out, len, NULL);
}

/* The same finding for several processes is one finding naming them all. */
static void merge_findings(struct rbx_doctor_report *r)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n_findings; i++) {
        struct rbx_finding *f = &r->findings[i];
        struct rbx_finding *same = NULL;
        for (size_t k = 0; k < w && !same; k++) {
            struct rbx_finding *g = &r->findings[k];
            if (strcmp(g->check, f->check) == 0 && g->severity == f->severity &&
                strcmp(g->message, f->message) == 0 && !g->processes == !f->processes)
                same = g;
        }
        if (!same) {
            r->findings[w++] = *f;
            continue;
        }
        if (f->processes && !strstr(same->processes, f->processes)) {
            char *p = rbx_xasprintf("%s, %s", same->processes, f->processes);
            free(same->processes);
            same->processes = p;
        }
        for (size_t e = 0; f->evidence && f->evidence[e]; e++)
            rbx_finding_evidence(same, "%s", f->evidence[e]);
        free(f->processes);
        free(f->message);
        rbx_strv_free(f->evidence);
        free(f->hint);
    }
    r->n_findings = w;
    /* errors first, each group in the order found (a stable partition) */
    struct rbx_finding *sorted = rbx_xcalloc(w + 1, sizeof(*sorted));
    size_t n = 0;
    r->n_errors = r->n_warnings = 0;
    for (int sev = RBX_SEVERITY_ERROR; sev <= RBX_SEVERITY_WARNING; sev++)
        for (size_t i = 0; i < w; i++)
            if ((int)r->findings[i].severity == sev) {
                sorted[n++] = r->findings[i];
                if (sev == RBX_SEVERITY_ERROR)
                    r->n_errors++;
                else
                    r->n_warnings++;
            }
    free(r->findings);
    r->findings = sorted;
}

/* ---- checking ------------------------------------------------------------------------------- */

static void check_process(struct rbx_doctor *d, const struct rbx_doctor_process *p)
{
    d->proc = p;
    d->depth = 0;
    d->seen = rbx_strv_free(d->seen);
    d->cwd_missing = false;
    d->have_user = false;
    rbx_doctor_user(d);
    rbx_doctor_workdir(d);
    size_t argc = rbx_strv_len(p->argv);
    if (argc)
        rbx_doctor_command(d, p->argv, argc, "the command", false);
    rbx_doctor_env(d);
    d->proc = NULL;
}

int rbx_doctor_check(int rootfd, const char *arch, const struct rbx_doctor_process *procs,
                     size_t n, struct rbx_doctor_report *out, struct rbx_error **err)
{
    uint64_t t0 = rbx_now_ns();
    struct rbx_doctor d = {.rootfd = rootfd, .arch = arch && *arch ? arch : NULL, .rep = out};
    for (size_t i = 0; i < n; i++) {
        rbx_strv_push(&out->processes, procs[i].name);
        check_process(&d, &procs[i]);
    }
    rbx_doctor_symlinks(&d, procs, n);
    rbx_strv_free(d.seen);
    rbx_strv_free(d.seen_image);
    merge_findings(out);
    out->elapsed_ns = rbx_now_ns() - t0;
    return 0;
}

void rbx_doctor_report_clear(struct rbx_doctor_report *r)
{
    for (size_t i = 0; i < r->n_findings; i++) {
        free(r->findings[i].processes);
        free(r->findings[i].message);
        rbx_strv_free(r->findings[i].evidence);
        free(r->findings[i].hint);
    }
    free(r->findings);
    free(r->image);
    rbx_strv_free(r->processes);
    memset(r, 0, sizeof(*r));
}

/* ---- reports -------------------------------------------------------------------------------- */

static const char *severity_name(enum rbx_severity s)
{
    return s == RBX_SEVERITY_ERROR ? "error" : "warning";
}

json_t *rbx_doctor_report_json(const struct rbx_doctor_report *r)
{
    json_t *findings = json_array();
    for (size_t i = 0; i < r->n_findings; i++) {
        const struct rbx_finding *f = &r->findings[i];
        json_t *ev = json_array();
        for (size_t k = 0; f->evidence && f->evidence[k]; k++)
            json_array_append_new(ev, json_string(f->evidence[k]));
        json_t *jf = json_pack("{s:s, s:s, s:s, s:o}", "check", f->check, "severity",
                               severity_name(f->severity), "message", f->message, "evidence", ev);
        json_object_set_new(jf, "processes", f->processes ? json_string(f->processes) : json_null());
        json_object_set_new(jf, "hint", f->hint ? json_string(f->hint) : json_null());
        json_array_append_new(findings, jf);
    }
    json_t *procs = json_array();
    for (size_t i = 0; r->processes && r->processes[i]; i++)
        json_array_append_new(procs, json_string(r->processes[i]));
    json_t *j = json_pack("{s:s, s:I, s:I, s:o, s:o, s:I, s:f}", "schema", "reprobox.doctor/v1",
                          "errors", (json_int_t)r->n_errors, "warnings", (json_int_t)r->n_warnings,
                          "processes", procs, "findings", findings, "entries_walked",
                          (json_int_t)r->entries_walked, "seconds", (double)r->elapsed_ns / 1e9);
    json_object_set_new(j, "image", r->image ? json_string(r->image) : json_null());
    return j;
}

struct text {
    char *buf;
    size_t len, cap;
};

RBX_PRINTF(2, 3)
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->buf = rbx_xrealloc(t->buf, t->cap);
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

char *rbx_doctor_report_text(const struct rbx_doctor_report *r)
{
    struct text t = {0};
    put(&t, "%s: ", r->image ? r->image : "image");
    if (!r->n_findings)
        put(&t, "no problems found");
    else
        put(&t, "%zu error%s, %zu warning%s", r->n_errors, r->n_errors == 1 ? "" : "s",
            r->n_warnings, r->n_warnings == 1 ? "" : "s");
    put(&t, " (%.2f s)\n", (double)r->elapsed_ns / 1e9);
    for (int sev = RBX_SEVERITY_ERROR; sev <= RBX_SEVERITY_WARNING; sev++) {
        size_t count = sev == RBX_SEVERITY_ERROR ? r->n_errors : r->n_warnings;
        if (!count)
            continue;
        put(&t, "\n%s:\n", sev == RBX_SEVERITY_ERROR ? "Errors" : "Warnings");
        for (size_t i = 0; i < r->n_findings; i++) {
            const struct rbx_finding *f = &r->findings[i];
            if ((int)f->severity != sev)
                continue;
            put(&t, "  %s", f->check);
            if (f->processes)
                put(&t, " [%s]", f->processes);
            put(&t, ": %s\n", f->message);
            for (size_t k = 0; f->evidence && f->evidence[k]; k++)
                put(&t, "      %s\n", f->evidence[k]);
            if (f->hint)
                put(&t, "      hint: %s\n", f->hint);
        }
    }
    return t.buf;
}
