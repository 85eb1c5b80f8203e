/* mounts.c — the mount table of a run and the one loop step that applies a row, plus the guard
 * every mount call of sandbox/ goes through: nothing is mounted until the calling process is in
 * its own mount namespace with "/" made private. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

/* ---- the guard ---------------------------------------------------------------------------- */

static ino_t guard_host_ns;
static bool guard_armed;
/* The process that passed the check last: it stays where it is (nothing in sandbox/ changes
 * namespace after arming the guard), so its next mounts need no stat of /proc each. */
static pid_t guard_passed;

ino_t rbx_mount_ns_current(void)
{
    struct stat st;
    return stat("/proc/self/ns/mnt", &st) == 0 ? st.st_ino : 0;
}

int rbx_mount_ns_make_private(ino_t host_ns)
{
    ino_t cur = rbx_mount_ns_current();
    if (host_ns == 0 || cur == 0 || cur == host_ns)
        return -EPERM;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -errno;
    guard_host_ns = host_ns;
    guard_armed = true;
    guard_passed = 0;
    return 0;
}

/* A process that joined a container's mount namespace sees no /proc of its own until it mounts
 * one: until then the namespace it joined, checked by its parent, stands for its own. */
static ino_t guard_joined_ns;

int rbx_mount_ns_enter_joined(ino_t host_ns, ino_t joined_ns)
{
    if (host_ns == 0 || joined_ns == 0 || joined_ns == host_ns)
        return -EPERM;
    guard_host_ns = host_ns;
    guard_joined_ns = joined_ns;
    guard_armed = true;
    guard_passed = 0;
    return 0;
}

int rbx_mount_guard(void)
{
    if (!guard_armed)
        return -EPERM;
    pid_t self = getpid();
    if (guard_passed == self)
        return 0;
    ino_t cur = rbx_mount_ns_current();
    if (cur == 0 && guard_joined_ns != 0)
        return 0;
    if (cur == 0 || cur == guard_host_ns)
        return -EPERM;
    guard_passed = self;
    return 0;
}

int rbx_mount(const char *source, const char *target, const char *type, unsigned long flags,
              const void *data)
{
    int r = rbx_mount_guard();
    if (r < 0)
        return r;
    return mount(source, target, type, flags, data) < 0 ? -errno : 0;
}

int rbx_umount(const char *target, int flags)
{
    int r = rbx_mount_guard();
    if (r < 0)
        return r;
    return umount2(target, flags) < 0 ? -errno : 0;
}

int rbx_move_mount(int from_fd, const char *target)
{
    int r = rbx_mount_guard();
    if (r < 0)
        return r;
    return syscall(SYS_move_mount, from_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0
               ? -errno
               : 0;
}

const char *rbx_fd_path(char *buf, int fd)
{
    static const char prefix[] = "/proc/self/fd/";
    char digits[16];
    size_t n = 0;
    unsigned v = (unsigned)fd;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof(digits));
    memcpy(buf, prefix, sizeof(prefix) - 1);
    size_t i = sizeof(prefix) - 1;
    while (n)
        buf[i++] = digits[--n];
    buf[i] = '\0';
    return buf;
}

/* ---- the table ---------------------------------------------------------------------------- */

static const struct rbx_mount_row proc_rows[] = {
    {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
     RBX_MNT_DIR | RBX_MNT_SYSTEM},
};

static const struct rbx_mount_row sys_rows[] = {
    /* sysfs shows the network devices of the namespace that mounts it: only ours. */
    {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL,
     RBX_MNT_DIR | RBX_MNT_NETNS_OWN | RBX_MNT_SYSTEM},
    /* Without a network namespace of our own the kernel refuses a new sysfs: show the host's. */
    {"/sys", "/sys", NULL, MS_BIND | MS_REC | MS_RDONLY, NULL,
     RBX_MNT_DIR | RBX_MNT_NETNS_HOST | RBX_MNT_SYSTEM},
};

/* moby's and runc's lists: what a container must not read (masked: /dev/null over a file, an
 * empty read-only tmpfs over a directory) or write (read-only). Absent paths are skipped. */
