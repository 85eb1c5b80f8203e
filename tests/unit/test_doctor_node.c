/* test_doctor_node.c — what node loads: the specifiers a file names (never text inside strings,
 * comments or regular expressions), Node's resolution on trees (node_modules walk, main, index,
 * exports and its conditions, symlinks), and the app checks: modules that will not resolve,
 * dependencies an install left out, the generated Prisma client where it cannot be found. */
#include "doctor_testlib.h"
#include "rbx_check.h"
#include "recipes/doctor-internal.h"

static struct test_root T;

static void setup(void)
{
    test_root_make(&T);
    test_glibc_base(&T);
    test_glibc_prog(&T, "usr/local/bin/node");
}

static void teardown(void)
{
    rbx_doctor_report_clear(&doctor_report);
    test_root_remove(&T);
}

/* ---- the scanner ------------------------------------------------------------------------------
 */

static struct rbx_js_import *I;
static size_t NI;

static char *specs(const char *js)
{
    static char buf[2048];
    rbx_js_imports_free(I, NI);
    rbx_js_imports(js, strlen(js), &I, &NI);
    buf[0] = '\0';
    for (size_t i = 0; i < NI; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, I[i].specifier);
        if (I[i].guarded)
            strcat(buf, "?");
    }
    return buf;
}

START_TEST(test_js_imports_every_form)
{
    ck_assert_str_eq(specs("'use strict';\n"
                           "const express = require('express');\n"
                           "const { a } = require(\"./a\");\n"
                           "import x from 'x';\n"
                           "import { y, z as w } from \"y/sub\";\n"
                           "import * as ns from 'ns';\n"
                           "import 'side-effect';\n"
                           "export { q } from './q.js';\n"
                           "export * from '@scope/pkg';\n"
                           "const lazy = await import('lazy');\n"),
                     "express ./a x y/sub ns side-effect ./q.js @scope/pkg lazy");
    ck_assert_uint_eq(I[0].line, 2);
    ck_assert(!I[0].esm);
    ck_assert(!I[0].nested);
    ck_assert(I[2].esm);
}
END_TEST

START_TEST(test_js_imports_not_in_strings_comments_or_regexes)
{
    ck_assert_str_eq(specs("// require('no-comment')\n"
                           "/* import x from 'no-block' */\n"
                           "const s = \"require('no-string')\";\n"
                           "const t = `import('no-template') ${require('yes-in-template')}`;\n"
                           "const r = /require\\('no-regex'\\)/g;\n"
                           "const d = a / b; require('after-division');\n"
                           "obj.require('no-method'); require.resolve('no-resolve');\n"
                           "require('no' + 'concat'); require(name);\n"
                           "export function f() { return import.meta.url }\n"
                           "export const v = 1; import g from 'g';\n"
                           "module.exports = { ...require('spread') };\n"),
                     "yes-in-template after-division g spread");
}
END_TEST

START_TEST(test_js_imports_in_try_are_guarded)
{
    ck_assert_str_eq(
        specs("let pg;\ntry { pg = require('pg-native'); } catch (e) { pg = require('pg-js'); }\n"
              "try { require('a') } catch { require('b') } finally { require('c') }\n"
              "if (x) { require('d') }\n"),
        "pg-native? pg-js? a? b? c d");
    ck_assert(I[4].nested); /* finally { } is a block: c loads there, but on some paths only */
    ck_assert(I[5].nested);
    rbx_js_imports_free(I, NI);
    I = NULL;
    NI = 0;
}
END_TEST

