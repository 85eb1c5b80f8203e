/* supervise.c — the parent while commands run: copy every live process's stdout and stderr
 * where the caller wants them, into capped log files and into bounded tails; enforce timeouts
 * (SIGTERM, then SIGKILL after the grace); pass signals on; reap. One loop serves every live
 * process, so a detached service never blocks on a full pipe while a step is waited for. */
#include "sandbox/sandbox-internal.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* Processes that still run or still have output to drain. One thread drives them all. */
static struct rbx_process *live;

void rbx_supervise_add(struct rbx_process *p)
{
    p->next_live = live;
    live = p;
}

void rbx_supervise_remove(struct rbx_process *p)
{
    struct rbx_process **pp = &live;
    while (*pp && *pp != p)
        pp = &(*pp)->next_live;
    if (*pp)
        *pp = p->next_live;
    p->next_live = NULL;
}

static bool process_done(const struct rbx_process *p)
{
    return p->exited && p->src[0] < 0 && p->src[1] < 0;
}

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

/* The log keeps the first log_max bytes, then one line saying the rest was cut. */
static void log_write(struct rbx_process *p, int i, const char *buf, size_t n)
{
    if (p->log[i] < 0 || p->log_truncated[i])
        return;
    uint64_t room = p->log_max - p->log_written[i];
    size_t take = n < room ? n : (size_t)room;
    int fd = p->log[i];
    relay_write(&fd, buf, take);
    p->log_written[i] += take;
    if (take < n) {
        char marker[128];
        int k = snprintf(marker, sizeof(marker),
                         "\n[reprobox: log truncated after %llu bytes; see the report for the "
                         "tail]\n",
                         (unsigned long long)p->log_max);
        relay_write(&fd, marker, (size_t)k);
        p->log_truncated[i] = true;
    }
}

