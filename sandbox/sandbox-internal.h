/* sandbox-internal.h — what the files of sandbox/ share: id maps, mount rows, the rootfs plan,
 * the parent/child sync protocol and the supervisor. Nothing here is seen outside sandbox/. */
#pragma once

#include "sandbox/sandbox.h"

#include <sys/signalfd.h>

/* ---- id maps (idmap.c) ------------------------------------------------------------------ */

#define RBX_IDMAP_MAX 340 /* the kernel's limit on lines in uid_map */

struct rbx_idmap_range {
    uint32_t inside, outside, count;
};

struct rbx_idmap {
    struct rbx_idmap_range r[RBX_IDMAP_MAX];
    size_t n;
};

/* Parse the text of a /proc/PID/{uid,gid}_map: lines of three decimal numbers. `what` names the
 * input in errors. Empty maps, zero counts and ranges past 2^32 are refused. */
int rbx_idmap_parse(const char *text, const char *what, struct rbx_idmap *out,
                    struct rbx_error **err);
/* The map for a child user namespace that sees exactly the ids its parent sees, as the same
 * numbers: each `inside outside count` of the parent's own map becomes `inside inside count`. */
void rbx_idmap_identity(const struct rbx_idmap *own, struct rbx_idmap *child);
/* Write the map as uid_map wants it into buf; returns the length it needs (>= len: truncated). */
size_t rbx_idmap_format(const struct rbx_idmap *m, char *buf, size_t len);
bool rbx_idmap_contains(const struct rbx_idmap *m, uint32_t id);
uint64_t rbx_idmap_count(const struct rbx_idmap *m);
/* Read this process's own map ("uid_map" or "gid_map"). */
int rbx_idmap_read_self(const char *file, struct rbx_idmap *out, struct rbx_error **err);
/* Write /proc/PID/<file> (uid_map, gid_map) in one write, as the kernel requires. */
int rbx_idmap_write(pid_t pid, const char *file, const struct rbx_idmap *m, struct rbx_error **err);
/* Write text to /proc/PID/<file> in one write (setgroups, a single-line map). */
int rbx_proc_write(pid_t pid, const char *file, const char *text, struct rbx_error **err);
/* "allow" -> false, "deny" -> true for this process. */
int rbx_setgroups_denied_self(bool *denied, struct rbx_error **err);

/* ---- subordinate ids (privilege.c) ------------------------------------------------------ */

/* Find the first range of /etc/subuid or /etc/subgid text ("name-or-id:start:count" lines) that
 * belongs to `user` (may be NULL) or to `id`. Returns true when found. */
bool rbx_subid_find(const char *text, const char *user, uint32_t id, uint32_t *start,
                    uint32_t *count);
/* Whether a signal received by reprobox should be passed on to the process it waits for: a
 * terminal's signals (SI_KERNEL) already reached the whole foreground process group. */
bool rbx_signal_should_forward(const struct signalfd_siginfo *si);

/* The hostname of a sandbox whose spec names none. */
#define RBX_DEFAULT_HOSTNAME "reprobox"

/* ---- the mount guard (mounts.c) --------------------------------------------------------- */

/* The inode of this process's mount namespace, 0 when unknown. */
ino_t rbx_mount_ns_current(void);
/* Runs in the child. Refuses (-EPERM) when the calling process is still in the mount namespace
 * `host_ns`, else makes "/" recursively private and arms the guard: every mount call of
 * sandbox/ goes through rbx_mount()/rbx_umount() and those refuse to run until this succeeded. */
int rbx_mount_ns_make_private(ino_t host_ns);
/* Runs in a process that setns()ed into a container's mount namespace `joined_ns` (its parent
 * checked the inode is not `host_ns`) and unshared a copy: arms the guard even before a /proc
 * of its own shows its namespace. */
int rbx_mount_ns_enter_joined(ino_t host_ns, ino_t joined_ns);
/* 0 when mounting is allowed here, -EPERM otherwise. */
int rbx_mount_guard(void);
int rbx_mount(const char *source, const char *target, const char *type, unsigned long flags,
              const void *data);
int rbx_umount(const char *target, int flags);
int rbx_move_mount(int from_fd, const char *target);
/* Write "/proc/self/fd/N" into buf (at least 32 bytes) without allocating. */
const char *rbx_fd_path(char *buf, int fd);

