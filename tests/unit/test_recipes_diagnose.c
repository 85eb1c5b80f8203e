/* test_recipes_diagnose.c — every diagnosis rule, on the facts and the words each failure of the
 * postmortem really produces, with a small image tree to look into. */
#include "recipes/recipes.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

static char root[64];
static int rootfd = -1;

static void put(const char *path, const char *content)
{
    char full[512], dir[600];
    snprintf(full, sizeof(full), "%s%s", root, path);
    snprintf(dir, sizeof(dir), "mkdir -p \"$(dirname '%s')\"", full);
    ck_assert_int_eq(system(dir), 0);
    FILE *f = fopen(full, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

static void link_(const char *target, const char *path)
{
    char full[512], dir[600];
    snprintf(full, sizeof(full), "%s%s", root, path);
    snprintf(dir, sizeof(dir), "mkdir -p \"$(dirname '%s')\"", full);
    ck_assert_int_eq(system(dir), 0);
    ck_assert_int_eq(symlink(target, full), 0);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/rbx-diag.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    put("/usr/local/bin/node", "");
    put("/app/dist/index.js", "require('express')");
    put("/app/node_modules/.bin/prisma", "");
    put("/app/node_modules/dotenv/index.js", "");
    link_(".pnpm/express@4.21.2/node_modules/express", "/app/pnpm/node_modules/express");
    put("/app/pnpm/dist/index.js", "");
    put("/app/node_modules/@prisma/client/default.js", "require('.prisma/client/default')");
    put("/app/node_modules/@prisma/client/.prisma/client/default.js", "");
    put("/app/prisma/schema.prisma",
        "generator client {\n  provider = \"prisma-client-js\"\n}\n\n"
        "datasource db {\n  provider = \"mysql\"\n  url      = env(\"DATABASE_URL\")\n}\n");
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(rootfd, 0);
}

static void teardown(void)
{
    char cmd[128];
    close(rootfd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

static struct rbx_recipe_proc proc = {.name = "start"};

/* A finished one-shot step: exit status and output. */
static void step(struct rbx_outcome *o, int code, const char *err_text)
{
    memset(o, 0, sizeof(*o));
    memset(&proc, 0, sizeof(proc));
    proc.name = "start";
    o->proc = &proc;
    o->state = RBX_PROC_FAILED;
    o->ended = true;
    o->res.exit_code = code;
    o->res.stderr_tail = err_text ? strdup(err_text) : NULL;
    o->cwd = strdup("/app");
    char *argv[] = {"node", "dist/index.js", NULL};
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_ENV=production",
                   "DATABASE_URL=postgresql://app:app@127.0.0.1:5432/app", NULL};
    o->argv = rbx_strv_copy(argv);
    o->env = rbx_strv_copy(env);
}

static void diagnose(struct rbx_outcome *o, const char *kind, const char *needle)
{
    rbx_diagnose(o, rootfd);
    ck_assert_msg(o->diag_kind && strcmp(o->diag_kind, kind) == 0, "kind %s, want %s (%s)",
                  o->diag_kind ? o->diag_kind : "none", kind, o->diag_message ? o->diag_message : "");
    ck_assert_msg(strstr(o->diag_message, needle), "\"%s\" lacks \"%s\"", o->diag_message, needle);
    ck_assert_ptr_nonnull(o->diag_hint);
    rbx_outcome_clear(o);
}

#define NODE_MNF(mod, from)                                                                        \
    "node:internal/modules/cjs/loader:1228\n  throw err;\n  ^\n\nError: Cannot find module '" mod  \
    "'\nRequire stack:\n- " from "\n    at Module._resolveFilename (node:internal/modules/cjs/"   \
    "loader:1225:15)\n    at Module._load (node:internal/modules/cjs/loader:1051:27) {\n  code: " \
    "'MODULE_NOT_FOUND',\n  requireStack: [ '" from "' ]\n}\n\nNode.js v20.19.2\n"

START_TEST(test_success_has_no_diagnosis)
{
    struct rbx_outcome o;
    step(&o, 0, "fine\n");
    o.state = RBX_PROC_OK;
    rbx_diagnose(&o, rootfd);
    ck_assert_ptr_null(o.diag_kind);
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_oom_killed)
{
    struct rbx_outcome o;
    step(&o, 137, NULL);
    o.res.signal = SIGKILL;
    o.res.oom_killed = true;
    diagnose(&o, "oom-killed", "more memory than its limit");
}
END_TEST

START_TEST(test_command_not_found_pnpm_from_the_shell)
{
    struct rbx_outcome o;
    step(&o, 127, "sh: pnpm: not found\n");
    diagnose(&o, "command-not-found",
             "\"pnpm\" is not in the image (PATH=/usr/local/bin:/usr/bin:/bin)");
    step(&o, 127, "sh: 1: pnpm: not found\n"); /* dash */
    diagnose(&o, "command-not-found", "\"pnpm\" is not in the image");
    step(&o, 127, "bash: pnpm: command not found\n");
    diagnose(&o, "command-not-found", "\"pnpm\" is not in the image");
}
END_TEST

START_TEST(test_command_not_found_from_the_sandbox_and_the_build)
{
    struct rbx_outcome o;
    step(&o, 0, NULL);
    o.ended = false;
    free(o.argv[0]);
    o.argv[0] = strdup("pnpm");
    rbx_error_set(&o.error, RBX_ERR_EXEC_NOT_FOUND, ENOENT, "pnpm: not found in PATH");
    /* Built by a Dockerfile whose other stage installed it: say where. */
    put("/ctx/Dockerfile", "FROM node:20 AS builder\nRUN corepack enable pnpm && pnpm install\n"
                           "RUN pnpm build\n\nFROM node:20-slim AS runner\nCOPY --from=builder /app /app\n"
                           "CMD [\"node\", \"dist/index.js\"]\n");
    char ctx[128];
    snprintf(ctx, sizeof(ctx), "%s/ctx", root);
    struct rbx_recipe_build b = {.context = ctx, .dockerfile = "Dockerfile", .target = "runner"};
    o.build = &b;
    diagnose(&o, "command-not-found", "\"pnpm\" is not in the image (PATH=/usr/local/bin:/usr/bin:/bin); it was only in the build stage \"builder\" (Dockerfile:2: RUN corepack enable pnpm && pnpm install)");
    /* A command no stage mentions is just not in the image. */
    step(&o, 127, "sh: yarn: not found\n");
    o.build = &b;
    diagnose(&o, "command-not-found", "\"yarn\" is not in the image");
}
END_TEST

START_TEST(test_command_not_found_but_elsewhere_in_the_image)
{
    struct rbx_outcome o;
    step(&o, 127, "sh: prisma: not found\n");
    diagnose(&o, "command-not-found", "\"prisma\" is not on PATH (PATH=/usr/local/bin:/usr/bin:/bin), but the image has /app/node_modules/.bin/prisma");
    step(&o, 127, "env: can't execute 'bash': No such file or directory\n");
    diagnose(&o, "command-not-found", "\"bash\" is not in the image");
}
END_TEST

START_TEST(test_not_executable)
{
    struct rbx_outcome o;
    step(&o, 126, NULL);
    o.ended = false;
    rbx_error_set(&o.error, RBX_ERR_EXEC_DENIED, EACCES, "/app/start.sh: permission denied");
    diagnose(&o, "not-executable", "is not executable");
    step(&o, 126, "sh: ./start.sh: Permission denied\n");
    diagnose(&o, "not-executable", "not executable");
}
END_TEST

START_TEST(test_exec_format)
{
    struct rbx_outcome o;
    step(&o, 126, NULL);
    o.ended = false;
    rbx_error_set(&o.error, RBX_ERR_EXEC_FORMAT, ENOENT,
                  "/usr/local/bin/node: its ELF interpreter /lib64/ld-linux-x86-64.so.2 is not in the image");
    diagnose(&o, "exec-format", "ELF interpreter");
    step(&o, 126, "sh: ./tool: cannot execute binary file: Exec format error\n");
    diagnose(&o, "exec-format", "another architecture");
}
END_TEST

START_TEST(test_hang_no_output)
{
    struct rbx_outcome o;
    step(&o, 143, NULL);
    proc.idle_timeout_ms = 5000;
    o.res.signal = SIGTERM;
    o.res.stop_reason = RBX_STOP_IDLE;
    diagnose(&o, "hang-no-output", "it printed nothing at all and never finished");
    step(&o, 143, "Prisma schema loaded from prisma/schema.prisma\n");
    proc.idle_timeout_ms = 30000;
    o.res.stop_reason = RBX_STOP_IDLE;
    diagnose(&o, "hang-no-output", "it went silent after \"Prisma schema loaded from prisma/schema.prisma\"");
    /* Nothing listens where DATABASE_URL points: that is what it waits for. */
    step(&o, 143, NULL);
    o.res.stop_reason = RBX_STOP_IDLE;
    o.listening_known = true;
    o.listening[0] = 4000;
    o.n_listening = 1;
    diagnose(&o, "hang-no-output", "it printed nothing and never finished; nothing listens on 127.0.0.1:5432, where DATABASE_URL points: most likely it was waiting for that");
    /* When the database listens, it is not the explanation. */
    step(&o, 143, NULL);
    o.res.stop_reason = RBX_STOP_IDLE;
    o.listening_known = true;
    o.listening[0] = 5432;
    o.n_listening = 1;
    diagnose(&o, "hang-no-output", "it printed nothing at all");
}
END_TEST

START_TEST(test_timeout)
{
    struct rbx_outcome o;
    step(&o, 143, "applying 1 of 400\n");
    proc.timeout_ms = 120000;
    o.res.stop_reason = RBX_STOP_TIMEOUT;
    diagnose(&o, "timeout", "still running after 120 s");
}
END_TEST

START_TEST(test_workdir_missing)
{
    struct rbx_outcome o;
    step(&o, 1, NODE_MNF("/app/apps/api/dist/index.js", "x"));
    free(o.cwd);
    o.cwd = strdup("/app/apps/api");
    o.cwd_missing = true;
    diagnose(&o, "workdir-missing", "the working directory /app/apps/api is not in the image; it was created empty, so /app/apps/api/dist/index.js is not there");
    step(&o, 1, "node:internal/process/... \nError: ENOENT: no such file or directory, chdir '/app' -> '/app/apps/api'\n    at process.wrappedChdir\n");
    diagnose(&o, "workdir-missing", "the directory /app/apps/api does not exist (chdir failed: ENOENT)");
    step(&o, 2, "sh: cd: line 1: can't cd to apps/api: No such file or directory\n");
    diagnose(&o, "workdir-missing", "apps/api");
}
END_TEST

START_TEST(test_provider_mismatch_from_the_schema_file)
{
    struct rbx_outcome o;
    step(&o, 1, "Error: Prisma schema validation - (get-config wasm)\nError code: P1012\nerror: Error validating datasource `db`: the URL must start with the protocol `mysql://`.\n");
    diagnose(&o, "provider-mismatch", "/app/prisma/schema.prisma says provider = \"mysql\", but DATABASE_URL is a postgresql:// URL");
    /* Without the URL to compare, Prisma's own words tell. */
    step(&o, 1, "error: Error validating datasource `db`: the URL must start with the protocol `mysql://`.\n");
    free(o.env[2]);
    o.env[2] = strdup("DB=x");
    diagnose(&o, "provider-mismatch", "the schema wants a mysql:// URL");
    /* A mismatch in the files does not explain an unrelated failure. */
    step(&o, 1, "Error: something else\n");
    rbx_diagnose(&o, rootfd);
    ck_assert_str_eq(o.diag_kind, "exit-status");
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_table_missing)
{
    struct rbx_outcome o;
    step(&o, 1, "prisma:error \nInvalid `prisma.product.findMany()` invocation:\n\nThe table `public.products` does not exist in the current database.\n");
    diagnose(&o, "table-missing", "the table public.products does not exist: the database schema was never migrated");
    step(&o, 1, "error: relation \"products\" does not exist\n");
    diagnose(&o, "table-missing", "the table products does not exist");
}
END_TEST

START_TEST(test_network_disabled)
{
    struct rbx_outcome o;
    step(&o, 1, "npm error code EAI_AGAIN\nnpm error request to https://registry.npmjs.org/prisma failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org\n");
    diagnose(&o, "network-disabled", "the lookup of \"registry.npmjs.org\" failed: the recipe runs with \"network\": \"none\"");
    step(&o, 1, "Error: connect ENETUNREACH 10.0.3.7:5432\n");
    diagnose(&o, "network-disabled", "a connection to another host failed");
    step(&o, 1, "Error: connect ENETUNREACH 10.0.3.7:5432\n");
    o.network = RBX_NETWORK_HOST;
    rbx_diagnose(&o, rootfd);
    ck_assert_str_eq(o.diag_kind, "exit-status");
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_database_unreachable)
{
    struct rbx_outcome o;
    step(&o, 1, "Error: P1001: Can't reach database server at `127.0.0.1:5432`\n\nPlease make sure your database server is running at `127.0.0.1:5432`.\n");
    diagnose(&o, "database-unreachable", "nothing answered at 127.0.0.1:5432");
    step(&o, 1, "Error: connect ECONNREFUSED 127.0.0.1:5432\n    at TCPConnectWrap.afterConnect\n");
    diagnose(&o, "database-unreachable", "127.0.0.1:5432");
}
END_TEST

START_TEST(test_env_missing)
{
    struct rbx_outcome o;
    step(&o, 1, "/app/dist/config.js:9\n    throw new Error(`Missing required environment variable: ${name}`);\n    ^\n\nError: Missing required environment variable: JWT_SECRET\n    at required (/app/dist/config.js:9:11)\n");
    diagnose(&o, "env-missing", "JWT_SECRET is not set in the environment");
    /* Set (to something) it is not the cause. */
    step(&o, 1, "Error: Missing required environment variable: NODE_ENV\n");
    rbx_diagnose(&o, rootfd);
    ck_assert_str_eq(o.diag_kind, "exit-status");
    rbx_outcome_clear(&o);
    /* Error codes are not variables. */
    step(&o, 1, "Error: ERR_INVALID_ARG_TYPE is required here\n");
    rbx_diagnose(&o, rootfd);
    ck_assert_str_eq(o.diag_kind, "exit-status");
    rbx_outcome_clear(&o);
}
END_TEST

START_TEST(test_module_not_found_pruned)
{
    struct rbx_outcome o;
    step(&o, 1, NODE_MNF("express", "/app/dist/index.js"));
    diagnose(&o, "module-not-found", "\"express\" is required by /app/dist/index.js but is in none of /app/dist/node_modules, /app/node_modules, /node_modules: it was pruned or never installed");
}
END_TEST

START_TEST(test_module_not_found_broken_pnpm_symlink)
{
    struct rbx_outcome o;
    step(&o, 1, NODE_MNF("express", "/app/pnpm/dist/index.js"));
    diagnose(&o, "module-not-found", "/app/pnpm/node_modules/express is a broken symlink to .pnpm/express@4.21.2/node_modules/express");
}
END_TEST

START_TEST(test_module_not_found_generated_client_elsewhere)
{
    struct rbx_outcome o;
    step(&o, 1, NODE_MNF(".prisma/client/default", "/app/node_modules/@prisma/client/default.js"));
    diagnose(&o, "module-not-found", "the image has /app/node_modules/@prisma/client/.prisma, but Node looks only in /app/node_modules/@prisma/client/node_modules");
}
END_TEST

START_TEST(test_module_not_found_main_program)
{
    struct rbx_outcome o;
    step(&o, 1, "Error: Cannot find module '/app/server.js'\n    at Module._resolveFilename\n {\n  code: 'MODULE_NOT_FOUND',\n  requireStack: []\n}\n");
    diagnose(&o, "module-not-found", "the program /app/server.js is not in the image");
}
END_TEST

static void detached(struct rbx_outcome *o)
{
    step(o, 0, "server listening on port 3000\n");
    o->ended = false;
    proc.detach = true;
    proc.ready.kind = RBX_PROBE_HTTP;
    proc.ready.url = "http://127.0.0.1:4000/health";
    o->has_ready = true;
    o->ready.elapsed_ms = 20000;
}

START_TEST(test_port_not_listening)
{
    struct rbx_outcome o;
    detached(&o);
    o.listening_known = true;
    o.listening[0] = 3000;
    o.n_listening = 1;
    diagnose(&o, "port-not-listening", "nothing listened on port 4000 within 20 s; the pod listens on 3000");
    detached(&o);
    o.listening_known = true;
    diagnose(&o, "port-not-listening", "nor on any other TCP port");
}
END_TEST

START_TEST(test_http_status)
{
    struct rbx_outcome o;
    static struct rbx_http_check checks[] = {{.get = "/api/v1/products"}};
    detached(&o);
    o.ready.ready = true;
    proc.expect.http = checks;
    proc.expect.n_http = 1;
    o.http = calloc(1, sizeof(*o.http));
    o.n_http = 1;
    o.http[0].url = strdup("http://127.0.0.1:4000/api/v1/products");
    o.http[0].resp.status = 500;
    o.http[0].resp.body = strdup("{\"success\":false,\"error\":\"Internal server error\"}");
    diagnose(&o, "http-status", "GET /api/v1/products answered 500: {\"success\":false");
}
END_TEST

START_TEST(test_table_missing_beats_http_status)
{
    struct rbx_outcome o;
    static struct rbx_http_check checks[] = {{.get = "/api/v1/products"}};
    detached(&o);
    free(o.res.stderr_tail);
    o.res.stderr_tail = strdup("The table `public.products` does not exist in the current database.\n");
    o.ready.ready = true;
    proc.expect.http = checks;
    proc.expect.n_http = 1;
    o.http = calloc(1, sizeof(*o.http));
    o.n_http = 1;
    o.http[0].url = strdup("http://x");
    o.http[0].resp.status = 500;
    diagnose(&o, "table-missing", "public.products");
}
END_TEST

START_TEST(test_killed_by_signal)
{
    struct rbx_outcome o;
    step(&o, 139, NULL);
    o.res.signal = SIGSEGV;
    diagnose(&o, "killed-by-signal", "killed by SIGSEGV");
}
END_TEST

START_TEST(test_exit_status_fallback)
{
    struct rbx_outcome o;
    step(&o, 3, "starting\nsomething odd happened\n");
    diagnose(&o, "exit-status", "it exited 3; its last line: \"something odd happened\"");
    step(&o, 2, NULL);
    diagnose(&o, "exit-status", "it exited 2 without any output");
}
END_TEST

START_TEST(test_start_failed)
{
    struct rbx_outcome o;
    step(&o, 0, NULL);
    o.ended = false;
    rbx_error_set(&o.error, RBX_ERR_SANDBOX, EPERM, "mount overlay: Operation not permitted");
    diagnose(&o, "start-failed", "mount overlay: Operation not permitted");
}
END_TEST

START_TEST(test_not_ready_when_nothing_else_explains)
{
    struct rbx_outcome o;
    detached(&o);
    free(o.res.stderr_tail);
    o.res.stderr_tail = NULL;
    o.ready.ever_connected = true; /* it answered, but not HTTP */
    diagnose(&o, "not-ready", "it was not ready within 20 s");
}
END_TEST

START_TEST(test_hang_beats_output_words)
{
    struct rbx_outcome o;
    step(&o, 143, "Error: connect ECONNREFUSED 127.0.0.1:5432\n");
    o.res.stop_reason = RBX_STOP_IDLE;
    diagnose(&o, "hang-no-output", "it went silent after");
}
END_TEST

START_TEST(test_every_kind_is_known)
{
    for (size_t i = 0; rbx_diagnosis_kinds[i]; i++)
        ck_assert(rbx_diagnosis_kind_valid(rbx_diagnosis_kinds[i]));
    ck_assert(!rbx_diagnosis_kind_valid("none"));
    ck_assert(!rbx_diagnosis_kind_valid("oom"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_diagnose");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_success_has_no_diagnosis);
    tcase_add_test(tc, test_oom_killed);
    tcase_add_test(tc, test_command_not_found_pnpm_from_the_shell);
    tcase_add_test(tc, test_command_not_found_from_the_sandbox_and_the_build);
    tcase_add_test(tc, test_command_not_found_but_elsewhere_in_the_image);
    tcase_add_test(tc, test_not_executable);
    tcase_add_test(tc, test_exec_format);
    tcase_add_test(tc, test_hang_no_output);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_workdir_missing);
    tcase_add_test(tc, test_provider_mismatch_from_the_schema_file);
    tcase_add_test(tc, test_table_missing);
    tcase_add_test(tc, test_network_disabled);
    tcase_add_test(tc, test_database_unreachable);
    tcase_add_test(tc, test_env_missing);
    tcase_add_test(tc, test_module_not_found_pruned);
    tcase_add_test(tc, test_module_not_found_broken_pnpm_symlink);
    tcase_add_test(tc, test_module_not_found_generated_client_elsewhere);
    tcase_add_test(tc, test_module_not_found_main_program);
    tcase_add_test(tc, test_port_not_listening);
    tcase_add_test(tc, test_http_status);
    tcase_add_test(tc, test_table_missing_beats_http_status);
    tcase_add_test(tc, test_killed_by_signal);
    tcase_add_test(tc, test_exit_status_fallback);
    tcase_add_test(tc, test_start_failed);
    tcase_add_test(tc, test_not_ready_when_nothing_else_explains);
    tcase_add_test(tc, test_hang_beats_output_words);
    tcase_add_test(tc, test_every_kind_is_known);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
