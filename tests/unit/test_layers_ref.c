/* test_layers_ref.c — ref.c and platform.c: every transport, tags, bad input; platforms. */
#include "layers/layers.h"
#include "rbx_check.h"

#include <string.h>

static void ref_ok(const char *s, enum rbx_transport tr, const char *path, const char *tag)
{
    struct rbx_ref ref;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_ref_parse(s, &ref, &err) == 0, "%s: %s", s, err ? err->message : "");
    ck_assert_int_eq(ref.transport, tr);
    ck_assert_str_eq(ref.path, path);
    if (tag)
        ck_assert_str_eq(ref.tag, tag);
    else
        ck_assert_ptr_null(ref.tag);
    rbx_ref_clear(&ref);
}

static void ref_bad(const char *s, enum rbx_error_kind kind)
{
    struct rbx_ref ref;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_msg(rbx_ref_parse(s, &ref, &err) < 0, "%s parsed", s);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(err->kind == kind, "%s: kind %s", s, rbx_error_kind_name(err->kind));
    ck_assert_ptr_null(ref.path);
}

START_TEST(test_ref_oci)
{
    ref_ok("oci:/images/app", RBX_TRANSPORT_OCI, "/images/app", "latest");
    ref_ok("oci:./img:v1.2", RBX_TRANSPORT_OCI, "./img", "v1.2");
    ref_ok("oci:img:a/b", RBX_TRANSPORT_OCI, "img", "a/b");
}
END_TEST

START_TEST(test_ref_oci_archive)
{
    ref_ok("oci-archive:/x/app.tar", RBX_TRANSPORT_OCI_ARCHIVE, "/x/app.tar", "latest");
    ref_ok("oci-archive:app.tar:edge", RBX_TRANSPORT_OCI_ARCHIVE, "app.tar", "edge");
}
END_TEST

START_TEST(test_ref_docker_archive)
{
    ref_ok("docker-archive:save.tar", RBX_TRANSPORT_DOCKER_ARCHIVE, "save.tar", NULL);
    ref_ok("docker-archive:save.tar:busybox", RBX_TRANSPORT_DOCKER_ARCHIVE, "save.tar",
           "busybox:latest");
    ref_ok("docker-archive:save.tar:busybox:1.36", RBX_TRANSPORT_DOCKER_ARCHIVE, "save.tar",
           "busybox:1.36");
    ref_ok("docker-archive:s.tar:reg:5000/team/app:2", RBX_TRANSPORT_DOCKER_ARCHIVE, "s.tar",
           "reg:5000/team/app:2");
    ref_ok("docker-archive:s.tar:reg:5000/team/app", RBX_TRANSPORT_DOCKER_ARCHIVE, "s.tar",
           "reg:5000/team/app:latest");
}
END_TEST

START_TEST(test_ref_bad_input)
{
    ref_bad("busybox", RBX_ERR_REFERENCE);
    ref_bad("", RBX_ERR_REFERENCE);
    ref_bad("oci:", RBX_ERR_REFERENCE);
    ref_bad("oci::tag", RBX_ERR_REFERENCE);
    ref_bad("oci:/x:", RBX_ERR_REFERENCE);
    ref_bad("oci:/x:bad tag", RBX_ERR_REFERENCE);
    ref_bad("docker-archive:x.tar::tag", RBX_ERR_REFERENCE);
    ref_bad("docker://busybox", RBX_ERR_UNSUPPORTED);
    _cleanup_free_ char *longpath = rbx_xmalloc(RBX_PATH_MAX + 10);
    strcpy(longpath, "oci:");
    memset(longpath + 4, 'a', RBX_PATH_MAX + 2);
    longpath[RBX_PATH_MAX + 6] = '\0';
    ref_bad(longpath, RBX_ERR_LIMIT);
}
END_TEST

START_TEST(test_platform_parse_and_host)
{
    struct rbx_platform p;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_platform_parse("linux/arm64/v8", &p, &err), 0);
    ck_assert_str_eq(p.os, "linux");
    ck_assert_str_eq(p.architecture, "arm64");
    ck_assert_str_eq(p.variant, "v8");
    ck_assert_int_eq(rbx_platform_parse("linux/amd64", &p, &err), 0);
    ck_assert_str_eq(p.variant, "");
    const char *bad[] = {"linux", "/amd64", "linux/", "linux/amd64/", "linux/arm/v7/x"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(bad); i++) {
        _cleanup_error_ struct rbx_error *e = NULL;
        ck_assert_msg(rbx_platform_parse(bad[i], &p, &e) < 0, "%s parsed", bad[i]);
        ck_assert_error(e, RBX_ERR_USAGE, "invalid platform");
    }
    rbx_platform_host(&p);
    ck_assert_str_eq(p.os, "linux");
    ck_assert(p.architecture[0] != '\0');
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_ref");
    TCase *tc = tcase_create("ref");
    tcase_add_test(tc, test_ref_oci);
    tcase_add_test(tc, test_ref_oci_archive);
    tcase_add_test(tc, test_ref_docker_archive);
    tcase_add_test(tc, test_ref_bad_input);
    tcase_add_test(tc, test_platform_parse_and_host);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
