/* seccomp.c — seccomp profiles: Docker's JSON format parsed strictly (JSON paths in errors),
 * resolved for a process's capabilities and this host, compiled to BPF with libseccomp in the
 * parent and kept on disk keyed by (profile, arch, libseccomp version), so a warm run loads the
 * program without libseccomp. A prefix of our own answers ENOSYS for syscalls newer than the
 * profile, so libc's fallbacks work; the child installs the program last, before execve. */
#include "sandbox/seccomp-internal.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#define PREFIX_FORMAT "rbx-bpf/1"
#define MAX_INSNS 4096 /* BPF_MAXINSNS */
#define MAX_RULES 4096
#define MAX_NAMES 4096

/* ---- profiles -------------------------------------------------------------------------------- */

struct rbx_seccomp *rbx_seccomp_free(struct rbx_seccomp *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n_owned; i++)
        free(s->owned[i]);
    free(s->owned);
    for (size_t i = 0; i < s->n_owned_lists; i++)
        free(s->owned_lists[i]);
    free(s->owned_lists);
    if (!s->is_default)
        free(s->rows);
    free(s);
    return NULL;
}

int rbx_seccomp_default(struct rbx_seccomp **out)
{
    struct rbx_seccomp *s = rbx_xcalloc(1, sizeof(*s));
    s->default_action = SCMP_ACT_ERRNO(EPERM);
    s->default_errno = EPERM;
    s->rows = (struct rbx_seccomp_row *)rbx_seccomp_default_rows;
    s->n_rows = rbx_seccomp_default_rows_count;
    s->is_default = true;
    *out = s;
    return 0;
}

static char *own(struct rbx_seccomp *s, const char *text)
{
    s->owned = rbx_xrealloc(s->owned, (s->n_owned + 1) * sizeof(char *));
    return s->owned[s->n_owned++] = rbx_xstrdup(text);
}

/* Docker's action names. */
static const struct {
    const char *name;
    uint32_t action;
} actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD},   {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS}, {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0)},     {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0)},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},        {"SCMP_ACT_LOG", SCMP_ACT_LOG},
};

static const struct {
    const char *name;
    enum scmp_compare op;
} ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static const struct {
    const char *name;
    uint32_t arch;
} arch_names[] = {
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64}, {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},       {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},       {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64}, {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL}, {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32}, {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},   {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},     {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
};

static const char *arch_name(uint32_t arch)
{
    for (size_t i = 0; i < RBX_ARRAY_SIZE(arch_names); i++)
        if (arch_names[i].arch == arch)
            return arch_names[i].name;
    return NULL;
}

/* The host arch as Docker names it in includes.arches. */
static const char *docker_arch(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__i386__)
    return "386";
#else
    return "unknown";
#endif
}

/* ---- the JSON form: strict, every field known ------------------------------------------------ */

struct jctx {
    const char *what; /* the file name */
    struct rbx_error **err;
};

static int jfail(struct jctx *c, const char *path, const char *msg)
{
    return rbx_error_set(c->err, RBX_ERR_MALFORMED, EINVAL, "%s: %s: %s", c->what, path, msg);
}

static int parse_action(struct jctx *c, const char *path, json_t *v, uint32_t *out)
{
    if (!json_is_string(v))
        return jfail(c, path, "expected a string");
    const char *s = json_string_value(v);
    if (strcmp(s, "SCMP_ACT_NOTIFY") == 0)
        return rbx_error_set(c->err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: %s: SCMP_ACT_NOTIFY needs a seccomp agent reprobox does not run",
                             c->what, path);
    for (size_t i = 0; i < RBX_ARRAY_SIZE(actions); i++)
        if (strcmp(actions[i].name, s) == 0) {
            *out = actions[i].action;
            return 0;
        }
    _cleanup_free_ char *m = rbx_xasprintf("unknown action \"%s\"", s);
    return jfail(c, path, m);
}

static int parse_errno(struct jctx *c, const char *path, json_t *v, int *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 4095)
        return jfail(c, path, "expected an errno number (0-4095)");
    *out = (int)json_integer_value(v);
    return 0;
}

static int parse_arch(struct jctx *c, const char *path, json_t *v, uint32_t *out)
{
    if (!json_is_string(v))
        return jfail(c, path, "expected a string");
    for (size_t i = 0; i < RBX_ARRAY_SIZE(arch_names); i++)
        if (strcmp(arch_names[i].name, json_string_value(v)) == 0) {
            *out = arch_names[i].arch;
            return 0;
        }
    _cleanup_free_ char *m = rbx_xasprintf("unknown architecture \"%s\"", json_string_value(v));
    return jfail(c, path, m);
}

