/* view.c — a read-only look into a rootfs made of layer dirs in overlay form (or one plain dir,
 * like the build context) without mounting anything: paths resolved component by component with
 * chroot semantics (symlinks and ".." never leave the root), whiteouts and opaque directories
 * honoured, directories merged across layers, and .dockerignore applied to the context. */
#include "builder/builder-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct rbx_view {
    int *roots; /* O_PATH fds of the layer roots, top layer first */
    size_t n;
    bool overlay; /* whiteouts and opaque markers mean what overlayfs makes them mean */
    const struct rbx_ignore *ignore;
};

int rbx_view_new(char *const *dirs, bool overlay, const struct rbx_ignore *ignore,
                 struct rbx_view **out, struct rbx_error **err)
{
    size_t n = rbx_strv_len(dirs);
    struct rbx_view *v = rbx_xcalloc(1, sizeof(*v));
    v->roots = rbx_xcalloc(n + 1, sizeof(int));
    v->overlay = overlay;
    v->ignore = ignore;
    for (size_t i = 0; i < n; i++) {
        int fd = open(dirs[n - 1 - i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            rbx_view_free(v);
            return rbx_error_set_errno(err, RBX_ERR_IO, e, "open %s", dirs[n - 1 - i]);
        }
        v->roots[v->n++] = fd;
    }
    *out = v;
    return 0;
}

struct rbx_view *rbx_view_free(struct rbx_view *v)
{
    if (!v)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        close(v->roots[i]);
    free(v->roots);
    free(v);
    return NULL;
}

void rbx_vnode_clear(struct rbx_vnode *n)
{
    if (n->fd >= 0)
        close(n->fd);
    for (size_t i = 0; i < n->n_dirs; i++)
        close(n->dirs[i]);
    free(n->dirs);
    free(n->layers);
    free(n->path);
    memset(n, 0, sizeof(*n));
    n->fd = -1;
}

char *rbx_path_clean_clamped(const char *in)
{
    /* Lexical, as filepath.Clean("/" + p): ".." at the top stays at the top. */
    size_t len = strlen(in);
    char *out = rbx_xmalloc(len + 1);
    size_t o = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t cl = (size_t)(e - p);
        if (cl == 0 || (cl == 1 && p[0] == '.')) {
            /* nothing */
        } else if (cl == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, p, cl);
            o += cl;
        }
        p = e;
    }
    out[o] = '\0';
    return out;
}

