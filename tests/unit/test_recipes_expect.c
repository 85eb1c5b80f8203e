/* test_recipes_expect.c — expectations over outcomes (implied success, exit, signal, diagnosis,
 * output, http, files, time), the outcome words, the summary and report of a replay, JUnit XML. */
#include "recipes/recipes.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

static struct rbx_recipe_proc proc;

static void outcome(struct rbx_outcome *o, int code, const char *out, const char *err)
{
    memset(o, 0, sizeof(*o));
    memset(&proc, 0, sizeof(proc));
    proc.name = "migrate";
    o->proc = &proc;
    o->state = RBX_PROC_OK;
    o->ended = true;
    o->res.exit_code = code;
    o->res.stdout_tail = out ? strdup(out) : NULL;
    o->res.stderr_tail = err ? strdup(err) : NULL;
    char *env[] = {"PATH=/bin", "SECRET=hunter2", NULL};
    o->env = rbx_strv_copy(env);
}

/* Judge as the replay does: state, words, diagnosis, then expectations. */
static bool judge(struct rbx_outcome *o, int rootfd)
{
    if (rbx_outcome_failed(o))
        o->state = RBX_PROC_FAILED;
    rbx_outcome_describe(o);
    rbx_diagnose(o, rootfd);
    return rbx_expect_check(o, rootfd);
}

#define UNMET(o, text)                                                                             \
    do {                                                                                           \
        ck_assert_ptr_nonnull((o)->unmet);                                                         \
        ck_assert_msg(strstr((o)->unmet, text), "\"%s\" lacks \"%s\"", (o)->unmet, text);       \
    } while (0)

