/* rundir.c — a run's scratch space, <store>/runs/<id>/{upper,work}, owned through an flock on
 * runs/<id>.lock for as long as it is open; runs whose owner died are swept at the next store
 * open (for a run, in a thread), as are those a finished run left there (rbx_run_dir_leave);
 * runs kept for inspection are marked runs/<id>.kept and left alone. The overlay is mounted on
 * runs/<id> itself, in the sandbox's mount namespace only: no dir of its own to make and
 * remove at every run. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#define RUN_ID_LEN 16

struct rbx_run_dir {
    int runs_fd;
    int lock_fd;
    char id[RUN_ID_LEN + 1];
    char *path, *upper, *work, *rootfs;
    char *layers; /* the layers the run stacks, written only if the run is kept */
};

const char *rbx_run_dir_path(const struct rbx_run_dir *rd)
{
    return rd->path;
}
const char *rbx_run_dir_upper(const struct rbx_run_dir *rd)
{
    return rd->upper;
}
const char *rbx_run_dir_work(const struct rbx_run_dir *rd)
{
    return rd->work;
}
const char *rbx_run_dir_merged(const struct rbx_run_dir *rd)
{
    return rd->path;
}
const char *rbx_run_dir_rootfs(const struct rbx_run_dir *rd)
{
    return rd->rootfs;
}

static bool same_file(int fd, int dirfd, const char *name)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void run_dir_release(struct rbx_run_dir *rd)
{
    free(rd->path);
    free(rd->upper);
    free(rd->work);
    free(rd->rootfs);
    free(rd->layers);
    if (rd->lock_fd >= 0)
        close(rd->lock_fd);
    if (rd->runs_fd >= 0)
        close(rd->runs_fd);
    free(rd);
}

/* The layers this store handle holds are the ones the run stacks: a kept run keeps them from a
 * prune (a live one holds them locked). */
static void note_layers(struct rbx_run_dir *rd, struct rbx_store *store)
{
    pthread_mutex_lock(&store->held_mu);
    free(rd->layers);
    rd->layers = rbx_xstrdup("");
    for (size_t i = 0; i < store->n_held; i++) {
        char *t = rbx_xasprintf("%s%s\n", rd->layers, store->held_keys[i]);
        free(rd->layers);
        rd->layers = t;
    }
    pthread_mutex_unlock(&store->held_mu);
}

int rbx_run_dir_create(struct rbx_store *store, struct rbx_run_dir **out, struct rbx_error **err)
{
    struct rbx_run_dir *spare = rbx_store_take_spare(store);
    if (spare) {
        note_layers(spare, store);
        *out = spare;
        return 0;
    }
    return rbx_run_dir_make(store, out, err);
}

int rbx_run_dir_make(struct rbx_store *store, struct rbx_run_dir **out, struct rbx_error **err)
{
    for (int tries = 0; tries < 32; tries++) {
        char id[RUN_ID_LEN + 1], lockname[RUN_ID_LEN + 8];
        rbx_random_hex(id, RUN_ID_LEN);
        snprintf(lockname, sizeof(lockname), "%s.lock", id);
        /* The lock exists and is held before the dir does: a sweep never sees an unowned run
         * that is still being set up. */
        _cleanup_close_ int lock = openat(store->runs_fd, lockname,
                                          O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (lock < 0) {
            if (errno == EEXIST)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "runs/%s", lockname);
        }
        if (flock(lock, LOCK_EX | LOCK_NB) < 0 || !same_file(lock, store->runs_fd, lockname))
            continue; /* a sweep took it for a stale one in between: pick another id */
        if (mkdirat(store->runs_fd, id, 0700) < 0) {
            int e = errno;
            unlinkat(store->runs_fd, lockname, 0);
            if (e == EEXIST)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, e, "runs/%s", id);
        }
        struct rbx_run_dir *rd = rbx_xcalloc(1, sizeof(*rd));
        rd->lock_fd = TAKE_FD(lock);
        rd->runs_fd = fcntl(store->runs_fd, F_DUPFD_CLOEXEC, 3);
        memcpy(rd->id, id, sizeof(id));
        rd->path = rbx_xasprintf("%s/runs/%s", store->dir, id);
        rd->upper = rbx_xasprintf("%s/upper", rd->path);
        rd->work = rbx_xasprintf("%s/work", rd->path);
        _cleanup_close_ int dfd =
            openat(store->runs_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* upper/ is the container's "/" once merged: its mode is what the command sees. */
        static const struct {
            const char *name;
            mode_t mode;
        } subdirs[] = {{"upper", 0755}, {"work", 0700}};
        for (size_t i = 0; i < RBX_ARRAY_SIZE(subdirs); i++) {
            if (rd->runs_fd < 0 || dfd < 0 || mkdirat(dfd, subdirs[i].name, 0700) < 0 ||
                fchmodat(dfd, subdirs[i].name, subdirs[i].mode, 0) < 0) {
                int e = errno;
                rbx_run_dir_close(rd, false);
                return rbx_error_set_errno(err, RBX_ERR_IO, e, "runs/%s/%s", id, subdirs[i].name);
            }
        }
        note_layers(rd, store);
        *out = rd;
        return 0;
    }
    return rbx_error_set(err, RBX_ERR_IO, EEXIST, "runs: no free id");
}

