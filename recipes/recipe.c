/* recipe.c — loading a recipe file: strict JSON through dispatch tables that reject unknown
 * fields, every error located by file and JSON path ("api.json: steps[1].ready.http: expected a
 * string"), every count and duration capped. */
#include "recipes/recipes.h"

#include <fcntl.h>
#include <libgen.h>
#include <regex.h>
#include <signal.h>
#include <string.h>

/* ---- where we are: the file and the JSON path of the value being read ---------------------- */

struct ctx {
    const char *file;
    char path[512];
    char *const *caller_env;
    const char *dir;
    struct rbx_error **err;
};

static size_t path_push_key(struct ctx *c, const char *key)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old ? "." : "", key);
    return old;
}

static size_t path_push_index(struct ctx *c, size_t i)
{
    size_t old = strlen(c->path);
    snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);
    return old;
}

static void path_pop(struct ctx *c, size_t old)
{
    c->path[old] = '\0';
}

RBX_PRINTF(2, 3)
static int fail(struct ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path[0])
        return rbx_error_set(c->err, RBX_ERR_MALFORMED, EINVAL, "%s: %s: %s", c->file, c->path,
                             msg);
    return rbx_error_set(c->err, RBX_ERR_MALFORMED, EINVAL, "%s: %s", c->file, msg);
}

/* ---- the dispatch table --------------------------------------------------------------------- */

struct field;
typedef int (*field_fn)(const json_t *v, void *obj, const struct field *f, struct ctx *c);

struct field {
    const char *key;
    field_fn fn;
    size_t offset;
    unsigned flags;
    double min, max; /* numbers and integers */
};

enum { F_REQUIRED = 1 << 0 };

#define AT(obj, f, type) ((type *)((char *)(obj) + (f)->offset))

static int read_object(const json_t *v, void *obj, const struct field *fields, size_t n,
                       struct ctx *c)
{
    if (!json_is_object(v))
        return fail(c, "expected an object");
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)v, key, val) {
        const struct field *f = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(fields[i].key, key) == 0)
                f = &fields[i];
        size_t old = path_push_key(c, key);
        if (!f)
            return fail(c, "unknown field");
        /* null is refused by every handler: a recipe says what it means or leaves it out. */
        int r = f->fn(val, obj, f, c);
        if (r < 0)
            return r;
        path_pop(c, old);
    }
    for (size_t i = 0; i < n; i++) {
        if ((fields[i].flags & F_REQUIRED) && !json_object_get(v, fields[i].key)) {
            size_t old = path_push_key(c, fields[i].key);
            int r = fail(c, "missing (required)");
            path_pop(c, old);
            return r;
        }
    }
    return 0;
}

static int f_string(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_string(v))
        return fail(c, "expected a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(c, "contains a NUL character");
    char **dst = AT(obj, f, char *);
    free(*dst);
    *dst = rbx_xstrdup(json_string_value(v));
    return 0;
}

static int f_nonempty_string(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (json_is_string(v) && json_string_length(v) == 0)
        return fail(c, "must not be empty");
    return f_string(v, obj, f, c);
}

static int f_bool(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_boolean(v))
        return fail(c, "expected true or false");
    *AT(obj, f, bool) = json_is_true(v);
    return 0;
}

static int check_range(double x, const struct field *f, struct ctx *c)
{
    if (x < f->min || x > f->max)
        return fail(c, "%g is out of range (%g to %g)", x, f->min, f->max);
    return 0;
}

static int f_int(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_integer(v))
        return fail(c, "expected an integer");
    json_int_t x = json_integer_value(v);
    if (check_range((double)x, f, c) < 0)
        return -EINVAL;
    *AT(obj, f, int) = (int)x;
    return 0;
}

/* Durations are seconds in the file (a number, fractions allowed), milliseconds inside. */
static int f_seconds(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_number(v))
        return fail(c, "expected a number of seconds");
    double s = json_number_value(v);
    if (s <= 0 || s > RBX_RECIPE_MAX_TIMEOUT_S)
        return fail(c, "%g is out of range (more than 0, at most %d seconds)", s,
                    RBX_RECIPE_MAX_TIMEOUT_S);
    *AT(obj, f, uint64_t) = (uint64_t)(s * 1000.0 + 0.5);
    return 0;
}

