/* test_recipes_report.c — the run report carries names, never values, and says how it ended. */
#include "recipes/recipes.h"
#include "rbx_check.h"

#include <string.h>

START_TEST(test_report_fields)
{
    char *argv[] = {"sh", "-c", "exit 3", NULL};
    char *env[] = {"SECRET=hunter2", NULL};
    char *names[] = {"SECRET", NULL};
    struct rbx_spec spec = {.argv = argv, .env = env, .cwd = "/srv", .hostname = "reprobox"};
    struct rbx_compose_info info = {.env_names = names};
    struct rbx_result res = {.exit_code = 3, .cwd_created = true, .exec_path = "/bin/sh",
                             .stdout_tail = "a\nb\n", .stderr_tail = "err"};
    struct rbx_image img = {.reference = "oci:x", .config_digest = "sha256:c", .n_layers = 2};
    struct rbx_run_timings t = {.unpack_ns = 1500000, .setup_ns = 2000000, .run_ns = 3000000};
    json_t *r = rbx_run_report(&img, &spec, &info, &res, &t, NULL);
    char *text = json_dumps(r, JSON_COMPACT);
    ck_assert_ptr_null(strstr(text, "hunter2"));
    ck_assert_ptr_nonnull(strstr(text, "\"SECRET\""));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "result"), "status")), "exited");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r, "result"), "exit_code")), 3);
    ck_assert_uint_eq(json_array_size(json_object_get(r, "stdout_tail")), 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "stderr_tail"), 0)), "err");
    ck_assert(json_is_true(json_object_get(json_object_get(r, "command"), "cwd_created")));
    ck_assert_uint_eq(json_array_size(json_object_get(r, "notes")), 1);
    ck_assert(json_real_value(json_object_get(json_object_get(r, "durations_ms"), "unpack")) == 1.5);
    free(text);
    json_decref(r);
}
END_TEST

START_TEST(test_report_signal_and_error)
{
    struct rbx_result res = {.exit_code = 137, .signal = 9};
    json_t *r = rbx_run_report(NULL, NULL, NULL, &res, NULL, NULL);
    json_t *result = json_object_get(r, "result");
    ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "signaled");
    ck_assert_str_eq(json_string_value(json_object_get(result, "signal")), "SIGKILL");
    json_decref(r);

    struct rbx_error e = {.kind = RBX_ERR_EXEC_NOT_FOUND, .errnum = ENOENT, .message = "\"pnpm\": not found"};
    struct rbx_result res2 = {.exit_code = 127};
    r = rbx_run_report(NULL, NULL, NULL, &res2, NULL, &e);
    result = json_object_get(r, "result");
    ck_assert_str_eq(json_string_value(json_object_get(result, "status")), "error");
    ck_assert_int_eq(json_integer_value(json_object_get(result, "exit_code")), 127);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(result, "error"), "kind")), "command-not-found");
    json_decref(r);
}
END_TEST

START_TEST(test_report_invalid_utf8_output)
{
    struct rbx_result res = {.stdout_tail = "ok\n\xff\xfe bad\n"};
    json_t *r = rbx_run_report(NULL, NULL, NULL, &res, NULL, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(r, "stdout_tail")), 2);
    char *text = json_dumps(r, 0);
    ck_assert_ptr_nonnull(text);
    free(text);
    json_decref(r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_report");
    TCase *tc = tcase_create("report");
    tcase_add_test(tc, test_report_fields);
    tcase_add_test(tc, test_report_signal_and_error);
    tcase_add_test(tc, test_report_invalid_utf8_output);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
