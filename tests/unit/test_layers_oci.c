/* test_layers_oci.c — oci.c and image.c: layouts written here and opened by reference; tags,
 * platforms, nested indexes, verification of what is read, errors that name the object. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>

static char *top, *layout;

static void setup(void)
{
    top = tl_mkdtemp();
    layout = rbx_xasprintf("%s/img", top);
}

static void teardown(void)
{
    tl_rm_rf(top);
    free(top);
    free(layout);
}

/* An image of one small layer whose file content makes its digests unique. */
static const char *image(const char *tag, const char *content, const char *os, const char *arch)
{
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "f", content, 0644);
    size_t len;
    _cleanup_free_ char *tar = tl_tar_finish(t, &len);
    struct tl_layer l = {.tar = tar, .len = len, .compression = RBX_COMPRESSION_GZIP};
    return tl_image(layout, tag, &l, 1, os, arch);
}

static int open_ref(const char *suffix, const struct rbx_platform *p, struct rbx_image **img,
                    struct rbx_error **err)
{
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s%s", layout, suffix);
    struct rbx_open_opts opts = {.platform = p};
    return rbx_image_open(NULL, ref, &opts, img, err);
}

START_TEST(test_oci_open_reads_manifest_and_config)
{
    char want[RBX_DIGEST_LEN + 1];
    strcpy(want, image("latest", "a", NULL, NULL));
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_ref("", NULL, &img, &err) == 0, "%s", err ? err->message : "");
    ck_assert_str_eq(img->manifest_digest, want);
    ck_assert_uint_eq(img->n_layers, 1);
    ck_assert(rbx_digest_valid(img->layers[0].diff_id));
    ck_assert(rbx_digest_valid(img->config_digest));
    ck_assert_str_eq(img->config.working_dir, "/work");
    ck_assert_str_eq(img->config.env[0], "PATH=/usr/bin:/bin");
    ck_assert_ptr_nonnull(img->manifest_json);
    ck_assert_ptr_nonnull(img->config_json);
}
END_TEST

START_TEST(test_oci_tags)
{
    char v1[RBX_DIGEST_LEN + 1];
    image("latest", "a", NULL, NULL);
    strcpy(v1, image("v1", "b", NULL, NULL));
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(open_ref(":v1", NULL, &img, &err), 0);
    ck_assert_str_eq(img->manifest_digest, v1);
    _cleanup_error_ struct rbx_error *e2 = NULL;
    struct rbx_image *none = NULL;
    ck_assert_int_lt(open_ref(":v2", NULL, &none, &e2), 0);
    ck_assert_error(e2, RBX_ERR_NOT_FOUND, "no tag \"v2\" in index.json (tags: latest, v1)");
    ck_assert_msg(strncmp(e2->message, "oci:", 4) == 0, "%s", e2->message);
    ck_assert_ptr_null(none);
}
END_TEST

START_TEST(test_oci_untagged_single_manifest_taken_without_tag)
{
    image(NULL, "a", NULL, NULL);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_ref("", NULL, &img, &err) == 0, "%s", err ? err->message : "");
    _cleanup_error_ struct rbx_error *e2 = NULL;
    struct rbx_image *none = NULL;
    ck_assert_int_lt(open_ref(":latest", NULL, &none, &e2), 0);
    ck_assert_error(e2, RBX_ERR_NOT_FOUND, "(tags: none)");
}
END_TEST

START_TEST(test_oci_missing_layout)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("/missing", NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_NOT_FOUND, "/missing: no such image layout (no oci-layout file)");
}
END_TEST

START_TEST(test_oci_bad_layout_version)
{
    image("latest", "a", NULL, NULL);
    tl_write(layout, "oci-layout", "{\"imageLayoutVersion\":\"2.0.0\"}", 30);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("", NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_UNSUPPORTED, "imageLayoutVersion \"2.0.0\"");
}
END_TEST

