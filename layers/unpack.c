/* unpack.c — reprobox's own tar applier: each entry's path cleaned, its parent resolved inside
 * the layer root, the entry made with *at() calls on that parent fd; owners, modes, xattrs and
 * times applied in an order that keeps them (chown before chmod before capabilities); directory
 * modes and times deferred until their contents are written. libarchive only parses. */
#include "layers/layers-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* ---- a string set / map with open addressing (paths of one layer) --------------------------- */

struct strmap {
    char **keys;
    size_t *vals;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t *strmap_slot(struct strmap *m, const char *key, bool insert)
{
    if (insert && (m->n + 1) * 2 > m->cap) {
        struct strmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->keys = rbx_xcalloc(m->cap, sizeof(char *));
        m->vals = rbx_xcalloc(m->cap, sizeof(size_t));
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) {
                size_t j = hash_str(old.keys[i]) & (m->cap - 1);
                while (m->keys[j])
                    j = (j + 1) & (m->cap - 1);
                m->keys[j] = old.keys[i];
                m->vals[j] = old.vals[i];
                m->n++;
            }
        free(old.keys);
        free(old.vals);
    }
    if (!m->cap)
        return NULL;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0)
            return &m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!insert)
        return NULL;
    m->keys[j] = rbx_xstrdup(key);
    m->n++;
    return &m->vals[j];
}

static void strmap_clear(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- the applier ----------------------------------------------------------------------------- */

struct dir_fixup {
    mode_t mode;
    struct timespec times[2];
};

struct unpack {
    struct archive *a;
    int rootfd;
    struct rbx_unpack_counts *counts;
    struct strmap whiteouts; /* paths whited out in this layer: a dir made there is opaque */
    struct strmap fixup_idx; /* path -> index in fixups */
    struct dir_fixup *fixups;
    char **fixup_paths;
    size_t n_fixups, cap_fixups;
    bool trusted_refused; /* trusted.* xattrs were refused once: do not try again */
};

static void unpack_clear(struct unpack *u)
{
    strmap_clear(&u->whiteouts);
    strmap_clear(&u->fixup_idx);
    for (size_t i = 0; i < u->n_fixups; i++)
        free(u->fixup_paths[i]);
    free(u->fixup_paths);
    free(u->fixups);
}

static bool refused(int e)
{
    return e == EPERM || e == EACCES || e == ENOTSUP;
}

/* Remove what is at parentfd/name. Returns 1 (and leaves it) when it is a directory and
 * keep_dir is set, 0 when the name is free now. */
static int remove_existing(int parentfd, const char *name, bool keep_dir, struct rbx_error **err)
{
    struct stat st;
    if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : rbx_error_set_errno(err, RBX_ERR_IO, errno, "stat");
    if (S_ISDIR(st.st_mode)) {
        if (keep_dir)
            return 1;
        return rbx_rm_rf_at(parentfd, name, err);
    }
    if (unlinkat(parentfd, name, 0) < 0 && errno != ENOENT)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "unlink");
    return 0;
}

static int apply_owner(struct unpack *u, struct archive_entry *e, int fd, int parentfd,
                       const char *name, struct rbx_error **err)
{
    int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || gid < 0 || uid >= (int64_t)UINT32_MAX || gid >= (int64_t)UINT32_MAX) {
        u->counts->skipped_owners++;
        return 0;
    }
    int r = fd >= 0 ? fchown(fd, (uid_t)uid, (gid_t)gid)
                    : fchownat(parentfd, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0) {
        /* EINVAL: the id is not mapped in this user namespace; EPERM: not ours to give. */
        if (errno == EINVAL || errno == EPERM) {
            u->counts->skipped_owners++;
            return 0;
        }
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chown %lld:%lld", (long long)uid,
                                   (long long)gid);
    }
    return 0;
}

