/* store.c — the content-addressed cache: blobs/sha256/<hex>, layers/<diff_id hex>/rootfs, and
 * the tmp/ and locks/ that keep it whole. A layer is extracted under its lock into tmp/, verified,
 * synced and renamed into layers/: the cache is never seen half-written, even after kill -9. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

/* ---- location and opening ------------------------------------------------------------------ */

char *rbx_store_default_dir(bool rootless)
{
    if (!rootless)
        return rbx_xstrdup("/var/lib/reprobox");
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/')
        return rbx_xasprintf("%s/reprobox", xdg);
    const char *home = getenv("HOME");
    if (home && home[0] == '/')
        return rbx_xasprintf("%s/.cache/reprobox", home);
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_dir[0] == '/')
        return rbx_xasprintf("%s/.cache/reprobox", res->pw_dir);
    return rbx_xasprintf("/tmp/reprobox-%u", (unsigned)getuid());
}

const char *rbx_store_dir(const struct rbx_store *s)
{
    return s->dir;
}

struct rbx_store *rbx_store_free(struct rbx_store *s)
{
    if (!s)
        return NULL;
    rbx_store_sweep_wait(s);
    /* Made ahead and never asked for (the run failed before): empty, left to the next sweep. */
    rbx_run_dir_leave(s->spare);
    pthread_mutex_destroy(&s->spare_mu);
    pthread_cond_destroy(&s->spare_cv);
    int *fds[] = {&s->dirfd,    &s->blobs_fd, &s->layers_fd, &s->tmp_fd,
                  &s->locks_fd, &s->runs_fd,  &s->images_fd, &s->archives_fd};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(fds); i++)
        if (*fds[i] >= 0)
            close(*fds[i]);
    for (size_t i = 0; i < s->n_held; i++) {
        close(s->held_fds[i]);
        free(s->held_keys[i]);
    }
    free(s->held_fds);
    free(s->held_keys);
    pthread_mutex_destroy(&s->held_mu);
    free(s->dir);
    free(s);
    return NULL;
}

static int mkdir_parents(const char *dir, struct rbx_error **err)
{
    _cleanup_free_ char *p = rbx_xstrdup(dir);
    for (char *slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir %s", p);
        *slash = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir %s", p);
    return 0;
}

static int open_subdir(int dirfd, const char *name, struct rbx_error **err)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT)
        return fd >= 0 ? fd : rbx_error_set_errno(err, RBX_ERR_IO, errno, "open %s", name);
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir %s", name);
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open %s", name);
    return fd;
}

int rbx_store_lock_mode(struct rbx_store *s, const char *key, int how, bool wait,
                        struct rbx_error **err)
{
    for (int tries = 0; tries < 64; tries++) {
        _cleanup_close_ int fd =
            openat(s->locks_fd, key, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "lock %s", key);
        int r;
        do
            r = flock(fd, how | (wait ? 0 : LOCK_NB));
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (errno == EWOULDBLOCK)
                return -EAGAIN;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "lock %s", key);
        }
        /* Ephemeral lock files are unlinked by their holder; a lock taken on a file that is no
         * longer the one at the name guards nothing: take the current one. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && fstatat(s->locks_fd, key, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return TAKE_FD(fd);
    }
    return rbx_error_set(err, RBX_ERR_IO, EAGAIN, "lock %s: keeps being replaced", key);
}

int rbx_store_mktemp(struct rbx_store *s, const char *key, char **name, struct rbx_error **err)
{
    for (int tries = 0; tries < 16; tries++) {
        char rnd[13];
        rbx_random_hex(rnd, 12);
        _cleanup_free_ char *n = rbx_xasprintf("%s.%s", key, rnd);
        if (mkdirat(s->tmp_fd, n, 0700) < 0) {
            if (errno == EEXIST)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir tmp/%s", n);
        }
        int fd = openat(s->tmp_fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            unlinkat(s->tmp_fd, n, AT_REMOVEDIR);
            return rbx_error_set_errno(err, RBX_ERR_IO, e, "open tmp/%s", n);
        }
        *name = TAKE_PTR(n);
        return fd;
    }
    return rbx_error_set(err, RBX_ERR_IO, EEXIST, "tmp: no free name");
}

static bool is_ephemeral_key(const char *key)
{
    return strncmp(key, "import-", 7) == 0;
}

/* tmp/<key>.<random> belongs to whoever holds locks/<key>: free lock, dead owner. */
static int sweep_tmp(struct rbx_store *s, struct rbx_error **err)
{
    int fd = openat(s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open tmp");
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open tmp");
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *dot = strchr(de->d_name, '.');
        if (de->d_name[0] == '.' || !dot)
            continue;
        _cleanup_free_ char *key = rbx_xstrndup(de->d_name, (size_t)(dot - de->d_name));
        _cleanup_close_ int lock = rbx_store_lock(s, key, false, NULL);
        if (lock < 0)
            continue;
        int r = rbx_rm_rf_at(s->tmp_fd, de->d_name, err);
        if (r < 0)
            return rbx_error_wrap(err, "sweep tmp");
        if (is_ephemeral_key(key))
            unlinkat(s->locks_fd, key, 0);
    }
    return 0;
}