static int f_double_seconds(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    uint64_t ms = 0;
    struct field tmp = *f;
    tmp.offset = 0;
    int r = f_seconds(v, &ms, &tmp, c);
    if (r < 0)
        return r;
    *AT(obj, f, double) = (double)ms / 1000.0;
    return 0;
}

static int read_strv(const json_t *v, char ***dst, bool nonempty, struct ctx *c)
{
    if (!json_is_array(v))
        return fail(c, "expected an array of strings");
    if (nonempty && json_array_size(v) == 0)
        return fail(c, "must not be empty");
    if (json_array_size(v) > 4096)
        return fail(c, "more than 4096 entries");
    _cleanup_strv_ char **out = NULL;
    size_t i;
    json_t *e;
    json_array_foreach (v, i, e) {
        size_t old = path_push_index(c, i);
        if (!json_is_string(e))
            return fail(c, "expected a string");
        if (strlen(json_string_value(e)) != json_string_length(e))
            return fail(c, "contains a NUL character");
        path_pop(c, old);
        rbx_strv_push(&out, json_string_value(e));
    }
    if (!out)
        out = rbx_xcalloc(1, sizeof(char *));
    rbx_strv_free(*dst);
    *dst = TAKE_PTR(out);
    return 0;
}

static int f_command(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    int r = read_strv(v, AT(obj, f, char **), true, c);
    if (r == 0 && !(*AT(obj, f, char **))[0][0]) {
        size_t old = path_push_index(c, 0);
        r = fail(c, "the command is an empty string");
        path_pop(c, old);
    }
    return r;
}

static bool env_name_valid(const char *k)
{
    if (!*k || strchr(k, '='))
        return false;
    for (const char *p = k; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n')
            return false;
    return true;
}

/* {"K": "V"} into "K=V" entries, in the file's order. */
static int f_env(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_object(v))
        return fail(c, "expected an object of strings");
    char ***dst = AT(obj, f, char **);
    const char *k;
    json_t *val;
    json_object_foreach ((json_t *)v, k, val) {
        size_t old = path_push_key(c, k);
        if (!env_name_valid(k))
            return fail(c, "not a variable name");
        if (!json_is_string(val))
            return fail(c, "expected a string");
        if (strlen(json_string_value(val)) != json_string_length(val))
            return fail(c, "contains a NUL character");
        path_pop(c, old);
        _cleanup_free_ char *kv = rbx_xasprintf("%s=%s", k, json_string_value(val));
        rbx_env_set(dst, kv);
    }
    if (!*dst)
        *dst = rbx_xcalloc(1, sizeof(char *));
    return 0;
}

/* ["JWT_SECRET", "DATABASE_URL"]: variable names, each once. */
static int f_env_names(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    char ***dst = AT(obj, f, char **);
    int r = read_strv(v, dst, false, c);
    if (r < 0)
        return r;
    for (size_t i = 0; (*dst)[i]; i++) {
        size_t old = path_push_index(c, i);
        if (!env_name_valid((*dst)[i]))
            return fail(c, "\"%s\" is not a variable name", (*dst)[i]);
        for (size_t k = 0; k < i; k++)
            if (strcmp((*dst)[k], (*dst)[i]) == 0)
                return fail(c, "\"%s\" is listed twice", (*dst)[i]);
        path_pop(c, old);
    }
    return 0;
}

static char *make_absolute(const char *dir, const char *p)
{
    return p[0] == '/' ? rbx_xstrdup(p) : rbx_xasprintf("%s/%s", dir, p);
}

static int f_env_file(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    _cleanup_strv_ char **files = NULL;
    if (json_is_string(v)) {
        rbx_strv_push(&files, json_string_value(v));
    } else if (json_is_array(v)) {
        int r = read_strv(v, &files, false, c);
        if (r < 0)
            return r;
    } else {
        return fail(c, "expected a string or an array of strings");
    }
    char ***dst = AT(obj, f, char **);
    for (size_t i = 0; files[i]; i++) {
        if (!files[i][0])
            return fail(c, "an empty file name");
        rbx_strv_push_take(dst, make_absolute(c->dir, files[i]));
    }
    return 0;
}

static int f_network(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_string(v))
        return fail(c, "expected a string");
    const char *s = json_string_value(v);
    if (strcmp(s, "none") == 0)
        *AT(obj, f, enum rbx_network_mode) = RBX_NETWORK_NONE;
    else if (strcmp(s, "host") == 0)
        *AT(obj, f, enum rbx_network_mode) = RBX_NETWORK_HOST;
    else
        return fail(c, "\"%s\" is not a network mode (none or host)", s);
    return 0;
}

