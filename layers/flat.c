/* flat.c — a flattened rootfs: every layer of an image applied in order to one directory, read
 * straight from the blobs (verified as they stream), whiteouts carried out. For `reprobox
 * unpack` and for runs where overlayfs can not be mounted. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

struct flat_job {
    const struct rbx_image *img;
    const struct rbx_unpack_opts *opts;
    uint64_t max;
    pthread_mutex_t mu; /* progress comes from the decompressing threads and the applier */
    struct rbx_progress_event ev;
    uint64_t bytes_read;
};

static void flat_progress(void *ud, uint64_t raw)
{
    struct flat_job *j = ud;
    pthread_mutex_lock(&j->mu);
    j->ev.bytes_done += raw;
    j->bytes_read += raw;
    if (j->opts && j->opts->progress)
        j->opts->progress(j->opts->progress_data, &j->ev);
    pthread_mutex_unlock(&j->mu);
}

static void flat_layer_done(struct flat_job *j)
{
    pthread_mutex_lock(&j->mu);
    j->ev.items_done++;
    if (j->opts && j->opts->progress)
        j->opts->progress(j->opts->progress_data, &j->ev);
    pthread_mutex_unlock(&j->mu);
}

void rbx_flat_stats_clear(struct rbx_flat_stats *st)
{
    rbx_strv_free(st->skipped_names);
    memset(st, 0, sizeof(*st));
}

/* The stream of layer i, checked for what can be checked before reading it. */
static int layer_stream(struct flat_job *j, size_t i, struct rbx_stream **out,
                        struct rbx_error **err)
{
    const struct rbx_layer *l = &j->img->layers[i];
    enum rbx_media media = rbx_media_parse(l->media_type);
    if (!rbx_media_is_layer(media))
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "layer %s: unsupported layer media type \"%s\"", l->digest,
                             l->media_type);
    if (!l->diff_id || !rbx_digest_valid(l->diff_id))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "layer %s: no valid diff_id",
                             l->digest);
    int blobfd = rbx_blob_open(j->img->blob_dirfd, l->digest, err);
    if (blobfd < 0)
        return rbx_error_wrap(err, "layer %s", l->digest);
    *out = rbx_stream_new(blobfd, rbx_media_compression(media), l->digest, l->size, j->max, "blob");
    rbx_stream_set_progress(*out, flat_progress, j);
    return 0;
}

/* The streams of the layers being read: at most the current one and the next (which a thread
 * decompresses ahead while the current one is applied), freed in order. */
struct flat_streams {
    struct rbx_stream *cur, *next;
};
static void flat_streams_free(struct flat_streams *f)
{
    f->cur = rbx_stream_free(f->cur);
    f->next = rbx_stream_free(f->next);
}

int rbx_image_flatten(const struct rbx_image *img, int dirfd, const struct rbx_unpack_opts *opts,
                      struct rbx_flat_stats *stats, struct rbx_error **err)
{
    struct flat_job j = {.img = img, .opts = opts};
    j.max = rbx_layer_cap(opts);
    pthread_mutex_init(&j.mu, NULL);
    j.ev.phase = "unpack";
    j.ev.items_total = (unsigned)img->n_layers;
    for (size_t i = 0; i < img->n_layers; i++)
        j.ev.bytes_total += img->layers[i].size > 0 ? (uint64_t)img->layers[i].size : 0;

    _cleanup_(rbx_unpack_counts_clear) struct rbx_unpack_counts counts = {0};
    _cleanup_(rbx_applier_freep) struct rbx_applier *ap = rbx_applier_new(dirfd, true, &counts);
    _cleanup_(flat_streams_free) struct flat_streams fs = {0};
    int r = 0;
    for (size_t i = 0; i < img->n_layers && r == 0; i++) {
        const struct rbx_layer *l = &img->layers[i];
        fs.cur = fs.next ? TAKE_PTR(fs.next) : NULL;
        if (!fs.cur && (r = layer_stream(&j, i, &fs.cur, err)) < 0)
            break;
        if (i + 1 < img->n_layers && (r = layer_stream(&j, i + 1, &fs.next, err)) < 0)
            break;
        (void)rbx_stream_prefetch(fs.cur, fs.next);
        if ((r = rbx_applier_layer(ap, fs.cur, l->digest, NULL, err)) < 0)
            break;
        char got[RBX_DIGEST_LEN + 1];
        rbx_stream_diff_id(fs.cur, got);
        if (strcmp(got, l->diff_id) != 0) {
            r = rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG,
                              "layer %s: diff_id mismatch (got %s, the config says %s)", l->digest,
                              got, l->diff_id);
            break;
        }
        fs.cur = rbx_stream_free(fs.cur);
        flat_layer_done(&j);
    }
    flat_streams_free(&fs);
    pthread_mutex_destroy(&j.mu);
    if (r == 0)
        r = rbx_applier_finish(ap, err);
    if (r < 0)
        return r;
    if (stats) {
        stats->layers = (unsigned)img->n_layers;
        stats->bytes_read = j.bytes_read;
        stats->entries = counts.entries;
        stats->skipped_devices = counts.skipped_devices;
        stats->skipped_owners = counts.skipped_owners;
        stats->skipped_xattrs = counts.skipped_xattrs;
        stats->skipped_names = TAKE_PTR(counts.skipped_names);
    }
    return 0;
}

