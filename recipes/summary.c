/* summary.c — telling what a replay did: the JSON report (schema "reprobox.replay/v1", in
 * docs/recipes.md; environment values never appear, only names) and the human summary that
 * leads with the diagnosis of the first failure. */
#include "recipes/recipes.h"

#include <signal.h>
#include <string.h>

#define REPLAY_SCHEMA "reprobox.replay/v1"

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* Invalid UTF-8 (a binary's output) must not make the report invalid JSON. */
static json_t *safe_string(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    _cleanup_free_ char *c = rbx_xstrndup(s, n);
    for (char *p = c; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    return json_string(c);
}

static json_t *lines_json(const char *text)
{
    json_t *a = json_array();
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_array_append_new(a, safe_string(p, n));
        p += n + (nl ? 1 : 0);
    }
    return a;
}

static const char *state_name(enum rbx_proc_state s)
{
    return s == RBX_PROC_OK ? "ok" : s == RBX_PROC_FAILED ? "failed" : "not-run";
}

static const char *stop_name(enum rbx_stop_reason r)
{
    switch (r) {
    case RBX_STOP_NONE: return "none";
    case RBX_STOP_TIMEOUT: return "timeout";
    case RBX_STOP_IDLE: return "idle-timeout";
    case RBX_STOP_REQUESTED: return "stopped";
    }
    return "none";
}

static json_t *diagnosis_json(const struct rbx_outcome *o)
{
    if (!o->diag_kind)
        return json_null();
    json_t *d = json_object();
    json_object_set_new(d, "kind", json_string(o->diag_kind));
    json_object_set_new(d, "message", str_or_null(o->diag_message));
    json_object_set_new(d, "hint", str_or_null(o->diag_hint));
    return d;
}

static json_t *outcome_json(const struct rbx_outcome *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(o->proc->name));
    json_object_set_new(j, "kind", json_string(o->is_service ? "service" : "step"));
    json_object_set_new(j, "state", json_string(state_name(o->state)));
    if (o->is_service)
        json_object_set_new(j, "image", json_string(o->proc->image));
    json_object_set_new(j, "outcome", str_or_null(o->outcome_text));
    if (o->state == RBX_PROC_NOT_RUN) {
        json_object_set_new(j, "expectations",
                            json_pack("{s:b,s:s?}", "met", !o->unmet, "unmet", o->unmet));
        return j;
    }
    json_object_set_new(j, "argv", strv_json(o->argv));
    json_t *names = json_array();
    for (size_t i = 0; o->env && o->env[i]; i++)
        json_array_append_new(names, json_stringn(o->env[i], strcspn(o->env[i], "=")));
    json_object_set_new(j, "env_names", names);
    json_object_set_new(j, "cwd", str_or_null(o->cwd));
    json_object_set_new(j, "cwd_missing", json_boolean(o->cwd_missing));
    json_object_set_new(j, "user", str_or_null(o->user));
    if (o->error)
        json_object_set_new(j, "error",
                            json_pack("{s:s,s:s}", "kind", rbx_error_kind_name(o->error->kind),
                                      "message", o->error->message));
    if (o->ended) {
        json_object_set_new(j, "exit_code", json_integer(o->res.exit_code));
        const char *a = o->res.signal ? sigabbrev_np(o->res.signal) : NULL;
        _cleanup_free_ char *sig = a ? rbx_xasprintf("SIG%s", a) : NULL;
        json_object_set_new(j, "signal", str_or_null(sig));
        json_object_set_new(j, "stop_reason", json_string(stop_name(o->res.stop_reason)));
        json_object_set_new(j, "oom_killed", json_boolean(o->res.oom_killed));
        json_object_set_new(j, "exec_path", str_or_null(o->res.exec_path));
    }
    json_object_set_new(j, "exited_early", json_boolean(o->exited_early));
    json_object_set_new(j, "duration_ms", json_integer((json_int_t)o->duration_ms));
    if (o->has_ready)
        json_object_set_new(
            j, "ready",
            json_pack("{s:b,s:i,s:I,s:b,s:b,s:I,s:s}", "ready", o->ready.ready, "attempts",
                      (int)o->ready.attempts, "elapsed_ms", (json_int_t)o->ready.elapsed_ms,
                      "connected", o->ready.ever_connected, "process_exited",
                      o->ready.target_exited, "last_status", (json_int_t)o->ready.last_status,
                      "last_error", o->ready.last_error));
    json_t *http = json_array();
    for (size_t i = 0; i < o->n_http; i++) {
        const struct rbx_http_response *r = &o->http[i].resp;
        json_t *h = json_object();
        json_object_set_new(h, "url", json_string(o->http[i].url));
        json_object_set_new(h, "status", json_integer(r->status));
        if (r->status)
            json_object_set_new(
                h, "body",
                r->body ? safe_string(r->body, strlen(r->body) > 2048 ? 2048 : strlen(r->body))
                        : json_string(""));
        else
            json_object_set_new(h, "error", json_string(r->error));
        json_array_append_new(http, h);
    }
    json_object_set_new(j, "http", http);
    if (o->listening_known) {
        json_t *l = json_array();
        for (size_t i = 0; i < o->n_listening; i++)
            json_array_append_new(l, json_integer(o->listening[i]));
        json_object_set_new(j, "listening_ports", l);
    }
    json_object_set_new(j, "diagnosis", diagnosis_json(o));
    json_object_set_new(j, "expectations",
                        json_pack("{s:b,s:b,s:s?}", "set", o->proc->expect.set, "met", !o->unmet,
                                  "unmet", o->unmet));
    if (o->output_at_failure)
        json_object_set_new(j, "output_at_failure", lines_json(o->output_at_failure));
    json_object_set_new(j, "stdout_tail", lines_json(o->res.stdout_tail));
    json_object_set_new(j, "stderr_tail", lines_json(o->res.stderr_tail));
    return j;
}

