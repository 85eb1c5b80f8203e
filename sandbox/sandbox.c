/* sandbox.c — what every part of sandbox/ shares to talk with its children (the sync protocol,
 * child errors turned into rbx_errors, raw clone), and rbx_sandbox_run: one container, one
 * process, waited for, with the caller's signals passed on. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* ---- the sync protocol -------------------------------------------------------------------- */

int rbx_sync_sendv(int sock, const struct rbx_sync_msg *m, const int *fds, size_t n)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int) * RBX_SYNC_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > RBX_SYNC_MAX_FDS)
        return -E2BIG;
    if (n > 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    ssize_t w;
    do
        w = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    return w == (ssize_t)sizeof(*m) ? 0 : -EIO;
}

int rbx_sync_send(int sock, const struct rbx_sync_msg *m, int fd)
{
    return rbx_sync_sendv(sock, m, &fd, fd >= 0 ? 1 : 0);
}

int rbx_sync_recvv(int sock, struct rbx_sync_msg *m, int *fds, size_t max, size_t *n_out)
{
    struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
    union {
        char buf[CMSG_SPACE(sizeof(int) * RBX_SYNC_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    *n_out = 0;
    ssize_t n;
    bool reset = false;
    for (;;) {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n >= 0 || (errno != EINTR && (errno != ECONNRESET || reset)))
            break;
        /* ECONNRESET: the peer closed with a message of ours unread. The kernel says so once;
         * what it sent before (its error, say) is still queued behind it. */
        reset |= errno == ECONNRESET;
    }
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    size_t got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (got < max)
                fds[got++] = fd;
            else
                close(fd);
        }
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n != (ssize_t)sizeof(*m)) {
        for (size_t i = 0; i < got; i++)
            close(fds[i]);
        return -EPROTO;
    }
    *n_out = got;
    return 1;
}

int rbx_sync_recv(int sock, struct rbx_sync_msg *m, int *fd)
{
    size_t n = 0;
    *fd = -1;
    int r = rbx_sync_recvv(sock, m, fd, 1, &n);
    if (n == 0)
        *fd = -1;
    return r;
}

_Noreturn void rbx_child_fail(int sock, enum rbx_child_op op, uint32_t index, int errnum,
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

bool rbx_child_parent_gone(int sock)
{
    /* The parent never writes before the child has reported: readable means EOF. */
    struct pollfd p = {.fd = sock, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

int rbx_close_fds_except(int keep)
{
    if (syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) == 0 &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    /* Kernels before 5.9. */
    for (int fd = 3; fd < 65536; fd++)
        if (fd != keep)
            close(fd);
    return 0;
}

pid_t rbx_clone(unsigned long flags)
{
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
}

void rbx_kill_and_reap(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
        ;
    *pid = -1;
}

int rbx_fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return moved;
}

static const char *const op_names[RBX_OP__MAX] = {
    [RBX_OP_PROTOCOL] = "sync protocol",
    [RBX_OP_STDIO] = "setting up stdin/stdout/stderr",
    [RBX_OP_PRIVATE] = "making the mount namespace private",
    [RBX_OP_ROOTFS] = "mounting the rootfs",
    [RBX_OP_OVERLAY] = "mounting the overlay rootfs",
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
    [RBX_OP_CLOSE_FDS] = "closing inherited fds",
    [RBX_OP_EXEC] = "exec",
    [RBX_OP_CGROUP] = "joining the cgroup",
    [RBX_OP_SETNS] = "joining the namespaces",
    [RBX_OP_UNSHARE] = "creating the namespaces",
    [RBX_OP_CLONE] = "starting the process",
    [RBX_OP_PROC] = "mounting /proc",
    [RBX_OP_MASK] = "masking",
    [RBX_OP_RLIMIT] = "setrlimit",
    [RBX_OP_CAPS] = "setting capabilities",
    [RBX_OP_SECCOMP] = "installing the seccomp filter",
    [RBX_OP_TTY] = "setting the controlling terminal",
    [RBX_OP_INIT] = "starting the command under init",
};

int rbx_child_error(const struct rbx_sync_msg *m, const struct rbx_mount_row *rows, size_t n_rows,
                    const char *rootfs_dir, struct rbx_error **err)
{
    const char *op = m->op < RBX_OP__MAX && op_names[m->op] ? op_names[m->op] : "setup";
    int e = m->errnum > 0 ? m->errnum : EIO;
    const char *detail = m->detail[0] ? m->detail : NULL;
    if ((m->op == RBX_OP_MOUNT || m->op == RBX_OP_READONLY) && rows && m->index < n_rows) {
        const struct rbx_mount_row *row = &rows[m->index];
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: %s %s on %s%s%s%s", op,
                                   row->source ? row->source : "", row->target,
                                   row->type ? " (" : "", row->type ? row->type : "",
                                   row->type ? ")" : "");
    }
    if (m->op == RBX_OP_OVERLAY && (e == EINVAL || e == EPERM || e == ENODEV || e == EOPNOTSUPP))
        /* The kernel's own refusal of overlayfs here: the caller may go flat. */
        return rbx_error_set_errno(err, RBX_ERR_OVERLAY, e, "sandbox: %s on %s%s%s", op,
                                   rootfs_dir ? rootfs_dir : "", detail ? ": " : "", detail ? detail : "");
    if (m->op == RBX_OP_ROOTFS || m->op == RBX_OP_OVERLAY)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: %s on %s%s%s", op,
                                   rootfs_dir ? rootfs_dir : "", detail ? ": " : "",
                                   detail ? detail : "");
    if (m->op == RBX_OP_PRIVATE && e == EPERM)
        return rbx_error_set(err, RBX_ERR_SANDBOX, e,
                             "sandbox: refusing to mount: the child is not in a mount namespace "
                             "of its own");
    if (detail)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: %s %s", op, detail);
    return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: %s", op);
}

