/* sandbox.c — rbx_sandbox_run: compute the plan in the parent, clone the child into its new
 * namespaces and drive it through the sync protocol (id maps, rootfs, one mount row at a time,
 * the exec plan), then supervise the command. The child only applies what it is sent. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define RBX_DEFAULT_HOSTNAME "reprobox"
#define RBX_DEFAULT_TAIL_LINES 64

/* ---- the sync protocol -------------------------------------------------------------------- */

int rbx_sync_send(int sock, const struct rbx_sync_msg *m, int fd)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(*m) ? 0 : -EIO;
}

int rbx_sync_recv(int sock, struct rbx_sync_msg *m, int *fd)
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    *fd = -1;
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n != (ssize_t)sizeof(*m)) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return -EPROTO;
    }
    return 1;
}

/* ---- the plan ----------------------------------------------------------------------------- */

/* Everything the child needs, computed before clone: the child reads its copy and allocates
 * nothing. */
struct run {
    const struct rbx_spec *spec;
    struct rbx_rootfs_plan rootfs;
    struct rbx_mount_row *rows;
    size_t n_rows;
    struct rbx_idmap uid_map, gid_map; /* the child's */
    bool setgroups_deny;
    char **envp; /* spec->env plus a free slot for HOME */
    size_t n_env;
    bool env_has_home;
    const char *hostname;
    bool own_net;
    ino_t host_mntns;
    sigset_t saved_mask;
    bool pipe_was_pending;

    int sock_parent, sock_child;
    int out_r, out_w, err_r, err_w;
    int stdin_fd;
    pid_t pid;
    int pidfd, sigfd, rootfd;
};

static void run_close_fds(struct run *run)
{
    int *fds[] = {&run->sock_parent, &run->sock_child, &run->out_r, &run->out_w, &run->err_r,
                  &run->err_w,       &run->stdin_fd,   &run->pidfd, &run->sigfd, &run->rootfd};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(fds); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* ---- the child ---------------------------------------------------------------------------- */

/* Runs in the child: report which step failed and leave. The parent writes the message. */
static _Noreturn void child_fail(int sock, enum rbx_child_op op, uint32_t index, int errnum,
                                 const char *detail)
{
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_ERROR;
    m.op = op;
    m.index = index;
    m.errnum = errnum;
    if (detail) {
        size_t n = strnlen(detail, sizeof(m.detail) - 1);
        memcpy(m.detail, detail, n);
    }
    rbx_sync_send(sock, &m, -1);
    _exit(125);
}

static void child_stdio(struct run *run)
{
    int src[3] = {run->stdin_fd, run->out_w, run->err_w};
    int tmp[3];
    /* Move everything above 2 first so no dup2 overwrites a source still needed. */
    for (int i = 0; i < 3; i++) {
        tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
        if (tmp[i] < 0)
            child_fail(run->sock_child, RBX_OP_STDIO, 0, errno, NULL);
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(tmp[i], i) < 0)
            child_fail(run->sock_child, RBX_OP_STDIO, 0, errno, NULL);
        close(tmp[i]);
    }
    /* An original at 0..2 (the caller had closed its stdio) was replaced by dup2 already. */
    for (int i = 0; i < 3; i++)
        if (src[i] > 2)
            close(src[i]);
}

/* Before exec: the command gets default dispositions and the caller's signal mask, not ours. */
static void child_reset_signals(const sigset_t *mask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    sigprocmask(SIG_SETMASK, mask, NULL);
}

static int child_cloexec_from_3(void)
{
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
    /* Kernels before 5.11: mark them one by one. */
    for (int fd = 3; fd < 65536; fd++) {
        int f = fcntl(fd, F_GETFD);
        if (f >= 0 && !(f & FD_CLOEXEC) && fcntl(fd, F_SETFD, f | FD_CLOEXEC) < 0)
            return -errno;
    }
    return 0;
}