int rbx_run_dir_flatten(struct rbx_run_dir *rd, const struct rbx_image *img,
                        const struct rbx_unpack_opts *opts, struct rbx_error **err)
{
    _cleanup_close_ int dfd =
        openat(rd->runs_fd, rd->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "runs/%s", rd->id);
    (void)rbx_rm_rf_at(dfd, "rootfs", NULL);
    if (mkdirat(dfd, "rootfs", 0755) < 0 || fchmodat(dfd, "rootfs", 0755, 0) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "runs/%s/rootfs", rd->id);
    _cleanup_close_ int rootfd =
        openat(dfd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "runs/%s/rootfs", rd->id);
    _cleanup_(rbx_flat_stats_clear) struct rbx_flat_stats st = {0};
    int r = rbx_image_flatten(img, rootfd, opts, &st, err);
    if (r < 0)
        return r;
    free(rd->rootfs);
    rd->rootfs = rbx_xasprintf("%s/rootfs", rd->path);
    return 0;
}

#define INIT_LAYER "init-v1"

static bool init_layer_made(struct rbx_store *s)
{
    struct stat st;
    return fstatat(s->dirfd, INIT_LAYER "/rootfs/sys", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISDIR(st.st_mode);
}

/* Make <store>/init-v1/rootfs/{proc,dev,sys} in tmp/init-v1.<random>, under locks/init-v1 (so
 * that a maker killed half-way leaves what the next store open sweeps), and rename it into
 * place. */
static int init_layer_make(struct rbx_store *s, struct rbx_error **err)
{
    _cleanup_close_ int lock = rbx_store_lock(s, INIT_LAYER, true, err);
    if (lock < 0)
        return lock;
    if (init_layer_made(s))
        return 0; /* by whoever held the lock before us */
    _cleanup_free_ char *name = NULL;
    _cleanup_close_ int dfd = rbx_store_mktemp(s, INIT_LAYER, &name, err);
    if (dfd < 0)
        return dfd;
    static const char *const dirs[] = {"rootfs", "rootfs/proc", "rootfs/dev", "rootfs/sys"};
    int r = 0;
    for (size_t i = 0; r == 0 && i < RBX_ARRAY_SIZE(dirs); i++)
        if (mkdirat(dfd, dirs[i], 0700) < 0 || fchmodat(dfd, dirs[i], 0755, 0) < 0)
            r = -errno;
    /* The epoch, as every layer's files: the same on every machine. */
    static const struct timespec epoch[2] = {{0, 0}, {0, 0}};
    for (size_t i = RBX_ARRAY_SIZE(dirs); r == 0 && i-- > 0;)
        if (utimensat(dfd, dirs[i], epoch, AT_SYMLINK_NOFOLLOW) < 0)
            r = -errno;
    if (r == 0 && renameat(s->tmp_fd, name, s->dirfd, INIT_LAYER) < 0 && errno != EEXIST &&
        errno != ENOTEMPTY)
        r = -errno;
    (void)rbx_rm_rf_at(s->tmp_fd, name, NULL); /* gone already when renamed */
    return r < 0 ? rbx_error_set_errno(err, RBX_ERR_IO, -r, INIT_LAYER) : 0;
}

int rbx_store_init_layer(struct rbx_store *s, char **dir, struct rbx_error **err)
{
    if (!init_layer_made(s)) {
        int r = init_layer_make(s, err);
        if (r < 0)
            return r;
    }
    *dir = rbx_xasprintf("%s/" INIT_LAYER "/rootfs", s->dir);
    return 0;
}

#define OVERLAY_MARKER "overlay-unusable"

bool rbx_store_overlay_recorded(struct rbx_store *s)
{
    return faccessat(s->dirfd, OVERLAY_MARKER, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

bool rbx_store_overlay_unusable(struct rbx_store *s)
{
    if (rbx_store_overlay_recorded(s))
        return true;
    /* overlayfs takes neither an upper dir on overlayfs nor the 0/0 character devices the layer
     * cache keeps its whiteouts as: a store inside a container's own overlay rootfs. */
    struct statfs sf;
    return fstatfs(s->dirfd, &sf) == 0 && sf.f_type == OVERLAYFS_SUPER_MAGIC;
}

int rbx_store_set_overlay_unusable(struct rbx_store *s, const char *why, struct rbx_error **err)
{
    _cleanup_free_ char *text = rbx_xasprintf("%s\n", why ? why : "");
    return rbx_write_file_replace_at(s->dirfd, OVERLAY_MARKER, text, strlen(text), 0600, err);
}

/* What an overlay run leaves when its command wrote nothing: these entries, which unlink and
 * rmdir alone remove (overlayfs makes work/work mode 0, and a volatile mount leaves
 * work/work/incompat/volatile/dirty behind on purpose). Anything else (a change, a flat rootfs)
 * falls to the full walk. */
static bool run_dir_remove_empty(int dfd)
{
    static const struct {
        const char *path;
        int flags;
    } empty[] = {
        {"upper", AT_REMOVEDIR},
        {"work/work/incompat/volatile/dirty", 0},
        {"work/work/incompat/volatile", AT_REMOVEDIR},
        {"work/work/incompat", AT_REMOVEDIR},
        {"work/work", AT_REMOVEDIR},
        {"work", AT_REMOVEDIR},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(empty); i++) {
        if (unlinkat(dfd, empty[i].path, empty[i].flags) == 0 || errno == ENOENT)
            continue;
        /* Without CAP_DAC_OVERRIDE (rootless), work/work's mode 0 bars the way in. */
        if (errno != EACCES || fchmodat(dfd, "work/work", 0700, 0) < 0 ||
            (unlinkat(dfd, empty[i].path, empty[i].flags) < 0 && errno != ENOENT))
            return false;
    }
    return true;
}

static int run_dir_remove(int runs_fd, const char *id, struct rbx_error **err)
{
    int dfd = openat(runs_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0) {
        bool emptied = run_dir_remove_empty(dfd);
        close(dfd);
        if (emptied && unlinkat(runs_fd, id, AT_REMOVEDIR) == 0)
            return 0;
    }
    return rbx_rm_rf_at(runs_fd, id, err);
}

/* upper/ holds nothing: the command changed nothing in the rootfs. */
static bool upper_empty(const struct rbx_run_dir *rd)
{
    char rel[RUN_ID_LEN + 8];
    snprintf(rel, sizeof(rel), "%s/upper", rd->id);
    _cleanup_close_ int fd = openat(rd->runs_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd >= 0 && rbx_dir_is_empty(fd);
}

struct rbx_run_dir *rbx_run_dir_close(struct rbx_run_dir *rd, bool keep)
{
    if (!rd)
        return NULL;
    char name[RUN_ID_LEN + 8];
    if (keep) {
        _cleanup_close_ int dfd =
            openat(rd->runs_fd, rd->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_error_ struct rbx_error *e = NULL;
        if (dfd >= 0)
            (void)rbx_write_file_replace_at(dfd, "layers", rd->layers, strlen(rd->layers), 0600, &e);
        snprintf(name, sizeof(name), "%s.kept", rd->id);
        int fd = openat(rd->runs_fd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    } else {
        (void)run_dir_remove(rd->runs_fd, rd->id, NULL);
    }
    /* Unlinked while still held, so nobody can lock the old file and take it for free. */
    snprintf(name, sizeof(name), "%s.lock", rd->id);
    unlinkat(rd->runs_fd, name, 0);
    run_dir_release(rd);
    return NULL;
}

struct rbx_run_dir *rbx_run_dir_leave(struct rbx_run_dir *rd)
{
    if (!rd || rd->rootfs || !upper_empty(rd))
        return rbx_run_dir_close(rd, false);
    char name[RUN_ID_LEN + 8];
    snprintf(name, sizeof(name), "%s.lock", rd->id);
    unlinkat(rd->runs_fd, name, 0);
    run_dir_release(rd);
    return NULL;
}

int rbx_run_dir_sweep(struct rbx_store *s, struct rbx_error **err)
{
    int fd = openat(s->runs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open runs");
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open runs");
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.')
            continue;
        const char *dot = strchr(n, '.');
        _cleanup_free_ char *id = rbx_xstrndup(n, dot ? (size_t)(dot - n) : strlen(n));
        if (dot && strcmp(dot, ".lock") != 0)
            continue; /* .kept markers stay with their run */
        char lockname[RBX_NAME_MAX + 1], kept[RBX_NAME_MAX + 1];
        snprintf(lockname, sizeof(lockname), "%.240s.lock", id);
        snprintf(kept, sizeof(kept), "%.240s.kept", id);
        if (faccessat(s->runs_fd, kept, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        _cleanup_close_ int lock = openat(s->runs_fd, lockname, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (lock >= 0 &&
            (flock(lock, LOCK_EX | LOCK_NB) < 0 || !same_file(lock, s->runs_fd, lockname)))
            continue; /* in use */
        if (lock < 0 && errno != ENOENT)
            continue;
        if (run_dir_remove(s->runs_fd, id, err) < 0)
            return rbx_error_wrap(err, "sweep runs");
        if (lock >= 0)
            unlinkat(s->runs_fd, lockname, 0);
    }
    return 0;
}
