/* test_common_progress.c — the progress displays: what reaches the terminal, drawn in place. */
#include "common/common.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>

static char *drain(int fd)
{
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(test_lines_one_per_item_redrawn_in_place)
{
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    struct rbx_progress_lines *p = rbx_progress_lines_new(fds[1], 2);
    rbx_progress_lines_set(p, 0, "sha256:aaaa", 0, 2048, "waiting");
    const char *first = drain(fds[0]);
    /* The first draw prints both lines and no cursor-up. */
    ck_assert_uint_eq(count(first, "\n"), 2);
    ck_assert_ptr_null(strstr(first, "\033[2A"));
    ck_assert_ptr_nonnull(strstr(first, "sha256:aaaa"));
    ck_assert_ptr_nonnull(strstr(first, "waiting"));

    /* A change of state is drawn at once, over the previous lines. */
    rbx_progress_lines_set(p, 1, "sha256:bbbb", 1024, 1024, "done");
    const char *second = drain(fds[0]);
    ck_assert_ptr_nonnull(strstr(second, "\033[2A"));
    ck_assert_ptr_nonnull(strstr(second, "[====================]"));
    ck_assert_ptr_nonnull(strstr(second, "1.0 KiB"));

    /* Out of range lines are ignored; the summary comes after a last draw. */
    rbx_progress_lines_set(p, 7, "x", 0, 0, "x");
    rbx_progress_lines_set(p, 0, "sha256:aaaa", 1024, 2048, "waiting");
    drain(fds[0]);
    rbx_progress_lines_free(p, "pulled 2 layers");
    const char *last = drain(fds[0]);
    ck_assert_ptr_nonnull(strstr(last, "pulled 2 layers\n"));
    close(fds[0]);
    close(fds[1]);
}
END_TEST

START_TEST(test_lines_free_draws_once_even_when_never_set)
{
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    rbx_progress_lines_free(rbx_progress_lines_new(fds[1], 1), NULL);
    ck_assert_uint_eq(count(drain(fds[0]), "\n"), 1);
    ck_assert_ptr_null(rbx_progress_lines_free(NULL, "x"));
    close(fds[0]);
    close(fds[1]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_progress");
    TCase *tc = tcase_create("lines");
    tcase_add_test(tc, test_lines_one_per_item_redrawn_in_place);
    tcase_add_test(tc, test_lines_free_draws_once_even_when_never_set);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