static int f_absolute_path(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (json_is_string(v) && json_string_value(v)[0] != '/')
        return fail(c, "must be an absolute path");
    return f_string(v, obj, f, c);
}

static int f_name(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_string(v))
        return fail(c, "expected a string");
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    bool ok = n > 0 && n <= 63 && n == json_string_length(v);
    for (size_t i = 0; ok && i < n; i++) {
        char ch = s[i];
        bool alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        ok = alnum || (i > 0 && (ch == '-' || ch == '_' || ch == '.'));
    }
    if (!ok)
        return fail(c,
                    "\"%s\" is not a name (letters, digits, and - _ . after the first, at "
                    "most 63)",
                    s);
    return f_string(v, obj, f, c);
}

/* glibc compiles repetition by copying, so "a++++..." or "(a{1,200}){1,200}" costs memory
 * without bound: a recipe's pattern stays small, with no repetition of a repetition. */
#define REGEX_MAX_LEN 512
#define REGEX_MAX_REPEATS 32
#define REGEX_MAX_BOUND 100

static const char *regex_unsafe(const char *re)
{
    if (strlen(re) > REGEX_MAX_LEN)
        return "longer than 512 characters";
    unsigned repeats = 0;
    bool after_repeat = false, in_bracket = false;
    for (const char *p = re; *p; p++) {
        if (in_bracket) {
            if (*p == ']' && p[-1] != '[' && !(p[-1] == '^' && p[-2] == '['))
                in_bracket = false;
            continue;
        }
        if (*p == '\\' && p[1]) {
            p++;
            after_repeat = false;
            continue;
        }
        if (*p == '[') {
            in_bracket = true;
            after_repeat = false;
            continue;
        }
        bool rep = *p == '*' || *p == '+' || *p == '?' || *p == '{';
        if (rep && after_repeat)
            return "a repetition of a repetition (\"a++\", \"a*{2}\")";
        if (rep && ++repeats > REGEX_MAX_REPEATS)
            return "more than 32 repetitions";
        if (*p == '{') {
            char *end;
            for (const char *q = p + 1; *q && *q != '}'; q = end) {
                long n = strtol(q, &end, 10);
                if (end == q) {
                    end = (char *)q + 1;
                    continue;
                }
                if (n > REGEX_MAX_BOUND)
                    return "a repetition bound over 100";
            }
            p = strchr(p, '}') ? strchr(p, '}') : p;
        }
        after_repeat = rep;
    }
    return NULL;
}

static int f_regex(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_string(v))
        return fail(c, "expected a string");
    const char *why = regex_unsafe(json_string_value(v));
    if (why)
        return fail(c, "the pattern is too costly: %s", why);
    regex_t re;
    int rc = regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &re, msg, sizeof(msg));
        return fail(c, "not a POSIX extended regular expression: %s", msg);
    }
    regfree(&re);
    return f_string(v, obj, f, c);
}

static int f_diagnosis(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_string(v))
        return fail(c, "expected a string");
    const char *s = json_string_value(v);
    if (strcmp(s, "none") != 0 && !rbx_diagnosis_kind_valid(s))
        return fail(c, "\"%s\" is not a diagnosis kind (see docs/recipes.md)", s);
    return f_string(v, obj, f, c);
}

static int f_signal(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    int sig = 0;
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 1 || x > 64)
            return fail(c, "%lld is not a signal number", (long long)x);
        sig = (int)x;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strncmp(s, "SIG", 3) == 0)
            s += 3;
        for (int i = 1; i < NSIG && !sig; i++) {
            const char *name = sigabbrev_np(i);
            if (name && strcmp(name, s) == 0)
                sig = i;
        }
        if (!sig)
            return fail(c, "\"%s\" is not a signal name", json_string_value(v));
    } else {
        return fail(c, "expected a signal name or number");
    }
    *AT(obj, f, int) = sig;
    return 0;
}

/* ---- probes --------------------------------------------------------------------------------- */

static int f_probe_http(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (json_is_string(v) && strncmp(json_string_value(v), "http://", 7) != 0 &&
        strncmp(json_string_value(v), "https://", 8) != 0)
        return fail(c, "\"%s\" is not an http:// or https:// URL", json_string_value(v));
    return f_string(v, obj, f, c);
}

