/* container.c — a container: the rootfs and its mounts, set up once by a holder process that
 * then parks, pid 1 of a pid namespace of its own, so its mount and cgroup namespaces stay there
 * for every process spawned into it. The parent resolves each mount target inside the root and
 * hands the holder an fd; the holder only mounts. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* Everything the holder needs, computed before it exists: it reads its copy, allocates
 * nothing. */
struct holder {
    const struct rbx_spec *spec;
    const struct rbx_rootfs_plan *rootfs;
    const struct rbx_mount_row *rows;
    size_t n_rows;
    int sock;
    ino_t host_mntns;
    /* A pod of its own: the holder was cloned straight into new user, uts, ipc (and net)
     * namespaces, names the host and brings up loopback itself. */
    bool own_pod, own_net;
    const char *hostname;
    int parent_sock, devnull;
    const struct rbx_holder_then *then; /* NULL: park */
    const int *cgroup_tasks; /* v1: the holder joins the container's cgroups itself */
    size_t n_cgroup_tasks;
    /* Cloned before the spec existed (rbx_prestart_new), into new user and pid namespaces
     * only: it makes the others itself, then waits for PLAN. Everything above but sock,
     * host_mntns, own_net, hostname, parent_sock and devnull is filled in the arena later. */
    bool early;
};

/* ---- the holder ---------------------------------------------------------------------------- */

static void holder_answer(int sock, uint32_t index)
{
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_DONE;
    m.index = index;
    if (rbx_sync_send(sock, &m, -1) < 0)
        _exit(125);
}

static bool force_pivot_failure;

void rbx_holder_force_pivot_failure(bool on)
{
    force_pivot_failure = on;
}

/* The root made read-only if asked, pivoted into, and masked: after the last batch of mounts,
 * while the parent resolves the user and the command (or after FINISH, when no batch said it
 * was the last). */
static void holder_enter_root(const struct holder *h, int sock, int rootfd)
{
    int r;
    if (h->spec->readonly_rootfs && (r = rbx_rootfs_make_readonly(rootfd)) < 0)
        rbx_child_fail(sock, RBX_OP_ROOT_READONLY, 0, -r, NULL);
    r = force_pivot_failure ? -EIO : rbx_rootfs_pivot(rootfd);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_PIVOT, 0, -r, NULL);
    close(rootfd);

    /* /sys is ours now (a fresh sysfs or a bind we made): mask what Docker masks there. So is
     * /proc when the holder itself becomes the process: its pid namespace is the process's. */
    rbx_masks_apply(sock, true, h->then != NULL);
}

