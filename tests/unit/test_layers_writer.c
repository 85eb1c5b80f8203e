/* test_layers_writer.c — writer.c: the deterministic layer tar (order, times, owners, modes, PAX,
 * xattrs, hardlinks, whiteouts), its gzip framing, and the normalised tree published as the
 * cached layer being exactly what the verified unpack of the blob gives. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>

static char *top;
static char *pool[256]; /* strings made inline by P(), freed at teardown */
static size_t n_pool;

static const char *P(const char *fmt, ...) RBX_PRINTF(1, 2);
static const char *P(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    ck_assert_uint_lt(n_pool, RBX_ARRAY_SIZE(pool));
    pool[n_pool++] = s;
    return s;
}

static void setup(void)
{
    top = tl_mkdtemp();
}

static void teardown(void)
{
    tl_rm_rf(top);
    free(top);
    for (size_t i = 0; i < n_pool; i++)
        free(pool[i]);
    n_pool = 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void mk_file(const char *dir, const char *name, const char *content, mode_t mode)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void mk_dir(const char *dir, const char *name, mode_t mode)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    ck_assert_msg(mkdir(p, 0700) == 0, "mkdir %s: %s", p, strerror(errno));
    ck_assert_int_eq(chmod(p, mode), 0);
}

static void set_mtime(const char *dir, const char *name, time_t t)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int open_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

struct tentry {
    char name[512];
    char link[512];
    int type; /* AE_IF* */
    bool hardlink;
    mode_t perm;
    int64_t uid, gid, mtime, size;
    bool atime_set, ctime_set;
    char uname[64], gname[64];
    char content[256];
    char xattrs[512]; /* "name=value;" */
};

struct tlist {
    struct tentry e[256];
    size_t n;
    int pax_headers;
};

/* Write the tree plain and read it back with libarchive, counting PAX headers in the raw bytes. */
static struct rbx_layer_blob write_and_read(const char *dir, const struct rbx_layer_write_opts *o,
                                            struct tlist *out)
{
    _cleanup_close_ int rootfd = open_dir(dir);
    _cleanup_free_ char *tarpath = rbx_xasprintf("%s/out.tar", top);
    int fd = open(tarpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    struct rbx_layer_blob b;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_layer_write_fd(rootfd, o, fd, false, &b, &err) == 0, "%s",
                  err ? err->message : "");
    close(fd);

    char *buf;
    size_t len;
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, tarpath, 64 << 20, &buf, &len, NULL), 0);
    ck_assert_uint_eq(len % 512, 0);
    ck_assert_uint_eq(len, b.tar_size);
    char sha[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(buf, len, sha);
    ck_assert_str_eq(sha, b.diff_id);
    ck_assert_str_eq(sha, b.digest); /* plain: blob = tar */

    memset(out, 0, sizeof(*out));
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    ck_assert_int_eq(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        struct tentry *t = &out->e[out->n++];
        snprintf(t->name, sizeof(t->name), "%s", archive_entry_pathname(e));
        t->type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e)) {
            t->hardlink = true;
            snprintf(t->link, sizeof(t->link), "%s", archive_entry_hardlink(e));
        } else if (archive_entry_symlink(e)) {
            snprintf(t->link, sizeof(t->link), "%s", archive_entry_symlink(e));
        }
        t->perm = archive_entry_perm(e);
        t->uid = archive_entry_uid(e);
        t->gid = archive_entry_gid(e);
        t->mtime = archive_entry_mtime(e);
        t->size = archive_entry_size(e);
        t->atime_set = archive_entry_atime_is_set(e);
        t->ctime_set = archive_entry_ctime_is_set(e);
        snprintf(t->uname, sizeof(t->uname), "%s",
                 archive_entry_uname(e) ? archive_entry_uname(e) : "");
        snprintf(t->gname, sizeof(t->gname), "%s",
                 archive_entry_gname(e) ? archive_entry_gname(e) : "");
        ssize_t n = archive_read_data(a, t->content, sizeof(t->content) - 1);
        t->content[n > 0 ? n : 0] = '\0';
        const char *k;
        const void *v;
        size_t vl;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &k, &v, &vl) == ARCHIVE_OK) {
            size_t used = strlen(t->xattrs);
            snprintf(t->xattrs + used, sizeof(t->xattrs) - used, "%s=%.*s;", k, (int)vl,
                     (const char *)v);
        }
    }
    archive_read_free(a);
    for (size_t off = 0; off + 512 <= len; off += 512)
        if (buf[off + 156] == 'x' && memcmp(buf + off + 257, "ustar", 5) == 0)
            out->pax_headers++;
    free(buf);
    return b;
}

