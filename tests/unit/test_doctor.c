/* test_doctor.c — the findings of several processes merged, errors before warnings, the JSON
 * and human reports, and docs/doctor.md naming every check id. */
#include "doctor_testlib.h"
#include "rbx_check.h"
#include "recipes/doctor-internal.h"

#include <stdio.h>

static struct test_root T;

static void setup(void)
{
    test_root_make(&T);
    test_glibc_base(&T);
}

static void teardown(void)
{
    rbx_doctor_report_clear(&doctor_report);
    test_root_remove(&T);
}

static char *path_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};

static void run_two(void)
{
    char *a1[] = {"sh", "-c", "pnpm db:migrate", NULL};
    char *a2[] = {"sh", "-c", "pnpm start; $X", NULL};
    struct rbx_doctor_process p[] = {
        {"migrate", a1, path_env, "/", NULL, NULL},
        {"start", a2, path_env, "/", NULL, NULL},
    };
    rbx_doctor_report_clear(&doctor_report);
    ck_assert_int_eq(rbx_doctor_check(T.fd, "amd64", p, 2, 0, &doctor_report, NULL), 0);
}

START_TEST(test_same_finding_for_two_processes_is_one)
{
    run_two();
    ck_assert_uint_eq(doctor_report.n_errors, 1);
    ck_assert_uint_eq(doctor_report.n_warnings, 1);
    const struct rbx_finding *f = &doctor_report.findings[0];
    ck_assert_str_eq(f->check, "command-not-found");
    ck_assert_uint_eq(rbx_strv_len(f->processes), 2);
    ck_assert_str_eq(f->processes[0], "migrate");
    ck_assert_str_eq(f->processes[1], "start");
    ck_assert(finding_says(f, "sh -c:1: pnpm db:migrate"));
    ck_assert(finding_says(f, "sh -c:1: pnpm start"));
    ck_assert_str_eq(doctor_report.findings[1].check, "command-unresolved");
    ck_assert_str_eq(doctor_report.processes[0], "migrate");
    ck_assert_str_eq(doctor_report.processes[1], "start");
}
END_TEST

START_TEST(test_json_report)
{
    run_two();
    doctor_report.image = strdup("oci:./out:api");
    json_t *j = rbx_doctor_report_json(&doctor_report);
    ck_assert_str_eq(json_string_value(json_object_get(j, "schema")), "reprobox.doctor/v1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "image")), "oci:./out:api");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "errors")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "warnings")), 1);
    json_t *f = json_array_get(json_object_get(j, "findings"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(f, "check")), "command-not-found");
    ck_assert_str_eq(json_string_value(json_object_get(f, "severity")), "error");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(f, "processes"), 1)),
                     "start");
    ck_assert(json_is_string(json_object_get(f, "message")));
    ck_assert(json_is_string(json_object_get(f, "hint")));
    ck_assert_uint_eq(json_array_size(json_object_get(f, "evidence")), 3);
    json_t *w = json_array_get(json_object_get(j, "findings"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(w, "severity")), "warning");
    ck_assert(json_is_null(json_object_get(w, "hint")));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "processes")), 2);
    json_decref(j);
}
END_TEST

START_TEST(test_text_report_groups_by_severity)
{
    run_two();
    char *t = rbx_doctor_report_text(&doctor_report);
    char *errors = strstr(t, "\nErrors:\n");
    char *warnings = strstr(t, "\nWarnings:\n");
    ck_assert_msg(errors && warnings && errors < warnings, "%s", t);
    ck_assert_msg(strstr(t, "1 error, 1 warning"), "%s", t);
    ck_assert_msg(strstr(t, "  command-not-found [migrate, start]: \"pnpm\" is not in the image"),
                  "%s", t);
    ck_assert_msg(strstr(t, "      hint: "), "%s", t);
    free(t);
    rbx_doctor_report_clear(&doctor_report);
    char *ok[] = {"sh", "-c", "true", NULL};
    doctor_run(&T, ok, NULL, NULL, NULL, NULL);
    t = rbx_doctor_report_text(&doctor_report);
    ck_assert_msg(strstr(t, "no problems found"), "%s", t);
    ck_assert_msg(!strstr(t, "Errors:"), "%s", t);
    free(t);
}
END_TEST

START_TEST(test_every_check_is_documented_once)
{
    const char *src = getenv("RBX_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/doctor.md", src ? src : ".");
    char *doc = NULL;
    size_t len = 0;
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, path, 1 << 20, &doc, &len, NULL), 0);
    for (size_t i = 0; rbx_doctor_checks[i]; i++) {
        for (size_t k = 0; k < i; k++)
            ck_assert_str_ne(rbx_doctor_checks[k], rbx_doctor_checks[i]);
        char heading[128];
        snprintf(heading, sizeof(heading), "### `%s`", rbx_doctor_checks[i]);
        ck_assert_msg(strstr(doc, heading), "docs/doctor.md has no section %s", heading);
    }
    free(doc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("doctor");
    TCase *tc = tcase_create("report");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_same_finding_for_two_processes_is_one);
    tcase_add_test(tc, test_json_report);
    tcase_add_test(tc, test_text_report_groups_by_severity);
    tcase_add_test(tc, test_every_check_is_documented_once);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