const struct rbx_path_row rbx_proc_paths[] = {
    {"/proc/acpi", false},         {"/proc/asound", false},      {"/proc/interrupts", false},
    {"/proc/kcore", false},        {"/proc/keys", false},        {"/proc/latency_stats", false},
    {"/proc/timer_list", false},   {"/proc/timer_stats", false}, {"/proc/sched_debug", false},
    {"/proc/scsi", false},         {"/proc/bus", true},          {"/proc/fs", true},
    {"/proc/irq", true},           {"/proc/sys", true},          {"/proc/sysrq-trigger", true},
};
const size_t rbx_proc_paths_count = RBX_ARRAY_SIZE(rbx_proc_paths);

const struct rbx_path_row rbx_sys_paths[] = {
    {"/sys/firmware", false},
    {"/sys/devices/virtual/powercap", false},
};
const size_t rbx_sys_paths_count = RBX_ARRAY_SIZE(rbx_sys_paths);

#define RBX_MAX_USER_MOUNTS 128

static bool row_wanted(const struct rbx_mount_row *row, const struct rbx_spec *spec)
{
    bool own_net = spec->network == RBX_NETWORK_NONE;
    if ((row->options & RBX_MNT_NETNS_OWN) && !own_net)
        return false;
    if ((row->options & RBX_MNT_NETNS_HOST) && own_net)
        return false;
    if ((row->options & RBX_MNT_OPTIONAL) && row->source && row->source[0] == '/' &&
        access(row->source, F_OK) < 0)
        return false;
    return true;
}

static void push_rows(struct rbx_mount_row *rows, size_t *n, const struct rbx_mount_row *table,
                      size_t count, const struct rbx_spec *spec)
{
    for (size_t i = 0; i < count; i++)
        if (row_wanted(&table[i], spec))
            rows[(*n)++] = table[i];
}

static int user_row(const struct rbx_mount_spec *m, struct rbx_mount_row *row,
                    struct rbx_error **err)
{
    const char *type = m->type ? m->type : (m->source ? "bind" : "tmpfs");
    if (!m->target || m->target[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "mount target \"%s\": must be an absolute path",
                             m->target ? m->target : "");
    _cleanup_free_ char *clean = NULL;
    if (rbx_path_clean(m->target, &clean, err) < 0)
        return rbx_error_wrap(err, "mount target");
    if (!*clean)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "mount target \"%s\": the root itself",
                             m->target);
    memset(row, 0, sizeof(*row));
    row->target = m->target;
    if (strcmp(type, "tmpfs") == 0) {
        row->source = "tmpfs";
        row->type = "tmpfs";
        /* docker's --tmpfs defaults */
        row->flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->readonly ? MS_RDONLY : 0);
        row->data = "mode=1777";
        row->options = RBX_MNT_DIR;
        return 0;
    }
    if (strcmp(type, "bind") != 0)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, EINVAL, "mount type \"%s\" on %s", type,
                             m->target);
    if (!m->source || m->source[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "mount source \"%s\": must be an absolute host path",
                             m->source ? m->source : "");
    struct stat st;
    if (stat(m->source, &st) < 0)
        return rbx_error_set_errno(err, errno == ENOENT ? RBX_ERR_NOT_FOUND : RBX_ERR_IO, errno,
                                   "mount source \"%s\"", m->source);
    row->source = m->source;
    row->flags = MS_BIND | MS_REC | (m->readonly ? MS_RDONLY : 0);
    row->options = S_ISDIR(st.st_mode) ? RBX_MNT_DIR : RBX_MNT_FILE;
    return 0;
}

int rbx_mount_rows_build(const struct rbx_spec *spec, struct rbx_mount_row **rows, size_t *n,
                         struct rbx_error **err)
{
    if (spec->n_mounts > RBX_MAX_USER_MOUNTS)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%zu mounts (limit %d)", spec->n_mounts,
                             RBX_MAX_USER_MOUNTS);
    size_t cap =
        RBX_ARRAY_SIZE(proc_rows) + rbx_dev_rows_count + RBX_ARRAY_SIZE(sys_rows) + spec->n_mounts;
    _cleanup_free_ struct rbx_mount_row *out = rbx_xcalloc(cap, sizeof(*out));
    size_t k = 0;
    push_rows(out, &k, proc_rows, RBX_ARRAY_SIZE(proc_rows), spec);
    push_rows(out, &k, rbx_dev_rows, rbx_dev_rows_count, spec);
    push_rows(out, &k, sys_rows, RBX_ARRAY_SIZE(sys_rows), spec);
    for (size_t i = 0; i < spec->n_mounts; i++) {
        int r = user_row(&spec->mounts[i], &out[k], err);
        if (r < 0)
            return r;
        k++;
    }
    *rows = TAKE_PTR(out);
    *n = k;
    return 0;
}

