/* test_layers_layout.c — layout.c: images written as OCI layouts (tags added and replaced, read
 * back by the layout reader) and as docker archives (read back by the archive reader), and the
 * canonical manifest. */
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

/* A one-file layer written into the store. */
static void make_layer(const char *name, const char *content, struct rbx_out_layer *out)
{
    _cleanup_free_ char *dir = rbx_xasprintf("%s/src-%s", top, name);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    tl_write(dir, name, content, strlen(content));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct rbx_layer_blob b;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_layer_write(store, fd, NULL, &b, &err) == 0, "%s", err ? err->message : "");
    close(fd);
    memset(out, 0, sizeof(*out));
    memcpy(out->digest, b.digest, sizeof(out->digest));
    memcpy(out->diff_id, b.diff_id, sizeof(out->diff_id));
    snprintf(out->media_type, sizeof(out->media_type), "%s",
             "application/vnd.docker.image.rootfs.diff.tar.gzip");
    out->size = b.size;
    out->blob_dirfd = rbx_store_blob_dirfd(store);
}

static char *config_for(const struct rbx_out_layer *l, size_t n, const char *label)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_string(l[i].diff_id));
    json_t *c = json_pack("{s:s, s:s, s:{s:[s], s:{s:s}}, s:{s:s, s:o}}", "architecture", "amd64",
                          "os", "linux", "config", "Cmd", "sh", "Labels", "l", label, "rootfs",
                          "type", "layers", "diff_ids", ids);
    char *s = rbx_json_dump_canonical(c);
    json_decref(c);
    return s;
}

static struct rbx_image *open_image(const char *ref)
{
    struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_image_open(store, ref, NULL, &img, &err) == 0, "%s: %s", ref,
                  err ? err->message : "");
    return img;
}

START_TEST(test_layout_write_and_read_back)
{
    struct rbx_out_layer l[2];
    make_layer("a", "first\n", &l[0]);
    make_layer("b", "second\n", &l[1]);
    _cleanup_free_ char *cfg = config_for(l, 2, "one");
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s/out/img:v1", top);
    char md[RBX_DIGEST_LEN + 1];
    struct rbx_error *err = NULL;
    struct rbx_platform p;
    rbx_platform_host(&p);
    ck_assert_msg(rbx_image_write(ref, cfg, strlen(cfg), l, 2, &p, md, &err) == 0, "%s",
                  err ? err->message : "");
    _cleanup_(rbx_image_freep) struct rbx_image *img = open_image(ref);
    ck_assert_str_eq(img->manifest_digest, md);
    ck_assert_uint_eq(img->n_layers, 2);
    ck_assert_str_eq(img->layers[1].diff_id, l[1].diff_id);
    /* Docker's layer type is written as the OCI one. */
    ck_assert_str_eq(img->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    ck_assert_ptr_nonnull(img->config.cmd);
    ck_assert_str_eq(img->config.cmd[0], "sh");
    struct rbx_unpack_stats st;
    ck_assert_msg(rbx_image_unpack(store, img, NULL, &st, &err) == 0, "%s",
                  err ? err->message : "");
}
END_TEST

START_TEST(test_layout_tags_added_and_replaced)
{
    struct rbx_out_layer l;
    make_layer("a", "x", &l);
    _cleanup_free_ char *c1 = config_for(&l, 1, "one"), *c2 = config_for(&l, 1, "two");
    _cleanup_free_ char *r1 = rbx_xasprintf("oci:%s/lay:one", top);
    _cleanup_free_ char *r2 = rbx_xasprintf("oci:%s/lay:two", top);
    char m1[RBX_DIGEST_LEN + 1], m2[RBX_DIGEST_LEN + 1], m3[RBX_DIGEST_LEN + 1];
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_image_write(r1, c1, strlen(c1), &l, 1, NULL, m1, &err), 0);
    ck_assert_int_eq(rbx_image_write(r2, c2, strlen(c2), &l, 1, NULL, m2, &err), 0);
    ck_assert_str_ne(m1, m2);
    /* "one" again, with the other config: replaced, "two" kept */
    ck_assert_int_eq(rbx_image_write(r1, c2, strlen(c2), &l, 1, NULL, m3, &err), 0);
    ck_assert_str_eq(m3, m2);
    _cleanup_free_ char *idx = NULL;
    size_t len;
    _cleanup_free_ char *ipath = rbx_xasprintf("%s/lay/index.json", top);
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, ipath, 1 << 20, &idx, &len, NULL), 0);
    _cleanup_json_ json_t *j = json_loads(idx, 0, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "manifests")), 2);
    /* canonical: sorted keys, compact */
    ck_assert(strncmp(idx, "{\"manifests\":[", 14) == 0);
    _cleanup_(rbx_image_freep) struct rbx_image *one = open_image(r1);
    _cleanup_(rbx_image_freep) struct rbx_image *two = open_image(r2);
    ck_assert_str_eq(one->manifest_digest, two->manifest_digest);
}
END_TEST