/* ---- mount rows (mounts.c, dev.c) ------------------------------------------------------- */

enum {
    RBX_MNT_DIR = 1 << 0,        /* the target is a directory, made when missing */
    RBX_MNT_FILE = 1 << 1,       /* the target is a file, made empty when missing */
    RBX_MNT_SYMLINK = 1 << 2,    /* no mount: a symlink at target pointing to `data` */
    RBX_MNT_OPTIONAL = 1 << 3,   /* skipped when the host lacks the source */
    RBX_MNT_NETNS_OWN = 1 << 4,  /* only when the sandbox has its own network namespace */
    RBX_MNT_NETNS_HOST = 1 << 5, /* only with the host's network */
    RBX_MNT_SYSTEM = 1 << 6,     /* /proc, /dev, /sys and below: never through an image's link */
};

/* One row of setup. A bind has MS_BIND in flags and a host path as source; MS_RDONLY on a bind
 * is applied as a second step (the kernel ignores it on the bind itself). Targets are paths
 * inside the rootfs, always resolved inside it by the parent. */
struct rbx_mount_row {
    const char *source;
    const char *target;
    const char *type;
    unsigned long flags;
    const char *data;
    unsigned options;
};

extern const struct rbx_mount_row rbx_dev_rows[];
extern const size_t rbx_dev_rows_count;

/* The rows of a run, in order: /proc, /dev (dev.c), /sys, then the user's mounts. Rows point
 * into static tables and into spec. */
int rbx_mount_rows_build(const struct rbx_spec *spec, struct rbx_mount_row **rows, size_t *n,
                         struct rbx_error **err);
bool rbx_mount_row_needs_readonly(const struct rbx_mount_row *row);
/* The directory the last system row was made in (/dev for most), kept for the next rows of the
 * same batch: one lookup from the root instead of one per row. Emptied each time a batch is
 * mounted, since what a path names changes then. */
struct rbx_target_dir {
    char path[RBX_PATH_MAX + 1];
    int fd;
};
#define RBX_TARGET_DIR_INIT {.fd = -1}
void rbx_target_dir_reset(struct rbx_target_dir *d);
/* Parent: make the target of `row` inside the root and return an O_PATH fd on it, or -1 (and 0
 * as return value) for rows that need no mount (symlinks). `dir` (or NULL) is the batch's cache
 * of the directory of system rows. */
int rbx_mount_target_prepare(int rootfd, const struct rbx_mount_row *row, struct rbx_target_dir *dir,
                             int *fd, struct rbx_error **err);
/* Parent: the fd of the mount now at the row's target, for the read-only step. */
int rbx_mount_target_reopen(int rootfd, const struct rbx_mount_row *row, struct rbx_error **err);
/* Child, before pivot_root: mount the row on the target fd. Returns 0 or -errno. */
int rbx_mount_row_apply(const struct rbx_mount_row *row, int targetfd);
/* Child: make the mount whose root is `fd` read-only (with its submounts when recursive). */
int rbx_mount_make_readonly(int fd, bool recursive);

/* ---- rootfs (rootfs.c) ------------------------------------------------------------------ */

struct rbx_rootfs_plan {
    bool overlay;
    const char **lowers; /* top layer first, pointing into the spec */
    size_t n_lowers;
    char *data;     /* the mount(2) option string, for kernels without "lowerdir+" */
    char *data_dir; /* when set, `data` holds paths relative to it: chdir there first */
};

/* Parent, before clone: validate the rootfs part of the spec and compute both ways of mounting
 * it. `page` is the limit of a mount(2) option string (the page size). */
int rbx_rootfs_plan_build(const struct rbx_spec *spec, size_t page, struct rbx_rootfs_plan *p,
                          struct rbx_error **err);
void rbx_rootfs_plan_clear(struct rbx_rootfs_plan *p);
/* Escape ':' ',' and '\' for an overlay option value. Caller frees. */
char *rbx_overlay_escape(const char *path);
/* Child: mount the rootfs on spec->rootfs_dir and return an O_PATH fd of it, or -errno with the
 * kernel's own words (the fs context log) copied to detail when it gave any. */
