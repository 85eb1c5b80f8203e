/* test_sandbox_exec.c — rbx_exec_lookup and rbx_exec_explain (exec.c): execvp's search inside a
 * root, and the reasons an execve fails. */
#include "sandbox/sandbox-internal.h"

#include "sandbox_testlib.h"

static struct test_root root;

static void setup(void)
{
    test_root_make(&root);
    test_write_str(&root, "bin/tool", "#!/bin/sh\n", 0755);
    test_write_str(&root, "bin/data", "not a program\n", 0644);
    test_mkdir(&root, "bin/adir");
    test_write_str(&root, "usr/bin/tool2", "#!/bin/sh\n", 0755);
    test_write_str(&root, "usr/bin/data", "#!/bin/sh\n", 0755);
    test_symlink(&root, "/usr/bin/tool2", "bin/link");
    test_write_str(&root, "app/run.sh", "#!/bin/bash\necho\n", 0755);
    test_write_str(&root, "app/bin/local", "#!/bin/sh\n", 0755);
}

static void teardown(void)
{
    test_root_remove(&root);
}

static void lookup_ok(const char *cwd, const char *argv0, const char *path, const char *want)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    char out[RBX_PATH_MAX + 1];
    int r = rbx_exec_lookup(root.fd, cwd, argv0, path, out, sizeof(out), &err);
    ck_assert_msg(r == 0, "%s: %s", argv0, err ? err->message : "");
    ck_assert_str_eq(out, want);
}

static void lookup_fails(const char *cwd, const char *argv0, const char *path,
                         enum rbx_error_kind kind, const char *needle)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    char out[RBX_PATH_MAX + 1];
    ck_assert_int_lt(rbx_exec_lookup(root.fd, cwd, argv0, path, out, sizeof(out), &err), 0);
    ck_assert_error(err, kind, needle);
}

START_TEST(test_exec_found_in_path)
{
    lookup_ok("/", "tool", "/usr/bin:/bin", "/bin/tool");
    lookup_ok("/", "tool2", "/usr/bin:/bin", "/usr/bin/tool2");
    lookup_ok("/", "link", "/bin", "/bin/link");
    /* No PATH in the env: docker's default. */
    lookup_ok("/", "tool", NULL, "/bin/tool");
}
END_TEST

START_TEST(test_exec_not_found_names_the_path)
{
    lookup_fails("/", "pnpm", "/usr/local/bin:/usr/bin:/bin", RBX_ERR_EXEC_NOT_FOUND,
                 "\"pnpm\": executable file not found in $PATH "
                 "(PATH=/usr/local/bin:/usr/bin:/bin)");
    lookup_fails("/", "", "/bin", RBX_ERR_EXEC_NOT_FOUND, "executable file not found");
}
END_TEST

START_TEST(test_exec_not_executable_only_when_nothing_better)
{
    /* /bin/data has no x bit, /usr/bin/data has: execvp goes on and finds the second. */
    lookup_ok("/", "data", "/bin:/usr/bin", "/usr/bin/data");
    lookup_fails("/", "data", "/bin", RBX_ERR_EXEC_DENIED,
                 "\"data\": permission denied: /bin/data is not executable (PATH=/bin)");
    lookup_fails("/", "adir", "/bin", RBX_ERR_EXEC_DENIED, "/bin/adir is a directory");
}
END_TEST

START_TEST(test_exec_with_slash)
{
    lookup_ok("/app", "./run.sh", "/bin", "/app/run.sh");
    lookup_ok("/app", "bin/local", "/bin", "/app/bin/local");
    lookup_ok("/", "/usr/bin//tool2", "/bin", "/usr/bin/tool2");
    lookup_ok("/app/bin", "../run.sh", "/bin", "/app/bin/../run.sh");
    lookup_fails("/app", "./missing.sh", "/bin", RBX_ERR_EXEC_NOT_FOUND,
                 "\"./missing.sh\" (in /app): No such file or directory");
    lookup_fails("/", "/bin/data", "/bin", RBX_ERR_EXEC_DENIED, "\"/bin/data\": permission denied");
    lookup_fails("/", "/bin/adir", "/bin", RBX_ERR_EXEC_DENIED, "is a directory");
    lookup_fails("/", "/bin/tool/x", "/bin", RBX_ERR_EXEC_NOT_FOUND, "Not a directory");
}
END_TEST

START_TEST(test_exec_relative_path_entries)
{
    /* An empty PATH entry is the working directory, a relative one is below it. */
    lookup_ok("/app", "run.sh", "/bin::/usr/bin", "/app/run.sh");
    lookup_ok("/app", "local", "bin", "/app/bin/local");
}
END_TEST

static void escape_stays_in_root(bool walker)
{
    rbx_fs_force_walker(walker);
    /* Out of the root these name the host's /bin/sh; inside there is none. */
    test_symlink(&root, "/../../../../../bin/sh", "bin/escape");
    test_symlink(&root, "../../../../../../bin", "up");
    lookup_fails("/", "escape", "/bin", RBX_ERR_EXEC_NOT_FOUND, "executable file not found");
    lookup_fails("/", "sh", "/up", RBX_ERR_EXEC_NOT_FOUND, "executable file not found");
    lookup_fails("/", "/up/sh", "/bin", RBX_ERR_EXEC_NOT_FOUND, "\"/up/sh\"");
    rbx_fs_force_walker(false);
}

