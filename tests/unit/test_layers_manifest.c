/* test_layers_manifest.c — manifest.c and the config parser of image.c: valid documents and
 * malformed ones (missing fields, wrong types, duplicate keys, deep nesting, bad digests,
 * unknown media types), each refused with its location. */
#include "layers/layers-internal.h"
#include "rbx_check.h"

#include <string.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"

static void index_bad(const char *json, enum rbx_error_kind kind, const char *needle)
{
    struct rbx_index idx;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_msg(rbx_index_parse(json, strlen(json), "index.json", &idx, &err) < 0, "parsed: %s",
                  json);
    ck_assert_error(err, kind, needle);
}

static void manifest_bad(const char *json, enum rbx_error_kind kind, const char *needle)
{
    struct rbx_manifest m;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_msg(rbx_manifest_parse(json, strlen(json), "manifest " D1, RBX_MEDIA_OCI_MANIFEST, &m,
                                     &err) < 0,
                  "parsed: %s", json);
    ck_assert_error(err, kind, needle);
}

static void config_bad(const char *json, enum rbx_error_kind kind, const char *needle)
{
    struct rbx_image_config cfg;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_msg(rbx_config_parse(json, strlen(json), "config " D2, &cfg, NULL, NULL, &err) < 0,
                  "parsed: %s", json);
    ck_assert_error(err, kind, needle);
}

START_TEST(test_index_valid)
{
    const char *j =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST "\",\"digest\":\"" D1
        "\",\"size\":10,\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"},"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"},"
        "\"future\":true},"
        "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"" D2
        "\",\"size\":0}]}";
    struct rbx_index idx;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_index_parse(j, strlen(j), "index.json", &idx, &err), 0);
    ck_assert_uint_eq(idx.n_manifests, 2);
    ck_assert_str_eq(idx.manifests[0].ref_name, "v1");
    ck_assert(idx.manifests[0].has_platform);
    ck_assert_str_eq(idx.manifests[0].platform.variant, "v7");
    ck_assert_int_eq(idx.manifests[0].media, RBX_MEDIA_OCI_MANIFEST);
    ck_assert_int_eq(idx.manifests[1].media, RBX_MEDIA_OCI_INDEX);
    ck_assert(!idx.manifests[1].has_platform);
    rbx_index_clear(&idx);
}
END_TEST

START_TEST(test_index_malformed)
{
    index_bad("{\"schemaVersion\":2}", RBX_ERR_MALFORMED,
              "index.json: manifests: expected an array");
    index_bad("{\"manifests\":[]}", RBX_ERR_MALFORMED, "schemaVersion: expected an integer");
    index_bad("{\"schemaVersion\":1,\"manifests\":[]}", RBX_ERR_UNSUPPORTED, "schemaVersion 1");
    index_bad("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", RBX_ERR_MALFORMED,
              "index.json:1:");
    index_bad("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
              "\",\"digest\":\"sha256:XYZ\",\"size\":1}]}",
              RBX_ERR_MALFORMED, "manifests[0].digest");
    index_bad("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
              "\",\"digest\":\"sha512:abcd\",\"size\":1}]}",
              RBX_ERR_UNSUPPORTED, "unsupported digest algorithm");
    index_bad("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
              "\",\"digest\":\"" D1 "\",\"size\":\"10\"}]}",
              RBX_ERR_MALFORMED, "manifests[0].size: expected a non-negative integer");
    index_bad("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
              "\",\"digest\":\"" D1 "\",\"size\":-1}]}",
              RBX_ERR_MALFORMED, "manifests[0].size");
    index_bad("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\",\"size\":1}]}",
              RBX_ERR_MALFORMED, "manifests[0].mediaType: expected a string");
    index_bad("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
              "\",\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
              RBX_ERR_MALFORMED, "manifests[0].platform: expected \"os\" and \"architecture\"");
    index_bad("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" OCI_MANIFEST
              "\",\"digest\":\"" D1 "\",\"size\":1,\"annotations\":{\"a\":1}}]}",
              RBX_ERR_MALFORMED, "manifests[0].annotations.a: expected a string");
    index_bad("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\",\"manifests\":[]}",
              RBX_ERR_UNSUPPORTED, "is not an image index");
    index_bad("[1,2]", RBX_ERR_MALFORMED, "expected a JSON object");
    index_bad("{\"schemaVersion\":2,", RBX_ERR_MALFORMED, "index.json:1:");
}
END_TEST

