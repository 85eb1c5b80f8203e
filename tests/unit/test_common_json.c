/* test_common_json.c — strict JSON input: depth cap, duplicate keys, located errors. */
#include "common/common.h"
#include "rbx_check.h"

#include <string.h>

START_TEST(test_depth_cap)
{
    struct rbx_error *err = NULL;
    size_t n = 100000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    ck_assert_ptr_null(rbx_json_loadb(deep, 2 * n, "index.json", &err));
    ck_assert_error(err, RBX_ERR_LIMIT, "index.json: JSON nested deeper than 64 levels");
    rbx_error_free(err);
    err = NULL;
    /* 64 levels is fine; brackets inside strings do not count. */
    char ok[200];
    memset(ok, '[', 64);
    strcpy(ok + 64, "\"[[[[{{{{\"");
    memset(ok + 64 + 10, ']', 64);
    ok[138] = '\0';
    json_t *j = rbx_json_loadb(ok, strlen(ok), "ok", &err);
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    free(deep);
}
END_TEST

START_TEST(test_duplicate_keys_rejected_with_location)
{
    struct rbx_error *err = NULL;
    const char *doc = "{\n  \"a\": 1,\n  \"a\": 2\n}";
    ck_assert_ptr_null(rbx_json_loadb(doc, strlen(doc), "manifest", &err));
    ck_assert_error(err, RBX_ERR_MALFORMED, "manifest:3:");
    ck_assert_ptr_nonnull(strstr(err->message, "duplicate"));
    rbx_error_free(err);
}
END_TEST

START_TEST(test_malformed_location)
{
    struct rbx_error *err = NULL;
    const char *doc = "{\"a\": [1, 2,, 3]}";
    ck_assert_ptr_null(rbx_json_loadb(doc, strlen(doc), "config", &err));
    ck_assert_error(err, RBX_ERR_MALFORMED, "config:1:");
    rbx_error_free(err);
}
END_TEST

START_TEST(test_canonical_dump_sorted_compact)
{
    struct rbx_error *err = NULL;
    const char *doc = "{ \"b\": 1, \"a\": {\"y\": true, \"x\": null} }";
    json_t *j = rbx_json_loadb(doc, strlen(doc), "x", &err);
    char *s = rbx_json_dump_canonical(j);
    ck_assert_str_eq(s, "{\"a\":{\"x\":null,\"y\":true},\"b\":1}");
    free(s);
    json_decref(j);
}
END_TEST

START_TEST(test_typed_getters)
{
    struct rbx_error *err = NULL;
    const char *doc = "{\"s\": \"v\", \"n\": 3, \"a\": [\"x\", \"y\"], \"bad\": [\"x\", 1], \"z\": null}";
    json_t *j = rbx_json_loadb(doc, strlen(doc), "cfg", &err);
    const char *s = NULL;
    ck_assert_int_eq(rbx_json_get_string(j, "s", "cfg", &s, &err), 0);
    ck_assert_str_eq(s, "v");
    ck_assert_int_eq(rbx_json_get_string(j, "missing", "cfg", &s, &err), 0);
    ck_assert_ptr_null(s);
    ck_assert_int_lt(rbx_json_get_string(j, "n", "cfg", &s, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "cfg.n: expected a string");
    err = rbx_error_free(err);
    char **v = NULL;
    ck_assert_int_eq(rbx_json_get_strv(j, "a", "cfg", &v, &err), 0);
    ck_assert_uint_eq(rbx_strv_len(v), 2);
    ck_assert_str_eq(v[1], "y");
    rbx_strv_free(v);
    ck_assert_int_eq(rbx_json_get_strv(j, "z", "cfg", &v, &err), 0);
    ck_assert_ptr_null(v);
    ck_assert_int_lt(rbx_json_get_strv(j, "bad", "cfg", &v, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "cfg.bad[1]: expected a string");
    rbx_error_free(err);
    json_decref(j);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("common_json");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_depth_cap);
    tcase_add_test(tc, test_duplicate_keys_rejected_with_location);
    tcase_add_test(tc, test_malformed_location);
    tcase_add_test(tc, test_canonical_dump_sorted_compact);
    tcase_add_test(tc, test_typed_getters);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