/* Keys outside `known` are errors naming their path. */
static int check_keys(struct jctx *c, const char *path, json_t *obj, const char *const *known)
{
    if (!json_is_object(obj))
        return jfail(c, path, "expected an object");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok) {
            _cleanup_free_ char *p = rbx_xasprintf("%s.%s", path, key);
            return jfail(c, p, "unknown field");
        }
    }
    return 0;
}

static int parse_caps(struct jctx *c, const char *path, json_t *v, uint64_t *out)
{
    if (!json_is_array(v))
        return jfail(c, path, "expected an array of capability names");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e)) {
            _cleanup_free_ char *p = rbx_xasprintf("%s[%zu]", path, i);
            return jfail(c, p, "expected a string");
        }
        char *list[] = {(char *)json_string_value(e), NULL};
        uint64_t one;
        _cleanup_error_ struct rbx_error *ce = NULL;
        /* Resolve the name alone: cap_add of one name over an empty set. */
        char *none[] = {"ALL", NULL};
        if (rbx_caps_resolve(list, none, &one, &ce) < 0) {
            _cleanup_free_ char *p = rbx_xasprintf("%s[%zu]", path, i);
            _cleanup_free_ char *m = rbx_xasprintf("unknown capability \"%s\"", list[0]);
            return jfail(c, p, m);
        }
        *out |= one;
    }
    return 0;
}

/* includes/excludes: caps (all needed / any excludes), arches, minKernel. */
static int parse_filter(struct jctx *c, struct rbx_seccomp *s, const char *path, json_t *v,
                        uint64_t *caps, const char **arches, const char **min_kernel)
{
    static const char *const keys[] = {"caps", "arches", "minKernel", NULL};
    int r = check_keys(c, path, v, keys);
    if (r < 0)
        return r;
    json_t *x;
    if ((x = json_object_get(v, "caps")) && !json_is_null(x)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.caps", path);
        r = parse_caps(c, p, x, caps);
        if (r < 0)
            return r;
    }
    if ((x = json_object_get(v, "arches")) && !json_is_null(x)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.arches", path);
        if (!json_is_array(x))
            return jfail(c, p, "expected an array of strings");
        _cleanup_free_ char *joined = rbx_xstrdup("");
        size_t i;
        json_t *e;
        json_array_foreach(x, i, e)
        {
            if (!json_is_string(e))
                return jfail(c, p, "expected an array of strings");
            char *n = rbx_xasprintf("%s%s%s", joined, i ? "," : "", json_string_value(e));
            free(joined);
            joined = n;
        }
        if (json_array_size(x))
            *arches = own(s, joined);
    }
    if ((x = json_object_get(v, "minKernel")) && !json_is_null(x)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.minKernel", path);
        if (!json_is_string(x))
            return jfail(c, p, "expected a string like \"4.8\"");
        unsigned a, b;
        if (sscanf(json_string_value(x), "%u.%u", &a, &b) != 2)
            return jfail(c, p, "expected a kernel version like \"4.8\"");
        *min_kernel = own(s, json_string_value(x));
    }
    return 0;
}

static int parse_args(struct jctx *c, const char *path, json_t *v, struct rbx_seccomp_row *row)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return jfail(c, path, "expected an array");
    if (json_array_size(v) > RBX_SECCOMP_MAX_ARGS)
        return jfail(c, path, "more than 6 argument conditions");
    static const char *const keys[] = {"index", "value", "valueTwo", "op", NULL};
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a)
    {
        _cleanup_free_ char *p = rbx_xasprintf("%s[%zu]", path, i);
        int r = check_keys(c, p, a, keys);
        if (r < 0)
            return r;
        json_t *idx = json_object_get(a, "index"), *val = json_object_get(a, "value"),
               *two = json_object_get(a, "valueTwo"), *op = json_object_get(a, "op");
        if (!json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 5) {
            _cleanup_free_ char *q = rbx_xasprintf("%s.index", p);
            return jfail(c, q, "expected an argument index 0-5");
        }
        /* jansson holds int64: values up to 2^63-1 (Docker's own profiles stay below). */
        if (!json_is_integer(val) || json_integer_value(val) < 0) {
            _cleanup_free_ char *q = rbx_xasprintf("%s.value", p);
            return jfail(c, q, "expected a non-negative integer");
        }
        if (two && !json_is_null(two) && (!json_is_integer(two) || json_integer_value(two) < 0)) {
            _cleanup_free_ char *q = rbx_xasprintf("%s.valueTwo", p);
            return jfail(c, q, "expected a non-negative integer");
        }
        struct rbx_seccomp_arg *arg = &row->args[row->n_args];
        arg->index = (unsigned)json_integer_value(idx);
        arg->value = (uint64_t)json_integer_value(val);
        arg->value_two = two && json_is_integer(two) ? (uint64_t)json_integer_value(two) : 0;
        bool found = false;
        for (size_t k = 0; k < RBX_ARRAY_SIZE(ops) && json_is_string(op); k++)
            if (strcmp(ops[k].name, json_string_value(op)) == 0) {
                arg->op = ops[k].op;
                found = true;
            }
        if (!found) {
            _cleanup_free_ char *q = rbx_xasprintf("%s.op", p);
            return jfail(c, q, "expected SCMP_CMP_NE, LT, LE, EQ, GE, GT or MASKED_EQ");
        }
        row->n_args++;
    }
    return 0;
}

