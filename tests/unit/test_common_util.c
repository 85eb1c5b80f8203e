/* test_common_util.c — string vectors, environment vectors, sizes. */
#include "common/common.h"
#include "rbx_check.h"

#include <string.h>

START_TEST(test_env_set_replaces_by_key)
{
    char **env = NULL;
    rbx_env_set(&env, "PATH=/bin");
    rbx_env_set(&env, "FOO=1");
    rbx_env_set(&env, "PATH=/usr/bin");
    rbx_env_set(&env, "FOOBAR=2");
    ck_assert_uint_eq(rbx_strv_len(env), 3);
    ck_assert_str_eq(env[0], "PATH=/usr/bin");
    ck_assert_str_eq(rbx_env_get(env, "FOO"), "1");
    ck_assert_str_eq(rbx_env_get(env, "FOOBAR"), "2");
    ck_assert_ptr_null(rbx_env_get(env, "FO"));
    rbx_strv_free(env);
}
END_TEST

START_TEST(test_parse_size)
{
    uint64_t v;
    ck_assert_int_eq(rbx_parse_size("512m", &v), 0);
    ck_assert_uint_eq(v, 512ull << 20);
    ck_assert_int_eq(rbx_parse_size("2G", &v), 0);
    ck_assert_uint_eq(v, 2ull << 30);
    ck_assert_int_eq(rbx_parse_size("100", &v), 0);
    ck_assert_uint_eq(v, 100);
    ck_assert_int_eq(rbx_parse_size("1kb", &v), 0);
    ck_assert_uint_eq(v, 1024);
    ck_assert_int_lt(rbx_parse_size("-1", &v), 0);
    ck_assert_int_lt(rbx_parse_size("12x", &v), 0);
    ck_assert_int_lt(rbx_parse_size("", &v), 0);
    ck_assert_int_lt(rbx_parse_size("99999999999999999999t", &v), 0);
}
END_TEST

START_TEST(test_strv)
{
    char **v = NULL;
    rbx_strv_push(&v, "a");
    rbx_strv_push_take(&v, rbx_xstrdup("b"));
    char **c = rbx_strv_copy(v);
    ck_assert_uint_eq(rbx_strv_len(c), 2);
    ck_assert_str_eq(c[1], "b");
    ck_assert_ptr_null(c[2]);
    rbx_strv_free(v);
    rbx_strv_free(c);
    ck_assert_ptr_null(rbx_strv_copy(NULL));
    ck_assert_uint_eq(rbx_strv_len(NULL), 0);
}
END_TEST

START_TEST(test_random_hex)
{
    char a[17], b[17];
    rbx_random_hex(a, 16);
    rbx_random_hex(b, 16);
    ck_assert_uint_eq(strlen(a), 16);
    ck_assert_str_ne(a, b);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 16);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, test_env_set_replaces_by_key);
    tcase_add_test(tc, test_parse_size);
    tcase_add_test(tc, test_strv);
    tcase_add_test(tc, test_random_hex);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
