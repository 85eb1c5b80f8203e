/* test_doctor_elf.c — the ELF reader on hand-built files (both classes and byte orders, static and
 * dynamic, broken ones) and the loader's search through an image's own directories. */
#include "doctor_testlib.h"
#include "rbx_check.h"
#include "recipes/doctor-internal.h"

#include <sys/mman.h>

static struct test_root T;

static void setup(void)
{
    test_root_make(&T);
}
static void teardown(void)
{
    test_root_remove(&T);
}

static int memfd_of(const unsigned char *buf, size_t n)
{
    int fd = memfd_create("elf", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
    return fd;
}

static int read_spec(const struct elf_spec *sp, struct rbx_elf *e)
{
    unsigned char buf[4096];
    size_t n = elf_build(sp, buf, sizeof(buf));
    int fd = memfd_of(buf, n);
    struct rbx_error *err = NULL;
    int r = rbx_elf_read(fd, "prog", e, &err);
    ck_assert_msg(r == 0, "%s", err ? err->message : "");
    close(fd);
    return r;
}

START_TEST(test_elf_reads_interp_needed_and_paths)
{
    struct elf_spec sp = {.interp = "/lib64/ld-linux-x86-64.so.2",
                          .needed = {"libc.so.6", "libfoo.so.1"},
                          .runpath = "$ORIGIN/../lib",
                          .soname = "prog"};
    struct rbx_elf e;
    read_spec(&sp, &e);
    ck_assert(e.is_elf);
    ck_assert_uint_eq(e.cls, 2);
    ck_assert(!e.big_endian);
    ck_assert_uint_eq(e.machine, 62);
    ck_assert_str_eq(e.interp, "/lib64/ld-linux-x86-64.so.2");
    ck_assert_uint_eq(rbx_strv_len(e.needed), 2);
    ck_assert_str_eq(e.needed[0], "libc.so.6");
    ck_assert_str_eq(e.needed[1], "libfoo.so.1");
    ck_assert_str_eq(e.runpath, "$ORIGIN/../lib");
    ck_assert_ptr_null(e.rpath);
    ck_assert_str_eq(e.soname, "prog");
    ck_assert_str_eq(rbx_elf_arch_name(&e), "amd64");
    ck_assert(rbx_elf_runs_on(&e, "amd64"));
    ck_assert(!rbx_elf_runs_on(&e, "arm64"));
    rbx_elf_clear(&e);
}
END_TEST

START_TEST(test_elf_32bit_big_endian)
{
    struct elf_spec sp = {.cls = 1,
                          .be = true,
                          .machine = 8,
                          .interp = "/lib/ld.so.1",
                          .needed = {"libc.so.6"},
                          .rpath = "/opt/lib"};
    struct rbx_elf e;
    read_spec(&sp, &e);
    ck_assert_uint_eq(e.cls, 1);
    ck_assert(e.big_endian);
    ck_assert_str_eq(rbx_elf_arch_name(&e), "mips");
    ck_assert_str_eq(e.interp, "/lib/ld.so.1");
    ck_assert_str_eq(e.needed[0], "libc.so.6");
    ck_assert_str_eq(e.rpath, "/opt/lib");
    ck_assert(!rbx_elf_runs_on(&e, "amd64"));
    rbx_elf_clear(&e);
}
END_TEST

START_TEST(test_elf_static_and_compat_modes)
{
    struct elf_spec sp = {.cls = 1, .machine = 3, .type = 2};
    struct rbx_elf e;
    read_spec(&sp, &e);
    ck_assert_ptr_null(e.interp);
    ck_assert_ptr_null(e.needed);
    ck_assert_str_eq(rbx_elf_arch_name(&e), "386");
    ck_assert(rbx_elf_runs_on(&e, "amd64")); /* IA-32 emulation */
    ck_assert(!rbx_elf_runs_on(&e, "arm64"));
    ck_assert(rbx_elf_runs_on(&e, "")); /* the image does not say */
    rbx_elf_clear(&e);
}
END_TEST

START_TEST(test_elf_not_elf_is_no_error)
{
    const unsigned char text[] = "#!/bin/sh\necho hi\n";
    int fd = memfd_of(text, sizeof(text) - 1);
    struct rbx_elf e;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_elf_read(fd, "script", &e, &err), 0);
    ck_assert(!e.is_elf);
    ck_assert_ptr_null(err);
    close(fd);
}
END_TEST

