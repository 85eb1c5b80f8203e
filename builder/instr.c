/* instr.c — the instructions that only change the image config (ENV, ARG, LABEL, USER, CMD,
 * ENTRYPOINT, SHELL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER, WORKDIR's
 * path), their history entries as BuildKit writes them, and the final config JSON. */
#include "builder/builder-internal.h"

#include <signal.h>
#include <string.h>
#include <time.h>

void rbx_rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void rbx_stage_history(struct rbx_build_state *b, struct rbx_bstage *st, const char *created_by,
                       bool empty_layer)
{
    char created[32];
    rbx_rfc3339(b->opts->source_date_epoch, created);
    json_t *h = json_pack("{s:s, s:s}", "created", created, "created_by", created_by);
    if (empty_layer)
        json_object_set_new(h, "empty_layer", json_true());
    json_array_append_new(st->history, h);
}

char **rbx_stage_shell_wrap(const struct rbx_bstage *st, const char *text)
{
    char **v = NULL;
    if (st->shell && st->shell[0]) {
        v = rbx_strv_copy(st->shell);
    } else {
        rbx_strv_push(&v, "/bin/sh");
        rbx_strv_push(&v, "-c");
    }
    rbx_strv_push(&v, text);
    return v;
}

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static char *json_text(json_t *j)
{
    char *s = rbx_json_dump_canonical(j);
    json_decref(j);
    return s;
}

static char **command_of(const struct rbx_bstage *st, const struct rbx_df_command *c)
{
    if (c->exec)
        return rbx_strv_copy(c->args);
    return rbx_stage_shell_wrap(st, c->args[0]);
}

static json_t *object_member(json_t *obj, const char *key)
{
    json_t *m = json_object_get(obj, key);
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(obj, key, m);
    }
    return m;
}

/* "80", "80/UDP", "8000-8002/tcp" -> the ports docker records, each "N/proto". */
static int expose(json_t *ports, const char *word, struct rbx_error **err)
{
    const char *slash = strchr(word, '/');
    _cleanup_free_ char *num =
        slash ? rbx_xstrndup(word, (size_t)(slash - word)) : rbx_xstrdup(word);
    _cleanup_free_ char *proto = rbx_xstrdup(slash ? slash + 1 : "tcp");
    for (char *p = proto; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 && strcmp(proto, "sctp") != 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid proto: %s", proto);
    unsigned long lo, hi;
    char *end;
    errno = 0;
    lo = strtoul(num, &end, 10);
    hi = lo;
    if (*end == '-')
        hi = strtoul(end + 1, &end, 10);
    if (errno || *end || end == num || lo == 0 || hi > 65535 || hi < lo || hi - lo > 65535)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid containerPort: %s", word);
    for (unsigned long p = lo; p <= hi; p++) {
        char key[32];
        snprintf(key, sizeof(key), "%lu/%s", p, proto);
        json_object_set_new(ports, key, json_object());
    }
    return 0;
}

static int valid_signal(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end)
        return n > 0 && n < NSIG ? 0 : -EINVAL;
    const char *name = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (int i = 1; i < NSIG; i++) {
        const char *abbrev = sigabbrev_np(i);
        if (abbrev && strcasecmp(abbrev, name) == 0)
            return 0;
    }
    if (strncmp(name, "RTMIN", 5) == 0 || strncmp(name, "RTMAX", 5) == 0)
        return 0;
    return -EINVAL;
}

static const char *build_arg_value(const struct rbx_build_state *b, const char *name)
{
    return rbx_env_get(b->build_args, name);
}

static void mark_used(struct rbx_build_state *b, const char *name)
{
    for (size_t i = 0; b->used_args && b->used_args[i]; i++)
        if (strcmp(b->used_args[i], name) == 0)
            return;
    rbx_strv_push(&b->used_args, name);
}

