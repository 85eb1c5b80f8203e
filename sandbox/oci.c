/* oci.c — struct rbx_spec to and from an OCI runtime-spec config.json: the writer gives runc and
 * crun the run reprobox would make (same namespaces, mounts, masks, capabilities, rlimits and
 * seccomp filter); the reader takes the subset reprobox runs and refuses anything else by its
 * JSON path, rather than run a bundle differently from what it says. */
#include "sandbox/seccomp-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#define OCI_VERSION "1.0.2"

/* ---- writing ---------------------------------------------------------------------------------- */

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *caps_json(uint64_t caps)
{
    json_t *a = json_array();
    for (unsigned c = 0; c < 64; c++)
        if ((caps & (1ULL << c)) && rbx_cap_name(c))
            json_array_append_new(a, json_string(rbx_cap_name(c)));
    return a;
}

static json_t *mount_json(const char *dest, const char *type, const char *source,
                          const char *const *options)
{
    json_t *m = json_object();
    json_object_set_new(m, "destination", json_string(dest));
    json_object_set_new(m, "type", json_string(type));
    json_object_set_new(m, "source", json_string(source));
    json_t *o = json_array();
    for (size_t i = 0; options[i]; i++)
        json_array_append_new(o, json_string(options[i]));
    json_object_set_new(m, "options", o);
    return m;
}

/* The mounts of mounts.c and dev.c in OCI form (runc makes /dev's nodes and links itself). */
static json_t *mounts_json(const struct rbx_spec *spec)
{
    json_t *a = json_array();
    json_array_append_new(a, mount_json("/proc", "proc", "proc",
                                        (const char *[]){"nosuid", "noexec", "nodev", NULL}));
    json_array_append_new(
        a, mount_json("/dev", "tmpfs", "tmpfs",
                      (const char *[]){"nosuid", "strictatime", "mode=755", "size=65536k", NULL}));
    json_array_append_new(a, mount_json("/dev/pts", "devpts", "devpts",
                                        (const char *[]){"nosuid", "noexec", "newinstance",
                                                         "ptmxmode=0666", "mode=0620", NULL}));
    json_array_append_new(a, mount_json("/dev/shm", "tmpfs", "shm",
                                        (const char *[]){"nosuid", "noexec", "nodev", "mode=1777",
                                                         "size=65536k", NULL}));
    json_array_append_new(a, mount_json("/dev/mqueue", "mqueue", "mqueue",
                                        (const char *[]){"nosuid", "noexec", "nodev", NULL}));
    if (spec->network == RBX_NETWORK_NONE)
        json_array_append_new(a, mount_json("/sys", "sysfs", "sysfs",
                                            (const char *[]){"nosuid", "noexec", "nodev", "ro",
                                                             NULL}));
    else
        json_array_append_new(a, mount_json("/sys", "bind", "/sys",
                                            (const char *[]){"rbind", "nosuid", "noexec", "nodev",
                                                             "ro", NULL}));
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct rbx_mount_spec *m = &spec->mounts[i];
        bool tmpfs = m->type ? strcmp(m->type, "tmpfs") == 0 : !m->source;
        if (tmpfs)
            json_array_append_new(
                a, mount_json(m->target, "tmpfs", "tmpfs",
                              m->readonly ? (const char *[]){"nosuid", "nodev", "noexec",
                                                             "mode=1777", "ro", NULL}
                                          : (const char *[]){"nosuid", "nodev", "noexec",
                                                             "mode=1777", NULL}));
        else
            json_array_append_new(
                a, mount_json(m->target, "bind", m->source,
                              m->readonly ? (const char *[]){"rbind", "ro", NULL}
                                          : (const char *[]){"rbind", "rw", NULL}));
    }
    return a;
}

static json_t *paths_json(const struct rbx_path_row *rows, size_t n, bool readonly,
                          const struct rbx_path_row *more, size_t n_more)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        if (rows[i].readonly == readonly)
            json_array_append_new(a, json_string(rows[i].path));
    for (size_t i = 0; i < n_more; i++)
        if (more[i].readonly == readonly)
            json_array_append_new(a, json_string(more[i].path));
    return a;
}

