/* test_recipes_recipe.c — recipe files: what loads, what is refused and with which located
 * message, and that docs/recipe.schema.json gives the same verdict as the validator. */
#include "recipes/recipes.h"
#include "rbx_check.h"
#include "schema_check.h"

#include <dirent.h>
#include <string.h>

static char *env_none[] = {NULL};
static char *env_fix[] = {"RBX_FIXTURES=/fx", NULL};

static const char *ISSUE_EXAMPLE =
    "{\"name\": \"api-staging\", \"image\": \"oci:./out:api\","
    " \"env\": {\"NODE_ENV\": \"production\", \"DATABASE_URL\": \"postgresql://app:app@127.0.0.1:5432/app\"},"
    " \"env_file\": \"staging.env\", \"network\": \"none\","
    " \"services\": [{\"name\": \"db\", \"image\": \"oci:./fixtures/postgres:latest\","
    "   \"env\": {\"POSTGRES_PASSWORD\": \"app\"}, \"ready\": {\"tcp\": 5432, \"timeout\": 30}}],"
    " \"steps\": ["
    "  {\"name\": \"migrate\", \"command\": [\"sh\", \"./scripts/run-migrations.sh\"], \"timeout\": 120,"
    "   \"idle_timeout\": 30, \"expect\": {\"exit\": 0, \"stdout_contains\": \"migrations have been successfully applied\"}},"
    "  {\"name\": \"start\", \"command\": [\"node\", \"dist/index.js\"], \"detach\": true,"
    "   \"ready\": {\"http\": \"http://127.0.0.1:4000/health\", \"timeout\": 20},"
    "   \"expect\": {\"http\": [{\"get\": \"/health\", \"status\": 200, \"body_contains\": \"\\\"status\\\":\\\"ok\\\"\"},"
    "                       {\"get\": \"/api/v1/products\", \"status\": 200}]}}]}";

static struct rbx_recipe *parse_ok(const char *json, char **env)
{
    struct rbx_recipe *r = NULL;
    struct rbx_error *err = NULL;
    int rc = rbx_recipe_parse(json, strlen(json), "/srv/recipes/recipe.json", env, &r, &err);
    ck_assert_msg(rc == 0, "%s", err ? err->message : "");
    return r;
}

START_TEST(test_issue_example_loads)
{
    struct rbx_recipe *r = parse_ok(ISSUE_EXAMPLE, env_none);
    ck_assert_str_eq(r->name, "api-staging");
    ck_assert_str_eq(r->image, "oci:/srv/recipes/./out:api");
    ck_assert_str_eq(r->env_files[0], "/srv/recipes/staging.env");
    ck_assert_str_eq(rbx_env_get(r->env, "NODE_ENV"), "production");
    ck_assert_int_eq(r->network, RBX_NETWORK_NONE);
    ck_assert_uint_eq(r->n_services, 1);
    ck_assert_int_eq(r->services[0].ready.kind, RBX_PROBE_TCP);
    ck_assert_int_eq(r->services[0].ready.port, 5432);
    ck_assert_str_eq(r->services[0].ready.host, "127.0.0.1");
    ck_assert_uint_eq(r->services[0].ready.timeout_ms, 30000);
    ck_assert_uint_eq(r->n_steps, 2);
    ck_assert_uint_eq(r->steps[0].timeout_ms, 120000);
    ck_assert_uint_eq(r->steps[0].idle_timeout_ms, 30000);
    ck_assert(r->steps[0].expect.has_exit);
    ck_assert_int_eq(r->steps[0].expect.exit_code, 0);
    ck_assert(r->steps[1].detach);
    ck_assert_int_eq(r->steps[1].ready.kind, RBX_PROBE_HTTP);
    ck_assert_uint_eq(r->steps[1].ready.interval_ms, 250);
    ck_assert_uint_eq(r->steps[1].expect.n_http, 2);
    ck_assert_str_eq(r->steps[1].expect.http[0].body_contains, "\"status\":\"ok\"");
    ck_assert(!r->steps[1].expect.has_exit);
    rbx_recipe_free(r);
}
END_TEST

