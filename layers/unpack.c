/* unpack.c — reprobox's own tar applier: each entry's path cleaned, its parent resolved inside
 * the root, the entry made with *at() calls on that parent fd; owners, modes, xattrs and times
 * applied in an order that keeps them (chown before chmod before capabilities); directory modes
 * and times deferred until their contents are written. Two forms: a layer's own tree with
 * whiteouts in overlayfs form (the cache), or layers applied one over the other with whiteouts
 * carried out (a flat rootfs). libarchive only parses. */
#include "layers/layers-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define PARENT_CACHE 8   /* parent dirs kept open: tars list a directory's entries together */
#define SKIPPED_NAMES 16 /* skipped entries named in counts, the rest only counted */

/* What `seen` holds for a path of the current layer (flat form). */
enum { SEEN_MADE = 1, SEEN_PARENT = 2 };

struct dir_fixup {
    mode_t mode;
    struct timespec times[2];
    dev_t dev; /* the directory the entry made: a later one at that path is another */
    ino_t ino;
};

/* An open parent directory, resolved without meeting any symlink: only an entry at its own
 * path or above can change what the path names, so such entries drop it. */
struct parent_slot {
    char *path;
    int fd;
};

struct rbx_applier {
    int rootfd;
    bool flat;
    struct rbx_unpack_counts *counts;
    bool trusted_refused; /* trusted.* xattrs were refused once: do not try again */

    struct strmap_fixups {
        struct rbx_strmap idx; /* path -> index */
        struct dir_fixup *v;
        char **paths;
        size_t n, cap;
    } fixups;

    /* the current layer */
    struct archive *a;
    struct rbx_strmap whiteouts; /* overlay: paths whited out here; a dir made there is opaque */
    struct rbx_strmap seen;      /* flat: paths this layer made, and their parents */
    char **lower_links;          /* overlay: link, target pairs whose target is below */
    struct parent_slot cache[PARENT_CACHE];
    unsigned cache_next;
};

/* ---- bookkeeping ------------------------------------------------------------------------- */

static void cache_drop(struct rbx_applier *ap, size_t i)
{
    if (ap->cache[i].path) {
        free(ap->cache[i].path);
        close(ap->cache[i].fd);
        ap->cache[i].path = NULL;
        ap->cache[i].fd = -1;
    }
}

static void cache_clear(struct rbx_applier *ap)
{
    for (size_t i = 0; i < PARENT_CACHE; i++)
        cache_drop(ap, i);
}

/* An entry was made, removed or replaced at `path`: forget the parents at or below it. */
static void cache_invalidate(struct rbx_applier *ap, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < PARENT_CACHE; i++) {
        const char *p = ap->cache[i].path;
        if (p && strncmp(p, path, len) == 0 && (p[len] == '\0' || p[len] == '/'))
            cache_drop(ap, i);
    }
}

static void cache_put(struct rbx_applier *ap, const char *path, int fd)
{
    size_t i = ap->cache_next++ % PARENT_CACHE;
    cache_drop(ap, i);
    ap->cache[i].path = rbx_xstrdup(path);
    ap->cache[i].fd = fd;
}

static void layer_reset(struct rbx_applier *ap)
{
    rbx_strmap_clear(&ap->whiteouts);
    rbx_strmap_clear(&ap->seen);
    ap->lower_links = rbx_strv_free(ap->lower_links);
    cache_clear(ap);
}

struct rbx_applier *rbx_applier_new(int rootfd, bool flat, struct rbx_unpack_counts *counts)
{
    struct rbx_applier *ap = rbx_xcalloc(1, sizeof(*ap));
    ap->rootfd = rootfd;
    ap->flat = flat;
    ap->counts = counts;
    for (size_t i = 0; i < PARENT_CACHE; i++)
        ap->cache[i].fd = -1;
    return ap;
}

struct rbx_applier *rbx_applier_free(struct rbx_applier *ap)
{
    if (!ap)
        return NULL;
    layer_reset(ap);
    rbx_strmap_clear(&ap->fixups.idx);
    for (size_t i = 0; i < ap->fixups.n; i++)
        free(ap->fixups.paths[i]);
    free(ap->fixups.paths);
    free(ap->fixups.v);
    free(ap);
    return NULL;
}