static _Noreturn void child_main(struct run *run)
{
    const struct rbx_spec *spec = run->spec;
    int sock = run->sock_child;
    struct rbx_sync_msg m;
    int fd, r;

    close(run->sock_parent);
    close(run->out_r);
    close(run->err_r);
    /* We are pid 1 of a new pid namespace: getppid() is 0, so the parent's liveness is the
     * socket: if it died before this prctl, the next recv sees EOF. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    child_stdio(run);

    if (rbx_sync_recv(sock, &m, &fd) != 1 || m.type != RBX_SYNC_MAPPED)
        _exit(125);
    r = rbx_mount_ns_make_private(run->host_mntns);
    if (r < 0)
        child_fail(sock, RBX_OP_PRIVATE, 0, -r, NULL);

    char detail[256] = "";
    int rootfd = rbx_rootfs_mount(spec, &run->rootfs, detail, sizeof(detail));
    if (rootfd < 0)
        child_fail(sock, RBX_OP_ROOTFS, 0, -rootfd, detail);
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_ROOTFS;
    if (rbx_sync_send(sock, &m, rootfd) < 0)
        _exit(125);

    for (;;) {
        r = rbx_sync_recv(sock, &m, &fd);
        if (r <= 0)
            _exit(125); /* the parent gave up or died */
        if (m.type == RBX_SYNC_PLAN)
            break;
        if ((m.type != RBX_SYNC_MOUNT && m.type != RBX_SYNC_READONLY) || m.index >= run->n_rows ||
            fd < 0)
            child_fail(sock, RBX_OP_PROTOCOL, m.index, EPROTO, NULL);
        const struct rbx_mount_row *row = &run->rows[m.index];
        if (m.type == RBX_SYNC_MOUNT) {
            r = rbx_mount_row_apply(row, fd);
            if (r < 0)
                child_fail(sock, RBX_OP_MOUNT, m.index, -r, NULL);
        } else {
            r = rbx_mount_make_readonly(fd, row->flags & MS_REC);
            if (r < 0)
                child_fail(sock, RBX_OP_READONLY, m.index, -r, NULL);
        }
        close(fd);
        uint32_t index = m.index;
        memset(&m, 0, sizeof(m));
        m.type = RBX_SYNC_DONE;
        m.index = index;
        if (rbx_sync_send(sock, &m, -1) < 0)
            _exit(125);
    }

    const struct rbx_exec_plan *plan = &m.plan;
    if (spec->readonly_rootfs && (r = rbx_rootfs_make_readonly(rootfd)) < 0)
        child_fail(sock, RBX_OP_ROOT_READONLY, 0, -r, NULL);
    r = rbx_rootfs_pivot(rootfd);
    if (r < 0)
        child_fail(sock, RBX_OP_PIVOT, 0, -r, NULL);
    close(rootfd);

    /* After pivot_root: no allocation, only system calls on what the plan holds. */
    if (sethostname(run->hostname, strlen(run->hostname)) < 0)
        child_fail(sock, RBX_OP_HOSTNAME, 0, errno, NULL);
    if (run->own_net && (r = rbx_net_loopback_up()) < 0)
        child_fail(sock, RBX_OP_LOOPBACK, 0, -r, NULL);
    if (chdir(plan->cwd) < 0)
        child_fail(sock, RBX_OP_CHDIR, 0, errno, NULL);
    /* Raw system calls: glibc's wrappers would signal every thread the parent had and wait for
     * answers that never come, since only this one was cloned. */
    if (plan->set_groups && syscall(SYS_setgroups, plan->n_groups, plan->groups) < 0)
        child_fail(sock, RBX_OP_SETGROUPS, 0, errno, NULL);
    if (syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) < 0)
        child_fail(sock, RBX_OP_SETGID, 0, errno, NULL);
    if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) < 0)
        child_fail(sock, RBX_OP_SETUID, 0, errno, NULL);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(sock, RBX_OP_NO_NEW_PRIVS, 0, errno, NULL);
    umask(022);
    if (plan->home_env[0])
        run->envp[run->n_env] = (char *)plan->home_env;
    if ((r = child_cloexec_from_3()) < 0)
        child_fail(sock, RBX_OP_CLOSE_FDS, 0, -r, NULL);
    child_reset_signals(&run->saved_mask);
    execve(plan->exec_path, spec->argv, run->envp);
    child_fail(sock, RBX_OP_EXEC, 0, errno, NULL);
}

