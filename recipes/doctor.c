/* doctor.c — `reprobox doctor`: the processes an image (or a recipe) will start, checked against
 * the image's files before anything runs; the findings, merged across processes, and their
 * JSON and human reports. The checks themselves live in doctor_{exec,fs,node,env}.c. */
#include "recipes/doctor-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

const char *const rbx_doctor_checks[] = {
    "command-not-found", "not-executable",     "exec-format",           "interpreter-missing",
    "elf-arch-mismatch", "elf-loader-missing", "musl-glibc-mismatch",   "library-missing",
    "script-missing",    "command-unresolved", "npx-download",          "workdir-missing",
    "workdir-not-dir",   "workdir-denied",     "user-unknown",          "group-unknown",
    "broken-symlinks",   "module-not-found",   "prisma-client-missing", "env-missing",
    "env-empty",         "provider-mismatch",  "migrations-missing",    NULL,
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
    if (d->proc)
        rbx_strv_push(&f->processes, d->proc->name);
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
    _cleanup_close_ int fd =
        rbx_open_in_root(d->rootfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0, 0, NULL);
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
        for (size_t p = 0; f->processes && f->processes[p]; p++) {
            bool have = false;
            for (size_t q = 0; same->processes[q] && !have; q++)
                have = strcmp(same->processes[q], f->processes[p]) == 0;
            if (!have)
                rbx_strv_push(&same->processes, f->processes[p]);
        }
        for (size_t e = 0; f->evidence && f->evidence[e]; e++)
            rbx_finding_evidence(same, "%s", f->evidence[e]);
        rbx_strv_free(f->processes);
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
    d->migrate_deploy = false;
    rbx_doctor_user(d);
    rbx_doctor_workdir(d);
    size_t argc = rbx_strv_len(p->argv);
    if (argc)
        rbx_doctor_command(d, p->argv, argc, "the command", false);
    rbx_doctor_env(d);
    d->proc = NULL;
}

int rbx_doctor_check(int rootfd, const char *arch, const struct rbx_doctor_process *procs, size_t n,
                     unsigned flags, struct rbx_doctor_report *out, struct rbx_error **err)
{
    uint64_t t0 = rbx_now_ns();
    struct rbx_doctor d = {
        .rootfd = rootfd, .arch = arch && *arch ? arch : NULL, .flags = flags, .rep = out};
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
        rbx_strv_free(r->findings[i].processes);
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
        json_t *procs = f->processes ? json_array() : json_null();
        for (size_t k = 0; f->processes && f->processes[k]; k++)
            json_array_append_new(procs, json_string(f->processes[k]));
        json_object_set_new(jf, "processes", procs);
        json_object_set_new(jf, "hint", f->hint ? json_string(f->hint) : json_null());
        json_array_append_new(findings, jf);
    }
    json_t *procs = json_array();
    for (size_t i = 0; r->processes && r->processes[i]; i++)
        json_array_append_new(procs, json_string(r->processes[i]));
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:o, s:o, s:I, s:I}", "schema", "reprobox.doctor/v1", "errors",
                  (json_int_t)r->n_errors, "warnings", (json_int_t)r->n_warnings, "processes",
                  procs, "findings", findings, "entries_walked", (json_int_t)r->entries_walked,
                  "milliseconds", (json_int_t)(r->elapsed_ns / 1000000));
    json_object_set_new(j, "image", r->image ? json_string(r->image) : json_null());
    json_object_set_new(j, "links_elsewhere", json_integer((json_int_t)r->links_elsewhere));
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
            for (size_t k = 0; f->processes && f->processes[k]; k++)
                put(&t, "%s%s%s", k ? ", " : " [", f->processes[k], f->processes[k + 1] ? "" : "]");
            put(&t, ": %s\n", f->message);
            for (size_t k = 0; f->evidence && f->evidence[k]; k++)
                put(&t, "      %s\n", f->evidence[k]);
            if (f->hint)
                put(&t, "      hint: %s\n", f->hint);
        }
    }
    if (r->links_elsewhere)
        put(&t,
            "\n(%zu broken link%s elsewhere in the image, away from the processes' directories "
            "and PATH; --all-links lists them)\n",
            r->links_elsewhere, r->links_elsewhere == 1 ? "" : "s");
    return t.buf;
}

/* ---- an image, mounted where nothing runs ------------------------------------------------------
 */

struct composed {
    struct rbx_doctor_process *procs;
    struct rbx_spec *specs;
    char ***required;
    size_t n;
};

static void composed_clear(struct composed *c)
{
    for (size_t i = 0; i < c->n; i++) {
        rbx_spec_clear(&c->specs[i]);
        rbx_strv_free(c->required[i]);
    }
    free(c->procs);
    free(c->specs);
    free(c->required);
    memset(c, 0, sizeof(*c));
}