/* Malformed input must never crash the scanner: every prefix, and each byte made special. */
START_TEST(test_js_scanner_survives_every_prefix_and_mutation)
{
    const char *js =
        "#!/usr/bin/env node\nconst a = require('a'); /* c */ // d\n"
        "const t = `x${ {a: `y${1}`} }z`; const r = /[/]\\//g; try { import('b') } catch (e) {}\n"
        "import c, { d } from 'c'; export * from 'e';\n";
    size_t len = strlen(js);
    char buf[512];
    const char specials[] = "'\"`/*{}()[]\\$\n";
    for (size_t n = 0; n <= len; n++) {
        struct rbx_js_import *v = NULL;
        size_t k = 0;
        rbx_js_imports(js, n, &v, &k);
        rbx_js_imports_free(v, k);
    }
    for (size_t i = 0; i < len; i++)
        for (size_t c = 0; c < sizeof(specials) - 1; c++) {
            memcpy(buf, js, len);
            buf[i] = specials[c];
            struct rbx_js_import *v = NULL;
            size_t k = 0;
            rbx_js_imports(buf, len, &v, &k);
            rbx_js_imports_free(v, k);
        }
}
END_TEST

START_TEST(test_node_builtins)
{
    ck_assert(rbx_node_builtin("fs"));
    ck_assert(rbx_node_builtin("fs/promises"));
    ck_assert(rbx_node_builtin("node:test"));
    ck_assert(!rbx_node_builtin("express"));
    ck_assert(!rbx_node_builtin("fsx"));
}
END_TEST

/* ---- resolution -------------------------------------------------------------------------------
 */

static struct rbx_node_resolution R;

static enum rbx_node_status resolve(const char *spec, const char *from, bool esm)
{
    rbx_node_resolution_clear(&R);
    ck_assert_int_eq(rbx_node_resolve(T.fd, spec, from, esm, NULL, &R, NULL), 0);
    return R.status;
}

