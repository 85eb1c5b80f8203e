/* sandbox_busybox.h — what the suites that really run things share: a rootfs made at test time
 * from the host's static busybox, specs that run `sh -c` in it, and a main that skips where
 * user namespaces are missing and, for an ordinary user, re-executes through
 * rbx_privilege_setup as the reprobox binary does. */
#pragma once

#include "sandbox/sandbox-internal.h"

#include "rbx_check.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char base[64];
static char rootfs[512];
static enum rbx_privilege priv;
static unsigned mapped_ids;

static const char *const applets[] = {
    "sh",    "echo",  "id",   "ls",    "cat",  "hostname", "kill", "sleep", "env",  "pwd",
    "touch", "test",  "true", "false", "mkdir", "seq",     "readlink", "stat", "nc", "wc",
    "ps",    "grep",  "head", "yes",   "dd",   "sed",      "tr",   "cut",   "rm",   "ln",
    "chmod", "tty",   "printf", "[",   "timeout", "ip",     "mount", "umount", "tail", "unshare",
    "mknod", "chroot", "setsid", "expr", "sort", "uniq",   "cp",    "mv",   "xargs", "find"};

static inline void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static inline void copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(in >= 0, "open %s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_msg(out >= 0, "create %s: %s", to, strerror(errno));
    struct stat st;
    fstat(in, &st);
    off_t off = 0;
    while (off < st.st_size)
        ck_assert_int_gt(sendfile(out, in, &off, (size_t)(st.st_size - off)), 0);
    fchmod(out, mode);
    close(in);
    close(out);
}

static inline char *at(const char *dir, const char *rel)
{
    return rbx_xasprintf("%s/%s", dir, rel);
}

static inline void make_rootfs(void)
{
    snprintf(base, sizeof(base), "/tmp/rbx-test-sandbox-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(base));
    chmod(base, 0755);
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", base);
    static const char *const dirs[] = {"",    "bin", "etc",  "proc", "dev",
                                       "sys", "tmp", "root", "home", "home/app"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(dirs); i++) {
        _cleanup_free_ char *d = at(rootfs, dirs[i]);
        ck_assert_int_eq(mkdir(d, 0755), 0);
    }
    _cleanup_free_ char *tmp = at(rootfs, "tmp");
    chmod(tmp, 01777);
    _cleanup_free_ char *bb = at(rootfs, "bin/busybox");
    copy_file("/bin/busybox", bb, 0755);
    for (size_t i = 0; i < RBX_ARRAY_SIZE(applets); i++) {
        _cleanup_free_ char *l = rbx_xasprintf("%s/bin/%s", rootfs, applets[i]);
        ck_assert_int_eq(symlink("busybox", l), 0);
    }
    _cleanup_free_ char *pw = at(rootfs, "etc/passwd");
    write_file(pw,
               "root:x:0:0:root:/root:/bin/sh\n"
               "app:x:1000:1000:app:/home/app:/bin/sh\n",
               0644);
    _cleanup_free_ char *gr = at(rootfs, "etc/group");
    write_file(gr, "root:x:0:root\napp:x:1000:\nstaff:x:50:app\n", 0644);
    _cleanup_free_ char *noexec = at(rootfs, "bin/noexec");
    write_file(noexec, "#!/bin/sh\necho no\n", 0644);
    _cleanup_free_ char *bash = at(rootfs, "bin/needs-bash");
    write_file(bash, "#!/bin/bash\necho hi\n", 0755);
}

static inline void setup(void)
{
    make_rootfs();
}

static inline void teardown(void)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    rbx_rm_rf_at(AT_FDCWD, base, &err);
}

/* A spec running `sh -c script` in the busybox rootfs, output only in the tails. */
static inline void spec_init(struct rbx_spec *spec, const char *script)
{
    rbx_spec_init(spec);
    spec->rootfs_dir = rbx_xstrdup(rootfs);
    rbx_strv_push(&spec->argv, "sh");
    rbx_strv_push(&spec->argv, "-c");
    rbx_strv_push(&spec->argv, script);
    rbx_strv_push(&spec->env, "PATH=/bin");
}

/* Run and expect the command to have run. */
static inline void run_ok(struct rbx_spec *spec, struct rbx_result *res)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_sandbox_run(spec, res, &err);
    ck_assert_msg(r == 0, "run failed: %s (%s)", err ? err->message : "?",
                  err ? rbx_error_kind_name(err->kind) : "");
}

/* Run `script` and return its stdout; asserts exit status `want`. */
static inline char *run_script(const char *script, int want)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, script);
    run_ok(&spec, &res);
    ck_assert_msg(res.exit_code == want, "exit %d, want %d; stdout: %s; stderr: %s",
                  res.exit_code, want, res.stdout_tail, res.stderr_tail);
    char *out = rbx_xstrdup(res.stdout_tail);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
    return out;
}

/* Whether this machine lets us make the namespaces a run needs. */
static inline bool namespaces_available(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC) < 0
                  ? 1
                  : 0);
    int st;
    return p >= 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The main of a suite that runs things: skip (77) without busybox or user namespaces. */
static inline int busybox_suite_main(char **argv, Suite *(*suite)(void))
{
    _cleanup_error_ struct rbx_error *err = NULL;
    if (access("/bin/busybox", X_OK) < 0) {
        printf("skip: /bin/busybox (busybox-static) is not installed\n");
        return 77;
    }
    if (!namespaces_available()) {
        printf("skip: user namespaces are not available here\n");
        return 77;
    }
    /* As an ordinary user this re-executes the test inside a user namespace, as reprobox does. */
    if (rbx_privilege_setup(argv, &priv, &mapped_ids, &err) < 0) {
        printf("skip: %s\n", err->message);
        return 77;
    }
    printf("privilege: %s, %u ids mapped\n", priv == RBX_PRIV_ROOT ? "root" : "rootless",
           mapped_ids);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
