/* privilege.c — the privilege decision, made once at start: real root runs as it is; an ordinary
 * user is re-executed as root of a new user namespace (its subordinate ids mapped when it has
 * some) while the original process only waits and forwards signals. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define USERNS_MARKER "REPROBOX_USERNS"

extern char **environ;

static uid_t real_uid = (uid_t)-1;

uid_t rbx_privilege_real_uid(void)
{
    return real_uid != (uid_t)-1 ? real_uid : getuid();
}

bool rbx_subid_find(const char *text, const char *user, uint32_t id, uint32_t *start,
                    uint32_t *count)
{
    char idstr[16];
    snprintf(idstr, sizeof(idstr), "%" PRIu32, id);
    for (const char *p = text; p && *p;) {
        const char *eol = strchrnul(p, '\n');
        const char *c1 = memchr(p, ':', (size_t)(eol - p));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;
        if (c1 && c2 && *p != '#') {
            size_t nlen = (size_t)(c1 - p);
            bool match = (user && strlen(user) == nlen && memcmp(p, user, nlen) == 0) ||
                         (strlen(idstr) == nlen && memcmp(p, idstr, nlen) == 0);
            const char *end = eol;
            while (end > c2 + 1 && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;
            uint32_t s, n;
            if (match && rbx_parse_id(c1 + 1, (size_t)(c2 - c1 - 1), &s) &&
                rbx_parse_id(c2 + 1, (size_t)(end - c2 - 1), &n) && n > 0 &&
                (uint64_t)s + n <= UINT32_MAX) {
                *start = s;
                *count = n;
                return true;
            }
        }
        p = *eol ? eol + 1 : eol;
    }
    return false;
}

bool rbx_signal_should_forward(const struct signalfd_siginfo *si)
{
    return si->ssi_code != SI_KERNEL;
}

/* True when our uid_map is something else than the initial namespace's full identity. */
static bool in_child_userns(void)
{
    struct rbx_idmap m;
    _cleanup_error_ struct rbx_error *e = NULL;
    if (rbx_idmap_read_self("uid_map", &m, &e) < 0)
        return false;
    return !(m.n == 1 && m.r[0].inside == 0 && m.r[0].outside == 0 && m.r[0].count == UINT32_MAX);
}

static unsigned own_mapped_ids(void)
{
    struct rbx_idmap m;
    _cleanup_error_ struct rbx_error *e = NULL;
    if (rbx_idmap_read_self("uid_map", &m, &e) < 0)
        return 1;
    uint64_t n = rbx_idmap_count(&m);
    return n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
}