int rbx_rootfs_mount(const struct rbx_spec *spec, const struct rbx_rootfs_plan *p, char *detail,
                     size_t detail_len);
/* Test hook: mount overlays with mount(2) and its option string, as on kernels before 6.8. */
void rbx_rootfs_force_mount2(bool on);
/* Tests: holders cloned from now on fail their pivot_root (EIO), so that the error a holder
 * gives on its way into the root, after its last batch, is seen to reach the caller. */
void rbx_holder_force_pivot_failure(bool on);
/* Child: make the rootfs mount read-only (not its submounts). */
int rbx_rootfs_make_readonly(int rootfd);
/* Child: make rootfd the root and drop the old one (pivot_root(".", ".") then detach). */
int rbx_rootfs_pivot(int rootfd);

/* ---- network (net.c) -------------------------------------------------------------------- */

/* Child: bring "lo" up in the sandbox's own network namespace. Returns 0 or -errno. */
int rbx_net_loopback_up(void);

/* ---- users and commands (user.c, exec.c) ------------------------------------------------ */

/* Open a regular file inside the root for reading: resolved in the root, refused when it is not
 * a regular file (a FIFO or a device is never opened). -ENOENT without err when missing. */
int rbx_open_regular_in_root(int rootfd, const char *path, struct rbx_error **err);

/* Exactly `len` decimal digits (at most 10) that fit in 32 bits. */
bool rbx_parse_id(const char *s, size_t len, uint32_t *out);

#define RBX_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Turn an execve() errno reported by the child for `exec_path` into an error of the right kind
 * (missing interpreter or ELF loader, not executable, wrong format). Returns the negative errno. */
int rbx_exec_explain(int rootfd, const char *argv0, const char *exec_path, int errnum,
                     struct rbx_error **err);

/* ---- the sync protocol (sandbox.c) ------------------------------------------------------ */

#define RBX_MAX_GROUPS 64

enum rbx_sync_type {
    RBX_SYNC_MAPPED = 1, /* parent -> child: the id maps are written */
    RBX_SYNC_ROOTFS,     /* holder -> parent: the rootfs is mounted, its O_PATH fd attached */
    RBX_SYNC_MOUNT,      /* parent -> holder: a batch of ops, one attached fd each */
    RBX_SYNC_DONE,       /* child -> parent: the request is done */
    RBX_SYNC_FINISH,     /* parent -> holder: no more rows: pivot, then park (or become the
                          * sole process, its stdin/stdout/stderr attached) */
    RBX_SYNC_ERROR,      /* child -> parent: step `op` failed with errnum; the child exits */
    RBX_SYNC_PLAN,       /* parent -> prestarted holder: its spec is in the arena; the
                          * cgroups' `tasks` fds attached (v1) */
};

/* Steps of the children, named in the parent's error messages. */
enum rbx_child_op {
    RBX_OP_PROTOCOL,
    RBX_OP_STDIO,
    RBX_OP_PRIVATE,
    RBX_OP_ROOTFS,
    RBX_OP_OVERLAY,
    RBX_OP_MOUNT,
    RBX_OP_READONLY,
    RBX_OP_ROOT_READONLY,
    RBX_OP_PIVOT,
    RBX_OP_HOSTNAME,
    RBX_OP_LOOPBACK,
    RBX_OP_CHDIR,
    RBX_OP_SETGROUPS,
    RBX_OP_SETGID,
    RBX_OP_SETUID,
    RBX_OP_NO_NEW_PRIVS,
    RBX_OP_CLOSE_FDS,
    RBX_OP_EXEC,
    RBX_OP_CGROUP,
    RBX_OP_SETNS,
    RBX_OP_UNSHARE,
    RBX_OP_CLONE,
    RBX_OP_PROC,
    RBX_OP_MASK,
    RBX_OP_RLIMIT,
    RBX_OP_CAPS,
    RBX_OP_SECCOMP,
    RBX_OP_TTY,
    RBX_OP_INIT,
    RBX_OP__MAX
};

#define RBX_SYNC_MAX_FDS 64

/* One step of a mount batch: mount row `index` on its target fd, or make the mount at the fd
 * read-only. */
struct rbx_sync_op {
    uint32_t kind; /* RBX_OP_MOUNT or RBX_OP_READONLY */
    uint32_t index;
};

