/* test_sandbox_mounts.c — mounts.c: the rows a spec turns into, targets made inside the root, and
 * the guard that refuses to mount anywhere but in a private mount namespace of our own. */
#include "sandbox/sandbox-internal.h"

#include "sandbox_testlib.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

static struct test_root root;

static void setup(void)
{
    test_root_make(&root);
}
static void teardown(void)
{
    test_root_remove(&root);
}

static const struct rbx_mount_row *find_row(const struct rbx_mount_row *rows, size_t n,
                                            const char *target)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].target, target) == 0)
            return &rows[i];
    return NULL;
}

START_TEST(test_rows_follow_the_network_mode)
{
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    struct rbx_mount_row *rows = NULL;
    size_t n = 0;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_mount_rows_build(&spec, &rows, &n, &err), 0);
    ck_assert_str_eq(rows[0].target, "/proc");
    ck_assert_str_eq(rows[1].target, "/dev");
    const struct rbx_mount_row *sys = find_row(rows, n, "/sys");
    ck_assert_ptr_nonnull(sys);
    ck_assert_str_eq(sys->type, "sysfs");
    free(rows);

    spec.network = RBX_NETWORK_HOST;
    ck_assert_int_eq(rbx_mount_rows_build(&spec, &rows, &n, &err), 0);
    sys = find_row(rows, n, "/sys");
    ck_assert_ptr_null(sys->type);
    ck_assert(rbx_mount_row_needs_readonly(sys));
    ck_assert(sys->flags & MS_REC);
    free(rows);
}
END_TEST

START_TEST(test_rows_user_mounts)
{
    test_mkdir(&root, "src");
    test_write_str(&root, "file", "x", 0644);
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    struct rbx_mount_spec m[3] = {
        {rbx_xasprintf("%s/src", root.dir), "/data", NULL, true},
        {rbx_xasprintf("%s/file", root.dir), "/etc/app.conf", "bind", false},
        {NULL, "/tmp", "tmpfs", false},
    };
    spec.mounts = m;
    spec.n_mounts = 3;
    struct rbx_mount_row *rows = NULL;
    size_t n = 0;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_mount_rows_build(&spec, &rows, &n, &err), 0);
    const struct rbx_mount_row *data = &rows[n - 3], *conf = &rows[n - 2], *tmp = &rows[n - 1];
    ck_assert_str_eq(data->target, "/data");
    ck_assert(data->options & RBX_MNT_DIR);
    ck_assert(rbx_mount_row_needs_readonly(data));
    ck_assert(conf->options & RBX_MNT_FILE);
    ck_assert(!rbx_mount_row_needs_readonly(conf));
    ck_assert_str_eq(tmp->type, "tmpfs");
    ck_assert(tmp->flags & MS_NOEXEC);
    free(rows);
    free(m[0].source);
    free(m[1].source);
}
END_TEST

static void user_mount_fails(const char *source, const char *target, const char *type,
                             enum rbx_error_kind kind, const char *needle)
{
    struct rbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    struct rbx_mount_spec m = {(char *)source, (char *)target, (char *)type, false};
    spec.mounts = &m;
    spec.n_mounts = 1;
    struct rbx_mount_row *rows = NULL;
    size_t n = 0;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_mount_rows_build(&spec, &rows, &n, &err), 0);
    ck_assert_error(err, kind, needle);
    ck_assert_ptr_null(rows);
}

START_TEST(test_rows_user_mount_errors)
{
    user_mount_fails("/tmp", "data", NULL, RBX_ERR_USAGE, "must be an absolute path");
    user_mount_fails("/tmp", "/", NULL, RBX_ERR_USAGE, "the root itself");
    user_mount_fails("/tmp", "/../..", NULL, RBX_ERR_ESCAPE, "escapes the rootfs");
    user_mount_fails("relative", "/data", "bind", RBX_ERR_USAGE, "must be an absolute host path");
    user_mount_fails("/nonexistent-rbx-source", "/data", NULL, RBX_ERR_NOT_FOUND,
                     "mount source \"/nonexistent-rbx-source\": No such file or directory");
    user_mount_fails("/tmp", "/data", "nfs", RBX_ERR_UNSUPPORTED, "mount type \"nfs\"");
}
END_TEST

static void prepare(const struct rbx_mount_row *row, int *fd)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_mount_target_prepare(root.fd, row, NULL, fd, &err);
    ck_assert_msg(r == 0, "%s: %s", row->target, err ? err->message : "");
}

