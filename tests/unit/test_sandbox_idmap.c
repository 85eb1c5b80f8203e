/* test_sandbox_idmap.c — id maps (idmap.c): parsing /proc/PID/uid_map text and the identity map a
 * sandbox's user namespace gets, from the maps real root and rootless users actually have. */
#include "sandbox/sandbox-internal.h"

#include "rbx_check.h"

#include <string.h>

static void child_map_of(const char *own, const char *want)
{
    static struct rbx_idmap m, c;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_msg(rbx_idmap_parse(own, "uid_map", &m, &err) == 0, "%s", err ? err->message : "");
    rbx_idmap_identity(&m, &c);
    char buf[256];
    ck_assert_uint_eq(rbx_idmap_format(&c, buf, sizeof(buf)), strlen(want));
    ck_assert_str_eq(buf, want);
}

START_TEST(test_idmap_real_root_gets_everything)
{
    child_map_of("         0          0 4294967295\n", "0 0 4294967295\n");
}
END_TEST

START_TEST(test_idmap_rootless_with_subids)
{
    /* newuidmap's map: the user as 0, its 65536 subordinate ids as 1..65536. */
    child_map_of("         0       1000          1\n         1     100000      65536\n",
                 "0 0 1\n1 1 65536\n");
}
END_TEST

START_TEST(test_idmap_rootless_single_id)
{
    child_map_of("0 1000 1", "0 0 1\n");
}
END_TEST

START_TEST(test_idmap_nested_podman_like)
{
    /* Inside another runtime's namespace: whatever we see, the child sees the same numbers. */
    child_map_of("0 1000 1\n1 100000 999\n1000 1000 1\n1001 101000 64535\n",
                 "0 0 1\n1 1 999\n1000 1000 1\n1001 1001 64535\n");
}
END_TEST

START_TEST(test_idmap_contains_and_count)
{
    static struct rbx_idmap m;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_idmap_parse("0 1000 1\n1 100000 65536\n", "m", &m, &err), 0);
    ck_assert_uint_eq(rbx_idmap_count(&m), 65537);
    ck_assert(rbx_idmap_contains(&m, 0));
    ck_assert(rbx_idmap_contains(&m, 1000));
    ck_assert(rbx_idmap_contains(&m, 65536));
    ck_assert(!rbx_idmap_contains(&m, 65537));
    ck_assert_int_eq(rbx_idmap_parse("0 0 4294967295", "m", &m, &err), 0);
    ck_assert(rbx_idmap_contains(&m, 4294967294u));
    ck_assert(!rbx_idmap_contains(&m, 4294967295u));
}
END_TEST

static void parse_fails(const char *text, enum rbx_error_kind kind, const char *needle)
{
    static struct rbx_idmap m;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_idmap_parse(text, "uid_map", &m, &err), 0);
    ck_assert_error(err, kind, needle);
}

START_TEST(test_idmap_malformed)
{
    parse_fails("", RBX_ERR_SANDBOX, "uid_map is empty");
    parse_fails("0 0\n", RBX_ERR_MALFORMED, "uid_map:1: expected");
    parse_fails("0 0 1\na b c\n", RBX_ERR_MALFORMED, "uid_map:2: expected");
    parse_fails("0 0 1 4\n", RBX_ERR_MALFORMED, "uid_map:1: trailing text");
    parse_fails("0 0 0\n", RBX_ERR_MALFORMED, "out of bounds");
    parse_fails("4294967295 0 2\n", RBX_ERR_MALFORMED, "out of bounds");
    parse_fails("0 0 4294967296\n", RBX_ERR_MALFORMED, "expected");
    parse_fails("-1 0 1\n", RBX_ERR_MALFORMED, "expected");
}
END_TEST

START_TEST(test_idmap_too_many_ranges)
{
    size_t cap = 400 * 32;
    char *text = rbx_xmalloc(cap);
    size_t n = 0;
    for (int i = 0; i < 341; i++)
        n += (size_t)snprintf(text + n, cap - n, "%d %d 1\n", i, i);
    parse_fails(text, RBX_ERR_LIMIT, "more than 340 ranges");
    free(text);
}
END_TEST

START_TEST(test_idmap_format_reports_needed_length)
{
    static struct rbx_idmap m;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_idmap_parse("0 0 1\n1 1 65536\n", "m", &m, &err), 0);
    char small[8];
    ck_assert_uint_eq(rbx_idmap_format(&m, small, sizeof(small)), 16);
    ck_assert_uint_eq(strlen(small), 6); /* whole lines only */
    ck_assert_uint_eq(rbx_idmap_format(&m, NULL, 0), 16);
}
END_TEST

START_TEST(test_idmap_read_self)
{
    static struct rbx_idmap m;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_idmap_read_self("uid_map", &m, &err), 0);
    ck_assert(rbx_idmap_contains(&m, 0) || getuid() != 0);
}
END_TEST

static Suite *idmap_suite(void)
{
    Suite *s = suite_create("sandbox_idmap");
    TCase *tc = tcase_create("idmap");
    tcase_add_test(tc, test_idmap_real_root_gets_everything);
    tcase_add_test(tc, test_idmap_rootless_with_subids);
    tcase_add_test(tc, test_idmap_rootless_single_id);
    tcase_add_test(tc, test_idmap_nested_podman_like);
    tcase_add_test(tc, test_idmap_contains_and_count);
    tcase_add_test(tc, test_idmap_malformed);
    tcase_add_test(tc, test_idmap_too_many_ranges);
    tcase_add_test(tc, test_idmap_format_reports_needed_length);
    tcase_add_test(tc, test_idmap_read_self);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(idmap_suite)
