/* test_sandbox_run.c — rbx_sandbox_run (sandbox.c) end to end on a rootfs made at test time from
 * the host's static busybox. Run as root, or as an ordinary user: main() then re-executes itself
 * through rbx_privilege_setup, as the reprobox binary does. */
#include "sandbox_busybox.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>

START_TEST(test_run_output_in_tails)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "echo hello; echo oops >&2");
    run_ok(&spec, &res);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_int_eq(res.signal, 0);
    ck_assert_str_eq(res.stdout_tail, "hello\n");
    ck_assert_str_eq(res.stderr_tail, "oops\n");
    ck_assert_str_eq(res.exec_path, "/bin/sh");
    ck_assert_uint_gt(res.setup_ns, 0);
    ck_assert_uint_gt(res.run_ns, 0);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_exit_codes)
{
    free(run_script("exit 3", 3));
    free(run_script("true", 0));
    free(run_script("false", 1));
    /* A child of the command killed by SIGKILL: the shell reports 128+9. */
    free(run_script("sh -c 'kill -9 $$'; exit $?", 137));
}
END_TEST

/* The command is pid 1 of its namespace: as in docker without --init, the kernel ignores the
 * signals it sends itself without a handler, even SIGKILL. */
START_TEST(test_run_pid1_ignores_its_own_kill)
{
    _cleanup_free_ char *out = run_script("kill -9 $$; echo still here", 0);
    ck_assert_str_eq(out, "still here\n");
}
END_TEST

START_TEST(test_run_is_pid_1)
{
    _cleanup_free_ char *out = run_script("echo $$; ls -d /proc/[0-9]*", 0);
    /* A fresh /proc of the new pid namespace shows only the command (ls is a child: pid 2+). */
    ck_assert_msg(strncmp(out, "1\n/proc/1\n", 10) == 0, "got \"%s\"", out);
}
END_TEST

START_TEST(test_run_hostname)
{
    _cleanup_free_ char *def = run_script("hostname", 0);
    ck_assert_str_eq(def, "reprobox\n");
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "hostname");
    spec.hostname = rbx_xstrdup("ci-runner-7");
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "ci-runner-7\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_network_none_has_only_lo_up)
{
    _cleanup_free_ char *out = run_script("ls /sys/class/net; cat /sys/class/net/lo/operstate "
                                          "/sys/class/net/lo/flags",
                                          0);
    /* operstate of lo is "unknown" even when up; flags 0x9 = IFF_UP|IFF_LOOPBACK. */
    ck_assert_msg(strncmp(out, "lo\nunknown\n0x9", 14) == 0, "got \"%s\"", out);
}
END_TEST

