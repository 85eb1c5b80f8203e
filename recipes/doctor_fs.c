/* doctor_fs.c — the filesystem side of a start: the user and group named by USER, the working
 * directory (there, a directory, enterable by that user), and the image's broken symlinks,
 * grouped by where they lead so that a store that was not copied is one finding. */
#include "recipes/doctor-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* ---- user and group ------------------------------------------------------------------------- */

void rbx_doctor_user(struct rbx_doctor *d)
{
    /* "" is root, resolved too: its gid and groups are what the permission checks use */
    const char *spec = d->proc->user ? d->proc->user : "";
    struct rbx_error *err = NULL;
    if (rbx_user_resolve(d->rootfd, spec, &d->user, &err) == 0) {
        d->have_user = true;
        return;
    }
    if (err->kind != RBX_ERR_NOT_FOUND) {
        rbx_doctor_add(d, "user-unknown", RBX_SEVERITY_ERROR, NULL, "USER \"%s\": %s", spec,
                       err->message);
        rbx_error_free(err);
        return;
    }
    rbx_error_free(err);
    err = NULL;
    const char *colon = strchr(spec, ':');
    _cleanup_free_ char *user_part =
        colon ? rbx_xstrndup(spec, (size_t)(colon - spec)) : rbx_xstrdup(spec);
    struct rbx_user u;
    bool user_ok = !*user_part || rbx_user_resolve(d->rootfd, user_part, &u, &err) == 0;
    rbx_error_free(err);
    _cleanup_close_ int pw = rbx_open_in_root(d->rootfd, "/etc/passwd", O_PATH, 0, 0, NULL);
    _cleanup_close_ int gr = rbx_open_in_root(d->rootfd, "/etc/group", O_PATH, 0, 0, NULL);
    if (!user_ok) {
        struct rbx_finding *f = rbx_doctor_add(
            d, "user-unknown", RBX_SEVERITY_ERROR,
            "add the user to /etc/passwd in the image (useradd/adduser in the Dockerfile), or "
            "give a numeric uid",
            "the user \"%s\" is not in the image's /etc/passwd: the container will not start",
            user_part);
        rbx_finding_evidence(
            f, pw < 0 ? "/etc/passwd: not in the image" : "/etc/passwd: no line for \"%s\"",
            user_part);
        return;
    }
    struct rbx_finding *f = rbx_doctor_add(
        d, "group-unknown", RBX_SEVERITY_ERROR,
        "add the group to /etc/group in the image, or give a numeric gid",
        "the group \"%s\" is not in the image's /etc/group: the container will not start",
        colon + 1);
    rbx_finding_evidence(
        f, gr < 0 ? "/etc/group: not in the image" : "/etc/group: no line for \"%s\"", colon + 1);
}

/* ---- the working directory --------------------------------------------------------------------
 */

static bool exists_in_root(int rootfd, const char *path)
{
    _cleanup_close_ int fd = rbx_open_in_root(rootfd, path, O_PATH, 0, 0, NULL);
    return fd >= 0;
}

/* The arguments that name files relative to the working directory ("dist/index.js",
 * "./scripts/run.sh"): a missing working directory loses them. */
static bool relative_file_arg(const char *a)
{
    if (!*a || a[0] == '-' || a[0] == '/' || strchr(a, '=') || strchr(a, ' '))
        return false;
    if (strchr(a, '/'))
        return true;
    const char *dot = strrchr(a, '.');
    static const char *const exts[] = {".js", ".mjs", ".cjs", ".ts", ".sh",
                                       ".py", ".rb",  ".jar", ".php"};
    for (size_t i = 0; dot && i < RBX_ARRAY_SIZE(exts); i++)
        if (strcmp(dot, exts[i]) == 0)
            return true;
    return false;
}

/* Whether the user may search (enter) every directory on the way to path. */
static bool can_search(const struct rbx_user *u, const struct stat *st)
{
    if (u->uid == 0)
        return true; /* CAP_DAC_READ_SEARCH */
    if (st->st_uid == u->uid)
        return st->st_mode & S_IXUSR;
    bool in_group = st->st_gid == u->gid;
    for (size_t i = 0; i < u->n_groups && !in_group; i++)
        in_group = u->groups[i] == st->st_gid;
    if (in_group)
        return st->st_mode & S_IXGRP;
    return st->st_mode & S_IXOTH;
}

