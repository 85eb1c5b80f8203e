/* pull.c — docker:// images in the store: the pull policy, platform selection in a registry's
 * index, blobs fetched concurrently into tmp/ and published by rename once verified, and the
 * refs/ records (reference -> manifest or index digest) that let the next open work offline. */
#include "layers/registry-internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#define PULL_CONCURRENT_DEFAULT 3
#define PULL_CONCURRENT_MAX 32

int rbx_pull_policy_parse(const char *s, enum rbx_pull_policy *out, struct rbx_error **err)
{
    static const struct {
        const char *name;
        enum rbx_pull_policy policy;
    } names[] = {
        {"missing", RBX_PULL_MISSING},
        {"always", RBX_PULL_ALWAYS},
        {"never", RBX_PULL_NEVER},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(names); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].policy;
            return 0;
        }
    return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                         "--pull \"%.100s\": expected missing, always or never", s);
}

/* ---- the store's side: blobs present, refs/ records ------------------------------------ */

static bool blob_present(struct rbx_store *s, const char *digest, int64_t size)
{
    char path[8 + RBX_DIGEST_HEX_LEN];
    snprintf(path, sizeof(path), "sha256/%.64s", rbx_digest_hex(digest));
    struct stat st;
    return fstatat(s->blobs_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           (size < 0 || st.st_size == size);
}

/* A layer needs no download when its blob is stored or it is unpacked already. */
static bool layer_present(struct rbx_store *s, const struct rbx_layer *l)
{
    if (blob_present(s, l->digest, l->size))
        return true;
    struct stat st;
    return l->diff_id && rbx_digest_valid(l->diff_id) &&
           fstatat(s->layers_fd, rbx_digest_hex(l->diff_id), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISDIR(st.st_mode);
}

static int refs_dir(struct rbx_store *s, struct rbx_error **err)
{
    if (mkdirat(s->dirfd, "refs", 0700) < 0 && errno != EEXIST)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir refs");
    int fd = openat(s->dirfd, "refs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open refs");
    return fd;
}

/* refs/<sha256 of the canonical name>.json: names may be longer than a file name may. */
static void record_file(const char *canonical, char out[RBX_DIGEST_HEX_LEN + 6])
{
    char d[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(canonical, strlen(canonical), d);
    snprintf(out, RBX_DIGEST_HEX_LEN + 6, "%s.json", rbx_digest_hex(d));
}

struct record {
    char digest[RBX_DIGEST_LEN + 1];
    char media_type[128];
    int64_t size;
};

/* Returns 1 when a record is there, 0 when not. */
static int record_read(struct rbx_store *s, const char *canonical, struct record *out,
                       struct rbx_error **err)
{
    char name[RBX_DIGEST_HEX_LEN + 6];
    record_file(canonical, name);
    _cleanup_close_ int dfd = openat(s->dirfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : rbx_error_set_errno(err, RBX_ERR_IO, errno, "refs/%s", name);
    int r = rbx_read_fd(fd, RBX_SMALL_FILE_MAX, name, &text, &len, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *what = rbx_xasprintf("refs/%s", name);
    _cleanup_json_ json_t *j = rbx_json_loadb(text, len, what, err);
    if (!j)
        return -EINVAL;
    const char *ref = json_string_value(json_object_get(j, "reference"));
    const char *dg = json_string_value(json_object_get(j, "digest"));
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    json_t *sz = json_object_get(j, "size");
    if (!ref || strcmp(ref, canonical) != 0)
        return 0; /* another name with the same hash: never in practice */
    if (!dg || !rbx_digest_valid(dg) || !mt || strlen(mt) >= sizeof(out->media_type) ||
        !json_is_integer(sz) || json_integer_value(sz) < 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: expected reference, digest, mediaType and size", what);
    snprintf(out->digest, sizeof(out->digest), "%s", dg);
    snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
    out->size = json_integer_value(sz);
    return 1;
}

static int record_write(struct rbx_store *s, const char *canonical, const char *digest,
                        const char *media_type, int64_t size, struct rbx_error **err)
{
    _cleanup_close_ int dfd = refs_dir(s, err);
    if (dfd < 0)
        return dfd;
    char name[RBX_DIGEST_HEX_LEN + 6];
    record_file(canonical, name);
    _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "reference", canonical, "digest",
                                         digest, "mediaType", media_type, "size", (json_int_t)size);
    if (!j)
        abort();
    _cleanup_free_ char *text = rbx_json_dump_canonical(j);
    int r = rbx_write_file_atomic_at(dfd, name, text, strlen(text), 0600, err);
    if (r < 0)
        return rbx_error_wrap(err, "record %s", canonical);
    return 0;
}

/* A small verified blob (index, manifest) into blobs/sha256/. */
static int store_small_blob(struct rbx_store *s, const struct rbx_fetched *f,
                            struct rbx_error **err)
{
    if (blob_present(s, f->digest, (int64_t)f->len))
        return 0;
    char path[8 + RBX_DIGEST_HEX_LEN];
    snprintf(path, sizeof(path), "sha256/%s", rbx_digest_hex(f->digest));
    return rbx_write_file_atomic_at(s->blobs_fd, path, f->data, f->len, 0644, err);
}

/* ---- images made from what the store holds ------------------------------------------------ */

/* Move everything but the reference from src into dst (an empty image) and free src. */
static void image_take(struct rbx_image *dst, struct rbx_image *src)
{
    char *reference = dst->reference;
    if (dst->blob_dirfd >= 0)
        close(dst->blob_dirfd);
    *dst = *src;
    dst->reference = reference;
    memset(src, 0, sizeof(*src));
    src->blob_dirfd = -1;
    rbx_image_free(src);
}

/* Resolve the stored top-level manifest or index (digest, media type, size) for the platform,
 * as an OCI layout with one entry would be: the same selection and verification. */
static int open_stored(struct rbx_store *s, const char *digest, const char *media_type,
                       int64_t size, const struct rbx_platform *platform, struct rbx_image **out,
                       struct rbx_error **err)
{
    _cleanup_(rbx_image_freep) struct rbx_image *img = rbx_xcalloc(1, sizeof(*img));
    img->blob_dirfd = fcntl(s->blobs_fd, F_DUPFD_CLOEXEC, 3);
    if (img->blob_dirfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "dup");
    _cleanup_json_ json_t *idx =
        json_pack("{s:i, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2, "manifests",
                  "mediaType", media_type, "digest", digest, "size", (json_int_t)size,
                  "annotations", RBX_ANNOTATION_REF_NAME, "pulled");
    if (!idx)
        abort();
    _cleanup_free_ char *text = rbx_json_dump_canonical(idx);
    int r = rbx_oci_resolve(img, text, strlen(text), "pulled", true, platform, err);
    if (r < 0)
        return r;
    *out = TAKE_PTR(img);
    return 0;
}

/* ---- blobs into the store ------------------------------------------------------------------ */

struct pull_job {
    struct rbx_store *store;
    struct rbx_registry *reg;
    const struct rbx_registry_opts *opts;
    const struct rbx_image *img;
    size_t *order; /* layer indexes to fetch, largest first */
    size_t n_order;
    atomic_size_t next;
    atomic_bool cancel;
    pthread_mutex_t mu;
    struct rbx_error *err; /* the first failure */
    struct rbx_pull_stats *stats;
};

static void emit(struct pull_job *j, size_t layer, enum rbx_pull_layer_state state, uint64_t done)
{
    if (!j->opts->progress)
        return;
    const struct rbx_layer *l = &j->img->layers[layer];
    struct rbx_pull_event ev = {
        .layer = (unsigned)layer,
        .n_layers = (unsigned)j->img->n_layers,
        .digest = l->digest,
        .state = state,
        .done = done,
        .total = l->size > 0 ? (uint64_t)l->size : 0,
    };
    pthread_mutex_lock(&j->mu);
    j->opts->progress(j->opts->progress_data, &ev);
    pthread_mutex_unlock(&j->mu);
}

struct layer_progress {
    struct pull_job *job;
    size_t layer;
};
static void on_blob_progress(void *ud, uint64_t have)
{
    struct layer_progress *lp = ud;
    emit(lp->job, lp->layer, RBX_PULL_LAYER_DOWNLOADING, have);
}

static void fetch_cleanup(struct rbx_blob_fetch *f)
{
    rbx_sha256_free(f->hash);
}

/* locks/blob-<hex> lives only while held: the holder unlinks it (rbx_store_lock takes care of
 * a waiter that locked the unlinked file). */
struct blob_lock {
    struct rbx_store *s;
    int fd;
    char key[RBX_DIGEST_HEX_LEN + 8];
};
static void blob_lock_release(struct blob_lock *l)
{
    if (l->fd >= 0) {
        unlinkat(l->s->locks_fd, l->key, 0);
        close(l->fd);
    }
}

/* Fetch one blob into blobs/sha256/<hex> unless it is there. The bytes go to tmp/partial-<hex>
 * (no '.' in the name: the store's sweep of tmp/ leaves it, so a later pull resumes from it),
 * under locks/blob-<hex> so that two pulls never write it at once. Returns 1 when fetched, 0
 * when it was present. */
static int fetch_blob(struct rbx_registry_conn *c, struct rbx_store *s, const char *digest,
                      int64_t size, atomic_bool *cancel, void (*progress)(void *, uint64_t),
                      void *progress_data, struct rbx_blob_fetch *stats, struct rbx_error **err)
{
    if (blob_present(s, digest, size))
        return 0;
    const char *hex = rbx_digest_hex(digest);
    char key[RBX_DIGEST_HEX_LEN + 8], partial[RBX_DIGEST_HEX_LEN + 16], dst[RBX_DIGEST_HEX_LEN + 8];
    snprintf(key, sizeof(key), "blob-%s", hex);
    snprintf(partial, sizeof(partial), "partial-%s", hex);
    snprintf(dst, sizeof(dst), "sha256/%s", hex);
    _cleanup_(blob_lock_release) struct blob_lock lock = {.s = s, .fd = -1};
    snprintf(lock.key, sizeof(lock.key), "%s", key);
    if ((lock.fd = rbx_store_lock(s, key, true, err)) < 0)
        return lock.fd;
    if (blob_present(s, digest, size))
        return 0; /* another pull published it while we waited */

    _cleanup_close_ int fd =
        openat(s->tmp_fd, partial, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "tmp/%s", partial);
    _cleanup_(fetch_cleanup) struct rbx_blob_fetch f = {
        .digest = digest,
        .size = size,
        .fd = fd,
        .hash = rbx_sha256_new(),
        .cancel = cancel,
        .progress = progress,
        .progress_data = progress_data,
    };
    /* Resume: what an interrupted pull left is hashed again (the digest check at the end
     * covers it; a mismatch then starts over from zero). */
    struct stat st;
    if (fstat(fd, &st) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "tmp/%s", partial);
    if (!S_ISREG(st.st_mode))
        return rbx_error_set(err, RBX_ERR_IO, EINVAL, "tmp/%s: not a regular file", partial);
    if (size >= 0 && st.st_size > size) {
        if (ftruncate(fd, 0) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "tmp/%s", partial);
    } else if (st.st_size > 0) {
        _cleanup_free_ char *buf = rbx_xmalloc(1 << 20);
        ssize_t n;
        for (;;) {
            n = read(fd, buf, 1 << 20);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            rbx_sha256_update(f.hash, buf, (size_t)n);
            f.have += (uint64_t)n;
        }
        if (n < 0 || f.have != (uint64_t)st.st_size) {
            /* Unreadable leftovers: start from zero. */
            if (ftruncate(fd, 0) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "tmp/%s", partial);
            rbx_sha256_free(f.hash);
            f.hash = rbx_sha256_new();
            f.have = 0;
        }
    }
    if (lseek(fd, (off_t)f.have, SEEK_SET) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "tmp/%s", partial);
    uint64_t had = f.have;
    int r = rbx_registry_get_blob(c, &f, err);
    stats->downloaded += f.downloaded;
    if (had > 0 || f.resumed_from > 0)
        stats->resumed_from = had > 0 ? had : f.resumed_from;
    if (r < 0) {
        /* A download the network cut is kept for the next pull to resume; anything else (bytes
         * that do not hash right, a pull given up because another blob failed) leaves nothing. */
        if (!(err && *err && (*err)->kind == RBX_ERR_NETWORK))
            unlinkat(s->tmp_fd, partial, 0);
        return r;
    }
    if (fdatasync(fd) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "blob %s: sync", digest);
    if (renameat(s->tmp_fd, partial, s->blobs_fd, dst) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "blob %s: publish", digest);
    _cleanup_close_ int shafd = openat(s->blobs_fd, "sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (shafd >= 0)
        (void)fsync(shafd);
    return 1;
}

static void *pull_worker(void *arg)
{
    struct pull_job *j = arg;
    _cleanup_(rbx_registry_conn_freep) struct rbx_registry_conn *c = rbx_registry_conn_new(j->reg);
    for (;;) {
        size_t k = atomic_fetch_add(&j->next, 1);
        if (k >= j->n_order || atomic_load(&j->cancel))
            break;
        size_t i = j->order[k];
        const struct rbx_layer *l = &j->img->layers[i];
        struct layer_progress lp = {.job = j, .layer = i};
        struct rbx_blob_fetch st = {0};
        struct rbx_error *e = NULL;
        emit(j, i, RBX_PULL_LAYER_DOWNLOADING, 0);
        int r =
            fetch_blob(c, j->store, l->digest, l->size, &j->cancel, on_blob_progress, &lp, &st, &e);
        pthread_mutex_lock(&j->mu);
        j->stats->bytes_downloaded += st.downloaded;
        if (r == 1) {
            j->stats->layers_downloaded++;
            if (st.resumed_from)
                j->stats->layers_resumed++;
        } else if (r == 0) {
            j->stats->layers_present++;
        }
        if (r < 0) {
            if (!j->err && !(e && e->errnum == ECANCELED)) {
                rbx_error_wrap(&e, "layer %s", l->digest);
                j->err = TAKE_PTR(e);
            }
            atomic_store(&j->cancel, true);
        }
        pthread_mutex_unlock(&j->mu);
        rbx_error_free(e);
        if (r < 0)
            break;
        emit(j, i, r == 1 ? RBX_PULL_LAYER_DONE : RBX_PULL_LAYER_PRESENT,
             l->size > 0 ? (uint64_t)l->size : 0);
    }
    return NULL;
}

static int cmp_size_desc(const void *a, const void *b, void *ud)
{
    const struct rbx_image *img = ud;
    int64_t x = img->layers[*(const size_t *)a].size;
    int64_t y = img->layers[*(const size_t *)b].size;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int fetch_layers(struct rbx_store *s, struct rbx_registry *reg,
                        const struct rbx_registry_opts *opts, const struct rbx_image *img,
                        struct rbx_pull_stats *stats, struct rbx_error **err)
{
    struct pull_job j = {.store = s, .reg = reg, .opts = opts, .img = img, .stats = stats};
    _cleanup_free_ size_t *order = rbx_xcalloc(img->n_layers + 1, sizeof(size_t));
    j.order = order;
    for (size_t i = 0; i < img->n_layers; i++) {
        if (layer_present(s, &img->layers[i])) {
            stats->layers_present++;
            if (opts->progress) {
                struct rbx_pull_event ev = {
                    .layer = (unsigned)i,
                    .n_layers = (unsigned)img->n_layers,
                    .digest = img->layers[i].digest,
                    .state = RBX_PULL_LAYER_PRESENT,
                    .done = (uint64_t)img->layers[i].size,
                    .total = (uint64_t)img->layers[i].size,
                };
                opts->progress(opts->progress_data, &ev);
            }
            continue;
        }
        order[j.n_order++] = i;
        if (opts->progress) {
            struct rbx_pull_event ev = {
                .layer = (unsigned)i,
                .n_layers = (unsigned)img->n_layers,
                .digest = img->layers[i].digest,
                .state = RBX_PULL_LAYER_WAITING,
                .total = (uint64_t)img->layers[i].size,
            };
            opts->progress(opts->progress_data, &ev);
        }
    }
    if (j.n_order == 0)
        return 0;
    /* Largest first: the longest download starts at once and the pull ends sooner. */
    qsort_r(order, j.n_order, sizeof(size_t), cmp_size_desc, (void *)img);
    atomic_init(&j.next, 0);
    atomic_init(&j.cancel, false);
    pthread_mutex_init(&j.mu, NULL);
    size_t workers = opts->max_concurrent ? opts->max_concurrent : PULL_CONCURRENT_DEFAULT;
    if (workers > PULL_CONCURRENT_MAX)
        workers = PULL_CONCURRENT_MAX;
    if (workers > j.n_order)
        workers = j.n_order;
    pthread_t *th = rbx_xcalloc(workers, sizeof(pthread_t));
    size_t started = 0;
    for (; started < workers; started++)
        if (pthread_create(&th[started], NULL, pull_worker, &j) != 0)
            break;
    if (started == 0)
        pull_worker(&j);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    pthread_mutex_destroy(&j.mu);
    if (j.err)
        return rbx_error_move(err, &j.err);
    return 0;
}

/* ---- choosing in an index ----------------------------------------------------------------- */

static void note_platform(char ***seen, const struct rbx_descriptor *d)
{
    char buf[128];
    if (d->has_platform)
        rbx_platform_format(&d->platform, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "unspecified");
    for (size_t i = 0; *seen && (*seen)[i]; i++)
        if (strcmp((*seen)[i], buf) == 0)
            return;
    rbx_strv_push(seen, buf);
}

/* The rules of oci.c: a platform match, the exact variant preferred; then nested indexes. */
static int select_in_index(struct rbx_registry *reg, struct rbx_store *s,
                           const struct rbx_fetched *index, const struct rbx_platform *platform,
                           unsigned depth, char ***seen, struct rbx_fetched *out,
                           struct rbx_error **err)
{
    if (depth > RBX_INDEX_DEPTH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ELOOP, "image indexes nested deeper than %d",
                             RBX_INDEX_DEPTH_MAX);
    _cleanup_free_ char *what = rbx_xasprintf("index %s", index->digest);
    struct rbx_index idx;
    int r = rbx_index_parse(index->data, index->len, what, &idx, err);
    if (r < 0)
        return r;
    const struct rbx_descriptor *best = NULL;
    for (size_t i = 0; i < idx.n_manifests; i++) {
        const struct rbx_descriptor *d = &idx.manifests[i];
        if (!rbx_media_is_manifest(d->media) || !d->has_platform)
            continue;
        if (!rbx_platform_matches(&d->platform, platform)) {
            note_platform(seen, d);
            continue;
        }
        if (strcmp(d->platform.variant, platform->variant) == 0) {
            best = d;
            break;
        }
        if (!best)
            best = d;
    }
    if (!best && idx.n_manifests == 1 && rbx_media_is_manifest(idx.manifests[0].media) &&
        !idx.manifests[0].has_platform)
        best = &idx.manifests[0];
    r = 0;
    if (best) {
        if ((uint64_t)best->size > RBX_MANIFEST_MAX)
            r = rbx_error_set(err, RBX_ERR_LIMIT, EFBIG, "manifest %s: %lld bytes (limit %zu)",
                              best->digest, (long long)best->size, RBX_MANIFEST_MAX);
        else if ((r = rbx_registry_get_manifest(reg, best->digest, out, err)) >= 0 &&
                 (int64_t)out->len != best->size)
            r = rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG,
                              "manifest %s: size %zu, descriptor says %lld", best->digest, out->len,
                              (long long)best->size);
        rbx_index_clear(&idx);
        return r < 0 ? r : 1;
    }
    for (size_t i = 0; i < idx.n_manifests && r == 0; i++) {
        const struct rbx_descriptor *d = &idx.manifests[i];
        if (!rbx_media_is_index(d->media))
            continue;
        if (d->has_platform && !rbx_platform_matches(&d->platform, platform)) {
            note_platform(seen, d);
            continue;
        }
        struct rbx_fetched sub = {0};
        if ((r = rbx_registry_get_manifest(reg, d->digest, &sub, err)) < 0)
            break;
        if ((r = store_small_blob(s, &sub, err)) >= 0)
            r = select_in_index(reg, s, &sub, platform, depth + 1, seen, out, err);
        rbx_fetched_clear(&sub);
    }
    for (size_t i = 0; i < idx.n_manifests && r == 0; i++)
        if (rbx_media_is_manifest(idx.manifests[i].media) && !idx.manifests[i].has_platform)
            note_platform(seen, &idx.manifests[i]);
    rbx_index_clear(&idx);
    return r;
}

/* ---- pull ------------------------------------------------------------------------------------ */

static void fetched_clearp(struct rbx_fetched *f)
{
    rbx_fetched_clear(f);
}

static char *join(char *const *v, const char *sep)
{
    size_t n = 1;
    for (size_t i = 0; v && v[i]; i++)
        n += strlen(v[i]) + strlen(sep);
    char *s = rbx_xcalloc(1, n);
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            strcat(s, sep);
        strcat(s, v[i]);
    }
    return s;
}

static int pull(struct rbx_store *s, const struct rbx_ref *ref, const char *canonical,
                const struct rbx_registry_opts *opts, const struct rbx_platform *platform,
                struct rbx_pull_stats *stats, struct rbx_image **out, struct rbx_error **err)
{
    _cleanup_(rbx_registry_freep) struct rbx_registry *reg = NULL;
    int r = rbx_registry_open(ref, opts, &reg, err);
    if (r < 0)
        return r;
    stats->contacted = true;
    _cleanup_(fetched_clearp) struct rbx_fetched top = {0}, chosen = {0};
    if ((r = rbx_registry_get_manifest(reg, ref->digest ? ref->digest : ref->tag, &top, err)) < 0)
        return r;
    if ((r = store_small_blob(s, &top, err)) < 0)
        return r;
    const struct rbx_fetched *manifest = &top;
    if (rbx_media_is_index(top.media)) {
        _cleanup_strv_ char **seen = NULL;
        r = select_in_index(reg, s, &top, platform, 0, &seen, &chosen, err);
        if (r < 0)
            return r;
        if (r == 0) {
            char want[128];
            rbx_platform_format(platform, want, sizeof(want));
            _cleanup_free_ char *list = join(seen, ", ");
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                 "no manifest for platform %s (available: %s)", want,
                                 seen ? list : "none");
        }
        if ((r = store_small_blob(s, &chosen, err)) < 0)
            return r;
        manifest = &chosen;
        snprintf(stats->index_digest, sizeof(stats->index_digest), "%s", top.digest);
    }

    /* The config, before anything is read from the store: open_stored verifies both again. */
    struct rbx_manifest m;
    _cleanup_free_ char *mwhat = rbx_xasprintf("manifest %s", manifest->digest);
    if ((r = rbx_manifest_parse(manifest->data, manifest->len, mwhat, manifest->media, &m, err)) <
        0)
        return r;
    _cleanup_free_ char *config_digest = rbx_xstrdup(m.config.digest);
    int64_t config_size = m.config.size;
    rbx_manifest_clear(&m);
    if (config_size > (int64_t)RBX_CONFIG_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, EFBIG, "config %s: %lld bytes (limit %zu)",
                             config_digest, (long long)config_size, RBX_CONFIG_MAX);
    {
        _cleanup_(rbx_registry_conn_freep) struct rbx_registry_conn *c = rbx_registry_conn_new(reg);
        struct rbx_blob_fetch st = {0};
        r = fetch_blob(c, s, config_digest, config_size, NULL, NULL, NULL, &st, err);
        if (r < 0)
            return rbx_error_wrap(err, "config %s", config_digest);
    }

    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    if ((r = open_stored(s, top.digest, top.media_type, (int64_t)top.len, platform, &img, err)) < 0)
        return r;
    stats->layers = (unsigned)img->n_layers;
    for (size_t i = 0; i < img->n_layers; i++)
        stats->bytes_total += img->layers[i].size > 0 ? (uint64_t)img->layers[i].size : 0;
    if ((r = fetch_layers(s, reg, opts, img, stats, err)) < 0)
        return r;
    if ((r = record_write(s, canonical, top.digest, top.media_type, (int64_t)top.len, err)) < 0)
        return r;
    *out = TAKE_PTR(img);
    return 0;
}

static void fill_stats(struct rbx_pull_stats *stats, const struct rbx_image *img)
{
    snprintf(stats->manifest_digest, sizeof(stats->manifest_digest), "%s",
             img->manifest_digest ? img->manifest_digest : "");
    const struct rbx_image_config *c = &img->config;
    snprintf(stats->platform.os, sizeof(stats->platform.os), "%s", c->os ? c->os : "");
    snprintf(stats->platform.architecture, sizeof(stats->platform.architecture), "%s",
             c->architecture ? c->architecture : "");
    snprintf(stats->platform.variant, sizeof(stats->platform.variant), "%s",
             c->variant ? c->variant : "");
    if (!stats->contacted) {
        stats->layers = (unsigned)img->n_layers;
        stats->layers_present = stats->layers;
        for (size_t i = 0; i < img->n_layers; i++)
            stats->bytes_total += img->layers[i].size > 0 ? (uint64_t)img->layers[i].size : 0;
    }
}

/* A manifest or index stored under the digest asked for is as good as a record: its media type
 * is its own mediaType, or its shape. Returns 1 when usable, 0 when not. */
static int record_from_blob(struct rbx_store *s, const char *digest, struct record *out)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if (!blob_present(s, digest, -1) ||
        rbx_blob_read(s->blobs_fd, digest, -1, RBX_MANIFEST_MAX, "manifest", &buf, &len, NULL) < 0)
        return 0;
    json_error_t je;
    _cleanup_json_ json_t *j = json_loadb(buf, len, 0, &je);
    const char *mt = json_string_value(json_object_get(j, "mediaType"));
    if (!mt)
        mt = json_object_get(j, "manifests") ? "application/vnd.oci.image.index.v1+json"
                                             : "application/vnd.oci.image.manifest.v1+json";
    enum rbx_media m = rbx_media_parse(mt);
    if (!json_is_object(j) || (!rbx_media_is_index(m) && !rbx_media_is_manifest(m)))
        return 0;
    snprintf(out->digest, sizeof(out->digest), "%s", digest);
    snprintf(out->media_type, sizeof(out->media_type), "%s", mt);
    out->size = (int64_t)len;
    return 1;
}

static bool all_layers_present(struct rbx_store *s, const struct rbx_image *img)
{
    for (size_t i = 0; i < img->n_layers; i++)
        if (!layer_present(s, &img->layers[i]))
            return false;
    return true;
}

int rbx_docker_open(struct rbx_store *s, struct rbx_image *img, const struct rbx_ref *ref,
                    const struct rbx_open_opts *opts, const struct rbx_platform *platform,
                    struct rbx_error **err)
{
    static const struct rbx_registry_opts no_opts = {0};
    const struct rbx_registry_opts *ropts = opts && opts->registry ? opts->registry : &no_opts;
    enum rbx_pull_policy policy = opts ? opts->pull : RBX_PULL_MISSING;
    struct rbx_pull_stats local, *stats = opts && opts->pull_stats ? opts->pull_stats : &local;
    memset(stats, 0, sizeof(*stats));
    uint64_t t0 = rbx_now_ns();
    _cleanup_free_ char *canonical = rbx_ref_docker_name(ref);

    /* A digest never changes what it names: "always" has nothing to re-resolve. */
    if (policy != RBX_PULL_ALWAYS || ref->digest) {
        struct record rec;
        int r = record_read(s, canonical, &rec, err);
        if (r < 0)
            return r;
        if (r == 0 && ref->digest)
            r = record_from_blob(s, ref->digest, &rec);
        if (r == 1) {
            _cleanup_(rbx_image_freep) struct rbx_image *stored = NULL;
            _cleanup_error_ struct rbx_error *e = NULL;
            r = open_stored(s, rec.digest, rec.media_type, rec.size, platform, &stored, &e);
            if (r == 0 && all_layers_present(s, stored)) {
                if (rbx_media_is_index(rbx_media_parse(rec.media_type)))
                    snprintf(stats->index_digest, sizeof(stats->index_digest), "%s", rec.digest);
                fill_stats(stats, stored);
                stats->elapsed_ns = rbx_now_ns() - t0;
                image_take(img, TAKE_PTR(stored));
                return 0;
            }
            /* Only what is missing sends us to the registry; a damaged store is reported. */
            if (r < 0 && e->kind != RBX_ERR_NOT_FOUND)
                return rbx_error_move(err, &e);
        }
        if (policy == RBX_PULL_NEVER)
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                 "not in the store (--pull=never; reprobox pull fetches it)");
    }
    _cleanup_(rbx_image_freep) struct rbx_image *pulled = NULL;
    int r = pull(s, ref, canonical, ropts, platform, stats, &pulled, err);
    if (r < 0)
        return r;
    fill_stats(stats, pulled);
    stats->elapsed_ns = rbx_now_ns() - t0;
    image_take(img, TAKE_PTR(pulled));
    return 0;
}