static int compose_one(struct composed *c, const struct rbx_image_config *cfg, const char *name,
                       const struct rbx_run_request *req, char *const *req1, char *const *req2,
                       struct rbx_error **err)
{
    size_t i = c->n;
    c->procs = rbx_xrealloc(c->procs, (i + 1) * sizeof(*c->procs));
    c->specs = rbx_xrealloc(c->specs, (i + 1) * sizeof(*c->specs));
    c->required = rbx_xrealloc(c->required, (i + 1) * sizeof(*c->required));
    memset(&c->specs[i], 0, sizeof(c->specs[i]));
    c->required[i] = NULL;
    c->n++;
    struct rbx_compose_info info = {0};
    int r = rbx_run_compose(cfg, req, &c->specs[i], &info, err);
    rbx_compose_info_clear(&info);
    if (r < 0)
        return r;
    for (size_t k = 0; req1 && req1[k]; k++)
        rbx_strv_push(&c->required[i], req1[k]);
    for (size_t k = 0; req2 && req2[k]; k++)
        rbx_strv_push(&c->required[i], req2[k]);
    c->procs[i] = (struct rbx_doctor_process){
        name, c->specs[i].argv, c->specs[i].env, c->specs[i].cwd, c->specs[i].user, c->required[i]};
    return 0;
}

/* The processes as replay would start them: each step in the recipe's image, with the recipe's
 * env, env files, workdir and user under the step's own. */
static int compose_all(const struct rbx_doctor_opts *o, const struct rbx_image *img,
                       struct composed *c, struct rbx_error **err)
{
    const struct rbx_recipe *rc = o->recipe;
    if (!rc) {
        struct rbx_run_request none = {.caller_env = o->caller_env};
        return compose_one(c, &img->config, "image", o->req ? o->req : &none, NULL, NULL, err);
    }
    for (size_t s = 0; s < rc->n_steps; s++) {
        const struct rbx_recipe_proc *p = &rc->steps[s];
        _cleanup_strv_ char **env = NULL;
        for (size_t i = 0; rc->env && rc->env[i]; i++)
            rbx_env_set(&env, rc->env[i]);
        for (size_t i = 0; p->env && p->env[i]; i++)
            rbx_env_set(&env, p->env[i]);
        struct rbx_run_request req = {
            .args = p->command,
            .entrypoint = p->entrypoint,
            .env = env,
            .env_files = rc->env_files,
            .caller_env = o->caller_env,
            .workdir = p->workdir ? p->workdir : rc->workdir,
            .user = p->user ? p->user : rc->user,
        };
        int r = compose_one(c, &img->config, p->name, &req, rc->requires_env, p->requires_env, err);
        if (r < 0)
            return rbx_error_wrap(err, "%s: step %s", rc->path, p->name);
    }
    return 0;
}

int rbx_doctor_image(const struct rbx_doctor_opts *o, struct rbx_doctor_report *out,
                     struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    uint64_t t0 = rbx_now_ns();
    const char *ref = o->image ? o->image : o->recipe ? o->recipe->image : NULL;
    if (!ref)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: the recipe builds its image, and doctor runs nothing: build it "
                             "(reprobox build -t oci:DIR:TAG) and name it after the recipe",
                             o->recipe ? o->recipe->path : "doctor");
    out->image = rbx_xstrdup(ref);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    struct rbx_open_opts oo = {.platform = o->platform};
    int r = rbx_image_open(o->store, ref, &oo, &img, err);
    if (r < 0)
        return r;
    if (!rbx_store_overlay_unusable(o->store)) { /* else rbx_run_rootfs copies it flat */
        struct rbx_unpack_opts uo = {0};
        struct rbx_unpack_stats st = {0};
        r = rbx_image_unpack(o->store, img, &uo, &st, err);
        if (r < 0)
            return r;
    }
    struct composed c = {0};
    r = compose_all(o, img, &c, err);
    if (r < 0) {
        composed_clear(&c);
        return r;
    }

    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = -1;
    struct rbx_run_dir *rd = NULL;
    struct rbx_container *ctr = NULL;
    r = rbx_run_dir_create(o->store, &rd, err);
    if (r == 0)
        r = rbx_run_rootfs(o->store, img, rd, NULL, &spec, err);
    if (r >= 0) {
        spec.network = RBX_NETWORK_NONE;
        r = rbx_container_create(&spec, NULL, &ctr, err);
    }
    if (r == 0)
        r = rbx_doctor_check(rbx_container_rootfd(ctr), img->config.architecture, c.procs, c.n,
                             o->flags, out, err);
    rbx_container_free(ctr);
    rbx_run_dir_close(rd, false);
    rbx_spec_clear(&spec);
    composed_clear(&c);
    out->elapsed_ns = rbx_now_ns() - t0;
    return r < 0 ? rbx_error_wrap(err, "image %s", ref) : 0;
}
