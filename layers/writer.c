/* writer.c — the deterministic layer writer: a directory (an overlay upper dir or a staging dir)
 * becomes a sorted, clamped, owner-numeric tar, gzip'd with a fixed header, hashed twice (diff_id
 * and blob digest) as it streams; and the same tree, normalised, published as the cached layer. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zlib.h>

#define TAR_BLOCK 512
#define COPY_CHUNK (256 * 1024)
#define XATTR_LIST_MAX_BYTES 65536
#define XATTR_VALUE_MAX_BYTES 65536
#define USTAR_ID_MAX 07777777ll       /* 8-byte octal field */
#define USTAR_SIZE_MAX 077777777777ll /* 12-byte octal field */

/* ---- the entries of the tree ---------------------------------------------------------------- */

struct xattr {
    char *name;
    char *value;
    size_t len;
};

enum wkind {
    W_FILE,
    W_DIR,
    W_SYMLINK,
    W_CHAR,
    W_BLOCK,
    W_FIFO,
    W_WHITEOUT, /* overlay 0/0 character device: ".wh.<name>" */
    W_OPAQUE,   /* overlay opaque dir: "<dir>/.wh..wh..opq" */
};

struct wentry {
    char *name; /* in the tar, without a trailing '/' */
    char *fs;   /* where it is in the tree (differs from name for whiteouts and opaque markers) */
    enum wkind kind;
    mode_t perm; /* & 07777 */
    uint32_t uid, gid;
    int64_t mtime;
    int64_t size;
    dev_t rdev;
    dev_t dev;
    ino_t ino;
    nlink_t nlink;
    char *link; /* symlink target, or the earlier name of a hardlink */
    bool hardlink;
    struct xattr *xattrs;
    size_t n_xattrs;
};

struct wtree {
    struct wentry *v;
    size_t n, cap;
    const struct rbx_layer_write_opts *opts;
    int64_t epoch;
    uint64_t whiteouts, opaques;
};

static void wentry_clear(struct wentry *e)
{
    free(e->name);
    free(e->fs);
    free(e->link);
    for (size_t i = 0; i < e->n_xattrs; i++) {
        free(e->xattrs[i].name);
        free(e->xattrs[i].value);
    }
    free(e->xattrs);
}

