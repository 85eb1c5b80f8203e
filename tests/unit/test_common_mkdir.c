/* test_common_mkdir.c — common/fs.c: rbx_mkdir_p_in_root, which makes the missing directories of a
 * path from an image without ever leaving the root. */
#include "common/common.h"

#include "sandbox_testlib.h"

static struct test_root root;

static void setup(void)
{
    test_root_make(&root);
}
static void teardown(void)
{
    test_root_remove(&root);
}

static void mkdir_p(const char *path, bool want_created)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    bool created = !want_created;
    int fd = rbx_mkdir_p_in_root(root.fd, path, 0755, &created, &err);
    ck_assert_msg(fd >= 0, "%s: %s", path, err ? err->message : "");
    close(fd);
    ck_assert_msg(created == want_created, "%s: created=%d", path, created);
}

START_TEST(test_mkdir_p_creates_and_reports)
{
    mkdir_p("/a/b/c", true);
    ck_assert(test_exists(&root, "a/b/c"));
    mkdir_p("a/b/c", false);
    mkdir_p("/", false);
}
END_TEST

static void dangling_symlink_stays_in_root(bool walker)
{
    rbx_fs_force_walker(walker);
    char host[] = "/tmp/rbx-escape-mkdir-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(host));
    rmdir(host);
    /* An image's symlink to a directory that does not exist yet: like the kernel following
     * it, make the directory it names, but inside the root. */
    test_symlink(&root, host, "abs");
    mkdir_p("/abs/sub", true);
    struct stat st;
    ck_assert_msg(stat(host, &st) < 0, "%s made on the host", host);
    _cleanup_free_ char *inside = rbx_xasprintf("%s/sub", host + 1);
    ck_assert(test_exists(&root, inside));

    test_mkdir(&root, "d");
    test_symlink(&root, "../made/here", "d/rel");
    mkdir_p("/d/rel/x", true);
    ck_assert(test_exists(&root, "made/here/x"));
    mkdir_p("/d/rel/x", false);

    /* A last component that is a dangling link. */
    test_symlink(&root, "/target-of-last", "last");
    mkdir_p("last", true);
    ck_assert(test_exists(&root, "target-of-last"));
    rbx_fs_force_walker(false);
}

START_TEST(test_mkdir_p_dangling_symlink_stays_in_root)
{
    dangling_symlink_stays_in_root(false);
}
END_TEST

START_TEST(test_mkdir_p_dangling_symlink_stays_in_root_walker)
{
    dangling_symlink_stays_in_root(true);
}
END_TEST

START_TEST(test_mkdir_p_refusals)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    test_write_str(&root, "file", "", 0644);
    ck_assert_int_lt(rbx_mkdir_p_in_root(root.fd, "file/sub", 0755, NULL, &err), 0);
    ck_assert_ptr_nonnull(err);
    rbx_error_free(TAKE_PTR(err));
    test_symlink(&root, "loop", "loop");
    ck_assert_int_lt(rbx_mkdir_p_in_root(root.fd, "loop/sub", 0755, NULL, &err), 0);
    ck_assert_ptr_nonnull(err);
    rbx_error_free(TAKE_PTR(err));
    /* A relative link climbing out of the root is refused rather than followed. */
    test_symlink(&root, "../../../../outside-rbx", "climb");
    ck_assert_int_lt(rbx_mkdir_p_in_root(root.fd, "climb/x", 0755, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_ESCAPE, "escapes the rootfs");
    struct stat st;
    ck_assert(stat("/outside-rbx", &st) < 0);
}
END_TEST

static Suite *fs_suite(void)
{
    Suite *s = suite_create("common_mkdir");
    TCase *tc = tcase_create("mkdir_p");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_mkdir_p_creates_and_reports);
    tcase_add_test(tc, test_mkdir_p_dangling_symlink_stays_in_root);
    tcase_add_test(tc, test_mkdir_p_dangling_symlink_stays_in_root_walker);
    tcase_add_test(tc, test_mkdir_p_refusals);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(fs_suite)