bool rbx_mount_row_needs_readonly(const struct rbx_mount_row *row)
{
    return (row->flags & MS_BIND) && (row->flags & MS_RDONLY);
}

/* ---- parent: targets inside the root ------------------------------------------------------ */

void rbx_target_dir_reset(struct rbx_target_dir *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->path[0] = '\0';
}

/* The directory of a system row's target, reached without a symlink, from the cache when the
 * previous row had the same one; its last component goes to `name`. Borrowed: the cache owns
 * it. Negative when there is none of that kind (the caller takes the long way). */
static int target_dir(int rootfd, const char *target, struct rbx_target_dir *d, char *name)
{
    _cleanup_free_ char *clean = NULL;
    if (rbx_path_clean(target, &clean, NULL) < 0)
        return -EINVAL;
    char *slash = strrchr(clean, '/');
    if (!slash)
        return -ENOENT; /* right below the root: rare, the long way */
    *slash = '\0';
    strcpy(name, slash + 1); /* rbx_path_clean bounded it to RBX_NAME_MAX */
    if (d->fd >= 0 && strcmp(d->path, clean) == 0)
        return d->fd;
    int fd = rbx_open_in_root(rootfd, clean, O_PATH | O_DIRECTORY, 0, RBX_RESOLVE_NO_SYMLINKS, NULL);
    if (fd < 0)
        return fd;
    rbx_target_dir_reset(d);
    snprintf(d->path, sizeof(d->path), "%s", clean);
    d->fd = fd;
    return fd;
}

/* A system row's target made in its directory: a fresh /dev holds none of them yet. */
static int open_in_target_dir(int dirfd, const char *name, bool dir)
{
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT)
        return fd < 0 ? -errno : fd;
    if (dir) {
        if ((mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) || fchmodat(dirfd, name, 0755, 0) < 0)
            return -errno;
    } else {
        int f = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST)
            return -errno;
        if (f >= 0)
            close(f);
    }
    fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int prepare_file(int rootfd, const char *target, struct rbx_error **err)
{
    int fd = rbx_open_in_root(rootfd, target, O_PATH, 0, 0, err);
    if (fd == -ENOENT) {
        char name[RBX_NAME_MAX + 1];
        _cleanup_close_ int dir = rbx_open_parent_in_root(rootfd, target, true, name, err);
        if (dir < 0)
            return dir;
        int f = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST)
            return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "create %s", target);
        if (f >= 0)
            close(f);
        fd = rbx_open_in_root(rootfd, target, O_PATH, 0, 0, err);
    }
    if (fd < 0)
        return fd == -ENOENT || fd == -ENOTDIR
                   ? rbx_error_set_errno(err, RBX_ERR_SANDBOX, -fd, "%s", target)
                   : fd;
    struct stat st;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        close(fd);
        return rbx_error_set(err, RBX_ERR_SANDBOX, EISDIR,
                             "%s: a directory where a file is mounted", target);
    }
    return fd;
}

static int prepare_symlink(int rootfd, const struct rbx_mount_row *row, struct rbx_target_dir *cache,
                           struct rbx_error **err)
{
    char name[RBX_NAME_MAX + 1];
    _cleanup_close_ int own = -1;
    int dir = cache ? target_dir(rootfd, row->target, cache, name) : -ENOENT;
    if (dir < 0)
        dir = own = rbx_open_parent_in_root(rootfd, row->target, true, name, err);
    if (dir < 0)
        return dir;
    if (symlinkat(row->data, dir, name) == 0)
        return 0;
    if (errno == EEXIST) {
        char cur[RBX_PATH_MAX + 1];
        ssize_t n = readlinkat(dir, name, cur, sizeof(cur) - 1);
        if (n >= 0 && (size_t)n == strlen(row->data) && memcmp(cur, row->data, (size_t)n) == 0)
            return 0;
    }
    return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "symlink %s -> %s", row->target,
                               row->data);
}