/* Runs in the holder, pid 1 of the container's pid namespace: only system calls. */
static void holder_main(void *arg)
{
    const struct holder *h = arg;
    int sock = h->sock;
    struct rbx_sync_msg m;
    int fd, r;

    if (h->own_pod) {
        /* Cloned by reprobox itself: what the launcher does otherwise. */
        close(h->parent_sock);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (int i = 0; i < 3; i++)
            if (dup2(h->devnull, i) < 0)
                rbx_child_fail(sock, RBX_OP_STDIO, 0, errno, NULL);
        /* Owned by our user namespace, made while reprobox writes our id maps and goes on
         * with the image: our capabilities there need no map, nor does anything up to the
         * cgroup join, which all goes on meanwhile. */
        if (h->early && unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                (h->own_net ? CLONE_NEWNET : 0)) < 0)
            rbx_child_fail(sock, RBX_OP_UNSHARE, 0, errno, NULL);
    } else {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (rbx_child_parent_gone(sock))
            _exit(125);
    }
    r = rbx_mount_ns_make_private(h->host_mntns);
    if (r < 0)
        rbx_child_fail(sock, RBX_OP_PRIVATE, 0, -r, NULL);
    if (h->own_pod) {
        if (sethostname(h->hostname, strlen(h->hostname)) < 0)
            rbx_child_fail(sock, RBX_OP_HOSTNAME, 0, errno, NULL);
        if (h->own_net && (r = rbx_net_loopback_up()) < 0)
            rbx_child_fail(sock, RBX_OP_LOOPBACK, 0, -r, NULL);
        /* Mapped by the parent; EOF: it gave up. */
        if (rbx_sync_recv(sock, &m, &fd) != 1 || m.type != RBX_SYNC_MAPPED)
            _exit(125);
        /* cgroup v1: "0" in `tasks` moves this (only) thread at once (the kernel checks our
         * mapped ids); on v2 the parent puts us in from a thread while we mount. */
        for (size_t i = 0; i < h->n_cgroup_tasks; i++)
            if (write(h->cgroup_tasks[i], "0", 1) != 1)
                rbx_child_fail(sock, RBX_OP_CGROUP, (uint32_t)i, errno, NULL);
    }
    if (h->early) {
        /* The spec is in the arena once PLAN comes; with it the cgroups to join (v1). */
        int cg[RBX_MAX_CGROUP_FDS];
        size_t n_cg = 0;
        if (rbx_sync_recvv(sock, &m, cg, RBX_MAX_CGROUP_FDS, &n_cg) != 1 ||
            m.type != RBX_SYNC_PLAN)
            _exit(125);
        for (size_t i = 0; i < n_cg; i++) {
            if (write(cg[i], "0", 1) != 1)
                rbx_child_fail(sock, RBX_OP_CGROUP, (uint32_t)i, errno, NULL);
            close(cg[i]);
        }
    }

    char detail[256] = "";
    int rootfd = rbx_rootfs_mount(h->spec, h->rootfs, detail, sizeof(detail));
    if (rootfd < 0)
        rbx_child_fail(sock, h->spec->lower_dirs && h->spec->lower_dirs[0] ? RBX_OP_OVERLAY : RBX_OP_ROOTFS, 0,
                       -rootfd, detail);
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_ROOTFS;
    if (rbx_sync_send(sock, &m, rootfd) < 0)
        _exit(125);

    int fds[RBX_SYNC_MAX_FDS];
    size_t n_fds = 0;
    bool entered = false;
    for (;;) {
        r = rbx_sync_recvv(sock, &m, fds, RBX_SYNC_MAX_FDS, &n_fds);
        if (r <= 0)
            _exit(125); /* the parent gave up or died */
        if (m.type == RBX_SYNC_FINISH)
            break; /* its fds are the sole process's stdio */
        if (m.type != RBX_SYNC_MOUNT || m.n_ops != n_fds || n_fds == 0)
            rbx_child_fail(sock, RBX_OP_PROTOCOL, 0, EPROTO, NULL);
        for (size_t i = 0; i < n_fds; i++) {
            const struct rbx_sync_op *op = &m.ops[i];
            if (op->index >= h->n_rows)
                rbx_child_fail(sock, RBX_OP_PROTOCOL, op->index, EPROTO, NULL);
            const struct rbx_mount_row *row = &h->rows[op->index];
            if (op->kind == RBX_OP_MOUNT)
                r = rbx_mount_row_apply(row, fds[i]);
            else
                r = rbx_mount_make_readonly(fds[i], row->flags & MS_REC);
            if (r < 0)
                rbx_child_fail(sock, op->kind == RBX_OP_MOUNT ? RBX_OP_MOUNT : RBX_OP_READONLY,
                               op->index, -r, NULL);
            close(fds[i]);
        }
        holder_answer(sock, 0);
        if (m.last && !entered) {
            holder_enter_root(h, sock, rootfd);
            entered = true;
        }
    }
    if (!h->then && n_fds > 0)
        rbx_child_fail(sock, RBX_OP_PROTOCOL, 0, EPROTO, NULL);
    if (!entered)
        holder_enter_root(h, sock, rootfd);
    /* In the container's cgroup by now (on v2, FINISH waits for it): that cgroup is the root of
     * its cgroup namespace. */
    if (h->own_pod && unshare(CLONE_NEWCGROUP) < 0)
        rbx_child_fail(sock, RBX_OP_UNSHARE, 0, errno, NULL);
    if (h->then)
        h->then->fn(h->then->arg, sock, fds, n_fds);
    /* Nothing inside may read this process's memory or follow its /proc links, and it parks
     * holding nothing of reprobox's but its socket. */
    prctl(PR_SET_DUMPABLE, 0);
    if (rbx_close_fds_except(sock) < 0)
        rbx_child_fail(sock, RBX_OP_CLOSE_FDS, 0, errno, NULL);

    holder_answer(sock, 0);
    /* Park until the container is freed (EOF) or reprobox dies (the death signal). */
    while (rbx_sync_recv(sock, &m, &fd) > 0)
        if (fd >= 0)
            close(fd);
    _exit(0);
}

/* ---- a holder started early ------------------------------------------------------------- */

/* Address space only: a page costs when it is first written. Holds the plan of the process,
 * its argv and environment, the seccomp program, the rootfs plan and the mount rows. */