START_TEST(test_run_network_host_sees_host_sys_read_only)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "test -e /sys/class/net/lo && ! touch /sys/x 2>/dev/null && echo ro");
    spec.network = RBX_NETWORK_HOST;
    run_ok(&spec, &res);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_str_eq(res.stdout_tail, "ro\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_env_is_exactly_the_spec_plus_home)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "env | sort");
    rbx_strv_push(&spec.env, "FOO=bar baz");
    run_ok(&spec, &res);
    /* busybox sh adds PWD and SHLVL itself. */
    ck_assert_str_eq(res.stdout_tail, "FOO=bar baz\nHOME=/root\nPATH=/bin\nPWD=/\nSHLVL=1\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);

    spec_init(&spec, "echo $HOME");
    rbx_strv_push(&spec.env, "HOME=/custom");
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "/custom\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_cwd_created_when_missing)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "pwd");
    spec.cwd = rbx_xstrdup("/work/deep/dir");
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "/work/deep/dir\n");
    ck_assert(res.cwd_created);
    rbx_result_clear(&res);
    run_ok(&spec, &res);
    ck_assert(!res.cwd_created);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_cwd_symlink_escape_stays_in_rootfs)
{
    char host[] = "/tmp/rbx-escape-cwd-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(host));
    rmdir(host);
    _cleanup_free_ char *link = at(rootfs, "escape-cwd");
    ck_assert_int_eq(symlink(host, link), 0);
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "pwd");
    spec.cwd = rbx_xasprintf("/escape-cwd/sub");
    run_ok(&spec, &res);
    ck_assert_int_eq(res.exit_code, 0);
    struct stat st;
    ck_assert_msg(stat(host, &st) < 0 && errno == ENOENT, "%s was created on the host", host);
    _cleanup_free_ char *inside = rbx_xasprintf("%s%s/sub", rootfs, host);
    ck_assert_int_eq(stat(inside, &st), 0);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_user_applied)
{
    struct rbx_spec spec;
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_init(&spec, "id -u; id -g; id -G; echo $HOME; touch /home/app/x && echo wrote");
    spec.user = rbx_xstrdup("app");
    int r = rbx_sandbox_run(&spec, &res, &err);
    if (mapped_ids < 1001) {
        /* A rootless namespace with only the caller mapped has no uid 1000. */
        ck_assert_int_lt(r, 0);
        ck_assert_error(err, RBX_ERR_PERMISSION, "not mapped");
    } else {
        ck_assert_msg(r == 0, "%s", err ? err->message : "");
        ck_assert_uint_eq(res.uid, 1000);
        ck_assert_uint_eq(res.gid, 1000);
        /* /home/app belongs to root: the user cannot write there. */
        ck_assert_str_eq(res.stdout_tail, "1000\n1000\n1000 50\n/home/app\n");
    }
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_root_user_by_default)
{
    _cleanup_free_ char *out = run_script("id -u; id -g", 0);
    ck_assert_str_eq(out, "0\n0\n");
}
END_TEST