/* /proc, /dev, /sys and what is below them: made when missing, but never reached through a
 * symlink the image put there (a link at /proc would send the mount elsewhere). */
static int prepare_system(int rootfd, const struct rbx_mount_row *row, struct rbx_target_dir *cache,
                          struct rbx_error **err)
{
    bool dir = !(row->options & RBX_MNT_FILE);
    /* No O_DIRECTORY: a link must be seen as a link (ELOOP), not as "not a directory". */
    int flags = O_PATH;
    _cleanup_error_ struct rbx_error *e = NULL;
    char name[RBX_NAME_MAX + 1];
    int dirfd = cache ? target_dir(rootfd, row->target, cache, name) : -ENOENT;
    int fd = dirfd >= 0 ? open_in_target_dir(dirfd, name, dir)
                        : rbx_open_in_root(rootfd, row->target, flags, 0,
                                           RBX_RESOLVE_NO_SYMLINKS | RBX_RESOLVE_NOFOLLOW, &e);
    if (fd == -ENOENT && dirfd < 0) {
        int made = dir ? rbx_mkdir_p_in_root(rootfd, row->target, 0755, NULL, err)
                       : prepare_file(rootfd, row->target, err);
        if (made < 0)
            return made;
        close(made);
        rbx_error_free(TAKE_PTR(e));
        fd = rbx_open_in_root(rootfd, row->target, flags, 0,
                              RBX_RESOLVE_NO_SYMLINKS | RBX_RESOLVE_NOFOLLOW, &e);
    }
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
        close(fd);
        fd = -ELOOP;
    }
    if (fd == -ELOOP)
        return rbx_error_set(err, RBX_ERR_ESCAPE, ELOOP,
                             "refusing to mount on %s: the image has a symbolic link there",
                             row->target);
    if (fd == -ENOTDIR)
        return rbx_error_set(err, RBX_ERR_SANDBOX, ENOTDIR,
                             "%s: the image has a file where a directory is mounted", row->target);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -fd, "%s", row->target);
    if (dir && (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))) {
        close(fd);
        return rbx_error_set(err, RBX_ERR_SANDBOX, ENOTDIR,
                             "%s: the image has a file where a directory is mounted", row->target);
    }
    if (!dir && (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode))) {
        close(fd);
        return rbx_error_set(err, RBX_ERR_SANDBOX, EISDIR,
                             "%s: a directory where a file is mounted", row->target);
    }
    return fd;
}

int rbx_mount_target_prepare(int rootfd, const struct rbx_mount_row *row, struct rbx_target_dir *dir,
                             int *fd, struct rbx_error **err)
{
    *fd = -1;
    if (row->options & RBX_MNT_SYMLINK)
        return prepare_symlink(rootfd, row, dir, err);
    if (row->options & RBX_MNT_SYSTEM) {
        int r = prepare_system(rootfd, row, dir, err);
        if (r < 0)
            return rbx_error_wrap(err, "mount target");
        *fd = r;
        return 0;
    }
    int r = (row->options & RBX_MNT_FILE)
                ? prepare_file(rootfd, row->target, err)
                : rbx_mkdir_p_in_root(rootfd, row->target, 0755, NULL, err);
    if (r < 0)
        return rbx_error_wrap(err, "mount target");
    *fd = r;
    return 0;
}

int rbx_mount_target_reopen(int rootfd, const struct rbx_mount_row *row, struct rbx_error **err)
{
    int fd = rbx_open_in_root(rootfd, row->target, O_PATH, 0,
                              (row->options & RBX_MNT_SYSTEM) ? RBX_RESOLVE_NO_SYMLINKS : 0, err);
    if (fd < 0 && (fd == -ENOENT || fd == -ENOTDIR))
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, -fd, "mount target %s", row->target);
    return fd;
}

/* ---- child: apply a row ------------------------------------------------------------------- */