struct rbx_sync_msg {
    uint32_t type;
    uint32_t op;    /* RBX_SYNC_ERROR: enum rbx_child_op */
    uint32_t index; /* the mount row */
    int32_t errnum;
    char detail[256]; /* the kernel's own words, when it gave any */
    uint32_t n_ops;   /* RBX_SYNC_MOUNT */
    uint32_t last;    /* RBX_SYNC_MOUNT: no batch follows; the holder enters the root at once */
    struct rbx_sync_op ops[RBX_SYNC_MAX_FDS];
};

/* Send a message with an optional fd (-1: none). 0 or -errno. */
int rbx_sync_send(int sock, const struct rbx_sync_msg *m, int fd);
/* Receive one message and its fd (set to -1 when none came). 1: a message, 0: EOF, -errno. */
int rbx_sync_recv(int sock, struct rbx_sync_msg *m, int *fd);
/* The same with up to RBX_SYNC_MAX_FDS fds. */
int rbx_sync_sendv(int sock, const struct rbx_sync_msg *m, const int *fds, size_t n);
int rbx_sync_recvv(int sock, struct rbx_sync_msg *m, int *fds, size_t max, size_t *n);
/* Runs in a child: report which step failed and _exit(125). */
_Noreturn void rbx_child_fail(int sock, enum rbx_child_op op, uint32_t index, int errnum,
                              const char *detail);
/* Runs in a child right after PR_SET_PDEATHSIG: true when the parent already went away (its end
 * of the sync socket is closed), which the death signal would have missed. */
bool rbx_child_parent_gone(int sock);
/* The parent's side: an error of the child as an rbx_error (rows name the mount). */
int rbx_child_error(const struct rbx_sync_msg *m, const struct rbx_mount_row *rows, size_t n_rows,
                    const char *rootfs_dir, struct rbx_error **err);
/* Receive, but a signal on sigfd (>= 0) interrupts (-EINTR, *signo set): a ^C during set-up. */
int rbx_parent_recv(int sock, int sigfd, struct rbx_sync_msg *m, int *fd, int *signo);
/* A message of type `want` from the child, or an error saying why not (its own error, a
 * signal, its death: `pid` is reaped then and set to -1). */
int rbx_parent_expect(int sock, int sigfd, pid_t *pid, enum rbx_sync_type want,
                      struct rbx_sync_msg *m, int *fd, const struct rbx_mount_row *rows,
                      size_t n_rows, const char *rootfs_dir, struct rbx_error **err);
/* Child: close every fd from 3 up but `keep` (> 2). 0 or -errno. */
int rbx_close_fds_except(int keep);
/* Keep our fds off 0-2 (a caller that closed its stdio). */
int rbx_fd_above_stdio(int fd);
/* Raw clone with fork semantics and the given extra flags; the child returns 0. */
pid_t rbx_clone(unsigned long flags);
void rbx_kill_and_reap(pid_t *pid);

/* ---- launching into namespaces (launch.c) ----------------------------------------------- */

/* How a process is started inside existing namespaces: a launcher forked from reprobox joins
 * the cgroup and the namespaces, unshares what must be new, and clones the target with
 * CLONE_PARENT (so reprobox is its parent and can wait for it), writes its pid on a pipe of
 * its own and exits. Errors of the launcher come on the sync socket. */
#define RBX_MAX_CGROUP_FDS 4
struct rbx_launch {
    int cgroup_procs[RBX_MAX_CGROUP_FDS]; /* "0" is written to each (joins the cgroup) */
    size_t n_cgroup_procs;
    int ns_net, ns_uts, ns_ipc, ns_cgroup, ns_mnt, ns_user; /* -1: keep ours */
    int unshare_flags;
    int devnull; /* the launcher's and the target's 0-2 until they set their own, -1: keep */
    int sock;    /* the child's end of the sync socket */
};

/* Fork the launcher; in the target, `fn(arg)` runs (and must not return). Returns the target's
 * pid, reaping the launcher, or an error. */
int rbx_launch(const struct rbx_launch *l, int parent_sock, int sigfd, void (*fn)(void *),
               void *arg, pid_t *target, struct rbx_error **err);

/* ---- cgroups (cgroup.c) ------------------------------------------------------------------ */

