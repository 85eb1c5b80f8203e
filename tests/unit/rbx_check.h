/* rbx_check.h — what every Check suite shares: a main that runs one suite, and helpers. */
#pragma once

#include <check.h>
#include <stdlib.h>

#define RBX_TEST_MAIN(suite_fn)                                                                    \
    int main(void)                                                                                 \
    {                                                                                              \
        SRunner *sr = srunner_create(suite_fn());                                                  \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                          \
    }

/* Assert that an rbx_error was set with this kind and that its message contains `needle`. */
#define ck_assert_error(err, want_kind, needle)                                                    \
    do {                                                                                           \
        ck_assert_ptr_nonnull(err);                                                                \
        ck_assert_str_eq(rbx_error_kind_name((err)->kind), rbx_error_kind_name(want_kind));        \
        ck_assert_msg(strstr((err)->message, (needle)) != NULL, "message \"%s\" lacks \"%s\"",     \
                      (err)->message, (needle));                                                   \
    } while (0)
