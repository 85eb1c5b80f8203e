/* fs.c — filesystem work relative to a root fd: every path that comes from an image is resolved
 * here with chroot semantics, so nothing outside the root is ever named (STYLE.md §5). */
#include "common/common.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* -1 unknown, 0 absent (ENOSYS), 1 present. */
static int openat2_state = -1;

static int sys_openat2(int dirfd, const char *path, struct open_how *how)
{
    return (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

bool rbx_openat2_available(void)
{
    /* Atomic: layers are unpacked by several threads at once; each may probe, all agree. */
    int state = __atomic_load_n(&openat2_state, __ATOMIC_RELAXED);
    if (state < 0) {
        struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
        int fd = sys_openat2(AT_FDCWD, "/", &how);
        if (fd >= 0)
            close(fd);
        state = (fd >= 0 || errno != ENOSYS) ? 1 : 0;
        __atomic_store_n(&openat2_state, state, __ATOMIC_RELAXED);
    }
    return state == 1;
}

/* Test hook: force the component walker (used by unit tests to cover both paths). */
void rbx_fs_force_walker(bool on);
void rbx_fs_force_walker(bool on) { __atomic_store_n(&openat2_state, on ? 0 : -1, __ATOMIC_RELAXED); }

static bool is_probe_errno(int e) { return e == ENOENT || e == ENOTDIR; }

struct walk_stack {
    int *fds;
    size_t n, cap;
};

static void stack_clear(struct walk_stack *s)
{
    for (size_t i = 0; i < s->n; i++)
        close(s->fds[i]);
    free(s->fds);
    s->fds = NULL;
    s->n = s->cap = 0;
}

static void stack_push(struct walk_stack *s, int fd)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->fds = rbx_xrealloc(s->fds, s->cap * sizeof(int));
    }
    s->fds[s->n++] = fd;
}

/* The component walker: resolves one component at a time with O_PATH|O_NOFOLLOW, expands
 * symlinks itself (an absolute target restarts at the root, ".." never climbs above it) and
 * keeps the fds of the directories it went through so ".." is a pop, not a lookup. */