/* The id maps of this process, in OCI form (host ids as the initial namespace sees them is what
 * our own map's "outside" column is, one level up: exact for real root and for a rootless
 * reprobox, whose namespace is a child of the initial one). */
static int mappings_json(const char *file, json_t **out, struct rbx_error **err)
{
    struct rbx_idmap m;
    if (rbx_idmap_read_self(file, &m, err) < 0)
        return -EIO;
    json_t *a = json_array();
    for (size_t i = 0; i < m.n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "containerID", json_integer(m.r[i].inside));
        json_object_set_new(o, "hostID", json_integer(m.r[i].outside));
        json_object_set_new(o, "size", json_integer(m.r[i].count));
        json_array_append_new(a, o);
    }
    *out = a;
    return 0;
}

int rbx_spec_to_oci_config(const struct rbx_spec *spec, int rootfd, const char *rootfs_path,
                           json_t **out, struct rbx_error **err)
{
    if (!spec->argv || !spec->argv[0])
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "no command to run");
    uint64_t caps;
    int r = rbx_caps_resolve(spec->cap_add, spec->cap_drop, &caps, err);
    if (r < 0)
        return r;
    struct rbx_user user;
    if (rootfd >= 0) {
        r = rbx_user_resolve(rootfd, spec->user, &user, err);
        if (r < 0)
            return r;
    } else {
        memset(&user, 0, sizeof(user));
        uint32_t uid = 0, gid = 0;
        const char *u = spec->user ? spec->user : "";
        const char *colon = strchr(u, ':');
        size_t ulen = colon ? (size_t)(colon - u) : strlen(u);
        if ((ulen && !rbx_parse_id(u, ulen, &uid)) ||
            (colon && !rbx_parse_id(colon + 1, strlen(colon + 1), &gid)))
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "user \"%s\": without the rootfs only uid[:gid] can be written",
                                 u);
        user.uid = uid;
        user.gid = gid;
    }
    struct rbx_rlimit rl[RBX_MAX_RLIMITS];
    size_t n_rl = 0;
    r = rbx_rlimits_plan(spec->rlimits, spec->n_rlimits, rl, &n_rl, err);
    if (r < 0)
        return r;

    json_t *c = json_object();
    json_object_set_new(c, "ociVersion", json_string(OCI_VERSION));

    json_t *p = json_object();
    json_object_set_new(p, "terminal", json_boolean(spec->tty));
    json_t *u = json_object();
    json_object_set_new(u, "uid", json_integer(user.uid));
    json_object_set_new(u, "gid", json_integer(user.gid));
    json_t *gids = json_array();
    for (size_t i = 0; !spec->groups_explicit && i < user.n_groups; i++)
        json_array_append_new(gids, json_integer(user.groups[i]));
    for (size_t i = 0; i < spec->n_additional_gids; i++)
        json_array_append_new(gids, json_integer(spec->additional_gids[i]));
    if (json_array_size(gids))
        json_object_set_new(u, "additionalGids", gids);
    else
        json_decref(gids);
    json_object_set_new(p, "user", u);
    json_object_set_new(p, "args", strv_json(spec->argv));
    json_t *env = strv_json(spec->env);
    if (!rbx_env_get(spec->env, "HOME")) {
        _cleanup_free_ char *home = rbx_xasprintf("HOME=%s", user.home);
        json_array_append_new(env, json_string(home));
    }
    json_object_set_new(p, "env", env);
    json_object_set_new(p, "cwd", json_string(spec->cwd && *spec->cwd ? spec->cwd : "/"));
    json_t *cj = json_object();
    json_object_set_new(cj, "bounding", caps_json(caps));
    json_object_set_new(cj, "effective", caps_json(caps));
    json_object_set_new(cj, "permitted", caps_json(caps));
    json_object_set_new(p, "capabilities", cj);
    json_t *rls = json_array();
    for (size_t i = 0; i < n_rl; i++) {
        json_t *o = json_object();
        _cleanup_free_ char *name = rbx_xasprintf("RLIMIT_%s", rbx_rlimit_name(rl[i].resource));
        for (char *s = name; *s; s++)
            *s = (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s);
        json_object_set_new(o, "type", json_string(name));
        json_object_set_new(o, "hard", json_integer((json_int_t)rl[i].hard));
        json_object_set_new(o, "soft", json_integer((json_int_t)rl[i].soft));
        json_array_append_new(rls, o);
    }
    json_object_set_new(p, "rlimits", rls);
    json_object_set_new(p, "noNewPrivileges", json_true());
    json_object_set_new(c, "process", p);

    json_t *root = json_object();
    json_object_set_new(root, "path", json_string(rootfs_path));
    if (spec->readonly_rootfs)
        json_object_set_new(root, "readonly", json_true());
    json_object_set_new(c, "root", root);
    json_object_set_new(c, "hostname",
                        json_string(spec->hostname && *spec->hostname ? spec->hostname
                                                                      : RBX_DEFAULT_HOSTNAME));
    json_object_set_new(c, "mounts", mounts_json(spec));

    json_t *l = json_object();
    json_t *ns = json_array();
    static const char *const types[] = {"pid", "ipc", "uts", "mount", "cgroup", "user"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(types); i++) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(types[i]));
        json_array_append_new(ns, o);
    }
    if (spec->network == RBX_NETWORK_NONE) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("network"));
        json_array_append_new(ns, o);
    }
    json_object_set_new(l, "namespaces", ns);
    json_t *um = NULL, *gm = NULL;
    if (mappings_json("uid_map", &um, err) < 0 || mappings_json("gid_map", &gm, err) < 0) {
        json_decref(um);
        json_decref(c);
        json_decref(l);
        return -EIO;
    }
    json_object_set_new(l, "uidMappings", um);
    json_object_set_new(l, "gidMappings", gm);
    json_object_set_new(l, "maskedPaths",
                        paths_json(rbx_proc_paths, rbx_proc_paths_count, false, rbx_sys_paths,
                                   rbx_sys_paths_count));
    json_object_set_new(l, "readonlyPaths",
                        paths_json(rbx_proc_paths, rbx_proc_paths_count, true, rbx_sys_paths,
                                   rbx_sys_paths_count));
    json_t *res = json_object();
    if (spec->limits.memory_bytes) {
        json_t *m = json_object();
        json_object_set_new(m, "limit", json_integer((json_int_t)spec->limits.memory_bytes));
        json_object_set_new(m, "swap", json_integer((json_int_t)spec->limits.memory_bytes));
        json_object_set_new(res, "memory", m);
    }
    int64_t pids = spec->limits.pids ? spec->limits.pids : RBX_DEFAULT_PIDS_LIMIT;
    if (pids > 0) {
        json_t *o = json_object();
        json_object_set_new(o, "limit", json_integer(pids));
        json_object_set_new(res, "pids", o);
    }
    if (spec->limits.cpu_millis) {
        json_t *o = json_object();
        json_object_set_new(o, "quota", json_integer((json_int_t)spec->limits.cpu_millis * 100));
        json_object_set_new(o, "period", json_integer(100000));
        json_object_set_new(res, "cpu", o);
    }
    json_object_set_new(l, "resources", res);
    if (spec->seccomp_mode != RBX_SECCOMP_UNCONFINED) {
        _cleanup_(rbx_seccomp_freep) struct rbx_seccomp *def = NULL;
        const struct rbx_seccomp *s = spec->seccomp;
        if (spec->seccomp_mode == RBX_SECCOMP_DEFAULT || !s) {
            rbx_seccomp_default(&def);
            s = def;
        }
        json_object_set_new(l, "seccomp", rbx_seccomp_to_oci(s, caps));
    }
    json_object_set_new(c, "linux", l);
    *out = c;
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------------- */