START_TEST(test_requires_env_lists_names)
{
    const char *j = "{\"image\": \"oci:/x\", \"requires_env\": [\"JWT_SECRET\"],"
                    " \"steps\": [{\"name\": \"a\", \"requires_env\": [\"DATABASE_URL\", \"PORT\"]}]}";
    struct rbx_recipe *r = parse_ok(j, env_none);
    ck_assert_uint_eq(rbx_strv_len(r->requires_env), 1);
    ck_assert_str_eq(r->requires_env[0], "JWT_SECRET");
    ck_assert_uint_eq(rbx_strv_len(r->steps[0].requires_env), 2);
    ck_assert_str_eq(r->steps[0].requires_env[1], "PORT");
    rbx_recipe_free(r);
}
END_TEST

START_TEST(test_name_defaults_to_file_and_vars_expand)
{
    struct rbx_recipe *r = parse_ok("{\"image\": \"oci:${RBX_FIXTURES}/app:x\", \"steps\": [{\"name\": \"a\"}]}", env_fix);
    ck_assert_str_eq(r->name, "recipe");
    ck_assert_str_eq(r->image, "oci:/fx/app:x");
    rbx_recipe_free(r);
    r = parse_ok("{\"image\": \"oci:${NOPE:-../fx}/app\", \"steps\": [{\"name\": \"a\"}]}", env_none);
    ck_assert_str_eq(r->image, "oci:/srv/recipes/../fx/app");
    rbx_recipe_free(r);
    /* Every local transport's path is taken from the recipe's directory; absolute ones stay. */
    r = parse_ok("{\"image\": \"oci-archive:img.tar\", \"services\": [{\"name\": \"db\","
                 " \"image\": \"docker-archive:./pg.tar:postgres:15\"}], \"steps\": [{\"name\": \"a\"}]}",
                 env_none);
    ck_assert_str_eq(r->image, "oci-archive:/srv/recipes/img.tar");
    ck_assert_str_eq(r->services[0].image, "docker-archive:/srv/recipes/./pg.tar:postgres:15");
    rbx_recipe_free(r);
    r = parse_ok("{\"build\": {\"context\": \"app\", \"target\": \"runner\", \"args\": {\"BASE\": "
                 "\"oci:${RBX_FIXTURES}/busybox\", \"N\": \"1\"}}, \"steps\": [{\"name\": \"a\"}]}",
                 env_fix);
    ck_assert_str_eq(r->build->context, "/srv/recipes/app");
    ck_assert_str_eq(r->build->dockerfile, "Dockerfile");
    ck_assert_str_eq(r->build->args[0], "BASE=oci:/fx/busybox");
    ck_assert_str_eq(r->build->args[1], "N=1");
    rbx_recipe_free(r);
    r = parse_ok("{\"image\": \"oci:/abs/layout:v1\", \"steps\": [{\"name\": \"a\"}]}", env_none);
    ck_assert_str_eq(r->image, "oci:/abs/layout:v1");
    rbx_recipe_free(r);
}
END_TEST

START_TEST(test_signal_names_and_numbers)
{
    struct rbx_recipe *r = parse_ok("{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"signal\": \"SIGKILL\"}},"
                                    "{\"name\": \"b\", \"expect\": {\"signal\": \"TERM\"}}, {\"name\": \"c\", \"expect\": {\"signal\": 6}}]}",
                                    env_none);
    ck_assert_int_eq(r->steps[0].expect.signal, 9);
    ck_assert_int_eq(r->steps[1].expect.signal, 15);
    ck_assert_int_eq(r->steps[2].expect.signal, 6);
    rbx_recipe_free(r);
}
END_TEST

/* Each refused recipe: the message it must give, and whether the schema alone refuses it too
 * (false where only the validator can know: regexes, signal names, unset variables, names
 * used twice, image references). */
struct bad_case {
    const char *json;
    const char *message;
    bool schema_refuses;
};