static int walk_open(int rootfd, const char *path, int flags, mode_t mode, bool nofollow,
                     bool no_symlinks, struct rbx_error **err)
{
    struct walk_stack st = {0};
    _cleanup_free_ char *rest = rbx_xstrdup(path);
    char link[RBX_PATH_MAX + 1];
    int hops = 0, ret;

    for (;;) {
        /* Take the next component off `rest`. */
        char *p = rest;
        while (*p == '/')
            p++;
        if (*p == '\0') {
            /* Path ends at a directory: open it (or the root) with the caller's flags. */
            int cur = st.n ? st.fds[st.n - 1] : rootfd;
            ret = openat(cur, ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
            ret = ret < 0 ? -errno : ret;
            goto out;
        }
        char *slash = strchr(p, '/');
        size_t clen = slash ? (size_t)(slash - p) : strlen(p);
        char comp[RBX_NAME_MAX + 1];
        if (clen > RBX_NAME_MAX) {
            ret = rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "path component over %d bytes",
                                RBX_NAME_MAX);
            goto out;
        }
        memcpy(comp, p, clen);
        comp[clen] = '\0';
        char *after = p + clen;
        while (*after == '/')
            after++;
        bool last = *after == '\0';
        memmove(rest, after, strlen(after) + 1);

        if (strcmp(comp, ".") == 0) {
            if (last) {
                int cur = st.n ? st.fds[st.n - 1] : rootfd;
                ret = openat(cur, ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
                ret = ret < 0 ? -errno : ret;
                goto out;
            }
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            if (st.n)
                close(st.fds[--st.n]);
            if (last) {
                int cur = st.n ? st.fds[st.n - 1] : rootfd;
                ret = openat(cur, ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
                ret = ret < 0 ? -errno : ret;
                goto out;
            }
            continue;
        }

        int cur = st.n ? st.fds[st.n - 1] : rootfd;
        struct stat sb;
        int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT && last && (flags & O_CREAT)) {
                ret = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
                ret = ret < 0 ? -errno : ret;
                goto out;
            }
            ret = -errno;
            goto out;
        }
        if (fstat(fd, &sb) < 0) {
            ret = -errno;
            close(fd);
            goto out;
        }
        if (S_ISLNK(sb.st_mode) && !(last && (nofollow || (flags & O_CREAT)))) {
            if (no_symlinks || ++hops > RBX_SYMLINK_HOPS) {
                close(fd);
                ret = -ELOOP;
                goto out;
            }
            ssize_t n = readlinkat(fd, "", link, sizeof(link) - 1);
            close(fd);
            if (n < 0) {
                ret = -errno;
                goto out;
            }
            link[n] = '\0';
            if (link[0] == '/') {
                while (st.n)
                    close(st.fds[--st.n]);
            }
            char *joined = rbx_xasprintf("%s%s%s", link, *rest ? "/" : "", rest);
            if (strlen(joined) > RBX_PATH_MAX * 2) {
                free(joined);
                ret = -ENAMETOOLONG;
                goto out;
            }
            free(rest);
            rest = joined;
            continue;
        }
        if (last) {
            if ((flags & O_PATH) && (nofollow || !S_ISLNK(sb.st_mode)) &&
                !(flags & O_DIRECTORY && !S_ISDIR(sb.st_mode))) {
                ret = fd;
                goto out;
            }
            close(fd);
            if ((flags & O_DIRECTORY) && !S_ISDIR(sb.st_mode)) {
                ret = -ENOTDIR;
                goto out;
            }
            ret = openat(cur, comp, (flags & ~O_CREAT) | O_NOFOLLOW | O_CLOEXEC, mode);
            ret = ret < 0 ? -errno : ret;
            goto out;
        }
        if (!S_ISDIR(sb.st_mode)) {
            close(fd);
            ret = -ENOTDIR;
            goto out;
        }
        stack_push(&st, fd);
    }
out:
    stack_clear(&st);
    return ret;
}

int rbx_open_in_root(int rootfd, const char *path, int flags, mode_t mode, unsigned rflags,
                     struct rbx_error **err)
{
    bool nofollow = (rflags & RBX_RESOLVE_NOFOLLOW) || (flags & O_CREAT);
    int ret;

    if (strlen(path) > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "path over %d bytes", RBX_PATH_MAX);
    if (rbx_openat2_available()) {
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0)),
            .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
            .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
                       ((rflags & RBX_RESOLVE_NO_SYMLINKS) ? RESOLVE_NO_SYMLINKS : 0),
        };
        const char *p = *path ? path : ".";
        for (int tries = 0; tries < 32; tries++) {
            ret = sys_openat2(rootfd, p, &how);
            if (ret >= 0 || errno != EAGAIN)
                break;
        }
        ret = ret < 0 ? -errno : ret;
    } else {
        ret = walk_open(rootfd, path, flags, mode, nofollow, rflags & RBX_RESOLVE_NO_SYMLINKS, err);
    }
    if (ret < 0 && !is_probe_errno(-ret) && err && !*err)
        rbx_error_set_errno(err, -ret == ELOOP ? RBX_ERR_LIMIT : RBX_ERR_IO, -ret, "\"%s\"", path);
    return ret;
}

int rbx_path_clean(const char *in, char **out, struct rbx_error **err)
{
    size_t len = strlen(in);
    if (len > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "path of %zu bytes (limit %d)", len,
                             RBX_PATH_MAX);
    _cleanup_free_ char *res = rbx_xmalloc(len + 1);
    size_t n = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t clen = e ? (size_t)(e - p) : strlen(p);
        if (clen > RBX_NAME_MAX)
            return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG,
                                 "path component of %zu bytes (limit %d)", clen, RBX_NAME_MAX);
        if (clen == 1 && p[0] == '.') {
            /* skip */
        } else if (clen == 2 && p[0] == '.' && p[1] == '.') {
            if (n == 0)
                return rbx_error_set(err, RBX_ERR_ESCAPE, EXDEV, "\"%s\" escapes the rootfs", in);
            while (n > 0 && res[n - 1] != '/')
                n--;
            if (n > 0)
                n--; /* drop the separator */
        } else {
            if (n)
                res[n++] = '/';
            memcpy(res + n, p, clen);
            n += clen;
        }
        p += clen;
    }
    res[n] = '\0';
    *out = TAKE_PTR(res);
    return 0;
}

