/* cgroup.c — one cgroup per container for its limits (memory, pids, cpu) and its OOM count:
 * cgroup v2 where this process's cgroup is delegated to it (or as root on a v2 host), v1 on
 * hybrid hosts (memory, pids and cpu hierarchies), nothing with one clear note otherwise.
 * Cgroups are named reprobox-<pid>-<id> so those of a killed reprobox are swept later. */
#include "sandbox/sandbox-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#define CG_PREFIX "reprobox-"

/* ---- where cgroups are ----------------------------------------------------------------------- */

/* Unescape mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static bool has_option(const char *opts, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = opts; p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && memcmp(p, want, n) == 0)
            return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

/* This process's path in the hierarchy of `controller` ("" for the v2 line). */
static const char *self_path(char *const *lines, const char *controller)
{
    for (size_t i = 0; lines && lines[i]; i++) {
        char *c1 = strchr(lines[i], ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        size_t n = (size_t)(c2 - c1 - 1);
        if (!*controller) {
            if (n == 0 && strncmp(lines[i], "0:", 2) == 0)
                return c2 + 1;
            continue;
        }
        _cleanup_free_ char *list = rbx_xstrndup(c1 + 1, n);
        if (has_option(list, controller))
            return c2 + 1;
    }
    return NULL;
}

/* mountpoint + (path below the mount's root). */
static char *join_cgroup(const char *mnt, const char *root, const char *path)
{
    size_t rl = strlen(root);
    if (strcmp(root, "/") == 0)
        rl = 0;
    if (rl && strncmp(path, root, rl) == 0 && (path[rl] == '/' || path[rl] == '\0'))
        path += rl;
    else if (rl)
        return NULL; /* we are outside what this mount shows */
    return rbx_xasprintf("%s%s", mnt, strcmp(path, "/") == 0 ? "" : path);
}

int rbx_cgroup_layout_parse(const char *mountinfo, const char *self_cgroup,
                            struct rbx_cgroup_layout *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_strv_ char **lines = NULL;
    for (const char *p = self_cgroup; p && *p;) {
        const char *nl = strchrnul(p, '\n');
        if (nl > p)
            rbx_strv_push_take(&lines, rbx_xstrndup(p, (size_t)(nl - p)));
        p = *nl ? nl + 1 : nl;
    }
    for (const char *p = mountinfo; p && *p;) {
        const char *nl = strchrnul(p, '\n');
        _cleanup_free_ char *line = rbx_xstrndup(p, (size_t)(nl - p));
        p = *nl ? nl + 1 : nl;
        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *f[6];
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        size_t k = 0;
        while (tok && k < 5) {
            f[k++] = tok;
            tok = strtok_r(NULL, " ", &save);
        }
        if (k < 5)
            continue;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " ", &save);
        char *fstype = tok ? strtok_r(NULL, " ", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
        char *super = source ? strtok_r(NULL, " ", &save) : NULL;
        if (!fstype)
            continue;
        char *root = f[3], *mnt = f[4];
        unescape(root);
        unescape(mnt);
        if (strcmp(fstype, "cgroup2") == 0) {
            const char *sp = self_path(lines, "");
            if (sp && !out->v2) {
                out->v2 = join_cgroup(mnt, root, sp);
                out->v2_unified = strcmp(mnt, "/sys/fs/cgroup") == 0;
            }
        } else if (strcmp(fstype, "cgroup") == 0 && super) {
            static const char *const ctls[] = {"memory", "pids", "cpu"};
            char **slots[] = {&out->v1_memory, &out->v1_pids, &out->v1_cpu};
            for (size_t i = 0; i < RBX_ARRAY_SIZE(ctls); i++) {
                if (*slots[i] || !has_option(super, ctls[i]))
                    continue;
                const char *sp = self_path(lines, ctls[i]);
                if (sp)
                    *slots[i] = join_cgroup(mnt, root, sp);
            }
        }
    }
    (void)err;
    return 0;
}

void rbx_cgroup_layout_clear(struct rbx_cgroup_layout *l)
{
    free(l->v1_memory);
    free(l->v1_pids);
    free(l->v1_cpu);
    free(l->v2);
    memset(l, 0, sizeof(*l));
}

/* ---- stale cgroups --------------------------------------------------------------------------- */

pid_t rbx_cgroup_name_pid(const char *name)
{
    if (strncmp(name, CG_PREFIX, strlen(CG_PREFIX)) != 0)
        return 0;
    const char *p = name + strlen(CG_PREFIX);
    const char *dash = strchr(p, '-');
    uint32_t pid;
    if (!dash || !rbx_parse_id(p, (size_t)(dash - p), &pid) || pid == 0 || pid > INT32_MAX)
        return 0;
    for (const char *h = dash + 1; *h; h++)
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
            return 0;
    return dash[1] ? (pid_t)pid : 0;
}

/* Kill everything listed in cgroup.procs (v1 has no cgroup.kill), then rmdir, a few times:
 * the kernel removes the last task asynchronously. */
static void kill_and_remove(const char *dir)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        _cleanup_free_ char *kill_file = rbx_xasprintf("%s/cgroup.kill", dir);
        int kfd = open(kill_file, O_WRONLY | O_CLOEXEC);
        if (kfd >= 0) {
            ssize_t w = write(kfd, "1", 1);
            (void)w;
            close(kfd);
        }
        _cleanup_free_ char *procs = rbx_xasprintf("%s/cgroup.procs", dir);
        _cleanup_free_ char *text = NULL;
        _cleanup_error_ struct rbx_error *e = NULL;
        if (rbx_read_file_at(AT_FDCWD, procs, 1 << 20, &text, NULL, &e) == 0) {
            for (char *p = text; *p;) {
                char *nl = strchrnul(p, '\n');
                uint32_t pid;
                if (rbx_parse_id(p, (size_t)(nl - p), &pid) && pid > 1)
                    kill((pid_t)pid, SIGKILL);
                p = *nl ? nl + 1 : nl;
            }
        }
        if (rmdir(dir) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            return;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
}

void rbx_cgroup_sweep_dir(const char *dir)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        pid_t pid = rbx_cgroup_name_pid(de->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        _cleanup_free_ char *path = rbx_xasprintf("%s/%s", dir, de->d_name);
        kill_and_remove(path);
    }
}

