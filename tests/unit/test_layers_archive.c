/* test_layers_archive.c — docker_archive.c, oci_archive.c and import.c: archives written here
 * the way `docker save` and `skopeo copy ... oci-archive:` lay them out, imported into a store. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static char *top, *storedir;
static struct rbx_store *store;

static void setup(void)
{
    top = tl_mkdtemp();
    storedir = rbx_xasprintf("%s/store", top);
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_store_open(storedir, &store, &err), 0);
}

static void teardown(void)
{
    store = rbx_store_free(store);
    tl_rm_rf(top);
    free(top);
    free(storedir);
}

static size_t count_dir(const char *sub)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", storedir, sub);
    DIR *d = opendir(p);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *layer_tar(const char *name, size_t *len)
{
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, name, name, 0644);
    return tl_tar_finish(t, len);
}

/* A docker save archive: image i has tag tags[i] (NULL: untagged) and layers "lay<i>" plus a
 * shared base layer stored once and linked from the second image. */
static char *docker_archive(const char *const *tags, size_t n, bool bad_diff_id, bool gzip_all)
{
    struct tl_tar *t = tl_tar_new();
    size_t blen;
    _cleanup_free_ char *base = layer_tar("base", &blen);
    char base_id[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(base, blen, base_id);
    /* The base layer is stored gzip-compressed: docker-archive readers sniff. */
    size_t gzlen;
    _cleanup_free_ char *gz = tl_gzip(base, blen, &gzlen);
    tl_tar_file_bin(t, "base/layer.tar", gz, gzlen);
    json_t *manifest = json_array();
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *fname = rbx_xasprintf("own%zu", i);
        size_t llen;
        _cleanup_free_ char *lt = layer_tar(fname, &llen);
        char lid[RBX_DIGEST_LEN + 1];
        rbx_sha256_buf(lt, llen, lid);
        _cleanup_free_ char *lpath = rbx_xasprintf("%s/layer.tar", rbx_digest_hex(lid));
        tl_tar_file_bin(t, lpath, lt, llen);
        _cleanup_free_ char *alias = rbx_xasprintf("alias%zu/layer.tar", i);
        tl_tar_symlink(t, alias, "../base/layer.tar");
        char bogus[] = "sha256:00000000000000000000000000000000000000000000000000000000000000ff";
        char *ids[] = {base_id, bad_diff_id ? bogus : lid, NULL};
        _cleanup_free_ char *cfg = tl_config_json(ids);
        char cdg[RBX_DIGEST_LEN + 1];
        rbx_sha256_buf(cfg, strlen(cfg), cdg);
        _cleanup_free_ char *cpath = rbx_xasprintf("%s.json", rbx_digest_hex(cdg));
        tl_tar_file_bin(t, cpath, cfg, strlen(cfg));
        json_t *img = json_pack("{s:s, s:[s, s]}", "Config", cpath, "Layers", alias, lpath);
        json_object_set_new(img, "RepoTags", tags[i] ? json_pack("[s]", tags[i]) : json_null());
        json_array_append_new(manifest, img);
    }
    _cleanup_free_ char *mtext = json_dumps(manifest, JSON_COMPACT);
    json_decref(manifest);
    tl_tar_file_bin(t, "manifest.json", mtext, strlen(mtext));
    size_t len;
    _cleanup_free_ char *tar = tl_tar_finish(t, &len);
    char *path = rbx_xasprintf("%s/save.tar%s", top, gzip_all ? ".gz" : "");
    if (gzip_all) {
        size_t zl;
        _cleanup_free_ char *z = tl_gzip(tar, len, &zl);
        tl_write(top, gzip_all ? "save.tar.gz" : "save.tar", z, zl);
    } else {
        tl_write(top, "save.tar", tar, len);
    }
    return path;
}

