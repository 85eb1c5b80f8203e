/* test_common_tail.c — a bounded output tail: last N lines, fixed memory whatever is fed. */
#include "common/common.h"
#include "rbx_check.h"

#include <string.h>

START_TEST(test_keeps_last_lines)
{
    struct rbx_tail *t = rbx_tail_new(3, 4096);
    for (int i = 1; i <= 10; i++) {
        char line[16];
        snprintf(line, sizeof(line), "line %d\n", i);
        rbx_tail_feed(t, line, strlen(line));
    }
    ck_assert_str_eq(rbx_tail_text(t), "line 8\nline 9\nline 10\n");
    rbx_tail_feed(t, "partial", 7);
    ck_assert_str_eq(rbx_tail_text(t), "line 9\nline 10\npartial");
    rbx_tail_free(t);
}
END_TEST

START_TEST(test_byte_bound_and_total)
{
    struct rbx_tail *t = rbx_tail_new(64, 16);
    char big[1000];
    memset(big, 'x', sizeof(big));
    for (int i = 0; i < 1000; i++)
        rbx_tail_feed(t, big, sizeof(big));
    rbx_tail_feed(t, "\nend", 4);
    /* The kept bytes start inside a line: that fragment is dropped, the whole line after it stays. */
    ck_assert_str_eq(rbx_tail_text(t), "end");
    ck_assert_uint_eq(rbx_tail_total(t), 1000 * 1000 + 4);
    rbx_tail_free(t);
}
END_TEST

START_TEST(test_wraps_in_small_pieces)
{
    struct rbx_tail *t = rbx_tail_new(2, 10);
    const char *input = "abc\ndefgh\nijklmnop\n";
    for (const char *p = input; *p; p++)
        rbx_tail_feed(t, p, 1);
    ck_assert_str_eq(rbx_tail_text(t), "ijklmnop\n");
    rbx_tail_free(t);
}
END_TEST

START_TEST(test_empty)
{
    struct rbx_tail *t = rbx_tail_new(64, 64);
    ck_assert_str_eq(rbx_tail_text(t), "");
    rbx_tail_free(t);
    ck_assert_ptr_null(rbx_tail_free(NULL));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_tail");
    TCase *tc = tcase_create("tail");
    tcase_add_test(tc, test_keeps_last_lines);
    tcase_add_test(tc, test_byte_bound_and_total);
    tcase_add_test(tc, test_wraps_in_small_pieces);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