int rbx_open_parent_in_root(int rootfd, const char *path, bool create, char *name,
                            struct rbx_error **err)
{
    _cleanup_free_ char *clean = NULL;
    int r = rbx_path_clean(path, &clean, err);
    if (r < 0)
        return r;
    if (!*clean)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "\"%s\" names the root itself", path);
    char *slash = strrchr(clean, '/');
    const char *base = slash ? slash + 1 : clean;
    strcpy(name, base); /* rbx_path_clean bounded it to RBX_NAME_MAX */
    if (!slash) {
        int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
        return fd < 0 ? rbx_error_set_errno(err, RBX_ERR_IO, errno, "dup") : fd;
    }
    *slash = '\0';
    if (create)
        return rbx_mkdir_p_in_root(rootfd, clean, 0755, NULL, err);
    return rbx_open_in_root(rootfd, clean, O_PATH | O_DIRECTORY, 0, 0, err);
}

/* Create what is missing of a cleaned relative path. A dangling symlink met on the way is
 * followed the way the kernel would inside the root: its target is created instead. */
static int mkdir_p_clean(int rootfd, char *clean, mode_t mode, bool *created, int hops,
                         struct rbx_error **err)
{
    int fd = rbx_open_in_root(rootfd, clean, O_PATH | O_DIRECTORY, 0, 0, err);
    if (fd >= 0 || fd != -ENOENT)
        return fd == -ENOTDIR ? rbx_error_set(err, RBX_ERR_IO, ENOTDIR, "\"%s\": Not a directory", clean)
                              : fd;

    _cleanup_close_ int parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (parent < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "dup");
    char *p = clean;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        /* Always resolve from the root, so a symlink met on the way is followed inside it. */
        int next = rbx_open_in_root(rootfd, clean, O_PATH | O_DIRECTORY, 0, 0, err);
        if (next == -ENOENT) {
            if (mkdirat(parent, p, mode) == 0) {
                /* Exactly `mode`, whatever the umask: a layer's implied parents are 0755. */
                if (fchmodat(parent, p, mode, 0) < 0)
                    return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chmod \"%s\"", clean);
                if (!slash && created)
                    *created = true;
            } else if (errno == EEXIST) {
                char target[RBX_PATH_MAX + 1];
                ssize_t n = readlinkat(parent, p, target, sizeof(target) - 1);
                if (n < 0)
                    return rbx_error_set_errno(err, RBX_ERR_IO, ENOTDIR, "\"%s\"", clean);
                if (++hops > RBX_SYMLINK_HOPS)
                    return rbx_error_set_errno(err, RBX_ERR_LIMIT, ELOOP, "\"%s\"", clean);
                target[n] = '\0';
                /* Rebuild the path with the link replaced by its target and start again. */
                _cleanup_free_ char *joined = NULL;
                const char *rest = slash ? slash + 1 : "";
                if (target[0] == '/') {
                    joined = rbx_xasprintf("%s/%s", target, rest);
                } else {
                    *p = '\0';
                    joined = rbx_xasprintf("%s%s/%s", clean, target, rest);
                }
                _cleanup_free_ char *again = NULL;
                int r = rbx_path_clean(joined, &again, err);
                if (r < 0)
                    return r == -EXDEV ? rbx_error_set(err, RBX_ERR_ESCAPE, EXDEV, "symlink escapes") : r;
                return mkdir_p_clean(rootfd, again, mode, created, hops, err);
            } else {
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir \"%s\"", clean);
            }
            next = rbx_open_in_root(rootfd, clean, O_PATH | O_DIRECTORY, 0, 0, err);
        }
        if (next < 0)
            return next == -ENOENT || next == -ENOTDIR
                       ? rbx_error_set_errno(err, RBX_ERR_IO, -next, "\"%s\"", clean)
                       : next;
        close(parent);
        parent = next;
        if (!slash)
            return TAKE_FD(parent);
        *slash = '/';
        p = slash + 1;
    }
}