static const struct tentry *find(const struct tlist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->e[i].name, name) == 0)
            return &l->e[i];
    return NULL;
}

static bool can_user_xattr(const char *dir)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/.xattr-probe", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && fsetxattr(fd, "user.probe", "1", 1, 0) == 0;
    if (fd >= 0)
        close(fd);
    unlink(p);
    return ok;
}

/* ---- the tests ----------------------------------------------------------------------------- */

START_TEST(test_writer_order_times_owners_modes)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/tree", top);
    mk_dir(top, "tree", 0755);
    mode_t old = umask(077); /* the umask at write time must not matter */
    mk_dir(d, "a", 0750);
    mk_dir(d, "a/b", 0700);
    mk_file(d, "a/b/f", "hello\n", 04755);
    mk_file(d, "a-c", "x", 0600);
    mk_file(d, "Z", "z", 0644);
    ck_assert_int_eq(symlinkat("../a-c", open_dir(d), "a/link"), 0);
    umask(old);
    set_mtime(d, "a-c", 100);   /* before the epoch: kept */
    set_mtime(d, "Z", 5000000); /* after: clamped */

    struct rbx_layer_write_opts o = {.source_date_epoch = 1000};
    struct tlist l;
    write_and_read(d, &o, &l);
    const char *want[] = {"Z", "a/", "a-c", "a/b/", "a/b/f", "a/link"};
    ck_assert_uint_eq(l.n, RBX_ARRAY_SIZE(want));
    for (size_t i = 0; i < l.n; i++) {
        /* bytewise order of the names without their trailing '/': "a" < "a-c" < "a/b" */
        ck_assert_str_eq(l.e[i].name, want[i]);
        ck_assert_int_eq(l.e[i].uid, getuid());
        ck_assert_str_eq(l.e[i].uname, "");
        ck_assert_str_eq(l.e[i].gname, "");
        ck_assert(!l.e[i].atime_set);
        ck_assert(!l.e[i].ctime_set);
    }
    ck_assert_int_eq(find(&l, "a-c")->mtime, 100);
    ck_assert_int_eq(find(&l, "Z")->mtime, 1000);
    ck_assert_int_eq(find(&l, "a/b/f")->mtime, 1000);
    ck_assert_uint_eq(find(&l, "a/b/f")->perm, 04755);
    ck_assert_uint_eq(find(&l, "a/")->perm, 0750);
    ck_assert_uint_eq(find(&l, "a/b/")->perm, 0700);
    ck_assert_str_eq(find(&l, "a/b/f")->content, "hello\n");
    ck_assert_int_eq(find(&l, "a/link")->type, AE_IFLNK);
    ck_assert_str_eq(find(&l, "a/link")->link, "../a-c");
    ck_assert_int_eq(l.pax_headers, 0); /* nothing here needs PAX */
}
END_TEST

