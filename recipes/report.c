/* report.c — the JSON run report (schema in docs/report.md): what ran, as whom, where, how it
 * ended and how long each phase took. Environment values never appear, only names. */
#include "recipes/recipes.h"

#include <fcntl.h>
#include <string.h>

#define REPORT_SCHEMA "reprobox.run/v1"

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* Lines of a tail as an array; a final line without newline counts. Invalid UTF-8 is replaced so
 * the report stays valid JSON. */
static json_t *lines_json(const char *text)
{
    json_t *a = json_array();
    if (!text)
        return a;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_t *s = json_stringn(p, n);
        if (!s) {
            _cleanup_free_ char *clean = rbx_xstrndup(p, n);
            for (char *c = clean; *c; c++)
                if ((unsigned char)*c >= 0x80)
                    *c = '?';
            s = json_string(clean);
        }
        json_array_append_new(a, s ? s : json_string(""));
        p += n + (nl ? 1 : 0);
    }
    return a;
}

/* What confined the run and what limited it, as applied (docs/report.md "sandbox"). */
json_t *rbx_run_report_sandbox(const struct rbx_spec *spec, const struct rbx_result *res)
{
    json_t *sb = json_object();
    json_t *caps = json_array();
    for (unsigned c = 0; c < 64; c++)
        if ((res->caps & (1ULL << c)) && rbx_cap_name(c))
            json_array_append_new(caps, json_string(rbx_cap_name(c)));
    json_object_set_new(sb, "capabilities", caps);
    json_object_set_new(sb, "seccomp", json_string(res->seccomp));
    json_object_set_new(sb, "no_new_privileges", json_true());
    json_object_set_new(sb, "init", json_boolean(spec->init));
    json_object_set_new(sb, "tty", json_boolean(spec->tty));
    json_object_set_new(sb, "network", json_string(spec->network == RBX_NETWORK_HOST ? "host" : "none"));
    json_t *lim = json_object();
    json_object_set_new(lim, "cgroup", json_string(res->cgroup));
    json_object_set_new(lim, "memory_bytes",
                        res->limits.memory_bytes ? json_integer((json_int_t)res->limits.memory_bytes) : json_null());
    json_object_set_new(lim, "pids", res->limits.pids > 0 ? json_integer(res->limits.pids) : json_null());
    json_object_set_new(lim, "cpus",
                        res->limits.cpu_millis ? json_real((double)res->limits.cpu_millis / 1000.0) : json_null());
    json_object_set_new(lim, "note", res->limits_note ? json_string(res->limits_note) : json_null());
    json_object_set_new(sb, "limits", lim);
    json_t *t = json_object();
    json_object_set_new(t, "timeout_ms", spec->timeout_ms ? json_integer((json_int_t)spec->timeout_ms) : json_null());
    json_object_set_new(t, "idle_timeout_ms",
                        spec->idle_timeout_ms ? json_integer((json_int_t)spec->idle_timeout_ms) : json_null());
    json_object_set_new(t, "stop_timeout_ms",
                        json_integer((json_int_t)(spec->stop_timeout_ms ? spec->stop_timeout_ms : 10000)));
    json_object_set_new(sb, "timeouts", t);
    return sb;
}

static double ms(uint64_t ns) { return (double)(ns / 1000) / 1000.0; }