char **rbx_applier_lower_links(const struct rbx_applier *ap)
{
    return ap->lower_links;
}

void rbx_unpack_counts_clear(struct rbx_unpack_counts *c)
{
    rbx_strv_free(c->skipped_names);
    memset(c, 0, sizeof(*c));
}

static void note_skipped(struct rbx_applier *ap, const char *path)
{
    if (rbx_strv_len(ap->counts->skipped_names) < SKIPPED_NAMES)
        rbx_strv_push(&ap->counts->skipped_names, path);
}

/* Flat form: `path` was made by this layer (when `self`), and every directory above it holds
 * something of it: an opaque marker or a whiteout later in the layer keeps them. */
static void mark_seen(struct rbx_applier *ap, const char *path, bool self)
{
    if (!ap->flat)
        return;
    if (self)
        *rbx_strmap_slot(&ap->seen, path, true) = SEEN_MADE;
    _cleanup_free_ char *p = rbx_xstrdup(path);
    for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
        *slash = '\0';
        size_t *v = rbx_strmap_slot(&ap->seen, p, true);
        if (*v)
            break; /* its parents were marked with it */
        *v = SEEN_PARENT;
    }
}

/* An entry's name as errors show it: whole up to 120 bytes, else its two ends. */
static const char *shown(const char *raw, char buf[160])
{
    size_t n = raw ? strlen(raw) : 0;
    if (n <= 120)
        return raw ? raw : "";
    snprintf(buf, 160, "%.60s...%s", raw, raw + n - 50);
    return buf;
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

/* ---- metadata ---------------------------------------------------------------------------- */

static int apply_owner(struct rbx_applier *ap, struct archive_entry *e, int fd, int parentfd,
                       const char *name, struct rbx_error **err)
{
    int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || gid < 0 || uid >= (int64_t)UINT32_MAX || gid >= (int64_t)UINT32_MAX) {
        ap->counts->skipped_owners++;
        return 0;
    }
    int r = fd >= 0 ? fchown(fd, (uid_t)uid, (gid_t)gid)
                    : fchownat(parentfd, name, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0) {
        /* EINVAL: the id is not mapped in this user namespace; EPERM: not ours to give. */
        if (errno == EINVAL || errno == EPERM) {
            ap->counts->skipped_owners++;
            return 0;
        }
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chown %lld:%lld", (long long)uid,
                                   (long long)gid);
    }
    return 0;
}

