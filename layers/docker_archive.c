/* docker_archive.c — docker-archive:FILE[:REPO:TAG], the output of `docker save` and
 * `skopeo copy ... docker-archive:`: manifest.json names each image's config and layer files.
 * There is no manifest digest to check: the config's diff_ids verify the layers on unpack. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>

static void import_clearp(struct rbx_import *imp)
{
    rbx_import_clear(imp);
}

/* "docker.io/library/busybox:1" and "busybox:1" name the same image. */
static const char *short_name(const char *t)
{
    static const char *const prefixes[] = {"docker.io/library/", "docker.io/", "library/"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(prefixes); i++)
        if (strncmp(t, prefixes[i], strlen(prefixes[i])) == 0)
            return t + strlen(prefixes[i]);
    return t;
}

static char *all_tags(const json_t *root)
{
    size_t i, k;
    json_t *img, *t;
    char *s = rbx_xstrdup("");
    json_array_foreach (root, i, img) {
        json_t *tags = json_object_get(img, "RepoTags");
        if (!json_is_array(tags) || json_array_size(tags) == 0) {
            char *n = rbx_xasprintf("%s%s(untagged)", s, *s ? ", " : "");
            free(s);
            s = n;
            continue;
        }
        json_array_foreach (tags, k, t) {
            char *n = rbx_xasprintf("%s%s%s", s, *s ? ", " : "", json_string_value(t));
            free(s);
            s = n;
        }
    }
    return s;
}

static int check_image(const json_t *img, size_t i, struct rbx_error **err)
{
    if (!json_is_object(img))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "manifest.json: [%zu]: expected an object", i);
    if (!json_is_string(json_object_get(img, "Config")))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "manifest.json: [%zu].Config: expected a string", i);
    json_t *layers = json_object_get(img, "Layers"), *tags = json_object_get(img, "RepoTags"), *v;
    size_t k;
    if (!json_is_array(layers))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "manifest.json: [%zu].Layers: expected an array", i);
    if (json_array_size(layers) > RBX_LAYERS_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "manifest.json: [%zu]: more than %d layers",
                             i, RBX_LAYERS_MAX);
    json_array_foreach (layers, k, v)
        if (!json_is_string(v))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "manifest.json: [%zu].Layers[%zu]: expected a string", i, k);
    if (tags && !json_is_null(tags)) {
        if (!json_is_array(tags))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "manifest.json: [%zu].RepoTags: expected an array", i);
        json_array_foreach (tags, k, v)
            if (!json_is_string(v))
                return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                     "manifest.json: [%zu].RepoTags[%zu]: expected a string", i, k);
    }
    return 0;
}

static const char *layer_media_type(enum rbx_compression c)
{
    return c == RBX_COMPRESSION_GZIP   ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
           : c == RBX_COMPRESSION_ZSTD ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                       : "application/vnd.oci.image.layer.v1.tar";
}

int rbx_docker_archive_open(struct rbx_store *store, struct rbx_image *img, const char *file,
                            const char *tag, struct rbx_error **err)
{
    _cleanup_(import_clearp) struct rbx_import imp = {0};
    int r = rbx_store_import_archive(store, file, false, &imp, err);
    if (r < 0)
        return r;
    const struct rbx_import_entry *mf = rbx_import_find(&imp, "manifest.json");
    if (!mf)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                             "no manifest.json in the archive (not a docker save archive)");
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    if ((r = rbx_blob_read(store->blobs_fd, mf->digest, mf->size, RBX_MANIFEST_MAX, "manifest.json",
                           &buf, &len, err)) < 0)
        return r;
    _cleanup_json_ json_t *root = rbx_json_loadb(buf, len, "manifest.json", err);
    if (!root)
        return -EINVAL;
    if (!json_is_array(root))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "manifest.json: expected an array");
    size_t i;
    json_t *it, *chosen = NULL;
    json_array_foreach (root, i, it)
        if ((r = check_image(it, i, err)) < 0)
            return r;
    if (json_array_size(root) == 0)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "manifest.json: no image");

    if (!tag) {
        if (json_array_size(root) > 1) {
            _cleanup_free_ char *tags = all_tags(root);
            return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL,
                                 "the archive holds %zu images: add :REPO:TAG to choose one "
                                 "(tags: %s)",
                                 json_array_size(root), tags);
        }
        chosen = json_array_get(root, 0);
    } else {
        json_array_foreach (root, i, it) {
            json_t *tags = json_object_get(it, "RepoTags"), *t;
            size_t k;
            if (!json_is_array(tags))
                continue;
            json_array_foreach (tags, k, t)
                if (!chosen && strcmp(short_name(json_string_value(t)), short_name(tag)) == 0)
                    chosen = it;
        }
        if (!chosen) {
            _cleanup_free_ char *tags = all_tags(root);
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                 "no image tagged \"%s\" in the archive (tags: %s)", tag, tags);
        }
    }

    const char *config_name = json_string_value(json_object_get(chosen, "Config"));
    const struct rbx_import_entry *cfg = rbx_import_find(&imp, config_name);
    if (!cfg)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "config \"%s\": not in the archive",
                             config_name);
    json_t *layers = json_object_get(chosen, "Layers"), *l;
    img->layers = rbx_xcalloc(json_array_size(layers) + 1, sizeof(struct rbx_layer));
    json_array_foreach (layers, i, l) {
        const struct rbx_import_entry *le = rbx_import_find(&imp, json_string_value(l));
        if (!le)
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "layer \"%s\": not in the archive",
                                 json_string_value(l));
        img->layers[i].digest = rbx_xstrdup(le->digest);
        img->layers[i].media_type = rbx_xstrdup(layer_media_type(le->compression));
        img->layers[i].size = le->size;
        img->n_layers = i + 1;
    }
    img->archive_key = rbx_xstrdup(imp.key);
    img->blob_dirfd = fcntl(store->blobs_fd, F_DUPFD_CLOEXEC, 3);
    if (img->blob_dirfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "dup");
    return rbx_image_load_config(img, cfg->digest, cfg->size, err);
}