START_TEST(test_writer_same_tree_same_digest)
{
    /* The same content made in another order, at another time, under another umask. */
    _cleanup_free_ char *d1 = rbx_xasprintf("%s/t1", top);
    _cleanup_free_ char *d2 = rbx_xasprintf("%s/t2", top);
    mk_dir(top, "t1", 0755);
    mk_dir(top, "t2", 0755);
    mk_dir(d1, "x", 0755);
    mk_file(d1, "x/1", "one", 0644);
    mk_file(d1, "x/2", "two", 0640);
    mode_t old = umask(0);
    mk_file(d2, "x2", "", 0600);
    unlink(P("%s/x2", d2));
    mk_dir(d2, "x", 0755);
    mk_file(d2, "x/2", "two", 0640);
    mk_file(d2, "x/1", "one", 0644);
    umask(old);
    set_mtime(d2, "x/1", 12345);

    struct rbx_layer_write_opts o = {.source_date_epoch = 0};
    struct rbx_layer_blob b1, b2;
    struct rbx_error *err = NULL;
    _cleanup_close_ int f1 = open(P("%s/1.tgz", top), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    _cleanup_close_ int f2 = open(P("%s/2.tgz", top), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    _cleanup_close_ int r1 = open_dir(d1), r2 = open_dir(d2);
    ck_assert_int_eq(rbx_layer_write_fd(r1, &o, f1, true, &b1, &err), 0);
    ck_assert_int_eq(rbx_layer_write_fd(r2, &o, f2, true, &b2, &err), 0);
    ck_assert_str_eq(b1.diff_id, b2.diff_id);
    ck_assert_str_eq(b1.digest, b2.digest);
    ck_assert_str_ne(b1.digest, b1.diff_id);

    /* gzip framing: magic, deflate, no flags, mtime 0, XFL 4 (level 1: fastest), OS 255 */
    unsigned char h[10];
    ck_assert_int_eq(pread(f1, h, sizeof(h), 0), 10);
    const unsigned char want[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff};
    ck_assert_int_eq(memcmp(h, want, sizeof(h)), 0);
}
END_TEST

START_TEST(test_writer_pax_only_when_needed_sorted)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/tree", top);
    mk_dir(top, "tree", 0755);
    char longname[201];
    memset(longname, 'n', 200);
    longname[200] = '\0';
    mk_file(d, longname, "long", 0644); /* a 200-byte component: no ustar split fits */
    mk_dir(d, "p", 0755);
    char mid[120];
    memset(mid, 'm', 80);
    mid[80] = '\0';
    _cleanup_free_ char *sub = rbx_xasprintf("p/%s", mid);
    mk_dir(d, sub, 0755);
    _cleanup_free_ char *split = rbx_xasprintf("%s/%s", sub, mid); /* 164 bytes: prefix + name */
    mk_file(d, split, "split", 0644);
    bool xa = can_user_xattr(d);
    if (xa) {
        _cleanup_free_ char *p = rbx_xasprintf("%s/p", d);
        ck_assert_int_eq(setxattr(p, "user.zz", "2", 1, 0), 0);
        ck_assert_int_eq(setxattr(p, "user.aa", "1", 1, 0), 0);
    }
    struct tlist l;
    struct rbx_layer_write_opts o = {0};
    write_and_read(d, &o, &l);
    ck_assert_ptr_nonnull(find(&l, longname));
    ck_assert_str_eq(find(&l, longname)->content, "long");
    ck_assert_ptr_nonnull(find(&l, split));
    /* the 200-byte name needs a PAX path; the split one does not; p/ needs one for its xattrs */
    ck_assert_int_eq(l.pax_headers, xa ? 2 : 1);
    if (xa) {
        ck_assert_ptr_nonnull(strstr(find(&l, "p/")->xattrs, "user.aa=1;"));
        ck_assert_ptr_nonnull(strstr(find(&l, "p/")->xattrs, "user.zz=2;"));
        /* records in key order in the raw header */
        char *raw;
        size_t len;
        ck_assert_int_eq(
            rbx_read_file_at(AT_FDCWD, P("%s/out.tar", top), 1 << 20, &raw, &len, NULL), 0);
        char *aa = memmem(raw, len, "SCHILY.xattr.user.aa=1", 22);
        char *zz = memmem(raw, len, "SCHILY.xattr.user.zz=2", 22);
        ck_assert(aa && zz && aa < zz);
        free(raw);
    }
}
END_TEST

START_TEST(test_writer_xattr_allow_list)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/tree", top);
    mk_dir(top, "tree", 0755);
    if (!can_user_xattr(d)) {
        fprintf(stderr, "skip: no user xattrs on %s\n", top);
        return;
    }
    mk_file(d, "f", "x", 0644);
    _cleanup_free_ char *p = rbx_xasprintf("%s/f", d);
    ck_assert_int_eq(setxattr(p, "user.mime", "text", 4, 0), 0);
    ck_assert_int_eq(setxattr(p, "user.overlay.origin", "x", 1, 0), 0);
    ck_assert(rbx_layer_xattr_kept("security.capability"));
    ck_assert(!rbx_layer_xattr_kept("security.selinux"));
    ck_assert(!rbx_layer_xattr_kept("trusted.overlay.opaque"));
    ck_assert(!rbx_layer_xattr_kept("user.overlay.opaque"));
    struct tlist l;
    struct rbx_layer_write_opts o = {.normalize = true};
    write_and_read(d, &o, &l);
    ck_assert_str_eq(find(&l, "f")->xattrs, "user.mime=text;");
    /* normalised: the tree keeps only what the tar says */
    char v[16];
    ck_assert_int_eq(getxattr(p, "user.overlay.origin", v, sizeof(v)), -1);
    ck_assert_int_eq(getxattr(p, "user.mime", v, sizeof(v)), 4);
}
END_TEST

