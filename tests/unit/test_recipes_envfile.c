/* test_recipes_envfile.c — docker's --env-file format, and its errors with file:line. */
#include "recipes/recipes.h"
#include "rbx_check.h"

#include <string.h>

static char path[64];

static void write_file(const char *content)
{
    strcpy(path, "/tmp/rbx-envfile-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

START_TEST(test_parse)
{
    write_file("# comment\n\nA=1\r\n  B=two words\nFROM_CALLER\nMISSING\nA=override\nEMPTY=\n");
    char *caller[] = {"FROM_CALLER=c", NULL};
    char **env = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_env_file_parse(path, caller, &env, &err), 0);
    ck_assert_str_eq(rbx_env_get(env, "A"), "override");
    ck_assert_str_eq(rbx_env_get(env, "B"), "two words");
    ck_assert_str_eq(rbx_env_get(env, "FROM_CALLER"), "c");
    ck_assert_ptr_null(rbx_env_get(env, "MISSING"));
    ck_assert_str_eq(rbx_env_get(env, "EMPTY"), "");
    ck_assert_uint_eq(rbx_strv_len(env), 4);
    rbx_strv_free(env);
    unlink(path);
}
END_TEST

START_TEST(test_errors_name_file_and_line)
{
    write_file("OK=1\nBAD KEY=2\n");
    char **env = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_env_file_parse(path, NULL, &env, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, ":2: variable name \"BAD KEY\"");
    err = rbx_error_free(err);
    rbx_strv_free(env);
    env = NULL;
    unlink(path);

    write_file("=novalue\n");
    ck_assert_int_lt(rbx_env_file_parse(path, NULL, &env, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, ":1:");
    err = rbx_error_free(err);
    unlink(path);

    ck_assert_int_lt(rbx_env_file_parse("/nonexistent/env", NULL, &env, &err), 0);
    ck_assert_error(err, RBX_ERR_NOT_FOUND, "env file: /nonexistent/env");
    rbx_error_free(err);
    rbx_strv_free(env);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_envfile");
    TCase *tc = tcase_create("envfile");
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_errors_name_file_and_line);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