static int f_probe_exec(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    return f_command(v, obj, f, c);
}

static const struct field probe_fields[] = {
    {"http", f_probe_http, offsetof(struct rbx_probe, url), 0, 0, 0},
    {"tcp", f_int, offsetof(struct rbx_probe, port), 0, 1, 65535},
    {"exec", f_probe_exec, offsetof(struct rbx_probe, argv), 0, 0, 0},
    {"host", f_nonempty_string, offsetof(struct rbx_probe, host), 0, 0, 0},
    {"status", f_int, offsetof(struct rbx_probe, status), 0, 100, 599},
    {"timeout", f_seconds, offsetof(struct rbx_probe, timeout_ms), 0, 0, 0},
    {"interval", f_seconds, offsetof(struct rbx_probe, interval_ms), 0, 0, 0},
};

static int f_probe(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    struct rbx_probe *p = AT(obj, f, struct rbx_probe);
    int r = read_object(v, p, probe_fields, RBX_ARRAY_SIZE(probe_fields), c);
    if (r < 0)
        return r;
    unsigned kinds = !!p->url + !!p->port + !!p->argv;
    if (kinds != 1)
        return fail(c, "needs exactly one of \"http\", \"tcp\" or \"exec\"");
    p->kind = p->url ? RBX_PROBE_HTTP : p->port ? RBX_PROBE_TCP : RBX_PROBE_EXEC;
    if (p->host && p->kind != RBX_PROBE_TCP)
        return fail(c, "\"host\" goes with \"tcp\" only");
    if (p->status && p->kind != RBX_PROBE_HTTP)
        return fail(c, "\"status\" goes with \"http\" only");
    if (!p->host && p->kind == RBX_PROBE_TCP)
        p->host = rbx_xstrdup("127.0.0.1");
    if (!p->timeout_ms)
        p->timeout_ms = 30000;
    if (!p->interval_ms)
        p->interval_ms = 250;
    return 0;
}

/* ---- expectations --------------------------------------------------------------------------- */

static const struct field http_check_fields[] = {
    {"get", f_nonempty_string, offsetof(struct rbx_http_check, get), F_REQUIRED, 0, 0},
    {"status", f_int, offsetof(struct rbx_http_check, status), 0, 100, 599},
    {"body_contains", f_string, offsetof(struct rbx_http_check, body_contains), 0, 0, 0},
    {"body_matches", f_regex, offsetof(struct rbx_http_check, body_matches), 0, 0, 0},
};

static int f_http_checks(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    struct rbx_expect *e = obj;
    if (!json_is_array(v))
        return fail(c, "expected an array of objects");
    if (json_array_size(v) > RBX_RECIPE_MAX_CHECKS)
        return fail(c, "more than %d checks", RBX_RECIPE_MAX_CHECKS);
    e->http = rbx_xcalloc(json_array_size(v) + 1, sizeof(*e->http));
    size_t i;
    json_t *item;
    json_array_foreach (v, i, item) {
        size_t old = path_push_index(c, i);
        e->n_http = i + 1;
        int r =
            read_object(item, &e->http[i], http_check_fields, RBX_ARRAY_SIZE(http_check_fields), c);
        if (r < 0)
            return r;
        const char *g = e->http[i].get;
        if (g[0] != '/' && strncmp(g, "http://", 7) != 0 && strncmp(g, "https://", 8) != 0) {
            path_push_key(c, "get");
            return fail(c, "\"%s\" is neither a path (\"/health\") nor an http:// URL", g);
        }
        path_pop(c, old);
    }
    return 0;
}

static int f_bool_exists(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_boolean(v))
        return fail(c, "expected true or false");
    *AT(obj, f, int) = json_is_true(v) ? 1 : 0;
    return 0;
}

static const struct field file_check_fields[] = {
    {"path", f_absolute_path, offsetof(struct rbx_file_check, path), F_REQUIRED, 0, 0},
    {"exists", f_bool_exists, offsetof(struct rbx_file_check, exists), 0, 0, 0},
    {"contains", f_string, offsetof(struct rbx_file_check, contains), 0, 0, 0},
};