static int apply_xattrs(struct unpack *u, struct archive_entry *e, int fd, int parentfd,
                        const char *name, struct rbx_error **err)
{
    const char *key;
    const void *value;
    size_t size;
    if (archive_entry_xattr_reset(e) == 0)
        return 0;
    while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
        bool trusted = strncmp(key, "trusted.", 8) == 0;
        if (rbx_xattr_forbidden(key) || (trusted && u->trusted_refused) ||
            !(strncmp(key, "user.", 5) == 0 || strcmp(key, "security.capability") == 0 ||
              trusted)) {
            u->counts->skipped_xattrs++;
            continue;
        }
        int r;
        if (fd >= 0) {
            r = fsetxattr(fd, key, value, size, 0);
        } else {
            /* No fd to set it through (symlink, device, fifo): the parent's fd path plus the
             * name, never following the last component. */
            char path[64 + RBX_NAME_MAX];
            snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", parentfd, name);
            r = lsetxattr(path, key, value, size, 0);
        }
        if (r < 0) {
            if (refused(errno) || errno == EINVAL || errno == ERANGE || errno == E2BIG ||
                errno == ENOENT) {
                if (trusted && errno == EPERM)
                    u->trusted_refused = true;
                u->counts->skipped_xattrs++;
                continue;
            }
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "xattr %s", key);
        }
    }
    return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
    if (archive_entry_mtime_is_set(e)) {
        ts[1].tv_sec = archive_entry_mtime(e);
        ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    } else {
        ts[1].tv_sec = 0;
        ts[1].tv_nsec = UTIME_OMIT;
    }
    if (archive_entry_atime_is_set(e)) {
        ts[0].tv_sec = archive_entry_atime(e);
        ts[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
        ts[0] = ts[1];
    }
}

static void add_fixup(struct unpack *u, const char *path, struct archive_entry *e)
{
    size_t *slot = strmap_slot(&u->fixup_idx, path, false);
    size_t i;
    if (slot) {
        i = *slot; /* a duplicate entry: the later one's mode and times win */
    } else {
        if (u->n_fixups == u->cap_fixups) {
            u->cap_fixups = u->cap_fixups ? u->cap_fixups * 2 : 64;
            u->fixups = rbx_xrealloc(u->fixups, u->cap_fixups * sizeof(*u->fixups));
            u->fixup_paths = rbx_xrealloc(u->fixup_paths, u->cap_fixups * sizeof(char *));
        }
        i = u->n_fixups++;
        u->fixup_paths[i] = rbx_xstrdup(path);
        *strmap_slot(&u->fixup_idx, path, true) = i;
    }
    u->fixups[i].mode = archive_entry_perm(e) & 07777;
    entry_times(e, u->fixups[i].times);
}

static int write_data(struct unpack *u, int fd, struct archive_entry *e, struct rbx_error **err)
{
    const void *buf;
    size_t size;
    la_int64_t offset;
    int64_t end = 0;
    for (;;) {
        int r = archive_read_data_block(u->a, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return -EBADMSG; /* the caller reads the stream's or libarchive's error */
        const char *p = buf;
        while (size > 0) {
            ssize_t w = pwrite(fd, p, size, offset);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "write");
            }
            p += w;
            size -= (size_t)w;
            offset += w;
        }
        if (offset > end)
            end = offset;
    }
    /* A sparse file may end in a hole. */
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
        ftruncate(fd, archive_entry_size(e)) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "truncate");
    return 0;
}