static void target_escape_stays_in_root(bool walker)
{
    rbx_fs_force_walker(walker);
    char host[] = "/tmp/rbx-escape-target-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(host));
    rmdir(host);
    test_symlink(&root, host, "abs");
    test_symlink(&root, "../../../../../../..", "up");
    struct rbx_mount_row dir = {"/x", "/abs/dir", NULL, MS_BIND, NULL, RBX_MNT_DIR};
    struct rbx_mount_row file = {"/x", "/up/etc/file", NULL, MS_BIND, NULL, RBX_MNT_FILE};
    int fd;
    prepare(&dir, &fd);
    close(fd);
    prepare(&file, &fd);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    close(fd);
    ck_assert_msg(stat(host, &st) < 0, "%s made on the host", host);
    _cleanup_free_ char *inside = rbx_xasprintf("%s/dir", host + 1);
    ck_assert(test_exists(&root, inside));
    ck_assert(test_exists(&root, "etc/file"));
    rbx_fs_force_walker(false);
}

START_TEST(test_mount_target_symlink_escape_stays_in_root)
{
    target_escape_stays_in_root(false);
}
END_TEST

START_TEST(test_mount_target_symlink_escape_stays_in_root_walker)
{
    target_escape_stays_in_root(true);
}
END_TEST

START_TEST(test_mount_target_kinds)
{
    struct rbx_mount_row link = {NULL, "/dev/fd", NULL, 0, "/proc/self/fd", RBX_MNT_SYMLINK};
    int fd;
    prepare(&link, &fd);
    ck_assert_int_eq(fd, -1);
    prepare(&link, &fd); /* the same link again is fine */
    struct rbx_mount_row other = {NULL, "/dev/fd", NULL, 0, "/elsewhere", RBX_MNT_SYMLINK};
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_mount_target_prepare(root.fd, &other, NULL, &fd, &err), 0);
    ck_assert_error(err, RBX_ERR_SANDBOX, "symlink /dev/fd -> /elsewhere");

    test_mkdir(&root, "adir");
    struct rbx_mount_row file = {"/x", "/adir", NULL, MS_BIND, NULL, RBX_MNT_FILE};
    rbx_error_free(TAKE_PTR(err));
    ck_assert_int_lt(rbx_mount_target_prepare(root.fd, &file, NULL, &fd, &err), 0);
    ck_assert_error(err, RBX_ERR_SANDBOX, "a directory where a file is mounted");

    test_write_str(&root, "afile", "", 0644);
    struct rbx_mount_row dir = {"/x", "/afile", NULL, MS_BIND, NULL, RBX_MNT_DIR};
    rbx_error_free(TAKE_PTR(err));
    ck_assert_int_lt(rbx_mount_target_prepare(root.fd, &dir, NULL, &fd, &err), 0);
    ck_assert_error(err, RBX_ERR_IO, "Not a directory");
}
END_TEST

/* The rows below /dev share one lookup of /dev: what they make and refuse is what each row's own
 * lookup from the root would. */
