/* records.c — what the store remembers besides blobs and layers. archives/<key>.json: what an
 * imported archive holds, keyed by the archive's path and identity, so opening it again costs a
 * stat. images/<key>.json: each image opened (reference, digests, layers); its mtime is the last
 * use, which a prune reads. Both are reprobox's own files in a private store, rewritten whole. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RECORD_MAX ((size_t)16 << 20)

/* ---- archives -------------------------------------------------------------------------------- */

void rbx_archive_key(const char *realpath, const struct stat *st, char out[RBX_DIGEST_HEX_LEN + 1])
{
    _cleanup_free_ char *id =
        rbx_xasprintf("archive\n%s\n%llu %llu %lld %lld.%09ld %lld.%09ld", realpath,
                      (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
                      (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                      (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
    char d[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(id, strlen(id), d);
    memcpy(out, rbx_digest_hex(d), RBX_DIGEST_HEX_LEN + 1);
}

static const char *compression_name(enum rbx_compression c)
{
    return c == RBX_COMPRESSION_GZIP ? "gzip" : c == RBX_COMPRESSION_ZSTD ? "zstd" : "none";
}

int rbx_archive_record_save(struct rbx_store *s, const char *key, const char *path,
                            const struct rbx_import *imp, struct rbx_error **err)
{
    _cleanup_json_ json_t *entries = json_array();
    for (size_t i = 0; i < imp->n; i++) {
        const struct rbx_import_entry *e = &imp->entries[i];
        json_t *j = e->link ? json_pack("{s:s, s:s}", "name", e->name, "link", e->link)
                            : json_pack("{s:s, s:s, s:I, s:s}", "name", e->name, "digest",
                                        e->digest, "size", (json_int_t)e->size, "compression",
                                        compression_name(e->compression));
        if (!j)
            abort();
        json_array_append_new(entries, j);
    }
    _cleanup_json_ json_t *rec = json_pack("{s:s, s:O}", "path", path, "entries", entries);
    _cleanup_free_ char *text = rbx_json_dump_canonical(rec);
    _cleanup_free_ char *name = rbx_xasprintf("%s.json", key);
    return rbx_write_file_replace_at(s->archives_fd, name, text, strlen(text), 0600, err);
}

static bool blob_present(struct rbx_store *s, const char *digest, int64_t size)
{
    char rel[RBX_DIGEST_HEX_LEN + 8];
    snprintf(rel, sizeof(rel), "sha256/%s", rbx_digest_hex(digest));
    struct stat st;
    return fstatat(s->blobs_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           st.st_size == size;
}

/* The digests an archive record lists, into `keep` (a prune's set). */
static void archive_record_blobs(json_t *rec, struct rbx_strmap *keep)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(rec, "entries"), i, e) {
        const char *d = json_string_value(json_object_get(e, "digest"));
        if (d)
            *rbx_strmap_slot(keep, d, true) = 1;
    }
}

static json_t *record_load(int dirfd, const char *name)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (rbx_read_file_at(dirfd, name, RECORD_MAX, &text, &len, NULL) < 0)
        return NULL;
    json_t *j = rbx_json_loadb(text, len, name, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int rbx_archive_record_load(struct rbx_store *s, const char *key, struct rbx_import *out)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *name = rbx_xasprintf("%s.json", key);
    _cleanup_json_ json_t *rec = record_load(s->archives_fd, name);
    json_t *entries = rec ? json_object_get(rec, "entries") : NULL;
    if (!json_is_array(entries))
        return -ENOENT;
    struct rbx_import imp = {0};
    size_t i;
    json_t *e;
    json_array_foreach (entries, i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        const char *link = json_string_value(json_object_get(e, "link"));
        const char *digest = json_string_value(json_object_get(e, "digest"));
        const char *comp = json_string_value(json_object_get(e, "compression"));
        json_t *size = json_object_get(e, "size");
        if (!n || (!link && (!digest || !rbx_digest_valid(digest) || !json_is_integer(size) ||
                             !comp || !blob_present(s, digest, json_integer_value(size))))) {
            rbx_import_clear(&imp);
            return -ENOENT; /* a blob was pruned (or the record is not ours): import again */
        }
        imp.entries = rbx_xrealloc(imp.entries, (imp.n + 1) * sizeof(*imp.entries));
        struct rbx_import_entry *x = &imp.entries[imp.n++];
        memset(x, 0, sizeof(*x));
        x->name = rbx_xstrdup(n);
        if (link) {
            x->link = rbx_xstrdup(link);
            continue;
        }
        snprintf(x->digest, sizeof(x->digest), "%s", digest);
        x->size = json_integer_value(size);
        x->compression = strcmp(comp, "gzip") == 0   ? RBX_COMPRESSION_GZIP
                         : strcmp(comp, "zstd") == 0 ? RBX_COMPRESSION_ZSTD
                                                     : RBX_COMPRESSION_NONE;
    }
    *out = imp;
    return 0;
}

/* ---- images ---------------------------------------------------------------------------------- */

static const char *transport_prefix(enum rbx_transport t)
{
    switch (t) {
    case RBX_TRANSPORT_OCI: return "oci:";
    case RBX_TRANSPORT_OCI_ARCHIVE: return "oci-archive:";
    case RBX_TRANSPORT_DOCKER_ARCHIVE: return "docker-archive:";
    default: return "docker://";
    }
}

char *rbx_ref_canonical(const struct rbx_ref *ref)
{
    if (ref->transport == RBX_TRANSPORT_DOCKER) {
        _cleanup_free_ char *name = rbx_ref_docker_name(ref);
        return rbx_xasprintf("docker://%s", name);
    }
    _cleanup_free_ char *abs = realpath(ref->path, NULL);
    return rbx_xasprintf("%s%s%s%s", transport_prefix(ref->transport), abs ? abs : ref->path,
                         ref->tag ? ":" : "", ref->tag ? ref->tag : "");
}

int rbx_image_record(struct rbx_store *s, const struct rbx_image *img, const char *canonical,
                     const char *archive_key, struct rbx_error **err)
{
    char plat[128];
    snprintf(plat, sizeof(plat), "%s/%s%s%s", img->config.os ? img->config.os : "",
             img->config.architecture ? img->config.architecture : "",
             img->config.variant ? "/" : "", img->config.variant ? img->config.variant : "");
    _cleanup_json_ json_t *layers = json_array();
    for (size_t i = 0; i < img->n_layers; i++) {
        const struct rbx_layer *l = &img->layers[i];
        json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "digest", l->digest, "diff_id",
                              l->diff_id ? l->diff_id : "", "media_type", l->media_type, "size",
                              (json_int_t)l->size);
        if (!j)
            abort();
        json_array_append_new(layers, j);
    }
    _cleanup_json_ json_t *rec =
        json_pack("{s:s, s:s, s:s, s:O}", "reference", canonical, "platform", plat, "config_digest",
                  img->config_digest ? img->config_digest : "", "layers", layers);
    if (!rec)
        abort();
    if (img->manifest_digest)
        json_object_set_new(rec, "manifest_digest", json_string(img->manifest_digest));
    if (archive_key)
        json_object_set_new(rec, "archive", json_string(archive_key));
    /* The blobs of the store it reads (pulled images): a prune keeps them with the record. */
    json_t *blobs = json_array();
    if (img->manifest_digest)
        json_array_append_new(blobs, json_string(img->manifest_digest));
    if (img->config_digest)
        json_array_append_new(blobs, json_string(img->config_digest));
    for (size_t i = 0; i < img->n_layers; i++)
        json_array_append_new(blobs, json_string(img->layers[i].digest));
    json_object_set_new(rec, "blobs", blobs);
    _cleanup_free_ char *text = rbx_json_dump_canonical(rec);

    /* One record per reference and platform. */
    _cleanup_free_ char *id = rbx_xasprintf("%s\n%s", canonical, plat);
    char d[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(id, strlen(id), d);
    _cleanup_free_ char *name = rbx_xasprintf("%s.json", rbx_digest_hex(d));
    _cleanup_free_ char *old = NULL;
    size_t len = 0;
    /* Unchanged: only the last use moves (the mtime), no rewrite. */
    if (rbx_read_file_at(s->images_fd, name, RECORD_MAX, &old, &len, NULL) == 0 &&
        strcmp(old, text) == 0 && utimensat(s->images_fd, name, NULL, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    return rbx_write_file_replace_at(s->images_fd, name, text, strlen(text), 0600, err);
}

/* ---- listing, sizes and pruning ------------------------------------------------------------ */

/* Calls fn for each "<name>.json" record of dirfd with its parsed JSON and mtime. */
static void each_record(int dirfd,
                        void (*fn)(void *ud, const char *name, json_t *rec, const struct stat *st),
                        void *ud)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        _cleanup_json_ json_t *rec = record_load(dirfd, de->d_name);
        fn(ud, de->d_name, rec, &st);
    }
}

/* Disk usage of a tree (st_blocks), each inode counted once. */
static uint64_t tree_bytes(int parent, const char *name, struct rbx_strmap *inodes)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    uint64_t total = 0;
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode)) {
        char k[64];
        snprintf(k, sizeof(k), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        size_t *seen = rbx_strmap_slot(inodes, k, true);
        if (*seen)
            return 0;
        *seen = 1;
    }
    total += (uint64_t)st.st_blocks * 512;
    if (!S_ISDIR(st.st_mode))
        return total;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return total;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return total;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            total += tree_bytes(dirfd(d), de->d_name, inodes);
    closedir(d);
    return total;
}

static uint64_t dir_bytes(int dirfd, const char *name)
{
    struct rbx_strmap inodes = {0};
    uint64_t n = tree_bytes(dirfd, name, &inodes);
    rbx_strmap_clear(&inodes);
    return n;
}

/* Names in a directory (not "." or ".."), sorted. */
static char **list_dir(int dirfd)
{
    char **v = rbx_xcalloc(1, sizeof(char *));
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return v;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return v;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rbx_strv_push(&v, de->d_name);
    closedir(d);
    return v;
}

int rbx_store_du(struct rbx_store *s, struct rbx_cache_usage *u, struct rbx_error **err)
{
    memset(u, 0, sizeof(*u));
    _cleanup_close_ int sha = openat(s->blobs_fd, "sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sha < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "blobs");
    _cleanup_strv_ char **blobs = list_dir(sha);
    for (size_t i = 0; blobs[i]; i++) {
        struct stat st;
        if (fstatat(sha, blobs[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            u->blobs.count++;
            u->blobs.bytes += (uint64_t)st.st_blocks * 512;
        }
    }
    _cleanup_strv_ char **layers = list_dir(s->layers_fd);
    for (size_t i = 0; layers[i]; i++) {
        u->layers.count++;
        u->layers.bytes += dir_bytes(s->layers_fd, layers[i]);
    }
    rbx_store_sweep_wait(s);
    _cleanup_strv_ char **runs = list_dir(s->runs_fd);
    for (size_t i = 0; runs[i]; i++) {
        if (strchr(runs[i], '.'))
            continue; /* .lock, .kept */
        _cleanup_free_ char *kept = rbx_xasprintf("%s.kept", runs[i]);
        bool k = faccessat(s->runs_fd, kept, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        uint64_t b = dir_bytes(s->runs_fd, runs[i]);
        u->runs.count++;
        u->runs.bytes += b;
        if (k) {
            u->kept_runs.count++;
            u->kept_runs.bytes += b;
        }
    }
    _cleanup_strv_ char **tmp = list_dir(s->tmp_fd);
    for (size_t i = 0; tmp[i]; i++) {
        u->tmp.count++;
        u->tmp.bytes += dir_bytes(s->tmp_fd, tmp[i]);
    }
    int rdirs[] = {s->images_fd, s->archives_fd};
    for (size_t k = 0; k < RBX_ARRAY_SIZE(rdirs); k++) {
        _cleanup_strv_ char **recs = list_dir(rdirs[k]);
        for (size_t i = 0; recs[i]; i++) {
            struct stat st;
            if (fstatat(rdirs[k], recs[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
                u->records.count++;
                u->records.bytes += (uint64_t)st.st_blocks * 512;
            }
        }
    }
    return 0;
}

/* ---- list ----------------------------------------------------------------------------------- */

static json_t *layer_meta(struct rbx_store *s, const char *name)
{
    _cleanup_free_ char *rel = rbx_xasprintf("%s/meta.json", name);
    return record_load(s->layers_fd, rel);
}

struct list_ctx {
    struct rbx_store *s;
    struct rbx_cache_list *out;
    struct rbx_strmap used; /* layer dir name -> records using it */
};

static void list_image(void *ud, const char *name, json_t *rec, const struct stat *st)
{
    struct list_ctx *c = ud;
    const char *ref = rec ? json_string_value(json_object_get(rec, "reference")) : NULL;
    if (!ref)
        return;
    struct rbx_cache_list *l = c->out;
    l->images = rbx_xrealloc(l->images, (l->n_images + 1) * sizeof(*l->images));
    struct rbx_cached_image *im = &l->images[l->n_images++];
    memset(im, 0, sizeof(*im));
    im->reference = rbx_xstrdup(ref);
    const char *p = json_string_value(json_object_get(rec, "platform"));
    im->platform = rbx_xstrdup(p ? p : "");
    const char *cd = json_string_value(json_object_get(rec, "config_digest"));
    im->config_digest = rbx_xstrdup(cd ? cd : "");
    im->last_used = st->st_mtim.tv_sec;
    size_t i;
    json_t *layer;
    json_array_foreach (json_object_get(rec, "layers"), i, layer) {
        const char *id = json_string_value(json_object_get(layer, "diff_id"));
        im->n_layers++;
        if (!id || !rbx_digest_valid(id))
            continue;
        (*rbx_strmap_slot(&c->used, rbx_digest_hex(id), true))++;
        _cleanup_json_ json_t *meta = layer_meta(c->s, rbx_digest_hex(id));
        if (meta) {
            im->n_layers_cached++;
            im->bytes += (uint64_t)json_integer_value(json_object_get(meta, "unpacked_bytes"));
        }
    }
    (void)name;
}

int rbx_store_list(struct rbx_store *s, struct rbx_cache_list *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    struct list_ctx c = {.s = s, .out = out};
    each_record(s->images_fd, list_image, &c);
    _cleanup_strv_ char **layers = list_dir(s->layers_fd);
    for (size_t i = 0; layers[i]; i++) {
        out->layers = rbx_xrealloc(out->layers, (out->n_layers + 1) * sizeof(*out->layers));
        struct rbx_cached_layer *l = &out->layers[out->n_layers++];
        memset(l, 0, sizeof(*l));
        l->name = rbx_xstrdup(layers[i]);
        _cleanup_json_ json_t *meta = layer_meta(s, layers[i]);
        const char *v;
        if ((v = json_string_value(json_object_get(meta, "diff_id"))))
            l->diff_id = rbx_xstrdup(v);
        if ((v = json_string_value(json_object_get(meta, "digest"))))
            l->digest = rbx_xstrdup(v);
        l->entries = (uint64_t)json_integer_value(json_object_get(meta, "entries"));
        l->bytes = (uint64_t)json_integer_value(json_object_get(meta, "unpacked_bytes"));
        l->used_by = (unsigned)rbx_strmap_get(&c.used, layers[i]);
    }
    rbx_strmap_clear(&c.used);
    _cleanup_close_ int sha = openat(s->blobs_fd, "sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sha < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "blobs");
    _cleanup_strv_ char **blobs = list_dir(sha);
    for (size_t i = 0; blobs[i]; i++) {
        struct stat st;
        if (fstatat(sha, blobs[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            out->n_blobs++;
            out->blob_bytes += (uint64_t)st.st_size;
        }
    }
    return 0;
}

void rbx_cache_list_clear(struct rbx_cache_list *l)
{
    for (size_t i = 0; i < l->n_images; i++) {
        free(l->images[i].reference);
        free(l->images[i].platform);
        free(l->images[i].config_digest);
    }
    free(l->images);
    for (size_t i = 0; i < l->n_layers; i++) {
        free(l->layers[i].name);
        free(l->layers[i].diff_id);
        free(l->layers[i].digest);
    }
    free(l->layers);
    memset(l, 0, sizeof(*l));
}

/* ---- prune ----------------------------------------------------------------------------------- */

struct prune_ctx {
    struct rbx_store *s;
    const struct rbx_prune_opts *o;
    struct rbx_prune_stats *stats;
    int64_t cutoff;
    struct rbx_strmap keep_layers, keep_archives, keep_blobs, keep_refs;
    char **forget; /* image records to remove */
};

/* Can the image of this canonical reference still be opened as it was recorded? */
static bool source_alive(json_t *rec)
{
    const char *ref = json_string_value(json_object_get(rec, "reference"));
    struct rbx_ref r = {0};
    if (!ref || rbx_ref_parse(ref, &r, NULL) < 0)
        return false;
    bool alive = false;
    struct stat st;
    if (r.transport == RBX_TRANSPORT_OCI) {
        _cleanup_free_ char *idx = rbx_xasprintf("%s/index.json", r.path);
        alive = stat(idx, &st) == 0;
    } else if (r.transport == RBX_TRANSPORT_DOCKER) {
        alive = true;
    } else if (stat(r.path, &st) == 0) {
        /* An archive that changed is another archive: its record is another one. */
        const char *key = json_string_value(json_object_get(rec, "archive"));
        _cleanup_free_ char *abs = realpath(r.path, NULL);
        char now[RBX_DIGEST_HEX_LEN + 1];
        if (abs && key) {
            rbx_archive_key(abs, &st, now);
            alive = strcmp(now, key) == 0;
        }
    }
    rbx_ref_clear(&r);
    return alive;
}

static void prune_image(void *ud, const char *name, json_t *rec, const struct stat *st)
{
    struct prune_ctx *c = ud;
    bool keep = !c->o->all && rec && st->st_mtim.tv_sec > c->cutoff && source_alive(rec);
    if (!keep) {
        rbx_strv_push(&c->forget, name);
        return;
    }
    size_t i;
    json_t *layer;
    json_t *layers = json_object_get(rec, "layers");
    json_array_foreach (layers, i, layer) {
        const char *id = json_string_value(json_object_get(layer, "diff_id"));
        if (!id || !rbx_digest_valid(id))
            continue;
        *rbx_strmap_slot(&c->keep_layers, rbx_digest_hex(id), true) = 1;
    }
    /* The links dirs above its layers: named by chain ids, computed as the unpack does. */
    char chain[RBX_DIGEST_LEN + 1] = "";
    json_array_foreach (layers, i, layer) {
        const char *id = json_string_value(json_object_get(layer, "diff_id"));
        if (!id || !rbx_digest_valid(id))
            break;
        if (i == 0) {
            snprintf(chain, sizeof(chain), "%s", id);
        } else {
            _cleanup_free_ char *text = rbx_xasprintf("%s %s", chain, id);
            rbx_sha256_buf(text, strlen(text), chain);
        }
        _cleanup_free_ char *links = rbx_xasprintf("links-%s", rbx_digest_hex(chain));
        *rbx_strmap_slot(&c->keep_layers, links, true) = 1;
    }
    const char *ak = json_string_value(json_object_get(rec, "archive"));
    if (ak)
        *rbx_strmap_slot(&c->keep_archives, ak, true) = 1;
    json_t *b;
    json_array_foreach (json_object_get(rec, "blobs"), i, b)
        if (json_is_string(b))
            *rbx_strmap_slot(&c->keep_blobs, json_string_value(b), true) = 1;
    const char *ref = json_string_value(json_object_get(rec, "reference"));
    if (ref && strncmp(ref, "docker://", 9) == 0)
        *rbx_strmap_slot(&c->keep_refs, ref + 9, true) = 1;
}

/* refs/ (pulled names -> their index or manifest): kept with an image record of the name,
 * else forgotten, so that the next open pulls again rather than find a pruned blob. */
static void prune_ref(void *ud, const char *name, json_t *rec, const struct stat *st)
{
    struct prune_ctx *c = ud;
    const char *ref = rec ? json_string_value(json_object_get(rec, "reference")) : NULL;
    const char *dg = rec ? json_string_value(json_object_get(rec, "digest")) : NULL;
    if (ref && dg && rbx_strmap_get(&c->keep_refs, ref)) {
        *rbx_strmap_slot(&c->keep_blobs, dg, true) = 1;
        return;
    }
    _cleanup_close_ int dfd = openat(c->s->dirfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0 && unlinkat(dfd, name, 0) == 0)
        c->stats->bytes += (uint64_t)st->st_blocks * 512;
}

static void prune_archive(void *ud, const char *name, json_t *rec, const struct stat *st)
{
    struct prune_ctx *c = ud;
    _cleanup_free_ char *key = rbx_xstrndup(name, strlen(name) - 5);
    if (rec && rbx_strmap_get(&c->keep_archives, key)) {
        archive_record_blobs(rec, &c->keep_blobs);
        return;
    }
    if (unlinkat(c->s->archives_fd, name, 0) == 0)
        c->stats->bytes += (uint64_t)st->st_blocks * 512;
}

/* Layers a kept run stacks (runs/<id>/layers, one name a line). */
static void keep_kept_runs(struct prune_ctx *c)
{
    rbx_store_sweep_wait(c->s);
    _cleanup_strv_ char **runs = list_dir(c->s->runs_fd);
    for (size_t i = 0; runs[i]; i++) {
        size_t n = strlen(runs[i]);
        if (n < 6 || strcmp(runs[i] + n - 5, ".kept") != 0)
            continue;
        _cleanup_free_ char *rel = rbx_xasprintf("%.*s/layers", (int)(n - 5), runs[i]);
        _cleanup_free_ char *text = NULL;
        if (rbx_read_file_at(c->s->runs_fd, rel, RECORD_MAX, &text, NULL, NULL) < 0)
            continue;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            *rbx_strmap_slot(&c->keep_layers, line, true) = 1;
    }
}

/* Remove kept runs (--all), each under its own lock so a live one is left alone. */
static int prune_kept_runs(struct prune_ctx *c, struct rbx_error **err)
{
    rbx_store_sweep_wait(c->s);
    _cleanup_strv_ char **runs = list_dir(c->s->runs_fd);
    for (size_t i = 0; runs[i]; i++) {
        size_t n = strlen(runs[i]);
        if (n < 6 || strcmp(runs[i] + n - 5, ".kept") != 0)
            continue;
        _cleanup_free_ char *id = rbx_xstrndup(runs[i], n - 5);
        uint64_t b = dir_bytes(c->s->runs_fd, id);
        int r = rbx_rm_rf_at(c->s->runs_fd, id, err);
        if (r < 0)
            return r;
        unlinkat(c->s->runs_fd, runs[i], 0);
        c->stats->runs++;
        c->stats->bytes += b;
    }
    return 0;
}

static int prune_layers(struct prune_ctx *c, struct rbx_error **err)
{
    struct rbx_store *s = c->s;
    _cleanup_strv_ char **layers = list_dir(s->layers_fd);
    for (size_t i = 0; layers[i]; i++) {
        const char *key = layers[i];
        if (rbx_strmap_get(&c->keep_layers, key))
            continue;
        /* Not being extracted, and held by no running reprobox: else left for next time. */
        _cleanup_close_ int lock = rbx_store_lock(s, key, false, NULL);
        _cleanup_free_ char *use = rbx_xasprintf("%s.use", key);
        _cleanup_close_ int ulock = lock < 0 ? -1 : rbx_store_lock(s, use, false, NULL);
        if (lock < 0 || ulock < 0) {
            c->stats->layers_in_use++;
            continue;
        }
        uint64_t b = dir_bytes(s->layers_fd, key);
        /* Out of layers/ at once (atomic), then deleted from tmp/ under the same lock: a crash
         * in between leaves a tmp entry the next sweep removes. */
        char rnd[13];
        rbx_random_hex(rnd, 12);
        _cleanup_free_ char *tname = rbx_xasprintf("%s.%s", key, rnd);
        if (renameat(s->layers_fd, key, s->tmp_fd, tname) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "layers/%s", key);
        int r = rbx_rm_rf_at(s->tmp_fd, tname, err);
        if (r < 0)
            return rbx_error_wrap(err, "prune layers/%s", key);
        unlinkat(s->locks_fd, use, 0);
        unlinkat(s->locks_fd, key, 0);
        rbx_store_journal(s, "pruned", key);
        c->stats->layers++;
        c->stats->bytes += b;
    }
    return 0;
}

static int prune_blobs(struct prune_ctx *c, struct rbx_error **err)
{
    _cleanup_close_ int sha = openat(c->s->blobs_fd, "sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sha < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "blobs");
    _cleanup_strv_ char **blobs = list_dir(sha);
    for (size_t i = 0; blobs[i]; i++) {
        _cleanup_free_ char *d = rbx_xasprintf("sha256:%s", blobs[i]);
        if (rbx_strmap_get(&c->keep_blobs, d))
            continue;
        struct stat st;
        if (fstatat(sha, blobs[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (rbx_rm_rf_at(sha, blobs[i], err) < 0)
            return rbx_error_wrap(err, "prune blobs");
        c->stats->blobs++;
        c->stats->bytes += (uint64_t)st.st_blocks * 512;
    }
    return 0;
}

int rbx_store_prune(struct rbx_store *s, const struct rbx_prune_opts *o,
                    struct rbx_prune_stats *stats, struct rbx_error **err)
{
    struct rbx_prune_opts def = {.older_than = -1};
    if (!o)
        o = &def;
    memset(stats, 0, sizeof(*stats));
    /* Image opens (which refresh records and import archives) wait while this runs. */
    _cleanup_close_ int gc = rbx_store_gc_lock(s, LOCK_EX, err);
    if (gc < 0)
        return gc;
    struct prune_ctx c = {.s = s, .o = o, .stats = stats};
    c.cutoff = (int64_t)time(NULL) - (o->older_than >= 0 ? o->older_than : RBX_PRUNE_AGE_DEFAULT);
    int r = 0;
    each_record(s->images_fd, prune_image, &c);
    for (size_t i = 0; c.forget && c.forget[i]; i++) {
        struct stat st;
        if (fstatat(s->images_fd, c.forget[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            unlinkat(s->images_fd, c.forget[i], 0) == 0) {
            stats->images++;
            stats->bytes += (uint64_t)st.st_blocks * 512;
        }
    }
    each_record(s->archives_fd, prune_archive, &c);
    _cleanup_close_ int refs = openat(s->dirfd, "refs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (refs >= 0)
        each_record(refs, prune_ref, &c);
    if (o->all)
        r = prune_kept_runs(&c, err);
    else
        keep_kept_runs(&c);
    if (r == 0)
        r = prune_layers(&c, err);
    if (r == 0)
        r = prune_blobs(&c, err);
    if (r == 0 && o->all) {
        _cleanup_close_ int jfd = openat(s->dirfd, "journal", O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (jfd >= 0)
            (void)!ftruncate(jfd, 0);
    }
    rbx_strmap_clear(&c.keep_layers);
    rbx_strmap_clear(&c.keep_archives);
    rbx_strmap_clear(&c.keep_blobs);
    rbx_strmap_clear(&c.keep_refs);
    rbx_strv_free(c.forget);
    return r;
}