struct rd {
    const char *what;
    struct rbx_error **err;
};

static int bad(struct rd *c, const char *path, const char *msg)
{
    return rbx_error_set(c->err, RBX_ERR_MALFORMED, EINVAL, "%s: %s: %s", c->what, path, msg);
}

static int unsupported(struct rd *c, const char *path, const char *msg)
{
    return rbx_error_set(c->err, RBX_ERR_UNSUPPORTED, ENOTSUP, "%s: %s: %s", c->what, path, msg);
}

static int known_keys(struct rd *c, const char *path, const json_t *obj, const char *const *keys)
{
    if (!json_is_object(obj))
        return bad(c, path, "expected an object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++)
            ok = strcmp(keys[i], key) == 0;
        if (!ok) {
            _cleanup_free_ char *p = rbx_xasprintf("%s%s%s", path, *path ? "." : "", key);
            return unsupported(c, p, "not supported by reprobox (refusing to run the bundle "
                                     "differently from what it says)");
        }
    }
    return 0;
}

static int get_strv(struct rd *c, const char *path, const json_t *v, char ***out)
{
    if (!json_is_array(v))
        return bad(c, path, "expected an array of strings");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e)) {
            _cleanup_free_ char *p = rbx_xasprintf("%s[%zu]", path, i);
            return bad(c, p, "expected a string");
        }
        rbx_strv_push(out, json_string_value(e));
    }
    return 0;
}