int rbx_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, bool *created,
                        struct rbx_error **err)
{
    _cleanup_free_ char *clean = NULL;
    int r = rbx_path_clean(path, &clean, err);
    if (r < 0)
        return r;
    if (created)
        *created = false;
    return mkdir_p_clean(rootfd, clean, mode, created, 0, err);
}

bool rbx_dir_is_empty(int fd)
{
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    _cleanup_closedir_ DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (!dir) {
        if (d >= 0)
            close(d);
        return false;
    }
    rewinddir(dir); /* the dup shares the caller's read position */
    struct dirent *de;
    while ((de = readdir(dir)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            return false;
    return true;
}

int rbx_rm_rf_at(int parentfd, const char *name, struct rbx_error **err)
{
    if (unlinkat(parentfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "unlink \"%s\"", name);

    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* A directory without read/search permission for us (an image's 0000 dir): fix, retry. */
        if (fchmodat(parentfd, name, 0700, 0) == 0)
            fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return errno == ENOENT ? 0 : rbx_error_set_errno(err, RBX_ERR_IO, errno, "open \"%s\"", name);
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 0700) != 0700)
        (void)fchmod(fd, sb.st_mode | 0700);
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "opendir \"%s\"", name);
    }
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = rbx_rm_rf_at(dirfd(d), de->d_name, err);
        if (r < 0)
            return rbx_error_wrap(err, "%s", name);
    }
    if (unlinkat(parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "rmdir \"%s\"", name);
    return 0;
}

int rbx_read_fd(int fd, size_t max, const char *what, char **out, size_t *len, struct rbx_error **err)
{
    size_t cap = 4096, n = 0;
    _cleanup_free_ char *buf = rbx_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > max)
                break;
            cap *= 2;
            buf = rbx_xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read %s", what);
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max)
            break;
    }
    if (n > max)
        return rbx_error_set(err, RBX_ERR_LIMIT, EFBIG, "%s is larger than %zu bytes", what, max);
    buf[n] = '\0';
    if (len)
        *len = n;
    *out = TAKE_PTR(buf);
    return 0;
}

int rbx_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
                     struct rbx_error **err)
{
    _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "%s: not found", path)
                               : rbx_error_set_errno(err, RBX_ERR_IO, errno, "open %s", path);
    return rbx_read_fd(fd, max, path, out, len, err);
}

static int write_replace(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                         bool sync, struct rbx_error **err);

int rbx_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                             struct rbx_error **err)
{
    return write_replace(dirfd, path, data, len, mode, true, err);
}

int rbx_write_file_replace_at(int dirfd, const char *path, const void *data, size_t len,
                              mode_t mode, struct rbx_error **err)
{
    return write_replace(dirfd, path, data, len, mode, false, err);
}

static int write_replace(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                         bool sync, struct rbx_error **err)
{
    char rnd[13];
    rbx_random_hex(rnd, 12);
    _cleanup_free_ char *tmp = rbx_xasprintf("%s.tmp-%s", path, rnd);
    _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "create %s", tmp);
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            unlinkat(dirfd, tmp, 0);
            return rbx_error_set_errno(err, RBX_ERR_IO, e, "write %s", path);
        }
        p += w;
        len -= (size_t)w;
    }
    if ((sync && fdatasync(fd) < 0) || renameat(dirfd, tmp, dirfd, path) < 0) {
        int e = errno;
        unlinkat(dirfd, tmp, 0);
        return rbx_error_set_errno(err, RBX_ERR_IO, e, "publish %s", path);
    }
    return 0;
}

