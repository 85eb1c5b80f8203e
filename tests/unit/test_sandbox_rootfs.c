/* test_sandbox_rootfs.c — rootfs.c's plan: the overlay option string, its escaping, and the
 * relative form used when it would not fit in a page. Mounting is covered by test_sandbox_run. */
#include "sandbox/sandbox-internal.h"

#include "rbx_check.h"

#include <string.h>

static void spec_with(struct rbx_spec *spec, const char *const *lowers, const char *upper,
                      const char *work)
{
    memset(spec, 0, sizeof(*spec));
    spec->rootfs_dir = rbx_xstrdup("/run/merged");
    for (size_t i = 0; lowers && lowers[i]; i++)
        rbx_strv_push(&spec->lower_dirs, lowers[i]);
    spec->upper_dir = upper ? rbx_xstrdup(upper) : NULL;
    spec->work_dir = work ? rbx_xstrdup(work) : NULL;
}

static void plan_fails(struct rbx_spec *spec, enum rbx_error_kind kind, const char *needle)
{
    struct rbx_rootfs_plan p;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_rootfs_plan_build(spec, 4096, &p, &err), 0);
    ck_assert_error(err, kind, needle);
    rbx_rootfs_plan_clear(&p);
    rbx_spec_clear(spec);
}

START_TEST(test_rootfs_plain_dir)
{
    struct rbx_spec spec;
    struct rbx_rootfs_plan p;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_with(&spec, NULL, NULL, NULL);
    ck_assert_int_eq(rbx_rootfs_plan_build(&spec, 4096, &p, &err), 0);
    ck_assert(!p.overlay);
    rbx_rootfs_plan_clear(&p);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_rootfs_overlay_top_layer_first)
{
    struct rbx_spec spec;
    struct rbx_rootfs_plan p;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_with(&spec, (const char *[]){"/c/l1", "/c/l2", "/c/l3", NULL}, "/r/up", "/r/work");
    ck_assert_int_eq(rbx_rootfs_plan_build(&spec, 4096, &p, &err), 0);
    ck_assert(p.overlay);
    ck_assert_uint_eq(p.n_lowers, 3);
    ck_assert_str_eq(p.lowers[0], "/c/l3");
    ck_assert_str_eq(p.data, "lowerdir=/c/l3:/c/l2:/c/l1,upperdir=/r/up,workdir=/r/work,userxattr");
    ck_assert_ptr_null(p.data_dir);
    rbx_rootfs_plan_clear(&p);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_rootfs_overlay_escaping)
{
    _cleanup_free_ char *e = rbx_overlay_escape("/a:b,c\\d");
    ck_assert_str_eq(e, "/a\\:b\\,c\\\\d");
    struct rbx_spec spec;
    struct rbx_rootfs_plan p;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_with(&spec, (const char *[]){"/x:y", NULL}, NULL, NULL);
    ck_assert_int_eq(rbx_rootfs_plan_build(&spec, 4096, &p, &err), 0);
    ck_assert_str_eq(p.data, "lowerdir=/x\\:y,userxattr");
    rbx_rootfs_plan_clear(&p);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_rootfs_overlay_relative_when_over_a_page)
{
    struct rbx_spec spec;
    spec_with(&spec, NULL, "/var/lib/reprobox/runs/abc/upper", "/var/lib/reprobox/runs/abc/work");
    for (int i = 0; i < 100; i++) {
        _cleanup_free_ char *l = rbx_xasprintf("/var/lib/reprobox/layers/sha256/%064d", i);
        rbx_strv_push(&spec.lower_dirs, l);
    }
    struct rbx_rootfs_plan p;
    _cleanup_error_ struct rbx_error *err = NULL;
    /* Absolute: ~10 KB; relative to /var/lib/reprobox/: over 8 KB. */
    ck_assert_int_eq(rbx_rootfs_plan_build(&spec, 16384, &p, &err), 0);
    ck_assert_ptr_null(p.data_dir);
    rbx_rootfs_plan_clear(&p);
    ck_assert_int_eq(rbx_rootfs_plan_build(&spec, 9000, &p, &err), 0);
    ck_assert_str_eq(p.data_dir, "/var/lib/reprobox/");
    ck_assert_ptr_nonnull(p.data);
    ck_assert(strncmp(p.data, "lowerdir=layers/sha256/0000", 27) == 0);
    ck_assert_ptr_nonnull(strstr(p.data, ",upperdir=runs/abc/upper,workdir=runs/abc/work,"));
    rbx_rootfs_plan_clear(&p);
    /* Too long even so: no mount(2) string, only lowerdir+ can mount it. */
    ck_assert_int_eq(rbx_rootfs_plan_build(&spec, 4096, &p, &err), 0);
    ck_assert(p.overlay);
    ck_assert_ptr_null(p.data);
    rbx_rootfs_plan_clear(&p);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_rootfs_bad_specs)
{
    struct rbx_spec spec;
    spec_with(&spec, (const char *[]){"/l", NULL}, "/u", NULL);
    plan_fails(&spec, RBX_ERR_USAGE, "upper_dir and work_dir go together");
    spec_with(&spec, (const char *[]){"relative", NULL}, NULL, NULL);
    plan_fails(&spec, RBX_ERR_USAGE, "\"relative\" is not an absolute path");
    spec_with(&spec, NULL, NULL, NULL);
    free(spec.rootfs_dir);
    spec.rootfs_dir = rbx_xstrdup("merged");
    plan_fails(&spec, RBX_ERR_USAGE, "rootfs: \"merged\" is not an absolute path");
    spec_with(&spec, NULL, NULL, NULL);
    for (int i = 0; i < 501; i++)
        rbx_strv_push(&spec.lower_dirs, "/l");
    plan_fails(&spec, RBX_ERR_LIMIT, "501 layers");
}
END_TEST

static Suite *rootfs_suite(void)
{
    Suite *s = suite_create("sandbox_rootfs");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_rootfs_plain_dir);
    tcase_add_test(tc, test_rootfs_overlay_top_layer_first);
    tcase_add_test(tc, test_rootfs_overlay_escaping);
    tcase_add_test(tc, test_rootfs_overlay_relative_when_over_a_page);
    tcase_add_test(tc, test_rootfs_bad_specs);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(rootfs_suite)
