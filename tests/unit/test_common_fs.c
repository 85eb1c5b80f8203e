/* test_common_fs.c — paths from images stay inside their root, with openat2 and with the
 * component walker alike. */
#include "common/common.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

void rbx_fs_force_walker(bool on);

static char base[256];
static int rootfd = -1;

static void setup(void)
{
    strcpy(base, "/tmp/rbx-fs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(base));
    char p[512];
    snprintf(p, sizeof(p), "%s/root", base);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    /* A sentinel next to the root: nothing below may ever reach it. */
    snprintf(p, sizeof(p), "%s/sentinel", base);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/sentinel/secret", base);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(p, sizeof(p), "%s/root", base);
    rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(rootfd, 0);
    ck_assert_int_eq(mkdirat(rootfd, "etc", 0755), 0);
    fd = openat(rootfd, "etc/passwd", O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "root:x:0:0::/root:/bin/sh\n", 26), 26);
    close(fd);
    ck_assert_int_eq(symlinkat("/", rootfd, "abs"), 0);
    ck_assert_int_eq(symlinkat("../../..", rootfd, "up"), 0);
    ck_assert_int_eq(symlinkat("loop", rootfd, "loop"), 0);
    ck_assert_int_eq(symlinkat("/sentinel", rootfd, "to-sentinel"), 0);
    ck_assert_int_eq(symlinkat("etc", rootfd, "etc-link"), 0);
}

static void teardown(void)
{
    close(rootfd);
    rbx_fs_force_walker(false);
    struct rbx_error *err = NULL;
    int dfd = open("/tmp", O_PATH | O_DIRECTORY);
    rbx_rm_rf_at(dfd, base + 5, &err);
    close(dfd);
    rbx_error_free(err);
}

static void check_contained(void)
{
    struct rbx_error *err = NULL;
    int fd;

    fd = rbx_open_in_root(rootfd, "abs/etc/passwd", O_RDONLY, 0, 0, &err);
    ck_assert_int_ge(fd, 0);
    char buf[64] = {0};
    ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
    ck_assert_ptr_nonnull(strstr(buf, "root:x:0:0::/root"));
    close(fd);

    /* "../../.." from the root is the root: the sentinel beside it is not reachable. */
    fd = rbx_open_in_root(rootfd, "up/sentinel/secret", O_RDONLY, 0, 0, &err);
    ck_assert_int_eq(fd, -ENOENT);
    fd = rbx_open_in_root(rootfd, "to-sentinel/secret", O_RDONLY, 0, 0, &err);
    ck_assert_int_eq(fd, -ENOENT);
    fd = rbx_open_in_root(rootfd, "../sentinel/secret", O_RDONLY, 0, 0, &err);
    ck_assert_int_eq(fd, -ENOENT);
    ck_assert_ptr_null(err);

    fd = rbx_open_in_root(rootfd, "loop/x", O_RDONLY, 0, 0, &err);
    ck_assert_int_eq(fd, -ELOOP);
    ck_assert_ptr_nonnull(err);
    err = rbx_error_free(err);

    /* NOFOLLOW opens the link itself. */
    fd = rbx_open_in_root(rootfd, "abs", O_PATH, 0, RBX_RESOLVE_NOFOLLOW, &err);
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    close(fd);
}

START_TEST(test_open_in_root_contains_escapes_openat2)
{
    if (!rbx_openat2_available())
        return;
    check_contained();
}
END_TEST

START_TEST(test_open_in_root_contains_escapes_walker)
{
    rbx_fs_force_walker(true);
    check_contained();
}
END_TEST

/* RBX_RESOLVE_NO_SYMLINKS: a path through any symlink is refused (ELOOP); a symlink as the last
 * component is returned itself with NOFOLLOW; plain paths open. */
