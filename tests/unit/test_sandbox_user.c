/* test_sandbox_user.c — rbx_user_resolve (user.c): docker's user forms over an image's passwd and
 * group files, and files that are malformed, huge, FIFOs or symlinks out of the root. */
#include "sandbox/sandbox-internal.h"

#include "sandbox_testlib.h"

static struct test_root root;

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "app:x:1000:1000:App User:/home/app:/bin/sh\n"
                             "nohome:x:1001:1001\n";
static const char group[] = "root:x:0:root\n"
                            "wheel:x:10:root, app\n"
                            "staff:x:50:app\n"
                            "app:x:1000:\n"
                            "docker:x:999:daemon,app\n";

static void setup(void)
{
    test_root_make(&root);
    test_write_str(&root, "etc/passwd", passwd, 0644);
    test_write_str(&root, "etc/group", group, 0644);
}

static void teardown(void)
{
    test_root_remove(&root);
}

static void resolve_ok(const char *spec, struct rbx_user *u)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_user_resolve(root.fd, spec, u, &err);
    ck_assert_msg(r == 0, "\"%s\": %s", spec ? spec : "(null)", err ? err->message : "");
}

static void resolve_fails(const char *spec, enum rbx_error_kind kind, const char *needle)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_user u;
    ck_assert_int_lt(rbx_user_resolve(root.fd, spec, &u, &err), 0);
    ck_assert_error(err, kind, needle);
}

static void assert_groups(const struct rbx_user *u, size_t n, const gid_t *want)
{
    ck_assert_uint_eq(u->n_groups, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(u->groups[i], want[i]);
}

START_TEST(test_user_default_is_root)
{
    struct rbx_user u;
    resolve_ok(NULL, &u);
    ck_assert_uint_eq(u.uid, 0);
    ck_assert_uint_eq(u.gid, 0);
    ck_assert_str_eq(u.home, "/root");
    assert_groups(&u, 2, (gid_t[]){0, 10});
    resolve_ok("", &u);
    ck_assert_uint_eq(u.uid, 0);
    ck_assert_str_eq(u.home, "/root");
}
END_TEST

START_TEST(test_user_by_name)
{
    struct rbx_user u;
    resolve_ok("app", &u);
    ck_assert_uint_eq(u.uid, 1000);
    ck_assert_uint_eq(u.gid, 1000);
    ck_assert_str_eq(u.home, "/home/app");
    /* Member lists may carry spaces after the commas. */
    assert_groups(&u, 3, (gid_t[]){10, 50, 999});
}
END_TEST

START_TEST(test_user_by_uid)
{
    struct rbx_user u;
    resolve_ok("1000", &u);
    ck_assert_uint_eq(u.uid, 1000);
    ck_assert_uint_eq(u.gid, 1000);
    ck_assert_str_eq(u.home, "/home/app");
    assert_groups(&u, 3, (gid_t[]){10, 50, 999});
    /* An entry without home: "/". */
    resolve_ok("1001", &u);
    ck_assert_uint_eq(u.gid, 1001);
    ck_assert_str_eq(u.home, "/");
}
END_TEST

START_TEST(test_user_unknown_uid_used_as_is)
{
    struct rbx_user u;
    resolve_ok("4242", &u);
    ck_assert_uint_eq(u.uid, 4242);
    ck_assert_uint_eq(u.gid, 0);
    ck_assert_str_eq(u.home, "/");
    ck_assert_uint_eq(u.n_groups, 0);
    resolve_ok("4242:4343", &u);
    ck_assert_uint_eq(u.uid, 4242);
    ck_assert_uint_eq(u.gid, 4343);
}
END_TEST

START_TEST(test_user_explicit_group_forms)
{
    struct rbx_user u;
    resolve_ok("1000:50", &u);
    ck_assert_uint_eq(u.uid, 1000);
    ck_assert_uint_eq(u.gid, 50);
    ck_assert_uint_eq(u.n_groups, 0); /* explicit group: no supplementary groups, as docker */
    resolve_ok("app:staff", &u);
    ck_assert_uint_eq(u.uid, 1000);
    ck_assert_uint_eq(u.gid, 50);
    resolve_ok("1000:wheel", &u);
    ck_assert_uint_eq(u.gid, 10);
    resolve_ok("app:999", &u);
    ck_assert_uint_eq(u.gid, 999);
    resolve_ok(":staff", &u);
    ck_assert_uint_eq(u.uid, 0);
    ck_assert_uint_eq(u.gid, 50);
    /* "app:" is the implicit form. */
    resolve_ok("app:", &u);
    ck_assert_uint_eq(u.gid, 1000);
    ck_assert_uint_eq(u.n_groups, 3);
}
END_TEST

START_TEST(test_user_unknown_names)
{
    resolve_fails("ghost", RBX_ERR_NOT_FOUND,
                  "unable to find user ghost: no matching entries in passwd file");
    resolve_fails("app:nogroup", RBX_ERR_NOT_FOUND,
                  "unable to find group nogroup: no matching entries in group file");
}
END_TEST

START_TEST(test_user_bad_specs)
{
    resolve_fails("a:b:c", RBX_ERR_USAGE, "expected user[:group]");
    resolve_fails("2147483648", RBX_ERR_USAGE, "range 0-2147483647");
    resolve_fails("0:4294967296", RBX_ERR_NOT_FOUND, "unable to find group 4294967296");
}
END_TEST

/* A malformed line is skipped; it is never read as uid 0. */
START_TEST(test_user_malformed_lines_skipped)
{
    test_write_str(&root, "etc/passwd",
                   "# comment\n"
                   "\n"
                   "broken\n"
                   "evil:x::0:::\n"
                   "worse:x:abc:0::/:\n"
                   "+nis::0:0:::\n"
                   ":x:7:7::/nobody:\n"
                   "big:x:99999999999:0::/:\n"
                   "app:x:1000:1000::/home/app:/bin/sh\r\n",
                   0644);
    resolve_fails("evil", RBX_ERR_NOT_FOUND, "unable to find user evil");
    resolve_fails("worse", RBX_ERR_NOT_FOUND, "unable to find user worse");
    resolve_fails("+nis", RBX_ERR_NOT_FOUND, "unable to find user +nis");
    resolve_fails("big", RBX_ERR_NOT_FOUND, "unable to find user big");
    struct rbx_user u;
    resolve_ok("app", &u);
    ck_assert_uint_eq(u.uid, 1000);
    ck_assert_str_eq(u.home, "/home/app");
    resolve_ok("7", &u); /* the nameless line is skipped too: 7 is unknown */
    ck_assert_str_eq(u.home, "/");
}
END_TEST

START_TEST(test_user_huge_passwd_refused)
{
    size_t len = 5u << 20;
    char *big = rbx_xmalloc(len);
    memset(big, '#', len);
    for (size_t i = 79; i < len; i += 80)
        big[i] = '\n';
    test_write(&root, "etc/passwd", big, len, 0644);
    free(big);
    resolve_fails("app", RBX_ERR_LIMIT, "larger than");
}
END_TEST

START_TEST(test_user_passwd_fifo_is_not_opened)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/etc/passwd", root.dir);
    unlink(p);
    ck_assert_int_eq(mkfifo(p, 0644), 0);
    /* Opening a FIFO for reading would block forever. */
    resolve_fails("app", RBX_ERR_MALFORMED, "not a regular file");
}
END_TEST