#define ARENA_SIZE (16u << 20)

struct rbx_prestart {
    char *arena;
    size_t used;
    struct holder *h; /* in the arena */
    struct rbx_pod *pod;
    pid_t pid;
    int sock;
    ino_t host_mntns;
};

void *rbx_prestart_alloc(struct rbx_prestart *ps, size_t n)
{
    size_t at = (ps->used + 15) & ~(size_t)15;
    if (!ps->arena || n > ARENA_SIZE || at > ARENA_SIZE - n)
        return NULL;
    ps->used = at + n;
    return ps->arena + at;
}

bool rbx_prestart_ready(const struct rbx_prestart *ps)
{
    return ps && ps->arena && ps->pid > 0 && ps->sock >= 0 && ps->pod;
}

char *rbx_prestart_strdup(struct rbx_prestart *ps, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = rbx_prestart_alloc(ps, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* NULL for a NULL v, and when full (then *full is set). */
static char **strv_copy(struct rbx_prestart *ps, char *const *v, bool *full)
{
    if (!v)
        return NULL;
    size_t n = rbx_strv_len((char **)v);
    char **d = rbx_prestart_alloc(ps, (n + 1) * sizeof(char *));
    for (size_t i = 0; d && i < n; i++)
        if (!(d[i] = rbx_prestart_strdup(ps, v[i])))
            d = NULL;
    if (!d)
        *full = true;
    return d;
}

char **rbx_prestart_strv(struct rbx_prestart *ps, char *const *v)
{
    bool full = false;
    return strv_copy(ps, v, &full);
}

int rbx_prestart_new(enum rbx_network_mode network, const char *hostname,
                     struct rbx_prestart **out, struct rbx_error **err)
{
    _cleanup_(rbx_prestart_freep) struct rbx_prestart *ps = rbx_xcalloc(1, sizeof(*ps));
    ps->pid = -1;
    ps->sock = -1;
    void *a = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: mmap");
    ps->arena = a;
    int r = rbx_pod_alloc(network, hostname, &ps->pod, err);
    if (r < 0)
        return r;
    ps->host_mntns = rbx_mount_ns_current();
    if (ps->host_mntns == 0)
        return rbx_error_set(err, RBX_ERR_SANDBOX, ENOENT,
                             "sandbox: cannot read /proc/self/ns/mnt (is /proc mounted?)");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");
    ps->sock = rbx_fd_above_stdio(sv[0]);
    _cleanup_close_ int child_sock = rbx_fd_above_stdio(sv[1]);
    _cleanup_close_ int devnull = rbx_fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
    struct holder *h = rbx_prestart_alloc(ps, sizeof(*h));
    const char *name = rbx_prestart_strdup(ps, ps->pod->hostname);
    if (ps->sock < 0 || child_sock < 0 || devnull < 0 || !h || !name)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno ? errno : ENOMEM,
                                   "sandbox: socketpair");
    *h = (struct holder){.sock = child_sock,
                         .host_mntns = ps->host_mntns,
                         .own_pod = true,
                         .own_net = network == RBX_NETWORK_NONE,
                         .hostname = name,
                         .parent_sock = ps->sock,
                         .devnull = devnull,
                         .early = true};
    ps->h = h;
    pid_t pid = rbx_clone(CLONE_NEWUSER | CLONE_NEWPID);
    if (pid == 0)
        holder_main(h);
    if (pid < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno,
                                   "sandbox: cannot create namespaces (are user namespaces "
                                   "enabled?)");
    ps->pid = pid;
    r = rbx_pod_write_maps(ps->pod, pid, err);
    if (r < 0)
        return r;
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_MAPPED;
    r = rbx_sync_send(ps->sock, &m, -1);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    *out = TAKE_PTR(ps);
    return 0;
}

struct rbx_prestart *rbx_prestart_free(struct rbx_prestart *ps)
{
    if (!ps)
        return NULL;
    rbx_kill_and_reap(&ps->pid);
    if (ps->sock >= 0)
        close(ps->sock);
    rbx_pod_free(ps->pod);
    if (ps->arena)
        munmap(ps->arena, ARENA_SIZE);
    free(ps);
    return NULL;
}

/* The holder's view of the spec, the rootfs plan and the rows, copied into its arena. */
static int prestart_fill(struct rbx_prestart *ps, const struct rbx_spec *spec,
                         const struct rbx_rootfs_plan *rootfs, const struct rbx_mount_row *rows,
                         size_t n_rows, const struct rbx_holder_then *then,
                         struct rbx_error **err)
{
    bool full = false;
    struct holder *h = ps->h;
    struct rbx_spec *s = rbx_prestart_alloc(ps, sizeof(*s));
    struct rbx_rootfs_plan *p = rbx_prestart_alloc(ps, sizeof(*p));
    struct rbx_mount_row *r = rbx_prestart_alloc(ps, (n_rows + 1) * sizeof(*r));
    struct rbx_holder_then *t = rbx_prestart_alloc(ps, sizeof(*t));
    if (!s || !p || !r || !t)
        full = true;
    else {
        s->lower_dirs = strv_copy(ps, spec->lower_dirs, &full);
        s->upper_dir = rbx_prestart_strdup(ps, spec->upper_dir);
        s->work_dir = rbx_prestart_strdup(ps, spec->work_dir);
        s->rootfs_dir = rbx_prestart_strdup(ps, spec->rootfs_dir);
        s->upper_volatile = spec->upper_volatile;
        s->readonly_rootfs = spec->readonly_rootfs;
        *p = (struct rbx_rootfs_plan){.overlay = rootfs->overlay, .n_lowers = rootfs->n_lowers};
        p->data = rbx_prestart_strdup(ps, rootfs->data);
        p->data_dir = rbx_prestart_strdup(ps, rootfs->data_dir);
        if (rootfs->n_lowers) {
            p->lowers = rbx_prestart_alloc(ps, rootfs->n_lowers * sizeof(char *));
            for (size_t i = 0; p->lowers && i < rootfs->n_lowers; i++)
                if (!(p->lowers[i] = rbx_prestart_strdup(ps, rootfs->lowers[i])))
                    full = true;
            full |= !p->lowers;
        }
        for (size_t i = 0; i < n_rows; i++) {
            r[i] = rows[i];
            r[i].source = rbx_prestart_strdup(ps, rows[i].source);
            r[i].target = rbx_prestart_strdup(ps, rows[i].target);
            r[i].type = rbx_prestart_strdup(ps, rows[i].type);
            r[i].data = rbx_prestart_strdup(ps, rows[i].data);
            full |= (rows[i].source && !r[i].source) || !r[i].target ||
                    (rows[i].type && !r[i].type) || (rows[i].data && !r[i].data);
        }
        *t = (struct rbx_holder_then){.fn = then->fn, .arg = then->arg};
        full |= (spec->upper_dir && !s->upper_dir) || (spec->work_dir && !s->work_dir) ||
                !s->rootfs_dir || (rootfs->data && !p->data) ||
                (rootfs->data_dir && !p->data_dir);
    }
    if (full)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG,
                             "sandbox: the run's spec is larger than the holder's %u MiB",
                             ARENA_SIZE >> 20);
    h->spec = s;
    h->rootfs = p;
    h->rows = r;
    h->n_rows = n_rows;
    h->then = t;
    return 0;
}