static void check_no_symlinks(void)
{
    int fd = rbx_open_in_root(rootfd, "etc-link/passwd", O_RDONLY, 0, RBX_RESOLVE_NO_SYMLINKS, NULL);
    ck_assert_int_eq(fd, -ELOOP);
    fd = rbx_open_in_root(rootfd, "etc/passwd", O_RDONLY, 0, RBX_RESOLVE_NO_SYMLINKS, NULL);
    ck_assert_int_ge(fd, 0);
    close(fd);
    fd = rbx_open_in_root(rootfd, "etc-link", O_PATH, 0,
                          RBX_RESOLVE_NO_SYMLINKS | RBX_RESOLVE_NOFOLLOW, NULL);
    ck_assert_int_ge(fd, 0);
    struct stat sb;
    ck_assert_int_eq(fstat(fd, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    close(fd);
}

START_TEST(test_open_in_root_no_symlinks_openat2)
{
    if (!rbx_openat2_available())
        return;
    check_no_symlinks();
}
END_TEST

START_TEST(test_open_in_root_no_symlinks_walker)
{
    rbx_fs_force_walker(true);
    check_no_symlinks();
}
END_TEST

static void check_create_through_symlink(void)
{
    struct rbx_error *err = NULL;
    /* O_CREAT through an absolute symlink to "/sentinel" lands inside the root. */
    int fd = rbx_open_in_root(rootfd, "to-sentinel/new", O_CREAT | O_WRONLY, 0644, 0, &err);
    ck_assert_int_eq(fd, -ENOENT); /* the root has no /sentinel dir */
    int dfd = rbx_mkdir_p_in_root(rootfd, "to-sentinel/made/deep", 0755, NULL, &err);
    ck_assert_msg(dfd >= 0, "mkdir_p: %s", err ? err->message : "");
    close(dfd);
    char p[512];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/root/sentinel/made/deep", base);
    ck_assert_int_eq(stat(p, &sb), 0);
    snprintf(p, sizeof(p), "%s/sentinel/made", base);
    ck_assert_int_eq(stat(p, &sb), -1);
}

START_TEST(test_mkdir_p_through_symlink_stays_inside_openat2)
{
    if (!rbx_openat2_available())
        return;
    check_create_through_symlink();
}
END_TEST

START_TEST(test_mkdir_p_through_symlink_stays_inside_walker)
{
    rbx_fs_force_walker(true);
    check_create_through_symlink();
}
END_TEST

START_TEST(test_mkdir_p_reports_created)
{
    struct rbx_error *err = NULL;
    bool created = false;
    int fd = rbx_mkdir_p_in_root(rootfd, "/srv/app", 0755, &created, &err);
    ck_assert_int_ge(fd, 0);
    ck_assert(created);
    close(fd);
    fd = rbx_mkdir_p_in_root(rootfd, "srv/app/", 0755, &created, &err);
    ck_assert_int_ge(fd, 0);
    ck_assert(!created);
    close(fd);
    fd = rbx_mkdir_p_in_root(rootfd, "etc/passwd/x", 0755, &created, &err);
    ck_assert_int_lt(fd, 0);
    ck_assert_ptr_nonnull(err);
    rbx_error_free(err);
}
END_TEST

START_TEST(test_open_parent_in_root)
{
    struct rbx_error *err = NULL;
    char name[RBX_NAME_MAX + 1];
    int fd = rbx_open_parent_in_root(rootfd, "etc-link/passwd", false, name, &err);
    ck_assert_int_ge(fd, 0);
    ck_assert_str_eq(name, "passwd");
    struct stat sb;
    ck_assert_int_eq(fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW), 0);
    ck_assert(S_ISREG(sb.st_mode));
    close(fd);
    ck_assert_int_lt(rbx_open_parent_in_root(rootfd, "../../etc/x", true, name, &err), 0);
    ck_assert_error(err, RBX_ERR_ESCAPE, "escapes the rootfs");
    err = rbx_error_free(err);
    ck_assert_int_lt(rbx_open_parent_in_root(rootfd, "/", true, name, &err), 0);
    rbx_error_free(err);
}
END_TEST

START_TEST(test_path_clean)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"a/b", "a/b"},       {"/a//b/./c/", "a/b/c"}, {"./etc/passwd", "etc/passwd"},
        {"a/../b", "b"},      {"", ""},                {"/", ""},
        {"a/b/..", "a"},      {"...", "..."},          {".wh..wh..opq", ".wh..wh..opq"},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(ok); i++) {
        char *out = NULL;
        struct rbx_error *err = NULL;
        ck_assert_int_eq(rbx_path_clean(ok[i].in, &out, &err), 0);
        ck_assert_str_eq(out, ok[i].out);
        free(out);
    }
    static const char *const escapes[] = {"..", "../x", "a/../../x", "/../etc", "./../../etc/x"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(escapes); i++) {
        char *out = NULL;
        struct rbx_error *err = NULL;
        ck_assert_int_lt(rbx_path_clean(escapes[i], &out, &err), 0);
        ck_assert_error(err, RBX_ERR_ESCAPE, escapes[i]);
        rbx_error_free(err);
    }
}
END_TEST