START_TEST(test_run_unknown_user)
{
    struct rbx_spec spec;
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_init(&spec, "true");
    spec.user = rbx_xstrdup("ghost");
    ck_assert_int_lt(rbx_sandbox_run(&spec, &res, &err), 0);
    ck_assert_error(err, RBX_ERR_NOT_FOUND,
                    "unable to find user ghost: no matching entries in passwd file");
    ck_assert_int_eq(res.exit_code, 125);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_command_not_found_127)
{
    struct rbx_spec spec;
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_init(&spec, "unused");
    rbx_strv_free(spec.argv);
    spec.argv = NULL;
    rbx_strv_push(&spec.argv, "pnpm");
    rbx_strv_push(&spec.argv, "install");
    rbx_strv_free(spec.env);
    spec.env = NULL;
    rbx_strv_push(&spec.env, "PATH=/usr/local/bin:/usr/bin:/bin");
    ck_assert_int_lt(rbx_sandbox_run(&spec, &res, &err), 0);
    ck_assert_error(err, RBX_ERR_EXEC_NOT_FOUND,
                    "\"pnpm\": executable file not found in $PATH "
                    "(PATH=/usr/local/bin:/usr/bin:/bin)");
    ck_assert_int_eq(res.exit_code, 127);
    rbx_result_clear(&res);
    /* Without an error object the exit code still tells. */
    ck_assert_int_lt(rbx_sandbox_run(&spec, &res, NULL), 0);
    ck_assert_int_eq(res.exit_code, 127);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

static void run_argv0_expect(const char *argv0, enum rbx_error_kind kind, const char *needle,
                             int code)
{
    struct rbx_spec spec;
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_init(&spec, "unused");
    free(spec.argv[0]);
    spec.argv[0] = rbx_xstrdup(argv0);
    ck_assert_int_lt(rbx_sandbox_run(&spec, &res, &err), 0);
    ck_assert_error(err, kind, needle);
    ck_assert_int_eq(res.exit_code, code);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}

START_TEST(test_run_not_executable_126)
{
    run_argv0_expect("/bin/noexec", RBX_ERR_EXEC_DENIED, "permission denied", 126);
    run_argv0_expect("noexec", RBX_ERR_EXEC_DENIED, "/bin/noexec is not executable", 126);
}
END_TEST

START_TEST(test_run_missing_interpreter_126)
{
    run_argv0_expect("needs-bash", RBX_ERR_EXEC_FORMAT, "interpreter /bin/bash not found", 126);
}
END_TEST

START_TEST(test_run_dev_is_private_and_complete)
{
    _cleanup_free_ char *out = run_script("ls /dev; test -c /dev/null && echo hi > /dev/null && "
                                          "readlink /dev/fd && readlink /dev/ptmx; "
                                          "test -d /dev/pts && test -k /dev/shm && echo ok",
                                          0);
    ck_assert_str_eq(out, "fd\nfull\nmqueue\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\n"
                          "stdout\ntty\nurandom\nzero\n/proc/self/fd\npts/ptmx\nok\n");
}
END_TEST

START_TEST(test_run_only_stdio_fds_reach_the_command)
{
    /* An fd the caller forgot to mark close-on-exec must not leak in. */
    int leaked = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(leaked, 3);
    _cleanup_free_ char *out = run_script("ls /proc/self/fd", 0);
    close(leaked);
    /* ls's own directory fd is 3. */
    ck_assert_str_eq(out, "0\n1\n2\n3\n");
}
END_TEST

START_TEST(test_run_stdin_and_stdout_fd)
{
    int in[2], out[2];
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(write(in[1], "from stdin\n", 11), 11);
    close(in[1]);
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "cat");
    spec.stdin_fd = in[0];
    spec.stdout_fd = out[1];
    run_ok(&spec, &res);
    close(in[0]);
    close(out[1]);
    char buf[64] = "";
    ck_assert_int_eq(read(out[0], buf, sizeof(buf) - 1), 11);
    close(out[0]);
    ck_assert_str_eq(buf, "from stdin\n");
    ck_assert_str_eq(res.stdout_tail, "from stdin\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* A caller without stdio (a daemon): our pipes and /dev/null land on fds 0-2 of the parent. */
START_TEST(test_run_caller_with_closed_stdio)
{
    close(0);
    close(1);
    close(2);
    _cleanup_free_ char *out = run_script("echo hi; cat; echo err >&2; ls /proc/self/fd", 0);
    ck_assert_str_eq(out, "hi\n0\n1\n2\n3\n");
}
END_TEST

START_TEST(test_run_tail_is_bounded)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "seq 1 5000");
    spec.tail_lines = 3;
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "4998\n4999\n5000\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_overlay_write_stays_in_upper)
{
    _cleanup_free_ char *upper = at(base, "upper");
    _cleanup_free_ char *work = at(base, "work");
    _cleanup_free_ char *merged = at(base, "merged");
    ck_assert_int_eq(mkdir(upper, 0755), 0);
    ck_assert_int_eq(mkdir(work, 0755), 0);
    ck_assert_int_eq(mkdir(merged, 0755), 0);

    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "echo new > /created && rm /etc/group && ls /etc");
    free(spec.rootfs_dir);
    spec.rootfs_dir = rbx_xstrdup(merged);
    rbx_strv_push(&spec.lower_dirs, rootfs);
    spec.upper_dir = rbx_xstrdup(upper);
    spec.work_dir = rbx_xstrdup(work);
    run_ok(&spec, &res);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_str_eq(res.stdout_tail, "passwd\n");

    struct stat st;
    _cleanup_free_ char *in_lower = at(rootfs, "created");
    _cleanup_free_ char *in_upper = at(upper, "created");
    _cleanup_free_ char *group = at(rootfs, "etc/group");
    ck_assert_msg(stat(in_lower, &st) < 0, "the write reached the lower dir");
    ck_assert_int_eq(stat(in_upper, &st), 0);
    ck_assert_int_eq(stat(group, &st), 0);
    /* The merged dir stays empty for the host: the overlay lived in the sandbox's namespace. */
    _cleanup_free_ char *in_merged = at(merged, "created");
    ck_assert_msg(stat(in_merged, &st) < 0, "the overlay is visible on the host");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* Enough layers that the mount(2) option string is over a page: the legacy path must fall back to
 * paths relative to their common directory. */
static void run_many_layers(bool legacy)
{
    _cleanup_free_ char *layers = rbx_xasprintf(
        "%s/layers-with-a-rather-long-directory-name-to-fill-a-page%s", base, legacy ? "-2" : "");
    ck_assert_int_eq(mkdir(layers, 0755), 0);
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "cat /marker; ls /bin/busybox");
    for (int i = 0; i < 60; i++) {
        _cleanup_free_ char *l = rbx_xasprintf("%s/layer-number-%03d-of-the-image", layers, i);
        ck_assert_int_eq(mkdir(l, 0755), 0);
        _cleanup_free_ char *m = at(l, "marker");
        _cleanup_free_ char *text = rbx_xasprintf("%d\n", i);
        write_file(m, text, 0644);
        rbx_strv_push(&spec.lower_dirs, l);
    }
    /* The busybox tree on top, through a symlink so every path shares the long prefix. */
    _cleanup_free_ char *top = at(layers, "top");
    ck_assert_int_eq(symlink(rootfs, top), 0);
    rbx_strv_push(&spec.lower_dirs, top);
    _cleanup_free_ char *merged = at(base, legacy ? "merged-legacy" : "merged-many");
    ck_assert_int_eq(mkdir(merged, 0755), 0);
    free(spec.rootfs_dir);
    spec.rootfs_dir = rbx_xstrdup(merged);
    spec.readonly_rootfs = true; /* no upper dir: a read-only overlay */

    struct rbx_rootfs_plan plan;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_rootfs_plan_build(&spec, 4096, &plan, &err), 0);
    ck_assert_ptr_nonnull(plan.data_dir);
    ck_assert_ptr_nonnull(plan.data);
    rbx_rootfs_plan_clear(&plan);

    rbx_rootfs_force_mount2(legacy);
    run_ok(&spec, &res);
    /* The highest layer holding the file wins. */
    ck_assert_str_eq(res.stdout_tail, "59\n/bin/busybox\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}

START_TEST(test_run_overlay_many_layers)
{
    run_many_layers(false);
}
END_TEST

START_TEST(test_run_overlay_many_layers_legacy_mount)
{
    run_many_layers(true);
}
END_TEST

START_TEST(test_run_bind_mounts)
{
    _cleanup_free_ char *host = at(base, "shared");
    ck_assert_int_eq(mkdir(host, 0755), 0);
    _cleanup_free_ char *ro = at(base, "ro-file");
    write_file(ro, "read me\n", 0644);

    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "echo out > /data/result && cat /etc/config && "
                     "! echo x 2>/dev/null > /etc/config && echo ro-ok && "
                     "touch /scratch/f && echo tmp-ok");
    spec.n_mounts = 3;
    spec.mounts = rbx_xcalloc(3, sizeof(*spec.mounts));
    spec.mounts[0] = (struct rbx_mount_spec){rbx_xstrdup(host), rbx_xstrdup("/data"), NULL, false};
    spec.mounts[1] =
        (struct rbx_mount_spec){rbx_xstrdup(ro), rbx_xstrdup("/etc/config"), NULL, true};
    spec.mounts[2] =
        (struct rbx_mount_spec){NULL, rbx_xstrdup("/scratch"), rbx_xstrdup("tmpfs"), false};
    run_ok(&spec, &res);
    ck_assert_msg(res.exit_code == 0, "stderr: %s", res.stderr_tail);
    ck_assert_str_eq(res.stdout_tail, "read me\nro-ok\ntmp-ok\n");
    _cleanup_free_ char *result = at(host, "result");
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, result, 100, &text, NULL, &err), 0);
    ck_assert_str_eq(text, "out\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_mount_target_symlink_escape_stays_in_rootfs)
{
    char host[] = "/tmp/rbx-escape-mnt-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(host));
    rmdir(host);
    _cleanup_free_ char *link = at(rootfs, "escape-mnt");
    ck_assert_int_eq(symlink(host, link), 0);
    _cleanup_free_ char *src = at(base, "src");
    ck_assert_int_eq(mkdir(src, 0755), 0);

    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "true");
    spec.n_mounts = 1;
    spec.mounts = rbx_xcalloc(1, sizeof(*spec.mounts));
    spec.mounts[0] =
        (struct rbx_mount_spec){rbx_xstrdup(src), rbx_xstrdup("/escape-mnt/x"), NULL, false};
    run_ok(&spec, &res);
    struct stat st;
    ck_assert_msg(stat(host, &st) < 0 && errno == ENOENT, "%s was created on the host", host);
    _cleanup_free_ char *inside = rbx_xasprintf("%s%s/x", rootfs, host);
    ck_assert_int_eq(stat(inside, &st), 0);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_readonly_rootfs)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "touch /x 2>/dev/null && echo wrote; touch /dev/shm/y && echo shm-ok");
    spec.readonly_rootfs = true;
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "shm-ok\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* The holder enters the root right after its last batch, while we resolve the user and the
 * command: when that fails, its own error comes out, not a broken sync socket. */