static char *diagnosis_line(const struct rbx_outcome *o)
{
    if (!o->diag_kind)
        return rbx_xasprintf("%s: %s", o->proc->name, o->outcome_text ? o->outcome_text : "");
    return rbx_xasprintf("%s: %s \u2014 %s: %s", o->proc->name,
                         o->outcome_text ? o->outcome_text : "", o->diag_kind,
                         o->diag_message ? o->diag_message : "");
}

json_t *rbx_replay_report(const struct rbx_replay *r)
{
    const struct rbx_recipe *rc = r->recipe;
    json_t *j = json_object();
    json_object_set_new(j, "schema", json_string(REPLAY_SCHEMA));
    json_object_set_new(j, "reprobox_version", json_string(REPROBOX_VERSION));
    json_object_set_new(j, "recipe", json_pack("{s:s,s:s}", "name", rc->name, "file", rc->path));
    json_object_set_new(j, "image", str_or_null(r->image_ref));
    json_object_set_new(j, "network",
                        json_string(rc->network == RBX_NETWORK_HOST ? "host" : "none"));
    json_object_set_new(j, "succeeded", json_boolean(rbx_replay_succeeded(r)));
    json_object_set_new(j, "passed", json_boolean(r->passed));
    json_object_set_new(j, "unmet", str_or_null(r->unmet));
    json_object_set_new(j, "duration_ms", json_integer((json_int_t)r->duration_ms));
    if (r->error)
        json_object_set_new(j, "error",
                            json_pack("{s:s,s:s}", "kind", rbx_error_kind_name(r->error->kind),
                                      "message", r->error->message));
    else
        json_object_set_new(j, "error", json_null());
    const struct rbx_outcome *f = r->first_failure;
    if (f && f->diag_kind) {
        _cleanup_free_ char *line = diagnosis_line(f);
        json_object_set_new(j, "diagnosis",
                            json_pack("{s:s,s:s,s:s?,s:s?,s:s}", "name", f->proc->name, "kind",
                                      f->diag_kind, "message", f->diag_message, "hint",
                                      f->diag_hint, "line", line));
    } else {
        json_object_set_new(j, "diagnosis", json_null());
    }
    json_t *svcs = json_array(), *steps = json_array();
    for (size_t i = 0; i < r->n_outcomes; i++)
        json_array_append_new(r->outcomes[i].is_service ? svcs : steps,
                              outcome_json(&r->outcomes[i]));
    json_object_set_new(j, "services", svcs);
    json_object_set_new(j, "steps", steps);
    json_object_set_new(j, "kept", strv_json(r->kept_dirs));
    return j;
}