static int parse_rule(struct jctx *c, struct rbx_seccomp *s, size_t index, json_t *v,
                      struct rbx_seccomp_row *row)
{
    static const char *const keys[] = {"names", "name", "action", "errnoRet", "args",
                                       "comment", "includes", "excludes", NULL};
    _cleanup_free_ char *path = rbx_xasprintf("syscalls[%zu]", index);
    int r = check_keys(c, path, v, keys);
    if (r < 0)
        return r;
    memset(row, 0, sizeof(*row));
    /* names (or the older single "name") */
    json_t *names = json_object_get(v, "names"), *name = json_object_get(v, "name");
    size_t n = 0;
    if (names && json_is_array(names))
        n = json_array_size(names);
    else if (names && !json_is_null(names)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.names", path);
        return jfail(c, p, "expected an array of syscall names");
    }
    if (name && !json_is_null(name) && !json_is_string(name)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.name", path);
        return jfail(c, p, "expected a string");
    }
    size_t total = n + (name && json_is_string(name) ? 1 : 0);
    if (total == 0)
        return jfail(c, path, "no syscall names");
    if (total > MAX_NAMES)
        return jfail(c, path, "too many names");
    const char **list = rbx_xcalloc(total + 1, sizeof(char *));
    s->owned_lists = rbx_xrealloc(s->owned_lists, (s->n_owned_lists + 1) * sizeof(char **));
    s->owned_lists[s->n_owned_lists++] = (char **)list;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(names, i);
        if (!json_is_string(e) || !*json_string_value(e)) {
            _cleanup_free_ char *p = rbx_xasprintf("%s.names[%zu]", path, i);
            return jfail(c, p, "expected a syscall name");
        }
        list[k++] = own(s, json_string_value(e));
    }
    if (name && json_is_string(name))
        list[k++] = own(s, json_string_value(name));
    row->names = list;

    _cleanup_free_ char *apath = rbx_xasprintf("%s.action", path);
    json_t *a = json_object_get(v, "action");
    if (!a)
        return jfail(c, apath, "missing");
    r = parse_action(c, apath, a, &row->action);
    if (r < 0)
        return r;
    json_t *er = json_object_get(v, "errnoRet");
    if (er && !json_is_null(er)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.errnoRet", path);
        if (row->action != SCMP_ACT_ERRNO(0) && row->action != SCMP_ACT_TRACE(0))
            return jfail(c, p, "only for SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
        r = parse_errno(c, p, er, &row->errno_ret);
        if (r < 0)
            return r;
    } else if (row->action == SCMP_ACT_ERRNO(0)) {
        row->errno_ret = EPERM;
    }
    if (row->action == SCMP_ACT_ERRNO(0))
        row->action = SCMP_ACT_ERRNO((uint32_t)row->errno_ret);
    else if (row->action == SCMP_ACT_TRACE(0))
        row->action = SCMP_ACT_TRACE((uint32_t)row->errno_ret);

    json_t *x;
    if ((x = json_object_get(v, "args"))) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.args", path);
        r = parse_args(c, p, x, row);
        if (r < 0)
            return r;
    }
    if ((x = json_object_get(v, "comment")) && !json_is_string(x) && !json_is_null(x)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.comment", path);
        return jfail(c, p, "expected a string");
    }
    const char *ignored_kernel = NULL, *ex_arches = NULL;
    if ((x = json_object_get(v, "includes")) && !json_is_null(x)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.includes", path);
        r = parse_filter(c, s, p, x, &row->caps_include, &row->arches, &row->min_kernel);
        if (r < 0)
            return r;
    }
    if ((x = json_object_get(v, "excludes")) && !json_is_null(x)) {
        _cleanup_free_ char *p = rbx_xasprintf("%s.excludes", path);
        r = parse_filter(c, s, p, x, &row->caps_exclude, &ex_arches, &ignored_kernel);
        if (r < 0)
            return r;
        if (ex_arches && strstr(ex_arches, docker_arch()))
            row->caps_include = ~0ULL; /* excluded on this host: never applies */
    }
    return 0;
}

