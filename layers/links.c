/* links.c — hardlinks from one layer to files of the layers below, in overlay form. A layer's
 * own tree can not hold a link to a file in another dir, so the link (and its target, copied up
 * as containerd's overlay snapshotter copies it up when it links on the mounted overlay) goes in
 * a small dir stacked right above the layer, keyed by the chain id of the layers it was made from.
 */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

void rbx_chain_id(const struct rbx_image *img, size_t i, char out[RBX_DIGEST_LEN + 1])
{
    snprintf(out, RBX_DIGEST_LEN + 1, "%s", img->layers[0].diff_id);
    for (size_t k = 1; k <= i; k++) {
        _cleanup_free_ char *text = rbx_xasprintf("%s %s", out, img->layers[k].diff_id);
        rbx_sha256_buf(text, strlen(text), out);
    }
}

int rbx_links_dir(struct rbx_store *s, const struct rbx_image *img, size_t i, char **name,
                  struct rbx_error **err)
{
    *name = NULL;
    char rel[RBX_DIGEST_HEX_LEN + sizeof(RBX_LOWER_LINKS_FILE) + 2];
    snprintf(rel, sizeof(rel), "%s/%s", rbx_digest_hex(img->layers[i].diff_id),
             RBX_LOWER_LINKS_FILE);
    if (faccessat(s->layers_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", rel);
    char chain[RBX_DIGEST_LEN + 1];
    rbx_chain_id(img, i, chain);
    *name = rbx_xasprintf("links-%s", rbx_digest_hex(chain));
    return 0;
}

static bool is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int dirfd)
{
    char v[2];
    ssize_t n = fgetxattr(dirfd, "user.overlay.opaque", v, sizeof(v));
    if (n != 1)
        n = fgetxattr(dirfd, "trusted.overlay.opaque", v, sizeof(v));
    return n == 1 && v[0] == 'y';
}

/* Look `path` up as the overlay would in layers top..0 (dirs in fds): the first layer that has
 * it wins; a whiteout, a non-directory on the way or an opaque directory stops the descent.
 * Returns the parent dir fd in the winning layer (name in `name`), -ENOENT when not visible. */
static int stack_lookup(const int *fds, size_t top_plus_one, const char *path,
                        char name[RBX_NAME_MAX + 1])
{
    const char *base = strrchr(path, '/');
    snprintf(name, RBX_NAME_MAX + 1, "%s", base ? base + 1 : path);
    for (size_t k = top_plus_one; k-- > 0;) {
        _cleanup_close_ int cur = fcntl(fds[k], F_DUPFD_CLOEXEC, 3);
        bool stop = false, missing = false;
        const char *p = path;
        while (cur >= 0 && base && p <= base) {
            const char *slash = strchr(p, '/');
            _cleanup_free_ char *comp = rbx_xstrndup(p, (size_t)(slash - p));
            p = slash + 1;
            struct stat st;
            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                missing = true;
                break;
            }
            if (!S_ISDIR(st.st_mode))
                return -ENOENT; /* a whiteout or a non-directory hides everything below */
            int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0)
                return -ENOENT;
            close(cur);
            cur = next;
            if (is_opaque(cur))
                stop = true;
            if (p > base)
                break;
        }
        if (cur < 0)
            return -ENOENT;
        if (!missing) {
            struct stat st;
            if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return is_whiteout(&st) ? -ENOENT : TAKE_FD(cur);
        }
        if (stop)
            return -ENOENT;
    }
    return -ENOENT;
}

static void copy_xattrs(int src, int dst)
{
    char names[8192];
    ssize_t n = flistxattr(src, names, sizeof(names));
    for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
        const char *k = names + off;
        if (rbx_xattr_forbidden(k))
            continue;
        char val[4096];
        ssize_t vn = fgetxattr(src, k, val, sizeof(val));
        if (vn >= 0)
            (void)fsetxattr(dst, k, val, (size_t)vn, 0);
    }
}

static void copy_owner_mode(int dst, const struct stat *st)
{
    (void)!fchown(dst, st->st_uid, st->st_gid); /* refused ids stay ours, as when unpacked */
    (void)fchmod(dst, st->st_mode & 07777);
}