START_TEST(test_json_depth_capped)
{
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 100; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    _cleanup_free_ char *j = rbx_xasprintf("{\"schemaVersion\":2,\"manifests\":[],\"x\":%s}", deep);
    index_bad(j, RBX_ERR_LIMIT, "nested deeper than 64");
    manifest_bad(j, RBX_ERR_LIMIT, "nested deeper than 64");
    config_bad(j, RBX_ERR_LIMIT, "nested deeper than 64");
}
END_TEST

#define MANIFEST(config_mt, layer_mt)                                                              \
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST                                           \
    "\",\"config\":{\"mediaType\":\"" config_mt "\",\"digest\":\"" D1                              \
    "\",\"size\":5},\"layers\":[{\"mediaType\":\"" layer_mt "\",\"digest\":\"" D2                  \
    "\",\"size\":7}]}"

START_TEST(test_manifest_valid)
{
    const char *j = MANIFEST(OCI_CONFIG, OCI_GZIP);
    struct rbx_manifest m;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_manifest_parse(j, strlen(j), "manifest", RBX_MEDIA_OCI_MANIFEST, &m, &err),
                     0);
    ck_assert_str_eq(m.config.digest, D1);
    ck_assert_uint_eq(m.n_layers, 1);
    ck_assert_int_eq(m.layers[0].size, 7);
    ck_assert_int_eq(rbx_media_compression(m.layers[0].media), RBX_COMPRESSION_GZIP);
    rbx_manifest_clear(&m);
    /* Docker v2 media types are read the same way. */
    const char *d =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
        "manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker.container."
        "image.v1+json\",\"digest\":\"" D1 "\",\"size\":5},\"layers\":[{\"mediaType\":"
        "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":7}]}";
    ck_assert_int_eq(rbx_manifest_parse(d, strlen(d), "manifest", RBX_MEDIA_UNKNOWN, &m, &err), 0);
    ck_assert_int_eq(m.media, RBX_MEDIA_DOCKER_MANIFEST);
    rbx_manifest_clear(&m);
}
END_TEST

START_TEST(test_manifest_malformed)
{
    manifest_bad(MANIFEST(OCI_CONFIG, "application/vnd.example.layer.v1.tar+lz4"),
                 RBX_ERR_UNSUPPORTED, "layers[0] " D2 ": unsupported layer media type");
    manifest_bad(MANIFEST("application/vnd.cncf.helm.config.v1+json", OCI_GZIP),
                 RBX_ERR_UNSUPPORTED, "not a container image config");
    manifest_bad("{\"schemaVersion\":2,\"layers\":[]}", RBX_ERR_MALFORMED,
                 "manifest " D1 ": config: expected an object");
    manifest_bad("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_CONFIG
                 "\",\"digest\":\"" D1 "\",\"size\":5}}",
                 RBX_ERR_MALFORMED, "layers: expected an array");
    manifest_bad(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest."
        "v2+json\",\"config\":{},\"layers\":[]}",
        RBX_ERR_MALFORMED, "differs from its descriptor's");
    manifest_bad("{\n\"schemaVersion\": 2,\n\"config\": {\"a\": 1, \"a\": 2}}", RBX_ERR_MALFORMED,
                 "manifest " D1 ":3:");
}
END_TEST