static int f_file_checks(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    struct rbx_expect *e = obj;
    if (!json_is_array(v))
        return fail(c, "expected an array of objects");
    if (json_array_size(v) > RBX_RECIPE_MAX_CHECKS)
        return fail(c, "more than %d checks", RBX_RECIPE_MAX_CHECKS);
    e->files = rbx_xcalloc(json_array_size(v) + 1, sizeof(*e->files));
    size_t i;
    json_t *item;
    json_array_foreach (v, i, item) {
        size_t old = path_push_index(c, i);
        e->n_files = i + 1;
        e->files[i].exists = -1;
        int r = read_object(item, &e->files[i], file_check_fields,
                            RBX_ARRAY_SIZE(file_check_fields), c);
        if (r < 0)
            return r;
        if (e->files[i].exists == 0 && e->files[i].contains)
            return fail(c, "\"contains\" with \"exists\": false can never be met");
        path_pop(c, old);
    }
    return 0;
}

static int f_exit(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    int r = f_int(v, obj, f, c);
    if (r == 0)
        ((struct rbx_expect *)obj)->has_exit = true;
    return r;
}

static const struct field expect_fields[] = {
    {"exit", f_exit, offsetof(struct rbx_expect, exit_code), 0, 0, 255},
    {"signal", f_signal, offsetof(struct rbx_expect, signal), 0, 0, 0},
    {"diagnosis", f_diagnosis, offsetof(struct rbx_expect, diagnosis), 0, 0, 0},
    {"diagnosis_contains", f_string, offsetof(struct rbx_expect, diagnosis_contains), 0, 0, 0},
    {"stdout_contains", f_string, offsetof(struct rbx_expect, stdout_contains), 0, 0, 0},
    {"stderr_contains", f_string, offsetof(struct rbx_expect, stderr_contains), 0, 0, 0},
    {"stdout_matches", f_regex, offsetof(struct rbx_expect, stdout_matches), 0, 0, 0},
    {"stderr_matches", f_regex, offsetof(struct rbx_expect, stderr_matches), 0, 0, 0},
    {"http", f_http_checks, 0, 0, 0, 0},
    {"files", f_file_checks, 0, 0, 0, 0},
    {"max_seconds", f_double_seconds, offsetof(struct rbx_expect, max_seconds), 0, 0, 0},
};

static int f_expect(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    struct rbx_expect *e = AT(obj, f, struct rbx_expect);
    e->set = true;
    int r = read_object(v, e, expect_fields, RBX_ARRAY_SIZE(expect_fields), c);
    if (r < 0)
        return r;
    if (e->has_exit && e->signal)
        return fail(c, "\"exit\" and \"signal\" can not both be met");
    return 0;
}

/* ---- services and steps --------------------------------------------------------------------- */

/* clang-format off */
#define PROC_COMMON                                                                                \
    {"name", f_name, offsetof(struct rbx_recipe_proc, name), F_REQUIRED, 0, 0},                    \
    {"command", f_command, offsetof(struct rbx_recipe_proc, command), 0, 0, 0},                    \
    {"entrypoint", f_string, offsetof(struct rbx_recipe_proc, entrypoint), 0, 0, 0},               \
    {"env", f_env, offsetof(struct rbx_recipe_proc, env), 0, 0, 0},                                \
    {"user", f_nonempty_string, offsetof(struct rbx_recipe_proc, user), 0, 0, 0},                  \
    {"workdir", f_absolute_path, offsetof(struct rbx_recipe_proc, workdir), 0, 0, 0},              \
    {"requires_env", f_env_names, offsetof(struct rbx_recipe_proc, requires_env), 0, 0, 0},        \
    {"ready", f_probe, offsetof(struct rbx_recipe_proc, ready), 0, 0, 0}
/* clang-format on */

static int f_image(const json_t *v, void *obj, const struct field *f, struct ctx *c);

static const struct field service_fields[] = {
    PROC_COMMON,
    {"image", f_image, offsetof(struct rbx_recipe_proc, image), F_REQUIRED, 0, 0},
};

static const struct field step_fields[] = {
    PROC_COMMON,
    {"timeout", f_seconds, offsetof(struct rbx_recipe_proc, timeout_ms), 0, 0, 0},
    {"idle_timeout", f_seconds, offsetof(struct rbx_recipe_proc, idle_timeout_ms), 0, 0, 0},
    {"stop_timeout", f_seconds, offsetof(struct rbx_recipe_proc, stop_timeout_ms), 0, 0, 0},
    {"detach", f_bool, offsetof(struct rbx_recipe_proc, detach), 0, 0, 0},
    {"expect", f_expect, offsetof(struct rbx_recipe_proc, expect), 0, 0, 0},
};

