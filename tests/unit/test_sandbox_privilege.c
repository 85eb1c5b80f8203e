/* test_sandbox_privilege.c — privilege.c: reading /etc/subuid, which signals are passed on, and
 * the decision for root. With "probe" as argument it is the tiny program sandbox_rootless.sh
 * runs as an ordinary user to check the re-execution, signal forwarding and exit status. */
#include "sandbox/sandbox-internal.h"

#include "rbx_check.h"

#include <string.h>

static const char subuid[] = "# made by useradd\n"
                             "alice:100000:65536\n"
                             "bob:bad:65536\n"
                             "bob:165536:0\n"
                             "bob:231072:65536\r\n"
                             "1005:296608:1000\n"
                             "alice:400000:10\n"
                             "carol:4294967295:2\n";

START_TEST(test_subid_by_name_first_match)
{
    uint32_t start, count;
    ck_assert(rbx_subid_find(subuid, "alice", 1001, &start, &count));
    ck_assert_uint_eq(start, 100000);
    ck_assert_uint_eq(count, 65536);
}
END_TEST

START_TEST(test_subid_malformed_lines_skipped)
{
    uint32_t start, count;
    ck_assert(rbx_subid_find(subuid, "bob", 1002, &start, &count));
    ck_assert_uint_eq(start, 231072);
    ck_assert_uint_eq(count, 65536);
    ck_assert(!rbx_subid_find(subuid, "carol", 1003, &start, &count)); /* past 2^32 */
}
END_TEST

START_TEST(test_subid_by_uid)
{
    uint32_t start, count;
    ck_assert(rbx_subid_find(subuid, "dave", 1005, &start, &count));
    ck_assert_uint_eq(start, 296608);
    ck_assert_uint_eq(count, 1000);
    ck_assert(rbx_subid_find(subuid, NULL, 1005, &start, &count));
    ck_assert(!rbx_subid_find(subuid, "eve", 1006, &start, &count));
    ck_assert(!rbx_subid_find("", "alice", 1, &start, &count));
}
END_TEST

START_TEST(test_signal_forwarding_rule)
{
    struct signalfd_siginfo si;
    memset(&si, 0, sizeof(si));
    si.ssi_signo = SIGINT;
    si.ssi_code = SI_USER; /* kill(1) */
    ck_assert(rbx_signal_should_forward(&si));
    si.ssi_code = SI_KERNEL; /* ^C: the terminal signalled the whole process group already */
    ck_assert(!rbx_signal_should_forward(&si));
}
END_TEST

START_TEST(test_privilege_root)
{
    if (geteuid() != 0)
        return; /* as an ordinary user the call would re-execute this test */
    enum rbx_privilege priv;
    unsigned ids = 0;
    _cleanup_error_ struct rbx_error *err = NULL;
    char *argv[] = {"test", NULL};
    ck_assert_int_eq(rbx_privilege_setup(argv, &priv, &ids, &err), 0);
    ck_assert_int_eq(priv, RBX_PRIV_ROOT);
    ck_assert_uint_gt(ids, 0);
    ck_assert_uint_eq(rbx_privilege_real_uid(), 0);
}
END_TEST

/* The marker only means something in a namespace reprobox made: real root must not be talked
 * into the rootless path by its environment. */
START_TEST(test_privilege_stale_marker_refused)
{
    if (geteuid() != 0)
        return;
    static struct rbx_idmap m;
    _cleanup_error_ struct rbx_error *e = NULL;
    ck_assert_int_eq(rbx_idmap_read_self("uid_map", &m, &e), 0);
    if (!(m.n == 1 && m.r[0].count == UINT32_MAX))
        return; /* already in some user namespace */
    setenv("REPROBOX_USERNS", "1000", 1);
    enum rbx_privilege priv;
    unsigned ids;
    _cleanup_error_ struct rbx_error *err = NULL;
    char *argv[] = {"test", NULL};
    ck_assert_int_lt(rbx_privilege_setup(argv, &priv, &ids, &err), 0);
    ck_assert_error(err, RBX_ERR_SANDBOX, "REPROBOX_USERNS=1000 is set");
    unsetenv("REPROBOX_USERNS");
}
END_TEST

static Suite *privilege_suite(void)
{
    Suite *s = suite_create("sandbox_privilege");
    TCase *tc = tcase_create("privilege");
    tcase_add_test(tc, test_subid_by_name_first_match);
    tcase_add_test(tc, test_subid_malformed_lines_skipped);
    tcase_add_test(tc, test_subid_by_uid);
    tcase_add_test(tc, test_signal_forwarding_rule);
    tcase_add_test(tc, test_privilege_root);
    tcase_add_test(tc, test_privilege_stale_marker_refused);
    suite_add_tcase(s, tc);
    return s;
}

static void on_term(int sig)
{
    (void)sig;
    static const char msg[] = "got TERM\n";
    ssize_t w = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    _exit(3);
}

/* probe: report the privilege decision; probe wait-term: then wait for a SIGTERM, which only
 * reaches this re-executed copy if the original process forwards it. */
static int probe(int argc, char **argv)
{
    enum rbx_privilege priv;
    unsigned ids;
    _cleanup_error_ struct rbx_error *err = NULL;
    if (rbx_privilege_setup(argv, &priv, &ids, &err) < 0) {
        fprintf(stderr, "probe: %s\n", err->message);
        return 125;
    }
    printf("%s ids=%u real_uid=%u euid=%u\n", priv == RBX_PRIV_ROOT ? "root" : "rootless", ids,
           (unsigned)rbx_privilege_real_uid(), (unsigned)geteuid());
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "wait-term") == 0) {
        signal(SIGTERM, on_term);
        printf("ready original=%d\n", (int)getppid());
        fflush(stdout);
        for (int i = 0; i < 100; i++)
            usleep(100000);
        return 4;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "probe") == 0)
        return probe(argc, argv);
    SRunner *sr = srunner_create(privilege_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