START_TEST(test_exec_symlink_escape_stays_in_root)
{
    escape_stays_in_root(false);
}
END_TEST

START_TEST(test_exec_symlink_escape_stays_in_root_walker)
{
    escape_stays_in_root(true);
}
END_TEST

START_TEST(test_exec_out_too_small)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    char out[4];
    ck_assert_int_lt(rbx_exec_lookup(root.fd, "/", "tool", "/bin", out, sizeof(out), &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "too long");
}
END_TEST

static void explain(const char *path, int errnum, enum rbx_error_kind kind, const char *needle)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_exec_explain(root.fd, path, path, errnum, &err), -errnum);
    ck_assert_error(err, kind, needle);
}

START_TEST(test_exec_explain_missing_interpreter)
{
    explain("/app/run.sh", ENOENT, RBX_ERR_EXEC_FORMAT,
            "\"/app/run.sh\": interpreter /bin/bash not found in the image");
    /* The interpreter is there: something it needs is not. */
    test_write_str(&root, "bin/bash", "", 0755);
    explain("/app/run.sh", ENOENT, RBX_ERR_EXEC_FORMAT, "interpreter /bin/bash could not be run");
    _cleanup_error_ struct rbx_error *err = NULL;
    rbx_exec_explain(root.fd, "run", "/app/run.sh", ENOENT, &err);
    ck_assert_error(err, RBX_ERR_EXEC_FORMAT, "\"run\" (/app/run.sh): ");
}
END_TEST

/* An ELF header and one PT_INTERP program header, little-endian 64-bit. */
static void write_elf(const char *rel, unsigned machine, const char *interp)
{
    unsigned char f[512];
    memset(f, 0, sizeof(f));
    memcpy(f, "\177ELF", 4);
    f[4] = 2; /* 64-bit */
    f[5] = 1; /* little-endian */
    f[6] = 1;
    f[16] = 2; /* ET_EXEC */
    f[18] = (unsigned char)machine;
    f[19] = (unsigned char)(machine >> 8);
    f[32] = 64; /* e_phoff */
    f[54] = 56; /* e_phentsize */
    f[56] = 1;  /* e_phnum */
    unsigned char *ph = f + 64;
    ph[0] = 3;   /* PT_INTERP */
    ph[8] = 200; /* p_offset */
    size_t n = strlen(interp) + 1;
    ph[32] = (unsigned char)n; /* p_filesz */
    memcpy(f + 200, interp, n);
    test_write(&root, rel, (const char *)f, sizeof(f), 0755);
}

START_TEST(test_exec_explain_missing_elf_loader)
{
    write_elf("bin/node", 62, "/lib/ld-musl-x86_64.so.1");
    explain("/bin/node", ENOENT, RBX_ERR_EXEC_FORMAT,
            "ELF interpreter /lib/ld-musl-x86_64.so.1 not found in the image "
            "(built for another C library?)");
}
END_TEST

START_TEST(test_exec_explain_wrong_machine)
{
    write_elf("bin/armtool", 183, "/lib/ld-linux-aarch64.so.1");
    explain("/bin/armtool", ENOEXEC, RBX_ERR_EXEC_FORMAT,
            "exec format error: an ELF binary for arm64, not this machine");
    explain("/bin/data", ENOEXEC, RBX_ERR_EXEC_FORMAT, "neither a binary nor a #! script");
}
END_TEST

START_TEST(test_exec_explain_denied)
{
    explain("/bin/tool", EACCES, RBX_ERR_EXEC_DENIED, "\"/bin/tool\": Permission denied");
    explain("/bin/tool", ETXTBSY, RBX_ERR_EXEC_DENIED, "cannot execute: Text file busy");
}
END_TEST

static Suite *exec_suite(void)
{
    Suite *s = suite_create("sandbox_exec");
    TCase *tc = tcase_create("lookup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exec_found_in_path);
    tcase_add_test(tc, test_exec_not_found_names_the_path);
    tcase_add_test(tc, test_exec_not_executable_only_when_nothing_better);
    tcase_add_test(tc, test_exec_with_slash);
    tcase_add_test(tc, test_exec_relative_path_entries);
    tcase_add_test(tc, test_exec_symlink_escape_stays_in_root);
    tcase_add_test(tc, test_exec_symlink_escape_stays_in_root_walker);
    tcase_add_test(tc, test_exec_out_too_small);
    suite_add_tcase(s, tc);
    tc = tcase_create("explain");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exec_explain_missing_interpreter);
    tcase_add_test(tc, test_exec_explain_missing_elf_loader);
    tcase_add_test(tc, test_exec_explain_wrong_machine);
    tcase_add_test(tc, test_exec_explain_denied);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(exec_suite)
