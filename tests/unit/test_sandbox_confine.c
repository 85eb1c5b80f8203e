/* test_sandbox_confine.c — confinement seen from inside (seccomp.c, caps.c, cgroup.c, masks in
 * mounts.c): a static probe copied into the busybox rootfs tries what a hostile image would
 * (mount, unshare, keyctl, bpf, io_uring, AF_ALG, the i386 and x32 entries, masked files,
 * /proc/sys writes, TIOCSTI, leaked fds) and must be refused; capabilities, no_new_privs,
 * rlimits, the pids limit and the OOM killer are checked the same way. */
#include "sandbox_busybox.h"

#include <pty.h>
#include <sys/capability.h>
#include <sys/resource.h>

#ifndef RBX_PROBE_PATH
#error "RBX_PROBE_PATH names the static probe (tests/unit/probe/rbx_probe.c)"
#endif

static void confine_setup(void)
{
    make_rootfs();
    _cleanup_free_ char *p = at(rootfs, "bin/probe");
    copy_file(RBX_PROBE_PATH, p, 0755);
}

/* Run the probe with `args` (space separated) and return its output. */
static char *probe(struct rbx_spec *spec, const char *args)
{
    _cleanup_free_ char *script = rbx_xasprintf("exec probe %s", args);
    free(spec->argv[2]);
    spec->argv[2] = rbx_xstrdup(script);
    struct rbx_result res;
    run_ok(spec, &res);
    ck_assert_msg(res.exit_code == 0, "probe exit %d: %s", res.exit_code, res.stderr_tail);
    char *out = rbx_xstrdup(res.stdout_tail);
    rbx_result_clear(&res);
    return out;
}

/* "name: value" of the probe's output. */
static const char *answer(const char *out, const char *name, char *buf, size_t len)
{
    _cleanup_free_ char *key = rbx_xasprintf("%s: ", name);
    const char *p = out;
    while ((p = strstr(p, key))) {
        if (p == out || p[-1] == '\n')
            break;
        p++;
    }
    ck_assert_msg(p != NULL, "no answer for %s in:\n%s", name, out);
    p += strlen(key);
    size_t n = strcspn(p, "\n");
    snprintf(buf, len, "%.*s", (int)n, p);
    return buf;
}

static void expect(const char *out, const char *name, const char *want)
{
    char buf[64];
    ck_assert_msg(strcmp(answer(out, name, buf, sizeof(buf)), want) == 0, "%s: got %s, want %s",
                  name, buf, want);
}

/* One of two answers (the kernel may lack the thing altogether). */
static void expect2(const char *out, const char *name, const char *want, const char *alt)
{
    char buf[64];
    answer(out, name, buf, sizeof(buf));
    ck_assert_msg(strcmp(buf, want) == 0 || strcmp(buf, alt) == 0, "%s: got %s, want %s or %s",
                  name, buf, want, alt);
}

static const char *const denied_by_default[] = {
    "mount",          "umount2",     "unshare-user", "unshare-mnt",      "clone-newns",
    "clone-newuser",  "setns",       "keyctl",       "add_key",          "request_key",
    "bpf",            "perf_event_open", "userfaultfd", "io_uring_setup", "kexec_load",
    "init_module",    "open_by_handle_at", "socket-vsock", "socket-alg", "personality-norandom",
    "sethostname",    "kexec_file_load", "x32-unshare", "socket-raw",   "mknod",
};

START_TEST(test_seccomp_denies_escapes_with_eperm)
{
    struct rbx_spec spec;
    spec_init(&spec, "");
    _cleanup_free_ char *args = rbx_xstrdup("");
    for (size_t i = 0; i < RBX_ARRAY_SIZE(denied_by_default); i++) {
        char *n = rbx_xasprintf("%s %s", args, denied_by_default[i]);
        free(args);
        args = n;
    }
    _cleanup_free_ char *out = probe(&spec, args);
    for (size_t i = 0; i < RBX_ARRAY_SIZE(denied_by_default); i++)
        expect(out, denied_by_default[i], "EPERM");
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_seccomp_allows_the_ordinary)
{
    struct rbx_spec spec;
    spec_init(&spec, "");
    _cleanup_free_ char *out =
        probe(&spec, "read:/proc/self/status clone-plain socket-inet personality-query clone3 "
                     "newer-syscall chroot");
    expect(out, "clone-plain", "ok");
    expect(out, "socket-inet", "ok");
    expect(out, "personality-query", "ok");
    expect(out, "chroot", "ok");
    /* clone3 and syscalls newer than the profile: ENOSYS, so libc falls back. */
    expect(out, "clone3", "ENOSYS");
    expect(out, "newer-syscall", "ENOSYS");
    expect(out, "read:/proc/self/status", "readable");
    rbx_spec_clear(&spec);
}
END_TEST