static bool is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int fd)
{
    char proc[32], v[4];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = getxattr(proc, "user.overlay.opaque", v, sizeof(v));
    if (n == 1 && v[0] == 'y')
        return true;
    n = getxattr(proc, "trusted.overlay.opaque", v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

static bool ignored(const struct rbx_view *v, const char *path, bool is_dir)
{
    if (!v->ignore || !*path)
        return false;
    /* A directory only partly excluded is still there: what it keeps is looked at one by one. */
    enum rbx_ignore_verdict verdict = rbx_ignore_match(v->ignore, path, is_dir);
    return is_dir ? verdict == RBX_IGNORE_EXCLUDE_TREE : verdict != RBX_IGNORE_KEEP;
}

/* One name in a directory node: the entry of the topmost layer that has it, merged with the
 * directories below when it is one. Returns 1 when found, 0 when absent. */
static int step(const struct rbx_view *v, const struct rbx_vnode *dir, const char *name,
                const char *path, struct rbx_vnode *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    bool found = false;
    for (size_t i = 0; i < dir->n_dirs; i++) {
        int fd = openat(dir->dirs[i], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue;
            rbx_vnode_clear(out);
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\"", path);
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
            int e = errno;
            close(fd);
            rbx_vnode_clear(out);
            return rbx_error_set_errno(err, RBX_ERR_IO, e, "\"%s\"", path);
        }
        if (v->overlay && is_whiteout(&st)) {
            close(fd);
            break; /* hides this name in every layer below */
        }
        if (!S_ISDIR(st.st_mode)) {
            if (!found) {
                out->fd = fd;
                out->st = st;
                out->layer = dir->layers ? dir->layers[i] : i;
                found = true;
            } else {
                close(fd);
            }
            break; /* a non-directory ends the merge */
        }
        if (!found) {
            out->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
            out->st = st;
            out->layer = dir->layers ? dir->layers[i] : i;
            found = true;
        }
        out->dirs = rbx_xrealloc(out->dirs, (out->n_dirs + 1) * sizeof(int));
        out->layers = rbx_xrealloc(out->layers, (out->n_dirs + 1) * sizeof(size_t));
        out->layers[out->n_dirs] = dir->layers ? dir->layers[i] : i;
        out->dirs[out->n_dirs++] = fd;
        if (v->overlay && is_opaque(fd))
            break;
    }
    if (!found)
        return 0;
    if (ignored(v, path, S_ISDIR(out->st.st_mode))) {
        rbx_vnode_clear(out);
        return 0;
    }
    return 1;
}

static void root_node(const struct rbx_view *v, struct rbx_vnode *out)
{
    memset(out, 0, sizeof(*out));
    out->fd = v->n ? fcntl(v->roots[0], F_DUPFD_CLOEXEC, 3) : -1;
    out->dirs = rbx_xcalloc(v->n + 1, sizeof(int));
    out->layers = rbx_xcalloc(v->n + 1, sizeof(size_t));
    for (size_t i = 0; i < v->n; i++) {
        out->dirs[i] = fcntl(v->roots[i], F_DUPFD_CLOEXEC, 3);
        out->layers[i] = i;
    }
    out->n_dirs = v->n;
    if (out->fd >= 0)
        fstat(out->fd, &out->st);
    else
        out->st.st_mode = S_IFDIR | 0755;
    out->path = rbx_xstrdup("");
}

int rbx_view_lookup(const struct rbx_view *v, const char *path, bool follow_last,
                    struct rbx_vnode *out, struct rbx_error **err)
{
    _cleanup_free_ char *todo = rbx_path_clean_clamped(path);
    struct rbx_vnode cur;
    root_node(v, &cur);
    unsigned hops = 0;
    const char *p = todo;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        bool last = !e || !e[strspn(e, "/")];
        if (cl > RBX_NAME_MAX) {
            rbx_vnode_clear(&cur);
            return -ENAMETOOLONG;
        }
        char name[RBX_NAME_MAX + 1];
        memcpy(name, p, cl);
        name[cl] = '\0';
        if (!S_ISDIR(cur.st.st_mode)) {
            rbx_vnode_clear(&cur);
            return -ENOTDIR;
        }
        _cleanup_free_ char *cpath =
            *cur.path ? rbx_xasprintf("%s/%s", cur.path, name) : rbx_xstrdup(name);
        struct rbx_vnode next;
        int r = step(v, &cur, name, cpath, &next, err);
        if (r <= 0) {
            rbx_vnode_clear(&cur);
            return r < 0 ? r : -ENOENT;
        }
        if (S_ISLNK(next.st.st_mode) && (!last || follow_last)) {
            if (++hops > RBX_SYMLINK_HOPS) {
                rbx_vnode_clear(&next);
                rbx_vnode_clear(&cur);
                return rbx_error_set(err, RBX_ERR_IO, ELOOP, "\"%s\": too many symlinks", path);
            }
            char target[RBX_PATH_MAX + 1];
            ssize_t n = readlinkat(next.fd, "", target, sizeof(target) - 1);
            rbx_vnode_clear(&next);
            if (n < 0) {
                rbx_vnode_clear(&cur);
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": readlink", cpath);
            }
            target[n] = '\0';
            /* Start again from the root: an absolute target is the rootfs's own, a relative one
             * is from the link's directory; either way cleaned inside the root. */
            const char *rest = p + cl;
            char *joined = target[0] == '/' ? rbx_xasprintf("%s%s", target, rest)
                                            : rbx_xasprintf("%s/%s%s", cur.path, target, rest);
            free(todo);
            todo = rbx_path_clean_clamped(joined);
            free(joined);
            rbx_vnode_clear(&cur);
            root_node(v, &cur);
            p = todo;
            continue;
        }
        free(next.path);
        next.path = TAKE_PTR(cpath);
        rbx_vnode_clear(&cur);
        cur = next;
        p += cl;
    }
    *out = cur;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rbx_view_list(const struct rbx_view *v, const struct rbx_vnode *dir, char ***names,
                  struct rbx_error **err)
{
    _cleanup_strv_ char **all = rbx_xcalloc(1, sizeof(char *));
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < dir->n_dirs; i++) {
        int fd = openat(dir->dirs[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": open", dir->path);
        DIR *d = fdopendir(fd);
        if (!d) {
            close(fd);
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": open", dir->path);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (n + 1 >= cap) {
                cap = cap ? cap * 2 : 64;
                all = rbx_xrealloc(all, (cap + 1) * sizeof(char *));
            }
            all[n++] = rbx_xstrdup(de->d_name);
            all[n] = NULL;
        }
        closedir(d);
    }
    qsort(all, n, sizeof(char *), cmp_str);
    _cleanup_strv_ char **out = rbx_xcalloc(n + 1, sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(all[i], all[i - 1]) == 0)
            continue;
        _cleanup_free_ char *cpath =
            *dir->path ? rbx_xasprintf("%s/%s", dir->path, all[i]) : rbx_xstrdup(all[i]);
        struct rbx_vnode child;
        int r = step(v, dir, all[i], cpath, &child, err);
        if (r < 0)
            return r;
        if (r == 0)
            continue;
        rbx_vnode_clear(&child);
        out[k++] = rbx_xstrdup(all[i]);
    }
    *names = TAKE_PTR(out);
    return 0;
}

int rbx_view_child(const struct rbx_view *v, const struct rbx_vnode *dir, const char *name,
                   struct rbx_vnode *out, struct rbx_error **err)
{
    _cleanup_free_ char *cpath =
        *dir->path ? rbx_xasprintf("%s/%s", dir->path, name) : rbx_xstrdup(name);
    int r = step(v, dir, name, cpath, out, err);
    if (r <= 0)
        return r < 0 ? r : -ENOENT;
    out->path = TAKE_PTR(cpath);
    return 0;
}

int rbx_view_root_fd(const struct rbx_view *v, size_t layer)
{
    return layer < v->n ? v->roots[layer] : -1;
}

int rbx_vnode_open(const struct rbx_vnode *n, struct rbx_error **err)
{
    char proc[32];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", n->fd);
    int fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open \"%s\"", n->path);
    return fd;
}

int rbx_view_read_file(const struct rbx_view *v, const char *path, size_t max, char **out,
                       size_t *len, struct rbx_error **err)
{
    struct rbx_vnode n;
    int r = rbx_view_lookup(v, path, true, &n, err);
    if (r < 0)
        return r;
    if (!S_ISREG(n.st.st_mode)) {
        rbx_vnode_clear(&n);
        return -ENOENT;
    }
    _cleanup_close_ int fd = rbx_vnode_open(&n, err);
    rbx_vnode_clear(&n);
    if (fd < 0)
        return fd;
    return rbx_read_fd(fd, max, path, out, len, err);
}