enum rbx_cgroup_kind { RBX_CGROUP_NONE, RBX_CGROUP_V1, RBX_CGROUP_V2 };

struct rbx_cgroup {
    enum rbx_cgroup_kind kind;
    char *dirs[RBX_MAX_CGROUP_FDS]; /* v1: one per controller hierarchy; v2: one */
    size_t n_dirs;
    char *memory_dir, *pids_dir; /* among dirs, for counters; NULL when absent */
    int procs[RBX_MAX_CGROUP_FDS]; /* to join: v1 `tasks`, v2 cgroup.procs; write "0" */
    struct rbx_limits applied;
    bool nproc_fallback; /* pids limited by RLIMIT_NPROC instead */
    char *note;
};

/* Where cgroups are mounted and where this process is: parsed from mountinfo and
 * /proc/self/cgroup text (pure, for tests). */
struct rbx_cgroup_layout {
    char *v1_memory, *v1_pids, *v1_cpu; /* our own cgroup dir in each v1 hierarchy, or NULL */
    char *v2;                           /* our own cgroup dir in a cgroup2 mount, or NULL */
    bool v2_unified;                    /* /sys/fs/cgroup itself is cgroup2 */
};
int rbx_cgroup_layout_parse(const char *mountinfo, const char *self_cgroup,
                            struct rbx_cgroup_layout *out, struct rbx_error **err);
void rbx_cgroup_layout_clear(struct rbx_cgroup_layout *l);
/* Make a cgroup for a container and apply the limits; degrades (kind NONE, note set) where this
 * user has no cgroup to write to. Errors only for a cgroup that exists but refuses a limit. */
int rbx_cgroup_create(const struct rbx_limits *want, struct rbx_cgroup *cg,
                      struct rbx_error **err);
/* Kill whatever is in it, remove it. */
void rbx_cgroup_destroy(struct rbx_cgroup *cg);
/* OOM kills so far (memory.events oom_kill / memory.oom_control oom_kill). */
uint64_t rbx_cgroup_oom_kills(const struct rbx_cgroup *cg);
/* Remove cgroups named reprobox-<pid>-<id> under `dir` whose pid is gone. */
void rbx_cgroup_sweep_dir(const char *dir);
/* "reprobox-<pid>-<id>" names: the pid, or 0 when the name is not one of ours. */
pid_t rbx_cgroup_name_pid(const char *name);

/* ---- capabilities and rlimits (caps.c) -------------------------------------------------- */

#define RBX_DEFAULT_CAPS                                                                           \
    ((1ULL << 0) /* CHOWN */ | (1ULL << 1) /* DAC_OVERRIDE */ | (1ULL << 3) /* FOWNER */ |         \
     (1ULL << 4) /* FSETID */ | (1ULL << 5) /* KILL */ | (1ULL << 6) /* SETGID */ |                \
     (1ULL << 7) /* SETUID */ | (1ULL << 8) /* SETPCAP */ | (1ULL << 10) /* NET_BIND_SERVICE */ |  \
     (1ULL << 18) /* SYS_CHROOT */ | (1ULL << 31) /* SETFCAP */)
/* The highest capability this kernel knows. */
unsigned rbx_cap_last(void);
/* Child: bounding set and ambient set reduced to `caps` (before the uid changes). */
int rbx_caps_drop_bounding(uint64_t caps, unsigned last);
/* Child: permitted/effective `caps` (uid 0) or none, inheritable none (after the uid changes). */
int rbx_caps_apply(uint64_t caps, bool root);
/* "CAP_CHOWN,CAP_KILL" into buf. */
void rbx_caps_format(uint64_t caps, char *buf, size_t len);

#define RBX_MAX_RLIMITS 16
#define RBX_DEFAULT_NOFILE_SOFT 1024
#define RBX_DEFAULT_NOFILE_HARD 524288
/* The rlimits a process gets: the spec's, plus the nofile default, hard limits capped at ours. */
int rbx_rlimits_plan(const struct rbx_rlimit *in, size_t n, struct rbx_rlimit *out,
                     size_t *n_out, struct rbx_error **err);
const char *rbx_rlimit_name(int resource);
/* "nofile" or "RLIMIT_NOFILE" -> RLIMIT_NOFILE, -1 when unknown. */
int rbx_rlimit_resource(const char *name);