static int apply_xattrs(struct rbx_applier *ap, struct archive_entry *e, int fd, int parentfd,
                        const char *name, struct rbx_error **err)
{
    const char *key;
    const void *value;
    size_t size;
    if (archive_entry_xattr_reset(e) == 0)
        return 0;
    while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
        bool trusted = strncmp(key, "trusted.", 8) == 0;
        if (rbx_xattr_forbidden(key) || (trusted && ap->trusted_refused) ||
            !(strncmp(key, "user.", 5) == 0 || strcmp(key, "security.capability") == 0 ||
              trusted)) {
            ap->counts->skipped_xattrs++;
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
                    ap->trusted_refused = true;
                ap->counts->skipped_xattrs++;
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

static void add_fixup(struct rbx_applier *ap, const char *path, struct archive_entry *e,
                      const struct stat *st)
{
    struct strmap_fixups *f = &ap->fixups;
    size_t *slot = rbx_strmap_slot(&f->idx, path, true);
    size_t i;
    if (*slot) {
        i = *slot - 1; /* a duplicate entry, or a later layer: the later one's metadata wins */
    } else {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 64;
            f->v = rbx_xrealloc(f->v, f->cap * sizeof(*f->v));
            f->paths = rbx_xrealloc(f->paths, f->cap * sizeof(char *));
        }
        i = f->n++;
        f->paths[i] = rbx_xstrdup(path);
        *slot = i + 1;
    }
    f->v[i].mode = archive_entry_perm(e) & 07777;
    entry_times(e, f->v[i].times);
    f->v[i].dev = st->st_dev;
    f->v[i].ino = st->st_ino;
}

/* ---- entries ------------------------------------------------------------------------------ */

static int write_data(struct rbx_applier *ap, int fd, struct archive_entry *e,
                      struct rbx_error **err)
{
    const void *buf;
    size_t size;
    la_int64_t offset;
    int64_t end = 0;
    for (;;) {
        int r = archive_read_data_block(ap->a, &buf, &size, &offset);
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
    /* A sparse file: the holes were skipped by offset; it may also end in one. */
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
        ftruncate(fd, archive_entry_size(e)) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "truncate");
    return 0;
}

static int make_regular(struct rbx_applier *ap, struct archive_entry *e, int parentfd,
                        const char *name, struct rbx_error **err)
{
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    _cleanup_close_ int fd = openat(parentfd, name, flags, 0600);
    int r;
    if (fd < 0 && errno == EEXIST) {
        /* A duplicate entry or a lower layer's file (flat): the later one wins. */
        if ((r = remove_existing(parentfd, name, false, err)) < 0)
            return r;
        fd = openat(parentfd, name, flags, 0600);
    }
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "create");
    if ((r = write_data(ap, fd, e, err)) < 0 || (r = apply_owner(ap, e, fd, -1, NULL, err)) < 0)
        return r;
    /* After chown, which clears set-id bits; before the capability xattr, which chown clears. */
    if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chmod");
    if ((r = apply_xattrs(ap, e, fd, -1, NULL, err)) < 0)
        return r;
    struct timespec ts[2];
    entry_times(e, ts);
    if (futimens(fd, ts) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
    return 0;
}

static int make_dir(struct rbx_applier *ap, struct archive_entry *e, int parentfd, const char *name,
                    const char *path, bool parent_clean, struct rbx_error **err)
{
    int r = 0;
    if (mkdirat(parentfd, name, 0700) < 0) {
        if (errno != EEXIST)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir");
        /* An existing dir stays (entries merge into it); its metadata is the later entry's. */
        if ((r = remove_existing(parentfd, name, true, err)) < 0)
            return r;
        if (r == 0 && mkdirat(parentfd, name, 0700) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir");
    }
    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open");
    struct stat st;
    if (fstat(fd, &st) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "stat");
        close(fd);
        return r;
    }
    if (!ap->flat && rbx_strmap_get(&ap->whiteouts, path)) {
        /* Whited out and re-made in this layer: the lower layers' contents stay hidden. */
        if ((r = rbx_whiteout_opaque(fd, err)) < 0) {
            close(fd);
            return r;
        }
        ap->counts->opaques++;
    }
    if ((r = apply_owner(ap, e, fd, -1, NULL, err)) < 0 ||
        (r = apply_xattrs(ap, e, fd, -1, NULL, err)) < 0) {
        close(fd);
        return r;
    }
    add_fixup(ap, path, e, &st);
    /* Entries inside it usually follow: keep it as their parent when no symlink led here. */
    if (parent_clean)
        cache_put(ap, path, fd);
    else
        close(fd);
    return 0;
}

static int make_symlink(struct rbx_applier *ap, struct archive_entry *e, int parentfd,
                        const char *name, struct rbx_error **err)
{
    const char *target = archive_entry_symlink(e);
    if (!target || !*target)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "symlink without a target");
    if (strlen(target) > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "symlink target over %d bytes",
                             RBX_PATH_MAX);
    int r;
    /* Kept literally: it is resolved later inside the container's root, never here. */
    if (symlinkat(target, parentfd, name) < 0) {
        if (errno != EEXIST)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "symlink");
        if ((r = remove_existing(parentfd, name, false, err)) < 0)
            return r;
        if (symlinkat(target, parentfd, name) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "symlink");
    }
    if ((r = apply_owner(ap, e, -1, parentfd, name, err)) < 0 ||
        (r = apply_xattrs(ap, e, -1, parentfd, name, err)) < 0)
        return r;
    struct timespec ts[2];
    entry_times(e, ts);
    if (utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
    return 0;
}

