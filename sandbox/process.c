/* process.c — spawning a command into a container: the parent decides everything with the
 * rootfs in view (user, groups, working directory, executable, capabilities, rlimits, the
 * seccomp filter, stdio), then a launcher joins the container's namespaces and starts the
 * process as pid 1 of a pid namespace of its own, over a fresh /proc. The process only applies
 * the plan; seccomp goes last, right before execve. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>


#define RBX_DEFAULT_TAIL_LINES 64
#define RBX_DEFAULT_STOP_MS 10000
#define RBX_DEFAULT_LOG_MAX (64ULL << 20)

/* Everything the process needs, computed before it exists. It reads its copy (a fork of ours),
 * allocates nothing and makes only system calls. */
struct plan {
    uint32_t uid, gid, n_groups;
    uint32_t groups[RBX_MAX_GROUPS];
    bool set_groups;
    char exec_path[RBX_PATH_MAX + 1];
    char cwd[RBX_PATH_MAX + 1];
    char home_env[sizeof("HOME=") + 256];
    char *const *argv;
    char **envp;
    uint64_t caps;
    unsigned cap_last;
    struct rbx_rlimit rlimits[RBX_MAX_RLIMITS];
    size_t n_rlimits;
    struct rbx_bpf bpf; /* len 0: unconfined */
    bool init, tty;
    int stdio[3];
    int sock;
    ino_t host_mntns, joined_mntns;
};

/* ---- the process ----------------------------------------------------------------------------- */

static void child_stdio(int sock, const int stdio[3])
{
    int tmp[3];
    /* Move everything above 2 first so no dup2 overwrites a source still needed. */
    for (int i = 0; i < 3; i++) {
        tmp[i] = fcntl(stdio[i], F_DUPFD_CLOEXEC, 3);
        if (tmp[i] < 0)
            rbx_child_fail(sock, RBX_OP_STDIO, 0, errno, NULL);
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(tmp[i], i) < 0)
            rbx_child_fail(sock, RBX_OP_STDIO, 0, errno, NULL);
        close(tmp[i]);
    }
}

/* The command gets default dispositions and an empty signal mask, as under docker. */
static void child_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* tini's job: reap every orphan, pass signals to the command, leave with its status. Runs in
 * pid 1 after the seccomp filter is on. */
static _Noreturn void init_loop(pid_t child, const sigset_t *all)
{
    int sfd = signalfd(-1, all, SFD_CLOEXEC);
    for (;;) {
        struct signalfd_siginfo si;
        if (sfd < 0 || read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
            /* No signalfd: still reap, never forward. */
            int st;
            pid_t w = wait(&st);
            if (w == child)
                _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            if (w < 0 && errno == ECHILD)
                _exit(125);
            continue;
        }
        if (si.ssi_signo != SIGCHLD) {
            kill(child, (int)si.ssi_signo);
            continue;
        }
        for (;;) {
            int st;
            pid_t w = waitpid(-1, &st, WNOHANG);
            if (w <= 0)
                break;
            if (w == child)
                _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
}

static void child_exec(const struct plan *pl, int sock)
{
    child_reset_signals();
    int r = rbx_seccomp_install(&pl->bpf);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_SECCOMP, 0, -r, NULL);
    execve(pl->exec_path, pl->argv, pl->envp);
    rbx_child_fail(sock, RBX_OP_EXEC, 0, errno, NULL);
}

/* The process's stdio on 0-2, nothing else open, a session of its own. */
static void process_enter(const struct plan *pl, int sock, const int stdio[3])
{
    child_stdio(sock, stdio);
    /* Every fd but 0-2 and the sync socket (close-on-exec) is closed before anything looks at a
     * path: nothing of reprobox (the store, the rootfs, other containers) stays reachable, the
     * CVE-2024-21626 class. */
    int r = rbx_close_fds_except(sock);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_CLOSE_FDS, 0, -r, NULL);
    /* A session of its own: the caller's terminal is never its controlling tty (no TIOCSTI into
     * it); with -t the pty on 0-2 becomes its controlling terminal. */
    if (setsid() < 0)
        rbx_child_fail(sock, RBX_OP_TTY, 0, errno, NULL);
    if (pl->tty && ioctl(0, TIOCSCTTY, 0) < 0)
        rbx_child_fail(sock, RBX_OP_TTY, 0, errno, NULL);
}