static void check_enterable(struct rbx_doctor *d, const char *cwd)
{
    _cleanup_free_ char *canon = NULL;
    if (!d->have_user || d->user.uid == 0 || rbx_realpath_in_root(d->rootfd, cwd, &canon, NULL) < 0)
        return;
    char prefix[RBX_PATH_MAX + 2] = "";
    size_t plen = 0;
    for (const char *p = canon;;) {
        struct stat st;
        _cleanup_close_ int fd =
            rbx_open_in_root(d->rootfd, plen ? prefix : "/", O_PATH, 0, 0, NULL);
        if (fd < 0 || fstat(fd, &st) < 0)
            return;
        if (!can_search(&d->user, &st)) {
            struct rbx_finding *f = rbx_doctor_add(
                d, "workdir-denied", RBX_SEVERITY_ERROR,
                "give the user search permission (chmod o+x, or chown to the user), or run as "
                "another user",
                "the user %s (%u:%u) cannot enter the working directory %s", d->proc->user,
                (unsigned)d->user.uid, (unsigned)d->user.gid, cwd);
            rbx_finding_evidence(f, "%s: mode %04o, owner %u:%u", plen ? prefix : "/",
                                 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                                 (unsigned)st.st_gid);
            return;
        }
        while (*p == '/')
            p++;
        if (!*p)
            return;
        size_t n = strcspn(p, "/");
        if (plen + 1 + n >= sizeof(prefix))
            return;
        prefix[plen++] = '/';
        memcpy(prefix + plen, p, n);
        plen += n;
        prefix[plen] = '\0';
        p += n;
    }
}

void rbx_doctor_workdir(struct rbx_doctor *d)
{
    const char *cwd = d->proc->cwd && *d->proc->cwd ? d->proc->cwd : "/";
    _cleanup_close_ int fd = rbx_open_in_root(d->rootfd, cwd, O_PATH, 0, 0, NULL);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
            d->cwd_missing = true;
            rbx_doctor_add(d, "workdir-not-dir", RBX_SEVERITY_ERROR,
                           "point WORKDIR (or the recipe's workdir) at a directory",
                           "the working directory %s is not a directory: the container will not "
                           "start",
                           cwd);
            return;
        }
        check_enterable(d, cwd);
        return;
    }
    d->cwd_missing = true;
    /* Docker creates it, empty: what the command names relative to it is not there. */
    char *const *argv = d->proc->argv;
    bool relative = false;
    for (size_t i = 0; argv && argv[i]; i++)
        relative = relative || (i == 0 ? argv[0][0] != '/' && strchr(argv[0], '/')
                                       : relative_file_arg(argv[i]));
    struct rbx_finding *f = rbx_doctor_add(
        d, "workdir-missing", relative ? RBX_SEVERITY_ERROR : RBX_SEVERITY_WARNING,
        "fix WORKDIR in the Dockerfile (or the recipe's workdir), or COPY the app into that "
        "directory",
        relative ? "the working directory %s is not in the image: it is created empty and the "
                   "command's relative paths name nothing"
                 : "the working directory %s is not in the image: it is created empty at start",
        cwd);
    _cleanup_free_ char *where = NULL;
    int r = rbx_realpath_in_root(d->rootfd, cwd, &where, NULL);
    if (r < 0 && where && strcmp(where, cwd) != 0)
        rbx_finding_evidence(f, "%s is not in the image", where);
    /* Where the relative paths do exist: an ancestor of the working directory, usually. */
    for (size_t i = 0; argv && argv[i]; i++) {
        const char *a = argv[i];
        if (i == 0 ? !(a[0] != '/' && strchr(a, '/')) : !relative_file_arg(a))
            continue;
        _cleanup_free_ char *dir = rbx_xstrdup(cwd);
        bool found = false;
        while (!found) {
            char *slash = strrchr(dir, '/');
            if (!slash)
                break;
            *slash = '\0';
            _cleanup_free_ char *cand = rbx_xasprintf("%s/%s", dir, a);
            if (exists_in_root(d->rootfd, cand)) {
                rbx_finding_evidence(f, "%s is at %s/%s: WORKDIR %s?", a, dir, a, *dir ? dir : "/");
                found = true;
            }
        }
        if (!found)
            rbx_finding_evidence(f, "%s is not anywhere above %s either", a, cwd);
    }
}