static int make_node(struct rbx_applier *ap, struct archive_entry *e, int parentfd,
                     const char *name, const char *path, mode_t type, struct rbx_error **err)
{
    int r = remove_existing(parentfd, name, false, err);
    if (r < 0)
        return r;
    if (mknodat(parentfd, name, type | 0600, type == S_IFIFO ? 0 : archive_entry_rdev(e)) < 0) {
        if (errno == EPERM) {
            ap->counts->skipped_devices++;
            note_skipped(ap, path);
            return 0;
        }
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mknod");
    }
    if ((r = apply_owner(ap, e, -1, parentfd, name, err)) < 0)
        return r;
    /* The node was just made here, in a tree only this extraction writes: not a symlink. */
    if (fchmodat(parentfd, name, archive_entry_perm(e) & 07777, 0) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chmod");
    if ((r = apply_xattrs(ap, e, -1, parentfd, name, err)) < 0)
        return r;
    struct timespec ts[2];
    entry_times(e, ts);
    if (utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
    return 0;
}

static int make_hardlink(struct rbx_applier *ap, const char *link, const char *path, int parentfd,
                         const char *name, struct rbx_error **err)
{
    _cleanup_free_ char *target = NULL;
    _cleanup_error_ struct rbx_error *perr = NULL;
    char lbuf[160];
    const char *link_raw = link;
    link = shown(link_raw, lbuf);
    if (rbx_path_clean(link_raw, &target, &perr) < 0) {
        if (perr->kind == RBX_ERR_ESCAPE)
            return rbx_error_set(err, RBX_ERR_ESCAPE, EXDEV,
                                 "hardlink target \"%s\" escapes the rootfs", link);
        return rbx_error_move(err, &perr);
    }
    if (!*target)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "hardlink target \"%s\" is the root directory", link);
    if (strcmp(target, path) == 0)
        return 0;
    char tname[RBX_NAME_MAX + 1];
    /* The target is named inside the root like any entry: a symlink on the way stays inside. */
    _cleanup_close_ int tparent = rbx_open_parent_in_root(ap->rootfd, target, false, tname, &perr);
    struct stat st;
    bool found = tparent >= 0 && fstatat(tparent, tname, &st, AT_SYMLINK_NOFOLLOW) == 0;
    /* A whiteout device in a layer's own tree means "not here": the target is below. */
    if (found && !ap->flat && S_ISCHR(st.st_mode) && st.st_rdev == 0)
        found = false;
    int r;
    if (!found) {
        if (ap->flat)
            return rbx_error_set(err, RBX_ERR_MALFORMED, ENOENT,
                                 "hardlink target \"%s\" is not an earlier entry", link);
        /* A lower layer's file: nothing to link to in this layer's own tree. The link is made
         * above the layer once the layers below are there (layers_links.c), as containerd's
         * overlay snapshotter's copy-up does; here the name is only cleared. */
        if ((r = remove_existing(parentfd, name, false, err)) < 0)
            return r;
        rbx_strv_push(&ap->lower_links, path);
        rbx_strv_push(&ap->lower_links, target);
        return 0;
    }
    if (S_ISDIR(st.st_mode))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EISDIR,
                             "hardlink target \"%s\" is a directory", link);
    if ((r = remove_existing(parentfd, name, false, err)) < 0)
        return r;
    /* flags 0: a symlink target is linked itself, never followed (as link(2) does). */
    if (linkat(tparent, tname, parentfd, name, 0) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "link to \"%s\"", link);
    return 0;
}

/* Flat form: remove what lower layers put below the directory `dir` (at `path`), keeping what
 * this layer made there. */
static int opaque_clean(struct rbx_applier *ap, int dir, const char *path, struct rbx_error **err)
{
    int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open \"%s\"", path);
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open \"%s\"", path);
    }
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *child =
            *path ? rbx_xasprintf("%s/%s", path, de->d_name) : rbx_xstrdup(de->d_name);
        int r;
        if (!rbx_strmap_get(&ap->seen, child)) {
            if ((r = rbx_rm_rf_at(dirfd(d), de->d_name, err)) < 0)
                return r;
            continue;
        }
        _cleanup_close_ int cfd =
            openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0)
            continue; /* this layer's file, symlink or node: kept */
        if ((r = opaque_clean(ap, cfd, child, err)) < 0)
            return r;
    }
    return 0;
}