static int get_uint(struct rd *c, const char *path, const json_t *v, uint64_t max, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > max)
        return bad(c, path, "expected a non-negative integer");
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int read_caps(struct rd *c, const json_t *caps, struct rbx_spec *spec)
{
    static const char *const keys[] = {"bounding", "effective", "permitted", "inheritable",
                                       "ambient", NULL};
    int r = known_keys(c, "process.capabilities", caps, keys);
    if (r < 0)
        return r;
    uint64_t sets[5] = {0};
    for (size_t i = 0; i < 5; i++) {
        json_t *v = json_object_get(caps, keys[i]);
        if (!v)
            continue;
        _cleanup_free_ char *p = rbx_xasprintf("process.capabilities.%s", keys[i]);
        _cleanup_strv_ char **names = NULL;
        r = get_strv(c, p, v, &names);
        if (r < 0)
            return r;
        char *all[] = {"ALL", NULL};
        _cleanup_error_ struct rbx_error *e = NULL;
        if (rbx_caps_resolve(names, all, &sets[i], &e) < 0)
            return bad(c, p, e->message);
    }
    if (sets[3] || sets[4])
        return unsupported(c, "process.capabilities",
                           "inheritable and ambient sets must be empty (reprobox never grants "
                           "capabilities across execve)");
    if (sets[1] != sets[0] || sets[2] != sets[0])
        return unsupported(c, "process.capabilities",
                           "bounding, effective and permitted must be the same set");
    rbx_strv_push(&spec->cap_drop, "ALL");
    for (unsigned i = 0; i < 64; i++)
        if ((sets[0] & (1ULL << i)) && rbx_cap_name(i))
            rbx_strv_push(&spec->cap_add, rbx_cap_name(i));
    return 0;
}