static int read_procs(const json_t *v, struct rbx_recipe_proc **out, size_t *n, size_t max,
                      bool service, struct ctx *c)
{
    if (!json_is_array(v))
        return fail(c, "expected an array of objects");
    if (json_array_size(v) > max)
        return fail(c, "more than %zu entries", max);
    *out = rbx_xcalloc(json_array_size(v) + 1, sizeof(**out));
    size_t i;
    json_t *item;
    json_array_foreach (v, i, item) {
        size_t old = path_push_index(c, i);
        struct rbx_recipe_proc *p = &(*out)[i];
        *n = i + 1;
        int r = service ? read_object(item, p, service_fields, RBX_ARRAY_SIZE(service_fields), c)
                        : read_object(item, p, step_fields, RBX_ARRAY_SIZE(step_fields), c);
        if (r < 0)
            return r;
        if (!service && p->ready.kind && !p->detach) {
            path_push_key(c, "ready");
            return fail(c, "only a step with \"detach\": true has a readiness probe");
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp((*out)[j].name, p->name) == 0) {
                path_push_key(c, "name");
                return fail(c, "\"%s\" is the name of %s[%zu] too", p->name,
                            service ? "services" : "steps", j);
            }
        path_pop(c, old);
    }
    return 0;
}

static int f_services(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    struct rbx_recipe *r = obj;
    return read_procs(v, &r->services, &r->n_services, RBX_RECIPE_MAX_SERVICES, true, c);
}

static int f_steps(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    struct rbx_recipe *r = obj;
    if (json_is_array(v) && json_array_size(v) == 0)
        return fail(c, "a recipe needs at least one step");
    return read_procs(v, &r->steps, &r->n_steps, RBX_RECIPE_MAX_STEPS, false, c);
}

/* ---- images: ${VAR} expansion, relative layout paths ---------------------------------------- */

/* Expand ${NAME} and ${NAME:-default} from the caller's environment. "$" alone stays. */
static int expand_vars(const char *in, struct ctx *c, char **out)
{
    size_t cap = strlen(in) + 1, len = 0;
    _cleanup_free_ char *buf = rbx_xmalloc(cap);
    for (const char *p = in; *p;) {
        const char *val = NULL;
        size_t vlen = 0, adv = 1;
        _cleanup_free_ char *inner = NULL; /* a default value points into it */
        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p, '}');
            if (!end)
                return fail(c, "\"${\" without a closing \"}\"");
            inner = rbx_xstrndup(p + 2, (size_t)(end - p - 2));
            char *dflt = strstr(inner, ":-");
            if (dflt) {
                *dflt = '\0';
                dflt += 2;
            }
            if (!*inner)
                return fail(c, "\"${}\" names no variable");
            val = rbx_env_get(c->caller_env, inner);
            if (!val || (!*val && dflt))
                val = dflt;
            if (!val)
                return fail(c, "${%s} is not set in the environment", inner);
            vlen = strlen(val);
            adv = (size_t)(end - p) + 1;
        } else {
            val = p;
            vlen = 1;
        }
        if (len + vlen + 1 > cap) {
            cap = (len + vlen + 1) * 2;
            buf = rbx_xrealloc(buf, cap);
        }
        memcpy(buf + len, val, vlen);
        len += vlen;
        p += adv;
    }
    buf[len] = '\0';
    *out = TAKE_PTR(buf);
    return 0;
}

/* Local transports name a path: a relative one is taken from the recipe's directory. */
static int f_image(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_string(v))
        return fail(c, "expected a string");
    if (json_string_length(v) == 0)
        return fail(c, "must not be empty");
    _cleanup_free_ char *ref = NULL;
    int r = expand_vars(json_string_value(v), c, &ref);
    if (r < 0)
        return r;
    static const char *const local[] = {"oci:", "oci-archive:", "docker-archive:"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(local); i++) {
        size_t n = strlen(local[i]);
        if (strncmp(ref, local[i], n) == 0 && ref[n] && ref[n] != '/') {
            char *abs = rbx_xasprintf("%.*s%s/%s", (int)n, ref, c->dir, ref + n);
            free(ref);
            ref = abs;
            break;
        }
    }
    struct rbx_ref parsed = {0};
    struct rbx_error *perr = NULL;
    r = rbx_ref_parse(ref, &parsed, &perr);
    rbx_ref_clear(&parsed);
    if (r < 0) {
        r = fail(c, "%s", perr->message);
        rbx_error_free(perr);
        return r;
    }
    char **dst = AT(obj, f, char *);
    free(*dst);
    *dst = TAKE_PTR(ref);
    return 0;
}

