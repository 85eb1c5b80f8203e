/* sandbox_testlib.h — what the sandbox suites share: a scratch root made at test time and small
 * writers for the files an image would hold. */
#pragma once

#include "common/common.h"

#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* Forces common/fs.c's component walker instead of openat2 (its test hook). */
void rbx_fs_force_walker(bool on);

struct test_root {
    char dir[64];
    int fd; /* O_PATH of dir */
};

static inline void test_root_make(struct test_root *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/rbx-test-root-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    chmod(t->dir, 0755);
    t->fd = open(t->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(t->fd, 0);
}

static inline void test_root_remove(struct test_root *t)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    rbx_rm_rf_at(AT_FDCWD, t->dir, &err);
}

/* Make dir/rel's parents and write `len` bytes of text there. */
static inline void test_write(const struct test_root *t, const char *rel, const char *text,
                              size_t len, mode_t mode)
{
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", t->dir, rel);
    for (char *s = strchr(path + strlen(t->dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(path, 0755);
        *s = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    fchmod(fd, mode);
    close(fd);
}

static inline void test_write_str(const struct test_root *t, const char *rel, const char *text,
                                  mode_t mode)
{
    test_write(t, rel, text, strlen(text), mode);
}

static inline void test_mkdir(const struct test_root *t, const char *rel)
{
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", t->dir, rel);
    ck_assert_msg(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s", path);
}

static inline void test_symlink(const struct test_root *t, const char *target, const char *rel)
{
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", t->dir, rel);
    ck_assert_msg(symlink(target, path) == 0, "symlink %s: %s", path, strerror(errno));
}

static inline bool test_exists(const struct test_root *t, const char *rel)
{
    _cleanup_free_ char *path = rbx_xasprintf("%s/%s", t->dir, rel);
    struct stat st;
    return lstat(path, &st) == 0;
}