static int open_unpack(const char *ref, struct rbx_image **out, struct rbx_error **err)
{
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    int r = rbx_image_open(store, ref, NULL, &img, err);
    if (r < 0)
        return r;
    r = rbx_image_unpack(store, img, NULL, NULL, err);
    if (r == 0 && out)
        *out = TAKE_PTR(img);
    return r;
}

START_TEST(test_docker_archive_single_image)
{
    const char *tags[] = {"app:1"};
    _cleanup_free_ char *path = docker_archive(tags, 1, false, false);
    _cleanup_free_ char *ref = rbx_xasprintf("docker-archive:%s", path);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(ref, &img, &err) == 0, "%s", err ? err->message : "");
    ck_assert_ptr_null(img->manifest_digest);
    ck_assert_uint_eq(img->n_layers, 2);
    ck_assert_str_eq(img->layers[0].media_type,
                     "application/vnd.docker.image.rootfs.diff.tar.gzip");
    ck_assert_str_eq(img->layers[1].media_type, "application/vnd.oci.image.layer.v1.tar");
    _cleanup_strv_ char **dirs = NULL;
    ck_assert_int_eq(rbx_image_layer_dirs(store, img, &dirs, &err), 0);
    _cleanup_free_ char *b = rbx_xasprintf("%s/base", dirs[0]),
                        *o = rbx_xasprintf("%s/own0", dirs[1]);
    ck_assert_int_eq(access(b, F_OK), 0);
    ck_assert_int_eq(access(o, F_OK), 0);
    ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

START_TEST(test_docker_archive_tags)
{
    const char *tags[] = {"app:1", "docker.io/library/tool:2"};
    _cleanup_free_ char *path = docker_archive(tags, 2, false, false);
    _cleanup_free_ char *bare = rbx_xasprintf("docker-archive:%s", path);
    _cleanup_error_ struct rbx_error *e1 = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(rbx_image_open(store, bare, NULL, &img, &e1), 0);
    ck_assert_error(e1, RBX_ERR_REFERENCE, "holds 2 images");
    ck_assert_ptr_nonnull(strstr(e1->message, "(tags: app:1, docker.io/library/tool:2)"));

    _cleanup_free_ char *r1 = rbx_xasprintf("docker-archive:%s:app:1", path);
    _cleanup_free_ char *r2 = rbx_xasprintf("docker-archive:%s:tool:2", path);
    struct rbx_error *err = NULL;
    _cleanup_(rbx_image_freep) struct rbx_image *a = NULL, *b = NULL;
    ck_assert_msg(open_unpack(r1, &a, &err) == 0, "%s", err ? err->message : "");
    ck_assert_msg(open_unpack(r2, &b, &err) == 0, "%s", err ? err->message : "");
    ck_assert_str_ne(a->config_digest, b->config_digest);
    ck_assert_str_eq(a->layers[0].diff_id, b->layers[0].diff_id); /* the shared base */

    _cleanup_free_ char *r3 = rbx_xasprintf("docker-archive:%s:nope:3", path);
    _cleanup_error_ struct rbx_error *e3 = NULL;
    ck_assert_int_lt(rbx_image_open(store, r3, NULL, &img, &e3), 0);
    ck_assert_error(
        e3, RBX_ERR_NOT_FOUND,
        "no image tagged \"nope:3\" in the archive (tags: app:1, docker.io/library/tool:2)");
}
END_TEST