static _Noreturn void process_finish(const struct plan *pl, int sock);

/* Runs in the process, pid 1 of its own pid namespace, in the container's mount namespace
 * (already pivoted): no allocation, only system calls on what the plan holds. */
static void process_main(void *arg)
{
    const struct plan *pl = arg;
    int sock = pl->sock;
    int r;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (rbx_child_parent_gone(sock))
        _exit(125);
    process_enter(pl, sock, pl->stdio);

    r = rbx_mount_ns_enter_joined(pl->host_mntns, pl->joined_mntns);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_PRIVATE, 0, -r, NULL);
    /* A /proc of this pid namespace in place of the holder's; masked again, since it is new. */
    r = rbx_proc_replace();
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_PROC, 0, -r, NULL);
    rbx_masks_apply(sock, false, true);
    process_finish(pl, sock);
}

/* rbx_sandbox_run's process is the container's holder, pid 1 of the container's pid namespace,
 * past pivot_root and the masks of /sys and /proc (container.c): what is left of process_main. */
static void sole_main(void *arg, int sock, const int *fds, size_t n_fds)
{
    const struct plan *pl = arg;
    if (n_fds != 3)
        rbx_child_fail(sock, RBX_OP_PROTOCOL, 0, EPROTO, NULL);
    process_enter(pl, sock, fds);
    process_finish(pl, sock);
}

/* The working directory, limits, identity and privileges, then the command. */
static _Noreturn void process_finish(const struct plan *pl, int sock)
{
    int r;
    if (chdir(pl->cwd) < 0)
        rbx_child_fail(sock, RBX_OP_CHDIR, 0, errno, NULL);
    for (size_t i = 0; i < pl->n_rlimits; i++) {
        struct rlimit rl = {.rlim_cur = pl->rlimits[i].soft, .rlim_max = pl->rlimits[i].hard};
        if (setrlimit(pl->rlimits[i].resource, &rl) < 0)
            rbx_child_fail(sock, RBX_OP_RLIMIT, (uint32_t)i, errno,
                           rbx_rlimit_name(pl->rlimits[i].resource));
    }
    r = rbx_caps_drop_bounding(pl->caps, pl->cap_last);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_CAPS, 0, -r, NULL);
    /* Raw system calls: glibc's wrappers would signal every thread the parent had and wait for
     * answers that never come, since only this one was cloned. */
    if (pl->set_groups && syscall(SYS_setgroups, pl->n_groups, pl->groups) < 0)
        rbx_child_fail(sock, RBX_OP_SETGROUPS, 0, errno, NULL);
    if (syscall(SYS_setresgid, pl->gid, pl->gid, pl->gid) < 0)
        rbx_child_fail(sock, RBX_OP_SETGID, 0, errno, NULL);
    if (syscall(SYS_setresuid, pl->uid, pl->uid, pl->uid) < 0)
        rbx_child_fail(sock, RBX_OP_SETUID, 0, errno, NULL);
    r = rbx_caps_apply(pl->caps, pl->uid == 0);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_CAPS, 1, -r, NULL);
    /* A change of uid cleared the death signal: set it again, and mind a death in between. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (rbx_child_parent_gone(sock))
        _exit(125);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        rbx_child_fail(sock, RBX_OP_NO_NEW_PRIVS, 0, errno, NULL);
    umask(022);

    if (!pl->init)
        child_exec(pl, sock);

    /* Under init: this process stays pid 1 (not dumpable, so the command cannot read it), the
     * command is its child. Signals wait blocked for the loop. */
    prctl(PR_SET_DUMPABLE, 0);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigprocmask(SIG_SETMASK, &all, NULL);
    r = rbx_seccomp_install(&pl->bpf);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_SECCOMP, 0, -r, NULL);
    pid_t child = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
    if (child < 0)
        rbx_child_fail(sock, RBX_OP_INIT, 0, errno, NULL);
    if (child == 0) {
        /* The filter is already on (inherited); the command only needs its signals back. */
        child_reset_signals();
        execve(pl->exec_path, pl->argv, pl->envp);
        rbx_child_fail(sock, RBX_OP_EXEC, 0, errno, NULL);
    }
    /* The sync socket is the command's to close (by its execve). */
    close(sock);
    init_loop(child, &all);
}