json_t *rbx_run_report(const struct rbx_image *img, const struct rbx_spec *spec,
                       const struct rbx_compose_info *info, const struct rbx_result *res,
                       const struct rbx_run_timings *t, const struct rbx_error *error)
{
    json_t *r = json_object();
    json_object_set_new(r, "schema", json_string(REPORT_SCHEMA));
    json_object_set_new(r, "reprobox_version", json_string(REPROBOX_VERSION));

    json_t *image = json_object();
    if (img) {
        json_object_set_new(image, "reference", json_string(img->reference));
        json_object_set_new(image, "manifest_digest", str_or_null(img->manifest_digest));
        json_object_set_new(image, "config_digest", str_or_null(img->config_digest));
        json_object_set_new(image, "layers", json_integer((json_int_t)img->n_layers));
    }
    json_object_set_new(r, "image", image);

    json_t *cmd = json_object();
    if (spec) {
        json_object_set_new(cmd, "argv", strv_json(spec->argv));
        json_object_set_new(cmd, "exec_path", str_or_null(res ? res->exec_path : NULL));
        json_object_set_new(cmd, "env_names", strv_json(info ? info->env_names : NULL));
        json_object_set_new(cmd, "user", str_or_null(spec->user));
        json_object_set_new(cmd, "cwd", str_or_null(spec->cwd));
        json_object_set_new(cmd, "cwd_created", json_boolean(res && res->cwd_created));
        json_object_set_new(cmd, "hostname", str_or_null(spec->hostname));
        json_object_set_new(cmd, "network",
                            json_string(spec->network == RBX_NETWORK_HOST ? "host" : "none"));
        if (res && res->exec_path) {
            json_object_set_new(cmd, "uid", json_integer(res->uid));
            json_object_set_new(cmd, "gid", json_integer(res->gid));
        }
    }
    json_object_set_new(r, "command", cmd);

    json_t *result = json_object();
    if (error) {
        json_object_set_new(result, "status", json_string("error"));
        json_object_set_new(result, "exit_code", json_integer(res && res->exit_code ? res->exit_code : 125));
        json_t *e = json_object();
        json_object_set_new(e, "kind", json_string(rbx_error_kind_name(error->kind)));
        json_object_set_new(e, "message", json_string(error->message));
        json_object_set_new(result, "error", e);
    } else if (res && res->signal) {
        const char *abbrev = sigabbrev_np(res->signal);
        _cleanup_free_ char *name = abbrev ? rbx_xasprintf("SIG%s", abbrev) : rbx_xasprintf("%d", res->signal);
        json_object_set_new(result, "status", json_string("signaled"));
        json_object_set_new(result, "exit_code", json_integer(res->exit_code));
        json_object_set_new(result, "signal", json_string(name));
    } else if (res) {
        json_object_set_new(result, "status", json_string("exited"));
        json_object_set_new(result, "exit_code", json_integer(res->exit_code));
    }
    if (res && !error) {
        static const char *const reasons[] = {"none", "timeout", "idle-timeout", "requested"};
        json_object_set_new(result, "stop_reason", json_string(reasons[res->stop_reason]));
        json_object_set_new(result, "killed_after_grace", json_boolean(res->killed_after_grace));
        json_object_set_new(result, "oom_killed", json_boolean(res->oom_killed));
        json_object_set_new(result, "stdout_bytes", json_integer((json_int_t)res->stdout_bytes));
        json_object_set_new(result, "stderr_bytes", json_integer((json_int_t)res->stderr_bytes));
    }
    json_object_set_new(r, "result", result);
    if (spec && res && res->cgroup)
        json_object_set_new(r, "sandbox", rbx_run_report_sandbox(spec, res));

    json_t *d = json_object();
    if (t) {
        json_object_set_new(d, "unpack", json_real(ms(t->unpack_ns)));
        json_object_set_new(d, "setup", json_real(ms(t->setup_ns)));
        json_object_set_new(d, "run", json_real(ms(t->run_ns)));
    }
    json_object_set_new(r, "durations_ms", d);

    json_object_set_new(r, "stdout_tail", lines_json(res ? res->stdout_tail : NULL));
    json_object_set_new(r, "stderr_tail", lines_json(res ? res->stderr_tail : NULL));

    json_t *notes = json_array();
    if (res && res->cwd_created && spec)
        json_array_append_new(notes, json_sprintf("working directory %s did not exist in the image; "
                                                  "it was created, as docker does",
                                                  spec->cwd));
    json_object_set_new(r, "notes", notes);
    return r;
}

int rbx_report_write(const json_t *report, const char *path, struct rbx_error **err)
{
    _cleanup_free_ char *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return rbx_error_set(err, RBX_ERR_INTERNAL, ENOMEM, "report: cannot serialise");
    _cleanup_free_ char *withnl = rbx_xasprintf("%s\n", text);
    int r = rbx_write_file_atomic_at(AT_FDCWD, path, withnl, strlen(withnl), 0644, err);
    return r < 0 ? rbx_error_wrap(err, "report %s", path) : 0;
}