START_TEST(test_path_clean_bounds)
{
    char *long_comp = malloc(300);
    memset(long_comp, 'a', 299);
    long_comp[299] = '\0';
    char *out = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_path_clean(long_comp, &out, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "component");
    err = rbx_error_free(err);
    free(long_comp);

    char *huge = malloc(10 * 1024 * 1024 + 1);
    for (size_t i = 0; i < 10 * 1024 * 1024; i++)
        huge[i] = (i % 2) ? '/' : 'a';
    huge[10 * 1024 * 1024] = '\0';
    ck_assert_int_lt(rbx_path_clean(huge, &out, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "path of");
    rbx_error_free(err);
    free(huge);
}
END_TEST

START_TEST(test_rm_rf_unreadable_dirs)
{
    struct rbx_error *err = NULL;
    ck_assert_int_eq(mkdirat(rootfd, "tree", 0755), 0);
    ck_assert_int_eq(mkdirat(rootfd, "tree/locked", 0755), 0);
    int fd = openat(rootfd, "tree/locked/f", O_CREAT | O_WRONLY, 0644);
    close(fd);
    ck_assert_int_eq(symlinkat("/", rootfd, "tree/locked/rootlink"), 0);
    ck_assert_int_eq(fchmodat(rootfd, "tree/locked", 0, 0), 0);
    int dfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY);
    ck_assert_int_eq(rbx_rm_rf_at(dfd, "tree", &err), 0);
    struct stat sb;
    ck_assert_int_eq(fstatat(dfd, "tree", &sb, 0), -1);
    ck_assert_int_eq(rbx_rm_rf_at(dfd, "tree", &err), 0); /* missing is fine */
    close(dfd);
}
END_TEST

START_TEST(test_dir_is_empty)
{
    ck_assert_int_eq(mkdirat(rootfd, "e", 0755), 0);
    int fd = openat(rootfd, "e", O_RDONLY | O_DIRECTORY);
    ck_assert(rbx_dir_is_empty(fd));
    ck_assert(rbx_dir_is_empty(fd)); /* asked again through the same fd: read from the start */
    int f = openat(fd, ".hidden", O_CREAT | O_WRONLY, 0644);
    close(f);
    ck_assert(!rbx_dir_is_empty(fd));
    close(fd);
    ck_assert(!rbx_dir_is_empty(-1));
}
END_TEST

START_TEST(test_read_fd_limit)
{
    struct rbx_error *err = NULL;
    char *buf = NULL;
    size_t len = 0;
    int fd = rbx_open_in_root(rootfd, "etc/passwd", O_RDONLY, 0, 0, &err);
    ck_assert_int_eq(rbx_read_fd(fd, 10, "passwd", &buf, &len, &err), -EFBIG);
    ck_assert_error(err, RBX_ERR_LIMIT, "passwd is larger than 10 bytes");
    err = rbx_error_free(err);
    close(fd);
    fd = rbx_open_in_root(rootfd, "etc/passwd", O_RDONLY, 0, 0, &err);
    ck_assert_int_eq(rbx_read_fd(fd, 4096, "passwd", &buf, &len, &err), 0);
    ck_assert_uint_eq(len, 26);
    ck_assert_str_eq(buf, "root:x:0:0::/root:/bin/sh\n");
    free(buf);
    close(fd);
}
END_TEST