int rbx_seccomp_from_json(const json_t *j, const char *what, struct rbx_seccomp **out,
                          struct rbx_error **err)
{
    struct jctx c = {.what = what, .err = err};
    static const char *const keys[] = {"defaultAction", "defaultErrnoRet", "architectures",
                                       "archMap",       "syscalls",        "flags",
                                       "listenerPath",  "listenerMetadata", NULL};
    int r = check_keys(&c, "(top)", (json_t *)j, keys);
    if (r < 0)
        return r;
    _cleanup_(rbx_seccomp_freep) struct rbx_seccomp *s = rbx_xcalloc(1, sizeof(*s));
    json_t *v = json_object_get(j, "defaultAction");
    if (!v)
        return jfail(&c, "defaultAction", "missing");
    r = parse_action(&c, "defaultAction", v, &s->default_action);
    if (r < 0)
        return r;
    s->default_errno = EPERM;
    if ((v = json_object_get(j, "defaultErrnoRet")) && !json_is_null(v)) {
        r = parse_errno(&c, "defaultErrnoRet", v, &s->default_errno);
        if (r < 0)
            return r;
    }
    if (s->default_action == SCMP_ACT_ERRNO(0))
        s->default_action = SCMP_ACT_ERRNO((uint32_t)s->default_errno);
    else if (s->default_action == SCMP_ACT_TRACE(0))
        s->default_action = SCMP_ACT_TRACE((uint32_t)s->default_errno);

    /* Arches: "architectures" as given, or archMap's entry for this host. */
    if ((v = json_object_get(j, "architectures")) && !json_is_null(v)) {
        if (!json_is_array(v) || json_array_size(v) > RBX_ARRAY_SIZE(s->arches))
            return jfail(&c, "architectures", "expected an array of at most 8 SCMP_ARCH_ names");
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            _cleanup_free_ char *p = rbx_xasprintf("architectures[%zu]", i);
            r = parse_arch(&c, p, e, &s->arches[s->n_arches]);
            if (r < 0)
                return r;
            s->n_arches++;
        }
    }
    if ((v = json_object_get(j, "archMap")) && !json_is_null(v)) {
        if (!json_is_array(v))
            return jfail(&c, "archMap", "expected an array");
        static const char *const mkeys[] = {"architecture", "subArchitectures", NULL};
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            _cleanup_free_ char *p = rbx_xasprintf("archMap[%zu]", i);
            r = check_keys(&c, p, e, mkeys);
            if (r < 0)
                return r;
            _cleanup_free_ char *ap = rbx_xasprintf("%s.architecture", p);
            uint32_t main_arch;
            r = parse_arch(&c, ap, json_object_get(e, "architecture"), &main_arch);
            if (r < 0)
                return r;
            json_t *subs = json_object_get(e, "subArchitectures");
            _cleanup_free_ char *sp = rbx_xasprintf("%s.subArchitectures", p);
            if (subs && !json_is_null(subs) && !json_is_array(subs))
                return jfail(&c, sp, "expected an array");
            uint32_t sub[8];
            size_t n_sub = 0;
            size_t k;
            json_t *se;
            json_array_foreach(subs, k, se)
            {
                if (n_sub >= 7)
                    return jfail(&c, sp, "too many sub-architectures");
                _cleanup_free_ char *q = rbx_xasprintf("%s[%zu]", sp, k);
                r = parse_arch(&c, q, se, &sub[n_sub]);
                if (r < 0)
                    return r;
                n_sub++;
            }
            if (main_arch != seccomp_arch_native() || s->n_arches)
                continue;
            s->arches[s->n_arches++] = main_arch;
            for (size_t q = 0; q < n_sub; q++)
                s->arches[s->n_arches++] = sub[q];
        }
    }
    if ((v = json_object_get(j, "flags")) && !json_is_null(v)) {
        if (!json_is_array(v))
            return jfail(&c, "flags", "expected an array");
        if (json_array_size(v))
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                 "%s: flags: seccomp filter flags are not supported", what);
    }
    if ((v = json_object_get(j, "listenerPath")) && !json_is_null(v) &&
        !(json_is_string(v) && !*json_string_value(v)))
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: listenerPath: seccomp agents are not supported", what);
    if ((v = json_object_get(j, "listenerMetadata")) && !json_is_null(v) && !json_is_string(v))
        return jfail(&c, "listenerMetadata", "expected a string");

    v = json_object_get(j, "syscalls");
    if (v && !json_is_null(v)) {
        if (!json_is_array(v))
            return jfail(&c, "syscalls", "expected an array");
        if (json_array_size(v) > MAX_RULES)
            return jfail(&c, "syscalls", "too many rules");
        s->rows = rbx_xcalloc(json_array_size(v) + 1, sizeof(*s->rows));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            r = parse_rule(&c, s, i, e, &s->rows[i]);
            if (r < 0)
                return r;
            s->n_rows++;
        }
    }
    *out = TAKE_PTR(s);
    return 0;
}

int rbx_seccomp_load_file(const char *path, struct rbx_seccomp **out, struct rbx_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = rbx_read_file_at(AT_FDCWD, path, 4 << 20, &text, &len, err);
    if (r < 0)
        return rbx_error_wrap(err, "seccomp profile");
    _cleanup_json_ json_t *j = rbx_json_loadb(text, len, path, err);
    if (!j)
        return -EINVAL;
    return rbx_seccomp_from_json(j, path, out, err);
}