static void sweep_locks(struct rbx_store *s)
{
    int fd = openat(s->locks_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_ephemeral_key(de->d_name))
            continue;
        _cleanup_close_ int lock = rbx_store_lock(s, de->d_name, false, NULL);
        if (lock >= 0)
            unlinkat(s->locks_fd, de->d_name, 0);
    }
}

static void *sweep_runs_main(void *arg)
{
    struct rbx_store *s = arg;
    if (s->spare_wanted) {
        struct rbx_run_dir *rd = NULL;
        if (rbx_run_dir_make(s, &rd, NULL) < 0)
            rd = NULL;
        pthread_mutex_lock(&s->spare_mu);
        s->spare = rd;
        s->spare_done = true;
        pthread_cond_broadcast(&s->spare_cv);
        pthread_mutex_unlock(&s->spare_mu);
    }
    (void)rbx_run_dir_sweep(s, NULL);
    return NULL;
}

struct rbx_run_dir *rbx_store_take_spare(struct rbx_store *s)
{
    if (!s->spare_wanted || s->sweeper_owner != getpid())
        return NULL;
    pthread_mutex_lock(&s->spare_mu);
    while (!s->spare_done)
        pthread_cond_wait(&s->spare_cv, &s->spare_mu);
    struct rbx_run_dir *rd = TAKE_PTR(s->spare);
    s->spare_wanted = false;
    pthread_mutex_unlock(&s->spare_mu);
    return rd;
}

void rbx_store_sweep_wait(struct rbx_store *s)
{
    if (s->sweeping && s->sweeper_owner == getpid())
        pthread_join(s->sweeper, NULL);
    s->sweeping = false;
}

static int store_open(const char *dir, bool for_run, struct rbx_store **out, struct rbx_error **err)
{
    if (!dir || !*dir)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "no store directory");
    int r = mkdir_parents(dir, err);
    if (r < 0)
        return rbx_error_wrap(err, "store");
    _cleanup_(rbx_store_freep) struct rbx_store *s = rbx_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->held_mu, NULL);
    pthread_mutex_init(&s->spare_mu, NULL);
    pthread_cond_init(&s->spare_cv, NULL);
    s->dirfd = s->blobs_fd = s->layers_fd = s->tmp_fd = s->locks_fd = s->runs_fd = -1;
    s->images_fd = s->archives_fd = -1;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "store %s", dir);
    struct stat st;
    /* The cache holds other users' image contents with their modes: only we may walk it. */
    if (fstat(s->dirfd, &st) == 0 && (st.st_mode & 07777) != 0700 && fchmod(s->dirfd, 0700) < 0)
        return rbx_error_set_errno(err, RBX_ERR_PERMISSION, errno, "store %s: chmod 0700", dir);
    char *real = realpath(dir, NULL);
    if (!real)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "store %s", dir);
    s->dir = real;
    int blobs;
    if ((blobs = open_subdir(s->dirfd, "blobs", err)) < 0)
        return rbx_error_wrap(err, "store %s", dir);
    s->blobs_fd = blobs;
    _cleanup_close_ int sha = open_subdir(s->blobs_fd, "sha256", err);
    if (sha < 0 || (s->layers_fd = open_subdir(s->dirfd, "layers", err)) < 0 ||
        (s->tmp_fd = open_subdir(s->dirfd, "tmp", err)) < 0 ||
        (s->locks_fd = open_subdir(s->dirfd, "locks", err)) < 0 ||
        (s->runs_fd = open_subdir(s->dirfd, "runs", err)) < 0 ||
        (s->images_fd = open_subdir(s->dirfd, "images", err)) < 0 ||
        (s->archives_fd = open_subdir(s->dirfd, "archives", err)) < 0)
        return rbx_error_wrap(err, "store %s", dir);
    /* Best effort: what a dead reprobox left must not stop this one (a run's files may belong
     * to ids only its user namespace can remove). */
    (void)sweep_tmp(s, NULL);
    /* For a run, in a thread: its own run dir first (it would otherwise wait for the removals
     * in runs/), then mostly what the last run left for us (rbx_run_dir_leave), removed while
     * this one opens its image. Other commands have nothing to overlap it with: here. */
    s->sweeper_owner = getpid();
    s->spare_wanted = for_run;
    s->sweeping = for_run && rbx_thread_create_quiet(&s->sweeper, sweep_runs_main, s) == 0;
    if (!s->sweeping) {
        s->spare_wanted = false;
        (void)rbx_run_dir_sweep(s, NULL);
    }
    sweep_locks(s);
    *out = TAKE_PTR(s);
    return 0;
}

