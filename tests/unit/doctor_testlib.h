/* doctor_testlib.h — what the doctor suites share: a scratch root directory, files written into
 * it, and ELF files built by hand (header, program headers, PT_INTERP, a dynamic section). */
#pragma once

#include "common/common.h"

#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

struct test_root {
    char dir[64];
    int fd; /* O_PATH of dir */
};

static inline void test_root_make(struct test_root *t)
{
    strcpy(t->dir, "/tmp/rbx-doctor-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    chmod(t->dir, 0755);
    t->fd = open(t->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(t->fd, 0);
}

static inline void test_root_remove(struct test_root *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    int tmp = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct rbx_error *err = NULL;
    rbx_rm_rf_at(tmp, t->dir + 5, &err);
    rbx_error_free(err);
    close(tmp);
}

/* Create the parent directories of a relative path under the root. */
static inline void test_mkparents(struct test_root *t, const char *rel)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", rel);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdirat(t->fd, buf, 0755);
        *p = '/';
    }
}

static inline void test_write(struct test_root *t, const char *rel, mode_t mode, const void *data,
                              size_t len)
{
    while (*rel == '/')
        rel++;
    test_mkparents(t, rel);
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", t->dir, rel);
    unlink(full);
    int fd = open(full, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_msg(fd >= 0, "create %s", full);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    fchmod(fd, mode);
    close(fd);
}

static inline void test_file(struct test_root *t, const char *rel, mode_t mode, const char *text)
{
    test_write(t, rel, mode, text, strlen(text));
}

static inline void test_dir(struct test_root *t, const char *rel, mode_t mode)
{
    while (*rel == '/')
        rel++;
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s/", rel);
    test_mkparents(t, buf);
    ck_assert_int_eq(fchmodat(t->fd, rel, mode, 0), 0);
}

static inline void test_link(struct test_root *t, const char *target, const char *rel)
{
    while (*rel == '/')
        rel++;
    test_mkparents(t, rel);
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", t->dir, rel);
    unlink(full);
    ck_assert_msg(symlink(target, full) == 0, "symlink %s", full);
}

/* ---- ELF files by hand ---------------------------------------------------------------------- */

struct elf_spec {
    unsigned cls; /* 1 or 2 (default 2) */
    bool be;
    unsigned machine; /* default 62 (x86-64) */
    unsigned type;    /* default 3 (ET_DYN) */
    const char *interp;
    const char *needed[8];
    const char *soname, *rpath, *runpath;
};

static inline void put(unsigned char *p, uint64_t v, size_t n, bool be)
{
    for (size_t i = 0; i < n; i++)
        p[be ? n - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

/* Layout: header, 3 program headers (PT_LOAD over the whole file, PT_INTERP, PT_DYNAMIC), the
 * interpreter string, the string table, the dynamic section. Returns the size. */
static inline size_t elf_build(const struct elf_spec *sp, unsigned char *buf, size_t cap)
{
    bool is64 = sp->cls != 1, be = sp->be;
    size_t ehsz = is64 ? 64 : 52, phsz = is64 ? 56 : 32, dsz = is64 ? 16 : 8;
    size_t nph = 3;
    memset(buf, 0, cap);
    size_t off = ehsz + nph * phsz;
    size_t interp_off = off, interp_len = sp->interp ? strlen(sp->interp) + 1 : 0;
    if (interp_len > 1024)
        abort();
    off += interp_len;
    size_t str_off = off, str_len = 1;
    unsigned char *str = buf + str_off;
    uint64_t idx_needed[8] = {0}, idx_soname = 0, idx_rpath = 0, idx_runpath = 0;
    size_t n_needed = 0;
#define ADDSTR(s, idx)                                                                             \
    do {                                                                                           \
        size_t n_ = strlen(s) + 1;                                                                 \
        if (str_off + str_len + n_ > cap / 2)                                                      \
            abort(); /* the test's ELF does not fit */                                             \
        idx = str_len;                                                                             \
        memcpy(str + str_len, s, n_);                                                              \
        str_len += n_;                                                                             \
    } while (0)
    for (size_t i = 0; i < 8 && sp->needed[i]; i++, n_needed++)
        ADDSTR(sp->needed[i], idx_needed[i]);
    if (sp->soname)
        ADDSTR(sp->soname, idx_soname);
    if (sp->rpath)
        ADDSTR(sp->rpath, idx_rpath);
    if (sp->runpath)
        ADDSTR(sp->runpath, idx_runpath);
#undef ADDSTR
    off += str_len;
    off = (off + 7) & ~(size_t)7;
    size_t dyn_off = off;
    unsigned char *d = buf + dyn_off;
    size_t nd = 0;
#define DYN(tag, val)                                                                              \
    do {                                                                                           \
        put(d + nd * dsz, tag, dsz / 2, be);                                                       \
        put(d + nd * dsz + dsz / 2, val, dsz / 2, be);                                             \
        nd++;                                                                                      \
    } while (0)
    for (size_t i = 0; i < n_needed; i++)
        DYN(1, idx_needed[i]);
    if (sp->soname)
        DYN(14, idx_soname);
    if (sp->rpath)
        DYN(15, idx_rpath);
    if (sp->runpath)
        DYN(29, idx_runpath);
    DYN(5, str_off); /* vaddr == offset: one PT_LOAD at 0 */
    DYN(10, str_len);
    DYN(0, 0);
#undef DYN
    size_t total = dyn_off + nd * dsz;
    ck_assert_uint_le(total, cap);

    memcpy(buf, "\177ELF", 4);
    buf[4] = (unsigned char)(is64 ? 2 : 1);
    buf[5] = (unsigned char)(be ? 2 : 1);
    buf[6] = 1;
    put(buf + 16, sp->type ? sp->type : 3, 2, be);
    put(buf + 18, sp->machine ? sp->machine : 62, 2, be);
    put(buf + 20, 1, 4, be);
    if (is64) {
        put(buf + 32, ehsz, 8, be);
        put(buf + 52, ehsz, 2, be);
        put(buf + 54, phsz, 2, be);
        put(buf + 56, nph, 2, be);
    } else {
        put(buf + 28, ehsz, 4, be);
        put(buf + 40, ehsz, 2, be);
        put(buf + 42, phsz, 2, be);
        put(buf + 44, nph, 2, be);
    }
    struct {
        uint32_t type;
        size_t off, len;
    } ph[3] = {{1, 0, total},
               {sp->interp ? 3u : 6u /* PT_PHDR */, interp_off, interp_len},
               {2, dyn_off, nd * dsz}};
    for (size_t i = 0; i < nph; i++) {
        unsigned char *p = buf + ehsz + i * phsz;
        put(p, ph[i].type, 4, be);
        if (is64) {
            put(p + 8, ph[i].off, 8, be);
            put(p + 16, ph[i].off, 8, be);
            put(p + 32, ph[i].len, 8, be);
            put(p + 40, ph[i].len, 8, be);
        } else {
            put(p + 4, ph[i].off, 4, be);
            put(p + 8, ph[i].off, 4, be);
            put(p + 16, ph[i].len, 4, be);
            put(p + 20, ph[i].len, 4, be);
        }
    }
    if (sp->interp && interp_off + interp_len <= cap)
        memcpy(buf + interp_off, sp->interp, interp_len);
    return total;
}

static inline void test_elf(struct test_root *t, const char *rel, mode_t mode,
                            const struct elf_spec *sp)
{
    unsigned char buf[4096];
    size_t n = elf_build(sp, buf, sizeof(buf));
    test_write(t, rel, mode, buf, n);
}

/* ---- running the doctor on the tree ------------------------------------------------------------
 */

#include "recipes/recipes.h"

static struct rbx_doctor_report doctor_report;

/* Check one process (cwd "/" and root unless given) against the tree. */
static inline void doctor_run_flags(struct test_root *t, char **argv, char **env, const char *cwd,
                                    const char *user, char **required, unsigned flags)
{
    static char *default_env[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    struct rbx_doctor_process p = {"test",          argv, env ? env : default_env,
                                   cwd ? cwd : "/", user, required};
    rbx_doctor_report_clear(&doctor_report);
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_doctor_check(t->fd, "amd64", &p, 1, flags, &doctor_report, &err), 0);
}

static inline void doctor_run(struct test_root *t, char **argv, char **env, const char *cwd,
                              const char *user, char **required)
{
    doctor_run_flags(t, argv, env, cwd, user, required, 0);
}

static inline char *doctor_text(void)
{
    static char buf[16384];
    char *s = rbx_doctor_report_text(&doctor_report);
    snprintf(buf, sizeof(buf), "%s", s);
    free(s);
    return buf;
}

/* The finding with that id (NULL: none). */
static inline const struct rbx_finding *doctor_find(const char *check)
{
    for (size_t i = 0; i < doctor_report.n_findings; i++)
        if (strcmp(doctor_report.findings[i].check, check) == 0)
            return &doctor_report.findings[i];
    return NULL;
}

static inline bool finding_says(const struct rbx_finding *f, const char *needle)
{
    if (strstr(f->message, needle) || (f->hint && strstr(f->hint, needle)))
        return true;
    for (size_t i = 0; f->evidence && f->evidence[i]; i++)
        if (strstr(f->evidence[i], needle))
            return true;
    return false;
}

/* Exactly one finding, with this id and severity, that mentions `needle` somewhere. */
#define expect_one(check, sev, needle)                                                             \
    do {                                                                                           \
        ck_assert_msg(doctor_report.n_findings == 1, "want one %s, got:\n%s", check,               \
                      doctor_text());                                                              \
        const struct rbx_finding *f_ = doctor_find(check);                                         \
        ck_assert_msg(f_ != NULL, "no %s in:\n%s", check, doctor_text());                          \
        ck_assert_msg(f_->severity == (sev), "%s has the wrong severity:\n%s", check,              \
                      doctor_text());                                                              \
        ck_assert_msg(finding_says(f_, needle), "%s does not say \"%s\":\n%s", check, needle,      \
                      doctor_text());                                                              \
    } while (0)

#define expect_silent()                                                                            \
    ck_assert_msg(doctor_report.n_findings == 0, "want no findings, got:\n%s", doctor_text())

/* A fake static program: an ELF file with nothing to load. */
static inline void test_static_prog(struct test_root *t, const char *rel)
{
    struct elf_spec sp = {.type = 2};
    test_elf(t, rel, 0755, &sp);
}

/* A Debian-like glibc base: loader, libc, and a static /bin/sh with /usr/bin/env. */
static inline void test_glibc_base(struct test_root *t)
{
    struct elf_spec ld = {.soname = "ld-linux-x86-64.so.2"};
    test_elf(t, "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0755, &ld);
    test_link(t, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2");
    struct elf_spec libc = {.soname = "libc.so.6", .needed = {"ld-linux-x86-64.so.2"}};
    test_elf(t, "lib/x86_64-linux-gnu/libc.so.6", 0755, &libc);
    test_static_prog(t, "bin/sh");
    test_static_prog(t, "usr/bin/env");
    test_file(t, "etc/passwd", 0644,
              "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
    test_file(t, "etc/group", 0644, "root:x:0:\nusers:x:100:app\napp:x:1000:\n");
}

/* A dynamic program against the glibc base. */
static inline void test_glibc_prog(struct test_root *t, const char *rel)
{
    struct elf_spec sp = {.interp = "/lib64/ld-linux-x86-64.so.2", .needed = {"libc.so.6"}};
    test_elf(t, rel, 0755, &sp);
}