/* ---- resolving for a process ----------------------------------------------------------------- */

static bool kernel_at_least(const char *min)
{
    if (!min)
        return true;
    static unsigned have_a, have_b;
    if (!have_a) {
        struct utsname u;
        if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &have_a, &have_b) != 2)
            return true;
    }
    unsigned a = 0, b = 0;
    if (sscanf(min, "%u.%u", &a, &b) != 2)
        return true;
    return have_a > a || (have_a == a && have_b >= b);
}

static bool arch_listed(const char *list, const char *arch)
{
    size_t n = strlen(arch);
    for (const char *p = list; p && *p;) {
        const char *c = strchrnul(p, ',');
        if ((size_t)(c - p) == n && memcmp(p, arch, n) == 0)
            return true;
        p = *c ? c + 1 : c;
    }
    return false;
}

static bool row_applies(const struct rbx_seccomp_row *row, uint64_t caps)
{
    if ((row->caps_include & caps) != row->caps_include)
        return false;
    if (row->caps_exclude & caps)
        return false;
    if (row->arches && !arch_listed(row->arches, docker_arch()))
        return false;
    return kernel_at_least(row->min_kernel);
}

static size_t profile_arches(const struct rbx_seccomp *s, uint32_t *out)
{
    if (s->n_arches) {
        memcpy(out, s->arches, s->n_arches * sizeof(uint32_t));
        return s->n_arches;
    }
    size_t n = 0;
    out[n++] = seccomp_arch_native();
#if defined(__x86_64__)
    out[n++] = SCMP_ARCH_X86;
    out[n++] = SCMP_ARCH_X32;
#endif
    return n;
}

/* A text that names everything the filter depends on: its digest is the cache key. */
static char *canonical(const struct rbx_seccomp *s, uint64_t caps)
{
    const struct scmp_version *v = seccomp_version();
    size_t cap = 65536, len = 0;
    char *buf = rbx_xmalloc(cap);
    uint32_t arches[8];
    size_t n_arches = profile_arches(s, arches);
#define APPEND(...)                                                                                \
    do {                                                                                           \
        for (;;) {                                                                                 \
            int w_ = snprintf(buf + len, cap - len, __VA_ARGS__);                                  \
            if (w_ >= 0 && (size_t)w_ < cap - len) {                                               \
                len += (size_t)w_;                                                                 \
                break;                                                                             \
            }                                                                                      \
            cap *= 2;                                                                              \
            buf = rbx_xrealloc(buf, cap);                                                          \
        }                                                                                          \
    } while (0)
    APPEND("%s libseccomp=%u.%u.%u native=%u default=%u\n", PREFIX_FORMAT, v->major, v->minor,
           v->micro, seccomp_arch_native(), s->default_action);
    for (size_t i = 0; i < n_arches; i++)
        APPEND("arch %u\n", arches[i]);
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct rbx_seccomp_row *row = &s->rows[i];
        if (!row_applies(row, caps))
            continue;
        APPEND("rule %u", row->action);
        for (size_t k = 0; k < row->n_args; k++)
            APPEND(" a%u:%d:%llu:%llu", row->args[k].index, (int)row->args[k].op,
                   (unsigned long long)row->args[k].value,
                   (unsigned long long)row->args[k].value_two);
        for (size_t k = 0; row->names[k]; k++)
            APPEND(" %s", row->names[k]);
        APPEND("\n");
    }
#undef APPEND
    return buf;
}

/* ---- compiling -------------------------------------------------------------------------------- */

static uint32_t audit_arch(uint32_t scmp)
{
    /* libseccomp's arch tokens are the kernel's AUDIT_ARCH_* values. */
    return scmp;
}

/* The highest syscall number the profile names on `arch` (-1: none). */
static long max_named(const struct rbx_seccomp *s, uint64_t caps, uint32_t arch)
{
    long max = -1;
    for (size_t i = 0; i < s->n_rows; i++) {
        if (!row_applies(&s->rows[i], caps))
            continue;
        for (size_t k = 0; s->rows[i].names[k]; k++) {
            int nr = seccomp_syscall_resolve_name_arch(arch, s->rows[i].names[k]);
            if (nr >= 0 && nr > max)
                max = nr;
        }
    }
    return max;
}

#define INSN(c, t, f, kk) ((struct sock_filter){.code = (c), .jt = (t), .jf = (f), .k = (kk)})

/* Before libseccomp's program: per arch, a syscall number above the profile's highest gets
 * ENOSYS (the kernel is newer than the profile: libc falls back, as under runc). Jumps are
 * relative, so the program that follows runs unchanged. */