static void wtree_clear(struct wtree *t)
{
    for (size_t i = 0; i < t->n; i++)
        wentry_clear(&t->v[i]);
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static struct wentry *wtree_push(struct wtree *t)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->v = rbx_xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    struct wentry *e = &t->v[t->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

bool rbx_layer_xattr_kept(const char *name)
{
    /* Capabilities make binaries work as they did in the build; user.* is the user's own
     * metadata. Overlay state is expressed as whiteout entries, never as xattrs; security.*
     * labels and trusted.* belong to the machine that made the files. */
    if (strcmp(name, "security.capability") == 0)
        return true;
    return strncmp(name, "user.", 5) == 0 && strncmp(name, "user.overlay.", 13) != 0;
}

static int64_t clamp_time(const struct wtree *t, int64_t sec)
{
    return sec > t->epoch ? t->epoch : sec;
}

static bool is_excluded(const struct wtree *t, const char *path)
{
    for (size_t i = 0; t->opts->exclude && t->opts->exclude[i]; i++)
        if (strcmp(t->opts->exclude[i], path) == 0)
            return true;
    return false;
}

static int cmp_xattr(const void *a, const void *b)
{
    return strcmp(((const struct xattr *)a)->name, ((const struct xattr *)b)->name);
}

/* Read the kept xattrs of parentfd/name (sorted), remove the others when normalising. Returns
 * whether the overlay marked it opaque. */
static int read_xattrs(struct wtree *t, int parentfd, const char *name, const char *path,
                       struct wentry *e, bool *opaque, struct rbx_error **err)
{
    char proc[64 + RBX_NAME_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", parentfd, name);
    char list[XATTR_LIST_MAX_BYTES];
    ssize_t n = llistxattr(proc, list, sizeof(list));
    if (n < 0) {
        if (errno == ENOTSUP || errno == ENODATA)
            return 0;
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": list xattrs", path);
    }
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1) {
        const char *key = list + off;
        bool kept = rbx_layer_xattr_kept(key);
        bool ovl =
            strncmp(key, "user.overlay.", 13) == 0 || strncmp(key, "trusted.overlay.", 16) == 0;
        if (ovl && t->opts->overlay) {
            char v[8];
            ssize_t vl = lgetxattr(proc, key, v, sizeof(v));
            if (strcmp(key + (key[0] == 'u' ? 13 : 16), "opaque") == 0) {
                if (vl == 1 && v[0] == 'y')
                    *opaque = true;
            } else if (strcmp(key + (key[0] == 'u' ? 13 : 16), "redirect") == 0 ||
                       strcmp(key + (key[0] == 'u' ? 13 : 16), "metacopy") == 0) {
                /* A renamed directory or a metadata-only copy-up has no tar form. */
                return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                     "\"%s\": overlay %s entry has no layer form", path, key);
            }
        }
        if (!kept) {
            /* The published layer must hold what the tar holds: nothing else. The opaque
             * marker stays, in the one form the overlay reads. */
            if (t->opts->normalize &&
                !(ovl && *opaque && strcmp(key, "user.overlay.opaque") == 0) &&
                lremovexattr(proc, key) < 0 && errno != ENODATA)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": remove xattr %s", path,
                                           key);
            continue;
        }
        char *val = rbx_xmalloc(XATTR_VALUE_MAX_BYTES);
        ssize_t vl = lgetxattr(proc, key, val, XATTR_VALUE_MAX_BYTES);
        if (vl < 0) {
            free(val);
            if (errno == ENODATA)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": xattr %s", path, key);
        }
        e->xattrs = rbx_xrealloc(e->xattrs, (e->n_xattrs + 1) * sizeof(*e->xattrs));
        e->xattrs[e->n_xattrs++] = (struct xattr){rbx_xstrdup(key), val, (size_t)vl};
    }
    if (t->opts->normalize && *opaque) {
        if (lsetxattr(proc, "user.overlay.opaque", "y", 1, 0) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": opaque marker", path);
    }
    if (e->n_xattrs > 1)
        qsort(e->xattrs, e->n_xattrs, sizeof(*e->xattrs), cmp_xattr);
    return 0;
}

static char *join(const char *dir, const char *name)
{
    return *dir ? rbx_xasprintf("%s/%s", dir, name) : rbx_xstrdup(name);
}