static int make_regular(struct unpack *u, struct archive_entry *e, int parentfd, const char *name,
                        struct rbx_error **err)
{
    int r = remove_existing(parentfd, name, false, err);
    if (r < 0)
        return r;
    _cleanup_close_ int fd =
        openat(parentfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "create");
    if ((r = write_data(u, fd, e, err)) < 0 || (r = apply_owner(u, e, fd, -1, NULL, err)) < 0)
        return r;
    /* After chown, which clears set-id bits; before the capability xattr, which chown clears. */
    if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chmod");
    if ((r = apply_xattrs(u, e, fd, -1, NULL, err)) < 0)
        return r;
    struct timespec ts[2];
    entry_times(e, ts);
    if (futimens(fd, ts) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
    return 0;
}

static int make_dir(struct unpack *u, struct archive_entry *e, int parentfd, const char *name,
                    const char *path, struct rbx_error **err)
{
    int r = remove_existing(parentfd, name, true, err);
    if (r < 0)
        return r;
    /* An existing dir stays (entries merge into it); its metadata is the later entry's. */
    if (r == 0 && mkdirat(parentfd, name, 0700) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir");
    _cleanup_close_ int fd =
        openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open");
    if (strmap_slot(&u->whiteouts, path, false)) {
        /* Whited out and re-made in this layer: the lower layers' contents stay hidden. */
        if ((r = rbx_whiteout_opaque(fd, err)) < 0)
            return r;
        u->counts->opaques++;
    }
    if ((r = apply_owner(u, e, fd, -1, NULL, err)) < 0 ||
        (r = apply_xattrs(u, e, fd, -1, NULL, err)) < 0)
        return r;
    add_fixup(u, path, e);
    return 0;
}

static int make_symlink(struct unpack *u, struct archive_entry *e, int parentfd, const char *name,
                        struct rbx_error **err)
{
    const char *target = archive_entry_symlink(e);
    if (!target || !*target)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "symlink without a target");
    if (strlen(target) > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "symlink target over %d bytes",
                             RBX_PATH_MAX);
    int r = remove_existing(parentfd, name, false, err);
    if (r < 0)
        return r;
    /* Kept literally: it is resolved later inside the container's root, never here. */
    if (symlinkat(target, parentfd, name) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "symlink");
    if ((r = apply_owner(u, e, -1, parentfd, name, err)) < 0 ||
        (r = apply_xattrs(u, e, -1, parentfd, name, err)) < 0)
        return r;
    struct timespec ts[2];
    entry_times(e, ts);
    if (utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
    return 0;
}

static int make_node(struct unpack *u, struct archive_entry *e, int parentfd, const char *name,
                     mode_t type, struct rbx_error **err)
{
    int r = remove_existing(parentfd, name, false, err);
    if (r < 0)
        return r;
    if (mknodat(parentfd, name, type | 0600, type == S_IFIFO ? 0 : archive_entry_rdev(e)) < 0) {
        if (errno == EPERM) {
            u->counts->skipped_devices++;
            return 0;
        }
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mknod");
    }
    if ((r = apply_owner(u, e, -1, parentfd, name, err)) < 0)
        return r;
    /* The node was just made here, in a tree only this extraction writes: not a symlink. */
    if (fchmodat(parentfd, name, archive_entry_perm(e) & 07777, 0) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chmod");
    if ((r = apply_xattrs(u, e, -1, parentfd, name, err)) < 0)
        return r;
    struct timespec ts[2];
    entry_times(e, ts);
    if (utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
    return 0;
}

static int make_hardlink(struct unpack *u, const char *link, const char *path, int parentfd,
                         const char *name, struct rbx_error **err)
{
    _cleanup_free_ char *target = NULL;
    _cleanup_error_ struct rbx_error *perr = NULL;
    if (rbx_path_clean(link, &target, &perr) < 0) {
        if (perr->kind == RBX_ERR_ESCAPE)
            return rbx_error_set(err, RBX_ERR_ESCAPE, EXDEV,
                                 "hardlink target \"%s\" escapes the rootfs", link);
        return rbx_error_move(err, &perr);
    }
    if (strcmp(target, path) == 0)
        return 0;
    char tname[RBX_NAME_MAX + 1];
    _cleanup_close_ int tparent = rbx_open_parent_in_root(u->rootfd, target, false, tname, &perr);
    struct stat st;
    if (tparent < 0 || fstatat(tparent, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, ENOENT,
                             "hardlink target \"%s\" is not an earlier entry of the layer", link);
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "hardlink target \"%s\" is not a regular file", link);
    int r = remove_existing(parentfd, name, false, err);
    if (r < 0)
        return r;
    if (S_ISLNK(st.st_mode)) {
        /* A hard link to a symlink: the same link text, made anew, never followed. */
        char buf[RBX_PATH_MAX + 1];
        ssize_t n = readlinkat(tparent, tname, buf, sizeof(buf) - 1);
        if (n < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "readlink");
        buf[n] = '\0';
        if (symlinkat(buf, parentfd, name) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "symlink");
        return 0;
    }
    /* flags 0: linkat does not follow a symlink in the last component. */
    if (linkat(tparent, tname, parentfd, name, 0) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "link to \"%s\"", link);
    return 0;
}

static int do_whiteout(struct unpack *u, const char *path, int parentfd, const char *name,
                       struct rbx_error **err)
{
    if (strcmp(name, RBX_WHITEOUT_OPAQUE) == 0) {
        _cleanup_close_ int dfd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open");
        int r = rbx_whiteout_opaque(dfd, err);
        if (r < 0)
            return r;
        u->counts->opaques++;
        return 0;
    }
    if (strncmp(name, ".wh..wh.", 8) == 0) {
        u->counts->skipped_other++; /* aufs bookkeeping (.wh..wh.plnk...): no meaning here */
        return 0;
    }
    const char *target = name + strlen(RBX_WHITEOUT_PREFIX);
    if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "whiteout of nothing");
    size_t plen = strlen(path) - strlen(name);
    _cleanup_free_ char *tpath = rbx_xasprintf("%.*s%s", (int)plen, path, target);
    *strmap_slot(&u->whiteouts, tpath, true) = 1;
    u->counts->whiteouts++;

    struct stat st;
    if (fstatat(parentfd, target, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* This layer made the name too; the whiteout is for the layers below. A directory must
         * then hide their contents; anything else hides them already. */
        if (!S_ISDIR(st.st_mode))
            return 0;
        _cleanup_close_ int dfd =
            openat(parentfd, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open");
        u->counts->opaques++;
        return rbx_whiteout_opaque(dfd, err);
    }
    if (errno != ENOENT)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "stat");
    return rbx_whiteout_make(parentfd, target, err);
}

/* A parent missing as a directory because this layer put a non-directory there (a whiteout
 * device, a file): later entries win, so it becomes a directory (opaque when whited out). */
static int replace_parents(struct unpack *u, const char *path, struct rbx_error **err)
{
    _cleanup_free_ char *prefix = rbx_xstrdup(path);
    for (char *p = strchr(prefix, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        _cleanup_close_ int fd =
            rbx_open_in_root(u->rootfd, prefix, O_PATH, 0, RBX_RESOLVE_NOFOLLOW, NULL);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            return 0;
        if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
            char name[RBX_NAME_MAX + 1];
            _cleanup_close_ int pfd = rbx_open_parent_in_root(u->rootfd, prefix, false, name, err);
            if (pfd < 0)
                return pfd;
            if (unlinkat(pfd, name, 0) < 0 || mkdirat(pfd, name, 0755) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "replace \"%s\"", prefix);
            if (strmap_slot(&u->whiteouts, prefix, false)) {
                _cleanup_close_ int dfd =
                    openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0)
                    return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open \"%s\"", prefix);
                int r = rbx_whiteout_opaque(dfd, err);
                if (r < 0)
                    return r;
            }
        }
        *p = '/';
    }
    return 0;
}

static int apply_entry(struct unpack *u, struct archive_entry *e, struct rbx_error **err)
{
    const char *raw = archive_entry_pathname(e);
    if (!raw)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "an entry without a name");
    _cleanup_free_ char *path = NULL;
    _cleanup_error_ struct rbx_error *perr = NULL;
    if (rbx_path_clean(raw, &path, &perr) < 0) {
        if (perr->kind == RBX_ERR_ESCAPE)
            return rbx_error_set(err, RBX_ERR_ESCAPE, EXDEV, "entry \"%s\" escapes the rootfs",
                                 raw);
        rbx_error_move(err, &perr);
        return rbx_error_wrap(err, "entry \"%.200s\"", raw);
    }
    mode_t type = archive_entry_filetype(e);
    const char *link = archive_entry_hardlink(e);
    int r;

    if (!*path) {
        /* "./": the layer root's own metadata. */
        if (link || type != AE_IFDIR)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "entry \"%s\" names the root",
                                 raw);
        if ((r = apply_owner(u, e, u->rootfd, -1, NULL, err)) < 0 ||
            (r = apply_xattrs(u, e, u->rootfd, -1, NULL, err)) < 0)
            return rbx_error_wrap(err, "entry \"%s\"", raw);
        add_fixup(u, "", e);
        return 0;
    }

