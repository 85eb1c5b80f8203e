/* test_common_sha256.c — digests as OCI writes them, streaming equals one-shot. */
#include "common/common.h"
#include "rbx_check.h"

#include <string.h>

START_TEST(test_known_vectors)
{
    char out[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf("", 0, out);
    ck_assert_str_eq(out, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    struct rbx_sha256 *h = rbx_sha256_new();
    rbx_sha256_update(h, "a", 1);
    rbx_sha256_update(h, "bc", 2);
    rbx_sha256_final(h, out);
    rbx_sha256_free(h);
    ck_assert_str_eq(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_digest_valid)
{
    ck_assert(rbx_digest_valid("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    ck_assert(!rbx_digest_valid("sha256:E3B0C44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    ck_assert(!rbx_digest_valid("sha256:e3b0"));
    ck_assert(!rbx_digest_valid("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    ck_assert(!rbx_digest_valid("sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    ck_assert(!rbx_digest_valid(NULL));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_sha256");
    TCase *tc = tcase_create("sha256");
    tcase_add_test(tc, test_known_vectors);
    tcase_add_test(tc, test_digest_valid);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
