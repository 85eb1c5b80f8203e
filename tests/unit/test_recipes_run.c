/* test_recipes_run.c — docker run's rules for Entrypoint, Cmd, env, workdir and user. */
#include "recipes/recipes.h"
#include "rbx_check.h"

#include <string.h>

static char *argv_join(char **v)
{
    size_t n = 0;
    for (size_t i = 0; v && v[i]; i++)
        n += strlen(v[i]) + 1;
    char *s = calloc(1, n + 1);
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, v[i]);
    }
    return s;
}

static char *E[] = {"/bin/echo", "entry", NULL};
static char *C[] = {"default", NULL};

struct argv_case {
    char **entrypoint, **cmd;
    const char *flag_entrypoint;
    char *args[4];
    const char *want; /* NULL: error */
};

START_TEST(test_entrypoint_cmd_combinations)
{
    static struct argv_case cases[] = {
        {E, C, NULL, {NULL}, "/bin/echo entry default"},           /* image as is */
        {E, C, NULL, {"x", "y", NULL}, "/bin/echo entry x y"},      /* args replace Cmd only */
        {E, C, "/bin/sh", {NULL}, "/bin/sh"},                       /* --entrypoint clears Cmd */
        {E, C, "/bin/sh", {"-c", "id", NULL}, "/bin/sh -c id"},     /* ... args become its Cmd */
        {E, C, "", {"ls", NULL}, "ls"},                             /* --entrypoint "" */
        {NULL, C, NULL, {NULL}, "default"},                         /* Cmd alone */
        {NULL, C, NULL, {"node", "-v", NULL}, "node -v"},
        {E, NULL, NULL, {NULL}, "/bin/echo entry"},
        {NULL, NULL, NULL, {NULL}, NULL},                           /* nothing to run */
        {E, C, "", {NULL}, NULL},                                   /* cleared, no args */
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        struct rbx_image_config cfg = {.entrypoint = cases[i].entrypoint, .cmd = cases[i].cmd};
        struct rbx_run_request req = {.args = cases[i].args, .entrypoint = cases[i].flag_entrypoint};
        struct rbx_spec spec = {0};
        struct rbx_compose_info info = {0};
        struct rbx_error *err = NULL;
        int r = rbx_run_compose(&cfg, &req, &spec, &info, &err);
        if (!cases[i].want) {
            ck_assert_msg(r < 0, "case %zu should fail", i);
            ck_assert_error(err, RBX_ERR_USAGE, "no command specified");
            rbx_error_free(err);
        } else {
            ck_assert_msg(r == 0, "case %zu: %s", i, err ? err->message : "");
            char *got = argv_join(spec.argv);
            ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: got \"%s\" want \"%s\"", i, got,
                          cases[i].want);
            free(got);
        }
        rbx_spec_clear(&spec);
        rbx_compose_info_clear(&info);
    }
}
END_TEST