static void symlink_stays_in_root(bool walker)
{
    rbx_fs_force_walker(walker);
    _cleanup_free_ char *p = rbx_xasprintf("%s/etc/passwd", root.dir);
    unlink(p);
    /* Out of the root this would be the host's passwd (with no "app"). */
    test_symlink(&root, "/../../../../etc/shadow-copy", "etc/passwd");
    test_write_str(&root, "etc/shadow-copy", "app:x:1234:1234::/in/root:/bin/sh\n", 0644);
    struct rbx_user u;
    resolve_ok("app", &u);
    ck_assert_uint_eq(u.uid, 1234);
    ck_assert_str_eq(u.home, "/in/root");
    rbx_fs_force_walker(false);
}

START_TEST(test_user_passwd_symlink_stays_in_root)
{
    symlink_stays_in_root(false);
}
END_TEST

START_TEST(test_user_passwd_symlink_stays_in_root_walker)
{
    symlink_stays_in_root(true);
}
END_TEST

START_TEST(test_user_no_account_files)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/etc/passwd", root.dir);
    _cleanup_free_ char *g = rbx_xasprintf("%s/etc/group", root.dir);
    unlink(p);
    unlink(g);
    struct rbx_user u;
    resolve_ok("", &u);
    ck_assert_uint_eq(u.uid, 0);
    ck_assert_str_eq(u.home, "/");
    resolve_ok("1000:1000", &u);
    ck_assert_uint_eq(u.uid, 1000);
    ck_assert_uint_eq(u.gid, 1000);
    resolve_fails("app", RBX_ERR_NOT_FOUND, "unable to find user app");
    resolve_fails("0:staff", RBX_ERR_NOT_FOUND, "unable to find group staff");
}
END_TEST

START_TEST(test_user_limits)
{
    char line[512];
    snprintf(line, sizeof(line), "longhome:x:5:5::/%0300d:/bin/sh\n", 0);
    test_write_str(&root, "etc/passwd", line, 0644);
    resolve_fails("longhome", RBX_ERR_LIMIT, "home directory longer than");

    /* A member of 100 groups keeps the first 64. */
    test_write_str(&root, "etc/passwd", "many:x:5:5::/:/bin/sh\n", 0644);
    char *g = rbx_xstrdup("");
    for (int i = 0; i < 100; i++) {
        char *n = rbx_xasprintf("%sg%d:x:%d:many\n", g, i, 2000 + i);
        free(g);
        g = n;
    }
    test_write_str(&root, "etc/group", g, 0644);
    free(g);
    struct rbx_user u;
    resolve_ok("many", &u);
    ck_assert_uint_eq(u.n_groups, 64);
    ck_assert_uint_eq(u.groups[0], 2000);
    ck_assert_uint_eq(u.groups[63], 2063);
}
END_TEST

static Suite *user_suite(void)
{
    Suite *s = suite_create("sandbox_user");
    TCase *tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_user_default_is_root);
    tcase_add_test(tc, test_user_by_name);
    tcase_add_test(tc, test_user_by_uid);
    tcase_add_test(tc, test_user_unknown_uid_used_as_is);
    tcase_add_test(tc, test_user_explicit_group_forms);
    tcase_add_test(tc, test_user_unknown_names);
    tcase_add_test(tc, test_user_bad_specs);
    tcase_add_test(tc, test_user_malformed_lines_skipped);
    tcase_add_test(tc, test_user_huge_passwd_refused);
    tcase_add_test(tc, test_user_passwd_fifo_is_not_opened);
    tcase_add_test(tc, test_user_passwd_symlink_stays_in_root);
    tcase_add_test(tc, test_user_passwd_symlink_stays_in_root_walker);
    tcase_add_test(tc, test_user_no_account_files);
    tcase_add_test(tc, test_user_limits);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(user_suite)