START_TEST(test_oci_platform_selection)
{
    char arm[RBX_DIGEST_LEN + 1], amd[RBX_DIGEST_LEN + 1];
    strcpy(arm, image("latest", "arm", "linux", "arm64"));
    strcpy(amd, image("latest", "amd", "linux", "amd64"));
    struct rbx_platform p;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_platform_parse("linux/amd64", &p, &err), 0);
    _cleanup_(rbx_image_freep) struct rbx_image *a = NULL;
    ck_assert_int_eq(open_ref("", &p, &a, &err), 0);
    ck_assert_str_eq(a->manifest_digest, amd);
    ck_assert_int_eq(rbx_platform_parse("linux/arm64/v8", &p, &err), 0);
    _cleanup_(rbx_image_freep) struct rbx_image *b = NULL;
    ck_assert_int_eq(open_ref("", &p, &b, &err), 0);
    ck_assert_str_eq(b->manifest_digest, arm);
    ck_assert_int_eq(rbx_platform_parse("linux/s390x", &p, &err), 0);
    _cleanup_error_ struct rbx_error *e2 = NULL;
    struct rbx_image *none = NULL;
    ck_assert_int_lt(open_ref("", &p, &none, &e2), 0);
    ck_assert_error(e2, RBX_ERR_NOT_FOUND,
                    "no manifest for platform linux/s390x (available: linux/arm64, linux/amd64)");
}
END_TEST

/* Move what tl_image put in index.json into a blob index, referenced from a new index.json. */
static void nest_index(const char *tag, int levels)
{
    _cleanup_free_ char *ipath = rbx_xasprintf("%s/index.json", layout);
    json_t *index = json_load_file(ipath, 0, NULL);
    ck_assert_ptr_nonnull(index);
    for (int i = 0; i < levels; i++) {
        json_object_set_new(index, "mediaType",
                            json_string("application/vnd.oci.image.index.v1+json"));
        _cleanup_free_ char *text = json_dumps(index, JSON_COMPACT);
        json_decref(index);
        char dg[RBX_DIGEST_LEN + 1];
        tl_blob(layout, text, strlen(text), dg);
        json_t *d =
            json_pack("{s:s, s:s, s:I}", "mediaType", "application/vnd.oci.image.index.v1+json",
                      "digest", dg, "size", (json_int_t)strlen(text));
        if (i == levels - 1)
            json_object_set_new(d, "annotations", json_pack("{s:s}", RBX_ANNOTATION_REF_NAME, tag));
        index = json_pack("{s:i, s:[o]}", "schemaVersion", 2, "manifests", d);
    }
    _cleanup_free_ char *text = json_dumps(index, JSON_COMPACT);
    json_decref(index);
    tl_layout_raw(layout, text);
}

START_TEST(test_oci_nested_index_platform_selection)
{
    char amd[RBX_DIGEST_LEN + 1];
    image(NULL, "arm", "linux", "arm64");
    strcpy(amd, image(NULL, "amd", "linux", "amd64"));
    nest_index("latest", 2);
    struct rbx_platform p;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_platform_parse("linux/amd64", &p, &err), 0);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    ck_assert_msg(open_ref("", &p, &img, &err) == 0, "%s", err ? err->message : "");
    ck_assert_str_eq(img->manifest_digest, amd);
}
END_TEST

START_TEST(test_oci_nested_index_depth_capped)
{
    image(NULL, "a", "linux", "amd64");
    nest_index("latest", RBX_INDEX_DEPTH_MAX + 2);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("", NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "nested deeper than");
}
END_TEST

START_TEST(test_oci_manifest_digest_mismatch)
{
    const char *m = image("latest", "a", NULL, NULL);
    _cleanup_free_ char *p = rbx_xasprintf("blobs/sha256/%s", rbx_digest_hex(m));
    _cleanup_free_ char *full = rbx_xasprintf("%s/%s", layout, p);
    char *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, full, 1 << 20, &buf, &len, NULL), 0);
    buf[len - 2] = buf[len - 2] == '1' ? '2' : '1'; /* same size, other bytes */
    tl_write(layout, p, buf, len);
    free(buf);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("", NULL, &img, &err), 0);
    _cleanup_free_ char *needle = rbx_xasprintf("blob %s: digest mismatch (got sha256:", m);
    ck_assert_error(err, RBX_ERR_DIGEST, needle);
    ck_assert_msg(strncmp(err->message, "oci:", 4) == 0, "%s", err->message);
}
END_TEST