START_TEST(test_env_precedence_and_defaults)
{
    char *image_env[] = {"FOO=image", "KEEP=1", NULL};
    char *caller[] = {"FROM_CALLER=yes", "HOME=/root", NULL};
    char *flags[] = {"FOO=flag", "FROM_CALLER", "UNSET_IN_CALLER", "EMPTY=", NULL};
    struct rbx_image_config cfg = {.env = image_env, .cmd = C};
    struct rbx_run_request req = {.env = flags, .caller_env = caller};
    struct rbx_spec spec = {0};
    struct rbx_compose_info info = {0};
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_run_compose(&cfg, &req, &spec, &info, &err), 0);
    ck_assert_str_eq(rbx_env_get(spec.env, "FOO"), "flag");
    ck_assert_str_eq(rbx_env_get(spec.env, "KEEP"), "1");
    ck_assert_str_eq(rbx_env_get(spec.env, "FROM_CALLER"), "yes");
    ck_assert_ptr_null(rbx_env_get(spec.env, "UNSET_IN_CALLER"));
    ck_assert_str_eq(rbx_env_get(spec.env, "EMPTY"), "");
    ck_assert_str_eq(rbx_env_get(spec.env, "HOSTNAME"), "reprobox");
    ck_assert_str_eq(rbx_env_get(spec.env, "PATH"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    ck_assert_ptr_null(rbx_env_get(spec.env, "HOME")); /* the caller's HOME never leaks in */
    /* names only, sorted */
    ck_assert_str_eq(info.env_names[0], "EMPTY");
    for (size_t i = 0; info.env_names[i]; i++)
        ck_assert_ptr_null(strchr(info.env_names[i], '='));
    rbx_spec_clear(&spec);
    rbx_compose_info_clear(&info);
}
END_TEST

START_TEST(test_image_path_kept)
{
    char *image_env[] = {"PATH=/opt/bin", NULL};
    struct rbx_image_config cfg = {.env = image_env, .cmd = C};
    struct rbx_run_request req = {.hostname = "api"};
    struct rbx_spec spec = {0};
    struct rbx_compose_info info = {0};
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_run_compose(&cfg, &req, &spec, &info, &err), 0);
    ck_assert_str_eq(rbx_env_get(spec.env, "PATH"), "/opt/bin");
    ck_assert_str_eq(rbx_env_get(spec.env, "HOSTNAME"), "api");
    ck_assert_str_eq(spec.hostname, "api");
    rbx_spec_clear(&spec);
    rbx_compose_info_clear(&info);
}
END_TEST

START_TEST(test_workdir_and_user)
{
    struct rbx_image_config cfg = {.cmd = C, .working_dir = "/app", .user = "node"};
    struct rbx_run_request req = {0};
    struct rbx_spec spec = {0};
    struct rbx_compose_info info = {0};
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_run_compose(&cfg, &req, &spec, &info, &err), 0);
    ck_assert_str_eq(spec.cwd, "/app");
    ck_assert(info.workdir_from_image);
    ck_assert_str_eq(spec.user, "node");
    rbx_spec_clear(&spec);
    rbx_compose_info_clear(&info);

    req.workdir = "/srv";
    req.user = "1000:100";
    ck_assert_int_eq(rbx_run_compose(&cfg, &req, &spec, &info, &err), 0);
    ck_assert_str_eq(spec.cwd, "/srv");
    ck_assert(!info.workdir_from_image);
    ck_assert_str_eq(spec.user, "1000:100");
    rbx_spec_clear(&spec);
    rbx_compose_info_clear(&info);

    struct rbx_image_config bare = {.cmd = C};
    struct rbx_run_request none = {0};
    ck_assert_int_eq(rbx_run_compose(&bare, &none, &spec, &info, &err), 0);
    ck_assert_str_eq(spec.cwd, "/");
    ck_assert_ptr_null(spec.user);
    rbx_spec_clear(&spec);
    rbx_compose_info_clear(&info);

    req.workdir = "relative/dir";
    ck_assert_int_lt(rbx_run_compose(&cfg, &req, &spec, &info, &err), 0);
    ck_assert_error(err, RBX_ERR_USAGE, "must be an absolute path");
    rbx_error_free(err);
    rbx_spec_clear(&spec);
    rbx_compose_info_clear(&info);
}
END_TEST

START_TEST(test_malformed_image_env)
{
    char *image_env[] = {"NOEQUALS", NULL};
    struct rbx_image_config cfg = {.env = image_env, .cmd = C};
    struct rbx_run_request req = {0};
    struct rbx_spec spec = {0};
    struct rbx_compose_info info = {0};
    struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_run_compose(&cfg, &req, &spec, &info, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "Env[0] \"NOEQUALS\"");
    rbx_error_free(err);
    rbx_spec_clear(&spec);
    rbx_compose_info_clear(&info);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_run");
    TCase *tc = tcase_create("compose");
    tcase_add_test(tc, test_entrypoint_cmd_combinations);
    tcase_add_test(tc, test_env_precedence_and_defaults);
    tcase_add_test(tc, test_image_path_kept);
    tcase_add_test(tc, test_workdir_and_user);
    tcase_add_test(tc, test_malformed_image_env);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
