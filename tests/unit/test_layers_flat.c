/* test_layers_flat.c — flat.c and the flat form of unpack.c: layouts written here, flattened
 * into a temp dir as `reprobox unpack` does, the tree inspected; hostile layers contained with a
 * sentinel dir outside proving nothing leaked. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct fx {
    char *top;      /* the test's dir */
    char *layout;   /* top/img */
    char *sentinel; /* top/sentinel: holds "secret", must stay as it is */
    char *dest;     /* top/a/b/c/dest: deep, so "../" chains have room to climb */
};

static struct fx fx_new(void)
{
    struct fx f = {.top = tl_mkdtemp()};
    f.layout = rbx_xasprintf("%s/img", f.top);
    f.sentinel = rbx_xasprintf("%s/sentinel", f.top);
    f.dest = rbx_xasprintf("%s/a/b/c/dest", f.top);
    tl_write(f.sentinel, "secret", "s", 1);
    _cleanup_free_ char *c = rbx_xasprintf("%s/a/b/c", f.top);
    tl_write(c, ".keep", "", 0);
    return f;
}

static void fx_free(struct fx *f)
{
    tl_rm_rf(f->top);
    free(f->top);
    free(f->layout);
    free(f->sentinel);
    free(f->dest);
}

static void assert_sentinel_intact(struct fx *f)
{
    DIR *d = opendir(f->sentinel);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    ck_assert_uint_eq(n, 1);
    _cleanup_free_ char *p = rbx_xasprintf("%s/secret", f->sentinel);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_size, 1);
    ck_assert_uint_eq(st.st_nlink, 1);
    /* Nothing appeared next to the layout or the dest either. */
    _cleanup_free_ char *c = rbx_xasprintf("%s/a/b/c", f->top);
    d = opendir(c);
    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)))
        ck_assert_msg(strncmp(de->d_name, ".dest.reprobox-", 15) != 0, "staging dir %s left",
                      de->d_name);
    closedir(d);
}

static struct tl_layer layer_of(struct tl_tar *t, char **keep)
{
    size_t len;
    *keep = tl_tar_finish(t, &len);
    return (struct tl_layer){.tar = *keep, .len = len, .compression = RBX_COMPRESSION_GZIP};
}

/* Open oci:<layout>:latest and flatten it into f->dest. */
static int unpack(struct fx *f, struct rbx_flat_stats *stats, struct rbx_error **err)
{
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s:latest", f->layout);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    int r = rbx_image_open(NULL, ref, NULL, &img, err);
    if (r < 0)
        return r;
    return rbx_image_unpack_to(img, f->dest, NULL, stats, err);
}

static void unpack_ok(struct fx *f)
{
    struct rbx_error *err = NULL;
    ck_assert_msg(unpack(f, NULL, &err) == 0, "%s", err ? err->message : "");
}

static bool exists(const char *dir, const char *name)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

static struct stat lst(const char *dir, const char *name)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    struct stat st;
    ck_assert_msg(lstat(p, &st) == 0, "lstat %s: %s", p, strerror(errno));
    return st;
}

static char *slurp(const char *dir, const char *name)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    char *buf = NULL;
    ck_assert_msg(rbx_read_file_at(AT_FDCWD, p, 1 << 24, &buf, NULL, NULL) == 0, "read %s", p);
    return buf;
}

/* No whiteout file, whiteout device or overlay xattr anywhere below dir. */
static void assert_no_overlay_markers(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char v[8];
    ck_assert_int_lt(getxattr(dir, "user.overlay.opaque", v, sizeof(v)), 0);
    ck_assert_int_lt(getxattr(dir, "trusted.overlay.opaque", v, sizeof(v)), 0);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        ck_assert_msg(strncmp(de->d_name, ".wh.", 4) != 0, "%s/%s left", dir, de->d_name);
        struct stat st = lst(dir, de->d_name);
        ck_assert_msg(!(S_ISCHR(st.st_mode) && st.st_rdev == 0), "whiteout device %s/%s", dir,
                      de->d_name);
        if (S_ISDIR(st.st_mode)) {
            _cleanup_free_ char *sub = rbx_xasprintf("%s/%s", dir, de->d_name);
            assert_no_overlay_markers(sub);
        }
    }
    closedir(d);
}