/* ---- the parent ---------------------------------------------------------------------------- */

struct rbx_cgroup_join {
    pthread_t thread;
    bool threaded;
    const struct rbx_cgroup *cg;
    pid_t pid;
    int errnum;
    size_t failed; /* the dir that refused it */
};

static void *join_main(void *arg)
{
    struct rbx_cgroup_join *j = arg;
    char pidtext[16];
    int n = snprintf(pidtext, sizeof(pidtext), "%d", (int)j->pid);
    for (size_t i = 0; i < j->cg->n_dirs; i++)
        if (write(j->cg->procs[i], pidtext, (size_t)n) != n) {
            j->errnum = errno ? errno : EIO;
            j->failed = i;
            break;
        }
    return NULL;
}

/* Put pid in every cgroup of the container from a thread (its own pid namespace's pid 1 forks
 * nothing before FINISH, which waits for it). */
static void join_start(struct rbx_container *c, pid_t pid)
{
    if (c->cg.n_dirs == 0)
        return;
    struct rbx_cgroup_join *j = rbx_xcalloc(1, sizeof(*j));
    j->cg = &c->cg;
    j->pid = pid;
    j->threaded = pthread_create(&j->thread, NULL, join_main, j) == 0;
    if (!j->threaded)
        join_main(j); /* no thread: the same writes, waited for here */
    c->join = j;
}