#define S1 "{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\"}, "
static const struct bad_case bad[] = {
    {S1 "{\"name\": \"b\", \"detach\": true, \"ready\": {\"http\": 4000}}]}",
     "recipe.json: steps[1].ready.http: expected a string", true},
    {S1 "{\"name\": \"b\", \"detach\": true, \"ready\": {\"http\": \"127.0.0.1:4000\"}}]}",
     "steps[1].ready.http: \"127.0.0.1:4000\" is not an http:// or https:// URL", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"colour\": 1}]}", "recipe.json: steps[0].colour: unknown field", true},
    {"{\"image\": \"oci:/x\", \"stpes\": []}", "recipe.json: stpes: unknown field", true},
    {"{\"image\": \"oci:/x\"}", "recipe.json: steps: missing (required)", true},
    {"{\"image\": \"oci:/x\", \"steps\": []}", "steps: a recipe needs at least one step", true},
    {"{\"steps\": [{\"name\": \"a\"}]}", "recipe.json: needs \"image\" or \"build\"", true},
    {"{\"image\": \"oci:/x\", \"build\": {\"context\": \".\"}, \"steps\": [{\"name\": \"a\"}]}",
     "has both \"image\" and \"build\"", true},
    {"{\"image\": \"oci:/x\", \"build\": {\"contxt\": \".\"}, \"steps\": [{\"name\": \"a\"}]}",
     "build.contxt: unknown field", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{}]}", "steps[0].name: missing (required)", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"-a\"}]}", "steps[0].name: \"-a\" is not a name", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}",
     "steps[1].name: \"a\" is the name of steps[0] too", false},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"command\": []}]}", "steps[0].command: must not be empty", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"command\": [\"\"]}]}",
     "steps[0].command[0]: the command is an empty string", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"command\": \"ls -l\"}]}",
     "steps[0].command: expected an array of strings", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"command\": [\"ls\", 1]}]}",
     "steps[0].command[1]: expected a string", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"timeout\": \"20s\"}]}",
     "steps[0].timeout: expected a number of seconds", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"timeout\": 0}]}", "steps[0].timeout: 0 is out of range", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"idle_timeout\": 86401}]}",
     "steps[0].idle_timeout: 86401 is out of range", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": \"yes\"}]}", "steps[0].detach: expected true or false", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"ready\": {\"tcp\": 5432}}]}",
     "steps[0].ready: only a step with \"detach\": true has a readiness probe", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"timeout\": 3}}]}",
     "steps[0].ready: needs exactly one of \"http\", \"tcp\" or \"exec\"", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"tcp\": 1, \"http\": \"http://x\"}}]}",
     "steps[0].ready: needs exactly one of", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"tcp\": 70000}}]}",
     "steps[0].ready.tcp: 70000 is out of range", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"tcp\": 5.5}}]}",
     "steps[0].ready.tcp: expected an integer", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"http\": \"http://x\", \"host\": \"db\"}}]}",
     "\"host\" goes with \"tcp\" only", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"tcp\": 1, \"status\": 200}}]}",
     "\"status\" goes with \"http\" only", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"exit\": 256}}]}", "steps[0].expect.exit: 256 is out of range", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"exit\": 1, \"signal\": \"KILL\"}}]}",
     "steps[0].expect: \"exit\" and \"signal\" can not both be met", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"signal\": \"SIGNOPE\"}}]}",
     "steps[0].expect.signal: \"SIGNOPE\" is not a signal name", false},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"diagnosis\": \"bad-luck\"}}]}",
     "steps[0].expect.diagnosis: \"bad-luck\" is not a diagnosis kind", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"stderr_matches\": \"(\"}}]}",
     "steps[0].expect.stderr_matches: not a POSIX extended regular expression", false},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"http\": [{\"status\": 200}]}}]}",
     "steps[0].expect.http[0].get: missing (required)", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"http\": [{\"get\": \"health\"}]}}]}",
     "steps[0].expect.http[0].get: \"health\" is neither a path", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"http\": {\"get\": \"/\"}}}]}",
     "steps[0].expect.http: expected an array of objects", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"files\": [{\"path\": \"etc/x\"}]}}]}",
     "steps[0].expect.files[0].path: must be an absolute path", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"files\": [{\"path\": \"/x\", \"exists\": false, \"contains\": \"y\"}]}}]}",
     "steps[0].expect.files[0]: \"contains\" with \"exists\": false can never be met", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"max_seconds\": -1}}]}",
     "steps[0].expect.max_seconds: -1 is out of range", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"stdout_contains\": null}}]}",
     "steps[0].expect.stdout_contains: expected a string", true},
    {"{\"image\": \"oci:/x\", \"env\": {\"A\": 1}, \"steps\": [{\"name\": \"a\"}]}", "recipe.json: env.A: expected a string", true},
    {"{\"image\": \"oci:/x\", \"env\": [\"A=1\"], \"steps\": [{\"name\": \"a\"}]}", "recipe.json: env: expected an object of strings", true},
    {"{\"image\": \"oci:/x\", \"env\": {\"A B\": \"1\"}, \"steps\": [{\"name\": \"a\"}]}", "env.A B: not a variable name", true},
    {"{\"image\": \"oci:/x\", \"network\": \"bridge\", \"steps\": [{\"name\": \"a\"}]}",
     "network: \"bridge\" is not a network mode (none or host)", true},
    {"{\"image\": \"oci:/x\", \"init\": 1, \"steps\": [{\"name\": \"a\"}]}", "recipe.json: init: expected true or false", true},
    {"{\"image\": \"oci:/x\", \"workdir\": \"app\", \"steps\": [{\"name\": \"a\"}]}", "workdir: must be an absolute path", true},
    {"{\"image\": \"oci:${UNSET_HERE}/x\", \"steps\": [{\"name\": \"a\"}]}", "image: ${UNSET_HERE} is not set in the environment", false},
    {"{\"image\": \"nope:/x\", \"steps\": [{\"name\": \"a\"}]}", "recipe.json: image:", false},
    {"{\"build\": {\"context\": \".\", \"args\": {\"B\": \"${UNSET_HERE}\"}}, \"steps\": [{\"name\": \"a\"}]}",
     "recipe.json: build.args.B: ${UNSET_HERE} is not set in the environment", false},
    {"{\"image\": \"\", \"steps\": [{\"name\": \"a\"}]}", "recipe.json: image: must not be empty", true},
    {"{\"image\": \"oci:/x\", \"services\": [{\"name\": \"db\"}], \"steps\": [{\"name\": \"a\"}]}",
     "services[0].image: missing (required)", true},
    {"{\"image\": \"oci:/x\", \"services\": [{\"name\": \"db\", \"image\": \"oci:/y\", \"detach\": true}], \"steps\": [{\"name\": \"a\"}]}",
     "services[0].detach: unknown field", true},
    {"[1]", "recipe.json: expected a JSON object at the top", true},
    {"{\"image\": \"oci:/x\", \"build\": null, \"steps\": [{\"name\": \"a\"}]}",
     "recipe.json: build: expected an object", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"stdout_matches\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}]}",
     "steps[0].expect.stdout_matches: the pattern is too costly: longer than 512 characters", true},
    /* found by fuzzing: glibc's regcomp exhausts memory on these */
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"stderr_matches\": \"han+++++++g\"}}]}",
     "steps[0].expect.stderr_matches: the pattern is too costly: a repetition of a repetition", false},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"stdout_matches\": \"(a{1,200}){1,200}\"}}]}",
     "steps[0].expect.stdout_matches: the pattern is too costly: a repetition bound over 100", false},
    {"{\"image\": \"oci:/x\", \"env_file\": 5, \"steps\": [{\"name\": \"a\"}]}",
     "recipe.json: env_file: expected a string or an array of strings", true},
    {"{\"image\": \"oci:/x\", \"env_file\": [\"a.env\", 5], \"steps\": [{\"name\": \"a\"}]}",
     "recipe.json: env_file[1]: expected a string", true},
    {"{\"image\": \"oci:/x\", \"requires_env\": \"JWT_SECRET\", \"steps\": [{\"name\": \"a\"}]}",
     "recipe.json: requires_env: expected an array of strings", true},
    {"{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"requires_env\": [\"A B\"]}]}",
     "steps[0].requires_env[0]: \"A B\" is not a variable name", true},
    {"{\"image\": \"oci:/x\", \"requires_env\": [\"A\", \"A\"], \"steps\": [{\"name\": \"a\"}]}",
     "requires_env[1]: \"A\" is listed twice", false},
};