/* The i386 entry point is filtered as tightly as the 64-bit one. */
START_TEST(test_seccomp_covers_the_int80_path)
{
    struct rbx_spec spec;
    spec_init(&spec, "");
    _cleanup_free_ char *out =
        probe(&spec, "int80-getpid int80-mount int80-unshare int80-keyctl int80-newer");
    char buf[64];
    if (strcmp(answer(out, "int80-getpid", buf, sizeof(buf)), "unsupported") == 0) {
        printf("note: this kernel has no ia32 emulation; the int $0x80 probes were skipped\n");
    } else {
        expect(out, "int80-getpid", "ok");
        expect(out, "int80-mount", "EPERM");
        expect(out, "int80-unshare", "EPERM");
        expect(out, "int80-keyctl", "EPERM");
        expect(out, "int80-newer", "ENOSYS");
    }
    rbx_spec_clear(&spec);
}
END_TEST

/* Control: without the filter the kernel itself allows what the filter refused, so the EPERMs
 * above are the filter's. */
START_TEST(test_seccomp_unconfined_control)
{
    struct rbx_spec spec;
    spec_init(&spec, "");
    spec.seccomp_mode = RBX_SECCOMP_UNCONFINED;
    _cleanup_free_ char *out = probe(&spec, "keyctl personality-norandom clone3");
    expect(out, "keyctl", "ok");
    expect(out, "personality-norandom", "ok");
    expect(out, "clone3", "ok");
    rbx_spec_clear(&spec);
    _cleanup_free_ char *st = run_script("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status", 0);
    ck_assert_str_eq(st, "NoNewPrivs:\t1\nSeccomp:\t2\n");
}
END_TEST