static int read_process(struct rd *c, const json_t *p, struct rbx_spec *spec)
{
    static const char *const keys[] = {"terminal", "user",           "args",   "env",
                                       "cwd",      "capabilities",   "rlimits", "noNewPrivileges",
                                       "consoleSize", NULL};
    int r = known_keys(c, "process", p, keys);
    if (r < 0)
        return r;
    json_t *v;
    if ((v = json_object_get(p, "terminal"))) {
        if (!json_is_boolean(v))
            return bad(c, "process.terminal", "expected a boolean");
        spec->tty = json_is_true(v);
    }
    json_t *u = json_object_get(p, "user");
    if (!u)
        return bad(c, "process.user", "missing");
    static const char *const ukeys[] = {"uid", "gid", "additionalGids", "umask", NULL};
    if ((r = known_keys(c, "process.user", u, ukeys)) < 0)
        return r;
    uint64_t uid = 0, gid = 0;
    if ((r = get_uint(c, "process.user.uid", json_object_get(u, "uid"), UINT32_MAX - 1, &uid)) <
            0 ||
        (r = get_uint(c, "process.user.gid", json_object_get(u, "gid"), UINT32_MAX - 1, &gid)) <
            0)
        return r;
    if ((v = json_object_get(u, "umask")) && !(json_is_integer(v) && json_integer_value(v) == 18))
        return unsupported(c, "process.user.umask", "reprobox always uses umask 022 (18)");
    spec->user = rbx_xasprintf("%llu:%llu", (unsigned long long)uid, (unsigned long long)gid);
    spec->groups_explicit = true;
    if ((v = json_object_get(u, "additionalGids"))) {
        if (!json_is_array(v) || json_array_size(v) > 64)
            return bad(c, "process.user.additionalGids", "expected at most 64 gids");
        spec->additional_gids = rbx_xcalloc(json_array_size(v) + 1, sizeof(uint32_t));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            uint64_t g = 0;
            _cleanup_free_ char *path = rbx_xasprintf("process.user.additionalGids[%zu]", i);
            if ((r = get_uint(c, path, e, UINT32_MAX - 1, &g)) < 0)
                return r;
            spec->additional_gids[spec->n_additional_gids++] = (uint32_t)g;
        }
    }
    if (!(v = json_object_get(p, "args")) || !json_array_size(v))
        return bad(c, "process.args", "missing or empty");
    if ((r = get_strv(c, "process.args", v, &spec->argv)) < 0)
        return r;
    if ((v = json_object_get(p, "env")) && (r = get_strv(c, "process.env", v, &spec->env)) < 0)
        return r;
    if (!(v = json_object_get(p, "cwd")) || !json_is_string(v) || json_string_value(v)[0] != '/')
        return bad(c, "process.cwd", "expected an absolute path");
    spec->cwd = rbx_xstrdup(json_string_value(v));
    if ((v = json_object_get(p, "capabilities")) && (r = read_caps(c, v, spec)) < 0)
        return r;
    if ((v = json_object_get(p, "noNewPrivileges")) && !json_is_true(v))
        return unsupported(c, "process.noNewPrivileges", "reprobox always sets no_new_privs");
    if ((v = json_object_get(p, "rlimits"))) {
        if (!json_is_array(v) || json_array_size(v) >= RBX_MAX_RLIMITS)
            return bad(c, "process.rlimits", "expected an array (at most 15)");
        spec->rlimits = rbx_xcalloc(json_array_size(v) + 1, sizeof(*spec->rlimits));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            _cleanup_free_ char *path = rbx_xasprintf("process.rlimits[%zu]", i);
            static const char *const rkeys[] = {"type", "hard", "soft", NULL};
            if ((r = known_keys(c, path, e, rkeys)) < 0)
                return r;
            json_t *t = json_object_get(e, "type");
            int res = json_is_string(t) ? rbx_rlimit_resource(json_string_value(t)) : -1;
            if (res < 0) {
                _cleanup_free_ char *tp = rbx_xasprintf("%s.type", path);
                return bad(c, tp, "unknown rlimit");
            }
            struct rbx_rlimit *rl = &spec->rlimits[spec->n_rlimits];
            rl->resource = res;
            _cleanup_free_ char *hp = rbx_xasprintf("%s.hard", path);
            _cleanup_free_ char *sp = rbx_xasprintf("%s.soft", path);
            if ((r = get_uint(c, hp, json_object_get(e, "hard"), UINT64_MAX, &rl->hard)) < 0 ||
                (r = get_uint(c, sp, json_object_get(e, "soft"), UINT64_MAX, &rl->soft)) < 0)
                return r;
            spec->n_rlimits++;
        }
    }
    return 0;
}