/* Wait for the join; 0 or the error of the cgroup that refused the holder. */
static int join_wait(struct rbx_container *c, struct rbx_error **err)
{
    struct rbx_cgroup_join *j = TAKE_PTR(c->join);
    if (!j)
        return 0;
    if (j->threaded)
        pthread_join(j->thread, NULL);
    int r = 0;
    if (j->errnum)
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, j->errnum, "sandbox: cgroup %s",
                                c->cg.dirs[j->failed]);
    free(j);
    return r;
}

struct create {
    const struct rbx_spec *spec;
    struct rbx_container *c;
    struct rbx_rootfs_plan rootfs;
    struct rbx_mount_row *rows;
    size_t n_rows;
    int sock, sigfd;
    const struct rbx_holder_then *then;
};

static int expect(struct create *cr, enum rbx_sync_type want, struct rbx_sync_msg *m, int *fd,
                  struct rbx_error **err)
{
    return rbx_parent_expect(cr->sock, cr->sigfd, &cr->c->holder, want, m, fd, cr->rows,
                             cr->n_rows, cr->spec->rootfs_dir, err);
}

static int send_batch(struct create *cr, struct rbx_sync_msg *m, int *fds,
                      struct rbx_target_dir *dir, struct rbx_error **err)
{
    rbx_target_dir_reset(dir);
    m->type = RBX_SYNC_MOUNT;
    int r = rbx_sync_sendv(cr->sock, m, fds, m->n_ops);
    for (size_t i = 0; i < m->n_ops; i++)
        close(fds[i]);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    int got = -1;
    r = expect(cr, RBX_SYNC_DONE, m, &got, err);
    if (got >= 0)
        close(got);
    memset(m, 0, sizeof(*m));
    return r;
}

static bool below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* The rows go in batches, one message each: a row joins the batch unless its target lies below
 * a target mounted in the same batch (it must be made in the new filesystem, once mounted);
 * a read-only step follows in the batch after its mount. FINISH comes after, on its own. */
static int apply_rows(struct create *cr, struct rbx_error **err)
{
    int rootfd = cr->c->rootfd;
    struct rbx_sync_msg m;
    int fds[RBX_SYNC_MAX_FDS];
    size_t batch_start = 0;
    _cleanup_(rbx_target_dir_reset) struct rbx_target_dir dir = RBX_TARGET_DIR_INIT;
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < cr->n_rows; i++) {
        const struct rbx_mount_row *row = &cr->rows[i];
        bool conflict = false;
        for (size_t k = batch_start; k < i && !conflict; k++)
            conflict = below(row->target, cr->rows[k].target);
        if ((conflict || m.n_ops + 1 >= RBX_SYNC_MAX_FDS) && m.n_ops) {
            int r = send_batch(cr, &m, fds, &dir, err);
            if (r < 0)
                return r;
            /* The read-only steps of what was just mounted open this batch. */
            for (size_t k = batch_start; k < i; k++) {
                if (!rbx_mount_row_needs_readonly(&cr->rows[k]))
                    continue;
                int fd = rbx_mount_target_reopen(rootfd, &cr->rows[k], err);
                if (fd < 0)
                    return fd;
                fds[m.n_ops] = fd;
                m.ops[m.n_ops++] = (struct rbx_sync_op){RBX_OP_READONLY, (uint32_t)k};
            }
            batch_start = i;
        }
        int fd = -1;
        int r = rbx_mount_target_prepare(rootfd, row, &dir, &fd, err);
        if (r < 0) {
            for (size_t k = 0; k < m.n_ops; k++)
                close(fds[k]);
            return r;
        }
        if (fd < 0)
            continue;
        fds[m.n_ops] = fd;
        m.ops[m.n_ops++] = (struct rbx_sync_op){RBX_OP_MOUNT, (uint32_t)i};
    }
    /* The last batch says so: the holder pivots while we go on (read-only steps, when some
     * follow, make one more). */
    bool readonly_follows = false;
    for (size_t k = batch_start; k < cr->n_rows; k++)
        readonly_follows |= rbx_mount_row_needs_readonly(&cr->rows[k]);
    if (m.n_ops) {
        m.last = !readonly_follows;
        int r = send_batch(cr, &m, fds, &dir, err);
        if (r < 0)
            return r;
    }
    for (size_t k = batch_start; k < cr->n_rows; k++) {
        if (!rbx_mount_row_needs_readonly(&cr->rows[k]))
            continue;
        int fd = rbx_mount_target_reopen(rootfd, &cr->rows[k], err);
        if (fd < 0)
            return fd;
        fds[m.n_ops] = fd;
        m.ops[m.n_ops++] = (struct rbx_sync_op){RBX_OP_READONLY, (uint32_t)k};
    }
    m.last = 1;
    return m.n_ops ? send_batch(cr, &m, fds, &dir, err) : 0;
}