START_TEST(test_success_is_implied)
{
    struct rbx_outcome o;
    outcome(&o, 0, "done\n", NULL);
    ck_assert(judge(&o, -1));
    ck_assert_str_eq(o.outcome_text, "exit 0");
    rbx_outcome_clear(&o);
    outcome(&o, 2, NULL, "boom\n");
    ck_assert(!judge(&o, -1));
    UNMET(&o, "expected success, got exit 2 (exit-status)");
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_exit_and_signal)
{
    struct rbx_outcome o;
    outcome(&o, 127, NULL, "sh: pnpm: not found\n");
    proc.expect = (struct rbx_expect){.set = true, .has_exit = true, .exit_code = 127};
    ck_assert(judge(&o, -1));
    rbx_outcome_clear(&o);
    outcome(&o, 1, NULL, NULL);
    proc.expect = (struct rbx_expect){.set = true, .has_exit = true, .exit_code = 0};
    ck_assert(!judge(&o, -1));
    UNMET(&o, "exit: expected 0, got 1");
    rbx_outcome_clear(&o);
    outcome(&o, 137, NULL, NULL);
    o.res.signal = SIGKILL;
    proc.expect = (struct rbx_expect){.set = true, .signal = SIGKILL};
    ck_assert(judge(&o, -1));
    ck_assert_str_eq(o.outcome_text, "killed by SIGKILL");
    rbx_outcome_clear(&o);
    outcome(&o, 1, NULL, NULL);
    proc.expect = (struct rbx_expect){.set = true, .signal = SIGTERM};
    ck_assert(!judge(&o, -1));
    UNMET(&o, "signal: expected SIGTERM, got exit 1");
    rbx_outcome_clear(&o);
    /* A start failure counts as docker's exit code. */
    outcome(&o, 0, NULL, NULL);
    o.ended = false;
    rbx_error_set(&o.error, RBX_ERR_EXEC_NOT_FOUND, ENOENT, "pnpm: not found");
    proc.expect = (struct rbx_expect){.set = true, .has_exit = true, .exit_code = 127};
    ck_assert(judge(&o, -1));
    ck_assert_str_eq(o.outcome_text, "exit 127");
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_diagnosis_and_output)
{
    struct rbx_outcome o;
    outcome(&o, 127, "Running...\n", "sh: pnpm: not found\n");
    proc.expect = (struct rbx_expect){.set = true, .diagnosis = "command-not-found",
                                      .diagnosis_contains = "\"pnpm\"", .stdout_contains = "Running",
                                      .stderr_matches = "^sh: [a-z]+: not found$"};
    ck_assert_msg(judge(&o, -1), "%s", o.unmet);
    rbx_outcome_clear(&o);
    outcome(&o, 127, NULL, "sh: pnpm: not found\n");
    proc.expect = (struct rbx_expect){.set = true, .diagnosis = "env-missing"};
    ck_assert(!judge(&o, -1));
    UNMET(&o, "diagnosis: expected env-missing, got command-not-found: \"pnpm\"");
    rbx_outcome_clear(&o);
    outcome(&o, 0, "ok\n", NULL);
    proc.expect = (struct rbx_expect){.set = true, .diagnosis = "none", .stderr_contains = "warn"};
    ck_assert(!judge(&o, -1));
    UNMET(&o, "stderr_contains \"warn\": not in its stderr");
    rbx_outcome_clear(&o);
    outcome(&o, 0, "a\nb\n", NULL);
    proc.expect = (struct rbx_expect){.set = true, .stdout_matches = "^c$"};
    ck_assert(!judge(&o, -1));
    UNMET(&o, "stdout_matches \"^c$\": no line of its stdout matches");
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_http_checks)
{
    static struct rbx_http_check checks[] = {
        {.get = "/health", .status = 200, .body_contains = "\"status\":\"ok\""},
        {.get = "/api/v1/products"},
    };
    struct rbx_outcome o;
    outcome(&o, 0, NULL, NULL);
    o.ended = false;
    proc.detach = true;
    proc.expect = (struct rbx_expect){.set = true, .http = checks, .n_http = 2};
    o.http = calloc(2, sizeof(*o.http));
    o.n_http = 2;
    o.http[0].url = strdup("u");
    o.http[0].resp.status = 200;
    o.http[0].resp.body = strdup("{\"status\":\"ok\"}");
    o.http[1].url = strdup("u");
    o.http[1].resp.status = 500;
    ck_assert(!judge(&o, -1));
    ck_assert_str_eq(o.outcome_text, "GET /api/v1/products answered 500");
    UNMET(&o, "expected success, got GET /api/v1/products answered 500 (http-status)");
    /* Expecting the 500 (and its diagnosis) meets it. */
    checks[1].status = 500;
    proc.expect.diagnosis = "http-status";
    free(o.unmet);
    o.unmet = NULL;
    ck_assert_msg(rbx_expect_check(&o, -1), "%s", o.unmet);
    checks[1].status = 0;
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_files_and_time)
{
    char root[] = "/tmp/rbx-expect.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(root));
    char path[128];
    snprintf(path, sizeof(path), "%s/marker", root);
    FILE *f = fopen(path, "w");
    fputs("migrated\n", f);
    fclose(f);
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct rbx_file_check files[] = {
        {.path = "/marker", .exists = 1, .contains = "migrated"},
        {.path = "/nope", .exists = 0},
        {.path = "/", .exists = 1},
    };
    struct rbx_outcome o;
    outcome(&o, 0, NULL, NULL);
    o.duration_ms = 1500;
    proc.expect = (struct rbx_expect){.set = true, .files = files, .n_files = 3, .max_seconds = 2};
    ck_assert_msg(judge(&o, rootfd), "%s", o.unmet);
    proc.expect.max_seconds = 1;
    ck_assert(!rbx_expect_check(&o, rootfd));
    UNMET(&o, "max_seconds 1: it took 1.5 s");
    files[0].contains = "seeded";
    proc.expect.max_seconds = 0;
    ck_assert(!rbx_expect_check(&o, rootfd));
    UNMET(&o, "files[0] /marker: does not contain \"seeded\"");
    files[1].path = "/marker";
    files[0].contains = NULL;
    ck_assert(!rbx_expect_check(&o, rootfd));
    UNMET(&o, "files[1] /marker: exists, expected absent");
    rbx_outcome_clear(&o);
    close(rootfd);
    unlink(path);
    rmdir(root);
}
END_TEST

START_TEST(test_not_run)
{
    struct rbx_outcome o;
    outcome(&o, 0, NULL, NULL);
    o.state = RBX_PROC_NOT_RUN;
    o.ended = false;
    ck_assert(!judge(&o, -1));
    ck_assert_str_eq(o.outcome_text, "not run");
    ck_assert_ptr_null(o.diag_kind);
    UNMET(&o, "not run");
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_summary_and_report)
{
    struct rbx_recipe_proc steps[2] = {{.name = "migrate"}, {.name = "start"}};
    struct rbx_recipe rc = {.name = "api", .path = "api.json", .steps = steps, .n_steps = 2};
    struct rbx_replay r = {.recipe = &rc, .n_outcomes = 2};
    r.outcomes = calloc(2, sizeof(*r.outcomes));
    struct rbx_outcome *o = &r.outcomes[0];
    o->proc = &steps[0];
    o->state = RBX_PROC_FAILED;
    o->ended = true;
    o->res.exit_code = 127;
    o->res.stderr_tail = strdup("./scripts/run-migrations.sh: line 5: pnpm: not found\n");
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "JWT_SECRET=hunter2", NULL};
    o->env = rbx_strv_copy(env);
    rbx_outcome_describe(o);
    rbx_diagnose(o, -1);
    rbx_expect_check(o, -1);
    r.outcomes[1].proc = &steps[1];
    rbx_outcome_describe(&r.outcomes[1]);
    rbx_expect_check(&r.outcomes[1], -1);
    r.first_failure = o;
    r.unmet = strdup("migrate: expected success, got exit 127 (command-not-found)");
    char *s = rbx_replay_summary(&r);
    const char *want = "migrate: exit 127 \u2014 command-not-found: \"pnpm\" is not in the image "
                       "(PATH=/usr/local/bin:/usr/bin:/bin)\n  hint: ";
    ck_assert_msg(strncmp(s, want, strlen(want)) == 0, "%s", s);
    ck_assert(strstr(s, "  stderr | ./scripts/run-migrations.sh: line 5: pnpm: not found\n"));
    ck_assert(strstr(s, "FAIL step     migrate        exit 127 (command-not-found)\n"));
    ck_assert(strstr(s, "-    step     start          not run\n"));
    ck_assert(strstr(s, "expectations: not met: migrate: expected success"));
    free(s);
    json_t *j = rbx_replay_report(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "schema")), "reprobox.replay/v1");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "diagnosis"), "kind")),
                     "command-not-found");
    char *text = json_dumps(j, 0);
    ck_assert_msg(!strstr(text, "hunter2"), "a value of the environment leaked: %s", text);
    ck_assert(strstr(text, "\"JWT_SECRET\""));
    free(text);
    json_decref(j);
    rbx_replay_clear(&r);
}
END_TEST

