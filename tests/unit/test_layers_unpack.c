/* test_layers_unpack.c — unpack.c, whiteout.c and blob.c through the public API: layouts written
 * here, opened and unpacked into a temp store, the layer trees inspected. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct fx {
    char *top;      /* the test's dir */
    char *layout;   /* top/img */
    char *sentinel; /* top/sentinel: must stay empty */
    char *storedir; /* top/a/b/c/store: deep, so "../" chains have room to climb */
    struct rbx_store *store;
};

static struct fx fx_new(void)
{
    struct fx f = {.top = tl_mkdtemp()};
    f.layout = rbx_xasprintf("%s/img", f.top);
    f.sentinel = rbx_xasprintf("%s/sentinel", f.top);
    f.storedir = rbx_xasprintf("%s/a/b/c/store", f.top);
    ck_assert_int_eq(mkdir(f.sentinel, 0755), 0);
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_store_open(f.storedir, &f.store, &err), 0);
    return f;
}

static void fx_free(struct fx *f)
{
    rbx_store_free(f->store);
    tl_rm_rf(f->top);
    free(f->top);
    free(f->layout);
    free(f->sentinel);
    free(f->storedir);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void assert_store_has_no_layers_or_tmp(struct fx *f)
{
    _cleanup_free_ char *layers = rbx_xasprintf("%s/layers", f->storedir);
    _cleanup_free_ char *tmp = rbx_xasprintf("%s/tmp", f->storedir);
    ck_assert_uint_eq(count_entries(layers), 0);
    ck_assert_uint_eq(count_entries(tmp), 0);
    ck_assert_uint_eq(count_entries(f->sentinel), 0);
}

/* Open oci:<layout>:<tag> and unpack; on success *dirs holds the layer dirs. */
static int open_unpack(struct fx *f, const char *tag, const struct rbx_unpack_opts *opts,
                       char ***dirs, struct rbx_unpack_stats *stats, struct rbx_error **err)
{
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s:%s", f->layout, tag);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    int r = rbx_image_open(f->store, ref, NULL, &img, err);
    if (r < 0)
        return r;
    r = rbx_image_unpack(f->store, img, opts, stats, err);
    if (r < 0)
        return r;
    return dirs ? rbx_image_layer_dirs(f->store, img, dirs, err) : 0;
}

static char *slurp(const char *dir, const char *name)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    char *buf = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_read_file_at(AT_FDCWD, p, 1 << 20, &buf, NULL, &err) == 0, "read %s", p);
    return buf;
}

static struct stat lst(const char *dir, const char *name)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    struct stat st;
    ck_assert_msg(lstat(p, &st) == 0, "lstat %s: %s", p, strerror(errno));
    return st;
}

static bool exists(const char *dir, const char *name)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

static struct tl_layer layer_of(struct tl_tar *t, enum rbx_compression c, char **keep)
{
    size_t len;
    *keep = tl_tar_finish(t, &len);
    return (struct tl_layer){.tar = *keep, .len = len, .compression = c};
}

