/* test_common_error.c — errors are set once, wrapped with context, and keep a stable kind. */
#include "common/common.h"
#include "rbx_check.h"

#include <string.h>

START_TEST(test_set_once_and_wrap)
{
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_error_set(&err, RBX_ERR_ESCAPE, EXDEV, "entry \"%s\" escapes the rootfs", "../../etc/x"), -EXDEV);
    ck_assert_int_eq(rbx_error_set(&err, RBX_ERR_IO, EIO, "second"), -EIO);
    ck_assert_str_eq(err->message, "entry \"../../etc/x\" escapes the rootfs");
    ck_assert_int_eq(rbx_error_wrap(&err, "layer %s", "sha256:ab12"), -EXDEV);
    ck_assert_str_eq(err->message, "layer sha256:ab12: entry \"../../etc/x\" escapes the rootfs");
    ck_assert_str_eq(rbx_error_kind_name(err->kind), "escape");
    rbx_error_free(err);
}
END_TEST

START_TEST(test_errno_text_and_null_err)
{
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_error_set_errno(&err, RBX_ERR_IO, ENOSPC, "entry \"%s\"", "usr/lib/x"), -ENOSPC);
    ck_assert_str_eq(err->message, "entry \"usr/lib/x\": No space left on device");
    ck_assert_int_eq(err->errnum, ENOSPC);
    rbx_error_free(err);
    ck_assert_int_eq(rbx_error_set(NULL, RBX_ERR_IO, 0, "ignored"), -EINVAL);
    ck_assert_int_eq(rbx_error_wrap(NULL, "x"), -EINVAL);
}
END_TEST

START_TEST(test_kind_names_stable)
{
    ck_assert_str_eq(rbx_error_kind_name(RBX_ERR_DIGEST), "digest-mismatch");
    ck_assert_str_eq(rbx_error_kind_name(RBX_ERR_EXEC_NOT_FOUND), "command-not-found");
    ck_assert_str_eq(rbx_error_kind_name(RBX_ERR__MAX), "internal");
    for (int k = 0; k < RBX_ERR__MAX; k++)
        ck_assert_ptr_nonnull(rbx_error_kind_name((enum rbx_error_kind)k));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_error");
    TCase *tc = tcase_create("error");
    tcase_add_test(tc, test_set_once_and_wrap);
    tcase_add_test(tc, test_errno_text_and_null_err);
    tcase_add_test(tc, test_kind_names_stable);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