/* The summary shows the words that explain, not the end of a stack trace. */
START_TEST(test_summary_shows_the_error_not_the_stack)
{
    struct rbx_recipe_proc steps[1] = {{.name = "start"}};
    struct rbx_recipe rc = {.name = "api", .path = "api.json", .steps = steps, .n_steps = 1};
    struct rbx_replay r = {.recipe = &rc, .n_outcomes = 1};
    r.outcomes = calloc(1, sizeof(*r.outcomes));
    struct rbx_outcome *o = &r.outcomes[0];
    o->proc = &steps[0];
    o->state = RBX_PROC_FAILED;
    o->ended = true;
    o->res.exit_code = 1;
    o->res.stderr_tail = strdup(
        "/app/dist/config.js:6\n  if (!value) throw new Error(`Missing ${name}`);\n              ^\n\n"
        "Error: Missing required environment variable: JWT_SECRET\n    at required (/app/dist/config.js:6:21)\n"
        "    at a\n    at b\n    at c\n    at d\n    at e\n    at f\n\nNode.js v20.20.2\n");
    rbx_outcome_describe(o);
    rbx_diagnose(o, -1);
    r.first_failure = o;
    char *s = rbx_replay_summary(&r);
    ck_assert_msg(strstr(s, "  stderr | Error: Missing required environment variable: JWT_SECRET\n"
                            "  stderr |     at required (/app/dist/config.js:6:21)\n"),
                  "%s", s);
    ck_assert_msg(!strstr(s, "Node.js v20"), "%s", s);
    free(s);
    rbx_replay_clear(&r);
}
END_TEST

START_TEST(test_junit_xml)
{
    struct rbx_junit_case cases[] = {
        {.name = "ok", .file = "a.json", .passed = true, .seconds = 1.5},
        {.name = "bad<&>\"", .file = "b.json", .message = "migrate: exit: expected 0, got 127",
         .detail = "migrate: exit 127 \u2014 \"pnpm\" <x>\x01\n", .seconds = 0.25},
        {.name = "broken", .file = "c.json", .errored = true, .message = "c.json: steps: missing"},
    };
    char *x = rbx_junit_xml("reprobox", cases, 3);
    ck_assert(strstr(x, "<testsuite name=\"reprobox\" tests=\"3\" failures=\"1\" errors=\"1\""));
    ck_assert(strstr(x, "<testcase classname=\"reprobox\" name=\"ok\" file=\"a.json\" time=\"1.500\"/>"));
    ck_assert(strstr(x, "name=\"bad&lt;&amp;&gt;&quot;\""));
    ck_assert(strstr(x, "<failure message=\"migrate: exit: expected 0, got 127\">migrate: exit 127 \u2014 &quot;pnpm&quot; &lt;x&gt;?\n</failure>"));
    ck_assert(strstr(x, "<error message=\"c.json: steps: missing\"></error>"));
    free(x);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_expect");
    TCase *tc = tcase_create("expect");
    tcase_add_test(tc, test_success_is_implied);
    tcase_add_test(tc, test_exit_and_signal);
    tcase_add_test(tc, test_diagnosis_and_output);
    tcase_add_test(tc, test_http_checks);
    tcase_add_test(tc, test_files_and_time);
    tcase_add_test(tc, test_not_run);
    tcase_add_test(tc, test_summary_and_report);
    tcase_add_test(tc, test_summary_shows_the_error_not_the_stack);
    tcase_add_test(tc, test_junit_xml);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