/* Times are set after the children: removing an excluded child bumps the parent's mtime. */
static int normalize_times(struct wtree *t, int parentfd, const char *name, int64_t mtime,
                           const char *path, struct rbx_error **err)
{
    struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
    if (utimensat(parentfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": set times", path);
    return 0;
}

static int walk(struct wtree *t, int dirfd, const char *dir, unsigned depth, struct rbx_error **err)
{
    if (depth > RBX_PATH_MAX / 2)
        return rbx_error_set(err, RBX_ERR_LIMIT, ELOOP, "\"%s\": too deep", dir);
    int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    if (dfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "dup");
    _cleanup_closedir_ DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": open", dir);
    }
    /* Names first: entries are removed while walking when normalising. */
    _cleanup_strv_ char **names = NULL;
    size_t n_names = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        names = rbx_xrealloc(names, (n_names + 2) * sizeof(char *));
        names[n_names++] = rbx_xstrdup(de->d_name);
        names[n_names] = NULL;
    }
    if (errno)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": read", dir);

    for (size_t i = 0; i < n_names; i++) {
        const char *name = names[i];
        _cleanup_free_ char *path = join(dir, name);
        if (is_excluded(t, path)) {
            if (t->opts->normalize) {
                int r = rbx_rm_rf_at(dirfd, name, err);
                if (r < 0)
                    return rbx_error_wrap(err, "\"%s\"", path);
            }
            continue;
        }
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": stat", path);
        if (S_ISSOCK(st.st_mode)) {
            /* A socket is a running process's, not part of a filesystem image. */
            if (t->opts->normalize && unlinkat(dirfd, name, 0) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": remove", path);
            continue;
        }
        if (strlen(path) > RBX_PATH_MAX)
            return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG,
                                 "\"%.200s...\": path over %d bytes", path, RBX_PATH_MAX);
        bool whiteout = t->opts->overlay && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
        if (!whiteout && strncmp(name, RBX_WHITEOUT_PREFIX, strlen(RBX_WHITEOUT_PREFIX)) == 0)
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, EINVAL,
                                 "\"%s\": a name starting with \".wh.\" would read as a whiteout "
                                 "in a layer",
                                 path);
        int64_t mtime = clamp_time(t, st.st_mtim.tv_sec);
        size_t idx = t->n;
        struct wentry *e = wtree_push(t);
        e->fs = rbx_xstrdup(path);
        e->perm = st.st_mode & 07777;
        e->uid = st.st_uid;
        e->gid = st.st_gid;
        e->mtime = mtime;
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        e->nlink = st.st_nlink;
        if (whiteout) {
            e->name = rbx_xasprintf("%s%s%s%s", dir, *dir ? "/" : "", RBX_WHITEOUT_PREFIX, name);
            e->kind = W_WHITEOUT;
            e->perm = 0;
            e->uid = e->gid = 0;
            t->whiteouts++;
            if (t->opts->normalize) {
                int r = normalize_times(t, dirfd, name, mtime, path, err);
                if (r < 0)
                    return r;
            }
            continue;
        }
        e->name = rbx_xstrdup(path);
        bool opaque = false;
        int r = read_xattrs(t, dirfd, name, path, e, &opaque, err);
        if (r < 0)
            return r;
        if (S_ISREG(st.st_mode)) {
            e->kind = W_FILE;
            e->size = st.st_size;
        } else if (S_ISLNK(st.st_mode)) {
            e->kind = W_SYMLINK;
            char buf[RBX_PATH_MAX + 1];
            ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
            if (n < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": readlink", path);
            buf[n] = '\0';
            e->link = rbx_xstrdup(buf);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            e->kind = S_ISCHR(st.st_mode) ? W_CHAR : W_BLOCK;
            e->rdev = st.st_rdev;
        } else if (S_ISFIFO(st.st_mode)) {
            e->kind = W_FIFO;
        } else if (S_ISDIR(st.st_mode)) {
            e->kind = W_DIR;
            if (opaque) {
                struct wentry *o = wtree_push(t);
                e = &t->v[idx]; /* the push may have moved it */
                o->name = rbx_xasprintf("%s/%s", path, RBX_WHITEOUT_OPAQUE);
                o->fs = rbx_xstrdup(path);
                o->kind = W_OPAQUE;
                o->mtime = mtime;
                t->opaques++;
            }
            _cleanup_close_ int sub =
                openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": open", path);
            if ((r = walk(t, sub, path, depth + 1, err)) < 0)
                return r;
        }
        if (t->opts->normalize && (r = normalize_times(t, dirfd, name, mtime, path, err)) < 0)
            return r;
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct wentry *)a)->name, ((const struct wentry *)b)->name);
}

/* The first of several names of one inode stays a file; the later ones (in tar order) link to
 * it, so the layer keeps one inode as the tree had it. */