/* ---- the parent -------------------------------------------------------------------------- */

struct spawn {
    struct plan *pl; /* own, or shared with the holder (rbx_spawn_sole) */
    struct plan own;
    bool pl_mapped;  /* pl is a mapping of our own (not a prestarted holder's arena) */
    struct rbx_bpf bpf; /* the program; pl->bpf is a copy of it, or of its copy in the arena */
    char **envp;
    int sock, child_sock;
    int out[2], err[2];   /* pipes */
    int pty_master, pty_slave;
    int stdin_fd;
};

static void spawn_clear(struct spawn *sp)
{
    int *fds[] = {&sp->sock,   &sp->child_sock, &sp->out[0],     &sp->out[1],
                  &sp->err[0], &sp->err[1],     &sp->pty_master, &sp->pty_slave,
                  &sp->stdin_fd};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(fds); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    free(sp->envp);
    sp->envp = NULL;
    rbx_bpf_clear(&sp->bpf);
    if (sp->pl_mapped)
        munmap(sp->pl, sizeof(*sp->pl));
    sp->pl = &sp->own;
}

static void spawn_init(struct spawn *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->pl = &sp->own;
    sp->sock = sp->child_sock = sp->out[0] = sp->out[1] = sp->err[0] = sp->err[1] = -1;
    sp->pty_master = sp->pty_slave = sp->stdin_fd = -1;
}

/* With the rootfs in view: who runs, where, and what. */
static int plan_identity(struct rbx_container *c, const struct rbx_spec *spec, struct plan *pl,
                         struct rbx_result *res, struct rbx_process *p, struct rbx_error **err)
{
    const struct rbx_pod *pod = c->pod;
    struct rbx_user user;
    int r;
    if (spec->groups_explicit) {
        /* An OCI bundle: numbers as given, no /etc/group. */
        _cleanup_free_ char *u = spec->user ? rbx_xstrdup(spec->user) : rbx_xstrdup("0:0");
        uint32_t uid = 0, gid = 0;
        char *colon = strchr(u, ':');
        if (!colon || !rbx_parse_id(u, (size_t)(colon - u), &uid) ||
            !rbx_parse_id(colon + 1, strlen(colon + 1), &gid))
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "user \"%s\": expected numeric uid:gid", u);
        memset(&user, 0, sizeof(user));
        user.uid = uid;
        user.gid = gid;
        strcpy(user.home, "/");
        _cleanup_error_ struct rbx_error *ignored = NULL;
        struct rbx_user named;
        if (rbx_user_resolve(c->rootfd, u, &named, &ignored) == 0)
            memcpy(user.home, named.home, sizeof(user.home));
    } else {
        r = rbx_user_resolve(c->rootfd, spec->user, &user, err);
        if (r < 0)
            return r;
    }
    p->uid = res->uid = user.uid;
    p->gid = res->gid = user.gid;
    if (!rbx_idmap_contains(&pod->uid_map, user.uid) ||
        !rbx_idmap_contains(&pod->gid_map, user.gid))
        return rbx_error_set(err, RBX_ERR_PERMISSION, EINVAL,
                             "user %u:%u is not mapped in the user namespace, which has %llu ids "
                             "(give the user a range in /etc/subuid and /etc/subgid)",
                             (unsigned)user.uid, (unsigned)user.gid,
                             (unsigned long long)rbx_idmap_count(&pod->uid_map));
    pl->uid = user.uid;
    pl->gid = user.gid;
    /* Supplementary groups the namespace cannot represent are dropped, not fatal: an image's
     * root is in a dozen groups a single-id rootless namespace does not have. */
    size_t n_from_file = spec->groups_explicit ? 0 : user.n_groups;
    for (size_t i = 0; i < n_from_file && pl->n_groups < RBX_MAX_GROUPS; i++)
        if (rbx_idmap_contains(&pod->gid_map, user.groups[i]))
            pl->groups[pl->n_groups++] = user.groups[i];
    for (size_t i = 0; i < spec->n_additional_gids; i++) {
        uint32_t g = spec->additional_gids[i];
        if (!rbx_idmap_contains(&pod->gid_map, g))
            return rbx_error_set(err, RBX_ERR_PERMISSION, EINVAL,
                                 "group %u is not mapped in the user namespace", (unsigned)g);
        bool dup = false;
        for (size_t k = 0; k < pl->n_groups; k++)
            dup |= pl->groups[k] == g;
        if (!dup && pl->n_groups < RBX_MAX_GROUPS)
            pl->groups[pl->n_groups++] = g;
    }
    pl->set_groups = !pod->setgroups_deny;

    const char *cwd = spec->cwd && *spec->cwd ? spec->cwd : "/";
    bool created = false;
    _cleanup_close_ int cwdfd = rbx_mkdir_p_in_root(c->rootfd, cwd, 0755, &created, err);
    if (cwdfd < 0)
        return rbx_error_wrap(err, "working directory %s", cwd);
    p->cwd_created = res->cwd_created = created;
    snprintf(pl->cwd, sizeof(pl->cwd), "%s", cwd);

    r = rbx_exec_lookup(c->rootfd, cwd, spec->argv[0], rbx_env_get(spec->env, "PATH"),
                        pl->exec_path, sizeof(pl->exec_path), err);
    if (r < 0)
        return r;
    p->exec_path = rbx_xstrdup(pl->exec_path);
    free(res->exec_path);
    res->exec_path = rbx_xstrdup(pl->exec_path);
    if (!rbx_env_get(spec->env, "HOME"))
        snprintf(pl->home_env, sizeof(pl->home_env), "HOME=%s", user.home);
    return 0;
}