START_TEST(test_docker_archive_diff_id_mismatch)
{
    const char *tags[] = {NULL};
    _cleanup_free_ char *path = docker_archive(tags, 1, true, false);
    _cleanup_free_ char *ref = rbx_xasprintf("docker-archive:%s", path);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(open_unpack(ref, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "diff_id mismatch");
    ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

START_TEST(test_docker_archive_gzipped)
{
    const char *tags[] = {"app:1"};
    _cleanup_free_ char *path = docker_archive(tags, 1, false, true);
    _cleanup_free_ char *ref = rbx_xasprintf("docker-archive:%s", path);
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(ref, NULL, &err) == 0, "%s", err ? err->message : "");
}
END_TEST

START_TEST(test_docker_archive_without_manifest)
{
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "repositories", "{}", 0644);
    size_t len;
    _cleanup_free_ char *tar = tl_tar_finish(t, &len);
    tl_write(top, "old.tar", tar, len);
    _cleanup_free_ char *ref = rbx_xasprintf("docker-archive:%s/old.tar", top);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(rbx_image_open(store, ref, NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_NOT_FOUND, "no manifest.json in the archive");
}
END_TEST

START_TEST(test_archive_missing_file)
{
    _cleanup_free_ char *ref = rbx_xasprintf("oci-archive:%s/none.tar", top);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(rbx_image_open(store, ref, NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_NOT_FOUND, "no such archive");
}
END_TEST

static char *oci_archive(bool tamper)
{
    _cleanup_free_ char *layout = rbx_xasprintf("%s/layout", top);
    size_t len;
    _cleanup_free_ char *tar = layer_tar("inside", &len);
    struct tl_layer l = {.tar = tar, .len = len, .compression = RBX_COMPRESSION_ZSTD};
    tl_image(layout, "edge", &l, 1, NULL, NULL);
    if (tamper) {
        /* A blob whose content is not what its name promises. */
        char dg[RBX_DIGEST_LEN + 1];
        tl_blob(layout, "honest", 6, dg);
        _cleanup_free_ char *name = rbx_xasprintf("blobs/sha256/%s", rbx_digest_hex(dg));
        tl_write(layout, name, "forged", 6);
    }
    struct tl_tar *t = tl_tar_new();
    tl_tar_add_tree(t, layout);
    size_t alen;
    _cleanup_free_ char *archive = tl_tar_finish(t, &alen);
    tl_write(top, "oci.tar", archive, alen);
    return rbx_xasprintf("%s/oci.tar", top);
}

START_TEST(test_oci_archive_open_and_unpack)
{
    _cleanup_free_ char *path = oci_archive(false);
    _cleanup_free_ char *ref = rbx_xasprintf("oci-archive:%s:edge", path);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(ref, &img, &err) == 0, "%s", err ? err->message : "");
    ck_assert_ptr_nonnull(img->manifest_digest);
    _cleanup_strv_ char **dirs = NULL;
    ck_assert_int_eq(rbx_image_layer_dirs(store, img, &dirs, &err), 0);
    _cleanup_free_ char *f = rbx_xasprintf("%s/inside", dirs[0]);
    ck_assert_int_eq(access(f, F_OK), 0);
    /* Imported blobs are in the store under their digests. */
    _cleanup_free_ char *blob =
        rbx_xasprintf("%s/blobs/sha256/%s", storedir, rbx_digest_hex(img->manifest_digest));
    ck_assert_int_eq(access(blob, F_OK), 0);
    ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

START_TEST(test_oci_archive_forged_blob_refused)
{
    _cleanup_free_ char *path = oci_archive(true);
    _cleanup_free_ char *ref = rbx_xasprintf("oci-archive:%s:edge", path);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(rbx_image_open(store, ref, NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "digest mismatch");
    ck_assert_uint_eq(count_dir("tmp"), 0);
    ck_assert_uint_eq(count_dir("blobs/sha256"), 0);
}
END_TEST


static size_t journal_count(const char *what)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/journal", storedir);
    _cleanup_free_ char *text = NULL;
    if (rbx_read_file_at(AT_FDCWD, p, 1 << 20, &text, NULL, NULL) < 0)
        return 0;
    size_t n = 0;
    for (char *q = text; (q = strstr(q, what)); q++)
        n++;
    return n;
}

START_TEST(test_archive_import_cached_until_the_archive_changes)
{
    /* A warm open of an archive reads nothing but a record: no copy into the store. */
    const char *tags[] = {"app:1"};
    _cleanup_free_ char *path = docker_archive(tags, 1, false, true);
    _cleanup_free_ char *ref = rbx_xasprintf("docker-archive:%s", path);
    struct rbx_error *err = NULL;
    for (int i = 0; i < 3; i++)
        ck_assert_msg(open_unpack(ref, NULL, &err) == 0, "%s", err ? err->message : "");
    ck_assert_uint_eq(journal_count(" imported "), 1);
    ck_assert_uint_eq(count_dir("archives"), 1);
    /* Changed (new mtime): imported again, under a new key. */
    struct timespec ts[2] = {{0, UTIME_NOW}, {1234567890, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    ck_assert_msg(open_unpack(ref, NULL, &err) == 0, "%s", err ? err->message : "");
    ck_assert_uint_eq(journal_count(" imported "), 2);
    /* A blob of the record pruned away: imported again rather than trusted. */
    _cleanup_free_ char *sha = rbx_xasprintf("%s/blobs/sha256", storedir);
    DIR *d = opendir(sha);
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            _cleanup_free_ char *b = rbx_xasprintf("%s/%s", sha, de->d_name);
            ck_assert_int_eq(unlink(b), 0);
            break;
        }
    closedir(d);
    ck_assert_msg(open_unpack(ref, NULL, &err) == 0, "%s", err ? err->message : "");
    ck_assert_uint_eq(journal_count(" imported "), 3);
}
END_TEST

START_TEST(test_prune_archive_blobs_follow_their_image)
{
    const char *tags[] = {"app:1"};
    _cleanup_free_ char *path = docker_archive(tags, 1, false, false);
    _cleanup_free_ char *ref = rbx_xasprintf("docker-archive:%s", path);
    struct rbx_error *err = NULL;
    ck_assert_msg(open_unpack(ref, NULL, &err) == 0, "%s", err ? err->message : "");
    size_t blobs = count_dir("blobs/sha256");
    ck_assert_uint_gt(blobs, 0);
    /* A new handle, as `reprobox cache prune` is: the first one holds the layers it used. */
    store = rbx_store_free(store);
    ck_assert_int_eq(rbx_store_open(storedir, &store, &err), 0);
    struct rbx_prune_stats st;
    struct rbx_prune_opts po = {.older_than = -1};
    ck_assert_int_eq(rbx_store_prune(store, &po, &st, &err), 0);
    ck_assert_uint_eq(st.blobs, 0);
    ck_assert_uint_eq(count_dir("blobs/sha256"), blobs);
    ck_assert_uint_eq(count_dir("layers"), 2);
    /* The archive is gone: its image can not be opened again, everything of it goes. */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rbx_store_prune(store, &po, &st, &err), 0);
    ck_assert_uint_eq(st.images, 1);
    ck_assert_uint_eq(st.blobs, blobs);
    ck_assert_uint_eq(st.layers, 2);
    ck_assert_uint_eq(count_dir("blobs/sha256"), 0);
    ck_assert_uint_eq(count_dir("archives"), 0);
    ck_assert_uint_eq(count_dir("layers"), 0);
    ck_assert_uint_eq(count_dir("images"), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_archive");
    TCase *tc = tcase_create("archive");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_docker_archive_single_image);
    tcase_add_test(tc, test_docker_archive_tags);
    tcase_add_test(tc, test_docker_archive_diff_id_mismatch);
    tcase_add_test(tc, test_docker_archive_gzipped);
    tcase_add_test(tc, test_docker_archive_without_manifest);
    tcase_add_test(tc, test_archive_missing_file);
    tcase_add_test(tc, test_oci_archive_open_and_unpack);
    tcase_add_test(tc, test_oci_archive_forged_blob_refused);
    tcase_add_test(tc, test_archive_import_cached_until_the_archive_changes);
    tcase_add_test(tc, test_prune_archive_blobs_follow_their_image);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