int rbx_parent_recv(int sock, int sigfd, struct rbx_sync_msg *m, int *fd, int *signo)
{
    *fd = -1;
    for (;;) {
        struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
        int n = poll(p, sigfd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno != EINTR)
            return -errno;
        /* The child's news first: once it has exec'd, the signal is the command's. */
        if (n > 0 && p[0].revents)
            return rbx_sync_recv(sock, m, fd);
        if (n > 0 && p[1].revents) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                *signo = (int)si.ssi_signo;
                return -EINTR;
            }
        }
    }
}

int rbx_parent_expect(int sock, int sigfd, pid_t *pid, enum rbx_sync_type want,
                      struct rbx_sync_msg *m, int *fd, const struct rbx_mount_row *rows,
                      size_t n_rows, const char *rootfs_dir, struct rbx_error **err)
{
    int signo = 0;
    int r = rbx_parent_recv(sock, sigfd, m, fd, &signo);
    if (r == -EINTR)
        return rbx_error_set(err, RBX_ERR_SANDBOX, EINTR,
                             "sandbox: interrupted by %s during set-up", strsignal(signo));
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    if (r == 0) {
        int st;
        if (pid && *pid > 0 && waitpid(*pid, &st, 0) == *pid) {
            *pid = -1;
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
        *fd = -1;
        return rbx_child_error(m, rows, n_rows, rootfs_dir, err);
    }
    if (m->type != want) {
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return rbx_error_set(err, RBX_ERR_SANDBOX, EPROTO,
                             "sandbox: unexpected message %u from the child", m->type);
    }
    return 0;
}

/* ---- one run ------------------------------------------------------------------------------ */

static void forwarded_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGQUIT);
}

static int exit_code_for(const struct rbx_error *e)
{
    if (!e)
        return 125;
    switch (e->kind) {
    case RBX_ERR_EXEC_NOT_FOUND: return 127;
    case RBX_ERR_EXEC_DENIED:
    case RBX_ERR_EXEC_FORMAT: return 126;
    default: return 125;
    }
}

int rbx_sandbox_run(const struct rbx_spec *spec, struct rbx_result *res, struct rbx_error **errp)
{
    /* Our own error first: its kind decides the exit code even when the caller passes NULL. */
    _cleanup_error_ struct rbx_error *error = NULL;
    struct rbx_error **err = &error;
    memset(res, 0, sizeof(*res));
    res->exit_code = 125;

    /* Signals for the command wait in a signalfd until it runs; SIGPIPE (our stdout closed) must
     * not kill us while output is still drained. */
    sigset_t fwd, block, pending, saved;
    forwarded_signals(&fwd);
    block = fwd;
    sigaddset(&block, SIGPIPE);
    sigpending(&pending);
    bool pipe_was_pending = sigismember(&pending, SIGPIPE);
    sigprocmask(SIG_BLOCK, &block, &saved);
    int sigfd = rbx_fd_above_stdio(signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK));

    struct rbx_container *c = NULL;
    struct rbx_process *p = NULL;
    uint64_t t0 = rbx_now_ns();
    int r = rbx_spawn_sole(spec, sigfd, &c, &p, res, err);
    if (r == 0) {
        res->setup_ns = p->t_exec - t0;
        r = rbx_supervise(p, false, sigfd, err);
        if (r == 0) {
            uint64_t setup = res->setup_ns;
            rbx_result_clear(res);
            rbx_process_result(p, res);
            res->setup_ns = setup;
        }
    }
    if (r < 0)
        res->exit_code = exit_code_for(error);
    if (!res->stdout_tail)
        res->stdout_tail = rbx_xstrdup("");
    if (!res->stderr_tail)
        res->stderr_tail = rbx_xstrdup("");
    p = rbx_process_free(p);
    c = rbx_container_free(c);

    /* Signals that came for the command were passed on (or ended the set-up): they are spent. */
    if (sigfd >= 0) {
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
            ;
        close(sigfd);
    }
    if (!pipe_was_pending) {
        sigset_t ps;
        sigemptyset(&ps);
        sigaddset(&ps, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&ps, NULL, &zero) > 0)
            ;
    }
    sigprocmask(SIG_SETMASK, &saved, NULL);
    if (r < 0 && errp && !*errp)
        *errp = TAKE_PTR(error);
    return r;
}