/* Copy the non-directory srcdir/sname to dstdir/dname with its owner, mode, xattrs and times. */
static int copy_up(int srcdir, const char *sname, int dstdir, const char *dname,
                   struct rbx_error **err)
{
    struct stat st;
    if (fstatat(srcdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "stat");
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (S_ISREG(st.st_mode)) {
        _cleanup_close_ int in = openat(srcdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int out =
            openat(dstdir, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (in < 0 || out < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy");
        for (off_t left = st.st_size; left > 0;) {
            ssize_t w = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
            if (w <= 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, w < 0 ? errno : EIO, "copy");
            left -= w;
        }
        copy_owner_mode(out, &st);
        copy_xattrs(in, out);
        if (futimens(out, ts) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
        return 0;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[RBX_PATH_MAX + 1];
        ssize_t n = readlinkat(srcdir, sname, target, sizeof(target) - 1);
        if (n < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "readlink");
        target[n] = '\0';
        if (symlinkat(target, dstdir, dname) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "symlink");
    } else if (mknodat(dstdir, dname, (st.st_mode & S_IFMT) | 0600, st.st_rdev) < 0) {
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mknod");
    } else {
        (void)!fchmodat(dstdir, dname, st.st_mode & 07777, 0);
    }
    (void)!fchownat(dstdir, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
    if (utimensat(dstdir, dname, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "set times");
    return 0;
}

struct made_dir {
    char *path;
    struct timespec ts[2];
};

/* Open `path` in a tree without following any symlink (the links dir and layer trees are
 * walked this way: a symlink an image planted is never a way out). */
static int open_plain(int rootfd, const char *path, int flags)
{
    return rbx_open_in_root(rootfd, path, flags, 0, RBX_RESOLVE_NOFOLLOW | RBX_RESOLVE_NO_SYMLINKS,
                            NULL);
}

static bool exists_plain(int rootfd, const char *path)
{
    _cleanup_close_ int fd = open_plain(rootfd, path, O_PATH);
    return fd >= 0;
}

/* The parents of `path` in the links dir, each with the metadata of the directory the overlay
 * shows there (the topmost layer that has it): a directory of an upper layer dir wins. */
static int make_parents(int rootfd, const int *fds, size_t n_layers, const char *path,
                        struct made_dir **made, size_t *n_made, struct rbx_error **err)
{
    _cleanup_free_ char *p = rbx_xstrdup(path);
    for (char *slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        _cleanup_close_ int have = open_plain(rootfd, p, O_PATH | O_DIRECTORY);
        if (have >= 0) {
            *slash = '/';
            continue;
        }
        _cleanup_close_ int src = -1;
        for (size_t k = n_layers; k-- > 0 && src < 0;)
            src = open_plain(fds[k], p, O_RDONLY | O_DIRECTORY);
        struct stat st;
        if (src < 0 || fstat(src, &st) < 0)
            return rbx_error_set(err, RBX_ERR_MALFORMED, ENOENT, "\"%s\": no such directory", p);
        char name[RBX_NAME_MAX + 1];
        _cleanup_close_ int parent = rbx_open_parent_in_root(rootfd, p, false, name, err);
        if (parent < 0)
            return parent;
        if (mkdirat(parent, name, 0700) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir \"%s\"", p);
        _cleanup_close_ int dst =
            openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dst < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open \"%s\"", p);
        copy_owner_mode(dst, &st);
        copy_xattrs(src, dst);
        *made = rbx_xrealloc(*made, (*n_made + 1) * sizeof(**made));
        (*made)[*n_made] = (struct made_dir){rbx_xstrdup(p), {st.st_atim, st.st_mtim}};
        (*n_made)++;
        *slash = '/';
    }
    return 0;
}

/* linkat between two names of the links dir, each parent resolved without symlinks. */
static int link_plain(int rootfd, const char *from, const char *to, struct rbx_error **err)
{
    char fname[RBX_NAME_MAX + 1], tname[RBX_NAME_MAX + 1];
    _cleanup_close_ int fdir = rbx_open_parent_in_root(rootfd, from, false, fname, err);
    _cleanup_close_ int tdir =
        fdir < 0 ? -1 : rbx_open_parent_in_root(rootfd, to, false, tname, err);
    if (fdir < 0 || tdir < 0)
        return fdir < 0 ? fdir : tdir;
    if (linkat(fdir, fname, tdir, tname, 0) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "link \"%s\"", to);
    return 0;
}

static int link_one(int rootfd, const int *fds, size_t i, const char *link, const char *target,
                    struct made_dir **made, size_t *n_made, struct rbx_error **err)
{
    char sname[RBX_NAME_MAX + 1];
    _cleanup_close_ int sdir = stack_lookup(fds, i, target, sname);
    if (sdir < 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, ENOENT,
                             "hardlink \"%s\": its target \"%s\" is in no layer", link, target);
    struct stat st;
    if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EISDIR,
                             "hardlink \"%s\": its target \"%s\" is a directory", link, target);
    if (exists_plain(rootfd, link))
        return 0; /* a duplicate entry */
    int r = make_parents(rootfd, fds, i + 1, link, made, n_made, err);
    if (r < 0)
        return r;
    if (exists_plain(fds[i], target)) {
        /* The layer replaced the target after linking it: the link alone keeps the old file. */
        char lname[RBX_NAME_MAX + 1];
        _cleanup_close_ int ldir = rbx_open_parent_in_root(rootfd, link, false, lname, err);
        return ldir < 0 ? ldir : copy_up(sdir, sname, ldir, lname, err);
    }
    if (!exists_plain(rootfd, target)) {
        /* The target copied up too, as a copy-up leaves it. */
        if ((r = make_parents(rootfd, fds, i + 1, target, made, n_made, err)) < 0)
            return r;
        char tname[RBX_NAME_MAX + 1];
        _cleanup_close_ int tdir = rbx_open_parent_in_root(rootfd, target, false, tname, err);
        if (tdir < 0)
            return tdir;
        if ((r = copy_up(sdir, sname, tdir, tname, err)) < 0)
            return r;
    }
    return link_plain(rootfd, target, link, err);
}

struct links_build {
    int *fds; /* the trees of layers 0..i */
    size_t n_fds;
    struct made_dir *made;
    size_t n_made;
};

static void links_build_clear(struct links_build *b)
{
    for (size_t k = 0; k < b->n_fds; k++)
        if (b->fds[k] >= 0)
            close(b->fds[k]);
    free(b->fds);
    for (size_t k = 0; k < b->n_made; k++)
        free(b->made[k].path);
    free(b->made);
}

static int build_links(struct rbx_store *s, const struct rbx_image *img, size_t i, const char *key,
                       struct rbx_error **err)
{
    const char *hex = rbx_digest_hex(img->layers[i].diff_id);
    _cleanup_free_ char *rel = rbx_xasprintf("%s/%s", hex, RBX_LOWER_LINKS_FILE);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = rbx_read_file_at(s->layers_fd, rel, RBX_MANIFEST_MAX, &text, &len, err);
    if (r < 0)
        return r;
    _cleanup_json_ json_t *pairs = rbx_json_loadb(text, len, rel, err);
    if (!pairs)
        return -EINVAL;

    _cleanup_(links_build_clear) struct links_build b = {.fds = rbx_xcalloc(i + 1, sizeof(int))};
    for (size_t k = 0; k <= i; k++) {
        _cleanup_free_ char *lrel =
            rbx_xasprintf("%s/rootfs", rbx_digest_hex(img->layers[k].diff_id));
        b.fds[k] = openat(s->layers_fd, lrel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        b.n_fds = k + 1;
        if (b.fds[k] < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "layers/%s", lrel);
    }
    _cleanup_(rbx_store_tmp_cleanup) struct rbx_store_tmp tmp = {.tmp_fd = s->tmp_fd};
    _cleanup_close_ int tmpfd = rbx_store_mktemp(s, key, &tmp.name, err);
    if (tmpfd < 0)
        return tmpfd;
    _cleanup_close_ int rootfd = -1;
    if (mkdirat(tmpfd, "rootfs", 0755) < 0 ||
        (rootfd = openat(tmpfd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "links rootfs");
    size_t n;
    json_t *pair;
    json_array_foreach (pairs, n, pair) {
        const char *link = json_string_value(json_array_get(pair, 0));
        const char *target = json_string_value(json_array_get(pair, 1));
        if (!link || !target)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: [%zu]: expected two strings",
                                 rel, n);
        if ((r = link_one(rootfd, b.fds, i, link, target, &b.made, &b.n_made, err)) < 0)
            return rbx_error_wrap(err, "layer %s", img->layers[i].digest);
    }
    /* Directory times last, deepest (made last) first. */
    for (size_t k = b.n_made; k-- > 0;) {
        _cleanup_close_ int dfd = open_plain(rootfd, b.made[k].path, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0)
            (void)futimens(dfd, b.made[k].ts);
    }
    char chain[RBX_DIGEST_LEN + 1];
    rbx_chain_id(img, i, chain);
    _cleanup_json_ json_t *meta =
        json_pack("{s:s, s:s, s:I}", "chain_id", chain, "above", img->layers[i].diff_id, "links",
                  (json_int_t)json_array_size(pairs));
    _cleanup_free_ char *mtext = rbx_json_dump_canonical(meta);
    if ((r = rbx_write_file_replace_at(tmpfd, "meta.json", mtext, strlen(mtext), 0600, err)) < 0)
        return r;
    if (syncfs(rootfd) < 0 || renameat(s->tmp_fd, tmp.name, s->layers_fd, key) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "publish layers/%s", key);
    free(TAKE_PTR(tmp.name));
    rbx_store_journal(s, "extracted", key);
    return 0;
}

int rbx_links_ensure(struct rbx_store *s, const struct rbx_image *img, size_t i,
                     struct rbx_error **err)
{
    _cleanup_free_ char *key = NULL;
    int r = rbx_links_dir(s, img, i, &key, err);
    if (r < 0 || !key)
        return r;
    for (int tries = 0; tries < 16; tries++) {
        if (rbx_store_published(s, key)) {
            if ((r = rbx_store_hold(s, key, err)) < 0)
                return r;
            if (rbx_store_published(s, key))
                return 0;
        }
        _cleanup_close_ int lock = rbx_store_lock(s, key, true, err);
        if (lock < 0)
            return lock;
        if (rbx_store_published(s, key))
            continue;
        if ((r = build_links(s, img, i, key, err)) < 0)
            return r;
        return rbx_store_hold(s, key, err);
    }
    return rbx_error_set(err, RBX_ERR_IO, EAGAIN, "layers/%s: removed again and again", key);
}