START_TEST(test_mount_target_system_rows_share_their_dir)
{
    test_mkdir(&root, "dev");
    struct rbx_mount_row null = {"/dev/null", "/dev/null", NULL, MS_BIND, NULL,
                                 RBX_MNT_FILE | RBX_MNT_SYSTEM};
    struct rbx_mount_row pts = {"devpts", "/dev/pts", "devpts", 0, NULL, RBX_MNT_DIR | RBX_MNT_SYSTEM};
    struct rbx_mount_row ptmx = {NULL, "/dev/ptmx", NULL, 0, "pts/ptmx", RBX_MNT_SYMLINK};
    _cleanup_(rbx_target_dir_reset) struct rbx_target_dir dir = RBX_TARGET_DIR_INIT;
    _cleanup_error_ struct rbx_error *err = NULL;
    int fd;
    ck_assert_int_eq(rbx_mount_target_prepare(root.fd, &null, &dir, &fd, &err), 0);
    int cached = dir.fd;
    ck_assert_int_ge(cached, 0);
    ck_assert_str_eq(dir.path, "dev");
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    close(fd);
    ck_assert_int_eq(rbx_mount_target_prepare(root.fd, &pts, &dir, &fd, &err), 0);
    ck_assert_int_eq(dir.fd, cached);
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    close(fd);
    ck_assert_int_eq(rbx_mount_target_prepare(root.fd, &ptmx, &dir, &fd, &err), 0);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(dir.fd, cached);
    char link[16] = "";
    ck_assert_int_eq(readlinkat(root.fd, "dev/ptmx", link, sizeof(link) - 1), 8);
    ck_assert_str_eq(link, "pts/ptmx");
    /* Made already (a second run of the rows): found, not made again. */
    ck_assert_int_eq(rbx_mount_target_prepare(root.fd, &null, &dir, &fd, &err), 0);
    close(fd);

    /* A link the image put at a system target is refused, cached directory or not. */
    test_symlink(&root, "/etc/passwd", "dev/zero");
    struct rbx_mount_row zero = {"/dev/zero", "/dev/zero", NULL, MS_BIND, NULL,
                                 RBX_MNT_FILE | RBX_MNT_SYSTEM};
    ck_assert_int_lt(rbx_mount_target_prepare(root.fd, &zero, &dir, &fd, &err), 0);
    ck_assert_error(err, RBX_ERR_ESCAPE, "the image has a symbolic link there");
    rbx_error_free(TAKE_PTR(err));

    /* So is a directory reached through a link: no cache is taken, the long way refuses. */
    rbx_target_dir_reset(&dir);
    test_mkdir(&root, "real");
    test_symlink(&root, "real", "lnk");
    struct rbx_mount_row below = {"/dev/null", "/lnk/null", NULL, MS_BIND, NULL,
                                  RBX_MNT_FILE | RBX_MNT_SYSTEM};
    ck_assert_int_lt(rbx_mount_target_prepare(root.fd, &below, &dir, &fd, &err), 0);
    ck_assert_int_eq(dir.fd, -1);
    ck_assert(!test_exists(&root, "real/null"));
}
END_TEST

START_TEST(test_fd_path)
{
    char buf[32];
    ck_assert_str_eq(rbx_fd_path(buf, 0), "/proc/self/fd/0");
    ck_assert_str_eq(rbx_fd_path(buf, 1234567), "/proc/self/fd/1234567");
}
END_TEST

/* Nothing mounts before the guard saw a private namespace of our own. The checks run in a
 * child inside a new user+mount namespace, whose mounts can not propagate back to the host,
 * so even a broken guard could not touch the real system. */
START_TEST(test_mount_refused_outside_a_private_namespace)
{
    ino_t host = rbx_mount_ns_current();
    ck_assert_uint_ne(host, 0);
    /* In the test's own namespace: refused before any system call. */
    ck_assert_int_eq(rbx_mount_guard(), -EPERM);
    ck_assert_int_eq(rbx_mount("none", root.dir, "tmpfs", 0, NULL), -EPERM);
    ck_assert_int_eq(rbx_mount_ns_make_private(host), -EPERM);

    pid_t p = fork();
    ck_assert_int_ge(p, 0);
    if (p == 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
            _exit(77);
        int code = 0;
        if (rbx_mount("none", root.dir, "tmpfs", 0, NULL) != -EPERM)
            code |= 1; /* new namespace, guard not armed */
        if (rbx_mount_ns_make_private(rbx_mount_ns_current()) != -EPERM)
            code |= 2; /* told that this namespace is the host's */
        if (rbx_mount_ns_make_private(host) != 0)
            code |= 4;
        if (rbx_mount("none", root.dir, "tmpfs", 0, NULL) != 0)
            code |= 8;
        _exit(code);
    }
    int st;
    ck_assert_int_eq(waitpid(p, &st, 0), p);
    ck_assert(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        return; /* no user namespaces here */
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    /* The tmpfs lived and died in the child's namespace. */
    ck_assert(!test_exists(&root, "anything") && rbx_mount_ns_current() == host);
    _cleanup_free_ char *mountinfo = NULL;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(
        rbx_read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 20, &mountinfo, NULL, &err), 0);
    ck_assert_ptr_null(strstr(mountinfo, root.dir));
}
END_TEST

static Suite *mounts_suite(void)
{
    Suite *s = suite_create("sandbox_mounts");
    TCase *tc = tcase_create("mounts");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rows_follow_the_network_mode);
    tcase_add_test(tc, test_rows_user_mounts);
    tcase_add_test(tc, test_rows_user_mount_errors);
    tcase_add_test(tc, test_mount_target_symlink_escape_stays_in_root);
    tcase_add_test(tc, test_mount_target_symlink_escape_stays_in_root_walker);
    tcase_add_test(tc, test_mount_target_kinds);
    tcase_add_test(tc, test_mount_target_system_rows_share_their_dir);
    tcase_add_test(tc, test_fd_path);
    tcase_add_test(tc, test_mount_refused_outside_a_private_namespace);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(mounts_suite)