/* The mounts reprobox makes anyway are accepted as written by rbx_spec_to_oci_config; binds and
 * tmpfs anywhere else become the spec's mounts. */
static int read_mounts(struct rd *c, const json_t *mounts, const char *bundle_dir,
                       struct rbx_spec *spec)
{
    if (!json_is_array(mounts))
        return bad(c, "mounts", "expected an array");
    static const char *const standard[] = {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                           "/sys", NULL};
    spec->mounts = rbx_xcalloc(json_array_size(mounts) + 1, sizeof(*spec->mounts));
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m)
    {
        _cleanup_free_ char *path = rbx_xasprintf("mounts[%zu]", i);
        static const char *const keys[] = {"destination", "type", "source", "options", NULL};
        int r = known_keys(c, path, m, keys);
        if (r < 0)
            return r;
        json_t *d = json_object_get(m, "destination"), *t = json_object_get(m, "type"),
               *s = json_object_get(m, "source"), *o = json_object_get(m, "options");
        if (!json_is_string(d) || json_string_value(d)[0] != '/') {
            _cleanup_free_ char *p = rbx_xasprintf("%s.destination", path);
            return bad(c, p, "expected an absolute path");
        }
        const char *dest = json_string_value(d);
        const char *type = json_is_string(t) ? json_string_value(t) : "";
        bool is_standard = false;
        for (size_t k = 0; standard[k]; k++)
            is_standard |= strcmp(standard[k], dest) == 0;
        if (is_standard)
            continue; /* made by reprobox anyway; linux.namespaces decides the network */
        _cleanup_strv_ char **opts = NULL;
        if (o) {
            _cleanup_free_ char *p = rbx_xasprintf("%s.options", path);
            if ((r = get_strv(c, p, o, &opts)) < 0)
                return r;
        }
        bool ro = false;
        for (size_t k = 0; opts && opts[k]; k++) {
            if (strcmp(opts[k], "ro") == 0)
                ro = true;
            else if (strcmp(opts[k], "rw") && strcmp(opts[k], "rbind") && strcmp(opts[k], "bind") &&
                     strcmp(opts[k], "nosuid") && strcmp(opts[k], "nodev") &&
                     strcmp(opts[k], "noexec") && strcmp(opts[k], "mode=1777")) {
                _cleanup_free_ char *p = rbx_xasprintf("%s.options[%zu]", path, k);
                _cleanup_free_ char *msg = rbx_xasprintf("option \"%s\" is not supported", opts[k]);
                return unsupported(c, p, msg);
            }
        }
        struct rbx_mount_spec *ms = &spec->mounts[spec->n_mounts];
        if (strcmp(type, "tmpfs") == 0) {
            ms->type = rbx_xstrdup("tmpfs");
        } else if (strcmp(type, "bind") == 0 || (!*type && opts)) {
            if (!json_is_string(s)) {
                _cleanup_free_ char *p = rbx_xasprintf("%s.source", path);
                return bad(c, p, "expected a path");
            }
            const char *src = json_string_value(s);
            ms->source = src[0] == '/' ? rbx_xstrdup(src) : rbx_xasprintf("%s/%s", bundle_dir, src);
            ms->type = rbx_xstrdup("bind");
        } else {
            _cleanup_free_ char *p = rbx_xasprintf("%s.type", path);
            _cleanup_free_ char *msg = rbx_xasprintf("mount type \"%s\" is not supported", type);
            return unsupported(c, p, msg);
        }
        ms->target = rbx_xstrdup(dest);
        ms->readonly = ro;
        spec->n_mounts++;
    }
    return 0;
}

static bool path_listed(const char *path, bool readonly)
{
    for (size_t i = 0; i < rbx_proc_paths_count; i++)
        if (rbx_proc_paths[i].readonly == readonly && strcmp(rbx_proc_paths[i].path, path) == 0)
            return true;
    for (size_t i = 0; i < rbx_sys_paths_count; i++)
        if (rbx_sys_paths[i].readonly == readonly && strcmp(rbx_sys_paths[i].path, path) == 0)
            return true;
    return false;
}