/* ---- broken symlinks ------------------------------------------------------------------------ */

#define MAX_WALK_DEPTH 128
#define MAX_WALK_ENTRIES 4000000
#define MAX_EXAMPLES 3

/* Where links may point to things the runtime makes (mounts, tmpfs), not the image. */
static bool runtime_path(const char *p)
{
    static const char *const dirs[] = {"/proc", "/sys",     "/dev",     "/run",
                                       "/tmp",  "/var/run", "/var/lock"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(dirs); i++) {
        size_t n = strlen(dirs[i]);
        if (strncmp(p, dirs[i], n) == 0 && (p[n] == '/' || p[n] == '\0'))
            return true;
    }
    return false;
}

struct link_group {
    char *missing; /* the first missing path the links lead to ("" for loops) */
    char *under;   /* the deepest directory holding all its links */
    size_t count;
    char *examples[MAX_EXAMPLES];
    bool used; /* some link is where a process looks: its working dir or PATH */
};

struct walk {
    struct rbx_doctor *d;
    const struct rbx_doctor_process *procs;
    size_t n_procs;
    struct link_group *groups;
    size_t n_groups;
    uint64_t entries;
    bool truncated;
    char **used_dirs; /* every process's working directory and PATH */
};

static bool under_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return false; /* everything is under "/": it says nothing */
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static void note_broken(struct walk *w, const char *path, const char *target, const char *missing)
{
    struct link_group *g = NULL;
    for (size_t i = 0; i < w->n_groups && !g; i++)
        if (strcmp(w->groups[i].missing, missing) == 0)
            g = &w->groups[i];
    _cleanup_free_ char *dir = rbx_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    else
        strcpy(dir, "/");
    if (!g) {
        w->groups = rbx_xrealloc(w->groups, (w->n_groups + 1) * sizeof(*w->groups));
        g = &w->groups[w->n_groups++];
        memset(g, 0, sizeof(*g));
        g->missing = rbx_xstrdup(missing);
        g->under = rbx_xstrdup(dir);
    } else {
        /* the common ancestor of the links' directories */
        size_t k = 0;
        while (g->under[k] && g->under[k] == dir[k])
            k++;
        if (!(g->under[k] == '\0' && (dir[k] == '/' || dir[k] == '\0'))) {
            while (k > 0 && g->under[k] != '/')
                k--;
            g->under[k ? k : 1] = '\0';
        }
    }
    if (g->count < MAX_EXAMPLES)
        g->examples[g->count] = rbx_xasprintf("%s -> %s", path, target);
    g->count++;
    for (size_t i = 0; w->used_dirs && w->used_dirs[i] && !g->used; i++)
        g->used = under_dir(path, w->used_dirs[i]);
}

static void check_link(struct walk *w, int dirfd, const char *name, const char *path)
{
    char target[RBX_PATH_MAX + 1];
    ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
    if (n < 0)
        return;
    target[n] = '\0';
    _cleanup_free_ char *where = NULL;
    int r = rbx_realpath_in_root(w->d->rootfd, path, &where, NULL);
    if (r == 0)
        return;
    if (r == -ELOOP) {
        note_broken(w, path, target, "");
        return;
    }
    if ((r != -ENOENT && r != -ENOTDIR) || !where || runtime_path(where))
        return;
    note_broken(w, path, target, where);
}