START_TEST(test_config_valid)
{
    const char *j =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"A=1\","
        "\"PATH=/bin\"],\"Entrypoint\":null,\"Cmd\":[\"sh\",\"-c\",\"x\"],\"WorkingDir\":"
        "\"/app\",\"User\":\"1000:1000\",\"ExposedPorts\":{\"8080/tcp\":{},\"443/tcp\":{}}},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]},"
        "\"history\":[]}";
    struct rbx_image_config cfg;
    char **ids = NULL;
    json_t *json = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_config_parse(j, strlen(j), "config", &cfg, &ids, &json, &err), 0);
    ck_assert_str_eq(cfg.env[1], "PATH=/bin");
    ck_assert_ptr_null(cfg.entrypoint);
    ck_assert_str_eq(cfg.cmd[2], "x");
    ck_assert_str_eq(cfg.working_dir, "/app");
    ck_assert_str_eq(cfg.user, "1000:1000");
    ck_assert_str_eq(cfg.exposed_ports[0], "443/tcp");
    ck_assert_str_eq(cfg.exposed_ports[1], "8080/tcp");
    ck_assert_str_eq(cfg.architecture, "amd64");
    ck_assert_uint_eq(rbx_strv_len(ids), 2);
    ck_assert_ptr_nonnull(json);
    json_decref(json);
    rbx_strv_free(ids);
    rbx_config_clear(&cfg);
}
END_TEST

START_TEST(test_config_malformed)
{
    config_bad("{\"config\":{}}", RBX_ERR_MALFORMED, "config " D2 ": rootfs: expected an object");
    config_bad("{\"rootfs\":{\"type\":\"layers\"}}", RBX_ERR_MALFORMED, "rootfs.diff_ids");
    config_bad("{\"rootfs\":{\"type\":\"nope\",\"diff_ids\":[]}}", RBX_ERR_MALFORMED,
               "rootfs.type");
    config_bad("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"md5:x\"]}}", RBX_ERR_MALFORMED,
               "rootfs.diff_ids[0]");
    config_bad("{\"config\":{\"Env\":\"A=1\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
               RBX_ERR_MALFORMED, "config.Env: expected an array");
    config_bad("{\"config\":{\"Cmd\":[\"sh\",1]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
               RBX_ERR_MALFORMED, "config.Cmd[1]: expected a string");
    config_bad("{\"config\":{\"User\":0},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
               RBX_ERR_MALFORMED, "config.User: expected a string");
    config_bad("{\"os\":\"linux\",\"os\":\"windows\"}", RBX_ERR_MALFORMED, "config " D2 ":1:");
}
END_TEST

START_TEST(test_media_types_and_sniff)
{
    ck_assert_int_eq(
        rbx_media_parse("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"),
        RBX_MEDIA_LAYER_ZSTD);
    ck_assert_int_eq(rbx_media_parse("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
                     RBX_MEDIA_LAYER_GZIP);
    ck_assert_int_eq(rbx_media_parse("application/vnd.docker.distribution.manifest.list.v2+json"),
                     RBX_MEDIA_DOCKER_LIST);
    ck_assert_int_eq(rbx_media_parse("text/plain"), RBX_MEDIA_UNKNOWN);
    const unsigned char gz[] = {0x1f, 0x8b, 8, 0}, zs[] = {0x28, 0xb5, 0x2f, 0xfd}, t[] = "abcd";
    ck_assert_int_eq(rbx_compression_sniff(gz, 4), RBX_COMPRESSION_GZIP);
    ck_assert_int_eq(rbx_compression_sniff(zs, 4), RBX_COMPRESSION_ZSTD);
    ck_assert_int_eq(rbx_compression_sniff(t, 4), RBX_COMPRESSION_NONE);
    struct rbx_platform have = {"linux", "arm64", ""}, want = {"linux", "arm64", "v8"},
                        other = {"linux", "arm", "v7"};
    ck_assert(rbx_platform_matches(&have, &want));
    ck_assert(!rbx_platform_matches(&other, &want));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_manifest");
    TCase *tc = tcase_create("manifest");
    tcase_add_test(tc, test_index_valid);
    tcase_add_test(tc, test_index_malformed);
    tcase_add_test(tc, test_json_depth_capped);
    tcase_add_test(tc, test_manifest_valid);
    tcase_add_test(tc, test_manifest_malformed);
    tcase_add_test(tc, test_config_valid);
    tcase_add_test(tc, test_config_malformed);
    tcase_add_test(tc, test_media_types_and_sniff);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