/* 1: relayed some data, 0: the stream is done (and closed), -EAGAIN: nothing to read now. */
static int relay_once(struct rbx_process *p, int i)
{
    char buf[65536];
    ssize_t n = read(p->src[i], buf, sizeof(buf));
    if (n > 0) {
        rbx_tail_feed(p->tail[i], buf, (size_t)n);
        log_write(p, i, buf, (size_t)n);
        relay_write(&p->dst[i], buf, (size_t)n);
        p->t_last_output = rbx_now_ns();
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return -EAGAIN;
    /* EOF, or EIO from a pty whose last slave is closed. */
    close(p->src[i]);
    p->src[i] = -1;
    return 0;
}

/* With a pty, what the caller types goes to the command. */
static void relay_stdin(struct rbx_process *p)
{
    char buf[4096];
    ssize_t n = read(p->tty_in, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        p->tty_in = -1;
        return;
    }
    if (p->src[0] >= 0) {
        int fd = p->src[0];
        relay_write(&fd, buf, (size_t)n);
    }
}

void rbx_process_begin_stop(struct rbx_process *p, enum rbx_stop_reason reason, uint64_t grace_ns)
{
    if (p->exited || p->term_sent)
        return;
    if (p->stop_reason == RBX_STOP_NONE)
        p->stop_reason = reason;
    p->term_sent = true;
    p->kill_at = rbx_now_ns() + grace_ns;
    kill(p->pid, SIGTERM);
}

/* Deadlines that passed act now; returns the ms until the next one (-1: none). */
static int run_timers(uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (struct rbx_process *p = live; p; p = p->next_live) {
        if (p->exited)
            continue;
        if (!p->term_sent && p->timeout_ns) {
            uint64_t at = p->t_exec + p->timeout_ns;
            if (now >= at)
                rbx_process_begin_stop(p, RBX_STOP_TIMEOUT, p->grace_ns);
            else if (at < next)
                next = at;
        }
        if (!p->term_sent && p->idle_ns) {
            uint64_t at = p->t_last_output + p->idle_ns;
            if (now >= at)
                rbx_process_begin_stop(p, RBX_STOP_IDLE, p->grace_ns);
            else if (at < next)
                next = at;
        }
        if (p->term_sent && !p->kill_sent) {
            if (now >= p->kill_at) {
                /* pid 1 gone: the kernel kills the rest of its pid namespace. */
                kill(p->pid, SIGKILL);
                p->kill_sent = true;
                p->killed_after_grace = true;
            } else if (p->kill_at < next) {
                next = p->kill_at;
            }
        }
    }
    if (next == UINT64_MAX)
        return -1;
    uint64_t ms = (next - now + 999999) / 1000000;
    return ms > 60000 ? 60000 : (int)ms;
}

static int reap(struct rbx_process *p, struct rbx_error **err)
{
    int st;
    pid_t w = waitpid(p->pid, &st, WNOHANG);
    if (w == p->pid) {
        p->exited = true;
        p->wstatus = st;
        p->t_exit = rbx_now_ns();
        /* Everything in its pid namespace is gone: what is left is in the pipes. Stop at
         * EAGAIN rather than EOF in case something outside still holds a write end. */
        for (int i = 0; i < 2; i++) {
            while (p->src[i] >= 0 && relay_once(p, i) == 1)
                ;
            if (p->src[i] >= 0) {
                close(p->src[i]);
                p->src[i] = -1;
            }
        }
        return 0;
    }
    if (w < 0 && errno != EINTR)
        return rbx_error_set_errno(err, RBX_ERR_INTERNAL, errno, "waitpid");
    return 0;
}

enum { SLOT_SRC0, SLOT_SRC1, SLOT_PID, SLOT_STDIN, SLOT_SIG };
#define MAX_SLOTS 256

int rbx_supervise(struct rbx_process *target, bool once, int sigfd, struct rbx_error **err)
{
    while (!process_done(target)) {
        struct pollfd pfd[MAX_SLOTS];
        struct rbx_process *who[MAX_SLOTS];
        int kind[MAX_SLOTS];
        nfds_t n = 0;
        bool need_tick = false;
        for (struct rbx_process *p = live; p && n + 4 < MAX_SLOTS - 1; p = p->next_live) {
            for (int i = 0; i < 2; i++) {
                if (p->src[i] >= 0) {
                    pfd[n] = (struct pollfd){.fd = p->src[i], .events = POLLIN};
                    who[n] = p;
                    kind[n++] = SLOT_SRC0 + i;
                }
            }
            if (!p->exited && p->pidfd >= 0) {
                pfd[n] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
                who[n] = p;
                kind[n++] = SLOT_PID;
            } else if (!p->exited) {
                need_tick = true; /* no pidfd: look every 50 ms */
            }
            if (p->tty_in >= 0 && !p->exited) {
                pfd[n] = (struct pollfd){.fd = p->tty_in, .events = POLLIN};
                who[n] = p;
                kind[n++] = SLOT_STDIN;
            }
        }
        if (sigfd >= 0) {
            pfd[n] = (struct pollfd){.fd = sigfd, .events = POLLIN};
            who[n] = target;
            kind[n++] = SLOT_SIG;
        }
        int timeout = run_timers(rbx_now_ns());
        if (need_tick && (timeout < 0 || timeout > 50))
            timeout = 50;
        if (once)
            timeout = 0;
        int r = poll(pfd, n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_INTERNAL, errno, "poll");
        }
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            struct rbx_process *p = who[i];
            switch (kind[i]) {
            case SLOT_SRC0:
            case SLOT_SRC1:
                if (p->src[kind[i]] >= 0)
                    relay_once(p, kind[i]);
                break;
            case SLOT_PID: break;
            case SLOT_STDIN:
                if (pfd[i].revents & POLLIN)
                    relay_stdin(p);
                else
                    p->tty_in = -1;
                break;
            case SLOT_SIG: {
                struct signalfd_siginfo si;
                /* The command runs in a session of its own: even a terminal's ^C reaches it
                 * only through us. */
                while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                    if (!target->exited)
                        kill(target->pid, (int)si.ssi_signo);
                break;
            }
            }
        }
        /* Reap whoever ended (pidfd readable, or the 50 ms look without one). */
        for (struct rbx_process *p = live; p; p = p->next_live) {
            if (p->exited)
                continue;
            r = reap(p, err);
            if (r < 0)
                return r;
        }
        run_timers(rbx_now_ns());
        if (once)
            break;
    }
    return 0;
}

int rbx_process_wait(struct rbx_process *p, struct rbx_result *res, struct rbx_error **err)
{
    memset(res, 0, sizeof(*res));
    int r = rbx_supervise(p, false, -1, err);
    if (r < 0)
        return r;
    rbx_process_result(p, res);
    return 0;
}

bool rbx_process_running(struct rbx_process *p)
{
    _cleanup_error_ struct rbx_error *e = NULL;
    rbx_supervise(p, true, -1, &e);
    return !p->exited;
}

int rbx_process_stop(struct rbx_process *p, uint64_t grace_ms, struct rbx_result *res,
                     struct rbx_error **err)
{
    rbx_supervise(p, true, -1, err);
    if (!p->exited)
        rbx_process_begin_stop(p, RBX_STOP_REQUESTED, grace_ms * 1000000ULL);
    return rbx_process_wait(p, res, err);
}