/* A line that opens an error report: "Error: ...", "TypeError [ERR_X]: ...",
 * "PrismaClientKnownRequestError: ...", "error: ...", "ERROR:  ...". */
static bool opens_error(const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (strncmp(line, "error:", 6) == 0 || strncmp(line, "ERROR:", 6) == 0)
        return true;
    size_t w = 0;
    while ((line[w] >= 'A' && line[w] <= 'Z') || (line[w] >= 'a' && line[w] <= 'z'))
        w++;
    return w >= 5 && strncmp(line + w - 5, "Error", 5) == 0 &&
           (line[w] == ':' || line[w] == ' ' || line[w] == '[');
}

/* At most `max` non-empty lines of the output, each indented: from the last line that opens an
 * error report when there is one (the words that explain, before the stack trace), else the
 * last lines. */
static void tail_lines(FILE *f, const char *label, const char *text, size_t max)
{
    if (!text || !*text)
        return;
    const char *lines[512];
    size_t n = 0, from = SIZE_MAX;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len && strspn(p, " \t") < len) {
            if (n == RBX_ARRAY_SIZE(lines)) {
                memmove(lines, lines + 1, (n - 1) * sizeof(*lines));
                n--;
                from = from == SIZE_MAX || from == 0 ? SIZE_MAX : from - 1;
            }
            if (opens_error(p))
                from = n;
            lines[n++] = p;
        }
        p += len + (nl ? 1 : 0);
    }
    size_t start = from != SIZE_MAX ? from : n > max ? n - max : 0;
    for (size_t i = start; i < n && i < start + max; i++) {
        size_t len = strcspn(lines[i], "\n");
        fprintf(f, "  %s | %.*s\n", label, (int)(len > 200 ? 200 : len), lines[i]);
    }
}

char *rbx_replay_summary(const struct rbx_replay *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    const struct rbx_outcome *first = r->first_failure;
    if (r->error)
        fprintf(f, "%s: reprobox could not replay it: %s\n", r->recipe->name, r->error->message);
    if (first) {
        _cleanup_free_ char *line = diagnosis_line(first);
        fprintf(f, "%s\n", line);
        if (first->diag_hint)
            fprintf(f, "  hint: %s\n", first->diag_hint);
        const char *err = first->res.stderr_tail, *out = first->res.stdout_tail;
        if (first->output_at_failure && *first->output_at_failure)
            tail_lines(f, "output", first->output_at_failure, 6);
        else if (err && *err)
            tail_lines(f, "stderr", err, 6);
        else if (out && *out)
            tail_lines(f, "stdout", out, 6);
        fputc('\n', f);
    }
    for (size_t i = 0; i < r->n_outcomes; i++) {
        const struct rbx_outcome *o = &r->outcomes[i];
        const char *mark = o->state == RBX_PROC_OK       ? "ok  "
                           : o->state == RBX_PROC_FAILED ? "FAIL"
                                                         : "-   ";
        fprintf(f, "  %s %-8s %-14s %s", mark, o->is_service ? "service" : "step", o->proc->name,
                o->outcome_text ? o->outcome_text : "");
        if (o->diag_kind)
            fprintf(f, " (%s)", o->diag_kind);
        fputc('\n', f);
    }
    if (r->unmet)
        fprintf(f, "expectations: not met: %s\n", r->unmet);
    else
        fprintf(f, "expectations: met%s\n",
                rbx_replay_succeeded(r) ? "" : " (this recipe expects the failure above)");
    for (size_t i = 0; r->kept_dirs && r->kept_dirs[i]; i++)
        fprintf(f, "kept: %s\n", r->kept_dirs[i]);
    fclose(f);
    return buf;
}
