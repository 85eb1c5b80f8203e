/* test_sandbox_cgroup.c — cgroup.c without touching the host's cgroups: where our cgroup is in
 * v1, v2 and hybrid layouts (from mountinfo and /proc/self/cgroup text), the names that mark a
 * cgroup as ours and the sweep of those whose reprobox is gone, on a directory tree. */
#include "sandbox/sandbox-internal.h"

#include "sandbox_testlib.h"

#include <signal.h>
#include <sys/wait.h>

static const char hybrid_mountinfo[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
static const char hybrid_self[] = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n"
                                  "1:cpu:/\n0::/\n";

START_TEST(test_layout_hybrid_v1)
{
    struct rbx_cgroup_layout l;
    ck_assert_int_eq(rbx_cgroup_layout_parse(hybrid_mountinfo, hybrid_self, &l, NULL), 0);
    ck_assert_str_eq(l.v1_memory, "/sys/fs/cgroup/memory/process_api/abc");
    ck_assert_str_eq(l.v1_pids, "/sys/fs/cgroup/pids");
    ck_assert_str_eq(l.v1_cpu, "/sys/fs/cgroup/cpu");
    ck_assert_str_eq(l.v2, "/sys/fs/cgroup/unified");
    ck_assert(!l.v2_unified);
    rbx_cgroup_layout_clear(&l);
}
END_TEST

START_TEST(test_layout_unified_v2)
{
    static const char mi[] =
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 "
        "rw,nsdelegate,memory_recursiveprot\n";
    static const char self[] = "0::/user.slice/user-1000.slice/user@1000.service/app.slice\n";
    struct rbx_cgroup_layout l;
    ck_assert_int_eq(rbx_cgroup_layout_parse(mi, self, &l, NULL), 0);
    ck_assert_str_eq(l.v2, "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice");
    ck_assert(l.v2_unified);
    ck_assert_ptr_null(l.v1_memory);
    rbx_cgroup_layout_clear(&l);
}
END_TEST

/* Inside a cgroup namespace the mount's root is where we are: paths are relative to it. */
START_TEST(test_layout_mount_root_not_slash)
{
    static const char mi[] = "40 30 0:32 /process_api /sys/fs/cgroup/memory rw - cgroup cgroup "
                             "rw,memory\n"
                             "41 30 0:33 /elsewhere /sys/fs/cgroup/pids rw - cgroup cgroup "
                             "rw,pids\n";
    static const char self[] = "4:memory:/process_api/abc\n8:pids:/other\n";
    struct rbx_cgroup_layout l;
    ck_assert_int_eq(rbx_cgroup_layout_parse(mi, self, &l, NULL), 0);
    ck_assert_str_eq(l.v1_memory, "/sys/fs/cgroup/memory/abc");
    /* A mount that does not show our cgroup is not used. */
    ck_assert_ptr_null(l.v1_pids);
    rbx_cgroup_layout_clear(&l);
}
END_TEST

START_TEST(test_layout_escaped_mount_point)
{
    static const char mi[] = "40 30 0:32 / /mnt/cg\\040v1/memory rw - cgroup cgroup rw,memory\n";
    static const char self[] = "4:memory:/\n";
    struct rbx_cgroup_layout l;
    ck_assert_int_eq(rbx_cgroup_layout_parse(mi, self, &l, NULL), 0);
    ck_assert_str_eq(l.v1_memory, "/mnt/cg v1/memory");
    rbx_cgroup_layout_clear(&l);
}
END_TEST

START_TEST(test_names_mark_our_cgroups)
{
    ck_assert_int_eq(rbx_cgroup_name_pid("reprobox-1234-0a1b2c3d4e5f"), 1234);
    ck_assert_int_eq(rbx_cgroup_name_pid("reprobox-1234-"), 0);
    ck_assert_int_eq(rbx_cgroup_name_pid("reprobox-12x4-abc"), 0);
    ck_assert_int_eq(rbx_cgroup_name_pid("reprobox-1234-XYZ"), 0);
    ck_assert_int_eq(rbx_cgroup_name_pid("docker-1234-abc"), 0);
    ck_assert_int_eq(rbx_cgroup_name_pid("reprobox-0-abc"), 0);
    ck_assert_int_eq(rbx_cgroup_name_pid("reprobox-99999999999-abc"), 0);
}
END_TEST

/* A pid that surely is gone: a child we reaped. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

START_TEST(test_sweep_removes_only_stale_ones)
{
    struct test_root t;
    test_root_make(&t);
    char name[64];
    pid_t gone = dead_pid();
    snprintf(name, sizeof(name), "reprobox-%d-abc123", (int)gone);
    test_mkdir(&t, name);
    char mine[64];
    snprintf(mine, sizeof(mine), "reprobox-%d-def456", (int)getpid());
    test_mkdir(&t, mine);
    test_mkdir(&t, "reprobox-1-aaa"); /* init is alive */
    test_mkdir(&t, "someone-else");
    rbx_cgroup_sweep_dir(t.dir);
    ck_assert(!test_exists(&t, name));
    ck_assert(test_exists(&t, mine));
    ck_assert(test_exists(&t, "reprobox-1-aaa"));
    ck_assert(test_exists(&t, "someone-else"));
    test_root_remove(&t);
}
END_TEST

static Suite *cgroup_suite(void)
{
    Suite *s = suite_create("sandbox_cgroup");
    TCase *tc = tcase_create("cgroup");
    tcase_add_test(tc, test_layout_hybrid_v1);
    tcase_add_test(tc, test_layout_unified_v2);
    tcase_add_test(tc, test_layout_mount_root_not_slash);
    tcase_add_test(tc, test_layout_escaped_mount_point);
    tcase_add_test(tc, test_names_mark_our_cgroups);
    tcase_add_test(tc, test_sweep_removes_only_stale_ones);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(cgroup_suite)