static int open_pty(struct rbx_container *c, struct spawn *sp, struct rbx_error **err)
{
    /* The container's own devpts, reached through its root: its ptys are the container's. */
    int m = rbx_open_in_root(c->rootfd, "dev/pts/ptmx", O_RDWR | O_NOCTTY, 0,
                             RBX_RESOLVE_NO_SYMLINKS, err);
    if (m < 0)
        return m == -ENOENT ? rbx_error_set(err, RBX_ERR_SANDBOX, ENOENT,
                                            "sandbox: the container has no /dev/pts/ptmx")
                            : rbx_error_wrap(err, "sandbox: pty");
    sp->pty_master = rbx_fd_above_stdio(m);
    struct stat st;
    if (fstat(sp->pty_master, &st) < 0 || !S_ISCHR(st.st_mode))
        return rbx_error_set(err, RBX_ERR_SANDBOX, EINVAL, "sandbox: /dev/pts/ptmx is no device");
    int unlock = 0;
    if (ioctl(sp->pty_master, TIOCSPTLCK, &unlock) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: unlockpt");
    int s = (int)ioctl(sp->pty_master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: pty peer");
    sp->pty_slave = rbx_fd_above_stdio(s);
    /* The caller's window size, when it has a terminal. */
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
        ioctl(sp->pty_master, TIOCSWINSZ, &ws);
    return 0;
}

static int open_stdio(struct rbx_container *c, const struct rbx_spec *spec, struct spawn *sp,
                      struct rbx_process *p, struct rbx_error **err)
{
    if (spec->tty) {
        int r = open_pty(c, sp, err);
        if (r < 0)
            return r;
        sp->pl->stdio[0] = sp->pl->stdio[1] = sp->pl->stdio[2] = sp->pty_slave;
        if (fcntl(sp->pty_master, F_SETFL, O_NONBLOCK) < 0)
            return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "fcntl");
        return 0;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "pipe");
    sp->out[0] = rbx_fd_above_stdio(fds[0]);
    sp->out[1] = rbx_fd_above_stdio(fds[1]);
    if (pipe2(fds, O_CLOEXEC) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "pipe");
    sp->err[0] = rbx_fd_above_stdio(fds[0]);
    sp->err[1] = rbx_fd_above_stdio(fds[1]);
    if (sp->out[0] < 0 || sp->out[1] < 0 || sp->err[0] < 0 || sp->err[1] < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "pipe");
    /* Only our read ends are non-blocking: the command's write ends stay ordinary. */
    if (fcntl(sp->out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(sp->err[0], F_SETFL, O_NONBLOCK) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "fcntl");
    sp->stdin_fd = spec->stdin_fd >= 0
                       ? fcntl(spec->stdin_fd, F_DUPFD_CLOEXEC, 3)
                       : rbx_fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (sp->stdin_fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "stdin");
    sp->pl->stdio[0] = sp->stdin_fd;
    sp->pl->stdio[1] = sp->out[1];
    sp->pl->stdio[2] = sp->err[1];
    (void)p;
    return 0;
}

static int open_logs(const struct rbx_spec *spec, struct rbx_process *p, struct rbx_error **err)
{
    if (!spec->log_dir)
        return 0;
    static const char *const names[2] = {"stdout.log", "stderr.log"};
    _cleanup_close_ int dir =
        open(spec->log_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 && errno == ENOENT && mkdir(spec->log_dir, 0755) == 0)
        dir = open(spec->log_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "log dir %s", spec->log_dir);
    for (int i = 0; i < 2; i++) {
        if (spec->tty && i == 1)
            break;
        int fd = openat(dir, names[i], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                        0644);
        if (fd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "log %s/%s", spec->log_dir,
                                       names[i]);
        p->log[i] = rbx_fd_above_stdio(fd);
    }
    p->log_max = spec->log_max_bytes ? spec->log_max_bytes : RBX_DEFAULT_LOG_MAX;
    return 0;
}

static size_t tail_bytes(size_t lines)
{
    size_t b = lines * 1024;
    return b < 16384 ? 16384 : b > (1u << 20) ? (1u << 20) : b;
}

/* What needs no rootfs: the command, its environment, capabilities and seccomp program. */
static int prepare_static(const struct rbx_spec *spec, struct spawn *sp, struct rbx_process *p,
                          struct rbx_error **err)
{
    struct plan *pl = sp->pl;
    if (!spec->argv || !spec->argv[0])
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "no command to run");
    if (spec->cwd && *spec->cwd && spec->cwd[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "working directory \"%s\" is not an absolute path", spec->cwd);
    if (spec->cwd && strlen(spec->cwd) > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "working directory too long");

    int r = rbx_caps_resolve(spec->cap_add, spec->cap_drop, &pl->caps, err);
    if (r < 0)
        return r;
    pl->cap_last = rbx_cap_last();
    p->caps = pl->caps;
    r = rbx_seccomp_prepare(spec->seccomp_mode, spec->seccomp, pl->caps, spec->seccomp_cache_dir,
                            &sp->bpf, p->seccomp, sizeof(p->seccomp), err);
    if (r < 0)
        return r;
    /* HOME, when the image sets none, is the user's: its text comes with the user. */
    size_t n_env = rbx_strv_len(spec->env);
    sp->envp = rbx_xcalloc(n_env + 2, sizeof(char *));
    for (size_t i = 0; i < n_env; i++)
        sp->envp[i] = spec->env[i];
    if (!rbx_env_get(spec->env, "HOME"))
        sp->envp[n_env] = pl->home_env;
    pl->envp = sp->envp;
    pl->argv = spec->argv;
    pl->bpf = sp->bpf;
    pl->init = spec->init;
    pl->tty = spec->tty;
    return 0;
}

/* A prestarted holder was forked before the spec, the environment and the program existed:
 * the plan's pointers go to copies in its arena (the plan itself is there already). */
static int plan_into_arena(struct rbx_prestart *ps, struct spawn *sp, struct rbx_error **err)
{
    struct plan *pl = sp->pl;
    size_t n_env = rbx_strv_len(sp->envp);
    char **envp = rbx_prestart_alloc(ps, (n_env + 2) * sizeof(char *));
    char **argv = rbx_prestart_strv(ps, pl->argv);
    void *insns = pl->bpf.len ? rbx_prestart_alloc(ps, pl->bpf.len * 8) : NULL;
    bool full = !envp || !argv || (pl->bpf.len && !insns);
    for (size_t i = 0; !full && i < n_env; i++)
        full = !(envp[i] = sp->envp[i] == pl->home_env ? pl->home_env
                                                       : rbx_prestart_strdup(ps, sp->envp[i]));
    if (full)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG,
                             "sandbox: the command and its environment do not fit the holder's "
                             "arena");
    if (insns)
        memcpy(insns, pl->bpf.insns, pl->bpf.len * 8);
    pl->bpf.insns = insns;
    pl->envp = envp;
    pl->argv = argv;
    return 0;
}

/* With the container's rootfs in view: limits, identity, working directory, stdio, logs. */
static int prepare_rootfs(struct rbx_container *c, const struct rbx_spec *spec, struct spawn *sp,
                          struct rbx_process *p, struct rbx_result *res, struct rbx_error **err)
{
    struct plan *pl = sp->pl;
    int r = rbx_rlimits_plan(spec->rlimits, spec->n_rlimits, pl->rlimits, &pl->n_rlimits, err);
    if (r < 0)
        return r;
    if (c->cg.nproc_fallback && pl->n_rlimits < RBX_MAX_RLIMITS) {
        /* No pids controller: the honest fallback is a per-user process count. */
        bool set = false;
        for (size_t i = 0; i < pl->n_rlimits; i++)
            set |= pl->rlimits[i].resource == RLIMIT_NPROC;
        if (!set)
            pl->rlimits[pl->n_rlimits++] = (struct rbx_rlimit){
                RLIMIT_NPROC, (uint64_t)c->cg.applied.pids, (uint64_t)c->cg.applied.pids};
    }
    r = plan_identity(c, spec, pl, res, p, err);
    if (r < 0)
        return r;
    r = open_stdio(c, spec, sp, p, err);
    if (r < 0)
        return r;
    return open_logs(spec, p, err);
}

/* A process launched into the container (launch.c): its own sync socket. */
static int prepare_launch(struct rbx_container *c, struct spawn *sp, struct rbx_error **err)
{
    struct plan *pl = sp->pl;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");
    sp->sock = rbx_fd_above_stdio(sv[0]);
    sp->child_sock = rbx_fd_above_stdio(sv[1]);
    if (sp->sock < 0 || sp->child_sock < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");
    pl->sock = sp->child_sock;
    pl->host_mntns = c->host_mntns;
    pl->joined_mntns = c->mntns_ino;
    return 0;
}

/* After the launch: EOF on the socket is the news that execve worked. */
static int wait_exec(struct rbx_container *c, int sock, struct rbx_process *p, int sigfd,
                     const struct rbx_spec *spec, struct rbx_error **err)
{
    struct rbx_sync_msg m;
    int fd = -1, signo = 0;
    int r = rbx_parent_recv(sock, sigfd, &m, &fd, &signo);
    if (fd >= 0)
        close(fd);
    if (r == 0)
        return 0;
    if (r == -EINTR)
        return rbx_error_set(err, RBX_ERR_SANDBOX, EINTR,
                             "sandbox: interrupted by %s during set-up", strsignal(signo));
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    if (m.type == RBX_SYNC_ERROR && m.op == RBX_OP_EXEC)
        return rbx_exec_explain(c->rootfd, spec->argv[0], p->exec_path, m.errnum, err);
    if (m.type == RBX_SYNC_ERROR)
        return rbx_child_error(&m, NULL, 0, NULL, err);
    return rbx_error_set(err, RBX_ERR_SANDBOX, EPROTO, "sandbox: unexpected message %u", m.type);
}

/* The process is started: only it keeps its ends; EOF says execve worked. */
static int started(struct rbx_container *c, struct spawn *sp, int sock, struct rbx_process *p,
                   int sigfd, const struct rbx_spec *spec, struct rbx_error **err)
{
    p->pidfd = rbx_fd_above_stdio((int)syscall(SYS_pidfd_open, p->pid, 0));
    int *child_ends[] = {&sp->child_sock, &sp->out[1], &sp->err[1], &sp->pty_slave, &sp->stdin_fd};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(child_ends); i++) {
        if (*child_ends[i] >= 0)
            close(*child_ends[i]);
        *child_ends[i] = -1;
    }
    int r = wait_exec(c, sock, p, sigfd, spec, err);
    if (r < 0)
        return r;
    p->t_exec = p->t_last_output = rbx_now_ns();
    if (spec->tty) {
        p->tty = true;
        p->src[0] = TAKE_FD(sp->pty_master);
        p->tty_in = spec->stdin_fd;
    } else {
        p->src[0] = TAKE_FD(sp->out[0]);
        p->src[1] = TAKE_FD(sp->err[0]);
    }
    rbx_supervise_add(p);
    return 0;
}

static struct rbx_process *process_new(struct rbx_container *c, const struct rbx_spec *spec)
{
    struct rbx_process *p = rbx_xcalloc(1, sizeof(*p));
    p->c = c;
    p->t_start = rbx_now_ns();
    p->pid = -1;
    p->pidfd = -1;
    p->src[0] = p->src[1] = -1;
    p->dst[0] = spec->stdout_fd;
    p->dst[1] = spec->stderr_fd;
    p->log[0] = p->log[1] = -1;
    p->tty_in = -1;
    size_t lines = spec->tail_lines ? spec->tail_lines : RBX_DEFAULT_TAIL_LINES;
    p->tail[0] = rbx_tail_new(lines, tail_bytes(lines));
    p->tail[1] = rbx_tail_new(lines, tail_bytes(lines));
    p->timeout_ns = spec->timeout_ms * 1000000ULL;
    p->idle_ns = spec->idle_timeout_ms * 1000000ULL;
    p->grace_ns = (spec->stop_timeout_ms ? spec->stop_timeout_ms : RBX_DEFAULT_STOP_MS) * 1000000ULL;
    return p;
}

int rbx_spawn_internal(struct rbx_container *c, const struct rbx_spec *spec, int sigfd,
                       struct rbx_process **out, struct rbx_result *res, struct rbx_error **err)
{
    struct rbx_result scratch;
    memset(&scratch, 0, sizeof(scratch));
    if (!res)
        res = &scratch;
    struct spawn sp;
    spawn_init(&sp);
    _cleanup_(rbx_process_freep) struct rbx_process *p = process_new(c, spec);
    /* On the container's list at once, so a failed spawn is freed with it like any other. */
    p->next_in_container = c->procs;
    c->procs = p;
    int r = prepare_static(spec, &sp, p, err);
    if (r == 0)
        r = prepare_rootfs(c, spec, &sp, p, res, err);
    if (r == 0)
        r = prepare_launch(c, &sp, err);
    if (r < 0)
        goto out;

    struct rbx_launch l = {
        .n_cgroup_procs = c->cg.n_dirs,
        .ns_net = c->pod->network == RBX_NETWORK_NONE ? c->pod->netns : -1,
        .ns_uts = c->pod->utsns,
        .ns_ipc = c->pod->ipcns,
        .ns_cgroup = c->cgroupns,
        .ns_mnt = c->mntns,
        .ns_user = c->pod->userns,
        .unshare_flags = CLONE_NEWPID | CLONE_NEWNS,
        .devnull = -1,
        .sock = sp.child_sock,
    };
    for (size_t i = 0; i < c->cg.n_dirs; i++)
        l.cgroup_procs[i] = c->cg.procs[i];
    p->oom_base = rbx_cgroup_oom_kills(&c->cg);
    r = rbx_launch(&l, sp.sock, sigfd, process_main, sp.pl, &p->pid, err);
    if (r < 0)
        goto out;
    r = started(c, &sp, sp.sock, p, sigfd, spec, err);
    if (r < 0)
        goto out;
    *out = TAKE_PTR(p);
out:
    spawn_clear(&sp);
    if (res == &scratch)
        rbx_result_clear(&scratch);
    return r;
}

int rbx_spawn_sole(const struct rbx_spec *spec, int sigfd, struct rbx_container **cout,
                   struct rbx_process **pout, struct rbx_result *res, struct rbx_error **err)
{
    /* The holder reads the plan after its fork: in memory it shares with us (a prestarted
     * holder's arena). */
    struct rbx_prestart *ps = rbx_prestart_ready(spec->prestart) ? spec->prestart : NULL;
    void *shared = ps ? rbx_prestart_alloc(ps, sizeof(struct plan))
                      : mmap(NULL, sizeof(struct plan), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!shared || shared == MAP_FAILED)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, shared ? errno : ENOMEM,
                                   "sandbox: mmap");
    struct spawn sp;
    spawn_init(&sp);
    sp.pl = shared;
    sp.pl_mapped = !ps;
    struct rbx_process *p = process_new(NULL, spec);
    struct rbx_container *c = NULL;
    int r = prepare_static(spec, &sp, p, err);
    if (r == 0 && ps)
        r = plan_into_arena(ps, &sp, err);
    if (r < 0)
        goto out;
    struct rbx_holder_then then = {sole_main, sp.pl, ps};
    r = rbx_container_create_internal(spec, NULL, sigfd, &then, &c, err);
    if (r < 0)
        goto out;
    p->c = c;
    p->next_in_container = c->procs;
    c->procs = p;
    r = prepare_rootfs(c, spec, &sp, p, res, err);
    if (r < 0)
        goto out;
    p->oom_base = rbx_cgroup_oom_kills(&c->cg);
    r = rbx_container_finish_then(c, sp.pl->stdio, 3, err);
    if (r < 0)
        goto out;
    /* The holder is the process now: waited for, and killed if need be, as the process. */
    p->pid = c->holder;
    c->holder = -1;
    r = started(c, &sp, c->sock, p, sigfd, spec, err);
out:
    spawn_clear(&sp);
    if (r < 0) {
        /* Once on the container's list, the process goes with it. */
        if (!p->c)
            rbx_process_free(p);
        rbx_container_free(c);
        return r;
    }
    *pout = p;
    *cout = c;
    return 0;
}

