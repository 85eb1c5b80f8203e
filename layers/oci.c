/* oci.c — OCI image layouts: the oci-layout marker, index.json, tags, nested indexes and
 * platform selection down to one verified manifest and config. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>

static int read_layout_file(int dirfd, const char *name, size_t max, char **buf, size_t *len,
                            struct rbx_error **err)
{
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    return rbx_read_fd(fd, max, name, buf, len, err);
}

int rbx_oci_layout_check(const char *buf, size_t len, struct rbx_error **err)
{
    _cleanup_json_ json_t *lj = rbx_json_loadb(buf, len, "oci-layout", err);
    if (!lj)
        return -EINVAL;
    const char *version = NULL;
    if (!json_is_object(lj) ||
        rbx_json_get_string(lj, "imageLayoutVersion", "oci-layout", &version, err) < 0 || !version)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "oci-layout: imageLayoutVersion: expected a string");
    if (strncmp(version, "1.", 2) != 0)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "oci-layout: imageLayoutVersion \"%s\" is not supported", version);
    return 0;
}

int rbx_oci_open_layout(struct rbx_image *img, const char *dir, const char *tag, bool tag_explicit,
                        const struct rbx_platform *platform, struct rbx_error **err)
{
    _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0 && errno != ENOENT && errno != ENOTDIR)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open %s", dir);
    _cleanup_free_ char *marker = NULL;
    int r = dirfd < 0
                ? -ENOENT
                : read_layout_file(dirfd, "oci-layout", RBX_SMALL_FILE_MAX, &marker, NULL, err);
    if (r == -ENOENT)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                             "no such image layout (no oci-layout file)");
    if (r < 0)
        return err && *err ? r : rbx_error_set_errno(err, RBX_ERR_IO, -r, "oci-layout");
    if ((r = rbx_oci_layout_check(marker, strlen(marker), err)) < 0)
        return r;

    _cleanup_free_ char *index = NULL;
    size_t len = 0;
    r = read_layout_file(dirfd, "index.json", RBX_MANIFEST_MAX, &index, &len, err);
    if (r == -ENOENT)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "index.json: not found");
    if (r < 0)
        return err && *err ? r : rbx_error_set_errno(err, RBX_ERR_IO, -r, "index.json");
    img->blob_dirfd = openat(dirfd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (img->blob_dirfd < 0)
        return rbx_error_set_errno(err, errno == ENOENT ? RBX_ERR_NOT_FOUND : RBX_ERR_IO, errno,
                                   "blobs");
    return rbx_oci_resolve(img, index, len, tag, tag_explicit, platform, err);
}

/* Platforms seen while selecting, for the error when none fits. */
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

/* Choose among candidate descriptors the manifest for `platform`; descend into nested indexes.
 * Returns 1 with *out copied, 0 when nothing fits (platforms noted), or an error. */