int rbx_store_open(const char *dir, struct rbx_store **out, struct rbx_error **err)
{
    return store_open(dir, false, out, err);
}

int rbx_store_open_for_run(const char *dir, struct rbx_store **out, struct rbx_error **err)
{
    return store_open(dir, true, out, err);
}

uint64_t rbx_layer_cap(const struct rbx_unpack_opts *opts)
{
    if (opts && opts->max_layer_bytes)
        return opts->max_layer_bytes;
    const char *env = getenv("REPROBOX_MAX_LAYER_SIZE");
    uint64_t v;
    if (env && rbx_parse_size(env, &v) == 0 && v > 0)
        return v;
    return RBX_LAYER_BYTES_DEFAULT;
}

int rbx_store_gc_lock(struct rbx_store *s, int how, struct rbx_error **err)
{
    _cleanup_close_ int fd =
        openat(s->dirfd, "gc.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "gc.lock");
    int r;
    do
        r = flock(fd, how);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "gc.lock");
    return TAKE_FD(fd);
}

bool rbx_store_published(struct rbx_store *s, const char *key)
{
    struct stat st;
    return fstatat(s->layers_fd, key, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int rbx_store_hold(struct rbx_store *s, const char *key, struct rbx_error **err)
{
    _cleanup_free_ char *use = rbx_xasprintf("%s.use", key);
    int fd = rbx_store_lock_mode(s, use, LOCK_SH, true, err);
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&s->held_mu);
    s->held_fds = rbx_xrealloc(s->held_fds, (s->n_held + 1) * sizeof(int));
    s->held_keys = rbx_xrealloc(s->held_keys, (s->n_held + 1) * sizeof(char *));
    s->held_fds[s->n_held] = fd;
    s->held_keys[s->n_held] = rbx_xstrdup(key);
    s->n_held++;
    pthread_mutex_unlock(&s->held_mu);
    return 0;
}

/* Drop the last hold taken on key (a layer found gone after all: it is extracted anew). */
static void store_unhold(struct rbx_store *s, const char *key)
{
    pthread_mutex_lock(&s->held_mu);
    for (size_t i = s->n_held; i-- > 0;)
        if (strcmp(s->held_keys[i], key) == 0) {
            close(s->held_fds[i]);
            free(s->held_keys[i]);
            s->held_fds[i] = s->held_fds[s->n_held - 1];
            s->held_keys[i] = s->held_keys[s->n_held - 1];
            s->n_held--;
            break;
        }
    pthread_mutex_unlock(&s->held_mu);
}

void rbx_store_journal(struct rbx_store *s, const char *what, const char *key)
{
    /* O_APPEND: lines from concurrent processes do not mix. Best effort. */
    int fd =
        openat(s->dirfd, "journal", O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[256];
    int n = snprintf(line, sizeof(line), "%lld %d %s %s\n", (long long)time(NULL), (int)getpid(),
                     what, key);
    if (n > 0)
        (void)!write(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    close(fd);
}

/* ---- unpacking an image's layers ---------------------------------------------------------- */

void rbx_store_tmp_cleanup(struct rbx_store_tmp *t)
{
    if (t->name)
        (void)rbx_rm_rf_at(t->tmp_fd, t->name, NULL);
    free(t->name);
}

struct unpack_job {
    struct rbx_store *store;
    const struct rbx_image *img;
    const struct rbx_unpack_opts *opts;
    uint64_t max_bytes;
    atomic_size_t next;
    atomic_bool cancel;
    pthread_mutex_t mu;
    struct rbx_error *err; /* the first failure */
    struct rbx_unpack_stats stats;
    struct rbx_progress_event ev;
};

static void job_progress(void *ud, uint64_t raw)
{
    struct unpack_job *j = ud;
    pthread_mutex_lock(&j->mu);
    j->ev.bytes_done += raw;
    j->stats.bytes_read += raw;
    if (j->opts && j->opts->progress)
        j->opts->progress(j->opts->progress_data, &j->ev);
    pthread_mutex_unlock(&j->mu);
}

static void job_layer_done(struct unpack_job *j, bool extracted)
{
    pthread_mutex_lock(&j->mu);
    j->ev.items_done++;
    if (extracted)
        j->stats.layers_extracted++;
    else
        j->stats.layers_cached++;
    if (j->opts && j->opts->progress)
        j->opts->progress(j->opts->progress_data, &j->ev);
    pthread_mutex_unlock(&j->mu);
}

static int write_meta(int dirfd, const struct rbx_layer *l, const struct rbx_unpack_counts *c,
                      uint64_t bytes, struct rbx_error **err)
{
    _cleanup_json_ json_t *j = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I}", "diff_id", l->diff_id,
        "digest", l->digest, "media_type", l->media_type, "size", (json_int_t)l->size,
        "unpacked_bytes", (json_int_t)bytes, "entries", (json_int_t)c->entries, "skipped",
        "devices", (json_int_t)c->skipped_devices, "owners", (json_int_t)c->skipped_owners,
        "xattrs", (json_int_t)c->skipped_xattrs, "other", (json_int_t)c->skipped_other, "whiteouts",
        (json_int_t)c->whiteouts, "opaques", (json_int_t)c->opaques);
    if (!j)
        abort();
    if (c->skipped_names) {
        json_t *names = json_array();
        for (size_t i = 0; c->skipped_names[i]; i++)
            json_array_append_new(names, json_string(c->skipped_names[i]));
        json_object_set_new(json_object_get(j, "skipped"), "names", names);
    }
    _cleanup_free_ char *text = rbx_json_dump_canonical(j);
    return rbx_write_file_replace_at(dirfd, "meta.json", text, strlen(text), 0600, err);
}

/* Hardlinks to lower layers whose link name nothing later in the layer took: the list a
 * links dir is made from (links.c), as lower_links.json beside the tree. */
static int write_lower_links(int tmpfd, int rootfd, char **pairs, struct rbx_error **err)
{
    _cleanup_json_ json_t *arr = json_array();
    for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2) {
        struct stat st;
        if (fstatat(rootfd, pairs[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
            continue; /* a later entry made the name: it wins */
        json_array_append_new(arr, json_pack("[s, s]", pairs[i], pairs[i + 1]));
    }
    if (json_array_size(arr) == 0)
        return 0;
    _cleanup_free_ char *text = rbx_json_dump_canonical(arr);
    return rbx_write_file_replace_at(tmpfd, RBX_LOWER_LINKS_FILE, text, strlen(text), 0600, err);
}

/* Extract one layer into tmp/ and publish it as layers/<hex>. The caller holds locks/<hex>. */
static int extract_layer(struct unpack_job *j, const struct rbx_layer *l, enum rbx_media media,
                         const char *hex, struct rbx_error **err)
{
    struct rbx_store *s = j->store;
    _cleanup_(rbx_store_tmp_cleanup) struct rbx_store_tmp tmp = {.tmp_fd = s->tmp_fd};
    _cleanup_close_ int tmpfd = rbx_store_mktemp(s, hex, &tmp.name, err);
    if (tmpfd < 0)
        return tmpfd;
    if (mkdirat(tmpfd, "rootfs", 0755) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir rootfs");
    _cleanup_close_ int rootfd = openat(tmpfd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open rootfs");
    int blobfd = rbx_blob_open(j->img->blob_dirfd, l->digest, err);
    if (blobfd < 0)
        return rbx_error_wrap(err, "layer %s", l->digest);
    /* Errors read "layer sha256:..: blob: digest mismatch": the layer names the blob already. */
    _cleanup_(rbx_stream_freep) struct rbx_stream *st = rbx_stream_new(
        blobfd, rbx_media_compression(media), l->digest, l->size, j->max_bytes, "blob");
    rbx_stream_set_progress(st, job_progress, j);

    _cleanup_(rbx_unpack_counts_clear) struct rbx_unpack_counts counts = {0};
    _cleanup_(rbx_applier_freep) struct rbx_applier *ap = rbx_applier_new(rootfd, false, &counts);
    int r = rbx_applier_layer(ap, st, l->digest, &j->cancel, err);
    if (r < 0)
        return r;
    if ((r = rbx_applier_finish(ap, err)) < 0)
        return rbx_error_wrap(err, "layer %s", l->digest);
    char got[RBX_DIGEST_LEN + 1];
    rbx_stream_diff_id(st, got);
    if (strcmp(got, l->diff_id) != 0)
        return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG,
                             "layer %s: diff_id mismatch (got %s, the config says %s)", l->digest,
                             got, l->diff_id);
    if ((r = write_meta(tmpfd, l, &counts, rbx_stream_out_bytes(st), err)) < 0 ||
        (r = write_lower_links(tmpfd, rootfd, rbx_applier_lower_links(ap), err)) < 0)
        return rbx_error_wrap(err, "layer %s", l->digest);
    /* One sync for the whole tree before it becomes visible: after a crash the published name
     * never points at files whose data was not written. */
    if (syncfs(rootfd) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer %s: syncfs", l->digest);
    if (renameat(s->tmp_fd, tmp.name, s->layers_fd, hex) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "layer %s: publish", l->digest);
    free(TAKE_PTR(tmp.name));
    (void)fsync(s->layers_fd);
    rbx_store_journal(s, "extracted", hex);
    return 0;
}

/* Returns 1 when extracted, 0 when found in the cache; either way the layer is held. */
static int unpack_layer(struct unpack_job *j, const struct rbx_layer *l, struct rbx_error **err)
{
    struct rbx_store *s = j->store;
    if (!l->diff_id || !rbx_digest_valid(l->diff_id))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "layer %s: no valid diff_id",
                             l->digest);
    enum rbx_media media = rbx_media_parse(l->media_type);
    if (!rbx_media_is_layer(media))
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "layer %s: unsupported layer media type \"%s\"", l->digest,
                             l->media_type);
    const char *hex = rbx_digest_hex(l->diff_id);
    for (int tries = 0; tries < 16; tries++) {
        if (rbx_store_published(s, hex)) {
            /* Held first, then checked again: a prune removes only what nobody holds. */
            int r = rbx_store_hold(s, hex, err);
            if (r < 0)
                return r;
            if (rbx_store_published(s, hex))
                return 0;
            store_unhold(s, hex);
        }
        _cleanup_close_ int lock = rbx_store_lock(s, hex, true, err);
        if (lock < 0)
            return lock;
        if (rbx_store_published(s, hex))
            continue; /* another process or thread did it while we waited */
        int r = extract_layer(j, l, media, hex, err);
        if (r < 0)
            return r;
        /* Held before the extraction lock is let go: nothing can remove it in between. */
        if ((r = rbx_store_hold(s, hex, err)) < 0)
            return r;
        return 1;
    }
    return rbx_error_set(err, RBX_ERR_IO, EAGAIN, "layer %s: removed again and again while in use",
                         l->digest);
}

static void *unpack_worker(void *arg)
{
    struct unpack_job *j = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->img->n_layers || atomic_load(&j->cancel))
            break;
        struct rbx_error *e = NULL;
        int r = unpack_layer(j, &j->img->layers[i], &e);
        if (r < 0) {
            pthread_mutex_lock(&j->mu);
            if (!j->err && !(e && e->errnum == ECANCELED))
                j->err = TAKE_PTR(e);
            atomic_store(&j->cancel, true);
            pthread_mutex_unlock(&j->mu);
            rbx_error_free(e);
            break;
        }
        job_layer_done(j, r == 1);
    }
    return NULL;
}

int rbx_image_unpack(struct rbx_store *store, const struct rbx_image *img,
                     const struct rbx_unpack_opts *opts, struct rbx_unpack_stats *stats,
                     struct rbx_error **err)
{
    struct unpack_job j = {.store = store, .img = img, .opts = opts};
    j.max_bytes = rbx_layer_cap(opts);
    atomic_init(&j.next, 0);
    atomic_init(&j.cancel, false);
    pthread_mutex_init(&j.mu, NULL);
    j.ev.phase = "unpack";
    j.ev.items_total = (unsigned)img->n_layers;
    size_t missing = 0;
    for (size_t i = 0; i < img->n_layers; i++)
        if (!img->layers[i].diff_id || !rbx_digest_valid(img->layers[i].diff_id) ||
            !rbx_store_published(store, rbx_digest_hex(img->layers[i].diff_id))) {
            j.ev.bytes_total += img->layers[i].size > 0 ? (uint64_t)img->layers[i].size : 0;
            missing++;
        }

    /* Threads for the layers to extract; a warm cache only takes its holds, which a thread
     * would cost more than. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t jobs = opts && opts->jobs ? opts->jobs : (ncpu > 0 ? (size_t)ncpu : 1);
    if (jobs > missing)
        jobs = missing;
    if (jobs <= 1) {
        unpack_worker(&j);
    } else {
        pthread_t *th = rbx_xcalloc(jobs, sizeof(pthread_t));
        size_t started = 0;
        for (; started < jobs; started++)
            if (pthread_create(&th[started], NULL, unpack_worker, &j) != 0)
                break;
        if (started == 0)
            unpack_worker(&j);
        for (size_t i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        free(th);
    }
    pthread_mutex_destroy(&j.mu);
    if (stats)
        *stats = j.stats;
    if (j.err) {
        int r = -j.err->errnum;
        rbx_error_move(err, &j.err);
        return r ? r : -EIO;
    }
    /* Hardlinks into lower layers need those layers: made now that all are there. */
    for (size_t i = 0; i < img->n_layers; i++) {
        int r = rbx_links_ensure(store, img, i, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int rbx_image_layer_dir(struct rbx_store *store, const struct rbx_image *img, size_t i, char **dir,
                        char **links_dir, struct rbx_error **err)
{
    const char *id = img->layers[i].diff_id;
    *dir = NULL;
    if (links_dir)
        *links_dir = NULL;
    if (!id || !rbx_digest_valid(id))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "layer %s: no valid diff_id",
                             img->layers[i].digest);
    char rel[RBX_DIGEST_HEX_LEN + 32];
    snprintf(rel, sizeof(rel), "%s/rootfs", rbx_digest_hex(id));
    struct stat st;
    if (fstatat(store->layers_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "layer %s is not unpacked",
                             img->layers[i].digest);
    _cleanup_free_ char *links = NULL;
    int r = rbx_links_dir(store, img, i, &links, err);
    if (r < 0)
        return r;
    *dir = rbx_xasprintf("%s/layers/%s", store->dir, rel);
    if (links && links_dir)
        *links_dir = rbx_xasprintf("%s/layers/%s/rootfs", store->dir, links);
    return 0;
}

int rbx_image_layer_dirs(struct rbx_store *store, const struct rbx_image *img, char ***dirs,
                         struct rbx_error **err)
{
    _cleanup_strv_ char **v = rbx_xcalloc(1, sizeof(char *));
    for (size_t i = 0; i < img->n_layers; i++) {
        char *dir = NULL, *links = NULL;
        int r = rbx_image_layer_dir(store, img, i, &dir, &links, err);
        if (r < 0)
            return r;
        rbx_strv_push_take(&v, dir);
        if (links)
            rbx_strv_push_take(&v, links);
    }
    *dirs = TAKE_PTR(v);
    return 0;
}