static int do_whiteout(struct rbx_applier *ap, const char *path, int parentfd, const char *name,
                       struct rbx_error **err)
{
    size_t plen = strlen(path) - strlen(name);
    _cleanup_free_ char *dir = rbx_xstrndup(path, plen ? plen - 1 : 0);
    if (strcmp(name, RBX_WHITEOUT_OPAQUE) == 0) {
        _cleanup_close_ int dfd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open");
        ap->counts->opaques++;
        if (ap->flat)
            return opaque_clean(ap, dfd, dir, err);
        return rbx_whiteout_opaque(dfd, err);
    }
    if (strncmp(name, ".wh..wh.", 8) == 0) {
        ap->counts->skipped_other++; /* aufs bookkeeping (.wh..wh.plnk...): no meaning here */
        return 0;
    }
    const char *target = name + strlen(RBX_WHITEOUT_PREFIX);
    if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "whiteout of nothing");
    _cleanup_free_ char *tpath = *dir ? rbx_xasprintf("%s/%s", dir, target) : rbx_xstrdup(target);
    ap->counts->whiteouts++;

    if (ap->flat) {
        if (!rbx_strmap_get(&ap->seen, tpath))
            return rbx_rm_rf_at(parentfd, target, err);
        /* This layer made it: the whiteout is for the layers below. A directory then keeps
         * only what this layer put in it. */
        _cleanup_close_ int dfd =
            openat(parentfd, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return dfd < 0 ? 0 : opaque_clean(ap, dfd, tpath, err);
    }

    *rbx_strmap_slot(&ap->whiteouts, tpath, true) = 1;
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
        ap->counts->opaques++;
        return rbx_whiteout_opaque(dfd, err);
    }
    if (errno != ENOENT)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "stat");
    return rbx_whiteout_make(parentfd, target, err);
}

/* A parent missing as a directory because a non-directory is there (a whiteout device, a file
 * of this layer or, flat, of a lower one): later entries win, so it becomes a directory (opaque
 * when whited out). */