START_TEST(test_elf_libc_of_interp)
{
    ck_assert_int_eq(rbx_elf_libc_of_interp("/lib64/ld-linux-x86-64.so.2"), RBX_LIBC_GLIBC);
    ck_assert_int_eq(rbx_elf_libc_of_interp("/lib/ld-linux-aarch64.so.1"), RBX_LIBC_GLIBC);
    ck_assert_int_eq(rbx_elf_libc_of_interp("/lib64/ld64.so.2"), RBX_LIBC_GLIBC);
    ck_assert_int_eq(rbx_elf_libc_of_interp("/lib/ld-musl-x86_64.so.1"), RBX_LIBC_MUSL);
    ck_assert_int_eq(rbx_elf_libc_of_interp("/system/bin/linker64"), RBX_LIBC_UNKNOWN);
    ck_assert_int_eq(rbx_elf_libc_of_interp(NULL), RBX_LIBC_UNKNOWN);
}
END_TEST

static void expect_malformed(unsigned char *buf, size_t n, const char *needle)
{
    int fd = memfd_of(buf, n);
    struct rbx_elf e;
    struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_elf_read(fd, "bad", &e, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, needle);
    rbx_error_free(err);
    close(fd);
}

START_TEST(test_elf_malformed_files_are_named)
{
    struct elf_spec sp = {.interp = "/lib64/ld-linux-x86-64.so.2", .needed = {"libc.so.6"}};
    unsigned char buf[4096];
    size_t n = elf_build(&sp, buf, sizeof(buf));

    unsigned char b[4096];
    memcpy(b, buf, n);
    put(b + 32, 1u << 30, 8, false); /* e_phoff past the end */
    expect_malformed(b, n, "program headers outside the file");

    memcpy(b, buf, n);
    put(b + 56, 4000, 2, false); /* e_phnum: 4000 * 56 bytes */
    expect_malformed(b, n, "program headers");

    memcpy(b, buf, n);
    size_t interp = 64 + 3 * 56;
    b[interp + strlen(sp.interp)] = 'X'; /* PT_INTERP without its NUL */
    expect_malformed(b, n, "PT_INTERP");

    expect_malformed(buf, 40, "unknown class"); /* truncated header */

    memcpy(b, buf, n);
    b[4] = 7;
    expect_malformed(b, n, "unknown class");
}
END_TEST

/* Malformed input must never crash the reader: every byte of a valid file flipped, one at a
 * time, and every truncation. */
START_TEST(test_elf_reader_survives_every_corruption)
{
    struct elf_spec sp = {.interp = "/lib64/ld-linux-x86-64.so.2",
                          .needed = {"libc.so.6", "libm.so.6"},
                          .rpath = "/a",
                          .runpath = "/b"};
    unsigned char buf[4096], b[4096];
    size_t n = elf_build(&sp, buf, sizeof(buf));
    for (size_t i = 0; i < n; i++) {
        for (unsigned v = 0; v < 3; v++) {
            memcpy(b, buf, n);
            b[i] = v == 0 ? 0xff : v == 1 ? 0 : (unsigned char)(b[i] ^ 0x80);
            int fd = memfd_of(b, n);
            struct rbx_elf e;
            struct rbx_error *err = NULL;
            if (rbx_elf_read(fd, "fuzz", &e, &err) == 0)
                rbx_elf_clear(&e);
            rbx_error_free(err);
            close(fd);
        }
    }
    for (size_t len = 0; len < n; len++) {
        int fd = memfd_of(buf, len);
        struct rbx_elf e;
        struct rbx_error *err = NULL;
        if (rbx_elf_read(fd, "short", &e, &err) == 0)
            rbx_elf_clear(&e);
        rbx_error_free(err);
        close(fd);
    }
}
END_TEST

/* ---- the loader's search -------------------------------------------------------------------- */

static const char *LOADER = "/lib64/ld-linux-x86-64.so.2";

