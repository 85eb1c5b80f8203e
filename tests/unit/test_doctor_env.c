/* test_doctor_env.c — variables a recipe requires, and a Prisma schema's datasource against the
 * URL the process gets and the migrations next to it; secrets in URLs are never printed. */
#include "doctor_testlib.h"
#include "rbx_check.h"
#include "recipes/doctor-internal.h"

static struct test_root T;

#define SCHEMA                                                                                     \
    "generator client {\n  provider = \"prisma-client-js\"\n}\n\n"                                 \
    "// the database\ndatasource db {\n  provider = \"%s\" // comment\n"                           \
    "  url      = env(\"DATABASE_URL\")\n}\n\nmodel P {\n  id Int @id\n}\n"

static void schema(const char *provider)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), SCHEMA, provider);
    test_file(&T, "app/prisma/schema.prisma", 0644, buf);
}

static void migrations(const char *provider)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "# Please do not edit\nprovider = \"%s\"\n", provider);
    test_file(&T, "app/prisma/migrations/migration_lock.toml", 0644, buf);
    test_file(&T, "app/prisma/migrations/20260103_initial/migration.sql", 0644,
              "CREATE TABLE p();\n");
}

static void setup(void)
{
    test_root_make(&T);
    test_glibc_base(&T);
    test_glibc_prog(&T, "usr/local/bin/node");
    test_file(&T, "app/package.json", 0644, "{\"name\": \"api\"}");
    test_file(&T, "app/dist/index.js", 0644, "1");
}

static void teardown(void)
{
    rbx_doctor_report_clear(&doctor_report);
    test_root_remove(&T);
}

static char *node_argv[] = {"node", "dist/index.js", NULL};

START_TEST(test_env_missing_and_empty)
{
    char *required[] = {"JWT_SECRET", "DATABASE_URL", NULL};
    char *env[] = {"PATH=/usr/local/bin:/bin", "DATABASE_URL=postgresql://a:b@db/app", NULL};
    doctor_run(&T, node_argv, env, "/app", NULL, required);
    expect_one("env-missing", RBX_SEVERITY_ERROR, "requires_env: JWT_SECRET");
    char *empty[] = {"PATH=/usr/local/bin:/bin", "DATABASE_URL=postgresql://a:b@db/app",
                     "JWT_SECRET=", NULL};
    doctor_run(&T, node_argv, empty, "/app", NULL, required);
    expect_one("env-empty", RBX_SEVERITY_WARNING, "JWT_SECRET");
    char *fixed[] = {"PATH=/usr/local/bin:/bin", "DATABASE_URL=postgresql://a:b@db/app",
                     "JWT_SECRET=s", NULL};
    doctor_run(&T, node_argv, fixed, "/app", NULL, required);
    expect_silent();
}
END_TEST

START_TEST(test_provider_mismatch_without_secrets)
{
    schema("mysql");
    migrations("mysql");
    char *env[] = {"PATH=/usr/local/bin:/bin",
                   "DATABASE_URL=postgresql://app:s3cret@127.0.0.1:5432/app", NULL};
    doctor_run(&T, node_argv, env, "/app", NULL, NULL);
    expect_one("provider-mismatch", RBX_SEVERITY_ERROR, "provider = \"mysql\"");
    ck_assert(finding_says(&doctor_report.findings[0], "/app/prisma/schema.prisma:7"));
    ck_assert(
        finding_says(&doctor_report.findings[0], "DATABASE_URL=postgresql://…@127.0.0.1:5432/app"));
    ck_assert_msg(!strstr(doctor_text(), "s3cret"), "a password in the report:\n%s", doctor_text());
    /* fixed */
    schema("postgresql");
    migrations("postgresql");
    doctor_run(&T, node_argv, env, "/app", NULL, NULL);
    expect_silent();
    /* the schema alone says nothing without a URL to compare */
    schema("mysql");
    migrations("mysql");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_migrations_for_another_provider)
{
    schema("postgresql");
    migrations("mysql");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("provider-mismatch", RBX_SEVERITY_ERROR,
               "migration_lock.toml: provider = \"mysql\"");
}
END_TEST

START_TEST(test_migrations_missing)
{
    schema("postgresql");
    /* a warning for the server; an error for a process that runs migrate deploy */
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("migrations-missing", RBX_SEVERITY_WARNING,
               "/app/prisma/migrations: not in the image");
    test_static_prog(&T, "app/node_modules/prisma/build/index.js");
    test_link(&T, "../prisma/build/index.js", "app/node_modules/.bin/prisma");
    char *migrate[] = {"./node_modules/.bin/prisma", "migrate", "deploy", NULL};
    doctor_run(&T, migrate, NULL, "/app", NULL, NULL);
    expect_one("migrations-missing", RBX_SEVERITY_ERROR, "prisma migrate deploy");
    test_dir(&T, "app/prisma/migrations", 0755);
    doctor_run(&T, migrate, NULL, "/app", NULL, NULL);
    expect_one("migrations-missing", RBX_SEVERITY_ERROR, "no */migration.sql");
    migrations("postgresql");
    doctor_run(&T, migrate, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_schema_named_by_package_json)
{
    test_file(&T, "app/package.json", 0644, "{\"prisma\": {\"schema\": \"db/main.prisma\"}}");
    char buf[1024];
    snprintf(buf, sizeof(buf), SCHEMA, "sqlite");
    test_file(&T, "app/db/main.prisma", 0644, buf);
    test_file(&T, "app/db/migrations/1_init/migration.sql", 0644, "1");
    char *env[] = {"PATH=/usr/local/bin:/bin", "DATABASE_URL=mysql://u:p@db/app", NULL};
    doctor_run(&T, node_argv, env, "/app", NULL, NULL);
    expect_one("provider-mismatch", RBX_SEVERITY_ERROR, "/app/db/main.prisma");
    char *fixed[] = {"PATH=/usr/local/bin:/bin", "DATABASE_URL=file:./dev.db", NULL};
    doctor_run(&T, node_argv, fixed, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("doctor_env");
    TCase *tc = tcase_create("env");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_env_missing_and_empty);
    tcase_add_test(tc, test_provider_mismatch_without_secrets);
    tcase_add_test(tc, test_migrations_for_another_provider);
    tcase_add_test(tc, test_migrations_missing);
    tcase_add_test(tc, test_schema_named_by_package_json);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
