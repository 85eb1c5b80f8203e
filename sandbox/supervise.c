/* supervise.c — the parent while the command runs: copy its stdout and stderr where the caller
 * wants them while keeping a bounded tail of each, pass signals on, and wait for it. */
#include "sandbox/sandbox-internal.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* Copy to the caller's fd; a destination that fails (a closed pipe) stops being written to but
 * the command's output is still drained and kept in the tail. */
static void relay_write(int *dst, const char *buf, size_t n)
{
    while (*dst >= 0 && n > 0) {
        ssize_t w = write(*dst, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = *dst, .events = POLLOUT};
                poll(&p, 1, -1);
                continue;
            }
            *dst = -1;
            return;
        }
        buf += w;
        n -= (size_t)w;
    }
}

/* 1: relayed some data, 0: the pipe is done (and closed), -EAGAIN: nothing to read now. */
static int relay_once(int *src, int *dst, struct rbx_tail *tail)
{
    char buf[65536];
    ssize_t n = read(*src, buf, sizeof(buf));
    if (n > 0) {
        rbx_tail_feed(tail, buf, (size_t)n);
        relay_write(dst, buf, (size_t)n);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -EAGAIN;
    close(*src);
    *src = -1;
    return 0;
}

static void forward_signals(struct rbx_supervisor *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        if (rbx_signal_should_forward(&si))
            kill(s->pid, (int)si.ssi_signo);
}

int rbx_supervise(struct rbx_supervisor *s, int *wstatus, struct rbx_error **err)
{
    bool exited = false;
    int *srcs[2] = {&s->out_r, &s->err_r};
    int *dsts[2] = {&s->out_fd, &s->err_fd};
    struct rbx_tail *tails[2] = {s->out_tail, s->err_tail};

    while (!exited) {
        struct pollfd pfd[4];
        int idx[4];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++) {
            if (*srcs[i] >= 0) {
                pfd[n] = (struct pollfd){.fd = *srcs[i], .events = POLLIN};
                idx[n++] = i;
            }
        }
        if (s->pidfd >= 0) {
            pfd[n] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
            idx[n++] = 2;
        }
        if (s->sigfd >= 0) {
            pfd[n] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
            idx[n++] = 3;
        }
        /* Without a pidfd, look at the child every 50ms. */
        int r = poll(pfd, n, s->pidfd >= 0 ? -1 : 50);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_INTERNAL, errno, "poll");
        }
        bool check_child = s->pidfd < 0;
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (idx[i] < 2)
                relay_once(srcs[idx[i]], dsts[idx[i]], tails[idx[i]]);
            else if (idx[i] == 2)
                check_child = true;
            else
                forward_signals(s);
        }
        if (check_child) {
            pid_t w = waitpid(s->pid, wstatus, WNOHANG);
            if (w == s->pid)
                exited = true;
            else if (w < 0 && errno != EINTR)
                return rbx_error_set_errno(err, RBX_ERR_INTERNAL, errno, "waitpid");
        }
    }
    /* The command and everything in its pid namespace are gone: what is left is in the pipes.
     * Stop at EAGAIN rather than EOF in case something outside still holds a write end. */
    for (int i = 0; i < 2; i++) {
        while (*srcs[i] >= 0 && relay_once(srcs[i], dsts[i], tails[i]) == 1)
            ;
        if (*srcs[i] >= 0) {
            close(*srcs[i]);
            *srcs[i] = -1;
        }
    }
    return 0;
}