/* ---- making one ------------------------------------------------------------------------------ */

static int write_value(const char *dir, const char *file, const char *value, struct rbx_error **err)
{
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", dir, file);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return err ? rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "cgroup %s", path) : -errno;
    ssize_t n = write(fd, value, strlen(value));
    if (n != (ssize_t)strlen(value))
        return err ? rbx_error_set_errno(err, RBX_ERR_SANDBOX, n < 0 ? errno : EIO,
                                         "cgroup %s: writing \"%s\"", path, value)
                   : -EIO;
    return 0;
}

static bool file_exists(const char *dir, const char *file)
{
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

static bool writable_dir(const char *dir)
{
    return dir && access(dir, W_OK) == 0;
}

static char *new_name(void)
{
    char id[13];
    rbx_random_hex(id, 12);
    return rbx_xasprintf(CG_PREFIX "%d-%s", (int)getpid(), id);
}

/* The file a process joins through: on v1 `tasks`, where a single-threaded process writing "0"
 * moves itself without the global threadgroup lock (cgroup.procs takes it, and on v1 the first
 * taker in a while waits for an RCU grace period: 3 to 30 ms here); on v2 cgroup.procs. */
static int add_dir(struct rbx_cgroup *cg, const char *parent, const char *name,
                   struct rbx_error **err)
{
    _cleanup_free_ char *dir = rbx_xasprintf("%s/%s", parent, name);
    if (mkdir(dir, 0755) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "cgroup %s", dir);
    _cleanup_free_ char *procs =
        rbx_xasprintf("%s/%s", dir, cg->kind == RBX_CGROUP_V1 ? "tasks" : "cgroup.procs");
    int fd = rbx_fd_above_stdio(open(procs, O_WRONLY | O_CLOEXEC));
    if (fd < 0) {
        int e = errno;
        rmdir(dir);
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "cgroup %s", procs);
    }
    cg->procs[cg->n_dirs] = fd;
    cg->dirs[cg->n_dirs++] = TAKE_PTR(dir);
    return 0;
}

static void set_note(struct rbx_cgroup *cg, const char *text)
{
    free(cg->note);
    cg->note = rbx_xstrdup(text);
}

static int64_t pids_wanted(const struct rbx_limits *want)
{
    return want->pids == 0 ? RBX_DEFAULT_PIDS_LIMIT : want->pids;
}