int rbx_mount_row_apply(const struct rbx_mount_row *row, int targetfd)
{
    char target[32];
    rbx_fd_path(target, targetfd);
    if (row->flags & MS_BIND)
        return rbx_mount(row->source, target, NULL, MS_BIND | (row->flags & MS_REC), NULL);
    return rbx_mount(row->source, target, row->type, row->flags, row->data);
}

/* The flags a remount must keep: in a user namespace the kernel refuses to clear the ones the
 * original mount was locked with. */
static unsigned long locked_flags(int fd)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (fstatvfs(fd, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

int rbx_mount_make_readonly(int fd, bool recursive)
{
    int r = rbx_mount_guard();
    if (r < 0)
        return r;
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                sizeof(attr)) == 0)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    /* Kernels before 5.12: the top mount only. */
    char path[32];
    return rbx_mount(NULL, rbx_fd_path(path, fd), NULL,
                     MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(fd), NULL);
}

/* ---- /proc of a process ----------------------------------------------------------------- */

int rbx_proc_replace(void)
{
    /* Runs in a spawned process after it joined the container: the kernel lets a new proc be
     * made only while a fully visible one exists (the holder's), so make ours detached first,
     * then drop the holder's and put ours in its place: one /proc, as under runc. */
    int r = rbx_mount_guard();
    if (r < 0)
        return r;
    int fsfd = fsopen("proc", FSOPEN_CLOEXEC);
    if (fsfd < 0) {
        if (errno != ENOSYS)
            return -errno;
        /* Kernels before 5.2: stack it over the holder's. */
        return rbx_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    }
    int mfd = -1;
    if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (mfd = fsmount(fsfd, FSMOUNT_CLOEXEC,
                       MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)) < 0) {
        r = -errno;
        close(fsfd);
        return r;
    }
    close(fsfd);
    r = rbx_umount("/proc", MNT_DETACH);
    if (r == 0)
        r = rbx_move_mount(mfd, "/proc");
    close(mfd);
    return r;
}

/* ---- masked and read-only paths --------------------------------------------------------- */

void rbx_masks_apply(int sock, bool sys, bool proc)
{
    int devnull = rbx_devnull_open_checked();
    if (devnull < 0)
        rbx_child_fail(sock, RBX_OP_MASK, 0, -devnull, "/dev/null");
    size_t index = 0;
    int r;
    if (sys && (r = rbx_paths_apply(rbx_sys_paths, rbx_sys_paths_count, devnull, &index)) < 0)
        rbx_child_fail(sock, RBX_OP_MASK, 0, -r, rbx_sys_paths[index].path);
    if (proc && (r = rbx_paths_apply(rbx_proc_paths, rbx_proc_paths_count, devnull, &index)) < 0)
        rbx_child_fail(sock, RBX_OP_MASK, 0, -r, rbx_proc_paths[index].path);
    close(devnull);
}

int rbx_devnull_open_checked(void)
{
    /* Runs in a child after pivot_root: /dev is our tmpfs, /dev/null our bind. The container may
     * have replaced the file since, but without CAP_MKNOD never by a device: masks show what this
     * file shows, so it must be the real null device. */
    int fd = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

int rbx_paths_apply(const struct rbx_path_row *rows, size_t n, int devnull, size_t *index)
{
    /* Runs in a child after pivot_root, on filesystems we mounted (proc, sysfs): paths, not fds,
     * and no allocation. */
    for (size_t i = 0; i < n; i++) {
        *index = i;
        int fd = open(rows[i].path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return -errno;
        }
        struct stat st;
        int r = fstat(fd, &st) < 0 ? -errno : 0;
        char target[32], source[32];
        rbx_fd_path(target, fd);
        if (r == 0 && rows[i].readonly) {
            r = rbx_mount(target, target, NULL, MS_BIND | MS_REC, NULL);
            if (r == 0) {
                int top = open(rows[i].path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                r = top < 0 ? -errno : rbx_mount_make_readonly(top, true);
                if (top >= 0)
                    close(top);
            }
        } else if (r == 0 && S_ISDIR(st.st_mode)) {
            r = rbx_mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "size=0,mode=0555");
        } else if (r == 0) {
            r = rbx_mount(rbx_fd_path(source, devnull), target, NULL, MS_BIND, NULL);
        }
        close(fd);
        if (r < 0)
            return r;
    }
    return 0;
}