/* ---- build ---------------------------------------------------------------------------------- */

static int f_context(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    if (!json_is_string(v) || !json_string_length(v))
        return fail(c, json_is_string(v) ? "must not be empty" : "expected a string");
    _cleanup_free_ char *s = NULL;
    int r = expand_vars(json_string_value(v), c, &s);
    if (r < 0)
        return r;
    char **dst = AT(obj, f, char *);
    free(*dst);
    *dst = make_absolute(c->dir, s);
    return 0;
}

/* Build args: values may name the caller's environment (${NAME}, ${NAME:-default}), as the
 * image does, so a recipe can point FROM at a layout that lives elsewhere on each machine. */
static int f_build_args(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    int r = f_env(v, obj, f, c);
    if (r < 0)
        return r;
    char **args = *AT(obj, f, char **);
    for (size_t i = 0; args[i]; i++) {
        char *eq = strchr(args[i], '=');
        _cleanup_free_ char *name = rbx_xstrndup(args[i], (size_t)(eq - args[i]));
        size_t old = path_push_key(c, name);
        _cleanup_free_ char *value = NULL;
        r = expand_vars(eq + 1, c, &value);
        if (r < 0)
            return r;
        path_pop(c, old);
        char *kv = rbx_xasprintf("%.*s=%s", (int)(eq - args[i]), args[i], value);
        free(args[i]);
        args[i] = kv;
    }
    return 0;
}

static const struct field build_fields[] = {
    {"context", f_context, offsetof(struct rbx_recipe_build, context), F_REQUIRED, 0, 0},
    {"dockerfile", f_nonempty_string, offsetof(struct rbx_recipe_build, dockerfile), 0, 0, 0},
    {"target", f_nonempty_string, offsetof(struct rbx_recipe_build, target), 0, 0, 0},
    {"args", f_build_args, offsetof(struct rbx_recipe_build, args), 0, 0, 0},
};

static int f_build(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    struct rbx_recipe *rc = obj;
    rc->build = rbx_xcalloc(1, sizeof(*rc->build));
    int r = read_object(v, rc->build, build_fields, RBX_ARRAY_SIZE(build_fields), c);
    if (r < 0)
        return r;
    if (!rc->build->dockerfile)
        rc->build->dockerfile = rbx_xstrdup("Dockerfile");
    return 0;
}

static int f_ignore(const json_t *v, void *obj, const struct field *f, struct ctx *c)
{
    return json_is_string(v) ? 0 : fail(c, "expected a string");
}

static const struct field recipe_fields[] = {
    {"$schema", f_ignore, 0, 0, 0, 0},
    {"name", f_name, offsetof(struct rbx_recipe, name), 0, 0, 0},
    {"description", f_string, offsetof(struct rbx_recipe, description), 0, 0, 0},
    {"image", f_image, offsetof(struct rbx_recipe, image), 0, 0, 0},
    {"build", f_build, 0, 0, 0, 0},
    {"env", f_env, offsetof(struct rbx_recipe, env), 0, 0, 0},
    {"env_file", f_env_file, offsetof(struct rbx_recipe, env_files), 0, 0, 0},
    {"requires_env", f_env_names, offsetof(struct rbx_recipe, requires_env), 0, 0, 0},
    {"network", f_network, offsetof(struct rbx_recipe, network), 0, 0, 0},
    {"init", f_bool, offsetof(struct rbx_recipe, init), 0, 0, 0},
    {"user", f_nonempty_string, offsetof(struct rbx_recipe, user), 0, 0, 0},
    {"workdir", f_absolute_path, offsetof(struct rbx_recipe, workdir), 0, 0, 0},
    {"services", f_services, 0, 0, 0, 0},
    {"steps", f_steps, 0, F_REQUIRED, 0, 0},
};