static size_t build_prefix(const struct rbx_seccomp *s, uint64_t caps, const uint32_t *arches,
                           size_t n_arches, struct sock_filter *out)
{
    long max64 = -1, maxx32 = -1, max32 = -1;
    for (size_t i = 0; i < n_arches; i++) {
        if (arches[i] == SCMP_ARCH_X86_64)
            max64 = max_named(s, caps, SCMP_ARCH_X86_64);
        else if (arches[i] == SCMP_ARCH_X32)
            maxx32 = max_named(s, caps, SCMP_ARCH_X32);
        else if (arches[i] == SCMP_ARCH_X86)
            max32 = max_named(s, caps, SCMP_ARCH_X86);
    }
    /* A profile that allows by default has nothing to say about newer syscalls. */
    if (s->default_action == SCMP_ACT_ALLOW || s->default_action == SCMP_ACT_LOG)
        return 0;
    if (max64 < 0 && max32 < 0)
        return 0;
    /* Layout (E = the ENOSYS return, P = libseccomp's program):
     *  0 ld arch
     *  1 jeq X86_64 ? 2 : 6
     *  2 ld nr
     *  3 jge X32_BIT ? 5 : 4
     *  4 jgt max64 ? E : P
     *  5 jgt maxx32 ? E : P       (no x32 in the filter: plain x86_64 rule applies)
     *  6 jeq I386 ? 7 : P
     *  7 ld nr
     *  8 jgt max32 ? E : P
     *  9 ret ERRNO(ENOSYS)
     * 10 P */
    const uint32_t X32_BIT = 0x40000000;
    const size_t E = 9, P = 10;
    size_t n = 0;
#define J(to) ((uint8_t)((to) - (n + 1)))
    out[n] = INSN(BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
    n++;
    out[n] = INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, J(6), audit_arch(SCMP_ARCH_X86_64));
    n++;
    out[n] = INSN(BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
    n++;
    out[n] = INSN(BPF_JMP | BPF_JGE | BPF_K, J(5), J(4), X32_BIT);
    n++;
    if (max64 >= 0)
        out[n] = INSN(BPF_JMP | BPF_JGT | BPF_K, J(E), J(P), (uint32_t)max64);
    else
        out[n] = INSN(BPF_JMP | BPF_JA, 0, 0, (uint32_t)(P - (n + 1)));
    n++;
    if (maxx32 >= 0)
        out[n] = INSN(BPF_JMP | BPF_JGT | BPF_K, J(E), J(P), (uint32_t)maxx32);
    else
        out[n] = INSN(BPF_JMP | BPF_JA, 0, 0, (uint32_t)(P - (n + 1)));
    n++;
    out[n] = INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, J(P), audit_arch(SCMP_ARCH_X86));
    n++;
    out[n] = INSN(BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
    n++;
    if (max32 >= 0)
        out[n] = INSN(BPF_JMP | BPF_JGT | BPF_K, J(E), J(P), (uint32_t)max32);
    else
        out[n] = INSN(BPF_JMP | BPF_JA, 0, 0, (uint32_t)(P - (n + 1)));
    n++;
    out[n] = INSN(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS);
    n++;
#undef J
    return n;
}

static int scmp_fail(int r, const char *what, struct rbx_error **err)
{
    return rbx_error_set(err, RBX_ERR_SANDBOX, r < 0 ? -r : EINVAL, "seccomp: %s: %s", what,
                         strerror(r < 0 ? -r : EINVAL));
}

static int compile(const struct rbx_seccomp *s, uint64_t caps, struct rbx_bpf *out,
                   struct rbx_error **err)
{
    scmp_filter_ctx ctx = seccomp_init(s->default_action);
    if (!ctx)
        return rbx_error_set(err, RBX_ERR_SANDBOX, ENOMEM, "seccomp: cannot create a filter");
    int r;
    uint32_t arches[8];
    size_t n_arches = profile_arches(s, arches);
    for (size_t i = 0; i < n_arches; i++) {
        r = seccomp_arch_add(ctx, arches[i]);
        if (r < 0 && r != -EEXIST) {
            r = scmp_fail(r, arch_name(arches[i]) ? arch_name(arches[i]) : "arch", err);
            goto out;
        }
    }
    /* We set no_new_privs ourselves; the binary tree keeps long allow lists fast. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct rbx_seccomp_row *row = &s->rows[i];
        if (!row_applies(row, caps))
            continue;
        if (row->action == s->default_action)
            continue; /* libseccomp refuses rules that do what the default does */
        struct scmp_arg_cmp cmp[RBX_SECCOMP_MAX_ARGS];
        for (size_t k = 0; k < row->n_args; k++)
            cmp[k] = (struct scmp_arg_cmp){.arg = row->args[k].index,
                                           .op = row->args[k].op,
                                           .datum_a = row->args[k].value,
                                           .datum_b = row->args[k].value_two};
        for (size_t k = 0; row->names[k]; k++) {
            int nr = seccomp_syscall_resolve_name(row->names[k]);
            if (nr == __NR_SCMP_ERROR)
                continue; /* newer than this libseccomp: the ENOSYS prefix covers it */
            r = seccomp_rule_add_array(ctx, row->action, nr, (unsigned)row->n_args, cmp);
            if (r < 0 && r != -EEXIST) {
                _cleanup_free_ char *what = rbx_xasprintf("rule %zu (%s)", i, row->names[k]);
                r = scmp_fail(r, what, err);
                goto out;
            }
        }
    }
    int mfd = memfd_create("rbx-seccomp", MFD_CLOEXEC);
    if (mfd < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "seccomp: memfd");
        goto out;
    }
    r = seccomp_export_bpf(ctx, mfd);
    if (r < 0) {
        close(mfd);
        r = scmp_fail(r, "export", err);
        goto out;
    }
    struct stat st;
    if (fstat(mfd, &st) < 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
        (size_t)st.st_size / sizeof(struct sock_filter) + 16 > MAX_INSNS) {
        close(mfd);
        r = rbx_error_set(err, RBX_ERR_SANDBOX, E2BIG, "seccomp: the filter is too large");
        goto out;
    }
    size_t n_prog = (size_t)st.st_size / sizeof(struct sock_filter);
    struct sock_filter *insns = rbx_xcalloc(n_prog + 16, sizeof(*insns));
    size_t n_pre = build_prefix(s, caps, arches, n_arches, insns);
    ssize_t got = pread(mfd, insns + n_pre, (size_t)st.st_size, 0);
    close(mfd);
    if (got != st.st_size) {
        free(insns);
        r = rbx_error_set(err, RBX_ERR_SANDBOX, EIO, "seccomp: reading the exported filter");
        goto out;
    }
    out->insns = insns;
    out->len = n_pre + n_prog;
    r = 0;