START_TEST(test_resolve_node_modules_walk_main_and_index)
{
    test_file(&T, "app/node_modules/express/package.json", 0644, "{\"main\": \"lib/express\"}");
    test_file(&T, "app/node_modules/express/lib/express.js", 0644, "1");
    test_file(&T, "app/node_modules/lodash/index.js", 0644, "1");
    test_file(&T, "app/node_modules/lodash/fp.js", 0644, "1");
    test_file(&T, "app/src/util.json", 0644, "{}");
    ck_assert_int_eq(resolve("express", "/app/dist/routes", false), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/node_modules/express/lib/express.js");
    ck_assert_str_eq(R.package_dir, "/app/node_modules/express");
    ck_assert_int_eq(resolve("lodash", "/app", false), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/node_modules/lodash/index.js");
    ck_assert_int_eq(resolve("lodash/fp", "/app", false), RBX_NODE_FOUND);
    ck_assert_int_eq(resolve("../src/util", "/app/dist", false), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/src/util.json");
    ck_assert_int_eq(resolve("missing", "/app/dist", false), RBX_NODE_NOT_FOUND);
    ck_assert_str_eq(R.searched[0], "/app/dist/node_modules/missing");
    ck_assert_str_eq(R.searched[1], "/app/node_modules/missing");
    ck_assert_str_eq(R.searched[2], "/node_modules/missing");
    /* node_modules/node_modules is never searched */
    ck_assert_int_eq(resolve("missing", "/app/node_modules/express/lib", false),
                     RBX_NODE_NOT_FOUND);
    ck_assert_str_eq(R.searched[1], "/app/node_modules/express/node_modules/missing");
    ck_assert_str_eq(R.searched[2], "/app/node_modules/missing");
    rbx_node_resolution_clear(&R);
}
END_TEST

START_TEST(test_resolve_exports_conditions_and_patterns)
{
    test_file(&T, "app/node_modules/pkg/package.json", 0644,
              "{\"main\": \"old.js\", \"exports\": {"
              " \".\": {\"import\": \"./esm/index.mjs\", \"require\": \"./cjs/index.js\"},"
              " \"./features/*\": {\"node\": \"./src/features/*.js\", \"default\": \"./x\"},"
              " \"./package.json\": \"./package.json\", \"./internal/*\": null}}");
    test_file(&T, "app/node_modules/pkg/cjs/index.js", 0644, "1");
    test_file(&T, "app/node_modules/pkg/esm/index.mjs", 0644, "1");
    test_file(&T, "app/node_modules/pkg/src/features/a.js", 0644, "1");
    ck_assert_int_eq(resolve("pkg", "/app", false), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/node_modules/pkg/cjs/index.js");
    ck_assert_int_eq(resolve("pkg", "/app", true), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/node_modules/pkg/esm/index.mjs");
    ck_assert_int_eq(resolve("pkg/features/a", "/app", false), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/node_modules/pkg/src/features/a.js");
    ck_assert_int_eq(resolve("pkg/features/b", "/app", false), RBX_NODE_NOT_FOUND);
    ck_assert_ptr_nonnull(R.detail);
    ck_assert_int_eq(resolve("pkg/old.js", "/app", false), RBX_NODE_NOT_EXPORTED);
    ck_assert_int_eq(resolve("pkg/internal/x", "/app", false), RBX_NODE_NOT_EXPORTED);
    /* a string "exports" is the "." entry; conditions alone too */
    test_file(&T, "app/node_modules/s/package.json", 0644, "{\"exports\": \"./main.js\"}");
    test_file(&T, "app/node_modules/s/main.js", 0644, "1");
    ck_assert_int_eq(resolve("s", "/app", false), RBX_NODE_FOUND);
    test_file(&T, "app/node_modules/c/package.json", 0644,
              "{\"exports\": {\"browser\": \"./b.js\", \"default\": [\"./d.js\"]}}");
    test_file(&T, "app/node_modules/c/d.js", 0644, "1");
    ck_assert_int_eq(resolve("c", "/app", false), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/node_modules/c/d.js");
    rbx_node_resolution_clear(&R);
}
END_TEST

START_TEST(test_resolve_follows_symlinks_in_the_image)
{
    test_file(&T, "app/node_modules/.pnpm/ms@2.1.3/node_modules/ms/index.js", 0644, "1");
    test_link(&T, ".pnpm/ms@2.1.3/node_modules/ms", "app/node_modules/ms");
    ck_assert_int_eq(resolve("ms", "/app", false), RBX_NODE_FOUND);
    ck_assert_str_eq(R.path, "/app/node_modules/.pnpm/ms@2.1.3/node_modules/ms/index.js");
    ck_assert_str_eq(R.package_dir, "/app/node_modules/.pnpm/ms@2.1.3/node_modules/ms");
    test_link(&T, ".pnpm/debug@4/node_modules/debug", "app/node_modules/debug");
    ck_assert_int_eq(resolve("debug", "/app", false), RBX_NODE_NOT_FOUND);
    ck_assert_ptr_nonnull(R.broken);
    ck_assert_str_eq(R.broken[0], "/app/node_modules/debug -> .pnpm/debug@4/node_modules/debug, "
                                  "and /app/node_modules/.pnpm/debug@4 is not in the image");
    rbx_node_resolution_clear(&R);
}
END_TEST

/* ---- the app checks -----------------------------------------------------------------------------
 */

static void api_app(bool with_express)
{
    test_file(&T, "app/package.json", 0644,
              "{\"name\": \"api\", \"main\": \"dist/index.js\", \"dependencies\": "
              "{\"express\": \"4\", \"@prisma/client\": \"5\"}}");
    test_file(&T, "app/dist/index.js", 0644,
              "const express = require('express');\nconst { prisma } = require('./db');\n");
    test_file(&T, "app/dist/db.js", 0644, "const pkg = require('@prisma/client');\n");
    if (with_express) {
        test_file(
            &T, "app/node_modules/express/package.json", 0644,
            "{\"name\": \"express\", \"version\": \"4.21.2\", \"dependencies\": {\"qs\": \"6\"}}");
        test_file(&T, "app/node_modules/express/index.js", 0644,
                  "module.exports = require('./lib');");
        test_file(&T, "app/node_modules/qs/package.json", 0644, "{\"name\": \"qs\"}");
        test_file(&T, "app/node_modules/qs/index.js", 0644, "1");
    }
    test_file(&T, "app/node_modules/@prisma/client/package.json", 0644,
              "{\"name\": \"@prisma/client\", \"main\": \"index.js\"}");
    test_file(&T, "app/node_modules/@prisma/client/index.js", 0644,
              "module.exports = require('./default')");
    test_file(&T, "app/node_modules/@prisma/client/default.js", 0644,
              "module.exports = { ...require('.prisma/client/default') }");
    test_file(&T, "app/node_modules/.prisma/client/package.json", 0644, "{\"main\": \"index.js\"}");
    test_file(&T, "app/node_modules/.prisma/client/default.js", 0644, "1");
}

static char *node_argv[] = {"node", "dist/index.js", NULL};

START_TEST(test_module_not_found_from_the_entry)
{
    api_app(false);
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("module-not-found", RBX_SEVERITY_ERROR, "required at /app/dist/index.js:1");
    const struct rbx_finding *f = &doctor_report.findings[0];
    ck_assert(finding_says(f, "'express', a dependency in package.json"));
    ck_assert(finding_says(f, "listed in /app/package.json dependencies"));
    ck_assert(finding_says(f, "prune left it out"));
    api_app(true);
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_entry_missing)
{
    api_app(true);
    char *argv[] = {"node", "build/server.js", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("module-not-found", RBX_SEVERITY_ERROR, "Cannot find module '/app/build/server.js'");
    /* node x: a path relative to the working directory, with Node's extension search */
    char *argv2[] = {"node", "dist/index", NULL};
    doctor_run(&T, argv2, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_relative_require_missing)
{
    api_app(true);
    test_file(&T, "app/dist/index.js", 0644,
              "require('express');\nrequire('./routes/products');\n");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("module-not-found", RBX_SEVERITY_ERROR, "'./routes/products'");
    test_file(&T, "app/dist/routes/products/index.js", 0644, "require('./x')");
    test_file(&T, "app/dist/routes/products/x.js", 0644, "require('express')");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_transitive_dependency_missing)
{
    api_app(true);
    ck_assert_int_eq(unlinkat(T.fd, "app/node_modules/qs/index.js", 0), 0);
    ck_assert_int_eq(unlinkat(T.fd, "app/node_modules/qs/package.json", 0), 0);
    ck_assert_int_eq(unlinkat(T.fd, "app/node_modules/qs", AT_REMOVEDIR), 0);
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("module-not-found", RBX_SEVERITY_ERROR, "'qs', a dependency of express@4.21.2");
}
END_TEST

START_TEST(test_guarded_requires_and_optional_modules_are_not_errors)
{
    api_app(true);
    test_file(&T, "app/dist/index.js", 0644,
              "require('express');\ntry { require('pg-native') } catch (e) {}\n");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

/* Loads under a condition (a dev-only branch, a function) may never happen in production. */
START_TEST(test_nested_requires_and_dev_dependencies_are_warnings)
{
    api_app(true);
    test_file(&T, "app/package.json", 0644,
              "{\"dependencies\": {\"express\": \"4\", \"@prisma/client\": \"5\"},"
              " \"devDependencies\": {\"dotenv\": \"16\"}}");
    test_file(&T, "app/dist/index.js", 0644,
              "require('express');\nif (process.env.NODE_ENV !== 'production') {\n"
              "  require('dotenv').config();\n}\n");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("module-not-found", RBX_SEVERITY_WARNING,
               "listed in /app/package.json devDependencies");
    ck_assert(finding_says(&doctor_report.findings[0], "loaded on some paths only"));
    /* at the top level it is certain */
    test_file(&T, "app/dist/index.js", 0644, "require('express');\nrequire('dotenv').config();\n");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("module-not-found", RBX_SEVERITY_ERROR, "a devDependency is left out");
}
END_TEST

START_TEST(test_optional_dependencies_and_aliases)
{
    api_app(true);
    test_file(&T, "app/node_modules/express/package.json", 0644,
              "{\"name\": \"express\", \"version\": \"4\", \"dependencies\": {\"qs\": \"6\","
              " \"@esbuild/darwin-arm64\": \"1\"}, \"optionalDependencies\": "
              "{\"@esbuild/darwin-arm64\": \"1\"}}");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_silent();
    /* tsconfig-paths maps "@/lib/db" at run time: not an error */
    test_file(&T, "app/dist/index.js", 0644, "require('express');\nrequire('@/lib/db');\n");
    char *argv[] = {"node", "-r", "tsconfig-paths/register", "dist/index.js", NULL};
    test_file(&T, "app/node_modules/tsconfig-paths/register.js", 0644, "1");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("module-not-found", RBX_SEVERITY_WARNING, "unless a module alias maps it");
}
END_TEST

START_TEST(test_eval_and_preload)
{
    api_app(true);
    char *argv[] = {
        "node", "-r", "dotenv/config", "-e", "require(\"express\"); require('left-pad')", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    ck_assert_uint_eq(doctor_report.n_errors, 2);
    ck_assert(doctor_find("module-not-found"));
    char *ok[] = {"node", "-e", "require(\"express\")", NULL};
    doctor_run(&T, ok, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_prisma_client_missing)
{
    api_app(true);
    /* generated inside @prisma/client, where Node's resolution does not look */
    test_file(&T, "app/node_modules/@prisma/client/.prisma/client/default.js", 0644, "1");
    ck_assert_int_eq(unlinkat(T.fd, "app/node_modules/.prisma/client/default.js", 0), 0);
    ck_assert_int_eq(unlinkat(T.fd, "app/node_modules/.prisma/client/package.json", 0), 0);
    ck_assert_int_eq(unlinkat(T.fd, "app/node_modules/.prisma/client", AT_REMOVEDIR), 0);
    ck_assert_int_eq(unlinkat(T.fd, "app/node_modules/.prisma", AT_REMOVEDIR), 0);
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_one("prisma-client-missing", RBX_SEVERITY_ERROR,
               "found at /app/node_modules/@prisma/client/.prisma/client");
    ck_assert(finding_says(&doctor_report.findings[0], ".prisma/client/default"));
    ck_assert(finding_says(&doctor_report.findings[0], "searched /app/node_modules"));
    api_app(true);
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_yarn_plug_n_play_is_not_judged)
{
    test_file(&T, "app/package.json", 0644, "{\"dependencies\": {\"express\": \"4\"}}");
    test_file(&T, "app/dist/index.js", 0644, "require('express')");
    test_file(&T, "app/.pnp.cjs", 0644, "/* pnp */");
    doctor_run(&T, node_argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("doctor_node");
    TCase *lex = tcase_create("scanner");
    tcase_add_test(lex, test_js_imports_every_form);
    tcase_add_test(lex, test_js_imports_not_in_strings_comments_or_regexes);
    tcase_add_test(lex, test_js_imports_in_try_are_guarded);
    tcase_add_test(lex, test_js_scanner_survives_every_prefix_and_mutation);
    tcase_add_test(lex, test_node_builtins);
    suite_add_tcase(s, lex);
    TCase *tc = tcase_create("resolution");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_resolve_node_modules_walk_main_and_index);
    tcase_add_test(tc, test_resolve_exports_conditions_and_patterns);
    tcase_add_test(tc, test_resolve_follows_symlinks_in_the_image);
    tcase_add_test(tc, test_module_not_found_from_the_entry);
    tcase_add_test(tc, test_entry_missing);
    tcase_add_test(tc, test_relative_require_missing);
    tcase_add_test(tc, test_transitive_dependency_missing);
    tcase_add_test(tc, test_guarded_requires_and_optional_modules_are_not_errors);
    tcase_add_test(tc, test_nested_requires_and_dev_dependencies_are_warnings);
    tcase_add_test(tc, test_optional_dependencies_and_aliases);
    tcase_add_test(tc, test_eval_and_preload);
    tcase_add_test(tc, test_prisma_client_missing);
    tcase_add_test(tc, test_yarn_plug_n_play_is_not_judged);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