/* ---- the parent --------------------------------------------------------------------------- */

static const char *const op_names[RBX_OP__MAX] = {
    [RBX_OP_PROTOCOL] = "sync protocol",
    [RBX_OP_STDIO] = "setting up stdin/stdout/stderr",
    [RBX_OP_PRIVATE] = "making the mount namespace private",
    [RBX_OP_ROOTFS] = "mounting the rootfs",
    [RBX_OP_MOUNT] = "mount",
    [RBX_OP_READONLY] = "read-only remount",
    [RBX_OP_ROOT_READONLY] = "making the rootfs read-only",
    [RBX_OP_PIVOT] = "pivot_root",
    [RBX_OP_HOSTNAME] = "sethostname",
    [RBX_OP_LOOPBACK] = "bringing up the loopback device",
    [RBX_OP_CHDIR] = "chdir",
    [RBX_OP_SETGROUPS] = "setgroups",
    [RBX_OP_SETGID] = "setgid",
    [RBX_OP_SETUID] = "setuid",
    [RBX_OP_NO_NEW_PRIVS] = "PR_SET_NO_NEW_PRIVS",
    [RBX_OP_CLOSE_FDS] = "marking fds close-on-exec",
    [RBX_OP_EXEC] = "exec",
};

static int child_error(struct run *run, const struct rbx_sync_msg *m, struct rbx_error **err)
{
    const char *op = m->op < RBX_OP__MAX && op_names[m->op] ? op_names[m->op] : "setup";
    int e = m->errnum > 0 ? m->errnum : EIO;
    const char *detail = m->detail[0] ? m->detail : NULL;
    if ((m->op == RBX_OP_MOUNT || m->op == RBX_OP_READONLY) && m->index < run->n_rows) {
        const struct rbx_mount_row *row = &run->rows[m->index];
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: %s %s on %s%s%s%s", op,
                                   row->source ? row->source : "", row->target,
                                   row->type ? " (" : "", row->type ? row->type : "",
                                   row->type ? ")" : "");
    }
    if (m->op == RBX_OP_ROOTFS)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: %s on %s%s%s", op,
                                   run->spec->rootfs_dir, detail ? ": " : "", detail ? detail : "");
    if (m->op == RBX_OP_PRIVATE && e == EPERM)
        return rbx_error_set(err, RBX_ERR_SANDBOX, e,
                             "sandbox: refusing to mount: the child is not in a mount namespace "
                             "of its own");
    return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: %s", op);
}

/* rbx_sync_recv, but a signal the run would forward (^C during a slow set-up) interrupts it:
 * there is no command yet to give it to. Returns like rbx_sync_recv; -EINTR when interrupted. */