static int apply_v1(struct rbx_cgroup *cg, const struct rbx_cgroup_layout *lay,
                    const struct rbx_limits *want, const char *name, struct rbx_error **err)
{
    char buf[64];
    int r;
    cg->kind = RBX_CGROUP_V1;
    /* Each hierarchy joined is one more task migration, which costs an RCU grace period on v1:
     * only those with something to limit. Without a memory limit the kernel has no OOM of the
     * container's own to report. */
    if (lay->v1_memory && want->memory_bytes) {
        r = add_dir(cg, lay->v1_memory, name, err);
        if (r < 0)
            return r;
        cg->memory_dir = cg->dirs[cg->n_dirs - 1];
        if (want->memory_bytes) {
            snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want->memory_bytes);
            r = write_value(cg->memory_dir, "memory.limit_in_bytes", buf, err);
            /* No swap beyond the limit, so the OOM killer acts at the limit, as in CI. */
            if (r == 0 && file_exists(cg->memory_dir, "memory.memsw.limit_in_bytes"))
                r = write_value(cg->memory_dir, "memory.memsw.limit_in_bytes", buf, err);
            if (r < 0)
                return r;
            cg->applied.memory_bytes = want->memory_bytes;
        }
    }
    if (lay->v1_pids) {
        r = add_dir(cg, lay->v1_pids, name, err);
        if (r < 0)
            return r;
        cg->pids_dir = cg->dirs[cg->n_dirs - 1];
        int64_t pids = pids_wanted(want);
        if (pids > 0) {
            snprintf(buf, sizeof(buf), "%lld", (long long)pids);
            r = write_value(cg->pids_dir, "pids.max", buf, err);
            if (r < 0)
                return r;
            cg->applied.pids = pids;
        }
    }
    if (lay->v1_cpu && want->cpu_millis) {
        r = add_dir(cg, lay->v1_cpu, name, err);
        if (r < 0)
            return r;
        const char *dir = cg->dirs[cg->n_dirs - 1];
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want->cpu_millis * 100);
        r = write_value(dir, "cpu.cfs_period_us", "100000", err);
        if (r == 0)
            r = write_value(dir, "cpu.cfs_quota_us", buf, err);
        if (r < 0)
            return r;
        cg->applied.cpu_millis = want->cpu_millis;
    }
    _cleanup_free_ char *missing = NULL;
    if (want->memory_bytes && !cg->applied.memory_bytes)
        missing = rbx_xstrdup("memory");
    if (want->cpu_millis && !cg->applied.cpu_millis) {
        char *m = rbx_xasprintf("%s%scpu", missing ? missing : "", missing ? ", " : "");
        free(missing);
        missing = m;
    }
    if (missing) {
        _cleanup_free_ char *note =
            rbx_xasprintf("this host has no cgroup v1 controller for %s: not limited", missing);
        set_note(cg, note);
    }
    return 0;
}

static int apply_v2(struct rbx_cgroup *cg, const char *parent, const struct rbx_limits *want,
                    const char *name, struct rbx_error **err)
{
    char buf[64];
    /* Controllers must be enabled in the parent for a child to have their files. */
    _cleanup_free_ char *ctl = NULL;
    _cleanup_error_ struct rbx_error *e = NULL;
    _cleanup_free_ char *path = rbx_xasprintf("%s/cgroup.subtree_control", parent);
    (void)rbx_read_file_at(AT_FDCWD, path, 4096, &ctl, NULL, &e);
    static const char *const need[] = {"memory", "pids", "cpu"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(need); i++) {
        if (ctl && strstr(ctl, need[i]))
            continue;
        char v[16];
        snprintf(v, sizeof(v), "+%s", need[i]);
        (void)write_value(parent, "cgroup.subtree_control", v, NULL);
    }
    cg->kind = RBX_CGROUP_V2;
    int r = add_dir(cg, parent, name, err);
    if (r < 0)
        return r;
    const char *dir = cg->dirs[0];
    cg->memory_dir = cg->pids_dir = (char *)dir;
    _cleanup_free_ char *missing = NULL;
    if (want->memory_bytes) {
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)want->memory_bytes);
        if (file_exists(dir, "memory.max")) {
            r = write_value(dir, "memory.max", buf, err);
            if (r == 0 && file_exists(dir, "memory.swap.max"))
                r = write_value(dir, "memory.swap.max", "0", err);
            if (r < 0)
                return r;
            cg->applied.memory_bytes = want->memory_bytes;
        } else {
            missing = rbx_xstrdup("memory");
        }
    }
    int64_t pids = pids_wanted(want);
    if (pids > 0 && file_exists(dir, "pids.max")) {
        snprintf(buf, sizeof(buf), "%lld", (long long)pids);
        r = write_value(dir, "pids.max", buf, err);
        if (r < 0)
            return r;
        cg->applied.pids = pids;
    } else if (pids > 0) {
        cg->nproc_fallback = true;
        cg->applied.pids = pids;
    }
    if (want->cpu_millis) {
        if (file_exists(dir, "cpu.max")) {
            snprintf(buf, sizeof(buf), "%llu 100000", (unsigned long long)want->cpu_millis * 100);
            r = write_value(dir, "cpu.max", buf, err);
            if (r < 0)
                return r;
            cg->applied.cpu_millis = want->cpu_millis;
        } else {
            char *m = rbx_xasprintf("%s%scpu", missing ? missing : "", missing ? ", " : "");
            free(missing);
            missing = m;
        }
    }
    if (missing) {
        _cleanup_free_ char *note = rbx_xasprintf(
            "the delegated cgroup has no %s controller: not limited", missing);
        set_note(cg, note);
    }
    return 0;
}