static int select_manifest(int blob_dirfd, struct rbx_descriptor *const *cands, size_t n,
                           const struct rbx_platform *platform, unsigned depth, char ***seen,
                           struct rbx_descriptor *out, struct rbx_error **err)
{
    if (depth > RBX_INDEX_DEPTH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ELOOP, "image indexes nested deeper than %d",
                             RBX_INDEX_DEPTH_MAX);
    const struct rbx_descriptor *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct rbx_descriptor *c = cands[i];
        if (!rbx_media_is_manifest(c->media) || !c->has_platform)
            continue;
        if (!rbx_platform_matches(&c->platform, platform)) {
            note_platform(seen, c);
            continue;
        }
        if (strcmp(c->platform.variant, platform->variant) == 0) {
            best = c;
            break;
        }
        if (!best)
            best = c;
    }
    /* A lone manifest that does not say its platform is the image (single-platform layouts). */
    if (!best && n == 1 && rbx_media_is_manifest(cands[0]->media) && !cands[0]->has_platform)
        best = cands[0];
    if (best) {
        out->media_type = rbx_xstrdup(best->media_type);
        out->media = best->media;
        out->digest = rbx_xstrdup(best->digest);
        out->size = best->size;
        return 1;
    }

    for (size_t i = 0; i < n; i++) {
        const struct rbx_descriptor *c = cands[i];
        if (!rbx_media_is_index(c->media))
            continue;
        if (c->has_platform && !rbx_platform_matches(&c->platform, platform)) {
            note_platform(seen, c);
            continue;
        }
        _cleanup_free_ char *buf = NULL, *bwhat = rbx_xasprintf("blob %s", c->digest),
                            *iwhat = rbx_xasprintf("index %s", c->digest);
        size_t len = 0;
        int r =
            rbx_blob_read(blob_dirfd, c->digest, c->size, RBX_MANIFEST_MAX, bwhat, &buf, &len, err);
        if (r < 0)
            return r;
        struct rbx_index sub;
        if ((r = rbx_index_parse(buf, len, iwhat, &sub, err)) < 0)
            return r;
        _cleanup_free_ struct rbx_descriptor **subc =
            rbx_xcalloc(sub.n_manifests + 1, sizeof(*subc));
        for (size_t k = 0; k < sub.n_manifests; k++)
            subc[k] = &sub.manifests[k];
        r = select_manifest(blob_dirfd, subc, sub.n_manifests, platform, depth + 1, seen, out, err);
        rbx_index_clear(&sub);
        if (r != 0)
            return r;
    }
    for (size_t i = 0; i < n; i++)
        if (!rbx_media_is_manifest(cands[i]->media) && !rbx_media_is_index(cands[i]->media)) {
            if (n == 1)
                return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                     "%s: media type \"%s\" is not an image manifest or index",
                                     cands[i]->digest, cands[i]->media_type);
        } else if (rbx_media_is_manifest(cands[i]->media) && !cands[i]->has_platform) {
            note_platform(seen, cands[i]);
        }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rbx_oci_resolve(struct rbx_image *img, const char *index, size_t index_len, const char *tag,
                    bool tag_explicit, const struct rbx_platform *platform, struct rbx_error **err)
{
    struct rbx_index idx;
    int r = rbx_index_parse(index, index_len, "index.json", &idx, err);
    if (r < 0)
        return r;
    _cleanup_free_ struct rbx_descriptor **cands = rbx_xcalloc(idx.n_manifests + 1, sizeof(*cands));
    _cleanup_strv_ char **tags = NULL;
    size_t n = 0;
    bool any_named = false;
    for (size_t i = 0; i < idx.n_manifests; i++) {
        struct rbx_descriptor *d = &idx.manifests[i];
        if (!d->ref_name)
            continue;
        any_named = true;
        if (strcmp(d->ref_name, tag) == 0)
            cands[n++] = d;
        else {
            bool dup = false;
            for (size_t k = 0; tags && tags[k]; k++)
                dup = dup || strcmp(tags[k], d->ref_name) == 0;
            if (!dup)
                rbx_strv_push(&tags, d->ref_name);
        }
    }
    /* "oci:DIR" on a layout that names nothing: take what is there, as skopeo does. */
    if (n == 0 && !tag_explicit && !any_named)
        for (size_t i = 0; i < idx.n_manifests; i++)
            cands[n++] = &idx.manifests[i];
    if (n == 0) {
        if (tags)
            qsort(tags, rbx_strv_len(tags), sizeof(char *), cmp_str);
        _cleanup_free_ char *list = join(tags, ", ");
        rbx_index_clear(&idx);
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                             "no tag \"%s\" in index.json (tags: %s)", tag, tags ? list : "none");
    }

    _cleanup_strv_ char **seen = NULL;
    struct rbx_descriptor chosen = {0};
    r = select_manifest(img->blob_dirfd, cands, n, platform, 0, &seen, &chosen, err);
    rbx_index_clear(&idx);
    if (r == 0) {
        char want[128];
        rbx_platform_format(platform, want, sizeof(want));
        _cleanup_free_ char *list = join(seen, ", ");
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                             "no manifest for platform %s (available: %s)", want,
                             seen ? list : "none");
    }
    if (r < 0)
        return r;

    _cleanup_free_ char *buf = NULL, *bwhat = rbx_xasprintf("blob %s", chosen.digest),
                        *mwhat = rbx_xasprintf("manifest %s", chosen.digest);
    size_t len = 0;
    struct rbx_manifest m;
    r = rbx_blob_read(img->blob_dirfd, chosen.digest, chosen.size, RBX_MANIFEST_MAX, bwhat, &buf,
                      &len, err);
    if (r >= 0)
        r = rbx_manifest_parse(buf, len, mwhat, chosen.media, &m, err);
    if (r < 0) {
        rbx_descriptor_clear(&chosen);
        return r;
    }
    img->manifest_digest = TAKE_PTR(chosen.digest);
    rbx_descriptor_clear(&chosen);
    img->layers = rbx_xcalloc(m.n_layers + 1, sizeof(struct rbx_layer));
    for (size_t i = 0; i < m.n_layers; i++) {
        img->layers[i].digest = TAKE_PTR(m.layers[i].digest);
        img->layers[i].media_type = TAKE_PTR(m.layers[i].media_type);
        img->layers[i].size = m.layers[i].size;
    }
    img->n_layers = m.n_layers;
    img->manifest_json = TAKE_PTR(m.json);
    _cleanup_free_ char *config_digest = TAKE_PTR(m.config.digest);
    int64_t config_size = m.config.size;
    rbx_manifest_clear(&m);
    return rbx_image_load_config(img, config_digest, config_size, err);
}