static int parent_recv(struct run *run, struct rbx_sync_msg *m, int *fd, int *signo)
{
    *fd = -1;
    for (;;) {
        struct pollfd p[2] = {{.fd = run->sock_parent, .events = POLLIN},
                              {.fd = run->sigfd, .events = POLLIN}};
        int n = poll(p, run->sigfd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno != EINTR)
            return -errno;
        /* The child's news first: once it has exec'd, the signal is the command's. */
        if (n > 0 && p[0].revents)
            return rbx_sync_recv(run->sock_parent, m, fd);
        if (n > 0 && p[1].revents) {
            struct signalfd_siginfo si;
            if (read(run->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                *signo = (int)si.ssi_signo;
                return -EINTR;
            }
        }
    }
}

static int interrupted(int signo, struct rbx_error **err)
{
    return rbx_error_set(err, RBX_ERR_SANDBOX, EINTR, "sandbox: interrupted by %s during set-up",
                         strsignal(signo));
}

/* Read the child's answer. EOF before we expect it means the child died: say how. */
static int expect(struct run *run, enum rbx_sync_type want, struct rbx_sync_msg *m, int *fd,
                  struct rbx_error **err)
{
    int signo = 0;
    int r = parent_recv(run, m, fd, &signo);
    if (r == -EINTR)
        return interrupted(signo, err);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    if (r == 0) {
        int st;
        if (waitpid(run->pid, &st, 0) == run->pid) {
            run->pid = -1;
            if (WIFSIGNALED(st))
                return rbx_error_set(err, RBX_ERR_SANDBOX, ECHILD,
                                     "sandbox: the child was killed by signal %d during set-up",
                                     WTERMSIG(st));
            return rbx_error_set(err, RBX_ERR_SANDBOX, ECHILD,
                                 "sandbox: the child exited with status %d during set-up",
                                 WEXITSTATUS(st));
        }
        return rbx_error_set(err, RBX_ERR_SANDBOX, ECHILD, "sandbox: the child went away");
    }
    if (m->type == RBX_SYNC_ERROR) {
        if (*fd >= 0)
            close(*fd);
        return child_error(run, m, err);
    }
    if (m->type != want) {
        if (*fd >= 0)
            close(*fd);
        return rbx_error_set(err, RBX_ERR_SANDBOX, EPROTO,
                             "sandbox: unexpected message %u from the child", m->type);
    }
    return 0;
}

static int send_row(struct run *run, enum rbx_sync_type type, size_t index, int fd,
                    struct rbx_error **err)
{
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.index = (uint32_t)index;
    int r = rbx_sync_send(run->sock_parent, &m, fd);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    int got = -1;
    r = expect(run, RBX_SYNC_DONE, &m, &got, err);
    if (got >= 0)
        close(got);
    return r;
}

static int apply_rows(struct run *run, struct rbx_error **err)
{
    for (size_t i = 0; i < run->n_rows; i++) {
        const struct rbx_mount_row *row = &run->rows[i];
        int fd = -1;
        int r = rbx_mount_target_prepare(run->rootfd, row, &fd, err);
        if (r < 0)
            return r;
        if (fd < 0)
            continue;
        r = send_row(run, RBX_SYNC_MOUNT, i, fd, err);
        close(fd);
        if (r < 0)
            return r;
        if (rbx_mount_row_needs_readonly(row)) {
            fd = rbx_mount_target_reopen(run->rootfd, row, err);
            if (fd < 0)
                return fd;
            r = send_row(run, RBX_SYNC_READONLY, i, fd, err);
            close(fd);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* With the rootfs in view: who runs, where, and what. */
static int make_plan(struct run *run, struct rbx_exec_plan *plan, struct rbx_result *res,
                     struct rbx_error **err)
{
    const struct rbx_spec *spec = run->spec;
    struct rbx_user user;
    int r = rbx_user_resolve(run->rootfd, spec->user, &user, err);
    if (r < 0)
        return r;
    res->uid = user.uid;
    res->gid = user.gid;
    if (!rbx_idmap_contains(&run->uid_map, user.uid) ||
        !rbx_idmap_contains(&run->gid_map, user.gid))
        return rbx_error_set(err, RBX_ERR_PERMISSION, EINVAL,
                             "user %u:%u is not mapped in the user namespace, which has %llu ids "
                             "(give the user a range in /etc/subuid and /etc/subgid)",
                             (unsigned)user.uid, (unsigned)user.gid,
                             (unsigned long long)rbx_idmap_count(&run->uid_map));
    plan->uid = user.uid;
    plan->gid = user.gid;
    /* Supplementary groups the namespace cannot represent are dropped, not fatal: an image's
     * root is in a dozen groups a single-id rootless namespace does not have. */
    for (size_t i = 0; i < user.n_groups; i++)
        if (rbx_idmap_contains(&run->gid_map, user.groups[i]))
            plan->groups[plan->n_groups++] = user.groups[i];
    plan->set_groups = !run->setgroups_deny;

    const char *cwd = spec->cwd && *spec->cwd ? spec->cwd : "/";
    bool created = false;
    _cleanup_close_ int cwdfd = rbx_mkdir_p_in_root(run->rootfd, cwd, 0755, &created, err);
    if (cwdfd < 0)
        return rbx_error_wrap(err, "working directory %s", cwd);
    res->cwd_created = created;
    snprintf(plan->cwd, sizeof(plan->cwd), "%s", cwd);

    r = rbx_exec_lookup(run->rootfd, cwd, spec->argv[0], rbx_env_get(spec->env, "PATH"),
                        plan->exec_path, sizeof(plan->exec_path), err);
    if (r < 0)
        return r;
    res->exec_path = rbx_xstrdup(plan->exec_path);
    if (!run->env_has_home)
        snprintf(plan->home_env, sizeof(plan->home_env), "HOME=%s", user.home);
    return 0;
}

static int write_maps(struct run *run, struct rbx_error **err)
{
    if (run->setgroups_deny && rbx_proc_write(run->pid, "setgroups", "deny", err) < 0)
        return rbx_error_wrap(err, "sandbox");
    if (rbx_idmap_write(run->pid, "uid_map", &run->uid_map, err) < 0 ||
        rbx_idmap_write(run->pid, "gid_map", &run->gid_map, err) < 0)
        return rbx_error_wrap(err, "sandbox");
    return 0;
}

/* Drive the child from its birth to its execve. */
static int drive(struct run *run, struct rbx_result *res, struct rbx_error **err)
{
    struct rbx_sync_msg m;
    int fd = -1, r;

    r = write_maps(run, err);
    if (r < 0)
        return r;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_MAPPED;
    r = rbx_sync_send(run->sock_parent, &m, -1);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");

    r = expect(run, RBX_SYNC_ROOTFS, &m, &fd, err);
    if (r < 0)
        return r;
    if (fd < 0)
        return rbx_error_set(err, RBX_ERR_SANDBOX, EPROTO, "sandbox: no rootfs fd from the child");
    run->rootfd = fd;

    r = apply_rows(run, err);
    if (r < 0)
        return r;

    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_PLAN;
    r = make_plan(run, &m.plan, res, err);
    if (r < 0)
        return r;
    r = rbx_sync_send(run->sock_parent, &m, -1);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");

    /* The child's end is close-on-exec: EOF is the news that execve worked. */
    char exec_path[RBX_PATH_MAX + 1];
    snprintf(exec_path, sizeof(exec_path), "%s", m.plan.exec_path);
    int signo = 0;
    r = parent_recv(run, &m, &fd, &signo);
    if (r == 0)
        return 0;
    if (r == -EINTR)
        return interrupted(signo, err);
    if (fd >= 0)
        close(fd);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    if (m.type == RBX_SYNC_ERROR && m.op == RBX_OP_EXEC)
        return rbx_exec_explain(run->rootfd, run->spec->argv[0], exec_path, m.errnum, err);
    if (m.type == RBX_SYNC_ERROR)
        return child_error(run, &m, err);
    return rbx_error_set(err, RBX_ERR_SANDBOX, EPROTO, "sandbox: unexpected message %u", m.type);
}

/* Keep our own fds off 0-2: a caller that closed its stdio would otherwise have the sync socket
 * or a pipe there, where the child's dup2 of the command's stdio lands. */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return moved;
}

static int prepare(struct run *run, const struct rbx_spec *spec, struct rbx_error **err)
{
    if (!spec->argv || !spec->argv[0])
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "no command to run");
    if (spec->cwd && *spec->cwd && spec->cwd[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "working directory \"%s\" is not an absolute path", spec->cwd);
    if (spec->cwd && strlen(spec->cwd) > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "working directory too long");
    run->hostname = spec->hostname && *spec->hostname ? spec->hostname : RBX_DEFAULT_HOSTNAME;
    if (strlen(run->hostname) > 64)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "hostname \"%s\": longer than 64 bytes",
                             run->hostname);
    run->own_net = spec->network == RBX_NETWORK_NONE;

    long page = sysconf(_SC_PAGESIZE);
    int r = rbx_rootfs_plan_build(spec, page > 0 ? (size_t)page : 4096, &run->rootfs, err);
    if (r < 0)
        return r;
    r = rbx_mount_rows_build(spec, &run->rows, &run->n_rows, err);
    if (r < 0)
        return r;

    struct rbx_idmap own;
    if (rbx_idmap_read_self("uid_map", &own, err) < 0)
        return rbx_error_wrap(err, "sandbox");
    rbx_idmap_identity(&own, &run->uid_map);
    if (rbx_idmap_read_self("gid_map", &own, err) < 0)
        return rbx_error_wrap(err, "sandbox");
    rbx_idmap_identity(&own, &run->gid_map);
    if (rbx_setgroups_denied_self(&run->setgroups_deny, err) < 0)
        return rbx_error_wrap(err, "sandbox");

    run->n_env = rbx_strv_len(spec->env);
    run->envp = rbx_xcalloc(run->n_env + 2, sizeof(char *));
    for (size_t i = 0; i < run->n_env; i++)
        run->envp[i] = spec->env[i];
    run->env_has_home = rbx_env_get(spec->env, "HOME") != NULL;

    run->host_mntns = rbx_mount_ns_current();
    if (run->host_mntns == 0)
        return rbx_error_set(err, RBX_ERR_SANDBOX, ENOENT,
                             "sandbox: cannot read /proc/self/ns/mnt (is /proc mounted?)");

    int sv[2], out[2], errp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");
    run->sock_parent = above_stdio(sv[0]);
    run->sock_child = above_stdio(sv[1]);
    if (run->sock_parent < 0 || run->sock_child < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");
    if (pipe2(out, O_CLOEXEC) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "pipe");
    run->out_r = above_stdio(out[0]);
    run->out_w = above_stdio(out[1]);
    if (pipe2(errp, O_CLOEXEC) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "pipe");
    run->err_r = above_stdio(errp[0]);
    run->err_w = above_stdio(errp[1]);
    if (run->out_r < 0 || run->out_w < 0 || run->err_r < 0 || run->err_w < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "pipe");
    /* Only our read ends are non-blocking: the command's write ends stay ordinary. */
    if (fcntl(run->out_r, F_SETFL, O_NONBLOCK) < 0 || fcntl(run->err_r, F_SETFL, O_NONBLOCK) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "fcntl");
    run->stdin_fd = spec->stdin_fd >= 0 ? fcntl(spec->stdin_fd, F_DUPFD_CLOEXEC, 3)
                                        : above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (run->stdin_fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "stdin");
    return 0;
}

static void forwarded_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
}

static size_t tail_bytes(size_t lines)
{
    size_t b = lines * 1024;
    return b < 16384 ? 16384 : b > (1u << 20) ? (1u << 20) : b;
}

int rbx_sandbox_run(const struct rbx_spec *spec, struct rbx_result *res, struct rbx_error **errp)
{
    /* Our own error first: its kind decides the exit code even when the caller passes NULL. */
    _cleanup_error_ struct rbx_error *error = NULL;
    struct rbx_error **err = &error;
    memset(res, 0, sizeof(*res));
    struct run run = {.spec = spec,
                      .sock_parent = -1,
                      .sock_child = -1,
                      .out_r = -1,
                      .out_w = -1,
                      .err_r = -1,
                      .err_w = -1,
                      .stdin_fd = -1,
                      .pid = -1,
                      .pidfd = -1,
                      .sigfd = -1,
                      .rootfd = -1};
    size_t lines = spec->tail_lines ? spec->tail_lines : RBX_DEFAULT_TAIL_LINES;
    _cleanup_(rbx_tail_freep) struct rbx_tail *out_tail = rbx_tail_new(lines, tail_bytes(lines));
    _cleanup_(rbx_tail_freep) struct rbx_tail *err_tail = rbx_tail_new(lines, tail_bytes(lines));
    sigset_t fwd, block, pending;
    int r;

    res->exit_code = 125;
    r = prepare(&run, spec, err);
    if (r < 0)
        goto out;

    /* Signals for the command wait in a signalfd until it runs; SIGPIPE (our stdout closed) must
     * not kill us while output is still drained. */
    forwarded_signals(&fwd);
    block = fwd;
    sigaddset(&block, SIGPIPE);
    sigpending(&pending);
    run.pipe_was_pending = sigismember(&pending, SIGPIPE);
    sigprocmask(SIG_BLOCK, &block, &run.saved_mask);

    int flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
                CLONE_NEWCGROUP | (run.own_net ? CLONE_NEWNET : 0);
    uint64_t t0 = rbx_now_ns();
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0, NULL, NULL, 0);
    if (pid == 0)
        child_main(&run);
    if (pid < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno,
                                "sandbox: cannot create namespaces (are user namespaces "
                                "enabled?)");
        goto restore;
    }
    run.pid = pid;
    close(run.sock_child);
    close(run.out_w);
    close(run.err_w);
    close(run.stdin_fd);
    run.sock_child = run.out_w = run.err_w = run.stdin_fd = -1;
    run.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    run.sigfd = signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK);

    r = drive(&run, res, err);
    if (r < 0) {
        if (error && error->kind == RBX_ERR_EXEC_NOT_FOUND)
            res->exit_code = 127;
        else if (error &&
                 (error->kind == RBX_ERR_EXEC_DENIED || error->kind == RBX_ERR_EXEC_FORMAT))
            res->exit_code = 126;
        goto restore;
    }
    uint64_t t1 = rbx_now_ns();
    res->setup_ns = t1 - t0;

    struct rbx_supervisor sup = {
        .pid = run.pid,
        .pidfd = run.pidfd,
        .sigfd = run.sigfd,
        .out_r = run.out_r,
        .err_r = run.err_r,
        .out_fd = spec->stdout_fd,
        .err_fd = spec->stderr_fd,
        .out_tail = out_tail,
        .err_tail = err_tail,
    };
    run.out_r = run.err_r = -1; /* the supervisor closes them */
    int st = 0;
    r = rbx_supervise(&sup, &st, err);
    if (r == 0) {
        run.pid = -1;
        res->run_ns = rbx_now_ns() - t1;
        if (WIFSIGNALED(st)) {
            res->signal = WTERMSIG(st);
            res->exit_code = 128 + res->signal;
        } else {
            res->exit_code = WEXITSTATUS(st);
        }
    }
    if (sup.out_r >= 0)
        close(sup.out_r);
    if (sup.err_r >= 0)
        close(sup.err_r);

restore:
    if (run.pid > 0) {
        /* Set-up failed or supervision broke: the child must not outlive this call. */
        kill(run.pid, SIGKILL);
        while (waitpid(run.pid, NULL, 0) < 0 && errno == EINTR)
            ;
        run.pid = -1;
    }
    /* Signals that came for the command were passed on (or ended the set-up): they are spent. */
    if (run.sigfd >= 0) {
        struct signalfd_siginfo si;
        while (read(run.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            ;
    }
    run_close_fds(&run);
    if (!run.pipe_was_pending) {
        sigset_t p;
        sigemptyset(&p);
        sigaddset(&p, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&p, NULL, &zero) > 0)
            ;
    }
    sigprocmask(SIG_SETMASK, &run.saved_mask, NULL);
out:
    run_close_fds(&run);
    res->stdout_tail = rbx_xstrdup(rbx_tail_text(out_tail));
    res->stderr_tail = rbx_xstrdup(rbx_tail_text(err_tail));
    rbx_rootfs_plan_clear(&run.rootfs);
    free(run.rows);
    free(run.envp);
    if (r < 0 && errp && !*errp)
        *errp = TAKE_PTR(error);
    return r;
}