static int replace_parents(struct rbx_applier *ap, const char *path, struct rbx_error **err)
{
    _cleanup_free_ char *prefix = rbx_xstrdup(path);
    for (char *p = strchr(prefix, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        _cleanup_close_ int fd =
            rbx_open_in_root(ap->rootfd, prefix, O_PATH, 0, RBX_RESOLVE_NOFOLLOW, NULL);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            return 0;
        if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
            char name[RBX_NAME_MAX + 1];
            _cleanup_close_ int pfd = rbx_open_parent_in_root(ap->rootfd, prefix, false, name, err);
            if (pfd < 0)
                return pfd;
            if (unlinkat(pfd, name, 0) < 0 || mkdirat(pfd, name, 0755) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "replace \"%s\"", prefix);
            cache_invalidate(ap, prefix);
            if (!ap->flat && rbx_strmap_get(&ap->whiteouts, prefix)) {
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

/* The parent directory of `path` (cleaned, not the root), made when missing, resolved inside
 * the root. Returns a borrowed fd (the root or a cached parent) or an owned one in *owned. */
static int parent_of(struct rbx_applier *ap, const char *path, char name[RBX_NAME_MAX + 1],
                     int *owned, bool *clean, struct rbx_error **err)
{
    const char *slash = strrchr(path, '/');
    *clean = true;
    if (!slash) {
        strcpy(name, path); /* rbx_path_clean bounded it */
        return ap->rootfd;
    }
    strcpy(name, slash + 1);
    _cleanup_free_ char *dir = rbx_xstrndup(path, (size_t)(slash - path));
    for (size_t i = 0; i < PARENT_CACHE; i++)
        if (ap->cache[i].path && strcmp(ap->cache[i].path, dir) == 0)
            return ap->cache[i].fd;
    /* Already there and reached without a symlink: cacheable. */
    int fd = rbx_open_in_root(ap->rootfd, dir, O_PATH | O_DIRECTORY, 0,
                              RBX_RESOLVE_NOFOLLOW | RBX_RESOLVE_NO_SYMLINKS, NULL);
    if (fd >= 0) {
        cache_put(ap, dir, fd);
        return fd;
    }
    /* Missing, or through a symlink (kept inside the root): the general walk, which makes
     * what is missing. */
    *clean = false;
    _cleanup_error_ struct rbx_error *perr = NULL;
    fd = rbx_open_parent_in_root(ap->rootfd, path, true, name, &perr);
    if (fd < 0 && perr && perr->errnum == ENOTDIR) {
        perr = rbx_error_free(perr);
        int r = replace_parents(ap, path, err);
        if (r < 0)
            return r;
        fd = rbx_open_parent_in_root(ap->rootfd, path, true, name, &perr);
    }
    if (fd < 0)
        return rbx_error_move(err, &perr);
    *owned = fd;
    return fd;
}

static int apply_entry(struct rbx_applier *ap, struct archive_entry *e, struct rbx_error **err)
{
    const char *raw = archive_entry_pathname(e);
    if (!raw)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "an entry without a name");
    char sbuf[160];
    const char *name_shown = shown(raw, sbuf);
    _cleanup_free_ char *path = NULL;
    _cleanup_error_ struct rbx_error *perr = NULL;
    if (rbx_path_clean(raw, &path, &perr) < 0) {
        if (perr->kind == RBX_ERR_ESCAPE)
            return rbx_error_set(err, RBX_ERR_ESCAPE, EXDEV, "entry \"%s\" escapes the rootfs",
                                 name_shown);
        rbx_error_move(err, &perr);
        return rbx_error_wrap(err, "entry \"%s\"", name_shown);
    }
    mode_t type = archive_entry_filetype(e);
    const char *link = archive_entry_hardlink(e);
    int r;

    if (!*path) {
        /* "./": the root's own metadata. */
        if (link || type != AE_IFDIR)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "entry \"%s\" names the root",
                                 name_shown);
        struct stat st;
        if (fstat(ap->rootfd, &st) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "stat the root");
        if ((r = apply_owner(ap, e, ap->rootfd, -1, NULL, err)) < 0 ||
            (r = apply_xattrs(ap, e, ap->rootfd, -1, NULL, err)) < 0)
            return rbx_error_wrap(err, "entry \"%s\"", name_shown);
        add_fixup(ap, "", e, &st);
        return 0;
    }

    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    bool whiteout = strncmp(base, RBX_WHITEOUT_PREFIX, strlen(RBX_WHITEOUT_PREFIX)) == 0;
    char name[RBX_NAME_MAX + 1];
    _cleanup_close_ int owned = -1;
    bool clean = false;
    int parentfd;
    if (whiteout && ap->flat) {
        /* Nothing to remove below a parent that is not there: do not make one. */
        parentfd = owned = rbx_open_parent_in_root(ap->rootfd, path, false, name, &perr);
        if (parentfd == -ENOENT || parentfd == -ENOTDIR) {
            ap->counts->whiteouts++;
            mark_seen(ap, path, false);
            return 0;
        }
        if (parentfd < 0)
            rbx_error_move(err, &perr);
    } else {
        parentfd = parent_of(ap, path, name, &owned, &clean, err);
    }
    if (parentfd < 0)
        return rbx_error_wrap(err, "entry \"%s\"", name_shown);

    if (whiteout) {
        r = do_whiteout(ap, path, parentfd, name, err);
        /* It removed entries below its parent, which may be cached. */
        cache_clear(ap);
        mark_seen(ap, path, false);
    } else {
        /* What this entry replaces may be a cached parent, or above one. */
        cache_invalidate(ap, path);
        if (link)
            r = make_hardlink(ap, link, path, parentfd, name, err);
        else if (type == AE_IFREG)
            r = make_regular(ap, e, parentfd, name, err);
        else if (type == AE_IFDIR)
            r = make_dir(ap, e, parentfd, name, path, clean, err);
        else if (type == AE_IFLNK)
            r = make_symlink(ap, e, parentfd, name, err);
        else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO)
            r = make_node(ap, e, parentfd, name, path, type, err);
        else {
            ap->counts->skipped_other++; /* sockets and unknown types have no place here */
            r = 0;
        }
        if (r == 0)
            mark_seen(ap, path, true);
    }
    if (r < 0 && r != -EBADMSG)
        return rbx_error_wrap(err, "entry \"%s\"", name_shown);
    return r;
}

static int cmp_fixup_desc(const void *a, const void *b, void *paths)
{
    char **p = paths;
    return strcmp(p[*(const size_t *)b], p[*(const size_t *)a]);
}

/* Deepest first, so no directory is closed to writes (or has its mtime bumped) before its
 * children are done. A path that no longer names the directory the entry made (replaced, or
 * now reached through a symlink) is left alone. */
int rbx_applier_finish(struct rbx_applier *ap, struct rbx_error **err)
{
    struct strmap_fixups *f = &ap->fixups;
    cache_clear(ap);
    _cleanup_free_ size_t *order = rbx_xcalloc(f->n + 1, sizeof(size_t));
    for (size_t i = 0; i < f->n; i++)
        order[i] = i;
    qsort_r(order, f->n, sizeof(size_t), cmp_fixup_desc, f->paths);
    for (size_t k = 0; k < f->n; k++) {
        const char *path = f->paths[order[k]];
        const struct dir_fixup *x = &f->v[order[k]];
        _cleanup_close_ int fd = -1;
        if (!*path)
            fd = fcntl(ap->rootfd, F_DUPFD_CLOEXEC, 3);
        else
            fd = rbx_open_in_root(ap->rootfd, path, O_RDONLY | O_DIRECTORY, 0,
                                  RBX_RESOLVE_NOFOLLOW | RBX_RESOLVE_NO_SYMLINKS, NULL);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_dev != x->dev || st.st_ino != x->ino)
            continue;
        if (fchmod(fd, x->mode) < 0 || futimens(fd, x->times) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "directory \"%s\"", path);
    }
    rbx_strmap_clear(&f->idx);
    for (size_t i = 0; i < f->n; i++)
        free(f->paths[i]);
    free(f->paths);
    free(f->v);
    memset(f, 0, sizeof(*f));
    return 0;
}

