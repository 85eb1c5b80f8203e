/* test_layers_ref.c — ref.c and platform.c: every transport, tags, docker:// names, bad input;
 * platforms. */
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
    ref_bad("docker://", RBX_ERR_REFERENCE);
    _cleanup_free_ char *longpath = rbx_xmalloc(RBX_PATH_MAX + 10);
    strcpy(longpath, "oci:");
    memset(longpath + 4, 'a', RBX_PATH_MAX + 2);
    longpath[RBX_PATH_MAX + 6] = '\0';
    ref_bad(longpath, RBX_ERR_LIMIT);
}
END_TEST

static void docker_ok(const char *s, const char *registry, const char *repository,
                      const char *tag, const char *digest, const char *name)
{
    struct rbx_ref ref;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_ref_parse(s, &ref, &err) == 0, "%s: %s", s, err ? err->message : "");
    ck_assert_int_eq(ref.transport, RBX_TRANSPORT_DOCKER);
    ck_assert_ptr_null(ref.path);
    ck_assert_str_eq(ref.registry, registry);
    ck_assert_str_eq(ref.repository, repository);
    if (tag)
        ck_assert_str_eq(ref.tag, tag);
    else
        ck_assert_ptr_null(ref.tag);
    if (digest)
        ck_assert_str_eq(ref.digest, digest);
    else
        ck_assert_ptr_null(ref.digest);
    _cleanup_free_ char *n = rbx_ref_docker_name(&ref);
    ck_assert_str_eq(n, name);
    rbx_ref_clear(&ref);
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

START_TEST(test_ref_docker_short_names)
{
    docker_ok("docker://node:20", "docker.io", "library/node", "20", NULL,
              "docker.io/library/node:20");
    docker_ok("docker://busybox", "docker.io", "library/busybox", "latest", NULL,
              "docker.io/library/busybox:latest");
    docker_ok("docker://bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", NULL,
              "docker.io/bitnami/redis:7.2");
    docker_ok("docker://docker.io/node", "docker.io", "library/node", "latest", NULL,
              "docker.io/library/node:latest");
    docker_ok("docker://index.docker.io/library/node:20-alpine", "docker.io", "library/node",
              "20-alpine", NULL, "docker.io/library/node:20-alpine");
}
END_TEST

START_TEST(test_ref_docker_registries_and_ports)
{
    docker_ok("docker://127.0.0.1:5000/busybox:multi", "127.0.0.1:5000", "busybox", "multi", NULL,
              "127.0.0.1:5000/busybox:multi");
    docker_ok("docker://localhost/team/app", "localhost", "team/app", "latest", NULL,
              "localhost/team/app:latest");
    docker_ok("docker://ghcr.io/org/sub/img:v1.0_rc-2", "ghcr.io", "org/sub/img", "v1.0_rc-2",
              NULL, "ghcr.io/org/sub/img:v1.0_rc-2");
    docker_ok("docker://123456.dkr.ecr.eu-west-1.amazonaws.com/svc:1",
              "123456.dkr.ecr.eu-west-1.amazonaws.com", "svc", "1", NULL,
              "123456.dkr.ecr.eu-west-1.amazonaws.com/svc:1");
    docker_ok("docker://[::1]:5000/a_b__c/d--e.f", "[::1]:5000", "a_b__c/d--e.f", "latest", NULL,
              "[::1]:5000/a_b__c/d--e.f:latest");
    /* A first component with capitals can only be a host. */
    docker_ok("docker://MyHost/app", "MyHost", "app", "latest", NULL, "MyHost/app:latest");
}
END_TEST

START_TEST(test_ref_docker_digests)
{
    docker_ok("docker://node@sha256:" D64, "docker.io", "library/node", NULL, "sha256:" D64,
              "docker.io/library/node@sha256:" D64);
    /* Tag and digest: the digest decides what is pulled; the tag is kept for people. */
    docker_ok("docker://127.0.0.1:5000/busybox:latest@sha256:" D64, "127.0.0.1:5000", "busybox",
              "latest", "sha256:" D64, "127.0.0.1:5000/busybox@sha256:" D64);
}
END_TEST

START_TEST(test_ref_docker_invalid)
{
    const char *bad[] = {
        "docker://Node",                 /* capitals in a repository */
        "docker://node:",                /* empty tag */
        "docker://node:-x",              /* tag starting with '-' */
        "docker://node:a/b",             /* '/' after a tag colon: "node:a" is no host */
        "docker://node:20:21",           /* two tags */
        "docker://reg.io/",              /* no repository */
        "docker://reg.io/app/",          /* trailing '/' */
        "docker://reg.io//app",          /* empty component */
        "docker://reg.io/a..b",          /* two separators */
        "docker://reg.io/-a",            /* separator first */
        "docker://reg.io:0/a",           /* port 0 */
        "docker://reg.io:99999/a",       /* port out of range */
        "docker://reg.io:/a",            /* empty port */
        "docker://-reg.io/a",            /* host starting with '-' */
        "docker://node@sha256:abc",      /* short digest */
        "docker://node@sha256:" D64 "0", /* long digest */
        "docker://node@",                /* empty digest */
        "docker://@sha256:" D64,         /* no name */
        "docker://node name",            /* space */
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(bad); i++)
        ref_bad(bad[i], RBX_ERR_REFERENCE);
    ref_bad("docker://node@sha512:" D64 D64, RBX_ERR_UNSUPPORTED);
    /* A tag over 128 characters; a name over 255. */
    char longtag[200] = "docker://node:";
    memset(longtag + strlen(longtag), 'a', 129);
    ref_bad(longtag, RBX_ERR_REFERENCE);
    char longname[400] = "docker://reg.io/";
    memset(longname + strlen(longname), 'a', 260);
    ref_bad(longname, RBX_ERR_LIMIT);
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
    tcase_add_test(tc, test_ref_docker_short_names);
    tcase_add_test(tc, test_ref_docker_registries_and_ports);
    tcase_add_test(tc, test_ref_docker_digests);
    tcase_add_test(tc, test_ref_docker_invalid);
    tcase_add_test(tc, test_platform_parse_and_host);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