/* A Debian-like glibc layout: the loader by its PT_INTERP path, libc in the multiarch dir. */
static void glibc_base(void)
{
    struct elf_spec ld = {.soname = "ld-linux-x86-64.so.2"};
    test_elf(&T, "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0755, &ld);
    test_link(&T, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", LOADER);
    struct elf_spec libc = {.soname = "libc.so.6", .needed = {"ld-linux-x86-64.so.2"}};
    test_elf(&T, "lib/x86_64-linux-gnu/libc.so.6", 0755, &libc);
}

static void closure_of(const char *path, char *const *env, struct rbx_elf_closure *c)
{
    struct rbx_error *err = NULL;
    int fd = rbx_open_in_root(T.fd, path, O_RDONLY, 0, 0, &err);
    ck_assert_int_ge(fd, 0);
    struct rbx_elf e;
    ck_assert_int_eq(rbx_elf_read(fd, path, &e, &err), 0);
    close(fd);
    ck_assert_int_eq(rbx_elf_closure(T.fd, path, &e, env, c, &err), 0);
    rbx_elf_clear(&e);
}

START_TEST(test_closure_runpath_origin_conf_and_transitive)
{
    glibc_base();
    struct elf_spec prog = {.interp = LOADER,
                            .needed = {"libc.so.6", "libfoo.so.1", "libbar.so.2"},
                            .runpath = "$ORIGIN/../lib"};
    test_elf(&T, "app/bin/prog", 0755, &prog);
    struct elf_spec foo = {.soname = "libfoo.so.1", .needed = {"libc.so.6", "libbaz.so"}};
    test_elf(&T, "app/lib/libfoo.so.1", 0755, &foo);
    struct elf_spec bar = {.soname = "libbar.so.2"};
    test_elf(&T, "opt/bar/lib/libbar.so.2", 0755, &bar);
    test_file(&T, "etc/ld.so.conf", 0644, "# comment\ninclude ld.so.conf.d/*.conf\n");
    test_file(&T, "etc/ld.so.conf.d/bar.conf", 0644, "/opt/bar/lib/\n");
    test_file(&T, "etc/ld.so.conf.d/baz.conf.off", 0644, "/opt/baz\n");

    struct rbx_elf_closure c;
    closure_of("/app/bin/prog", NULL, &c);
    /* libbaz.so, needed by libfoo, is nowhere: named with who needs it */
    ck_assert_uint_eq(c.n_missing, 1);
    ck_assert_str_eq(c.missing[0].name, "libbaz.so");
    ck_assert_str_eq(c.missing[0].needed_by, "/app/lib/libfoo.so.1");
    ck_assert_msg(strstr(c.missing[0].searched, "/opt/bar/lib") != NULL, "%s",
                  c.missing[0].searched);
    ck_assert_msg(strstr(c.missing[0].searched, "/opt/baz") == NULL, "%s", c.missing[0].searched);
    /* RUNPATH applies to the object's own needs only: libfoo does not search $ORIGIN/../lib */
    ck_assert_msg(strstr(c.missing[0].searched, "/app/lib") == NULL, "%s", c.missing[0].searched);
    rbx_elf_closure_clear(&c);

    struct elf_spec baz = {.soname = "libbaz.so"};
    test_elf(&T, "usr/lib/libbaz.so", 0755, &baz);
    closure_of("/app/bin/prog", NULL, &c);
    ck_assert_uint_eq(c.n_missing, 0);
    ck_assert_uint_eq(c.n_objects, 6); /* prog, loader, libc, foo, bar, baz */
    rbx_elf_closure_clear(&c);
}
END_TEST

START_TEST(test_closure_rpath_is_inherited_and_ld_library_path_used)
{
    glibc_base();
    struct elf_spec prog = {.interp = LOADER, .needed = {"libc.so.6", "libone.so"}, .rpath = "/rp"};
    test_elf(&T, "bin/prog", 0755, &prog);
    struct elf_spec one = {.needed = {"libinh.so", "libenv.so"}};
    test_elf(&T, "rp/libone.so", 0755, &one);
    struct elf_spec plain = {0};
    test_elf(&T, "rp/libinh.so", 0755, &plain);
    test_elf(&T, "custom/libenv.so", 0755, &plain);

    struct rbx_elf_closure c;
    closure_of("/bin/prog", NULL, &c);
    ck_assert_uint_eq(c.n_missing, 1);
    ck_assert_str_eq(c.missing[0].name, "libenv.so");
    rbx_elf_closure_clear(&c);

    char *env[] = {"LD_LIBRARY_PATH=/custom", NULL};
    closure_of("/bin/prog", env, &c);
    ck_assert_uint_eq(c.n_missing, 0);
    rbx_elf_closure_clear(&c);
}
END_TEST

START_TEST(test_closure_skips_libraries_of_another_machine)
{
    glibc_base();
    struct elf_spec prog = {.interp = LOADER, .needed = {"libc.so.6", "libqux.so"}};
    test_elf(&T, "bin/prog", 0755, &prog);
    struct elf_spec arm = {.machine = 183};
    test_elf(&T, "usr/lib/libqux.so", 0755, &arm);
    struct rbx_elf_closure c;
    closure_of("/bin/prog", NULL, &c);
    ck_assert_uint_eq(c.n_missing, 1);
    ck_assert_str_eq(c.missing[0].name, "libqux.so");
    ck_assert_ptr_nonnull(c.missing[0].incompatible);
    ck_assert_msg(strstr(c.missing[0].incompatible, "/usr/lib/libqux.so (arm64)") != NULL, "%s",
                  c.missing[0].incompatible);
    rbx_elf_closure_clear(&c);

    /* a compatible one later in the search order is taken, as the loader does */
    struct elf_spec good = {0};
    test_elf(&T, "lib64/libqux.so", 0755, &good);
    closure_of("/bin/prog", NULL, &c);
    ck_assert_uint_eq(c.n_missing, 0);
    rbx_elf_closure_clear(&c);
}
END_TEST

START_TEST(test_closure_musl_path_file)
{
    struct elf_spec ld = {.soname = "libc.musl-x86_64.so.1"};
    test_elf(&T, "lib/ld-musl-x86_64.so.1", 0755, &ld);
    struct elf_spec prog = {.interp = "/lib/ld-musl-x86_64.so.1",
                            .needed = {"libc.musl-x86_64.so.1", "libz.so.1"}};
    test_elf(&T, "usr/bin/prog", 0755, &prog);
    struct elf_spec z = {.soname = "libz.so.1"};
    test_elf(&T, "usr/local/lib/libz.so.1", 0755, &z);
    struct rbx_elf_closure c;
    closure_of("/usr/bin/prog", NULL, &c);
    ck_assert_uint_eq(c.n_missing, 0); /* musl's defaults include /usr/local/lib */
    rbx_elf_closure_clear(&c);

    /* the path file replaces the defaults */
    test_file(&T, "etc/ld-musl-x86_64.path", 0644, "/lib\n/usr/lib:/opt/z\n");
    closure_of("/usr/bin/prog", NULL, &c);
    ck_assert_uint_eq(c.n_missing, 1);
    ck_assert_str_eq(c.missing[0].searched, "/lib:/usr/lib:/opt/z");
    rbx_elf_closure_clear(&c);
}
END_TEST

START_TEST(test_ld_so_conf_includes_are_bounded)
{
    /* includes itself, relative and absolute, several dirs on a line, hwcap lines */
    test_file(&T, "etc/ld.so.conf", 0644,
              "include /etc/ld.so.conf\ninclude ld.so.conf.d/*.conf\n/a /b:/c,/d\nhwcap 1 x\n");
    test_file(&T, "etc/ld.so.conf.d/1.conf", 0644, "/one # trailing\n\n/two=libc6\n");
    test_file(&T, "etc/ld.so.conf.d/0.conf", 0644, "/zero\ninclude ../ld.so.conf\n");
    char **dirs = NULL;
    ck_assert_int_eq(rbx_ld_so_conf_dirs(T.fd, &dirs, NULL), 0);
    ck_assert_ptr_nonnull(dirs);
    /* the self-inclusion stops at the depth bound; every directory is listed once */
    ck_assert_uint_eq(rbx_strv_len(dirs), 7);
    ck_assert_str_eq(dirs[0], "/a");
    ck_assert_str_eq(dirs[3], "/d");
    ck_assert_str_eq(dirs[4], "/zero");
    ck_assert_str_eq(dirs[5], "/one");
    ck_assert_str_eq(dirs[6], "/two");
    rbx_strv_free(dirs);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("doctor_elf");
    TCase *tc = tcase_create("elf");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_elf_reads_interp_needed_and_paths);
    tcase_add_test(tc, test_elf_32bit_big_endian);
    tcase_add_test(tc, test_elf_static_and_compat_modes);
    tcase_add_test(tc, test_elf_not_elf_is_no_error);
    tcase_add_test(tc, test_elf_libc_of_interp);
    tcase_add_test(tc, test_elf_malformed_files_are_named);
    tcase_add_test(tc, test_elf_reader_survives_every_corruption);
    tcase_add_test(tc, test_closure_runpath_origin_conf_and_transitive);
    tcase_add_test(tc, test_closure_rpath_is_inherited_and_ld_library_path_used);
    tcase_add_test(tc, test_closure_skips_libraries_of_another_machine);
    tcase_add_test(tc, test_closure_musl_path_file);
    tcase_add_test(tc, test_ld_so_conf_includes_are_bounded);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