START_TEST(test_flat_whiteouts_and_opaque_dirs_carried_out)
{
    struct fx f = fx_new();
    struct tl_tar *t1 = tl_tar_new();
    tl_tar_file(t1, "etc/a", "a", 0644);
    tl_tar_file(t1, "etc/b", "b", 0644);
    tl_tar_file(t1, "opt/data/a", "a", 0644);
    tl_tar_file(t1, "opt/data/sub/x", "x", 0644);
    tl_tar_file(t1, "gone/sub/x", "x", 0644);
    struct tl_tar *t2 = tl_tar_new();
    tl_tar_file(t2, "etc/.wh.a", "", 0644);
    tl_tar_dir(t2, "opt/data", 0755);
    tl_tar_file(t2, "opt/data/.wh..wh..opq", "", 0644);
    tl_tar_file(t2, "opt/data/c", "c", 0644);
    tl_tar_file(t2, ".wh.gone", "", 0644);
    tl_tar_file(t2, "nowhere/.wh.x", "", 0644); /* a parent that is not there: nothing to do */
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2)};
    tl_image(f.layout, "latest", l, 2, NULL, NULL);
    unpack_ok(&f);
    ck_assert(!exists(f.dest, "etc/a"));
    ck_assert(exists(f.dest, "etc/b"));
    ck_assert(!exists(f.dest, "opt/data/a"));
    ck_assert(!exists(f.dest, "opt/data/sub"));
    ck_assert(exists(f.dest, "opt/data/c"));
    ck_assert(!exists(f.dest, "gone"));
    ck_assert(!exists(f.dest, "nowhere"));
    assert_no_overlay_markers(f.dest);
    assert_sentinel_intact(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_whiteout_and_opaque_after_own_entries_keep_them)
{
    /* A layer's whiteouts are for the layers below, wherever they sit in the tar. */
    struct fx f = fx_new();
    struct tl_tar *t1 = tl_tar_new();
    tl_tar_file(t1, "x", "old", 0644);
    tl_tar_file(t1, "d/old", "o", 0644);
    tl_tar_file(t1, "o/old", "o", 0644);
    tl_tar_file(t1, "o/sub/old", "o", 0644);
    struct tl_tar *t2 = tl_tar_new();
    tl_tar_file(t2, "x", "new", 0644);
    tl_tar_file(t2, ".wh.x", "", 0644);
    tl_tar_file(t2, "d/new", "n", 0644);
    tl_tar_file(t2, ".wh.d", "", 0644);
    tl_tar_file(t2, "o/new", "n", 0644);
    tl_tar_file(t2, "o/sub/new", "n", 0644);
    tl_tar_file(t2, "o/.wh..wh..opq", "", 0644);
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2)};
    tl_image(f.layout, "latest", l, 2, NULL, NULL);
    unpack_ok(&f);
    _cleanup_free_ char *x = slurp(f.dest, "x");
    ck_assert_str_eq(x, "new");
    ck_assert(exists(f.dest, "d/new"));
    ck_assert(!exists(f.dest, "d/old"));
    ck_assert(exists(f.dest, "o/new"));
    ck_assert(exists(f.dest, "o/sub/new"));
    ck_assert(!exists(f.dest, "o/old"));
    ck_assert(!exists(f.dest, "o/sub/old"));
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_hardlink_to_lower_layer_is_real)
{
    struct fx f = fx_new();
    struct tl_tar *t1 = tl_tar_new();
    tl_tar_file(t1, "usr/bin/tool", "tool", 0755);
    struct tl_tar *t2 = tl_tar_new();
    tl_tar_hardlink(t2, "usr/bin/alias", "usr/bin/tool");
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2)};
    tl_image(f.layout, "latest", l, 2, NULL, NULL);
    unpack_ok(&f);
    struct stat a = lst(f.dest, "usr/bin/tool"), b = lst(f.dest, "usr/bin/alias");
    ck_assert_uint_eq(a.st_ino, b.st_ino);
    ck_assert_uint_eq(a.st_nlink, 2);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_hardlink_to_symlink_links_the_symlink)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_symlink(t, "s", "/etc/target");
    tl_tar_hardlink(t, "h", "s");
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    unpack_ok(&f);
    struct stat s = lst(f.dest, "s"), h = lst(f.dest, "h");
    ck_assert(S_ISLNK(h.st_mode));
    ck_assert_uint_eq(s.st_ino, h.st_ino);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_sparse_file_keeps_holes)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    const size_t segs[] = {4096, 100, 1 << 20, 4096};
    tl_tar_sparse(t, "sparse", 4 << 20, segs, 2); /* ends in a hole */
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    unpack_ok(&f);
    _cleanup_free_ char *p = rbx_xasprintf("%s/sparse", f.dest);
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, p, 8 << 20, &data, &len, NULL), 0);
    ck_assert_uint_eq(len, 4 << 20);
    for (size_t i = 0; i < len; i++) {
        char want = (i >= 4096 && i < 4196)                    ? 'a'
                    : (i >= (1 << 20) && i < (1 << 20) + 4096) ? 'b'
                                                               : 0;
        if (data[i] != want)
            ck_abort_msg("byte %zu: %d, want %d", i, data[i], want);
    }
    free(data);
    struct stat st = lst(f.dest, "sparse");
    ck_assert_int_lt(st.st_blocks * 512, 1 << 20); /* holes stay holes */
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_pax_and_gnu_long_names)
{
    struct fx f = fx_new();
    char comp[201];
    memset(comp, 'n', 200);
    comp[200] = '\0';
    _cleanup_free_ char *pax = rbx_xasprintf("pax/%s/%s/file", comp, comp);
    _cleanup_free_ char *gnu = rbx_xasprintf("gnu/%s/%s/file", comp, comp);
    _cleanup_free_ char *gnulink = rbx_xasprintf("gnu/%s/link", comp);
    struct tl_tar *t1 = tl_tar_new();
    tl_tar_file(t1, pax, "p", 0644);
    struct tl_tar *t2 = tl_tar_new_format(ARCHIVE_FORMAT_TAR_GNUTAR);
    tl_tar_file(t2, gnu, "g", 0644);
    tl_tar_symlink(t2, gnulink, pax); /* a long link target: GNU 'K' header */
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2)};
    tl_image(f.layout, "latest", l, 2, NULL, NULL);
    unpack_ok(&f);
    _cleanup_free_ char *a = slurp(f.dest, pax), *g = slurp(f.dest, gnu);
    ck_assert_str_eq(a, "p");
    ck_assert_str_eq(g, "g");
    _cleanup_free_ char *lp = rbx_xasprintf("%s/%s", f.dest, gnulink);
    char buf[1024];
    ssize_t n = readlink(lp, buf, sizeof(buf) - 1);
    ck_assert_int_eq(n, (ssize_t)strlen(pax));
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_name_over_path_max_refused_in_one_line)
{
    struct fx f = fx_new();
    _cleanup_free_ char *name = rbx_xmalloc(70001);
    for (size_t i = 0; i < 70000; i++)
        name[i] = (i % 100 == 99) ? '/' : 'x';
    name[70000] = '\0';
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, name, "x", 0644);
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(unpack(&f, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "limit 4096");
    ck_assert_ptr_null(strchr(err->message, '\n'));
    ck_assert_uint_lt(strlen(err->message), 600);
    ck_assert(!exists(f.dest, ""));
    assert_sentinel_intact(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_symlink_escape_across_layers_contained)
{
    /* Layer 1 plants links out (absolute and by ".."); layer 2 writes through them. Both
     * resolve inside the rootfs, where the files land. */
    struct fx f = fx_new();
    struct tl_tar *t1 = tl_tar_new();
    tl_tar_symlink(t1, "abs", f.sentinel);
    tl_tar_symlink(t1, "rel", "../../../../../../../../../..");
    struct tl_tar *t2 = tl_tar_new();
    tl_tar_file(t2, "abs/planted", "p", 0644);
    _cleanup_free_ char *through = rbx_xasprintf("rel%s/planted2", f.sentinel);
    tl_tar_file(t2, through, "p", 0644);
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2)};
    tl_image(f.layout, "latest", l, 2, NULL, NULL);
    unpack_ok(&f);
    assert_sentinel_intact(&f);
    _cleanup_free_ char *in1 = rbx_xasprintf("%s/planted", f.sentinel + 1);
    _cleanup_free_ char *in2 = rbx_xasprintf("%s/planted2", f.sentinel + 1);
    ck_assert(exists(f.dest, in1));
    ck_assert(exists(f.dest, in2));
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_whiteout_and_opaque_through_symlink_stay_inside)
{
    struct fx f = fx_new();
    struct tl_tar *t1 = tl_tar_new();
    tl_tar_symlink(t1, "out", f.sentinel);
    tl_tar_symlink(t1, "up", "../../../../../../../..");
    struct tl_tar *t2 = tl_tar_new();
    tl_tar_file(t2, "out/.wh.secret", "", 0644);
    tl_tar_file(t2, "out/.wh..wh..opq", "", 0644);
    _cleanup_free_ char *through = rbx_xasprintf("up%s/.wh..wh..opq", f.sentinel);
    tl_tar_file(t2, through, "", 0644);
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2)};
    tl_image(f.layout, "latest", l, 2, NULL, NULL);
    unpack_ok(&f);
    assert_sentinel_intact(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_whiteout_out_of_root_refused)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "../../../sentinel/.wh.secret", "", 0644);
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(unpack(&f, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_ESCAPE, "escapes the rootfs");
    ck_assert(!exists(f.dest, ""));
    assert_sentinel_intact(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_dest_must_be_absent_or_empty)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "f", "x", 0644);
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    tl_write(f.dest, "old", "o", 1);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(unpack(&f, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_USAGE, "is not empty");
    ck_assert(exists(f.dest, "old"));
    /* An empty dir is taken. */
    _cleanup_free_ char *old = rbx_xasprintf("%s/old", f.dest);
    ck_assert_int_eq(unlink(old), 0);
    unpack_ok(&f);
    ck_assert(exists(f.dest, "f"));
    ck_assert_uint_eq(lst(f.dest, "").st_mode & 07777, 0755);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_failed_unpack_leaves_nothing)
{
    struct fx f = fx_new();
    struct tl_tar *t1 = tl_tar_new(), *t2 = tl_tar_new();
    tl_tar_file(t1, "f", "x", 0644);
    tl_tar_file(t2, "g", "y", 0644);
    _cleanup_free_ char *b1 = NULL, *b2 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2)};
    l[1].truncate_blob = true;
    tl_image(f.layout, "latest", l, 2, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(unpack(&f, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "truncated gzip stream");
    ck_assert(!exists(f.dest, ""));
    assert_sentinel_intact(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_xattrs_allow_list)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    const char *const x[] = {"user.keep=1",           "trusted.keep=1",
                             "user.overlay.opaque=y", "trusted.overlay.whiteout=y",
                             "security.selinux=bad",  NULL};
    tl_tar_file_ex(t, "f", "x", 0644, 0, 0, 1000000000, x);
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    struct rbx_flat_stats st = {0};
    struct rbx_error *err = NULL;
    ck_assert_msg(unpack(&f, &st, &err) == 0, "%s", err ? err->message : "");
    _cleanup_free_ char *p = rbx_xasprintf("%s/f", f.dest);
    char v[8];
    ck_assert_int_eq(getxattr(p, "user.keep", v, sizeof(v)), 1);
    ck_assert_int_lt(getxattr(p, "user.overlay.opaque", v, sizeof(v)), 0);
    ck_assert_int_lt(getxattr(p, "trusted.overlay.whiteout", v, sizeof(v)), 0);
    if (geteuid() == 0 && getxattr(p, "trusted.keep", v, sizeof(v)) != 1)
        ck_assert_uint_ge(st.skipped_xattrs, 4); /* trusted.* refused here: counted */
    ck_assert_uint_ge(st.skipped_xattrs, 3);
    rbx_flat_stats_clear(&st);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_dir_fixup_not_applied_through_a_later_symlink)
{
    /* "a/b" is made 0700, then "a" becomes a link to "c": the fixup for "a/b" must not land on
     * "c/b" (a different directory, reached through the link). */
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_dir(t, "c/b", 0751);
    tl_tar_dir(t, "a/b", 0700);
    tl_tar_symlink(t, "a", "c");
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    unpack_ok(&f);
    ck_assert(S_ISLNK(lst(f.dest, "a").st_mode));
    ck_assert_uint_eq(lst(f.dest, "c/b").st_mode & 07777, 0751);
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_types_replace_each_other_across_layers)
{
    struct fx f = fx_new();
    struct tl_tar *t1 = tl_tar_new(), *t2 = tl_tar_new(), *t3 = tl_tar_new();
    tl_tar_file(t1, "x/inner", "i", 0644);
    tl_tar_file(t1, "p", "file", 0644);
    tl_tar_file(t2, "x", "now a file", 0600);
    tl_tar_file(t2, "p/q", "under a former file", 0644); /* no "p/" entry: implied */
    tl_tar_dir(t3, "x", 0711);
    tl_tar_file(t3, "x/again", "a", 0644);
    _cleanup_free_ char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    struct tl_layer l[] = {layer_of(t1, &b1), layer_of(t2, &b2), layer_of(t3, &b3)};
    tl_image(f.layout, "latest", l, 3, NULL, NULL);
    unpack_ok(&f);
    ck_assert_uint_eq(lst(f.dest, "x").st_mode & 07777, 0711);
    ck_assert(!exists(f.dest, "x/inner"));
    ck_assert(exists(f.dest, "x/again"));
    ck_assert(S_ISDIR(lst(f.dest, "p").st_mode));
    ck_assert_uint_eq(lst(f.dest, "p").st_mode & 07777, 0755);
    ck_assert(exists(f.dest, "p/q"));
    fx_free(&f);
}
END_TEST

START_TEST(test_flat_root_entry_modes_devices_setuid)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_dir(t, "./", 0750);
    tl_tar_file(t, "bin/su", "su", 04755);
    tl_tar_chardev(t, "dev/null", 1, 3);
    tl_tar_fifo(t, "run/fifo");
    _cleanup_free_ char *b = NULL;
    struct tl_layer l = layer_of(t, &b);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    struct rbx_flat_stats st = {0};
    struct rbx_error *err = NULL;
    ck_assert_msg(unpack(&f, &st, &err) == 0, "%s", err ? err->message : "");
    ck_assert_uint_eq(lst(f.dest, "").st_mode & 07777, 0750);
    ck_assert_uint_eq(lst(f.dest, "bin/su").st_mode & 07777, 04755);
    struct stat dev = lst(f.dest, "dev/null");
    if (st.skipped_devices == 0) {
        ck_assert(S_ISCHR(dev.st_mode));
        ck_assert_uint_eq(dev.st_rdev, makedev(1, 3));
        ck_assert(S_ISFIFO(lst(f.dest, "run/fifo").st_mode));
    }
    rbx_flat_stats_clear(&st);
    fx_free(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_flat");
    TCase *tc = tcase_create("flat");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_flat_whiteouts_and_opaque_dirs_carried_out);
    tcase_add_test(tc, test_flat_whiteout_and_opaque_after_own_entries_keep_them);
    tcase_add_test(tc, test_flat_hardlink_to_lower_layer_is_real);
    tcase_add_test(tc, test_flat_hardlink_to_symlink_links_the_symlink);
    tcase_add_test(tc, test_flat_sparse_file_keeps_holes);
    tcase_add_test(tc, test_flat_pax_and_gnu_long_names);
    tcase_add_test(tc, test_flat_name_over_path_max_refused_in_one_line);
    tcase_add_test(tc, test_flat_symlink_escape_across_layers_contained);
    tcase_add_test(tc, test_flat_whiteout_and_opaque_through_symlink_stay_inside);
    tcase_add_test(tc, test_flat_whiteout_out_of_root_refused);
    tcase_add_test(tc, test_flat_dest_must_be_absent_or_empty);
    tcase_add_test(tc, test_flat_failed_unpack_leaves_nothing);
    tcase_add_test(tc, test_flat_xattrs_allow_list);
    tcase_add_test(tc, test_flat_dir_fixup_not_applied_through_a_later_symlink);
    tcase_add_test(tc, test_flat_types_replace_each_other_across_layers);
    tcase_add_test(tc, test_flat_root_entry_modes_devices_setuid);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