START_TEST(test_refused_with_located_message)
{
    const struct bad_case *c = &bad[_i];
    struct rbx_recipe *r = NULL;
    struct rbx_error *err = NULL;
    int rc = rbx_recipe_parse(c->json, strlen(c->json), "recipe.json", env_none, &r, &err);
    ck_assert_msg(rc < 0, "case %d was accepted: %s", _i, c->json);
    ck_assert_error(err, RBX_ERR_MALFORMED, c->message);
    rbx_error_free(err);
}
END_TEST

START_TEST(test_malformed_json_has_line_and_column)
{
    const char *j = "{\"image\": \"oci:/x\",\n \"steps\": [,]}";
    struct rbx_recipe *r = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_recipe_parse(j, strlen(j), "recipe.json", env_none, &r, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "recipe.json:2:");
    rbx_error_free(err);
    const char *dup = "{\"image\": \"oci:/x\", \"image\": \"oci:/y\", \"steps\": [{\"name\": \"a\"}]}";
    err = NULL;
    ck_assert_int_lt(rbx_recipe_parse(dup, strlen(dup), "recipe.json", env_none, &r, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "duplicate");
    rbx_error_free(err);
}
END_TEST

/* ---- the schema and the validator agree ---------------------------------------------------- */

static json_t *load_schema(void)
{
    const char *src = getenv("RBX_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/recipe.schema.json", src ? src : ".");
    json_error_t je;
    json_t *s = json_load_file(path, 0, &je);
    ck_assert_msg(s != NULL, "%s: %s", path, je.text);
    return s;
}

static bool validator_accepts(const char *json, char **why)
{
    struct rbx_recipe *r = NULL;
    struct rbx_error *err = NULL;
    int rc = rbx_recipe_parse(json, strlen(json), "recipe.json", env_fix, &r, &err);
    rbx_recipe_free(r);
    *why = err ? strdup(err->message) : NULL;
    rbx_error_free(err);
    return rc == 0;
}

static const char *good[] = {
    "{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\"}]}",
    "{\"$schema\": \"../docs/recipe.schema.json\", \"image\": \"oci:/x\", \"steps\": [{\"name\": \"a.b_c-1\"}]}",
    "{\"build\": {\"context\": \".\", \"dockerfile\": \"apps/api/Dockerfile\", \"target\": \"runner\", \"args\": {}}, \"steps\": [{\"name\": \"a\"}]}",
    "{\"image\": \"oci:/x\", \"init\": true, \"network\": \"host\", \"user\": \"app\", \"workdir\": \"/app\","
    " \"env_file\": [\"a.env\", \"b.env\"], \"steps\": [{\"name\": \"a\", \"entrypoint\": \"\", \"command\": [\"x\"],"
    " \"timeout\": 0.5, \"stop_timeout\": 3}]}",
    "{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"exec\": [\"pg_isready\"], \"interval\": 0.1}}]}",
    "{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"tcp\": 5432, \"host\": \"::1\"}}]}",
    "{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"detach\": true, \"ready\": {\"http\": \"https://x/h\", \"status\": 204}}]}",
    "{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"exit\": 127, \"diagnosis\": \"command-not-found\","
    " \"diagnosis_contains\": \"pnpm\", \"stdout_contains\": \"\", \"stderr_matches\": \"^sh: .*not found$\","
    " \"files\": [{\"path\": \"/x\"}, {\"path\": \"/y\", \"exists\": false}, {\"path\": \"/z\", \"exists\": true, \"contains\": \"q\"}],"
    " \"max_seconds\": 10}}]}",
    "{\"image\": \"oci:/x\", \"steps\": [{\"name\": \"a\", \"expect\": {\"signal\": 9, \"diagnosis\": \"none\"}}]}",
    "{\"image\": \"oci:/x\", \"requires_env\": [\"JWT_SECRET\", \"DATABASE_URL\"], \"steps\": [{\"name\": \"a\","
    " \"requires_env\": [\"PORT\"]}], \"services\": [{\"name\": \"db\", \"image\": \"oci:/pg\", \"requires_env\": []}]}",
    "{\"image\": \"oci:/x\", \"services\": [{\"name\": \"db\", \"image\": \"oci:/pg\", \"command\": [\"postgres\"],"
    " \"entrypoint\": \"/e\", \"env\": {\"A\": \"b\"}, \"user\": \"postgres\", \"workdir\": \"/\","
    " \"ready\": {\"tcp\": 5432, \"timeout\": 30}}], \"steps\": [{\"name\": \"a\"}]}",
};

START_TEST(test_schema_agrees_on_every_case)
{
    json_t *schema = load_schema();
    char why[512];
    for (size_t i = 0; i < RBX_ARRAY_SIZE(good); i++) {
        json_t *j = json_loads(good[i], 0, NULL);
        ck_assert_ptr_nonnull(j);
        char *vwhy = NULL;
        ck_assert_msg(validator_accepts(good[i], &vwhy), "validator refuses good[%zu]: %s", i, vwhy);
        ck_assert_msg(schema_valid(schema, j, why, sizeof(why)), "schema refuses good[%zu]: %s", i, why);
        json_decref(j);
    }
    for (size_t i = 0; i < RBX_ARRAY_SIZE(bad); i++) {
        json_t *j = json_loads(bad[i].json, JSON_REJECT_DUPLICATES, NULL);
        ck_assert_ptr_nonnull(j);
        bool sv = schema_valid(schema, j, why, sizeof(why));
        ck_assert_msg(sv == !bad[i].schema_refuses, "bad[%zu] (%s): the schema says %s", i,
                      bad[i].message, sv ? "valid" : why);
        json_decref(j);
    }
    json_decref(schema);
}
END_TEST

START_TEST(test_schema_lists_every_diagnosis_kind)
{
    json_t *schema = load_schema();
    json_t *e = json_object_get(json_object_get(json_object_get(json_object_get(
                    json_object_get(json_object_get(schema, "$defs"), "expect"), "properties"),
                    "diagnosis"), "enum"), "x");
    (void)e;
    json_t *en = json_object_get(json_object_get(json_object_get(json_object_get(schema, "$defs"), "expect"),
                                                 "properties"), "diagnosis");
    en = json_object_get(en, "enum");
    ck_assert_ptr_nonnull(en);
    size_t n = 0;
    for (; rbx_diagnosis_kinds[n]; n++) {
        bool in = false;
        for (size_t i = 0; i < json_array_size(en); i++)
            in = in || strcmp(json_string_value(json_array_get(en, i)), rbx_diagnosis_kinds[n]) == 0;
        ck_assert_msg(in, "the schema lacks %s", rbx_diagnosis_kinds[n]);
    }
    ck_assert_uint_eq(json_array_size(en), n + 1); /* and "none" */
    json_decref(schema);
}
END_TEST

/* Every example recipe is valid for both. */
START_TEST(test_examples_valid_for_schema_and_validator)
{
    const char *src = getenv("RBX_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/recipes/examples", src ? src : ".");
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s", dir);
    json_t *schema = load_schema();
    struct dirent *e;
    unsigned n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct rbx_recipe *r = NULL;
        struct rbx_error *err = NULL;
        ck_assert_msg(rbx_recipe_load(path, env_fix, &r, &err) == 0, "%s", err ? err->message : "");
        rbx_recipe_free(r);
        json_error_t je;
        json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
        ck_assert_msg(j != NULL, "%s: %s", path, je.text);
        char why[512];
        ck_assert_msg(schema_valid(schema, j, why, sizeof(why)), "%s: %s", e->d_name, why);
        json_decref(j);
        n++;
    }
    closedir(d);
    json_decref(schema);
    ck_assert_uint_ge(n, 18);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_recipe");
    TCase *tc = tcase_create("recipe");
    tcase_add_test(tc, test_issue_example_loads);
    tcase_add_test(tc, test_name_defaults_to_file_and_vars_expand);
    tcase_add_test(tc, test_requires_env_lists_names);
    tcase_add_test(tc, test_signal_names_and_numbers);
    tcase_add_loop_test(tc, test_refused_with_located_message, 0, (int)RBX_ARRAY_SIZE(bad));
    tcase_add_test(tc, test_malformed_json_has_line_and_column);
    tcase_add_test(tc, test_schema_agrees_on_every_case);
    tcase_add_test(tc, test_schema_lists_every_diagnosis_kind);
    tcase_add_test(tc, test_examples_valid_for_schema_and_validator);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
