/* test_doctor_exec.c — command resolution as execve and the shell do it, each check named on a
 * tree with the defect and silent on its fixed twin: PATH, execute bits, #! interpreters and
 * /usr/bin/env, ELF architecture, loader and libraries, the commands of sh -c and scripts. */
#include "doctor_testlib.h"
#include "rbx_check.h"
#include "recipes/doctor-internal.h"

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

START_TEST(test_command_not_found_on_path)
{
    char *argv[] = {"server", "--port", "80", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR, "PATH=/usr/local/sbin");
    ck_assert_str_eq(doctor_report.findings[0].processes[0], "test");
    /* fixed: the program is on PATH (and its libraries are there) */
    test_glibc_prog(&T, "usr/local/bin/server");
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_command_in_node_modules_bin_is_hinted)
{
    test_static_prog(&T, "app/node_modules/prisma/build/index.js");
    test_link(&T, "../prisma/build/index.js", "app/node_modules/.bin/prisma");
    char *argv[] = {"prisma", "migrate", "deploy", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR, "/app/node_modules/.bin/prisma");
    char *fixed[] = {"./node_modules/.bin/prisma", "migrate", "deploy", NULL};
    doctor_run(&T, fixed, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_not_executable)
{
    test_file(&T, "usr/local/bin/run", 0644, "#!/bin/sh\necho hi\n");
    char *argv[] = {"/usr/local/bin/run", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("not-executable", RBX_SEVERITY_ERROR, "/usr/local/bin/run");
    test_file(&T, "usr/local/bin/run", 0755, "#!/bin/sh\necho hi\n");
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_not_executable_by_the_user)
{
    test_file(&T, "usr/local/bin/run", 0744, "#!/bin/sh\necho hi\n");
    char *argv[] = {"run", NULL};
    doctor_run(&T, argv, NULL, NULL, "app", NULL);
    expect_one("not-executable", RBX_SEVERITY_ERROR, "not executable by app");
    doctor_run(&T, argv, NULL, NULL, NULL, NULL); /* root may */
    expect_silent();
    test_file(&T, "usr/local/bin/run", 0755, "#!/bin/sh\necho hi\n");
    doctor_run(&T, argv, NULL, NULL, "app", NULL);
    expect_silent();
}
END_TEST

START_TEST(test_interpreter_missing)
{
    test_file(&T, "usr/local/bin/entry", 0755, "#!/bin/bash\nexec server\n");
    char *argv[] = {"entry", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("interpreter-missing", RBX_SEVERITY_ERROR, "#!/bin/bash");
    test_file(&T, "usr/local/bin/entry", 0755, "#!/bin/sh\nexec /bin/sh -c true\n");
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_env_shebang_looks_on_path)
{
    test_file(&T, "app/cli.js", 0755, "#!/usr/bin/env node\nconsole.log(1)\n");
    char *argv[] = {"/app/cli.js", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR, "\"node\"");
    test_glibc_prog(&T, "usr/local/bin/node");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
    /* without -S, env takes "node --max-old-space-size=1" as one name */
    test_file(&T, "app/cli.js", 0755, "#!/usr/bin/env node --max-old-space-size=1\n1\n");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR, "node --max-old-space-size=1");
    test_file(&T, "app/cli.js", 0755, "#!/usr/bin/env -S node --max-old-space-size=1\n1\n");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_exec_format)
{
    test_file(&T, "usr/local/bin/tool", 0755, "echo no shebang\n");
    char *argv[] = {"tool", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("exec-format", RBX_SEVERITY_ERROR, "neither an ELF binary nor a script");
    /* a shell runs such a file itself */
    char *sh[] = {"sh", "-c", "tool", NULL};
    doctor_run(&T, sh, NULL, NULL, NULL, NULL);
    expect_silent();
    test_file(&T, "usr/local/bin/tool", 0755, "#!/bin/sh\necho shebang\n");
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_elf_arch_mismatch)
{
    struct elf_spec arm = {
        .machine = 183, .interp = "/lib/ld-linux-aarch64.so.1", .needed = {"libc.so.6"}};
    test_elf(&T, "usr/local/bin/server", 0755, &arm);
    char *argv[] = {"server", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("elf-arch-mismatch", RBX_SEVERITY_ERROR, "arm64");
    test_glibc_prog(&T, "usr/local/bin/server");
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_elf_loader_missing)
{
    struct elf_spec sp = {.interp = "/opt/rt/ld.so", .needed = {"libc.so.6"}};
    test_elf(&T, "usr/local/bin/server", 0755, &sp);
    char *argv[] = {"server", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("elf-loader-missing", RBX_SEVERITY_ERROR, "/opt/rt/ld.so");
    struct elf_spec ld = {0};
    test_elf(&T, "opt/rt/ld.so", 0755, &ld);
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

/* A glibc binary on a musl-like image: no glibc loader, musl's is there. */
START_TEST(test_musl_glibc_mismatch)
{
    struct test_root M;
    test_root_make(&M);
    struct elf_spec musl = {.soname = "libc.musl-x86_64.so.1"};
    test_elf(&M, "lib/ld-musl-x86_64.so.1", 0755, &musl);
    test_static_prog(&M, "bin/sh");
    test_glibc_prog(&M, "usr/local/bin/node");
    char *argv[] = {"node", NULL};
    doctor_run(&M, argv, NULL, NULL, NULL, NULL);
    expect_one("musl-glibc-mismatch", RBX_SEVERITY_ERROR, "/lib/ld-musl-x86_64.so.1");
    /* fixed: a node built for musl */
    struct elf_spec mnode = {.interp = "/lib/ld-musl-x86_64.so.1",
                             .needed = {"libc.musl-x86_64.so.1"}};
    test_elf(&M, "usr/local/bin/node", 0755, &mnode);
    doctor_run(&M, argv, NULL, NULL, NULL, NULL);
    expect_silent();
    rbx_doctor_report_clear(&doctor_report);
    test_root_remove(&M);
}
END_TEST

START_TEST(test_library_missing)
{
    struct elf_spec sp = {.interp = "/lib64/ld-linux-x86-64.so.2",
                          .needed = {"libc.so.6", "libssl.so.3"},
                          .runpath = "$ORIGIN/../lib"};
    test_elf(&T, "opt/app/bin/server", 0755, &sp);
    char *argv[] = {"/opt/app/bin/server", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("library-missing", RBX_SEVERITY_ERROR, "libssl.so.3: needed by /opt/app/bin/server");
    ck_assert(finding_says(&doctor_report.findings[0], "/opt/app/lib"));
    struct elf_spec ssl = {.soname = "libssl.so.3"};
    test_elf(&T, "opt/app/lib/libssl.so.3", 0755, &ssl);
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_sh_c_commands)
{
    char *argv[] = {"sh", "-c", "cd /app && pnpm install && exec server", NULL};
    test_dir(&T, "app", 0755);
    test_glibc_prog(&T, "usr/local/bin/server");
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR, "\"pnpm\"");
    ck_assert(finding_says(&doctor_report.findings[0], "sh -c:1: pnpm install"));
    char *fixed[] = {"/bin/sh", "-ec", "cd /app; exec server --x", NULL};
    doctor_run(&T, fixed, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

/* The postmortem's migration task: sh ./scripts/run-migrations.sh calls pnpm. */
START_TEST(test_script_commands)
{
    test_file(&T, "app/scripts/run-migrations.sh", 0755,
              "#!/bin/sh\nset -e\necho \"Running migrations...\"\npnpm db:migrate\n");
    test_file(&T, "app/package.json", 0644,
              "{\"scripts\": {\"db:migrate\": \"prisma migrate deploy\"}}");
    char *argv[] = {"sh", "./scripts/run-migrations.sh", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR,
               "/app/scripts/run-migrations.sh:4: pnpm db:migrate");
    ck_assert(
        finding_says(&doctor_report.findings[0], "\"db:migrate\": \"prisma migrate deploy\""));
    /* fixed: the script calls the program the image has */
    test_static_prog(&T, "app/node_modules/prisma/build/index.js");
    test_link(&T, "../prisma/build/index.js", "app/node_modules/.bin/prisma");
    test_file(&T, "app/scripts/run-migrations.sh", 0755,
              "#!/bin/sh\nset -e\n./node_modules/.bin/prisma migrate deploy\n");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_script_missing)
{
    char *argv[] = {"sh", "./scripts/migrate.sh", NULL};
    test_dir(&T, "app", 0755);
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("script-missing", RBX_SEVERITY_ERROR, "/app/scripts/migrate.sh");
    test_file(&T, "app/scripts/migrate.sh", 0644, "echo ok\n");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_scripts_source_functions_builtins_and_probes)
{
    test_file(&T, "app/env.sh", 0644, "export A=1\nhelper\n");
    test_file(&T, "app/run.sh", 0755,
              "#!/bin/sh\n"
              "log() { echo \"$@\" >&2; }\n"
              ". ./env.sh\n"
              "log starting\n"
              "if command -v yarn >/dev/null; then yarn start; fi\n"
              "cd /; read x </dev/null; test -n \"$x\" || true\n"
              "exec \"$@\"\n");
    char *argv[] = {"./run.sh", "server", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    /* helper (from the sourced file) and server (the script's argument, exec'd) are missing;
     * yarn is probed first: the script handles its absence */
    ck_assert_msg(doctor_report.n_errors == 2 && doctor_report.n_warnings == 0, "%s",
                  doctor_text());
    ck_assert(finding_says(&doctor_report.findings[0], "/app/env.sh:2: helper"));
    ck_assert(finding_says(&doctor_report.findings[1], "\"server\""));
}
END_TEST

START_TEST(test_unresolvable_command_is_a_warning)
{
    /* an entrypoint's exec "$@" after a shift: what it runs is the image's Cmd, not a guess */
    test_file(
        &T, "usr/local/bin/entry.sh", 0755,
        "#!/bin/sh\nif [ \"$1\" = serve ]; then shift; exec /bin/sh \"$@\"; fi\nexec \"$@\"\n");
    char *entry[] = {"entry.sh", "serve", NULL};
    doctor_run(&T, entry, NULL, NULL, NULL, NULL);
    expect_silent();
    char *argv[] = {"sh", "-c", "$RUNNER start", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("command-unresolved", RBX_SEVERITY_WARNING, "$... start");
    test_static_prog(&T, "usr/local/bin/runner");
    char *env[] = {"PATH=/usr/local/bin:/bin", "RUNNER=runner", NULL};
    doctor_run(&T, argv, env, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_wrappers_run_their_command)
{
    test_static_prog(&T, "usr/bin/tini");
    char *argv[] = {"tini", "--", "env", "NODE_ENV=production", "server", NULL};
    doctor_run(&T, argv, NULL, NULL, NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR, "\"server\"");
    /* env PATH=... changes where the command is looked for */
    test_static_prog(&T, "opt/bin/server");
    char *fixed[] = {"tini", "--", "env", "PATH=/opt/bin", "server", NULL};
    doctor_run(&T, fixed, NULL, NULL, NULL, NULL);
    expect_silent();
}
END_TEST

START_TEST(test_npx_download)
{
    test_static_prog(&T, "usr/local/bin/npx");
    test_dir(&T, "app", 0755);
    char *argv[] = {"npx", "prisma@5.22.0", "migrate", "deploy", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_one("npx-download", RBX_SEVERITY_WARNING, "npm registry");
    test_static_prog(&T, "app/node_modules/.bin/prisma");
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

/* FROM scratch: one static binary, no /etc/passwd, no shell. */
START_TEST(test_scratch_image)
{
    struct test_root S;
    test_root_make(&S);
    test_static_prog(&S, "server");
    char *argv[] = {"/server", "-port", "80", NULL};
    doctor_run(&S, argv, NULL, NULL, NULL, NULL);
    expect_silent();
    char *sh[] = {"sh", "-c", "/server", NULL};
    doctor_run(&S, sh, NULL, NULL, NULL, NULL);
    expect_one("command-not-found", RBX_SEVERITY_ERROR, "\"sh\"");
    rbx_doctor_report_clear(&doctor_report);
    test_root_remove(&S);
}
END_TEST

/* A script that runs itself must not loop the doctor. */
START_TEST(test_recursion_is_bounded)
{
    test_file(&T, "app/a.sh", 0755, "#!/bin/sh\nsh /app/b.sh\n");
    test_file(&T, "app/b.sh", 0755, "#!/bin/sh\n/app/a.sh\nsh -c 'sh -c \"sh /app/a.sh\"'\n");
    char *argv[] = {"/app/a.sh", NULL};
    doctor_run(&T, argv, NULL, "/app", NULL, NULL);
    expect_silent();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("doctor_exec");
    TCase *tc = tcase_create("exec");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_command_not_found_on_path);
    tcase_add_test(tc, test_command_in_node_modules_bin_is_hinted);
    tcase_add_test(tc, test_not_executable);
    tcase_add_test(tc, test_not_executable_by_the_user);
    tcase_add_test(tc, test_interpreter_missing);
    tcase_add_test(tc, test_env_shebang_looks_on_path);
    tcase_add_test(tc, test_exec_format);
    tcase_add_test(tc, test_elf_arch_mismatch);
    tcase_add_test(tc, test_elf_loader_missing);
    tcase_add_test(tc, test_musl_glibc_mismatch);
    tcase_add_test(tc, test_library_missing);
    tcase_add_test(tc, test_sh_c_commands);
    tcase_add_test(tc, test_script_commands);
    tcase_add_test(tc, test_script_missing);
    tcase_add_test(tc, test_scripts_source_functions_builtins_and_probes);
    tcase_add_test(tc, test_unresolvable_command_is_a_warning);
    tcase_add_test(tc, test_wrappers_run_their_command);
    tcase_add_test(tc, test_npx_download);
    tcase_add_test(tc, test_scratch_image);
    tcase_add_test(tc, test_recursion_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