/* ---- seccomp (seccomp.c, seccomp_default.c) --------------------------------------------- */

/* A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER). */
struct rbx_bpf {
    void *insns; /* struct sock_filter[] */
    size_t len;  /* instructions */
    char digest[RBX_DIGEST_LEN + 1];
};
/* The filter a process gets: the default profile for `caps`, or spec's profile; from the cache
 * dir when there, else compiled with libseccomp (and stored). `desc` says which. */
int rbx_seccomp_prepare(enum rbx_seccomp_mode mode, const struct rbx_seccomp *profile,
                        uint64_t caps, const char *cache_dir, struct rbx_bpf *out, char *desc,
                        size_t desc_len, struct rbx_error **err);
void rbx_bpf_clear(struct rbx_bpf *b);
/* The default profile as a parsed profile (for bundles and tests). */
int rbx_seccomp_default(struct rbx_seccomp **out);
/* The profile resolved for `caps` (includes/excludes applied) as an OCI linux.seccomp object. */
json_t *rbx_seccomp_to_oci(const struct rbx_seccomp *s, uint64_t caps);
/* Child: install the filter (the last step before execve). */
int rbx_seccomp_install(const struct rbx_bpf *b);

/* ---- masked and read-only paths (mounts.c) ---------------------------------------------- */

struct rbx_path_row {
    const char *path;
    bool readonly; /* false: masked */
};
extern const struct rbx_path_row rbx_proc_paths[];
extern const size_t rbx_proc_paths_count;
extern const struct rbx_path_row rbx_sys_paths[];
extern const size_t rbx_sys_paths_count;
/* Child, after the fresh /proc is mounted: mask (bind /dev/null from `devnull`, or an empty
 * read-only tmpfs on a directory) or make read-only each path of the table that exists. Returns
 * 0 or -errno with the failing row's index in *index. */
int rbx_paths_apply(const struct rbx_path_row *rows, size_t n, int devnull, size_t *index);
/* Child (a spawned process): a fresh /proc of its pid namespace in place of the holder's. */
int rbx_proc_replace(void);
/* Child, after pivot_root: /dev/null, refused (-EINVAL) unless the real char device 1:3. */
int rbx_devnull_open_checked(void);
/* Child, after pivot_root: the paths of /sys and/or /proc masked over a checked /dev/null;
 * on failure, says which path on `sock` and exits. */
void rbx_masks_apply(int sock, bool sys, bool proc);

/* ---- pods, containers, processes (pod.c, container.c, process.c, supervise.c) ------------ */

struct rbx_pod {
    enum rbx_network_mode network;
    char hostname[65];
    int userns, netns, utsns, ipcns; /* netns: ours with RBX_NETWORK_HOST */
    struct rbx_idmap uid_map, gid_map;
    bool setgroups_deny;
    struct rbx_container *containers;
};

/* A pod with its maps computed and no namespaces yet (fds -1). */
int rbx_pod_alloc(enum rbx_network_mode network, const char *hostname, struct rbx_pod **out,
                  struct rbx_error **err);
/* Write the pod's id maps (and setgroups) for the child `pid` of a new user namespace. */
int rbx_pod_write_maps(const struct rbx_pod *pod, pid_t pid, struct rbx_error **err);
/* An fd of /proc/PID/ns/NAME. */
int rbx_pod_open_ns(pid_t pid, const char *name, struct rbx_error **err);
/* Internal variants with a signalfd that interrupts set-up (rbx_sandbox_run's). */
int rbx_pod_create_internal(enum rbx_network_mode network, const char *hostname, int sigfd,
                            struct rbx_pod **out, struct rbx_error **err);

struct rbx_container {
    struct rbx_pod *pod;
    bool own_pod;
    struct rbx_container *next; /* in the pod */
    pid_t holder;
    int sock;   /* the holder parks on it: closing it lets the holder go */
    int rootfd; /* O_PATH of the merged rootfs */
    int mntns, cgroupns;
    ino_t host_mntns, mntns_ino;
    char *rootfs_dir;
    struct rbx_cgroup cg;
    /* cgroup v2: a holder of its own pod is put in the cgroup from a thread of ours while it
     * mounts (moving another process takes the global threadgroup lock, whose first taker in a
     * while waits for an RCU grace period). On v1 the holder moves itself through `tasks`. */
    struct rbx_cgroup_join *join;
    void *arena; /* a prestarted holder's (ARENA_SIZE), unmapped with the container */
    struct rbx_process *procs;
};