    char name[RBX_NAME_MAX + 1];
    _cleanup_close_ int parentfd = rbx_open_parent_in_root(u->rootfd, path, true, name, &perr);
    if (parentfd < 0 && perr && perr->errnum == ENOTDIR) {
        perr = rbx_error_free(perr);
        if ((r = replace_parents(u, path, err)) < 0)
            return rbx_error_wrap(err, "entry \"%s\"", raw);
        parentfd = rbx_open_parent_in_root(u->rootfd, path, true, name, &perr);
    }
    if (parentfd < 0) {
        rbx_error_move(err, &perr);
        return rbx_error_wrap(err, "entry \"%s\"", raw);
    }

    if (strncmp(name, RBX_WHITEOUT_PREFIX, strlen(RBX_WHITEOUT_PREFIX)) == 0)
        r = do_whiteout(u, path, parentfd, name, err);
    else if (link)
        r = make_hardlink(u, link, path, parentfd, name, err);
    else if (type == AE_IFREG)
        r = make_regular(u, e, parentfd, name, err);
    else if (type == AE_IFDIR)
        r = make_dir(u, e, parentfd, name, path, err);
    else if (type == AE_IFLNK)
        r = make_symlink(u, e, parentfd, name, err);
    else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO)
        r = make_node(u, e, parentfd, name, type, err);
    else {
        u->counts->skipped_other++; /* sockets and unknown types have no place in a layer */
        r = 0;
    }
    if (r < 0 && r != -EBADMSG)
        return rbx_error_wrap(err, "entry \"%s\"", raw);
    return r;
}