static int do_arg(struct rbx_build_state *b, struct rbx_bstage *st, const struct rbx_df_instr *in,
                  struct rbx_error **err)
{
    _cleanup_free_ char *msg = rbx_xstrdup("ARG");
    for (size_t i = 0; i < in->kv.n_pairs; i++) {
        const char *key = in->kv.pairs[i].key;
        const char *def = in->kv.pairs[i].value;
        const char *given = build_arg_value(b, key);
        _cleanup_free_ char *value = NULL;
        if (given) {
            value = rbx_xstrdup(given);
        } else if (def) {
            int r = rbx_df_expand_word(def, b->df->escape, (rbx_df_lookup_fn)rbx_df_lookup_env,
                                       st->state_env, &value, err);
            if (r < 0)
                return r;
        } else {
            /* A bare ARG takes the global ARG's value, as BuildKit does. */
            bool global = false;
            for (size_t k = 0; b->global_args && b->global_args[k]; k++)
                global |= strcmp(b->global_args[k], key) == 0;
            const char *gv = global ? rbx_env_get(b->global_env, key) : NULL;
            if (gv)
                value = rbx_xstrdup(gv);
        }
        mark_used(b, key);
        bool seen = false;
        for (size_t k = 0; st->args && st->args[k]; k++)
            seen |= strcmp(st->args[k], key) == 0;
        if (!seen)
            rbx_strv_push(&st->args, key);
        if (value) {
            _cleanup_free_ char *kv = rbx_xasprintf("%s=%s", key, value);
            rbx_env_set(&st->state_env, kv);
            char *m = rbx_xasprintf("%s %s", msg, kv);
            free(msg);
            msg = m;
        } else {
            char *m = rbx_xasprintf("%s %s", msg, key);
            free(msg);
            msg = m;
        }
    }
    rbx_stage_history(b, st, msg, true);
    return 0;
}