/* FINISH: the holder pivots and parks; its answer says it did. */
static int finish(struct create *cr, struct rbx_error **err)
{
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_FINISH;
    int r = join_wait(cr->c, err);
    if (r < 0)
        return r;
    r = rbx_sync_send(cr->sock, &m, -1);
    /* Gone: failed on its way into the root, and said why (read next). */
    if (r < 0 && r != -EPIPE && r != -ECONNRESET)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
    int got = -1;
    r = expect(cr, RBX_SYNC_DONE, &m, &got, err);
    if (got >= 0)
        close(got);
    return r;
}

static int open_holder_ns(struct rbx_container *c, const char *name, struct rbx_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)c->holder, name);
    int fd = rbx_fd_above_stdio(open(path, O_RDONLY | O_CLOEXEC));
    return fd < 0 ? rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: open %s", path)
                  : fd;
}

/* The holder went into the root right after its last batch; when that failed, its words wait
 * on the socket and beat what our next step saw (its namespaces gone with it). */
static int said_why(struct create *cr, int r, struct rbx_error **err)
{
    struct pollfd pfd = {.fd = cr->sock, .events = POLLIN};
    if (poll(&pfd, 1, 0) != 1)
        return r;
    struct rbx_sync_msg m;
    int fd = -1;
    struct rbx_error *why = NULL;
    if (expect(cr, RBX_SYNC_DONE, &m, &fd, &why) < 0 && why) {
        rbx_error_free(*err);
        *err = why;
    } else {
        rbx_error_free(why);
    }
    if (fd >= 0)
        close(fd);
    return r;
}

static int drive(struct create *cr, struct rbx_error **err)
{
    struct rbx_container *c = cr->c;
    struct rbx_sync_msg m;
    int fd = -1;
    int r = expect(cr, RBX_SYNC_ROOTFS, &m, &fd, err);
    if (r < 0)
        return r;
    if (fd < 0)
        return rbx_error_set(err, RBX_ERR_SANDBOX, EPROTO, "sandbox: no rootfs fd from the child");
    c->rootfd = rbx_fd_above_stdio(fd);
    r = apply_rows(cr, err);
    if (r < 0)
        return r;
    /* An fd of it for the processes spawned into it later; the sole process needs none. */
    struct stat st;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)c->holder);
    if (!cr->then && (c->mntns = open_holder_ns(c, "mnt", err)) < 0)
        return said_why(cr, -EIO, err);
    if ((c->mntns >= 0 ? fstat(c->mntns, &st) : stat(path, &st)) < 0 ||
        st.st_ino == c->host_mntns)
        return said_why(cr,
                        rbx_error_set(err, RBX_ERR_SANDBOX, EPERM,
                                      "sandbox: the container has no mount namespace of its own"),
                        err);
    c->mntns_ino = st.st_ino;
    return 0;
}

/* The container's holder is the prestarted one: its spec into the arena, PLAN (with the v1
 * cgroups to join), and on as for a holder cloned now. */
static int take_prestart(struct create *cr, struct rbx_prestart *ps,
                         const struct rbx_holder_then *then, struct rbx_error **err)
{
    struct rbx_container *c = cr->c;
    int r = prestart_fill(ps, cr->spec, &cr->rootfs, cr->rows, cr->n_rows, then, err);
    if (r < 0)
        return r;
    c->holder = ps->pid;
    ps->pid = -1;
    c->sock = cr->sock = TAKE_FD(ps->sock);
    c->arena = TAKE_PTR(ps->arena);
    c->host_mntns = ps->host_mntns;
    if (c->cg.kind != RBX_CGROUP_V1)
        join_start(c, c->holder);
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_PLAN;
    /* A holder that failed already has said why: drive() reads it instead of ROOTFS. */
    (void)rbx_sync_sendv(c->sock, &m, c->cg.procs, c->cg.kind == RBX_CGROUP_V1 ? c->cg.n_dirs : 0);
    return 0;
}

static void link_into_pod(struct rbx_container *c)
{
    struct rbx_container **pp = &c->pod->containers;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
}