static int read_linux(struct rd *c, const json_t *l, struct rbx_spec *spec)
{
    static const char *const keys[] = {"namespaces", "uidMappings", "gidMappings", "maskedPaths",
                                       "readonlyPaths", "resources", "seccomp", "cgroupsPath",
                                       NULL};
    int r = known_keys(c, "linux", l, keys);
    if (r < 0)
        return r;
    json_t *v;
    bool net = false;
    if ((v = json_object_get(l, "namespaces"))) {
        if (!json_is_array(v))
            return bad(c, "linux.namespaces", "expected an array");
        size_t i;
        json_t *n;
        json_array_foreach(v, i, n)
        {
            _cleanup_free_ char *path = rbx_xasprintf("linux.namespaces[%zu]", i);
            static const char *const nkeys[] = {"type", "path", NULL};
            if ((r = known_keys(c, path, n, nkeys)) < 0)
                return r;
            if (json_object_get(n, "path"))
                return unsupported(c, path, "joining an existing namespace is not supported");
            json_t *t = json_object_get(n, "type");
            const char *type = json_is_string(t) ? json_string_value(t) : "";
            if (strcmp(type, "network") == 0)
                net = true;
            else if (strcmp(type, "pid") && strcmp(type, "ipc") && strcmp(type, "uts") &&
                     strcmp(type, "mount") && strcmp(type, "cgroup") && strcmp(type, "user"))
                return bad(c, path, "unknown namespace type");
        }
    }
    /* Network: a namespace of its own is "none"; without, the host's. */
    spec->network = net ? RBX_NETWORK_NONE : RBX_NETWORK_HOST;
    static const char *const plists[] = {"maskedPaths", "readonlyPaths"};
    for (size_t k = 0; k < 2; k++) {
        if (!(v = json_object_get(l, plists[k])))
            continue;
        _cleanup_strv_ char **paths = NULL;
        _cleanup_free_ char *path = rbx_xasprintf("linux.%s", plists[k]);
        if ((r = get_strv(c, path, v, &paths)) < 0)
            return r;
        for (size_t i = 0; paths && paths[i]; i++)
            if (!path_listed(paths[i], k == 1)) {
                _cleanup_free_ char *pp = rbx_xasprintf("%s[%zu]", path, i);
                return unsupported(c, pp, "reprobox masks and protects a fixed list of paths "
                                          "(docs/security.md); this one is not in it");
            }
    }
    if ((v = json_object_get(l, "resources"))) {
        static const char *const rkeys[] = {"memory", "pids", "cpu", "devices", NULL};
        if ((r = known_keys(c, "linux.resources", v, rkeys)) < 0)
            return r;
        json_t *x;
        if ((x = json_object_get(v, "memory"))) {
            static const char *const mkeys[] = {"limit", "swap", NULL};
            if ((r = known_keys(c, "linux.resources.memory", x, mkeys)) < 0)
                return r;
            json_t *lim = json_object_get(x, "limit");
            if (lim && (r = get_uint(c, "linux.resources.memory.limit", lim, INT64_MAX,
                                     &spec->limits.memory_bytes)) < 0)
                return r;
        }
        if ((x = json_object_get(v, "pids"))) {
            static const char *const pkeys[] = {"limit", NULL};
            if ((r = known_keys(c, "linux.resources.pids", x, pkeys)) < 0)
                return r;
            json_t *lim = json_object_get(x, "limit");
            if (json_is_integer(lim) && json_integer_value(lim) <= 0)
                spec->limits.pids = -1;
            else {
                uint64_t n = 0;
                if ((r = get_uint(c, "linux.resources.pids.limit", lim, INT64_MAX, &n)) < 0)
                    return r;
                spec->limits.pids = (int64_t)n;
            }
        }
        if ((x = json_object_get(v, "cpu"))) {
            static const char *const ckeys[] = {"quota", "period", NULL};
            if ((r = known_keys(c, "linux.resources.cpu", x, ckeys)) < 0)
                return r;
            uint64_t quota = 0, period = 100000;
            if (json_object_get(x, "quota") &&
                (r = get_uint(c, "linux.resources.cpu.quota", json_object_get(x, "quota"),
                              INT64_MAX, &quota)) < 0)
                return r;
            if (json_object_get(x, "period") &&
                ((r = get_uint(c, "linux.resources.cpu.period", json_object_get(x, "period"),
                               1000000, &period)) < 0 ||
                 period == 0))
                return r < 0 ? r : bad(c, "linux.resources.cpu.period", "must not be 0");
            spec->limits.cpu_millis = quota * 1000 / period;
        }
        if ((x = json_object_get(v, "devices"))) {
            /* Only "deny everything" (runc's own default) is accepted: the sandbox's /dev holds
             * bind mounts of the harmless devices and nothing else. */
            if (!json_is_array(x))
                return bad(c, "linux.resources.devices", "expected an array");
            size_t i;
            json_t *d;
            json_array_foreach(x, i, d)
            {
                json_t *allow = json_object_get(d, "allow");
                if (!json_is_false(allow)) {
                    _cleanup_free_ char *p = rbx_xasprintf("linux.resources.devices[%zu]", i);
                    return unsupported(c, p, "device access rules other than deny");
                }
            }
        }
    }
    if ((v = json_object_get(l, "seccomp"))) {
        _cleanup_free_ char *what = rbx_xasprintf("%s: linux.seccomp", c->what);
        r = rbx_seccomp_from_json(v, what, &spec->seccomp, c->err);
        if (r < 0)
            return r;
        spec->seccomp_mode = RBX_SECCOMP_PROFILE;
    } else {
        spec->seccomp_mode = RBX_SECCOMP_UNCONFINED;
    }
    return 0;
}

