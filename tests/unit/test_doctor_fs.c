/* test_doctor_fs.c — the working directory (missing, not a directory, not enterable by the user),
 * USER's user and group, and broken symlinks reported in groups by where they lead. */
#include "doctor_testlib.h"
#include "rbx_check.h"
#include "recipes/doctor-internal.h"

#include <unistd.h>

static struct test_root T;

static void setup(void)
{
    test_root_make(&T);
    test_glibc_base(&T);
    test_glibc_prog(&T, "usr/local/bin/node");
    test_file(&T, "app/dist/index.js", 0644, "console.log('hi')\n");
}

static void teardown(void)
{
    rbx_doctor_report_clear(&doctor_report);
    test_root_remove(&T);
}

START_TEST(test_workdir_missing_loses_relative_paths)
{
    char *argv[] = {"node", "dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/app/apps/api", NULL, NULL);
    expect_one("workdir-missing", RBX_SEVERITY_ERROR, "dist/index.js is at /app/dist/index.js");
    ck_assert(finding_says(&doctor_report.findings[0], "/app/apps is not in the image"));
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_workdir_missing_with_absolute_command_is_a_warning)
{
    char *argv[] = {"node", "/app/dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/data", NULL, NULL);
    expect_one("workdir-missing", RBX_SEVERITY_WARNING, "/data");
    test_dir(&T, "data", 0755);
    doctor_run(&T, argv, NULL, "/data", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_workdir_not_dir)
{
    test_file(&T, "srv", 0644, "a file\n");
    char *argv[] = {"node", "/app/dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/srv", NULL, NULL);
    expect_one("workdir-not-dir", RBX_SEVERITY_ERROR, "/srv");
    ck_assert_int_eq(unlinkat(T.fd, "srv", 0), 0);
    test_dir(&T, "srv", 0755);
    doctor_run(&T, argv, NULL, "/srv", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_workdir_denied)
{
    test_dir(&T, "app", 0700);
    char *argv[] = {"node", "dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/app", "app", NULL);
    expect_one("workdir-denied", RBX_SEVERITY_ERROR, "/app: mode 0700");
    test_dir(&T, "app", 0755);
    doctor_run(&T, argv, NULL, "/app", "app", NULL);
    expect_silent();
    /* the group of a supplementary membership is enough */
    test_dir(&T, "app", 0750);
    ck_assert_int_eq(fchownat(T.fd, "app", 0, 100, AT_SYMLINK_NOFOLLOW), 0);
    doctor_run(&T, argv, NULL, "/app", "app", NULL);
    expect_silent();
}
END_TEST

START_TEST(test_user_and_group_unknown)
{
    char *argv[] = {"node", "/app/dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/", "nobody", NULL);
    expect_one("user-unknown", RBX_SEVERITY_ERROR, "no line for \"nobody\"");
    doctor_run(&T, argv, NULL, "/", "app:staff", NULL);
    expect_one("group-unknown", RBX_SEVERITY_ERROR, "staff");
    /* numeric ids need no line; names that are there resolve */
    doctor_run(&T, argv, NULL, "/", "4242:4242", NULL);
    expect_silent();
    doctor_run(&T, argv, NULL, "/", "app:users", NULL);
    expect_silent();
    ck_assert_int_eq(unlinkat(T.fd, "etc/passwd", 0), 0);
    doctor_run(&T, argv, NULL, "/", "app", NULL);
    expect_one("user-unknown", RBX_SEVERITY_ERROR, "/etc/passwd: not in the image");
}
END_TEST

/* pnpm's layout without its store: one finding for the whole group. */
START_TEST(test_broken_symlinks_grouped_by_where_they_lead)
{
    test_link(&T, ".pnpm/express@4.21.2/node_modules/express", "app/node_modules/express");
    test_link(&T, ".pnpm/lodash@4.17.21/node_modules/lodash", "app/node_modules/lodash");
    test_link(&T, "../.pnpm/@prisma+client@5.22.0/node_modules/@prisma/client",
              "app/node_modules/@prisma/client");
    test_link(&T, "../lodash/cli.js", "app/node_modules/.bin/lodash");
    char *argv[] = {"node", "/app/dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("broken-symlinks", RBX_SEVERITY_ERROR,
               "4 links under /app/node_modules point into /app/node_modules/.pnpm");
    ck_assert(finding_says(&doctor_report.findings[0], "... and 1 more"));
    ck_assert(finding_says(&doctor_report.findings[0], "node-linker=hoisted"));
    /* fixed: the store is there */
    test_dir(&T, "app/node_modules/.pnpm/express@4.21.2/node_modules/express", 0755);
    test_dir(&T, "app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash", 0755);
    test_file(&T, "app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/cli.js", 0644, "1");
    test_dir(&T, "app/node_modules/.pnpm/@prisma+client@5.22.0/node_modules/@prisma/client", 0755);
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_broken_symlinks_elsewhere_are_counted_not_listed)
{
    test_link(&T, "/nonexistent", "usr/share/doc/dangling");
    test_link(&T, "/lib/systemd/system/x.service", "etc/systemd/system/y.wants/x.service");
    test_link(&T, "../proc/self/mounts", "etc/mtab"); /* made by the runtime: never reported */
    test_link(&T, "loop", "usr/share/loop");
    char *argv[] = {"node", "/app/dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
    ck_assert_uint_eq(doctor_report.links_elsewhere, 3);
    doctor_run_flags(&T, argv, NULL, "/app", NULL, NULL, RBX_DOCTOR_ALL_LINKS);
    ck_assert_uint_eq(doctor_report.n_findings, 3);
    ck_assert_uint_eq(doctor_report.n_warnings, 3);
    bool named = false, loop = false;
    for (size_t i = 0; i < doctor_report.n_findings; i++) {
        named = named ||
                finding_says(&doctor_report.findings[i], "/usr/share/doc/dangling -> /nonexistent");
        loop = loop || strstr(doctor_report.findings[i].message, "a loop") != NULL;
    }
    ck_assert_msg(named && loop, "%s", doctor_text());
}
END_TEST

/* A link on PATH that leads nowhere is a broken command, even outside the app. */
START_TEST(test_broken_symlink_on_path_is_an_error)
{
    test_link(&T, "/etc/alternatives/pager", "usr/bin/pager");
    char *argv[] = {"node", "/app/dist/index.js", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("broken-symlinks", RBX_SEVERITY_ERROR, "/etc/alternatives");
    test_file(&T, "etc/alternatives/pager", 0755, "#!/bin/sh\n");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("doctor_fs");
    TCase *tc = tcase_create("fs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_workdir_missing_loses_relative_paths);
    tcase_add_test(tc, test_workdir_missing_with_absolute_command_is_a_warning);
    tcase_add_test(tc, test_workdir_not_dir);
    tcase_add_test(tc, test_workdir_denied);
    tcase_add_test(tc, test_user_and_group_unknown);
    tcase_add_test(tc, test_broken_symlinks_grouped_by_where_they_lead);
    tcase_add_test(tc, test_broken_symlinks_elsewhere_are_counted_not_listed);
    tcase_add_test(tc, test_broken_symlink_on_path_is_an_error);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
