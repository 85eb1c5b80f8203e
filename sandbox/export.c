/* export.c — copying a container's merged rootfs into a plain directory (an OCI bundle's
 * rootfs): the tree seen through the container's root fd, without crossing into the mounts the
 * sandbox put over it (/proc, /dev, /sys), with modes, owners, times, symlinks and hardlinks. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define MAX_DEPTH 256

struct link_entry {
    dev_t dev;
    ino_t ino;
    char *path; /* relative to dest */
};

struct copy {
    int dest_root;
    uint64_t root_mnt;
    struct link_entry *links;
    size_t n_links, cap_links;
    unsigned skipped; /* device nodes and sockets a namespace cannot make */
    struct rbx_error **err;
};

static int mnt_id(int dirfd, const char *name, uint64_t *out)
{
    struct statx sx;
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0)
        return -errno;
    *out = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
    return 0;
}

static int copy_data(int in, int out)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
            return -errno;
        break;
    }
    /* No copy_file_range across these filesystems: plain reads and writes. */
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            off += w;
        }
    }
}

/* Metadata is copied as far as this user may: a rootless copy cannot give away ids it lacks. */
static void best_effort(int r)
{
    (void)r;
}

/* Owner, then mode (chown clears set-id bits), then the capability xattr, then times. */
static void finish(int dirfd, const char *name, int fd, const struct stat *st)
{
    if (fd >= 0) {
        best_effort(fchown(fd, st->st_uid, st->st_gid));
        best_effort(fchmod(fd, st->st_mode & 07777));
    } else {
        best_effort(fchownat(dirfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW));
        if (!S_ISLNK(st->st_mode))
            best_effort(fchmodat(dirfd, name, st->st_mode & 07777, 0));
    }
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    best_effort(utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW));
}

static void copy_caps_xattr(int in, int out)
{
    char buf[64];
    ssize_t n = fgetxattr(in, "security.capability", buf, sizeof(buf));
    if (n > 0)
        best_effort(fsetxattr(out, "security.capability", buf, (size_t)n, 0));
}

static int copy_dir(struct copy *c, int src, int dst, const char *rel, unsigned depth);

static int copy_entry(struct copy *c, int src, int dst, const char *name, const char *rel,
                      unsigned depth)
{
    struct stat st;
    if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: %s", rel);
    if (S_ISDIR(st.st_mode)) {
        if (mkdirat(dst, name, 0700) < 0 && errno != EEXIST)
            return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: mkdir %s", rel);
        uint64_t m = 0;
        /* A mount the sandbox put here (/proc, /dev, /sys): an empty dir in the copy. */
        bool other_mount = mnt_id(src, name, &m) == 0 && m && c->root_mnt && m != c->root_mnt;
        if (!other_mount) {
            _cleanup_close_ int s = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_close_ int d = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s < 0 || d < 0)
                return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: %s", rel);
            int r = copy_dir(c, s, d, rel, depth + 1);
            if (r < 0)
                return r;
        }
        /* Modes and times after the contents, which would change the times. */
        finish(dst, name, -1, &st);
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[RBX_PATH_MAX + 1];
        ssize_t n = readlinkat(src, name, target, sizeof(target) - 1);
        if (n < 0)
            return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: %s", rel);
        target[n] = '\0';
        if (symlinkat(target, dst, name) < 0)
            return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: symlink %s", rel);
        finish(dst, name, -1, &st);
        return 0;
    }
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        for (size_t i = 0; i < c->n_links; i++)
            if (c->links[i].dev == st.st_dev && c->links[i].ino == st.st_ino) {
                if (linkat(c->dest_root, c->links[i].path, dst, name, 0) == 0)
                    return 0;
                break; /* fall back to a copy */
            }
    }
    if (S_ISREG(st.st_mode)) {
        _cleanup_close_ int in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int out =
            openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (in < 0 || out < 0)
            return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: %s", rel);
        int r = copy_data(in, out);
        if (r < 0)
            return rbx_error_set_errno(c->err, RBX_ERR_IO, -r, "rootfs copy: %s", rel);
        finish(dst, name, out, &st);
        copy_caps_xattr(in, out);
        if (st.st_nlink > 1) {
            if (c->n_links == c->cap_links) {
                c->cap_links = c->cap_links ? c->cap_links * 2 : 64;
                c->links = rbx_xrealloc(c->links, c->cap_links * sizeof(*c->links));
            }
            c->links[c->n_links++] =
                (struct link_entry){st.st_dev, st.st_ino, rbx_xstrdup(rel + 1)};
        }
        return 0;
    }
    if (S_ISFIFO(st.st_mode)) {
        if (mknodat(dst, name, S_IFIFO | 0600, 0) < 0)
            return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: fifo %s", rel);
        finish(dst, name, -1, &st);
        return 0;
    }
    /* Devices need CAP_MKNOD in the initial namespace; sockets are never image content. */
    if (mknodat(dst, name, st.st_mode & (S_IFMT | 07777), st.st_rdev) == 0)
        finish(dst, name, -1, &st);
    else
        c->skipped++;
    return 0;
}

static int copy_dir(struct copy *c, int src, int dst, const char *rel, unsigned depth)
{
    if (depth > MAX_DEPTH)
        return rbx_error_set(c->err, RBX_ERR_LIMIT, ELOOP, "rootfs copy: %s: deeper than %d",
                             rel, MAX_DEPTH);
    int dup = fcntl(src, F_DUPFD_CLOEXEC, 3);
    if (dup < 0)
        return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: %s", rel);
    _cleanup_closedir_ DIR *d = fdopendir(dup);
    if (!d) {
        close(dup);
        return rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: %s", rel);
    }
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *child = rbx_xasprintf("%s/%s", rel, de->d_name);
        int r = copy_entry(c, src, dst, de->d_name, child, depth);
        if (r < 0)
            return r;
    }
    return errno ? rbx_error_set_errno(c->err, RBX_ERR_IO, errno, "rootfs copy: %s", rel) : 0;
}

int rbx_rootfs_copy(int rootfd, const char *dest, unsigned *skipped, struct rbx_error **err)
{
    if (mkdir(dest, 0755) < 0 && errno != EEXIST)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "rootfs copy: mkdir %s", dest);
    _cleanup_close_ int d = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int s = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0 || s < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "rootfs copy: %s", dest);
    struct copy c = {.dest_root = d, .err = err};
    (void)mnt_id(s, "", &c.root_mnt);
    int r = copy_dir(&c, s, d, "", 0);
    struct stat st;
    if (r == 0 && fstat(s, &st) == 0) {
        best_effort(fchown(d, st.st_uid, st.st_gid));
        best_effort(fchmod(d, st.st_mode & 07777));
    }
    for (size_t i = 0; i < c.n_links; i++)
        free(c.links[i].path);
    free(c.links);
    if (skipped)
        *skipped = c.skipped;
    return r;
}