/* ---- entry points --------------------------------------------------------------------------- */

static void proc_clear(struct rbx_recipe_proc *p)
{
    free(p->name);
    free(p->image);
    rbx_strv_free(p->command);
    free(p->entrypoint);
    rbx_strv_free(p->env);
    rbx_strv_free(p->requires_env);
    free(p->user);
    free(p->workdir);
    free(p->ready.url);
    free(p->ready.host);
    rbx_strv_free(p->ready.argv);
    struct rbx_expect *e = &p->expect;
    free(e->diagnosis);
    free(e->diagnosis_contains);
    free(e->stdout_contains);
    free(e->stderr_contains);
    free(e->stdout_matches);
    free(e->stderr_matches);
    for (size_t i = 0; i < e->n_http; i++) {
        free(e->http[i].get);
        free(e->http[i].body_contains);
        free(e->http[i].body_matches);
    }
    free(e->http);
    for (size_t i = 0; i < e->n_files; i++) {
        free(e->files[i].path);
        free(e->files[i].contains);
    }
    free(e->files);
}

struct rbx_recipe *rbx_recipe_free(struct rbx_recipe *r)
{
    if (!r)
        return NULL;
    free(r->path);
    free(r->dir);
    free(r->name);
    free(r->description);
    free(r->image);
    if (r->build) {
        free(r->build->context);
        free(r->build->dockerfile);
        free(r->build->target);
        rbx_strv_free(r->build->args);
        free(r->build);
    }
    rbx_strv_free(r->env);
    rbx_strv_free(r->env_files);
    rbx_strv_free(r->requires_env);
    free(r->user);
    free(r->workdir);
    for (size_t i = 0; i < r->n_services; i++)
        proc_clear(&r->services[i]);
    free(r->services);
    for (size_t i = 0; i < r->n_steps; i++)
        proc_clear(&r->steps[i]);
    free(r->steps);
    free(r);
    return NULL;
}

/* The recipe's name when it gives none: the file name without ".json". */
static char *name_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".json") == 0)
        n -= 5;
    return rbx_xstrndup(base, n);
}

static char *dir_of(const char *path)
{
    _cleanup_free_ char *copy = rbx_xstrdup(path);
    const char *d = dirname(copy);
    if (d[0] == '/')
        return rbx_xstrdup(d);
    _cleanup_free_ char *cwd = getcwd(NULL, 0);
    if (strcmp(d, ".") == 0)
        return rbx_xstrdup(cwd ? cwd : ".");
    return rbx_xasprintf("%s/%s", cwd ? cwd : ".", d);
}

int rbx_recipe_parse(const char *buf, size_t len, const char *path, char *const *caller_env,
                     struct rbx_recipe **out, struct rbx_error **err)
{
    _cleanup_(rbx_recipe_freep) struct rbx_recipe *r = rbx_xcalloc(1, sizeof(*r));
    r->path = rbx_xstrdup(path);
    r->dir = dir_of(path);
    struct ctx c = {.file = path, .caller_env = caller_env, .dir = r->dir, .err = err};

    if (len > RBX_RECIPE_MAX_BYTES)
        return rbx_error_set(err, RBX_ERR_LIMIT, EFBIG, "%s: larger than %u bytes", path,
                             RBX_RECIPE_MAX_BYTES);
    _cleanup_json_ json_t *j = rbx_json_loadb(buf, len, path, err);
    if (!j)
        return -EINVAL;
    if (!json_is_object(j))
        return fail(&c, "expected a JSON object at the top");
    int rc = read_object(j, r, recipe_fields, RBX_ARRAY_SIZE(recipe_fields), &c);
    if (rc < 0)
        return rc;
    if (!!r->image == !!r->build)
        return fail(&c, r->image ? "has both \"image\" and \"build\": give one of the two"
                                 : "needs \"image\" or \"build\"");
    if (!r->name)
        r->name = name_from_path(path);
    *out = TAKE_PTR(r);
    return 0;
}

int rbx_recipe_load(const char *path, char *const *caller_env, struct rbx_recipe **out,
                    struct rbx_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    int r = rbx_read_file_at(AT_FDCWD, path, RBX_RECIPE_MAX_BYTES, &buf, &len, err);
    if (r < 0)
        return rbx_error_wrap(err, "recipe %s", path);
    return rbx_recipe_parse(buf, len, path, caller_env, out, err);
}