int rbx_applier_layer(struct rbx_applier *ap, struct rbx_stream *s, const char *layer,
                      atomic_bool *cancel, struct rbx_error **err)
{
    _cleanup_error_ struct rbx_error *stream_err = NULL;
    layer_reset(ap);
    ap->a = rbx_tar_reader_new(s, &stream_err);
    uint64_t entries = 0;
    int r = 0;
    for (;;) {
        if (cancel && atomic_load(cancel)) {
            r = rbx_error_set(err, RBX_ERR_INTERNAL, ECANCELED, "cancelled");
            break;
        }
        struct archive_entry *e;
        int ar = archive_read_next_header(ap->a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN) {
            r = rbx_tar_reader_error(ap->a, s, &stream_err, err);
            break;
        }
        ap->counts->entries++;
        if (++entries > RBX_LAYER_ENTRIES_MAX) {
            r = rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "more than %u entries",
                              RBX_LAYER_ENTRIES_MAX);
            break;
        }
        r = apply_entry(ap, e, err);
        if (r == -EBADMSG && !(err && *err)) {
            /* The entry's data could not be read: the stream or the tar is at fault. */
            r = rbx_tar_reader_error(ap->a, s, &stream_err, err);
            char sb[160];
            rbx_error_wrap(err, "entry \"%s\"", shown(archive_entry_pathname(e), sb));
        }
        if (r < 0)
            break;
    }
    /* What follows the end-of-archive blocks is part of the diff_id: hash it too. */
    if (r == 0)
        r = rbx_stream_drain(s, err);
    archive_read_free(ap->a);
    ap->a = NULL;
    cache_clear(ap);
    /* Bad data in a blob that is not the promised one: say that, it is the cause. */
    if (r < 0 && err && *err &&
        ((*err)->kind == RBX_ERR_MALFORMED || (*err)->kind == RBX_ERR_ESCAPE ||
         (*err)->kind == RBX_ERR_UNSUPPORTED))
        rbx_stream_blame_blob(s, err);
    if (r < 0 && err && *err)
        return rbx_error_wrap(err, "layer %s", layer);
    return r;
}