out:
    seccomp_release(ctx);
    return r;
}

static int cache_read(const char *dir, const char *hex, struct rbx_bpf *out)
{
    if (!dir)
        return -ENOENT;
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s.bpf", dir, hex);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
        st.st_size % sizeof(struct sock_filter) != 0 ||
        (size_t)st.st_size / sizeof(struct sock_filter) > MAX_INSNS)
        return -EINVAL;
    void *buf = rbx_xmalloc((size_t)st.st_size);
    if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
        free(buf);
        return -EIO;
    }
    out->insns = buf;
    out->len = (size_t)st.st_size / sizeof(struct sock_filter);
    return 0;
}

static void cache_write(const char *dir, const char *hex, const struct rbx_bpf *b)
{
    if (!dir)
        return;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return;
    _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    _cleanup_free_ char *name = rbx_xasprintf("%s.bpf", hex);
    _cleanup_error_ struct rbx_error *e = NULL;
    /* A cache: failing to keep it only costs the next run a compile. */
    (void)rbx_write_file_atomic_at(dfd, name, b->insns, b->len * sizeof(struct sock_filter),
                                   0600, &e);
}

/* The default profile's filter depends on nothing but this binary (its table, this compiler,
 * a static libseccomp), libseccomp's version, the kernel (rows for newer kernels) and caps: a
 * key of those finds it without writing out and hashing the whole profile (0.1 ms of a start).
 * A rebuilt binary is another file, hence another key; any write to it changes its ctime,
 * which nobody can set. */