/* newuidmap/newgidmap PID 0 ID 1 1 START COUNT, quietly: a failure means the single-id fallback. */
static int run_idmap_helper(const char *helper, pid_t pid, uint32_t id, uint32_t start,
                            uint32_t count, const sigset_t *mask)
{
    char a_pid[16], a_id[16], a_start[16], a_count[16];
    snprintf(a_pid, sizeof(a_pid), "%d", (int)pid);
    snprintf(a_id, sizeof(a_id), "%" PRIu32, id);
    snprintf(a_start, sizeof(a_start), "%" PRIu32, start);
    snprintf(a_count, sizeof(a_count), "%" PRIu32, count);
    char *argv[] = {(char *)helper, a_pid, "0", a_id, "1", "1", a_start, a_count, NULL};

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t hp;
    int r = posix_spawnp(&hp, helper, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r != 0)
        return -r;
    int st;
    while (waitpid(hp, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

struct subids {
    bool found;
    uint32_t start, count;
};

static void find_subids(const char *file, const char *user, uint32_t id, struct subids *out)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ struct rbx_error *e = NULL;
    out->found = false;
    if (rbx_read_file_at(AT_FDCWD, file, 1 << 20, &text, NULL, &e) == 0)
        out->found = rbx_subid_find(text, user, id, &out->start, &out->count);
}

/* Map the child's fresh user namespace: subordinate ids through the setuid helpers when the user
 * has them, else only the user itself (which needs setgroups denied first). */
static int map_child(pid_t pid, const sigset_t *mask, struct rbx_error **err)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    struct passwd *pw = getpwuid(uid);
    const char *name = pw ? pw->pw_name : NULL;
    struct subids su, sg;
    find_subids("/etc/subuid", name, uid, &su);
    find_subids("/etc/subgid", name, uid, &sg);

    bool uid_done = false, gid_done = false;
    if (su.found && sg.found) {
        uid_done = run_idmap_helper("newuidmap", pid, uid, su.start, su.count, mask) == 0;
        if (uid_done)
            gid_done = run_idmap_helper("newgidmap", pid, gid, sg.start, sg.count, mask) == 0;
    }
    char line[64];
    if (!uid_done) {
        snprintf(line, sizeof(line), "0 %u 1\n", (unsigned)uid);
        if (rbx_proc_write(pid, "uid_map", line, err) < 0)
            return rbx_error_wrap(err, "mapping uid %u", (unsigned)uid);
    }
    if (!gid_done) {
        snprintf(line, sizeof(line), "0 %u 1\n", (unsigned)gid);
        if (rbx_proc_write(pid, "setgroups", "deny", err) < 0 ||
            rbx_proc_write(pid, "gid_map", line, err) < 0)
            return rbx_error_wrap(err, "mapping gid %u", (unsigned)gid);
    }
    return 0;
}

static ssize_t read_full(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n;
}

/* The original process from here on: forward signals, exit with the child's status. */
static _Noreturn void wait_and_forward(pid_t pid, const sigset_t *set)
{
    int sfd = signalfd(-1, set, SFD_CLOEXEC);
    for (;;) {
        struct signalfd_siginfo si;
        if (sfd < 0 || read_full(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
            /* No signalfd: we can still wait, just not forward. */
            int st;
            while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                    exit(125);
            exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        if (si.ssi_signo == SIGCHLD) {
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid)
                exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            continue;
        }
        if (rbx_signal_should_forward(&si))
            kill(pid, (int)si.ssi_signo);
    }
}

/* Returns only on failure, before the child ran anything of ours. */
static int reexec_in_userns(char **argv, struct rbx_error **err)
{
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "pipe");
    if (pipe2(go, O_CLOEXEC) < 0) {
        int e = errno;
        close(ready[0]);
        close(ready[1]);
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "pipe");
    }
    _cleanup_close_ int ready_r = ready[0], ready_w = ready[1], go_r = go[0], go_w = go[1];
    char marker[16];
    snprintf(marker, sizeof(marker), "%u", (unsigned)getuid());

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "fork");
    }
    if (pid == 0) {
        int e = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
        if (write(ready_w, &e, sizeof(e)) != (ssize_t)sizeof(e) || e)
            _exit(125);
        char ok;
        if (read_full(go_r, &ok, 1) != 1)
            _exit(125);
        /* Die with the original process: it is the one the user's shell waits for. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(125);
        setenv(USERNS_MARKER, marker, 1);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execv("/proc/self/exe", argv);
        e = errno;
        ssize_t w = write(ready_w, &e, sizeof(e));
        (void)w;
        _exit(125);
    }
    close(TAKE_FD(ready_w));
    close(TAKE_FD(go_r));

    int r, e = 0;
    ssize_t n = read_full(ready_r, &e, sizeof(e));
    if (n != (ssize_t)sizeof(e) || e) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, n == (ssize_t)sizeof(e) ? e : EIO,
                                "cannot create a user namespace (unshare(CLONE_NEWUSER))");
        goto fail;
    }
    r = map_child(pid, &old, err);
    if (r < 0)
        goto fail;
    if (write(go_w, "1", 1) != 1) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "user namespace child");
        goto fail;
    }
    /* EOF: execve worked and closed the pipe; an errno: it did not. */
    n = read_full(ready_r, &e, sizeof(e));
    if (n == (ssize_t)sizeof(e)) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, e, "re-executing /proc/self/exe");
        goto fail;
    }
    close(TAKE_FD(ready_r));
    close(TAKE_FD(go_w));
    wait_and_forward(pid, &set);

fail:
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
}

int rbx_privilege_setup(char **argv, enum rbx_privilege *priv, unsigned *mapped_ids,
                        struct rbx_error **err)
{
    const char *marker = getenv(USERNS_MARKER);
    if (geteuid() == 0 && getuid() != 0)
        return rbx_error_set(err, RBX_ERR_PERMISSION, EPERM,
                             "reprobox runs as root or as an ordinary user, never set-user-ID");
    if (marker) {
        uint32_t uid;
        if (geteuid() != 0 || !in_child_userns() || !rbx_parse_id(marker, strlen(marker), &uid))
            return rbx_error_set(err, RBX_ERR_SANDBOX, EINVAL,
                                 "%s=%s is set but this process is not the root of a user "
                                 "namespace made by reprobox",
                                 USERNS_MARKER, marker);
        real_uid = (uid_t)uid;
        unsetenv(USERNS_MARKER);
        *priv = RBX_PRIV_ROOTLESS;
        *mapped_ids = own_mapped_ids();
        return 0;
    }
    if (geteuid() == 0) {
        *priv = RBX_PRIV_ROOT;
        *mapped_ids = own_mapped_ids();
        return 0;
    }
    return reexec_in_userns(argv, err);
}