int rbx_container_spawn(struct rbx_container *c, const struct rbx_spec *proc,
                        struct rbx_process **out, struct rbx_error **err)
{
    return rbx_spawn_internal(c, proc, -1, out, NULL, err);
}

pid_t rbx_process_pid(const struct rbx_process *p)
{
    return p->pid;
}

void rbx_process_result(const struct rbx_process *p, struct rbx_result *res)
{
    res->uid = p->uid;
    res->gid = p->gid;
    res->cwd_created = p->cwd_created;
    res->exec_path = p->exec_path ? rbx_xstrdup(p->exec_path) : NULL;
    res->stdout_tail = rbx_xstrdup(rbx_tail_text(p->tail[0]));
    res->stderr_tail = rbx_xstrdup(rbx_tail_text(p->tail[1]));
    res->stdout_bytes = rbx_tail_total(p->tail[0]);
    res->stderr_bytes = rbx_tail_total(p->tail[1]);
    res->setup_ns = p->t_exec - p->t_start;
    res->run_ns = p->exited ? p->t_exit - p->t_exec : 0;
    if (p->exited) {
        if (WIFSIGNALED(p->wstatus)) {
            res->signal = WTERMSIG(p->wstatus);
            res->exit_code = 128 + res->signal;
        } else {
            res->exit_code = WEXITSTATUS(p->wstatus);
        }
    }
    res->stop_reason = p->stop_reason;
    res->killed_after_grace = p->killed_after_grace;
    res->oom_killed = rbx_cgroup_oom_kills(&p->c->cg) > p->oom_base;
    res->caps = p->caps;
    snprintf(res->seccomp, sizeof(res->seccomp), "%s", p->seccomp);
    res->limits = p->c->cg.applied;
    res->cgroup = p->c->cg.kind == RBX_CGROUP_V2   ? "v2"
                  : p->c->cg.kind == RBX_CGROUP_V1 ? "v1"
                                                   : "none";
    res->limits_note = p->c->cg.note ? rbx_xstrdup(p->c->cg.note) : NULL;
}

struct rbx_process *rbx_process_free(struct rbx_process *p)
{
    if (!p)
        return NULL;
    if (p->pid > 0 && !p->exited) {
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    rbx_supervise_remove(p);
    struct rbx_process **pp = p->c ? &p->c->procs : NULL;
    while (pp && *pp && *pp != p)
        pp = &(*pp)->next_in_container;
    if (pp && *pp)
        *pp = p->next_in_container;
    int *fds[] = {&p->pidfd, &p->src[0], &p->src[1], &p->log[0], &p->log[1]};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(fds); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    rbx_tail_free(p->tail[0]);
    rbx_tail_free(p->tail[1]);
    free(p->exec_path);
    free(p);
    return NULL;
}