static bool default_key(uint64_t caps, char digest[RBX_DIGEST_LEN + 1])
{
    struct stat st;
    struct utsname u;
    if (stat("/proc/self/exe", &st) < 0 || uname(&u) < 0)
        return false;
    const struct scmp_version *v = seccomp_version();
    char text[1024];
    int n = snprintf(text, sizeof(text),
                     "%s default exe=%llu:%llu:%lld:%lld.%09ld:%lld.%09ld caps=%llx kernel=%s "
                     "libseccomp=%u.%u.%u",
                     PREFIX_FORMAT, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                     (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                     (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec, (unsigned long long)caps,
                     u.release, v->major, v->minor, v->micro);
    if (n < 0 || (size_t)n >= sizeof(text))
        return false;
    rbx_sha256_buf(text, (size_t)n, digest);
    return true;
}

int rbx_seccomp_prepare(enum rbx_seccomp_mode mode, const struct rbx_seccomp *profile,
                        uint64_t caps, const char *cache_dir, struct rbx_bpf *out, char *desc,
                        size_t desc_len, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    if (mode == RBX_SECCOMP_UNCONFINED) {
        snprintf(desc, desc_len, "unconfined");
        return 0;
    }
    bool builtin = mode == RBX_SECCOMP_DEFAULT || !profile || profile->is_default;
    char alias[RBX_DIGEST_LEN + 1];
    bool aliased = builtin && default_key(caps, alias);
    if (builtin)
        snprintf(desc, desc_len, "default");
    if (aliased && cache_read(cache_dir, rbx_digest_hex(alias), out) == 0) {
        memcpy(out->digest, alias, sizeof(alias));
        return 0;
    }
    _cleanup_(rbx_seccomp_freep) struct rbx_seccomp *def = NULL;
    if (mode == RBX_SECCOMP_DEFAULT || !profile) {
        rbx_seccomp_default(&def);
        profile = def;
    }
    _cleanup_free_ char *text = canonical(profile, caps);
    rbx_sha256_buf(text, strlen(text), out->digest);
    const char *hex = rbx_digest_hex(out->digest);
    if (!builtin)
        snprintf(desc, desc_len, "profile sha256:%.12s", hex);
    if (cache_read(cache_dir, hex, out) < 0) {
        int r = compile(profile, caps, out, err);
        if (r < 0)
            return r;
        cache_write(cache_dir, hex, out);
    }
    if (aliased)
        cache_write(cache_dir, rbx_digest_hex(alias), out);
    return 0;
}

void rbx_bpf_clear(struct rbx_bpf *b)
{
    free(b->insns);
    b->insns = NULL;
    b->len = 0;
}

int rbx_seccomp_install(const struct rbx_bpf *b)
{
    /* Runs in the child, its last step before execve: one system call. */
    if (!b->len)
        return 0;
    struct sock_fprog prog = {.len = (unsigned short)b->len, .filter = b->insns};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0 ? -errno : 0;
}

/* ---- the OCI form -------------------------------------------------------------------------- */

static json_t *action_json(uint32_t action, json_t *obj, const char *errno_key)
{
    const char *name = "SCMP_ACT_KILL";
    if (action == SCMP_ACT_ALLOW)
        name = "SCMP_ACT_ALLOW";
    else if (action == SCMP_ACT_KILL_PROCESS)
        name = "SCMP_ACT_KILL_PROCESS";
    else if (action == SCMP_ACT_TRAP)
        name = "SCMP_ACT_TRAP";
    else if (action == SCMP_ACT_LOG)
        name = "SCMP_ACT_LOG";
    else if ((action & 0xffff0000U) == SCMP_ACT_ERRNO(0)) {
        name = "SCMP_ACT_ERRNO";
        json_object_set_new(obj, errno_key, json_integer(action & 0xffff));
    } else if ((action & 0xffff0000U) == SCMP_ACT_TRACE(0)) {
        name = "SCMP_ACT_TRACE";
        json_object_set_new(obj, errno_key, json_integer(action & 0xffff));
    }
    return json_string(name);
}

json_t *rbx_seccomp_to_oci(const struct rbx_seccomp *s, uint64_t caps)
{
    json_t *o = json_object();
    json_object_set_new(o, "defaultAction", action_json(s->default_action, o, "defaultErrnoRet"));
    uint32_t arches[8];
    size_t n = profile_arches(s, arches);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        if (arch_name(arches[i]))
            json_array_append_new(a, json_string(arch_name(arches[i])));
    json_object_set_new(o, "architectures", a);
    static const char *const op_names[] = {
        [SCMP_CMP_NE] = "SCMP_CMP_NE", [SCMP_CMP_LT] = "SCMP_CMP_LT",
        [SCMP_CMP_LE] = "SCMP_CMP_LE", [SCMP_CMP_EQ] = "SCMP_CMP_EQ",
        [SCMP_CMP_GE] = "SCMP_CMP_GE", [SCMP_CMP_GT] = "SCMP_CMP_GT",
        [SCMP_CMP_MASKED_EQ] = "SCMP_CMP_MASKED_EQ"};
    json_t *calls = json_array();
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct rbx_seccomp_row *row = &s->rows[i];
        if (!row_applies(row, caps))
            continue;
        json_t *r = json_object();
        json_t *names = json_array();
        for (size_t k = 0; row->names[k]; k++)
            json_array_append_new(names, json_string(row->names[k]));
        json_object_set_new(r, "names", names);
        json_object_set_new(r, "action", action_json(row->action, r, "errnoRet"));
        if (row->n_args) {
            json_t *args = json_array();
            for (size_t k = 0; k < row->n_args; k++) {
                json_t *x = json_object();
                json_object_set_new(x, "index", json_integer(row->args[k].index));
                json_object_set_new(x, "value", json_integer((json_int_t)row->args[k].value));
                json_object_set_new(x, "valueTwo",
                                    json_integer((json_int_t)row->args[k].value_two));
                json_object_set_new(x, "op", json_string(op_names[row->args[k].op]));
                json_array_append_new(args, x);
            }
            json_object_set_new(r, "args", args);
        }
        json_array_append_new(calls, r);
    }
    json_object_set_new(o, "syscalls", calls);
    return o;
}