/* A Docker JSON profile, and its errors with their JSON path. */
START_TEST(test_seccomp_docker_json_profile)
{
    _cleanup_free_ char *path = at(base, "profile.json");
    write_file(path,
               "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"socket\"], "
               "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13, \"comment\": \"test\"}]}",
               0644);
    struct rbx_spec spec;
    spec_init(&spec, "exec probe socket-inet keyctl");
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_seccomp_load_file(path, &spec.seccomp, &err), 0);
    spec.seccomp_mode = RBX_SECCOMP_PROFILE;
    struct rbx_result res;
    run_ok(&spec, &res);
    expect(res.stdout_tail, "socket-inet", "EACCES");
    expect(res.stdout_tail, "keyctl", "ok");
    ck_assert_int_eq(strncmp(res.seccomp, "profile sha256:", 15), 0);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);

    write_file(path,
               "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"uname\"], "
               "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1, "
               "\"opp\": \"SCMP_CMP_EQ\"}]}]}",
               0644);
    struct rbx_seccomp *s = NULL;
    ck_assert_int_lt(rbx_seccomp_load_file(path, &s, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "syscalls[0].args[0].opp: unknown field");
    err = rbx_error_free(err);
    write_file(path, "{\"defaultAction\": \"SCMP_ACT_NOPE\"}", 0644);
    ck_assert_int_lt(rbx_seccomp_load_file(path, &s, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "defaultAction: unknown action \"SCMP_ACT_NOPE\"");
    err = rbx_error_free(err);
    write_file(path, "{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [}", 0644);
    ck_assert_int_lt(rbx_seccomp_load_file(path, &s, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "profile.json");
    ck_assert_msg(strstr(err->message, "profile.json:2:"), "%s", err->message);
}
END_TEST

/* The compiled filter is kept on disk and reused; a changed profile is another file. */
START_TEST(test_seccomp_cache_on_disk)
{
    _cleanup_free_ char *cache = at(base, "seccomp-cache");
    struct rbx_bpf a, b;
    char desc[96];
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_seccomp_prepare(RBX_SECCOMP_DEFAULT, NULL, RBX_DEFAULT_CAPS, cache, &a,
                                         desc, sizeof(desc), &err),
                     0);
    ck_assert_str_eq(desc, "default");
    _cleanup_free_ char *file = rbx_xasprintf("%s/%s.bpf", cache, rbx_digest_hex(a.digest));
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_int_eq((size_t)st.st_size, a.len * 8);
    ck_assert_int_eq(rbx_seccomp_prepare(RBX_SECCOMP_DEFAULT, NULL, RBX_DEFAULT_CAPS, cache, &b,
                                         desc, sizeof(desc), &err),
                     0);
    ck_assert_int_eq(a.len, b.len);
    ck_assert_int_eq(memcmp(a.insns, b.insns, a.len * 8), 0);
    /* The second time by the binary's own key (no profile written out and hashed): a file of
     * its own, the same program. */
    ck_assert_str_ne(a.digest, b.digest);
    _cleanup_free_ char *alias = rbx_xasprintf("%s/%s.bpf", cache, rbx_digest_hex(b.digest));
    ck_assert_int_eq(stat(alias, &st), 0);
    rbx_bpf_clear(&b);
    /* CAP_SYS_ADMIN templates the profile: another filter, under another key. */
    ck_assert_int_eq(rbx_seccomp_prepare(RBX_SECCOMP_DEFAULT, NULL,
                                         RBX_DEFAULT_CAPS | (1ULL << 21), cache, &b, desc,
                                         sizeof(desc), &err),
                     0);
    ck_assert_str_ne(a.digest, b.digest);
    rbx_bpf_clear(&a);
    rbx_bpf_clear(&b);
}
END_TEST

START_TEST(test_masked_and_readonly_paths)
{
    struct rbx_spec spec;
    spec_init(&spec, "");
    _cleanup_free_ char *out = probe(
        &spec, "read:/proc/kcore read:/proc/keys read:/proc/timer_list read:/proc/sched_debug "
               "read:/proc/interrupts read:/proc/latency_stats read:/proc/timer_stats "
               "list:/proc/acpi list:/proc/scsi list:/proc/asound list:/sys/firmware "
               "write-sysrq write-procsys read:/proc/uptime");
    static const char *const masked[] = {"read:/proc/kcore",     "read:/proc/keys",
                                         "read:/proc/timer_list", "read:/proc/sched_debug",
                                         "read:/proc/interrupts", "read:/proc/latency_stats",
                                         "read:/proc/timer_stats"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(masked); i++)
        expect2(out, masked[i], "empty", "absent");
    expect2(out, "list:/proc/acpi", "empty", "absent");
    expect2(out, "list:/proc/scsi", "empty", "absent");
    expect2(out, "list:/proc/asound", "empty", "absent");
    expect2(out, "list:/sys/firmware", "empty", "absent");
    expect2(out, "write-sysrq", "EROFS", "ENOENT"); /* kernels without magic sysrq */
    /* Rootless, the file's owner (real root) is not mapped: refused even before EROFS. */
    if (priv == RBX_PRIV_ROOT)
        expect(out, "write-procsys", "EROFS");
    else
        expect2(out, "write-procsys", "EROFS", "EACCES");
    expect(out, "read:/proc/uptime", "readable");
    rbx_spec_clear(&spec);
}
END_TEST

static const char *status_line(const char *text, const char *key, char *buf, size_t len)
{
    const char *p = strstr(text, key);
    ck_assert_msg(p != NULL, "%s not in %s", key, text);
    p += strlen(key);
    while (*p == '\t' || *p == ' ')
        p++;
    snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
    return buf;
}

START_TEST(test_caps_are_dockers_minus_three)
{
    _cleanup_free_ char *out = run_script("grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status",
                                          0);
    char want[32], buf[64];
    snprintf(want, sizeof(want), "%016llx", (unsigned long long)RBX_DEFAULT_CAPS);
    ck_assert_str_eq(status_line(out, "CapBnd:", buf, sizeof(buf)), want);
    ck_assert_str_eq(status_line(out, "CapEff:", buf, sizeof(buf)), want);
    ck_assert_str_eq(status_line(out, "CapPrm:", buf, sizeof(buf)), want);
    ck_assert_str_eq(status_line(out, "CapInh:", buf, sizeof(buf)), "0000000000000000");
    ck_assert_str_eq(status_line(out, "CapAmb:", buf, sizeof(buf)), "0000000000000000");
    ck_assert_str_eq(status_line(out, "NoNewPrivs:", buf, sizeof(buf)), "1");
    ck_assert_str_eq(status_line(out, "Seccomp:", buf, sizeof(buf)), "2");
    /* 11 capabilities, none of NET_RAW (13), MKNOD (27), AUDIT_WRITE (29). */
    ck_assert_int_eq(__builtin_popcountll(RBX_DEFAULT_CAPS), 11);
    ck_assert(!(RBX_DEFAULT_CAPS & ((1ULL << 13) | (1ULL << 27) | (1ULL << 29))));
}
END_TEST

START_TEST(test_cap_add_and_drop)
{
    struct rbx_spec spec;
    spec_init(&spec, "");
    rbx_strv_push(&spec.cap_add, "sys_admin");
    /* With CAP_SYS_ADMIN the default profile lets mount through, as docker's does. */
    _cleanup_free_ char *out = probe(&spec, "mount chroot");
    expect(out, "mount", "ok");
    rbx_spec_clear(&spec);

    spec_init(&spec, "");
    rbx_strv_push(&spec.cap_drop, "ALL");
    _cleanup_free_ char *out2 = probe(&spec, "chroot read:/proc/self/status");
    expect(out2, "chroot", "EPERM");
    rbx_spec_clear(&spec);

    spec_init(&spec, "true");
    rbx_strv_push(&spec.cap_add, "CAP_NOPE");
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_sandbox_run(&spec, &res, &err), 0);
    ck_assert_error(err, RBX_ERR_USAGE, "--cap-add CAP_NOPE: unknown capability");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* A setuid-root file in the image does not make an ordinary user root. */
START_TEST(test_setuid_binary_gains_nothing)
{
    if (mapped_ids < 1001) {
        printf("note: uid 1000 is not mapped here; setuid test skipped\n");
        return;
    }
    _cleanup_free_ char *dir = at(rootfs, "suid");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    _cleanup_free_ char *id = at(rootfs, "suid/id");
    copy_file("/bin/busybox", id, 0755);
    ck_assert_int_eq(chmod(id, 04755), 0);
    struct rbx_spec spec;
    spec_init(&spec, "/suid/id -u; grep CapEff /proc/self/status");
    spec.user = rbx_xstrdup("app");
    struct rbx_result res;
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "1000\nCapEff:\t0000000000000000\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* A file capability in the image gives nothing either (no_new_privs). */
START_TEST(test_file_capability_gains_nothing)
{
    _cleanup_free_ char *dir = at(rootfs, "fcap");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    _cleanup_free_ char *grep = at(rootfs, "fcap/grep");
    copy_file("/bin/busybox", grep, 0755);
    _cleanup_free_ char *eff = at(rootfs, "fcap/eff");
    ck_assert_int_eq(mkdir(eff, 0755), 0);
    _cleanup_free_ char *grep_e = at(rootfs, "fcap/eff/grep");
    copy_file("/bin/busybox", grep_e, 0755);
    cap_t caps = cap_from_text("cap_sys_admin,cap_net_raw+p");
    cap_t caps_e = cap_from_text("cap_sys_admin,cap_net_raw+ep");
    ck_assert_ptr_nonnull(caps);
    int r = cap_set_file(grep, caps);
    if (r == 0)
        r = cap_set_file(grep_e, caps_e);
    cap_free(caps);
    cap_free(caps_e);
    if (r < 0) {
        printf("note: cannot set file capabilities here (%s); test skipped\n", strerror(errno));
        return;
    }
    /* Permitted-only file caps: it runs, with nothing more than the default set. */
    _cleanup_free_ char *out = run_script("/fcap/grep -E '^Cap(Prm|Eff)' /proc/self/status", 0);
    char want[128];
    snprintf(want, sizeof(want), "CapPrm:\t%016llx\nCapEff:\t%016llx\n",
             (unsigned long long)RBX_DEFAULT_CAPS, (unsigned long long)RBX_DEFAULT_CAPS);
    ck_assert_str_eq(out, want);
    /* Effective file caps it cannot have: the kernel refuses the exec outright. */
    _cleanup_free_ char *out2 = run_script("/fcap/eff/grep CapEff /proc/self/status; echo $?", 0);
    ck_assert_str_eq(out2, "126\n");
}
END_TEST

/* The caller's terminal is not the command's controlling tty: TIOCSTI cannot type into it. */
START_TEST(test_tiocsti_cannot_reach_the_callers_terminal)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(master, 0);
    ck_assert_int_eq(grantpt(master), 0);
    ck_assert_int_eq(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(slave, 0);
    struct rbx_spec spec;
    spec_init(&spec, "");
    spec.stdin_fd = slave;
    _cleanup_free_ char *out = probe(&spec, "tiocsti");
    expect2(out, "tiocsti", "EPERM", "EIO");
    close(slave);
    close(master);
    rbx_spec_clear(&spec);
}
END_TEST

/* CVE-2024-21626: a working directory through a leaked fd must not lead out. */
START_TEST(test_leaked_fd_cannot_become_the_cwd)
{
    int leaked = open(base, O_RDONLY | O_DIRECTORY); /* no O_CLOEXEC, on purpose */
    ck_assert_int_ge(leaked, 3);
    char cwd[64];
    snprintf(cwd, sizeof(cwd), "/proc/self/fd/%d", leaked);
    struct rbx_spec spec;
    spec_init(&spec, "pwd; ls");
    spec.cwd = rbx_xstrdup(cwd);
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_sandbox_run(&spec, &res, &err);
    /* Either refused outright or inside the rootfs: never the host dir. */
    ck_assert_msg(r < 0 || !strstr(res.stdout_tail, "rootfs"), "reached the host: %s",
                  res.stdout_tail);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);

    spec_init(&spec, "");
    _cleanup_free_ char *args = rbx_xasprintf("chdir:%s chdir:/proc/1/cwd/..", cwd);
    _cleanup_free_ char *out = probe(&spec, args);
    char key[80];
    snprintf(key, sizeof(key), "chdir:%s", cwd);
    expect(out, key, "ENOENT");
    close(leaked);
    rbx_spec_clear(&spec);
}
END_TEST

static void expect_symlink_refused(const char *dir)
{
    _cleanup_free_ char *p = at(rootfs, dir);
    _cleanup_free_ char *moved = rbx_xasprintf("%s.real", p);
    ck_assert_int_eq(rename(p, moved), 0);
    ck_assert_int_eq(symlink("/tmp", p), 0);
    struct rbx_spec spec;
    spec_init(&spec, "true");
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_sandbox_run(&spec, &res, &err);
    unlink(p);
    ck_assert_int_eq(rename(moved, p), 0);
    ck_assert_int_lt(r, 0);
    ck_assert_error(err, RBX_ERR_ESCAPE, "the image has a symbolic link there");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}

START_TEST(test_mount_over_image_symlink_at_proc_dev_sys_refused)
{
    expect_symlink_refused("proc");
    expect_symlink_refused("dev");
    expect_symlink_refused("sys");
}
END_TEST

START_TEST(test_init_is_out_of_the_commands_reach)
{
    struct rbx_spec spec;
    spec_init(&spec, "");
    spec.init = true;
    _cleanup_free_ char *out = probe(&spec, "read:/proc/1/exe read:/proc/1/environ "
                                            "read:/proc/1/mem");
    expect2(out, "read:/proc/1/exe", "EACCES", "EPERM");
    expect2(out, "read:/proc/1/environ", "EACCES", "EPERM");
    expect2(out, "read:/proc/1/mem", "EACCES", "EPERM");
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_rlimits)
{
    _cleanup_free_ char *def = run_script("ulimit -n", 0);
    ck_assert_str_eq(def, "1024\n");
    struct rbx_spec spec;
    spec_init(&spec, "ulimit -n; ulimit -Hn; ulimit -c");
    spec.rlimits = rbx_xcalloc(2, sizeof(*spec.rlimits));
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_rlimit_parse("nofile=100:200", &spec.rlimits[0], &err), 0);
    ck_assert_int_eq(rbx_rlimit_parse("core=0", &spec.rlimits[1], &err), 0);
    spec.n_rlimits = 2;
    struct rbx_result res;
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "100\n200\n0\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
    struct rbx_rlimit rl;
    ck_assert_int_lt(rbx_rlimit_parse("nofile=10:5", &rl, &err), 0);
    ck_assert_error(err, RBX_ERR_USAGE, "soft limit is above the hard one");
    err = rbx_error_free(err);
    ck_assert_int_lt(rbx_rlimit_parse("bogus=1", &rl, &err), 0);
    ck_assert_error(err, RBX_ERR_USAGE, "unknown limit");
}
END_TEST