START_TEST(test_unpack_regular_dir_symlink_hardlink_device)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_dir_ex(t, "etc", 0750, 1111111111);
    tl_tar_file_ex(t, "etc/conf", "hello\n", 0640, 1234, 5678, 1222222222, NULL);
    tl_tar_symlink(t, "etc/link", "/nonexistent/../conf");
    tl_tar_hardlink(t, "etc/hard", "etc/conf");
    tl_tar_file(t, "deep/er/file", "x", 04755);
    tl_tar_chardev(t, "dev/null", 1, 3);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);

    _cleanup_strv_ char **dirs = NULL;
    struct rbx_unpack_stats stats;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, &stats, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_uint_eq(stats.layers_extracted, 1);
    const char *d = dirs[0];
    _cleanup_free_ char *conf = slurp(d, "etc/conf");
    ck_assert_str_eq(conf, "hello\n");
    struct stat st = lst(d, "etc/conf");
    ck_assert_uint_eq(st.st_mode & 07777, 0640);
    ck_assert_uint_eq(st.st_uid, 1234);
    ck_assert_uint_eq(st.st_gid, 5678);
    ck_assert_int_eq(st.st_mtime, 1222222222);
    struct stat hard = lst(d, "etc/hard");
    ck_assert_uint_eq(hard.st_ino, st.st_ino);
    /* Directory metadata lands after its contents were written. */
    struct stat ds = lst(d, "etc");
    ck_assert_uint_eq(ds.st_mode & 07777, 0750);
    ck_assert_int_eq(ds.st_mtime, 1111111111);
    /* Symlinks are kept literally. */
    char buf[256];
    _cleanup_free_ char *lp = rbx_xasprintf("%s/etc/link", d);
    ssize_t n = readlink(lp, buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "/nonexistent/../conf");
    /* Parents missing from the tar are 0755; set-id bits survive the chown. */
    ck_assert_uint_eq(lst(d, "deep").st_mode & 07777, 0755);
    ck_assert_uint_eq(lst(d, "deep/er").st_mode & 07777, 0755);
    ck_assert_uint_eq(lst(d, "deep/er/file").st_mode & 07777, 04755);
    struct stat dev = lst(d, "dev/null");
    if (S_ISCHR(dev.st_mode))
        ck_assert_uint_eq(dev.st_rdev, makedev(1, 3));
    /* meta.json sits beside the tree. */
    _cleanup_free_ char *metadir = rbx_xstrndup(d, strlen(d) - strlen("/rootfs"));
    _cleanup_free_ char *meta = slurp(metadir, "meta.json");
    ck_assert_ptr_nonnull(strstr(meta, "\"diff_id\":\"sha256:"));
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_implied_parents_0755_whatever_the_umask)
{
    umask(077);
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "usr/local/bin/tool", "x", 0755);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_uint_eq(lst(dirs[0], "usr").st_mode & 07777, 0755);
    ck_assert_uint_eq(lst(dirs[0], "usr/local/bin").st_mode & 07777, 0755);
    ck_assert_uint_eq(lst(dirs[0], "usr/local/bin/tool").st_mode & 07777, 0755);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_forged_blob_reported_as_digest_mismatch)
{
    /* A blob altered to carry "../x": the entry is refused, and the error names the cause. */
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "AAAAAAAAAAAAAAAAAAAAAAAAAAA", "x", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_NONE, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    char dg[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(tar, l.len, dg);
    char *hit = memmem(tar, l.len, "AAAAAAAAAAAAAAAAAAAAAAAAAAA", 27);
    ck_assert_ptr_nonnull(hit);
    memcpy(hit, "../../../../../../../../../", 27);
    _cleanup_free_ char *name = rbx_xasprintf("blobs/sha256/%s", rbx_digest_hex(dg));
    tl_write(f.layout, name, tar, l.len);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "digest mismatch");
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_zstd_plain_and_multimember_gzip)
{
    struct fx f = fx_new();
    _cleanup_free_ char *t1 = NULL, *t2 = NULL, *t3 = NULL;
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "zstd.txt", "z", 0644);
    struct tl_layer ls[3];
    ls[0] = layer_of(t, RBX_COMPRESSION_ZSTD, &t1);
    t = tl_tar_new();
    tl_tar_file(t, "plain.txt", "p", 0644);
    ls[1] = layer_of(t, RBX_COMPRESSION_NONE, &t2);
    t = tl_tar_new();
    tl_tar_file(t, "multi.txt", "m", 0644);
    ls[2] = layer_of(t, RBX_COMPRESSION_GZIP, &t3);
    /* Two gzip members, split mid-tar: one stream to the reader. */
    size_t half = ls[2].len / 2, n1, n2;
    _cleanup_free_ char *g1 = tl_gzip(ls[2].tar, half, &n1);
    _cleanup_free_ char *g2 = tl_gzip(ls[2].tar + half, ls[2].len - half, &n2);
    _cleanup_free_ char *both = rbx_xmalloc(n1 + n2);
    memcpy(both, g1, n1);
    memcpy(both + n1, g2, n2);
    ls[2].blob = both;
    ls[2].blob_len = n1 + n2;
    tl_image(f.layout, "latest", ls, 3, NULL, NULL);

    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert(exists(dirs[0], "zstd.txt"));
    ck_assert(exists(dirs[1], "plain.txt"));
    ck_assert(exists(dirs[2], "multi.txt"));
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_whiteout_and_opaque_in_overlay_form)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "gone", "x", 0644);
    tl_tar_file(t, "keep/old", "x", 0644);
    _cleanup_free_ char *t1 = NULL, *t2 = NULL;
    struct tl_layer ls[2];
    ls[0] = layer_of(t, RBX_COMPRESSION_GZIP, &t1);
    t = tl_tar_new();
    tl_tar_file(t, ".wh.gone", "", 0644);
    tl_tar_dir(t, "keep", 0755);
    tl_tar_file(t, "keep/.wh..wh..opq", "", 0644);
    tl_tar_file(t, "keep/new", "n", 0644);
    tl_tar_file(t, "sub/.wh.again", "", 0644);
    tl_tar_dir(t, "sub/again", 0755); /* whited out, then made again: opaque */
    ls[1] = layer_of(t, RBX_COMPRESSION_GZIP, &t2);
    tl_image(f.layout, "latest", ls, 2, NULL, NULL);

    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    struct stat wh = lst(dirs[1], "gone");
    ck_assert(S_ISCHR(wh.st_mode));
    ck_assert_uint_eq(wh.st_rdev, makedev(0, 0));
    ck_assert(!exists(dirs[1], ".wh.gone"));
    ck_assert(!exists(dirs[1], "keep/.wh..wh..opq"));
    char v[8] = {0};
    _cleanup_free_ char *keep = rbx_xasprintf("%s/keep", dirs[1]);
    ck_assert_int_eq(getxattr(keep, "user.overlay.opaque", v, sizeof(v)), 1);
    ck_assert_int_eq(v[0], 'y');
    _cleanup_free_ char *again = rbx_xasprintf("%s/sub/again", dirs[1]);
    ck_assert_int_eq(getxattr(again, "user.overlay.opaque", v, sizeof(v)), 1);
    ck_assert(S_ISDIR(lst(dirs[1], "sub/again").st_mode));
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_duplicate_entries_later_wins)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "x", "one", 0644);
    tl_tar_file(t, "x", "two", 0600);
    tl_tar_dir(t, "d", 0755);
    tl_tar_file(t, "d/f", "in d", 0644);
    tl_tar_file(t, "d", "now a file", 0644);
    tl_tar_file(t, "e", "a file", 0644);
    tl_tar_dir(t, "e", 0700);
    tl_tar_dir(t, "m", 0755);
    tl_tar_file(t, "m/kept", "k", 0644);
    tl_tar_dir(t, "m", 0711); /* a dir over a dir merges, later metadata wins */
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_NONE, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    _cleanup_free_ char *x = slurp(dirs[0], "x"), *d = slurp(dirs[0], "d");
    ck_assert_str_eq(x, "two");
    ck_assert_uint_eq(lst(dirs[0], "x").st_mode & 07777, 0600);
    ck_assert_str_eq(d, "now a file");
    ck_assert(S_ISDIR(lst(dirs[0], "e").st_mode));
    ck_assert_uint_eq(lst(dirs[0], "e").st_mode & 07777, 0700);
    ck_assert(exists(dirs[0], "m/kept"));
    ck_assert_uint_eq(lst(dirs[0], "m").st_mode & 07777, 0711);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_deferred_dir_mode_read_only_dir)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_dir_ex(t, "ro", 0555, 1300000000);
    tl_tar_file(t, "ro/f", "f", 0444);
    tl_tar_dir_ex(t, "ro/sub", 0500, 1300000001);
    tl_tar_file(t, "ro/sub/g", "g", 0444);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_uint_eq(lst(dirs[0], "ro").st_mode & 07777, 0555);
    ck_assert_int_eq(lst(dirs[0], "ro").st_mtime, 1300000000);
    ck_assert_uint_eq(lst(dirs[0], "ro/sub").st_mode & 07777, 0500);
    ck_assert_int_eq(lst(dirs[0], "ro/sub").st_mtime, 1300000001);
    ck_assert(exists(dirs[0], "ro/sub/g"));
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_trailing_bytes_count_in_diff_id)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "a", "a", 0644);
    size_t len;
    _cleanup_free_ char *tar = tl_tar_finish(t, &len);
    tar = rbx_xrealloc(tar, len + 100);
    memset(tar + len, 'J', 100);
    struct tl_layer l = {.tar = tar, .len = len + 100, .compression = RBX_COMPRESSION_GZIP};
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, NULL, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_blob_digest_mismatch_leaves_nothing)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "a", "some content to corrupt", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    l.corrupt_blob = true;
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "digest mismatch (got sha256:");
    ck_assert_ptr_nonnull(strstr(err->message, "layer sha256:"));
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_truncated_gzip_leaves_nothing)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "a", "content", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    l.truncate_blob = true; /* the descriptor describes the truncated blob: only gzip can tell */
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "truncated gzip stream");
    ck_assert_ptr_nonnull(strstr(err->message, "layer sha256:"));
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_diff_id_mismatch_leaves_nothing)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "a", "content", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_ZSTD, &tar);
    l.bad_diff_id = true;
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "diff_id mismatch");
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_blob_longer_than_descriptor_refused)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "a", "content", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_NONE, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    /* Append to the stored blob: same name, more bytes than its descriptor says. */
    char dg[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(tar, l.len, dg);
    _cleanup_free_ char *p = rbx_xasprintf("%s/blobs/sha256/%s", f.layout, rbx_digest_hex(dg));
    FILE *fp = fopen(p, "a");
    fputs("more", fp);
    fclose(fp);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "longer than");
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_expanded_size_capped)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    _cleanup_free_ char *big = rbx_xmalloc(200001);
    memset(big, 'a', 200000);
    big[200000] = '\0';
    tl_tar_file(t, "big", big, 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    struct rbx_unpack_opts opts = {.max_layer_bytes = 100000};
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", &opts, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "expands to more than");
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_dotdot_entry_escape_refused)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "ok", "fine", 0644);
    tl_tar_file(t, "../../../../../../../sentinel/x", "escaped", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_ESCAPE,
                    "entry \"../../../../../../../sentinel/x\" escapes the rootfs");
    ck_assert_ptr_nonnull(strstr(err->message, "layer sha256:"));
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_absolute_names_contained)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    _cleanup_free_ char *abs = rbx_xasprintf("%s/x", f.sentinel);
    tl_tar_file(t, abs, "inside", 0644);
    tl_tar_file(t, "/./a/../b", "b", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert(exists(dirs[0], abs + 1));
    ck_assert(exists(dirs[0], "b"));
    ck_assert_uint_eq(count_entries(f.sentinel), 0);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_symlink_escape_through_link_contained)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_symlink(t, "root", "/");
    tl_tar_symlink(t, "up", "../../../../../../../../..");
    _cleanup_free_ char *via_root = rbx_xasprintf("root%s/x", f.sentinel);
    _cleanup_free_ char *via_up = rbx_xasprintf("up%s/y", f.sentinel);
    tl_tar_file(t, via_root, "contained", 0644);
    tl_tar_file(t, via_up, "contained", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    /* Both landed inside the layer root, none in the real sentinel. */
    _cleanup_free_ char *in = rbx_xasprintf("%s/x", f.sentinel + 1);
    _cleanup_free_ char *in2 = rbx_xasprintf("%s/y", f.sentinel + 1);
    ck_assert(exists(dirs[0], in));
    ck_assert(exists(dirs[0], in2));
    ck_assert_uint_eq(count_entries(f.sentinel), 0);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_symlink_escape_with_walker_contained)
{
    /* The same attack with openat2 unavailable: the component walker must contain it too. */
    extern void rbx_fs_force_walker(bool on);
    rbx_fs_force_walker(true);
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_symlink(t, "root", "/");
    _cleanup_free_ char *via_root = rbx_xasprintf("root%s/x", f.sentinel);
    tl_tar_file(t, via_root, "contained", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_NONE, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_uint_eq(count_entries(f.sentinel), 0);
    fx_free(&f);
    rbx_fs_force_walker(false);
}
END_TEST

START_TEST(test_unpack_hardlink_escape_refused)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_hardlink(t, "pw", "../../etc/passwd");
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_ESCAPE, "hardlink target \"../../etc/passwd\" escapes the rootfs");
    assert_store_has_no_layers_or_tmp(&f);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_hardlink_outside_layer_not_followed)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    /* An absolute target and one through a symlink to "/": both resolve inside the layer,
     * where no such file was written, so neither can reach the host's file. */
    tl_tar_symlink(t, "root", "/");
    _cleanup_free_ char *target = rbx_xasprintf("root%s/secret", f.sentinel);
    tl_tar_hardlink(t, "h", target);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_free_ char *secret = rbx_xasprintf("%s/secret", f.sentinel);
    tl_write(f.sentinel, "secret", "s", 1);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(&f, "latest", NULL, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "is in no layer");
    struct stat st;
    ck_assert_int_eq(stat(secret, &st), 0);
    ck_assert_uint_eq(st.st_nlink, 1);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_overlay_xattrs_from_tar_dropped)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    const char *const xattrs[] = {"trusted.overlay.opaque=y", "user.overlay.whiteout=y",
                                  "user.keep=1", NULL};
    tl_tar_file_ex(t, "f", "x", 0644, 0, 0, 1000000000, xattrs);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(&f, "latest", NULL, &dirs, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    _cleanup_free_ char *p = rbx_xasprintf("%s/f", dirs[0]);
    char v[8];
    ck_assert_int_eq(getxattr(p, "user.keep", v, sizeof(v)), 1);
    ck_assert_int_lt(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 0);
    ck_assert_int_lt(getxattr(p, "user.overlay.whiteout", v, sizeof(v)), 0);
    fx_free(&f);
}
END_TEST