/* A directory that will be renamed into place: removed on every exit unless taken. */
struct staged {
    int parentfd;
    char *name;
};
static void staged_cleanup(struct staged *s)
{
    if (s->name)
        (void)rbx_rm_rf_at(s->parentfd, s->name, NULL);
    free(s->name);
    if (s->parentfd >= 0)
        close(s->parentfd);
}

static void sweep_stale(int parentfd, const char *base)
{
    _cleanup_free_ char *prefix = rbx_xasprintf(".%.200s.reprobox-", base);
    int fd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
            strlen(de->d_name) != strlen(prefix) + 12)
            continue;
        _cleanup_close_ int sfd =
            openat(parentfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd >= 0 && flock(sfd, LOCK_EX | LOCK_NB) == 0)
            (void)rbx_rm_rf_at(parentfd, de->d_name, NULL);
    }
    closedir(d);
}

/* DEST (base in the dir at parentfd) is absent or an empty directory. */
static int dest_usable(int parentfd, const char *base, const char *dest, struct rbx_error **err)
{
    struct stat st;
    if (fstatat(parentfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", dest);
    if (!S_ISDIR(st.st_mode))
        return rbx_error_set(err, RBX_ERR_USAGE, EEXIST,
                             "%s exists and is not a directory (want an empty one or none)", dest);
    _cleanup_close_ int dfd = openat(parentfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_closedir_ DIR *dd = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dd)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", dest);
    dfd = -1;
    struct dirent *de;
    while ((de = readdir(dd)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            return rbx_error_set(err, RBX_ERR_USAGE, ENOTEMPTY,
                                 "%s is not empty (want an empty directory or none)", dest);
    return 0;
}

int rbx_dest_check(const char *dest, struct rbx_error **err)
{
    _cleanup_free_ char *d1 = rbx_xstrdup(dest), *d2 = rbx_xstrdup(dest);
    const char *base = basename(d1), *dir = dirname(d2);
    if (!*base || strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "%s: not a directory name to make", dest);
    _cleanup_close_ int parentfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parentfd < 0)
        return rbx_error_set_errno(err, errno == ENOENT ? RBX_ERR_NOT_FOUND : RBX_ERR_IO, errno, "%s", dir);
    return dest_usable(parentfd, base, dest, err);
}

int rbx_image_unpack_to(const struct rbx_image *img, const char *dest,
                        const struct rbx_unpack_opts *opts, struct rbx_flat_stats *stats,
                        struct rbx_error **err)
{
    _cleanup_free_ char *d1 = rbx_xstrdup(dest), *d2 = rbx_xstrdup(dest);
    const char *base = basename(d1), *dir = dirname(d2);
    if (!*base || strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "%s: not a directory name to make", dest);
    _cleanup_(staged_cleanup) struct staged stage = {.parentfd = -1};
    stage.parentfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (stage.parentfd < 0)
        return rbx_error_set_errno(err, errno == ENOENT ? RBX_ERR_NOT_FOUND : RBX_ERR_IO, errno,
                                   "%s", dir);
    int r = dest_usable(stage.parentfd, base, dest, err);
    if (r < 0)
        return r;

    /* Built beside DEST and renamed into place: DEST never holds half an image. What a killed
     * unpack left there (its lock is free) goes first. */
    sweep_stale(stage.parentfd, base);
    for (int tries = 0; !stage.name && tries < 16; tries++) {
        char rnd[13];
        rbx_random_hex(rnd, 12);
        _cleanup_free_ char *name = rbx_xasprintf(".%.200s.reprobox-%s", base, rnd);
        if (mkdirat(stage.parentfd, name, 0700) == 0)
            stage.name = TAKE_PTR(name);
        else if (errno != EEXIST)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s/%s", dir, name);
    }
    if (!stage.name)
        return rbx_error_set(err, RBX_ERR_IO, EEXIST, "%s: no free temporary name", dir);
    _cleanup_close_ int rootfd =
        openat(stage.parentfd, stage.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* A rootfs is 0755 unless the image says otherwise (its "./" entry). Locked while built. */
    if (rootfd < 0 || fchmod(rootfd, 0755) < 0 || flock(rootfd, LOCK_EX | LOCK_NB) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s/%s", dir, stage.name);
    r = rbx_image_flatten(img, rootfd, opts, stats, err);
    if (r < 0)
        return r;
    if (renameat(stage.parentfd, stage.name, stage.parentfd, base) < 0)
        return rbx_error_set_errno(
            err, errno == ENOTEMPTY || errno == EEXIST ? RBX_ERR_USAGE : RBX_ERR_IO, errno, "%s",
            dest);
    free(TAKE_PTR(stage.name));
    return 0;
}