START_TEST(test_fork_bomb_stops_at_the_pids_limit)
{
    struct rbx_spec spec;
    /* Counted with builtins only: at the limit, nothing more can be forked. */
    spec_init(&spec, "(i=0; while [ $i -lt 300 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; "
                     "set -- /proc/[0-9]*; echo $#");
    spec.limits.pids = 40;
    spec.timeout_ms = 20000;
    struct rbx_result res;
    run_ok(&spec, &res);
    int n = atoi(res.stdout_tail);
    ck_assert_msg(n > 5 && n <= 41, "%d processes (limit 40), %s", n, res.stderr_tail);
    ck_assert_int_eq(res.limits.pids, 40);
    if (strcmp(res.cgroup, "none") == 0)
        ck_assert_ptr_nonnull(strstr(res.limits_note, "RLIMIT_NPROC"));
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_memory_hog_is_oom_killed_and_reported)
{
    struct rbx_spec spec;
    spec_init(&spec, "exec probe alloc:512");
    spec.limits.memory_bytes = 64ULL << 20;
    struct rbx_result res;
    run_ok(&spec, &res);
    if (strcmp(res.cgroup, "none") == 0) {
        ck_assert_ptr_nonnull(strstr(res.limits_note, "--memory"));
        ck_assert_uint_eq(res.limits.memory_bytes, 0);
        printf("note: no cgroup here (%s); OOM test skipped\n", res.limits_note);
    } else {
        ck_assert_uint_eq(res.limits.memory_bytes, 64ULL << 20);
        ck_assert_int_eq(res.signal, SIGKILL);
        ck_assert(res.oom_killed);
    }
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
    /* Within the limit: no OOM. */
    spec_init(&spec, "exec probe alloc:8");
    spec.limits.memory_bytes = 64ULL << 20;
    run_ok(&spec, &res);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert(!res.oom_killed);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

static Suite *confine_suite(void)
{
    Suite *s = suite_create("sandbox_confine");
    TCase *tc = tcase_create("seccomp");
    tcase_add_unchecked_fixture(tc, confine_setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_seccomp_denies_escapes_with_eperm);
    tcase_add_test(tc, test_seccomp_allows_the_ordinary);
    tcase_add_test(tc, test_seccomp_covers_the_int80_path);
    tcase_add_test(tc, test_seccomp_unconfined_control);
    tcase_add_test(tc, test_seccomp_docker_json_profile);
    tcase_add_test(tc, test_seccomp_cache_on_disk);
    suite_add_tcase(s, tc);

    tc = tcase_create("paths_caps");
    tcase_add_unchecked_fixture(tc, confine_setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_masked_and_readonly_paths);
    tcase_add_test(tc, test_caps_are_dockers_minus_three);
    tcase_add_test(tc, test_cap_add_and_drop);
    tcase_add_test(tc, test_setuid_binary_gains_nothing);
    tcase_add_test(tc, test_file_capability_gains_nothing);
    tcase_add_test(tc, test_tiocsti_cannot_reach_the_callers_terminal);
    tcase_add_test(tc, test_leaked_fd_cannot_become_the_cwd);
    tcase_add_test(tc, test_mount_over_image_symlink_at_proc_dev_sys_refused);
    tcase_add_test(tc, test_init_is_out_of_the_commands_reach);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_unchecked_fixture(tc, confine_setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rlimits);
    tcase_add_test(tc, test_fork_bomb_stops_at_the_pids_limit);
    tcase_add_test(tc, test_memory_hog_is_oom_killed_and_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return busybox_suite_main(argv, confine_suite);
}