START_TEST(test_run_holder_failing_into_the_root_says_why)
{
    rbx_holder_force_pivot_failure(true);
    struct rbx_spec spec;
    spec_init(&spec, "true");
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_sandbox_run(&spec, &res, &err);
    rbx_holder_force_pivot_failure(false);
    ck_assert_int_lt(r, 0);
    ck_assert_error(err, RBX_ERR_SANDBOX, "pivot_root");
    ck_assert_int_eq(res.exit_code, 125);
    rbx_result_clear(&res);

    /* A container of a pod, which parks after FINISH, the same. */
    struct rbx_pod *pod = NULL;
    rbx_error_free(TAKE_PTR(err));
    ck_assert_int_eq(rbx_pod_create(RBX_NETWORK_NONE, NULL, &pod, &err), 0);
    rbx_holder_force_pivot_failure(true);
    struct rbx_container *c = NULL;
    r = rbx_container_create(&spec, pod, &c, &err);
    rbx_holder_force_pivot_failure(false);
    ck_assert_int_lt(r, 0);
    ck_assert_error(err, RBX_ERR_SANDBOX, "pivot_root");
    rbx_pod_free(pod);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_bad_spec)
{
    struct rbx_spec spec;
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_init(&spec, "true");
    spec.cwd = rbx_xstrdup("relative/dir");
    ck_assert_int_lt(rbx_sandbox_run(&spec, &res, &err), 0);
    ck_assert_error(err, RBX_ERR_USAGE, "not an absolute path");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* ---- signals: a helper thread acts while the run is in progress -------------------------- */

/* The pid of our child whose command name is `comm`, or 0. */
static pid_t find_child(const char *comm)
{
    _cleanup_closedir_ DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
        if (!open_paren || !close_paren)
            continue;
        *close_paren = '\0';
        int ppid = 0;
        if (sscanf(close_paren + 2, "%*c %d", &ppid) != 1)
            continue;
        if (ppid == getpid() && strcmp(open_paren + 1, comm) == 0)
            return atoi(de->d_name);
    }
    return 0;
}