START_TEST(test_unpack_second_run_uses_cache)
{
    struct fx f = fx_new();
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "a", "a", 0644);
    _cleanup_free_ char *tar = NULL;
    struct tl_layer l = layer_of(t, RBX_COMPRESSION_GZIP, &tar);
    tl_image(f.layout, "latest", &l, 1, NULL, NULL);
    struct rbx_unpack_stats st;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(open_unpack(&f, "latest", NULL, NULL, &st, &err), 0);
    ck_assert_uint_eq(st.layers_extracted, 1);
    ck_assert_int_eq(open_unpack(&f, "latest", NULL, NULL, &st, &err), 0);
    ck_assert_uint_eq(st.layers_extracted, 0);
    ck_assert_uint_eq(st.layers_cached, 1);
    fx_free(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_unpack");
    TCase *tc = tcase_create("unpack");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unpack_regular_dir_symlink_hardlink_device);
    tcase_add_test(tc, test_unpack_implied_parents_0755_whatever_the_umask);
    tcase_add_test(tc, test_unpack_forged_blob_reported_as_digest_mismatch);
    tcase_add_test(tc, test_unpack_zstd_plain_and_multimember_gzip);
    tcase_add_test(tc, test_unpack_whiteout_and_opaque_in_overlay_form);
    tcase_add_test(tc, test_unpack_duplicate_entries_later_wins);
    tcase_add_test(tc, test_unpack_deferred_dir_mode_read_only_dir);
    tcase_add_test(tc, test_unpack_trailing_bytes_count_in_diff_id);
    tcase_add_test(tc, test_unpack_blob_digest_mismatch_leaves_nothing);
    tcase_add_test(tc, test_unpack_truncated_gzip_leaves_nothing);
    tcase_add_test(tc, test_unpack_diff_id_mismatch_leaves_nothing);
    tcase_add_test(tc, test_unpack_blob_longer_than_descriptor_refused);
    tcase_add_test(tc, test_unpack_expanded_size_capped);
    tcase_add_test(tc, test_unpack_dotdot_entry_escape_refused);
    tcase_add_test(tc, test_unpack_absolute_names_contained);
    tcase_add_test(tc, test_unpack_symlink_escape_through_link_contained);
    tcase_add_test(tc, test_unpack_symlink_escape_with_walker_contained);
    tcase_add_test(tc, test_unpack_hardlink_escape_refused);
    tcase_add_test(tc, test_unpack_hardlink_outside_layer_not_followed);
    tcase_add_test(tc, test_unpack_overlay_xattrs_from_tar_dropped);
    tcase_add_test(tc, test_unpack_second_run_uses_cache);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