/* A holder cloned now: straight into new namespaces for a pod of its own, else through a
 * launcher into the pod's. */
static int start_holder(struct create *cr, struct rbx_pod *pod, const struct rbx_holder_then *then,
                        int sigfd, struct rbx_error **err)
{
    struct rbx_container *c = cr->c;
    const struct rbx_spec *spec = cr->spec;
    _cleanup_close_ int child_sock = -1, devnull = -1;
    int r;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "socketpair");
        return r;
    }
    c->sock = cr->sock = rbx_fd_above_stdio(sv[0]);
    child_sock = rbx_fd_above_stdio(sv[1]);
    devnull = rbx_fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (c->sock < 0 || child_sock < 0 || devnull < 0) {
        r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "sandbox: socketpair");
        return r;
    }

    bool own_net = pod->network == RBX_NETWORK_NONE;
    struct holder h = {.spec = spec,
                       .rootfs = &cr->rootfs,
                       .rows = cr->rows,
                       .n_rows = cr->n_rows,
                       .sock = child_sock,
                       .host_mntns = c->host_mntns,
                       .own_pod = c->own_pod,
                       .own_net = own_net,
                       .hostname = pod->hostname,
                       .parent_sock = c->sock,
                       .devnull = devnull,
                       .then = then};
    if (c->own_pod && c->cg.kind == RBX_CGROUP_V1) {
        h.cgroup_tasks = c->cg.procs;
        h.n_cgroup_tasks = c->cg.n_dirs;
    }
    if (c->own_pod) {
        /* A pod of its own: the holder is cloned into every namespace at once (fewer
         * processes than a pod and a launcher), the pod keeps fds of them. */
        unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS |
                              CLONE_NEWIPC | (own_net ? CLONE_NEWNET : 0);
        pid_t pid = rbx_clone(flags);
        if (pid == 0)
            holder_main(&h);
        if (pid < 0) {
            r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno,
                                    "sandbox: cannot create namespaces (are user namespaces "
                                    "enabled?)");
            return r;
        }
        c->holder = pid;
        close(TAKE_FD(child_sock));
        /* Fds of the namespaces, for processes spawned into them later: the sole process
         * (`then`) has no company. */
        if (!then && ((pod->userns = rbx_pod_open_ns(pid, "user", err)) < 0 ||
            (pod->utsns = rbx_pod_open_ns(pid, "uts", err)) < 0 ||
            (pod->ipcns = rbx_pod_open_ns(pid, "ipc", err)) < 0 ||
            (pod->netns = own_net ? rbx_pod_open_ns(pid, "net", err)
                                  : rbx_pod_open_ns(getpid(), "net", err)) < 0)) {
            r = -EIO;
            return r;
        }
        r = rbx_pod_write_maps(pod, pid, err);
        if (r < 0)
            return r;
        if (c->cg.kind != RBX_CGROUP_V1)
            join_start(c, pid);
        struct rbx_sync_msg m;
        memset(&m, 0, sizeof(m));
        m.type = RBX_SYNC_MAPPED;
        r = rbx_sync_send(c->sock, &m, -1);
        if (r < 0) {
            r = rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket");
            return r;
        }
    } else {
        struct rbx_launch l = {
            .n_cgroup_procs = c->cg.n_dirs,
            .ns_net = own_net ? pod->netns : -1,
            .ns_uts = pod->utsns,
            .ns_ipc = pod->ipcns,
            .ns_cgroup = -1,
            .ns_mnt = -1,
            .ns_user = pod->userns,
            .unshare_flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWCGROUP,
            .devnull = devnull,
            .sock = child_sock,
        };
        for (size_t i = 0; i < c->cg.n_dirs; i++)
            l.cgroup_procs[i] = c->cg.procs[i];
        r = rbx_launch(&l, c->sock, sigfd, holder_main, &h, &c->holder, err);
        if (r < 0)
            return r;
        close(TAKE_FD(child_sock));
    }
    return 0;
}

int rbx_container_create_internal(const struct rbx_spec *spec, struct rbx_pod *pod, int sigfd,
                                  const struct rbx_holder_then *then, struct rbx_container **out,
                                  struct rbx_error **err)
{
    _cleanup_(rbx_container_freep) struct rbx_container *c = rbx_xcalloc(1, sizeof(*c));
    c->holder = -1;
    c->sock = c->rootfd = c->mntns = c->cgroupns = -1;
    for (size_t i = 0; i < RBX_MAX_CGROUP_FDS; i++)
        c->cg.procs[i] = -1;
    struct create cr = {.spec = spec, .c = c, .sock = -1, .sigfd = sigfd, .then = then};
    int r;