START_TEST(test_writer_hardlinks_kept)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/tree", top);
    mk_dir(top, "tree", 0755);
    mk_file(d, "b", "shared", 0644);
    _cleanup_free_ char *b = rbx_xasprintf("%s/b", d), *a = rbx_xasprintf("%s/a", d),
                        *c = rbx_xasprintf("%s/c", d);
    ck_assert_int_eq(link(b, a), 0);
    ck_assert_int_eq(link(b, c), 0);
    struct tlist l;
    struct rbx_layer_write_opts o = {0};
    write_and_read(d, &o, &l);
    ck_assert_uint_eq(l.n, 3);
    ck_assert(!find(&l, "a")->hardlink);
    ck_assert_str_eq(find(&l, "a")->content, "shared");
    ck_assert(find(&l, "b")->hardlink);
    ck_assert_str_eq(find(&l, "b")->link, "a");
    ck_assert(find(&l, "c")->hardlink);
    ck_assert_str_eq(find(&l, "c")->link, "a");
}
END_TEST

START_TEST(test_writer_overlay_whiteouts_and_opaque)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/upper", top);
    mk_dir(top, "upper", 0755);
    mk_dir(d, "etc", 0755);
    _cleanup_close_ int etc = open_dir(P("%s/etc", d));
    if (mknodat(etc, "gone", S_IFCHR | 0, makedev(0, 0)) < 0) {
        fprintf(stderr, "skip: cannot make a 0/0 device here: %s\n", strerror(errno));
        return;
    }
    mk_dir(d, "opt", 0755);
    mk_file(d, "opt/new", "n", 0644);
    bool xa = can_user_xattr(d);
    if (xa)
        ck_assert_int_eq(setxattr(P("%s/opt", d), "user.overlay.opaque", "y", 1, 0), 0);
    struct tlist l;
    struct rbx_layer_write_opts o = {.overlay = true};
    struct rbx_layer_blob b = write_and_read(d, &o, &l);
    const struct tentry *w = find(&l, "etc/.wh.gone");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->type, AE_IFREG);
    ck_assert_int_eq(w->size, 0);
    ck_assert_ptr_null(find(&l, "etc/gone"));
    ck_assert_uint_eq(b.whiteouts, 1);
    if (xa) {
        ck_assert_ptr_nonnull(find(&l, "opt/.wh..wh..opq"));
        ck_assert_str_eq(find(&l, "opt/")->xattrs, ""); /* the marker is an entry, not an xattr */
        ck_assert_uint_eq(b.opaques, 1);
    }
    /* Not an overlay upper: the same device is a device. */
    struct rbx_layer_write_opts plain = {0};
    write_and_read(d, &plain, &l);
    ck_assert_int_eq(find(&l, "etc/gone")->type, AE_IFCHR);
}
END_TEST

START_TEST(test_writer_refuses_names_read_as_whiteouts)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/tree", top);
    mk_dir(top, "tree", 0755);
    mk_file(d, ".wh.x", "", 0644);
    _cleanup_close_ int rootfd = open_dir(d);
    _cleanup_close_ int fd = open(P("%s/o", top), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct rbx_layer_blob b;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_layer_write_fd(rootfd, NULL, fd, false, &b, &err), 0);
    ck_assert_error(err, RBX_ERR_UNSUPPORTED, "would read as a whiteout");
}
END_TEST