START_TEST(test_layout_refuses_what_is_not_a_layout)
{
    struct rbx_out_layer l;
    make_layer("a", "x", &l);
    _cleanup_free_ char *c = config_for(&l, 1, "one");
    _cleanup_free_ char *dir = rbx_xasprintf("%s/notalayout", top);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    tl_write(dir, "oci-layout", "{\"imageLayoutVersion\":\"9\"}", 26);
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s", dir);
    char md[RBX_DIGEST_LEN + 1];
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_image_write(ref, c, strlen(c), &l, 1, NULL, md, &err), 0);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err->message, dir));
}
END_TEST

START_TEST(test_layout_docker_archive_read_back)
{
    struct rbx_out_layer l[2];
    make_layer("a", "first\n", &l[0]);
    make_layer("b", "second\n", &l[1]);
    _cleanup_free_ char *cfg = config_for(l, 2, "da");
    _cleanup_free_ char *ref = rbx_xasprintf("docker-archive:%s/img.tar:app:v2", top);
    char md[RBX_DIGEST_LEN + 1];
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_image_write(ref, cfg, strlen(cfg), l, 2, NULL, md, &err) == 0, "%s",
                  err ? err->message : "");
    _cleanup_(rbx_image_freep) struct rbx_image *img = open_image(ref);
    ck_assert_uint_eq(img->n_layers, 2);
    /* plain layers: the blob is the tar */
    ck_assert_str_eq(img->layers[0].digest, l[0].diff_id);
    ck_assert_str_eq(img->layers[0].diff_id, l[0].diff_id);
    struct rbx_unpack_stats st;
    ck_assert_msg(rbx_image_unpack(store, img, NULL, &st, &err) == 0, "%s",
                  err ? err->message : "");
    /* the same manifest digest as the OCI form of the image */
    _cleanup_free_ char *oci = rbx_xasprintf("oci:%s/o", top);
    char md2[RBX_DIGEST_LEN + 1];
    ck_assert_int_eq(rbx_image_write(oci, cfg, strlen(cfg), l, 2, NULL, md2, &err), 0);
    ck_assert_str_eq(md, md2);
}
END_TEST

START_TEST(test_layout_manifest_canonical)
{
    struct rbx_out_layer l = {.size = 3};
    snprintf(l.digest, sizeof(l.digest), "sha256:%064d", 1);
    snprintf(l.media_type, sizeof(l.media_type), "application/vnd.docker.image.rootfs.diff.tar");
    _cleanup_free_ char *m = rbx_manifest_build(
        "sha256:0000000000000000000000000000000000000000000000000000000000000002", 7, &l, 1);
    ck_assert_str_eq(
        m, "{\"config\":{\"digest\":\"sha256:"
           "0000000000000000000000000000000000000000000000000000000000000002\","
           "\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":7},\"layers\":[{"
           "\"digest\":\"sha256:0000000000000000000000000000000000000000000000000000000000000001\","
           "\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":3}],"
           "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"schemaVersion\":2}");
}
END_TEST

static Suite *layout_suite(void)
{
    Suite *s = suite_create("layers_layout");
    TCase *tc = tcase_create("layout");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_layout_write_and_read_back);
    tcase_add_test(tc, test_layout_tags_added_and_replaced);
    tcase_add_test(tc, test_layout_refuses_what_is_not_a_layout);
    tcase_add_test(tc, test_layout_docker_archive_read_back);
    tcase_add_test(tc, test_layout_manifest_canonical);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(layout_suite)