START_TEST(test_write_file_atomic)
{
    struct rbx_error *err = NULL;
    int dfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY);
    ck_assert_int_eq(rbx_write_file_atomic_at(dfd, "out.json", "{}\n", 3, 0600, &err), 0);
    ck_assert_int_eq(rbx_write_file_replace_at(dfd, "fast.json", "[]", 2, 0600, &err), 0);
    ck_assert_int_eq(faccessat(dfd, "fast.json", F_OK, 0), 0);
    char *buf = NULL;
    ck_assert_int_eq(rbx_read_file_at(dfd, "out.json", 100, &buf, NULL, &err), 0);
    ck_assert_str_eq(buf, "{}\n");
    free(buf);
    ck_assert_int_lt(rbx_write_file_atomic_at(dfd, "nodir/out.json", "x", 1, 0600, &err), 0);
    ck_assert_ptr_nonnull(err);
    rbx_error_free(err);
    close(dfd);
}
END_TEST

START_TEST(test_realpath_in_root)
{
    struct rbx_error *err = NULL;
    char *out = NULL;
    ck_assert_int_eq(mkdirat(rootfd, "app", 0755), 0);
    ck_assert_int_eq(mkdirat(rootfd, "app/node_modules", 0755), 0);
    ck_assert_int_eq(symlinkat(".pnpm/express@4/node_modules/express", rootfd,
                               "app/node_modules/express"), 0);
    ck_assert_int_eq(symlinkat("../../etc-link/../up/etc", rootfd, "app/node_modules/cfg"), 0);

    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "etc-link/passwd", &out, &err), 0);
    ck_assert_str_eq(out, "/etc/passwd");
    free(out);
    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "/up/abs/./etc/../etc/passwd", &out, &err), 0);
    ck_assert_str_eq(out, "/etc/passwd");
    free(out);
    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "/", &out, &err), 0);
    ck_assert_str_eq(out, "/");
    free(out);
    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "app/node_modules/cfg", &out, &err), 0);
    ck_assert_str_eq(out, "/etc");
    free(out);
    /* an escape is a path inside the root, never the sentinel next to it */
    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "to-sentinel/secret", &out, &err), -ENOENT);
    ck_assert_str_eq(out, "/sentinel");
    free(out);
    /* where a broken chain of links breaks */
    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "/app/node_modules/express/package.json", &out,
                                          &err), -ENOENT);
    ck_assert_str_eq(out, "/app/node_modules/.pnpm");
    free(out);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "etc/passwd/x", &out, &err), -ENOTDIR);
    ck_assert_str_eq(out, "/etc/passwd");
    free(out);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(rbx_realpath_in_root(rootfd, "loop", &out, &err), -ELOOP);
    ck_assert_ptr_null(out);
    ck_assert_error(err, RBX_ERR_LIMIT, "loop");
    rbx_error_free(err);
}
END_TEST


static Suite *suite(void)
{
    Suite *s = suite_create("common_fs");
    TCase *tc = tcase_create("fs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_open_in_root_contains_escapes_openat2);
    tcase_add_test(tc, test_open_in_root_contains_escapes_walker);
    tcase_add_test(tc, test_open_in_root_no_symlinks_openat2);
    tcase_add_test(tc, test_open_in_root_no_symlinks_walker);
    tcase_add_test(tc, test_mkdir_p_through_symlink_stays_inside_openat2);
    tcase_add_test(tc, test_mkdir_p_through_symlink_stays_inside_walker);
    tcase_add_test(tc, test_mkdir_p_reports_created);
    tcase_add_test(tc, test_open_parent_in_root);
    tcase_add_test(tc, test_path_clean);
    tcase_add_test(tc, test_path_clean_bounds);
    tcase_add_test(tc, test_rm_rf_unreadable_dirs);
    tcase_add_test(tc, test_dir_is_empty);
    tcase_add_test(tc, test_read_fd_limit);
    tcase_add_test(tc, test_write_file_atomic);
    tcase_add_test(tc, test_realpath_in_root);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