START_TEST(test_writer_excludes_and_sockets)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/tree", top);
    mk_dir(top, "tree", 0755);
    mk_dir(d, "etc", 0755);
    mk_file(d, "etc/hosts", "127.0.0.1 x\n", 0644);
    mk_file(d, "etc/keep", "k", 0644);
    mk_dir(d, "proc", 0555);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", d);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
    char *excl[] = {"etc/hosts", "proc", NULL};
    struct rbx_layer_write_opts o = {.exclude = excl, .normalize = true, .source_date_epoch = 7};
    struct tlist l;
    write_and_read(d, &o, &l);
    ck_assert_uint_eq(l.n, 2);
    ck_assert_str_eq(l.e[0].name, "etc/");
    ck_assert_str_eq(l.e[1].name, "etc/keep");
    /* normalised: excluded and socket gone from the tree, times as in the tar */
    struct stat st;
    ck_assert_int_lt(lstat(P("%s/etc/hosts", d), &st), 0);
    ck_assert_int_lt(lstat(P("%s/proc", d), &st), 0);
    ck_assert_int_lt(lstat(P("%s/sock", d), &st), 0);
    ck_assert_int_eq(lstat(P("%s/etc", d), &st), 0);
    ck_assert_int_eq(st.st_mtim.tv_sec, 7);
    ck_assert_int_eq(st.st_mtim.tv_nsec, 0);
}
END_TEST

/* ---- the published tree is what the verified unpack gives ------------------------------------ */

/* One line per entry of a tree: what a container sees of it. */
static void describe(int dirfd, const char *rel, char **out, size_t *len)
{
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    DIR *dir = fdopendir(fd);
    ck_assert_ptr_nonnull(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    while ((de = readdir(dir)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            names = rbx_xrealloc(names, (n + 1) * sizeof(char *));
            names[n++] = rbx_xstrdup(de->d_name);
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        ck_assert_int_eq(fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW), 0);
        char proc[300], xl[1024] = "";
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, names[i]);
        ssize_t xn = llistxattr(proc, xl, sizeof(xl));
        for (ssize_t k = 0; k < xn; k++)
            if (!xl[k])
                xl[k] = ',';
        if (xn < 0)
            xn = 0;
        xl[xn] = '\0';
        char *line = rbx_xasprintf("%s/%s %o %u:%u %ld %lld %s\n", rel, names[i], st.st_mode,
                                   st.st_uid, st.st_gid, (long)st.st_mtim.tv_sec,
                                   S_ISREG(st.st_mode) ? (long long)st.st_size : 0LL, xl);
        *out = rbx_xrealloc(*out, *len + strlen(line) + 1);
        memcpy(*out + *len, line, strlen(line) + 1);
        *len += strlen(line);
        free(line);
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            _cleanup_free_ char *r = rbx_xasprintf("%s/%s", rel, names[i]);
            describe(sub, r, out, len);
            close(sub);
        }
        free(names[i]);
    }
    free(names);
    closedir(dir);
}