static void link_hardlinks(struct wtree *t)
{
    size_t cap = 64;
    while (cap < t->n * 2)
        cap *= 2;
    _cleanup_free_ size_t *slots = rbx_xcalloc(cap, sizeof(size_t)); /* index + 1 */
    for (size_t i = 0; i < t->n; i++) {
        struct wentry *e = &t->v[i];
        if (e->kind != W_FILE || e->nlink < 2)
            continue;
        uint64_t h = ((uint64_t)e->dev * 1099511628211ull) ^ (uint64_t)e->ino;
        size_t j = (size_t)(h * 0x9E3779B97F4A7C15ull) & (cap - 1);
        for (;;) {
            if (!slots[j]) {
                slots[j] = i + 1;
                break;
            }
            struct wentry *f = &t->v[slots[j] - 1];
            if (f->dev == e->dev && f->ino == e->ino) {
                e->hardlink = true;
                e->link = rbx_xstrdup(f->name);
                e->size = 0;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
    }
}

/* ---- the output: tar bytes hashed, gzip'd, hashed again, written ---------------------------- */

struct sink {
    int fd;
    bool gzip;
    z_stream z;
    bool z_init;
    struct rbx_sha256 *tar_hash, *blob_hash;
    uint64_t tar_bytes, blob_bytes;
    unsigned char *zbuf;
};

static int sink_emit(struct sink *s, const void *data, size_t len, struct rbx_error **err)
{
    rbx_sha256_update(s->blob_hash, data, len);
    s->blob_bytes += len;
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(s->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "write layer");
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int sink_deflate(struct sink *s, int flush, struct rbx_error **err)
{
    do {
        s->z.next_out = s->zbuf;
        s->z.avail_out = COPY_CHUNK;
        int zr = deflate(&s->z, flush);
        if (zr == Z_STREAM_ERROR)
            return rbx_error_set(err, RBX_ERR_INTERNAL, EIO, "deflate failed");
        size_t have = COPY_CHUNK - s->z.avail_out;
        if (have) {
            int r = sink_emit(s, s->zbuf, have, err);
            if (r < 0)
                return r;
        }
    } while (s->z.avail_out == 0);
    return 0;
}

static int sink_write(struct sink *s, const void *data, size_t len, struct rbx_error **err)
{
    rbx_sha256_update(s->tar_hash, data, len);
    s->tar_bytes += len;
    if (!s->gzip)
        return sink_emit(s, data, len, err);
    s->z.next_in = (unsigned char *)data;
    s->z.avail_in = (uInt)len;
    return sink_deflate(s, Z_NO_FLUSH, err);
}

static void sink_init(struct sink *s, int fd, bool gzip)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->gzip = gzip;
    s->tar_hash = rbx_sha256_new();
    s->blob_hash = rbx_sha256_new();
    if (gzip) {
        s->zbuf = rbx_xmalloc(COPY_CHUNK);
        /* gzip framing (16 + window bits), then a header of our own: no name, no time, a fixed
         * OS byte, so the blob depends on the tar alone (and zlib's deflate at this level). */
        if (deflateInit2(&s->z, RBX_LAYER_GZIP_LEVEL, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            abort();
        static gz_header head = {.os = 255, .time = 0};
        if (deflateSetHeader(&s->z, &head) != Z_OK)
            abort();
        s->z_init = true;
    }
}

static void sink_clear(struct sink *s)
{
    if (s->z_init)
        deflateEnd(&s->z);
    rbx_sha256_free(s->tar_hash);
    rbx_sha256_free(s->blob_hash);
    free(s->zbuf);
}

/* ---- tar headers ------------------------------------------------------------------------- */

/* A pax record "LEN key=value\n", LEN counting itself. */
static void pax_add(char **buf, size_t *len, const char *key, const char *val, size_t vlen)
{
    size_t body = 1 + strlen(key) + 1 + vlen + 1; /* " key=value\n" */
    size_t digits = 1, total;
    for (;;) {
        total = body + digits;
        size_t d = 1;
        for (size_t x = total; x >= 10; x /= 10)
            d++;
        if (d == digits)
            break;
        digits = d;
    }
    *buf = rbx_xrealloc(*buf, *len + total + 1);
    int n = snprintf(*buf + *len, total + 1, "%zu %s=", total, key);
    memcpy(*buf + *len + n, val, vlen);
    (*buf)[*len + total - 1] = '\n';
    *len += total;
}

struct pax_rec {
    char *key;
    char *val;
    size_t len;
};

static int cmp_pax(const void *a, const void *b)
{
    return strcmp(((const struct pax_rec *)a)->key, ((const struct pax_rec *)b)->key);
}

/* width - 1 octal digits, zero-padded, then NUL; callers keep v within the field. */
static void octal(char *field, size_t width, uint64_t v)
{
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0; v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

static void header_checksum(unsigned char *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    octal((char *)h + 148, 7, sum);
    h[155] = ' ';
}

/* Split a name into ustar's prefix (<= 155) and name (<= 100) at a '/', if it can be. */
static bool ustar_split(const char *name, size_t *split)
{
    size_t len = strlen(name);
    if (len <= 100) {
        *split = 0;
        return true;
    }
    if (len > 256)
        return false;
    for (size_t i = len - 1; i > 0; i--) {
        if (name[i] != '/')
            continue;
        if (i <= 155 && len - i - 1 <= 100 && len - i - 1 > 0) {
            *split = i;
            return true;
        }
        if (i < len - 101)
            break;
    }
    return false;
}

static void fill_header(unsigned char *h, const char *name, char type, mode_t perm, uint64_t uid,
                        uint64_t gid, uint64_t size, int64_t mtime, const char *link,
                        unsigned devmajor, unsigned devminor)
{
    memset(h, 0, TAR_BLOCK);
    size_t split = 0;
    if (ustar_split(name, &split) && split) {
        memcpy(h + 345, name, split);
        strncpy((char *)h, name + split + 1, 100);
    } else {
        strncpy((char *)h, name, 100); /* longer names are in the pax header */
    }
    octal((char *)h + 100, 8, perm);
    octal((char *)h + 108, 8, uid <= USTAR_ID_MAX ? uid : 0);
    octal((char *)h + 116, 8, gid <= USTAR_ID_MAX ? gid : 0);
    octal((char *)h + 124, 12, size <= USTAR_SIZE_MAX ? size : 0);
    octal((char *)h + 136, 12, mtime >= 0 && mtime <= USTAR_SIZE_MAX ? (uint64_t)mtime : 0);
    h[156] = (unsigned char)type;
    if (link)
        strncpy((char *)h + 157, link, 100);
    memcpy(h + 257, "ustar", 6); /* POSIX magic "ustar\0", version "00" */
    memcpy(h + 263, "00", 2);
    if (type == '3' || type == '4') {
        octal((char *)h + 329, 8, devmajor);
        octal((char *)h + 337, 8, devminor);
    }
    header_checksum(h);
}

static int write_pad(struct sink *s, uint64_t size, struct rbx_error **err)
{
    static const char zeros[TAR_BLOCK];
    size_t pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
    return pad ? sink_write(s, zeros, pad, err) : 0;
}

/* The pax header naming `name`: "<dir>/PaxHeaders/<base>", as GNU tar names it, cut to fit. */
static char *pax_header_name(const char *name)
{
    const char *slash = strrchr(name, '/');
    char *n = slash ? rbx_xasprintf("%.*s/PaxHeaders/%s", (int)(slash - name), name, slash + 1)
                    : rbx_xasprintf("PaxHeaders/%s", name);
    if (strlen(n) > 100)
        n[100] = '\0';
    return n;
}

static int write_entry_header(struct sink *s, const struct wentry *e, const char *tarname,
                              char type, uint64_t size, struct rbx_error **err)
{
    struct pax_rec recs[8 + 64];
    size_t n = 0;
    size_t split;
    const char *link = e->link;
    if (!ustar_split(tarname, &split))
        recs[n++] = (struct pax_rec){"path", (char *)tarname, strlen(tarname)};
    if (link && strlen(link) > 100)
        recs[n++] = (struct pax_rec){"linkpath", (char *)link, strlen(link)};
    char num[3][32];
    if (e->uid > USTAR_ID_MAX) {
        snprintf(num[0], sizeof(num[0]), "%u", e->uid);
        recs[n++] = (struct pax_rec){"uid", num[0], strlen(num[0])};
    }
    if (e->gid > USTAR_ID_MAX) {
        snprintf(num[1], sizeof(num[1]), "%u", e->gid);
        recs[n++] = (struct pax_rec){"gid", num[1], strlen(num[1])};
    }
    if (size > USTAR_SIZE_MAX) {
        snprintf(num[2], sizeof(num[2]), "%llu", (unsigned long long)size);
        recs[n++] = (struct pax_rec){"size", num[2], strlen(num[2])};
    }
    if (e->n_xattrs + 8 > RBX_ARRAY_SIZE(recs))
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "\"%s\": more than 64 xattrs", e->fs);
    size_t kcap = 0;
    for (size_t i = 0; i < e->n_xattrs; i++)
        kcap += 14 + strlen(e->xattrs[i].name);
    _cleanup_free_ char *keys = rbx_xmalloc(kcap + 1);
    char *kp = keys;
    for (size_t i = 0; i < e->n_xattrs; i++) {
        int w = sprintf(kp, "SCHILY.xattr.%s", e->xattrs[i].name);
        recs[n++] = (struct pax_rec){kp, e->xattrs[i].value, e->xattrs[i].len};
        kp += w + 1;
    }

    unsigned char h[TAR_BLOCK];
    int r;
    if (n) {
        qsort(recs, n, sizeof(recs[0]), cmp_pax);
        _cleanup_free_ char *body = NULL;
        size_t blen = 0;
        for (size_t i = 0; i < n; i++)
            pax_add(&body, &blen, recs[i].key, recs[i].val, recs[i].len);
        _cleanup_free_ char *pname = pax_header_name(tarname);
        fill_header(h, pname, 'x', 0644, 0, 0, blen, e->mtime, NULL, 0, 0);
        if ((r = sink_write(s, h, TAR_BLOCK, err)) < 0 ||
            (r = sink_write(s, body, blen, err)) < 0 || (r = write_pad(s, blen, err)) < 0)
            return r;
    }
    fill_header(h, tarname, type, e->perm, e->uid, e->gid, size, e->mtime, link, major(e->rdev),
                minor(e->rdev));
    return sink_write(s, h, TAR_BLOCK, err);
}

static int write_file_data(struct sink *s, int rootfd, const struct wentry *e, unsigned char *buf,
                           struct rbx_error **err)
{
    _cleanup_close_ int fd =
        rbx_open_in_root(rootfd, e->fs, O_RDONLY | O_NOCTTY, 0, RBX_RESOLVE_NOFOLLOW, err);
    if (fd < 0)
        return fd == -ENOENT ? rbx_error_set(err, RBX_ERR_IO, ENOENT, "\"%s\": vanished", e->fs)
                             : rbx_error_wrap(err, "\"%s\"", e->fs);
    uint64_t left = (uint64_t)e->size;
    while (left > 0) {
        ssize_t n = read(fd, buf, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "\"%s\": read", e->fs);
        }
        if (n == 0)
            return rbx_error_set(err, RBX_ERR_IO, EIO, "\"%s\": shrank while being written", e->fs);
        int r = sink_write(s, buf, (size_t)n, err);
        if (r < 0)
            return r;
        left -= (uint64_t)n;
    }
    return write_pad(s, (uint64_t)e->size, err);
}

static int write_entry(struct sink *s, int rootfd, const struct wentry *e, unsigned char *buf,
                       struct rbx_error **err)
{
    int r;
    switch (e->kind) {
    case W_DIR: {
        _cleanup_free_ char *n = rbx_xasprintf("%s/", e->name);
        return write_entry_header(s, e, n, '5', 0, err);
    }
    case W_WHITEOUT:
    case W_OPAQUE: return write_entry_header(s, e, e->name, '0', 0, err);
    case W_SYMLINK: return write_entry_header(s, e, e->name, '2', 0, err);
    case W_CHAR: return write_entry_header(s, e, e->name, '3', 0, err);
    case W_BLOCK: return write_entry_header(s, e, e->name, '4', 0, err);
    case W_FIFO: return write_entry_header(s, e, e->name, '6', 0, err);
    case W_FILE:
        if (e->hardlink)
            return write_entry_header(s, e, e->name, '1', 0, err);
        if ((r = write_entry_header(s, e, e->name, '0', (uint64_t)e->size, err)) < 0)
            return r;
        return write_file_data(s, rootfd, e, buf, err);
    }
    return 0;
}

/* ---- the public functions ---------------------------------------------------------------- */

int rbx_layer_write_fd(int rootfd, const struct rbx_layer_write_opts *opts, int outfd, bool gzip,
                       struct rbx_layer_blob *out, struct rbx_error **err)
{
    struct rbx_layer_write_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    memset(out, 0, sizeof(*out));
    struct wtree t = {.opts = opts, .epoch = opts->source_date_epoch};
    int r = walk(&t, rootfd, "", 0, err);
    if (r < 0) {
        wtree_clear(&t);
        return r;
    }
    if (t.n > 1)
        qsort(t.v, t.n, sizeof(*t.v), cmp_entry);
    link_hardlinks(&t);

    struct sink s;
    sink_init(&s, outfd, gzip);
    _cleanup_free_ unsigned char *buf = rbx_xmalloc(COPY_CHUNK);
    for (size_t i = 0; i < t.n && r >= 0; i++)
        r = write_entry(&s, rootfd, &t.v[i], buf, err);
    if (r >= 0) {
        /* The end-of-archive marker: two zero blocks, nothing after. */
        static const char zeros[2 * TAR_BLOCK];
        r = sink_write(&s, zeros, sizeof(zeros), err);
    }
    if (r >= 0 && gzip) {
        s.z.next_in = NULL;
        s.z.avail_in = 0;
        r = sink_deflate(&s, Z_FINISH, err);
    }
    if (r >= 0) {
        rbx_sha256_final(s.tar_hash, out->diff_id);
        rbx_sha256_final(s.blob_hash, out->digest);
        out->size = (int64_t)s.blob_bytes;
        out->tar_size = s.tar_bytes;
        out->entries = t.n;
        out->whiteouts = t.whiteouts;
        out->opaques = t.opaques;
        out->gzip = gzip;
    }
    sink_clear(&s);
    wtree_clear(&t);
    return r;
}

int rbx_layer_write(struct rbx_store *store, int rootfd, const struct rbx_layer_write_opts *opts,
                    struct rbx_layer_blob *out, struct rbx_error **err)
{
    /* An unnamed file in the blob dir, named only once whole and synced: the store never holds
     * a partial blob under a digest, and a crash leaves nothing behind. */
    _cleanup_close_ int fd =
        openat(store->blobs_fd, "sha256", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    _cleanup_free_ char *tmpname = NULL;
    if (fd < 0) {
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer blob");
        char rnd[17];
        rbx_random_hex(rnd, 16);
        tmpname = rbx_xasprintf("sha256/.tmp-%s", rnd);
        fd = openat(store->blobs_fd, tmpname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer blob");
    }
    int r = rbx_layer_write_fd(rootfd, opts, fd, true, out, err);
    if (r >= 0 && fdatasync(fd) < 0)
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer blob: sync");
    if (r >= 0) {
        char dest[8 + RBX_DIGEST_HEX_LEN];
        snprintf(dest, sizeof(dest), "sha256/%s", rbx_digest_hex(out->digest));
        if (tmpname) {
            if (renameat(store->blobs_fd, tmpname, store->blobs_fd, dest) < 0)
                r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer blob: publish");
            else
                free(TAKE_PTR(tmpname));
        } else {
            char proc[32];
            snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
            /* Same digest, same bytes: a blob already there is this one. */
            if (linkat(AT_FDCWD, proc, store->blobs_fd, dest, AT_SYMLINK_FOLLOW) < 0 &&
                errno != EEXIST)
                r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer blob: publish");
        }
    }
    if (tmpname)
        unlinkat(store->blobs_fd, tmpname, 0);
    return r;
}

int rbx_store_blob_dirfd(const struct rbx_store *s)
{
    return s->blobs_fd;
}

bool rbx_store_has_blob(const struct rbx_store *s, const char *digest)
{
    if (!rbx_digest_valid(digest))
        return false;
    char path[8 + RBX_DIGEST_HEX_LEN];
    snprintf(path, sizeof(path), "sha256/%s", rbx_digest_hex(digest));
    struct stat st;
    return fstatat(s->blobs_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int rbx_store_layer_path(struct rbx_store *s, const char *diff_id, char **path,
                         struct rbx_error **err)
{
    if (!rbx_digest_valid(diff_id))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid diff_id \"%s\"", diff_id);
    char rel[RBX_DIGEST_HEX_LEN + 8];
    snprintf(rel, sizeof(rel), "%s/rootfs", rbx_digest_hex(diff_id));
    struct stat st;
    if (fstatat(s->layers_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
        return -ENOENT;
    *path = rbx_xasprintf("%s/layers/%s", s->dir, rel);
    return 0;
}

int rbx_store_adopt_layer(struct rbx_store *s, const struct rbx_layer_blob *blob, const char *dir,
                          struct rbx_error **err)
{
    const char *hex = rbx_digest_hex(blob->diff_id);
    struct stat st;
    if (fstatat(s->layers_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return rbx_rm_rf_at(AT_FDCWD, dir, err); /* the same layer is cached already */
    _cleanup_close_ int lock = rbx_store_lock(s, hex, true, err);
    if (lock < 0)
        return lock;
    if (fstatat(s->layers_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return rbx_rm_rf_at(AT_FDCWD, dir, err);
    _cleanup_free_ char *tmp = NULL;
    _cleanup_close_ int tmpfd = rbx_store_mktemp(s, hex, &tmp, err);
    if (tmpfd < 0)
        return tmpfd;
    int r = 0;
    _cleanup_json_ json_t *meta = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:s}", "diff_id",
        blob->diff_id, "digest", blob->digest, "media_type",
        blob->gzip ? "application/vnd.oci.image.layer.v1.tar+gzip"
                   : "application/vnd.oci.image.layer.v1.tar",
        "size", (json_int_t)blob->size, "unpacked_bytes", (json_int_t)blob->tar_size, "entries",
        (json_int_t)blob->entries, "skipped", "devices", (json_int_t)0, "owners", (json_int_t)0,
        "xattrs", (json_int_t)0, "other", (json_int_t)0, "whiteouts", (json_int_t)blob->whiteouts,
        "opaques", (json_int_t)blob->opaques, "origin", "build");
    if (!meta)
        abort();
    _cleanup_free_ char *text = rbx_json_dump_canonical(meta);
    _cleanup_close_ int rootfd = -1;
    if (renameat(AT_FDCWD, dir, tmpfd, "rootfs") < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer %s: move %s", blob->diff_id, dir);
    } else if ((r = rbx_write_file_atomic_at(tmpfd, "meta.json", text, strlen(text), 0600, err)) <
               0) {
        rbx_error_wrap(err, "layer %s", blob->diff_id);
    } else if ((rootfd = openat(tmpfd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
               syncfs(rootfd) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer %s: sync", blob->diff_id);
    } else if (renameat(s->tmp_fd, tmp, s->layers_fd, hex) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer %s: publish", blob->diff_id);
    } else {
        (void)fsync(s->layers_fd);
        return 0;
    }
    (void)rbx_rm_rf_at(s->tmp_fd, tmp, NULL);
    return r;
}
