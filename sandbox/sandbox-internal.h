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

/* ---- the mount guard (mounts.c) --------------------------------------------------------- */

/* The inode of this process's mount namespace, 0 when unknown. */
ino_t rbx_mount_ns_current(void);
/* Runs in the child. Refuses (-EPERM) when the calling process is still in the mount namespace
 * `host_ns`, else makes "/" recursively private and arms the guard: every mount call of
 * sandbox/ goes through rbx_mount()/rbx_umount() and those refuse to run until this succeeded. */
int rbx_mount_ns_make_private(ino_t host_ns);
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
/* Parent: make the target of `row` inside the root and return an O_PATH fd on it, or -1 (and 0
 * as return value) for rows that need no mount (symlinks). */
int rbx_mount_target_prepare(int rootfd, const struct rbx_mount_row *row, int *fd,
                             struct rbx_error **err);
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
    RBX_SYNC_ROOTFS,     /* child -> parent: the rootfs is mounted, its O_PATH fd attached */
    RBX_SYNC_MOUNT,      /* parent -> child: apply row `index` on the attached target fd */
    RBX_SYNC_READONLY,   /* parent -> child: make the mount of row `index` (fd attached) ro */
    RBX_SYNC_DONE,       /* child -> parent: the request is done */
    RBX_SYNC_PLAN,       /* parent -> child: the exec plan; EOF after it means execve worked */
    RBX_SYNC_ERROR,      /* child -> parent: step `op` failed with errnum; the child exits */
};

/* Steps of the child, named in the parent's error messages. */
enum rbx_child_op {
    RBX_OP_PROTOCOL,
    RBX_OP_STDIO,
    RBX_OP_PRIVATE,
    RBX_OP_ROOTFS,
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
    RBX_OP__MAX
};

/* What the parent decided once it could look inside the rootfs. */
struct rbx_exec_plan {
    uint32_t uid, gid;
    uint32_t n_groups;
    uint32_t groups[RBX_MAX_GROUPS];
    bool set_groups; /* false when the user namespace denies setgroups */
    char exec_path[RBX_PATH_MAX + 1];
    char cwd[RBX_PATH_MAX + 1];
    char home_env[sizeof("HOME=") + 256]; /* "" when the env already has HOME */
};

struct rbx_sync_msg {
    uint32_t type;
    uint32_t op;    /* RBX_SYNC_ERROR: enum rbx_child_op */
    uint32_t index; /* the mount row */
    int32_t errnum;
    char detail[256]; /* the kernel's own words, when it gave any */
    struct rbx_exec_plan plan;
};

/* Send a message with an optional fd (-1: none). 0 or -errno. */
int rbx_sync_send(int sock, const struct rbx_sync_msg *m, int fd);
/* Receive one message and its fd (set to -1 when none came). 1: a message, 0: EOF, -errno. */
int rbx_sync_recv(int sock, struct rbx_sync_msg *m, int *fd);

/* ---- the supervisor (supervise.c) ------------------------------------------------------- */

struct rbx_supervisor {
    pid_t pid;
    int pidfd;          /* -1: poll waitpid on a short timer instead */
    int sigfd;          /* signalfd of the signals to forward, -1: none */
    int out_r, err_r;   /* the read ends of the command's stdout and stderr pipes */
    int out_fd, err_fd; /* where to copy them, -1: discard */
    struct rbx_tail *out_tail, *err_tail;
};

/* Relay output until the command is gone, forwarding signals; returns its wait status. */
int rbx_supervise(struct rbx_supervisor *s, int *wstatus, struct rbx_error **err);