START_TEST(test_oci_missing_blob)
{
    const char *m = image("latest", "a", NULL, NULL);
    _cleanup_free_ char *p = rbx_xasprintf("%s/blobs/sha256/%s", layout, rbx_digest_hex(m));
    ck_assert_int_eq(unlink(p), 0);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("", NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_NOT_FOUND, "not found");
}
END_TEST

START_TEST(test_oci_unknown_layer_media_type_refused)
{
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "f", "x", 0644);
    size_t len;
    _cleanup_free_ char *tar = tl_tar_finish(t, &len);
    struct tl_layer l = {.tar = tar, .len = len, .media_type = "application/vnd.example.tar+lz4"};
    tl_image(layout, "latest", &l, 1, NULL, NULL);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("", NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_UNSUPPORTED,
                    "unsupported layer media type \"application/vnd.example.tar+lz4\"");
}
END_TEST

START_TEST(test_oci_manifest_over_size_bound)
{
    image("latest", "a", NULL, NULL);
    /* A descriptor announcing a 5 MiB manifest is refused before reading it. */
    char dg[RBX_DIGEST_LEN + 1];
    tl_blob(layout, "{}", 2, dg);
    _cleanup_free_ char *idx = rbx_xasprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest."
        "v1+json\",\"digest\":\"%s\",\"size\":%d}]}",
        dg, 5 << 20);
    tl_layout_raw(layout, idx);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("", NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "limit");
}
END_TEST

START_TEST(test_oci_diff_ids_count_mismatch)
{
    image("latest", "a", NULL, NULL);
    /* Replace the config by one with no diff_ids, and rewrite the manifest to point at it. */
    _cleanup_free_ char *cfg = tl_config_json(NULL);
    char cdg[RBX_DIGEST_LEN + 1], mdg[RBX_DIGEST_LEN + 1];
    tl_blob(layout, cfg, strlen(cfg), cdg);
    _cleanup_free_ char *m = rbx_xasprintf(
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
        "vnd.oci.image.config.v1+json\","
        "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image."
        "layer.v1.tar\",\"digest\":\"%s\",\"size\":1}]}",
        cdg, strlen(cfg), cdg);
    tl_blob(layout, m, strlen(m), mdg);
    _cleanup_free_ char *idx = rbx_xasprintf(
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest."
        "v1+json\",\"digest\":\"%s\",\"size\":%zu}]}",
        mdg, strlen(m));
    tl_layout_raw(layout, idx);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_image *img = NULL;
    ck_assert_int_lt(open_ref("", NULL, &img, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "0 diff_ids for 1 layers");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_oci");
    TCase *tc = tcase_create("oci");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_oci_open_reads_manifest_and_config);
    tcase_add_test(tc, test_oci_tags);
    tcase_add_test(tc, test_oci_untagged_single_manifest_taken_without_tag);
    tcase_add_test(tc, test_oci_missing_layout);
    tcase_add_test(tc, test_oci_bad_layout_version);
    tcase_add_test(tc, test_oci_platform_selection);
    tcase_add_test(tc, test_oci_nested_index_platform_selection);
    tcase_add_test(tc, test_oci_nested_index_depth_capped);
    tcase_add_test(tc, test_oci_manifest_digest_mismatch);
    tcase_add_test(tc, test_oci_missing_blob);
    tcase_add_test(tc, test_oci_unknown_layer_media_type_refused);
    tcase_add_test(tc, test_oci_manifest_over_size_bound);
    tcase_add_test(tc, test_oci_diff_ids_count_mismatch);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