struct helper {
    const char *comm;
    int sig;
    bool to_self;
    const char *ready; /* a file the command makes once it runs, or NULL */
};

static void *helper_main(void *arg)
{
    struct helper *h = arg;
    /* Process-directed signals must reach the library's signalfd, not this thread. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    bool seen = false;
    for (int i = 0; i < 1000; i++) {
        pid_t p = find_child(h->comm);
        struct stat st;
        if (p > 0 && (!h->ready || stat(h->ready, &st) == 0)) {
            /* Until the command has its handler, pid 1 ignores the signal: send it again until
             * the command is gone (a busy machine may be slow to get there). */
            seen = true;
            kill(h->to_self ? getpid() : p, h->sig);
            usleep(100000);
        } else if (seen) {
            return NULL;
        } else {
            usleep(10000);
        }
    }
    return NULL;
}

START_TEST(test_run_killed_by_signal_reports_128_plus_n)
{
    struct helper h = {"sleep", SIGKILL, false, NULL};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, helper_main, &h), 0);
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "unused");
    rbx_strv_free(spec.argv);
    spec.argv = NULL;
    rbx_strv_push(&spec.argv, "sleep");
    rbx_strv_push(&spec.argv, "30");
    run_ok(&spec, &res);
    pthread_join(t, NULL);
    ck_assert_int_eq(res.signal, SIGKILL);
    ck_assert_int_eq(res.exit_code, 128 + 9);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_run_sigterm_forwarded)
{
    /* Sent before the command runs, the signal would end the set-up instead. */
    _cleanup_free_ char *ready = at(rootfs, "term-ready");
    struct helper h = {"sh", SIGTERM, true, ready};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, helper_main, &h), 0);
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "trap 'echo got TERM; exit 7' TERM; touch /term-ready; i=0; "
                     "while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; echo timeout");
    run_ok(&spec, &res);
    pthread_join(t, NULL);
    ck_assert_str_eq(res.stdout_tail, "got TERM\n");
    ck_assert_int_eq(res.exit_code, 7);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* A SIGTERM that arrives before the command runs ends the set-up: nothing is left behind. */
