/* launch.c — starting a process inside namespaces that already exist (a pod's, a container's):
 * a short-lived launcher joins the cgroup and the namespaces, unshares what must be new and
 * clones the target as reprobox's own child, so reprobox waits for it like for any child. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* Runs in the launcher, which shares reprobox's memory (vfork: reprobox waits until it exits)
 * on a stack of its own: only system calls, nothing written but its own stack. */
static _Noreturn void launcher_main(const struct rbx_launch *l, int parent_sock, int pid_pipe,
                                    void (*fn)(void *), void *arg)
{
    int sock = l->sock;
    /* Only reprobox may hold its end: its EOF is how the children learn it died. */
    close(parent_sock);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (rbx_child_parent_gone(sock))
        _exit(125);
    /* Neither the launcher nor a parked holder keeps the caller's terminal or pipes open. */
    if (l->devnull >= 0)
        for (int i = 0; i < 3; i++)
            if (dup2(l->devnull, i) < 0)
                rbx_child_fail(sock, RBX_OP_STDIO, 0, errno, NULL);
    for (size_t i = 0; i < l->n_cgroup_procs; i++)
        if (write(l->cgroup_procs[i], "0", 1) != 1)
            rbx_child_fail(sock, RBX_OP_CGROUP, 0, errno, NULL);
    /* Everything but the user namespace first: we are still its owner's root, so we may join
     * the pod's namespaces; once inside the user namespace, the host's would be out of reach. */
    static const int types[] = {CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC,
                                CLONE_NEWCGROUP, CLONE_NEWNS, CLONE_NEWUSER};
    const int fds[] = {l->ns_net, l->ns_uts, l->ns_ipc, l->ns_cgroup, l->ns_mnt, l->ns_user};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(types); i++)
        if (fds[i] >= 0 && setns(fds[i], types[i]) < 0)
            rbx_child_fail(sock, RBX_OP_SETNS, (uint32_t)i, errno, NULL);
    if (l->unshare_flags && unshare(l->unshare_flags) < 0)
        rbx_child_fail(sock, RBX_OP_UNSHARE, 0, errno, NULL);
    /* CLONE_PARENT: the target is reprobox's child, first of the new pid namespace. */
    pid_t pid = rbx_clone(CLONE_PARENT);
    if (pid < 0)
        rbx_child_fail(sock, RBX_OP_CLONE, 0, errno, NULL);
    if (pid == 0) {
        close(pid_pipe);
        fn(arg);
        _exit(125);
    }
    /* Its own channel: the target may already talk on the sync socket. */
    int32_t v = pid;
    if (write(pid_pipe, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
        kill(pid, SIGKILL);
        _exit(125);
    }
    _exit(0);
}

struct launcher_args {
    const struct rbx_launch *l;
    int parent_sock, pid_w;
    void (*fn)(void *);
    void *arg;
};

static int launcher_entry(void *p)
{
    const struct launcher_args *a = p;
    launcher_main(a->l, a->parent_sock, a->pid_w, a->fn, a->arg);
}

#if defined(__SANITIZE_ADDRESS__)
#define RBX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RBX_ASAN 1
#endif
#endif
#ifndef RBX_ASAN
#define RBX_ASAN 0
#endif

/* The launcher's stack; the target starts on its own copy of it (and keeps it), so it must hold
 * the target's set-up too. Sanitizers need more. */
#define LAUNCH_STACK (1024 * 1024)

int rbx_launch(const struct rbx_launch *l, int parent_sock, int sigfd, void (*fn)(void *),
               void *arg, pid_t *target, struct rbx_error **err)
{
    *target = -1;
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: pipe");
    _cleanup_close_ int pid_r = rbx_fd_above_stdio(pp[0]);
    _cleanup_close_ int pid_w = rbx_fd_above_stdio(pp[1]);
    if (pid_r < 0 || pid_w < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: pipe");
    struct launcher_args la = {l, parent_sock, pid_w, fn, arg};
#if RBX_ASAN
    /* AddressSanitizer cannot follow a switch to another stack: an ordinary fork there. */
    pid_t launcher = rbx_clone(0);
    if (launcher == 0)
        launcher_entry(&la);
    int clone_errno = errno;
#else
    /* vfork semantics: no copy of our page tables for a process that lives a few system calls. */
    void *stack = mmap(NULL, LAUNCH_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: launcher stack");
    pid_t launcher = clone(launcher_entry, (char *)stack + LAUNCH_STACK,
                           CLONE_VM | CLONE_VFORK | SIGCHLD, &la);
    int clone_errno = errno;
    munmap(stack, LAUNCH_STACK);
#endif
    if (launcher < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, clone_errno, "sandbox: fork");
    close(TAKE_FD(pid_w));

    for (;;) {
        struct pollfd p[2] = {{.fd = pid_r, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
        int n = poll(p, sigfd >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            rbx_kill_and_reap(&launcher);
            return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "sandbox: poll");
        }
        if (p[0].revents)
            break;
        if (n > 0 && p[1].revents) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                rbx_kill_and_reap(&launcher);
                return rbx_error_set(err, RBX_ERR_SANDBOX, EINTR,
                                     "sandbox: interrupted by %s during set-up",
                                     strsignal((int)si.ssi_signo));
            }
        }
    }
    int32_t v = 0;
    ssize_t got = read(pid_r, &v, sizeof(v));
    /* The launcher exits right after: reap it. */
    int st = 0;
    while (waitpid(launcher, &st, 0) < 0 && errno == EINTR)
        ;
    if (got == (ssize_t)sizeof(v) && v > 0) {
        *target = v;
        return 0;
    }
    /* No pid: the launcher said why on the sync socket, or died. */
    struct rbx_sync_msg m;
    int fd = -1;
    ssize_t n = recv(parent_sock, &m, sizeof(m), MSG_DONTWAIT | MSG_PEEK);
    if (n == (ssize_t)sizeof(m)) {
        pid_t none = -1;
        int r = rbx_parent_expect(parent_sock, -1, &none, RBX_SYNC_ERROR, &m, &fd, NULL, 0, NULL,
                                  err);
        if (fd >= 0)
            close(fd);
        if (r < 0)
            return r;
    }
    if (WIFSIGNALED(st))
        return rbx_error_set(err, RBX_ERR_SANDBOX, ECHILD,
                             "sandbox: the launcher was killed by signal %d", WTERMSIG(st));
    return rbx_error_set(err, RBX_ERR_SANDBOX, ECHILD,
                         "sandbox: the launcher exited with status %d", WEXITSTATUS(st));
}