static void walk_dir(struct walk *w, int fd, char *path, size_t plen, unsigned depth)
{
    if (depth > MAX_WALK_DEPTH)
        return;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir))) {
        const char *name = de->d_name;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
            continue;
        if (++w->entries > MAX_WALK_ENTRIES) {
            w->truncated = true;
            break;
        }
        /* the container's own mounts are not the image */
        if (depth == 0 &&
            (strcmp(name, "proc") == 0 || strcmp(name, "sys") == 0 || strcmp(name, "dev") == 0))
            continue;
        size_t nlen = strlen(name);
        if (plen + 1 + nlen >= RBX_PATH_MAX)
            continue;
        path[plen] = '/';
        memcpy(path + plen + 1, name, nlen + 1);
        unsigned char type = de->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        if (type == DT_LNK) {
            check_link(w, dirfd(dir), name, path);
        } else if (type == DT_DIR) {
            int sub = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk_dir(w, sub, path, plen + 1 + nlen, depth + 1);
        }
        path[plen] = '\0';
    }
    closedir(dir);
}

static void used_dirs_of(struct walk *w)
{
    for (size_t i = 0; i < w->n_procs; i++) {
        const struct rbx_doctor_process *p = &w->procs[i];
        if (p->cwd && *p->cwd)
            rbx_strv_push(&w->used_dirs, p->cwd);
        const char *path = rbx_env_get(p->env, "PATH");
        _cleanup_free_ char *copy = rbx_xstrdup(path ? path : "");
        char *save = NULL;
        for (char *s = strtok_r(copy, ":", &save); s; s = strtok_r(NULL, ":", &save))
            if (s[0] == '/')
                rbx_strv_push(&w->used_dirs, s);
    }
}

void rbx_doctor_symlinks(struct rbx_doctor *d, const struct rbx_doctor_process *procs, size_t n)
{
    struct walk w = {.d = d, .procs = procs, .n_procs = n};
    used_dirs_of(&w);
    int fd = openat(d->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        char path[RBX_PATH_MAX + 1] = "";
        walk_dir(&w, fd, path, 0, 0);
    }
    d->rep->entries_walked += w.entries;
    for (size_t i = 0; i < w.n_groups; i++) {
        struct link_group *g = &w.groups[i];
        const char *base = strrchr(g->missing, '/');
        bool pnpm = base && strcmp(base + 1, ".pnpm") == 0;
        const char *hint = pnpm ? "pnpm's node_modules are links into its store, node_modules/"
                                  ".pnpm: copy the store too, or install real files (pnpm deploy, "
                                  "or node-linker=hoisted)"
                                : "copy what the links point to into the image, or drop the links";
        enum rbx_severity sev = g->used ? RBX_SEVERITY_ERROR : RBX_SEVERITY_WARNING;
        struct rbx_finding *f;
        if (!g->used && !(d->flags & RBX_DOCTOR_ALL_LINKS)) {
            d->rep->links_elsewhere += g->count;
            goto next;
        }
        if (!*g->missing)
            f = rbx_doctor_add(d, "broken-symlinks", sev, "break the loop of links",
                               "%zu link%s under %s %s a loop", g->count, g->count == 1 ? "" : "s",
                               g->under, g->count == 1 ? "is part of" : "are part of");
        else if (g->count == 1)
            f = rbx_doctor_add(d, "broken-symlinks", sev, hint,
                               "a link under %s points into %s, which is not in the image",
                               g->under, g->missing);
        else
            f = rbx_doctor_add(d, "broken-symlinks", sev, hint,
                               "%zu links under %s point into %s, which is not in the image",
                               g->count, g->under, g->missing);
        for (size_t k = 0; k < g->count && k < MAX_EXAMPLES; k++)
            rbx_finding_evidence(f, "%s", g->examples[k]);
        if (g->count > MAX_EXAMPLES)
            rbx_finding_evidence(f, "... and %zu more", g->count - MAX_EXAMPLES);
    next:
        free(g->missing);
        free(g->under);
        for (size_t k = 0; k < MAX_EXAMPLES; k++)
            free(g->examples[k]);
    }
    free(w.groups);
    rbx_strv_free(w.used_dirs);
    if (w.truncated)
        rbx_doctor_add(d, "broken-symlinks", RBX_SEVERITY_WARNING, NULL,
                       "more than %d entries in the image: the rest was not looked at",
                       MAX_WALK_ENTRIES);
}