START_TEST(test_writer_published_tree_equals_unpacked_blob)
{
    _cleanup_free_ char *storedir = rbx_xasprintf("%s/store", top);
    _cleanup_(rbx_store_freep) struct rbx_store *s = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_store_open(storedir, &s, &err), 0);
    /* On the store's filesystem, outside runs/ (whose sweep would take an unlocked dir). */
    _cleanup_free_ char *up = rbx_xasprintf("%s/upper", storedir);
    mk_dir(storedir, "upper", 0755);
    mk_dir(up, "usr", 0755);
    mk_dir(up, "usr/bin", 0755);
    mk_file(up, "usr/bin/tool", "#!/bin/sh\necho hi\n", 0755);
    mk_file(up, "usr/bin/other", "x", 0600);
    ck_assert_int_eq(link(P("%s/usr/bin/tool", up), P("%s/usr/bin/alias", up)), 0);
    ck_assert_int_eq(symlinkat("tool", open_dir(P("%s/usr/bin", up)), "sym"), 0);
    bool xa = can_user_xattr(up);
    if (xa) {
        ck_assert_int_eq(setxattr(P("%s/usr/bin/other", up), "user.overlay.impure", "y", 1, 0), 0);
        ck_assert_int_eq(setxattr(P("%s/usr/bin/other", up), "user.note", "n", 1, 0), 0);
    }
    _cleanup_close_ int rootfd = open_dir(up);
    struct rbx_layer_write_opts o = {.overlay = true, .normalize = true, .source_date_epoch = 0};
    struct rbx_layer_blob b;
    ck_assert_msg(rbx_layer_write(s, rootfd, &o, &b, &err) == 0, "%s", err ? err->message : "");
    ck_assert(rbx_store_has_blob(s, b.digest));
    ck_assert_int_eq(rbx_store_adopt_layer(s, &b, up, &err), 0);
    _cleanup_free_ char *published = NULL;
    ck_assert_int_eq(rbx_store_layer_path(s, b.diff_id, &published, &err), 0);

    /* Unpack the blob through the normal verified path and compare. */
    _cleanup_free_ char *ref = rbx_xasprintf("%s/unpacked", top);
    mk_dir(top, "unpacked", 0755);
    _cleanup_close_ int ufd = open_dir(ref);
    int blobfd = rbx_blob_open(rbx_store_blob_dirfd(s), b.digest, &err);
    ck_assert_int_ge(blobfd, 0);
    _cleanup_(rbx_stream_freep) struct rbx_stream *st =
        rbx_stream_new(blobfd, RBX_COMPRESSION_GZIP, b.digest, b.size, 1 << 30, "blob");
    struct rbx_unpack_counts counts = {0};
    struct rbx_applier *ap = rbx_applier_new(ufd, false, &counts);
    ck_assert_msg(rbx_applier_layer(ap, st, b.digest, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_msg(rbx_applier_finish(ap, &err) == 0, "%s", err ? err->message : "");
    rbx_applier_free(ap);
    rbx_unpack_counts_clear(&counts);
    char got[RBX_DIGEST_LEN + 1];
    rbx_stream_diff_id(st, got);
    ck_assert_str_eq(got, b.diff_id);

    _cleanup_close_ int pfd = open_dir(published);
    _cleanup_free_ char *a = NULL, *c = NULL;
    size_t al = 0, cl = 0;
    describe(pfd, "", &a, &al);
    describe(ufd, "", &c, &cl);
    ck_assert_str_eq(a, c);
    if (xa)
        ck_assert_ptr_nonnull(strstr(a, "user.note"));

    /* The same blob through zlib (where libisal.so.2 cannot be loaded) and through ISA-L: the
     * same bytes, the same diff_id. */
    for (int off = 1; off >= 0; off--) {
        rbx_isal_force_off(off);
        int fd = rbx_blob_open(rbx_store_blob_dirfd(s), b.digest, &err);
        ck_assert_int_ge(fd, 0);
        struct rbx_stream *z = rbx_stream_new(fd, RBX_COMPRESSION_GZIP, b.digest, b.size, 1 << 30, "blob");
        const void *buf;
        ssize_t n;
        while ((n = rbx_stream_next(z, &buf, &err)) > 0)
            ;
        ck_assert_msg(n == 0, "%s", err ? err->message : "");
        char id[RBX_DIGEST_LEN + 1];
        rbx_stream_diff_id(z, id);
        ck_assert_str_eq(id, b.diff_id);
        rbx_stream_free(z);
    }
}
END_TEST

static Suite *writer_suite(void)
{
    Suite *s = suite_create("layers_writer");
    TCase *tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_writer_order_times_owners_modes);
    tcase_add_test(tc, test_writer_same_tree_same_digest);
    tcase_add_test(tc, test_writer_pax_only_when_needed_sorted);
    tcase_add_test(tc, test_writer_xattr_allow_list);
    tcase_add_test(tc, test_writer_hardlinks_kept);
    tcase_add_test(tc, test_writer_overlay_whiteouts_and_opaque);
    tcase_add_test(tc, test_writer_refuses_names_read_as_whiteouts);
    tcase_add_test(tc, test_writer_excludes_and_sockets);
    tcase_add_test(tc, test_writer_published_tree_equals_unpacked_blob);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(writer_suite)