    long page = sysconf(_SC_PAGESIZE);
    r = rbx_rootfs_plan_build(spec, page > 0 ? (size_t)page : 4096, &cr.rootfs, err);
    if (r < 0)
        goto out;
    r = rbx_mount_rows_build(spec, &cr.rows, &cr.n_rows, err);
    if (r < 0)
        goto out;
    c->rootfs_dir = rbx_xstrdup(spec->rootfs_dir);
    c->host_mntns = rbx_mount_ns_current();
    if (c->host_mntns == 0) {
        r = rbx_error_set(err, RBX_ERR_SANDBOX, ENOENT,
                          "sandbox: cannot read /proc/self/ns/mnt (is /proc mounted?)");
        goto out;
    }

    /* A holder started early for this run, when its namespaces are the ones the spec wants. */
    struct rbx_prestart *ps = then ? then->prestart : NULL;
    if (ps && (pod || !rbx_prestart_ready(ps) || ps->pod->network != spec->network ||
               strcmp(ps->pod->hostname, spec->hostname && *spec->hostname ? spec->hostname
                                                                           : RBX_DEFAULT_HOSTNAME) != 0))
        ps = NULL;
    if (ps) {
        pod = TAKE_PTR(ps->pod);
        c->own_pod = true;
    } else if (!pod) {
        r = rbx_pod_alloc(spec->network, spec->hostname, &pod, err);
        if (r < 0)
            goto out;
        c->own_pod = true;
    }
    c->pod = pod;
    link_into_pod(c);

    r = rbx_cgroup_create(&spec->limits, &c->cg, err);
    if (r < 0)
        goto out;

    r = ps ? take_prestart(&cr, ps, then, err) : start_holder(&cr, pod, then, sigfd, err);
    if (r < 0)
        goto out;
    r = drive(&cr, err);
    /* The cgroup namespace is the holder's own once FINISH is through. */
    if (r == 0 && !then && (r = finish(&cr, err)) == 0 &&
        (c->cgroupns = open_holder_ns(c, "cgroup", err)) < 0)
        r = -EIO;
    if (r < 0)
        goto out;
    *out = TAKE_PTR(c);
out:
    rbx_rootfs_plan_clear(&cr.rootfs);
    free(cr.rows);
    return r;
}

int rbx_container_create(const struct rbx_spec *spec, struct rbx_pod *pod,
                         struct rbx_container **out, struct rbx_error **err)
{
    return rbx_container_create_internal(spec, pod, -1, NULL, out, err);
}

int rbx_container_finish_then(struct rbx_container *c, const int *fds, size_t n_fds,
                              struct rbx_error **err)
{
    struct rbx_sync_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RBX_SYNC_FINISH;
    int r = join_wait(c, err);
    if (r < 0)
        return r;
    r = rbx_sync_sendv(c->sock, &m, fds, n_fds);
    /* Gone: failed on its way into the root; the caller reads why next. */
    if (r == -EPIPE || r == -ECONNRESET)
        return 0;
    return r < 0 ? rbx_error_set_errno(err, RBX_ERR_SANDBOX, -r, "sandbox: sync socket") : 0;
}

int rbx_container_rootfd(const struct rbx_container *c)
{
    return c->rootfd;
}

struct rbx_container *rbx_container_free(struct rbx_container *c)
{
    if (!c)
        return NULL;
    _cleanup_error_ struct rbx_error *ignored = NULL;
    join_wait(c, &ignored);
    while (c->procs)
        rbx_process_free(c->procs);
    /* The holder goes when its socket closes; SIGKILL makes it immediate. */
    rbx_kill_and_reap(&c->holder);
    rbx_cgroup_destroy(&c->cg);
    int *fds[] = {&c->sock, &c->rootfd, &c->mntns, &c->cgroupns};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(fds); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    if (c->pod) {
        struct rbx_container **pp = &c->pod->containers;
        while (*pp && *pp != c)
            pp = &(*pp)->next;
        if (*pp)
            *pp = c->next;
        if (c->own_pod)
            rbx_pod_free(c->pod);
    }
    if (c->arena)
        munmap(c->arena, ARENA_SIZE);
    free(c->rootfs_dir);
    free(c);
    return NULL;
}