static int cmp_fixup_desc(const void *a, const void *b, void *paths)
{
    char **p = paths;
    return strcmp(p[*(const size_t *)b], p[*(const size_t *)a]);
}

/* Deepest first, so no directory is closed to writes (or has its mtime bumped) before its
 * children are done. A path that is no longer a directory (replaced later) is left alone. */
static int apply_fixups(struct unpack *u, struct rbx_error **err)
{
    _cleanup_free_ size_t *order = rbx_xcalloc(u->n_fixups + 1, sizeof(size_t));
    for (size_t i = 0; i < u->n_fixups; i++)
        order[i] = i;
    qsort_r(order, u->n_fixups, sizeof(size_t), cmp_fixup_desc, u->fixup_paths);
    for (size_t k = 0; k < u->n_fixups; k++) {
        const char *path = u->fixup_paths[order[k]];
        const struct dir_fixup *f = &u->fixups[order[k]];
        _cleanup_close_ int fd = -1;
        if (!*path) {
            fd = fcntl(u->rootfd, F_DUPFD_CLOEXEC, 3);
        } else {
            fd = rbx_open_in_root(u->rootfd, path, O_RDONLY | O_DIRECTORY, 0, RBX_RESOLVE_NOFOLLOW,
                                  NULL);
            if (fd < 0)
                continue;
        }
        if (fd < 0 || fchmod(fd, f->mode) < 0 || futimens(fd, f->times) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "directory \"%s\"", path);
    }
    return 0;
}

int rbx_layer_apply(struct rbx_stream *s, int rootfd, const char *layer, atomic_bool *cancel,
                    struct rbx_unpack_counts *counts, struct rbx_error **err)
{
    _cleanup_error_ struct rbx_error *stream_err = NULL;
    struct unpack u = {.rootfd = rootfd, .counts = counts};
    u.a = rbx_tar_reader_new(s, &stream_err);
    int r = 0;
    for (;;) {
        if (cancel && atomic_load(cancel)) {
            r = rbx_error_set(err, RBX_ERR_INTERNAL, ECANCELED, "cancelled");
            break;
        }
        struct archive_entry *e;
        int ar = archive_read_next_header(u.a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN) {
            r = rbx_tar_reader_error(u.a, s, &stream_err, err);
            break;
        }
        if (++counts->entries > RBX_LAYER_ENTRIES_MAX) {
            r = rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "more than %u entries",
                              RBX_LAYER_ENTRIES_MAX);
            break;
        }
        r = apply_entry(&u, e, err);
        if (r == -EBADMSG && !(err && *err)) {
            /* The entry's data could not be read: the stream or the tar is at fault. */
            r = rbx_tar_reader_error(u.a, s, &stream_err, err);
            rbx_error_wrap(err, "entry \"%s\"", archive_entry_pathname(e));
        }
        if (r < 0)
            break;
    }
    if (r == 0)
        r = apply_fixups(&u, err);
    /* What follows the end-of-archive blocks is part of the diff_id: hash it too. */
    if (r == 0)
        r = rbx_stream_drain(s, err);
    archive_read_free(u.a);
    unpack_clear(&u);
    /* Bad data in a blob that is not the promised one: say that, it is the cause. */
    if (r < 0 && err && *err &&
        ((*err)->kind == RBX_ERR_MALFORMED || (*err)->kind == RBX_ERR_ESCAPE ||
         (*err)->kind == RBX_ERR_UNSUPPORTED))
        rbx_stream_blame_blob(s, err);
    if (r < 0 && err && *err)
        return rbx_error_wrap(err, "layer %s", layer);
    return r;
}