START_TEST(test_run_interrupted_during_setup)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    kill(getpid(), SIGTERM); /* pending: the run sees it as soon as it listens */
    struct rbx_spec spec;
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    spec_init(&spec, "echo never");
    ck_assert_int_lt(rbx_sandbox_run(&spec, &res, &err), 0);
    ck_assert_error(err, RBX_ERR_SANDBOX, "interrupted by Terminated during set-up");
    ck_assert_int_eq(res.exit_code, 125);
    ck_assert_str_eq(res.stdout_tail, "");
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* the child was reaped */
    sigset_t pending;
    sigpending(&pending);
    ck_assert(!sigismember(&pending, SIGTERM));
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

static Suite *sandbox_suite(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("run");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_run_output_in_tails);
    tcase_add_test(tc, test_run_holder_failing_into_the_root_says_why);
    tcase_add_test(tc, test_run_exit_codes);
    tcase_add_test(tc, test_run_pid1_ignores_its_own_kill);
    tcase_add_test(tc, test_run_is_pid_1);
    tcase_add_test(tc, test_run_hostname);
    tcase_add_test(tc, test_run_network_none_has_only_lo_up);
    tcase_add_test(tc, test_run_network_host_sees_host_sys_read_only);
    tcase_add_test(tc, test_run_env_is_exactly_the_spec_plus_home);
    tcase_add_test(tc, test_run_cwd_created_when_missing);
    tcase_add_test(tc, test_cwd_symlink_escape_stays_in_rootfs);
    tcase_add_test(tc, test_run_user_applied);
    tcase_add_test(tc, test_run_root_user_by_default);
    tcase_add_test(tc, test_run_unknown_user);
    tcase_add_test(tc, test_run_command_not_found_127);
    tcase_add_test(tc, test_run_not_executable_126);
    tcase_add_test(tc, test_run_missing_interpreter_126);
    tcase_add_test(tc, test_run_dev_is_private_and_complete);
    tcase_add_test(tc, test_run_only_stdio_fds_reach_the_command);
    tcase_add_test(tc, test_run_stdin_and_stdout_fd);
    tcase_add_test(tc, test_run_caller_with_closed_stdio);
    tcase_add_test(tc, test_run_tail_is_bounded);
    tcase_add_test(tc, test_run_overlay_write_stays_in_upper);
    tcase_add_test(tc, test_run_overlay_many_layers);
    tcase_add_test(tc, test_run_overlay_many_layers_legacy_mount);
    tcase_add_test(tc, test_run_bind_mounts);
    tcase_add_test(tc, test_mount_target_symlink_escape_stays_in_rootfs);
    tcase_add_test(tc, test_run_readonly_rootfs);
    tcase_add_test(tc, test_run_bad_spec);
    suite_add_tcase(s, tc);

    tc = tcase_create("signals");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_run_killed_by_signal_reports_128_plus_n);
    tcase_add_test(tc, test_run_sigterm_forwarded);
    tcase_add_test(tc, test_run_interrupted_during_setup);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return busybox_suite_main(argv, sandbox_suite);
}