/* What the holder becomes instead of parking: rbx_sandbox_run's one process is the holder itself
 * (one process, one pid namespace and one /proc less to make). `fn` runs in the holder after
 * pivot_root and the masks of /sys and /proc, with the fds the FINISH message brought, and must
 * not return. */
struct rbx_holder_then {
    void (*fn)(void *arg, int sock, const int *fds, size_t n_fds);
    void *arg;
    /* A holder cloned early (rbx_prestart_new): `arg`, and whatever it points to, must lie in
     * its arena (rbx_prestart_alloc). */
    struct rbx_prestart *prestart;
};

/* Memory shared with a prestarted holder, which was forked before the run's spec existed: what
 * it will read is copied there. NULL when the arena is full. */
void *rbx_prestart_alloc(struct rbx_prestart *ps, size_t n);
/* Its holder is there, not taken by a container yet. */
bool rbx_prestart_ready(const struct rbx_prestart *ps);
char *rbx_prestart_strdup(struct rbx_prestart *ps, const char *s);
char **rbx_prestart_strv(struct rbx_prestart *ps, char *const *v);

/* With `then`, the container is left mounted and not finished: rbx_container_finish_then sends
 * FINISH when the caller is ready. */
int rbx_container_create_internal(const struct rbx_spec *spec, struct rbx_pod *pod, int sigfd,
                                  const struct rbx_holder_then *then, struct rbx_container **out,
                                  struct rbx_error **err);
/* Send FINISH with `fds` to a holder made with `then`: it pivots and runs then->fn. Its news
 * (an error, or EOF at execve) come on c->sock. */
int rbx_container_finish_then(struct rbx_container *c, const int *fds, size_t n_fds,
                              struct rbx_error **err);

struct rbx_process {
    struct rbx_container *c;
    struct rbx_process *next_in_container, *next_live;
    pid_t pid;
    int pidfd;
    int src[2];       /* stdout, stderr read ends (a pty: src[0] only), -1 once done */
    int dst[2];       /* the caller's fds, -1: discard (or broken) */
    int log[2];       /* log files, -1: none */
    uint64_t log_max, log_written[2];
    bool log_truncated[2];
    struct rbx_tail *tail[2];
    int tty_in;       /* with a pty: the caller's stdin, relayed to the master */
    bool tty;
    /* timing and supervision */
    uint64_t t_start, t_exec, t_exit, t_last_output;
    uint64_t timeout_ns, idle_ns, grace_ns, kill_at;
    enum rbx_stop_reason stop_reason;
    bool term_sent, kill_sent, killed_after_grace;
    bool exited;
    int wstatus;
    uint64_t oom_base;
    /* what the report shows */
    char *exec_path;
    uid_t uid;
    gid_t gid;
    bool cwd_created;
    uint64_t caps;
    char seccomp[96];
};

/* Start a process; `res` (optional) gets what set-up found out even when it fails. */
int rbx_spawn_internal(struct rbx_container *c, const struct rbx_spec *proc, int sigfd,
                       struct rbx_process **out, struct rbx_result *res, struct rbx_error **err);
/* rbx_sandbox_run's container and its one process, which is the container's holder itself: made
 * together, freed as usual (the process, then the container). */
int rbx_spawn_sole(const struct rbx_spec *spec, int sigfd, struct rbx_container **c,
                   struct rbx_process **p, struct rbx_result *res, struct rbx_error **err);
/* Supervise every live process until `target` is done (or once, without blocking, when
 * `once`); signals read from sigfd are passed to `target`. */
int rbx_supervise(struct rbx_process *target, bool once, int sigfd, struct rbx_error **err);
void rbx_supervise_add(struct rbx_process *p);
void rbx_supervise_remove(struct rbx_process *p);
/* SIGTERM now, SIGKILL after the grace (reason kept unless one is already set). */
void rbx_process_begin_stop(struct rbx_process *p, enum rbx_stop_reason reason, uint64_t grace_ns);
/* Fill res from a finished process. */
void rbx_process_result(const struct rbx_process *p, struct rbx_result *res);