/* A walker that keeps the path it has resolved as text: the answer is that text, and on a
 * failure it says where the chain broke (what a broken pnpm link points into). */
int rbx_realpath_in_root(int rootfd, const char *path, char **out, struct rbx_error **err)
{
    struct walk_stack st = {0};
    _cleanup_free_ char *rest = rbx_xstrdup(path);
    /* res holds "/a/b" (or "" for the root) and one fd per component in st */
    size_t cap = RBX_PATH_MAX + RBX_NAME_MAX + 2, rlen = 0;
    _cleanup_free_ char *res = rbx_xmalloc(cap);
    char link[RBX_PATH_MAX + 1];
    int hops = 0, ret = 0;

    *out = NULL;
    res[0] = '\0';
    if (strlen(path) > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "path over %d bytes", RBX_PATH_MAX);
    for (;;) {
        char *p = rest;
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        size_t clen = strcspn(p, "/");
        if (clen > RBX_NAME_MAX) {
            ret = rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "path component over %d bytes",
                                RBX_NAME_MAX);
            goto out;
        }
        char comp[RBX_NAME_MAX + 1];
        memcpy(comp, p, clen);
        comp[clen] = '\0';
        memmove(rest, p + clen, strlen(p + clen) + 1);

        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            if (st.n)
                close(st.fds[--st.n]);
            while (rlen > 0 && res[rlen - 1] != '/')
                rlen--;
            if (rlen > 0)
                rlen--;
            res[rlen] = '\0';
            continue;
        }
        if (rlen + 1 + clen >= cap) {
            ret = rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "path over %d bytes",
                                RBX_PATH_MAX);
            goto out;
        }
        int cur = st.n ? st.fds[st.n - 1] : rootfd;
        int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat sb;
        ret = fd < 0 ? -errno : fstat(fd, &sb) < 0 ? -errno : 0;
        if (ret < 0) {
            if (fd >= 0)
                close(fd);
            if (!is_probe_errno(-ret)) {
                rbx_error_set_errno(err, RBX_ERR_IO, -ret, "\"%s\"", path);
                goto out;
            }
            snprintf(res + rlen, cap - rlen, "/%s", comp);
            rlen += 1 + clen;
            goto out;
        }
        if (S_ISLNK(sb.st_mode)) {
            ssize_t n = ++hops > RBX_SYMLINK_HOPS ? -1 : readlinkat(fd, "", link, sizeof(link) - 1);
            close(fd);
            if (n < 0) {
                ret = hops > RBX_SYMLINK_HOPS ? -ELOOP : -errno;
                rbx_error_set_errno(err, ret == -ELOOP ? RBX_ERR_LIMIT : RBX_ERR_IO, -ret, "\"%s\"",
                                    path);
                goto out;
            }
            link[n] = '\0';
            if (link[0] == '/') {
                while (st.n)
                    close(st.fds[--st.n]);
                rlen = 0;
                res[0] = '\0';
            }
            char *joined = rbx_xasprintf("%s/%s", link, rest);
            free(rest);
            rest = joined;
            if (strlen(rest) > RBX_PATH_MAX * 2) {
                ret = rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG,
                                    "\"%s\": links expand past %d bytes", path, RBX_PATH_MAX * 2);
                goto out;
            }
            continue;
        }
        snprintf(res + rlen, cap - rlen, "/%s", comp);
        rlen += 1 + clen;
        const char *q = rest;
        while (*q == '/')
            q++;
        if (*q && !S_ISDIR(sb.st_mode)) {
            close(fd);
            ret = -ENOTDIR;
            goto out;
        }
        stack_push(&st, fd);
    }
out:
    stack_clear(&st);
    if (ret == 0 || is_probe_errno(-ret))
        *out = rlen ? TAKE_PTR(res) : rbx_xstrdup("/");
    return ret;
}