int rbx_cgroup_create(const struct rbx_limits *want, struct rbx_cgroup *cg,
                      struct rbx_error **err)
{
    static bool swept;
    memset(cg, 0, sizeof(*cg));
    for (size_t i = 0; i < RBX_MAX_CGROUP_FDS; i++)
        cg->procs[i] = -1;
    _cleanup_free_ char *mountinfo = NULL, *self = NULL;
    _cleanup_error_ struct rbx_error *e = NULL;
    struct rbx_cgroup_layout lay;
    memset(&lay, 0, sizeof(lay));
    if (rbx_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 4 << 20, &mountinfo, NULL, &e) == 0 &&
        rbx_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 20, &self, NULL, &e) == 0)
        rbx_cgroup_layout_parse(mountinfo, self, &lay, NULL);

    if (!swept) {
        /* Left behind by a reprobox killed with -9: their pid is gone. */
        const char *dirs[] = {lay.v1_memory, lay.v1_pids, lay.v1_cpu, lay.v2};
        for (size_t i = 0; i < RBX_ARRAY_SIZE(dirs); i++)
            if (dirs[i])
                rbx_cgroup_sweep_dir(dirs[i]);
        swept = true;
    }

    _cleanup_free_ char *name = new_name();
    int r = 0;
    bool v1_ok = (lay.v1_memory || lay.v1_pids) && writable_dir(lay.v1_memory ? lay.v1_memory
                                                                               : lay.v1_pids);
    if (lay.v2 && lay.v2_unified && writable_dir(lay.v2))
        r = apply_v2(cg, lay.v2, want, name, err);
    else if (v1_ok)
        r = apply_v1(cg, &lay, want, name, err);
    else if (lay.v2 && writable_dir(lay.v2) && !lay.v1_memory)
        r = apply_v2(cg, lay.v2, want, name, err);
    else {
        cg->kind = RBX_CGROUP_NONE;
        int64_t pids = pids_wanted(want);
        if (pids > 0) {
            cg->nproc_fallback = true;
            cg->applied.pids = pids;
        }
        if (want->memory_bytes || want->cpu_millis)
            set_note(cg, "no cgroup delegated to this user: --memory and --cpus are not applied; "
                         "the pids limit is RLIMIT_NPROC of the sandbox's user instead");
        else
            set_note(cg, "no cgroup delegated to this user: the pids limit is RLIMIT_NPROC of the "
                         "sandbox's user instead");
    }
    rbx_cgroup_layout_clear(&lay);
    if (r < 0) {
        rbx_cgroup_destroy(cg);
        return r;
    }
    return 0;
}

void rbx_cgroup_destroy(struct rbx_cgroup *cg)
{
    for (size_t i = 0; i < cg->n_dirs; i++) {
        if (cg->procs[i] >= 0)
            close(cg->procs[i]);
        cg->procs[i] = -1;
        kill_and_remove(cg->dirs[i]);
        free(cg->dirs[i]);
        cg->dirs[i] = NULL;
    }
    cg->n_dirs = 0;
    cg->memory_dir = cg->pids_dir = NULL;
    free(cg->note);
    cg->note = NULL;
}

/* "key value" lines: the value of key, 0 when absent. */
static uint64_t keyed_value(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *nl = strchrnul(p, '\n');
        if ((size_t)(nl - p) > n + 1 && strncmp(p, key, n) == 0 && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
        p = *nl ? nl + 1 : nl;
    }
    return 0;
}

uint64_t rbx_cgroup_oom_kills(const struct rbx_cgroup *cg)
{
    if (!cg->memory_dir)
        return 0;
    const char *file = cg->kind == RBX_CGROUP_V2 ? "memory.events" : "memory.oom_control";
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", cg->memory_dir, file);
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ struct rbx_error *e = NULL;
    if (rbx_read_file_at(AT_FDCWD, path, 65536, &text, NULL, &e) < 0)
        return 0;
    return keyed_value(text, "oom_kill");
}