int rbx_instr_config(struct rbx_build_state *b, struct rbx_bstage *st,
                     const struct rbx_df_instr *in, struct rbx_error **err)
{
    json_t *c = st->config;
    _cleanup_free_ char *msg = NULL;
    switch (in->kind) {
    case RBX_DF_ARG: return do_arg(b, st, in, err);
    case RBX_DF_ENV:
        msg = rbx_xstrdup("ENV");
        for (size_t i = 0; i < in->kv.n_pairs; i++) {
            _cleanup_free_ char *kv =
                rbx_xasprintf("%s=%s", in->kv.pairs[i].key, in->kv.pairs[i].value);
            rbx_env_set(&st->cfg_env, kv);
            rbx_env_set(&st->state_env, kv);
            char *m = rbx_xasprintf("%s %s", msg, kv);
            free(msg);
            msg = m;
        }
        break;
    case RBX_DF_LABEL:
    case RBX_DF_MAINTAINER:
        if (in->kind == RBX_DF_MAINTAINER) {
            free(st->author);
            st->author = rbx_xstrdup(in->kv.pairs[0].value);
            msg = rbx_xasprintf("MAINTAINER %s", st->author);
            break;
        }
        msg = rbx_xstrdup("LABEL");
        for (size_t i = 0; i < in->kv.n_pairs; i++) {
            json_object_set_new(object_member(c, "Labels"), in->kv.pairs[i].key,
                                json_string(in->kv.pairs[i].value));
            char *m = rbx_xasprintf("%s %s=%s", msg, in->kv.pairs[i].key, in->kv.pairs[i].value);
            free(msg);
            msg = m;
        }
        break;
    case RBX_DF_USER:
        free(st->user);
        st->user = *in->arg ? rbx_xstrdup(in->arg) : NULL;
        json_object_set_new(c, "User", json_string(in->arg));
        msg = rbx_xasprintf("USER %s", in->arg);
        break;
    case RBX_DF_WORKDIR: {
        _cleanup_free_ char *joined =
            in->arg[0] == '/' ? rbx_xstrdup(in->arg) : rbx_xasprintf("%s/%s", st->workdir, in->arg);
        _cleanup_free_ char *clean = rbx_path_clean_clamped(joined);
        free(st->workdir);
        st->workdir = rbx_xasprintf("/%s", clean);
        json_object_set_new(c, "WorkingDir", json_string(st->workdir));
        return 0; /* the directory and its history: rbx_step_workdir */
    }
    case RBX_DF_CMD:
    case RBX_DF_ENTRYPOINT: {
        _cleanup_strv_ char **cmd = command_of(st, &in->cmd);
        bool is_cmd = in->kind == RBX_DF_CMD;
        json_object_set_new(c, is_cmd ? "Cmd" : "Entrypoint", strv_json(cmd));
        if (is_cmd)
            st->cmd_set = true;
        else if (!st->cmd_set)
            json_object_del(c, "Cmd"); /* an ENTRYPOINT drops the base image's CMD */
        _cleanup_free_ char *arr = json_text(strv_json(cmd));
        msg = rbx_xasprintf("%s %s", is_cmd ? "CMD" : "ENTRYPOINT", arr);
        break;
    }
    case RBX_DF_SHELL: {
        rbx_strv_free(st->shell);
        st->shell = rbx_strv_copy(in->cmd.args);
        json_object_set_new(c, "Shell", strv_json(st->shell));
        _cleanup_free_ char *arr = json_text(strv_json(st->shell));
        msg = rbx_xasprintf("SHELL %s", arr);
        break;
    }
    case RBX_DF_EXPOSE: {
        json_t *ports = object_member(c, "ExposedPorts");
        msg = rbx_xstrdup("EXPOSE");
        for (size_t i = 0; in->list.words[i]; i++) {
            int r = expose(ports, in->list.words[i], err);
            if (r < 0)
                return r;
            char *m = rbx_xasprintf("%s %s", msg, in->list.words[i]);
            free(msg);
            msg = m;
        }
        break;
    }
    case RBX_DF_VOLUME: {
        json_t *vols = object_member(c, "Volumes");
        msg = rbx_xstrdup("VOLUME [");
        for (size_t i = 0; in->list.words[i]; i++) {
            if (!*in->list.words[i])
                return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                     "VOLUME specified can not be an empty string");
            json_object_set_new(vols, in->list.words[i], json_object());
            char *m = rbx_xasprintf("%s%s%s", msg, i ? " " : "", in->list.words[i]);
            free(msg);
            msg = m;
        }
        char *m = rbx_xasprintf("%s]", msg);
        free(msg);
        msg = m;
        break;
    }
    case RBX_DF_STOPSIGNAL:
        if (valid_signal(in->arg) < 0)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid signal: %s", in->arg);
        json_object_set_new(c, "StopSignal", json_string(in->arg));
        msg = rbx_xasprintf("STOPSIGNAL %s", in->arg);
        break;
    case RBX_DF_HEALTHCHECK: {
        json_t *h = json_object();
        json_t *test = json_array();
        if (in->health.none) {
            json_array_append_new(test, json_string("NONE"));
        } else if (in->health.cmd.exec) {
            json_array_append_new(test, json_string("CMD"));
            for (size_t i = 0; in->health.cmd.args[i]; i++)
                json_array_append_new(test, json_string(in->health.cmd.args[i]));
        } else {
            json_array_append_new(test, json_string("CMD-SHELL"));
            json_array_append_new(test, json_string(in->health.cmd.args[0]));
        }
        json_object_set_new(h, "Test", test);
        if (in->health.interval_ns)
            json_object_set_new(h, "Interval", json_integer((json_int_t)in->health.interval_ns));
        if (in->health.timeout_ns)
            json_object_set_new(h, "Timeout", json_integer((json_int_t)in->health.timeout_ns));
        if (in->health.start_period_ns)
            json_object_set_new(h, "StartPeriod",
                                json_integer((json_int_t)in->health.start_period_ns));
        if (in->health.start_interval_ns)
            json_object_set_new(h, "StartInterval",
                                json_integer((json_int_t)in->health.start_interval_ns));
        if (in->health.retries)
            json_object_set_new(h, "Retries", json_integer(in->health.retries));
        json_object_set_new(c, "Healthcheck", h);
        _cleanup_free_ char *t = rbx_json_dump_canonical(h);
        msg = rbx_xasprintf("HEALTHCHECK %s", t);
        break;
    }
    case RBX_DF_ONBUILD: {
        json_t *ob = json_object_get(c, "OnBuild");
        if (!json_is_array(ob)) {
            ob = json_array();
            json_object_set_new(c, "OnBuild", ob);
        }
        json_array_append_new(ob, json_string(in->onbuild.expression));
        return 0; /* BuildKit writes no history for ONBUILD */
    }
    default: return rbx_error_set(err, RBX_ERR_INTERNAL, EINVAL, "not a config instruction");
    }
    rbx_stage_history(b, st, msg, true);
    return 0;
}

char *rbx_stage_config_json(struct rbx_build_state *b, const struct rbx_bstage *st)
{
    char created[32];
    rbx_rfc3339(b->opts->source_date_epoch, created);
    json_t *config = json_deep_copy(st->config);
    json_object_set_new(config, "Env", strv_json(st->cfg_env));
    json_t *ids = json_array();
    for (size_t i = 0; i < st->n_layers; i++)
        json_array_append_new(ids, json_string(st->layers[i].out.diff_id));
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:o}, s:O}", "architecture",
                  st->platform.architecture, "os", st->platform.os, "created", created, "config",
                  config, "rootfs", "type", "layers", "diff_ids", ids, "history", st->history);
    if (!j)
        abort();
    if (st->platform.variant[0])
        json_object_set_new(j, "variant", json_string(st->platform.variant));
    if (st->author)
        json_object_set_new(j, "author", json_string(st->author));
    return json_text(j);
}