int rbx_spec_from_oci_config(const json_t *config, const char *bundle_dir, struct rbx_spec *spec,
                             struct rbx_error **err)
{
    _cleanup_free_ char *what = rbx_xasprintf("%s/config.json", bundle_dir);
    struct rd c = {.what = what, .err = err};
    static const char *const keys[] = {"ociVersion", "process", "root", "hostname", "mounts",
                                       "linux", "annotations", NULL};
    int r = known_keys(&c, "", config, keys);
    if (r < 0)
        return r;
    json_t *v = json_object_get(config, "ociVersion");
    if (!json_is_string(v) || strncmp(json_string_value(v), "1.", 2) != 0)
        return bad(&c, "ociVersion", "expected a 1.x version");
    json_t *root = json_object_get(config, "root");
    static const char *const rkeys[] = {"path", "readonly", NULL};
    if (!root)
        return bad(&c, "root", "missing");
    if ((r = known_keys(&c, "root", root, rkeys)) < 0)
        return r;
    v = json_object_get(root, "path");
    if (!json_is_string(v) || !*json_string_value(v))
        return bad(&c, "root.path", "expected a path");
    const char *rp = json_string_value(v);
    spec->rootfs_dir =
        rp[0] == '/' ? rbx_xstrdup(rp) : rbx_xasprintf("%s/%s", bundle_dir, rp);
    v = json_object_get(root, "readonly");
    spec->readonly_rootfs = json_is_true(v);
    if ((v = json_object_get(config, "hostname"))) {
        if (!json_is_string(v) || strlen(json_string_value(v)) > 64)
            return bad(&c, "hostname", "expected a name of at most 64 bytes");
        spec->hostname = rbx_xstrdup(json_string_value(v));
    }
    json_t *p = json_object_get(config, "process");
    if (!p)
        return bad(&c, "process", "missing");
    if ((r = read_process(&c, p, spec)) < 0)
        return r;
    if ((v = json_object_get(config, "linux")) && (r = read_linux(&c, v, spec)) < 0)
        return r;
    if ((v = json_object_get(config, "mounts")) && (r = read_mounts(&c, v, bundle_dir, spec)) < 0)
        return r;
    return 0;
}
