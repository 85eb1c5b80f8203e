/* image.c — opening an image reference: dispatch to the transport, the image config, and the
 * image object the rest of reprobox reads (layers, config, digests). */
#include "layers/layers-internal.h"

#include <string.h>

void rbx_config_clear(struct rbx_image_config *cfg)
{
    rbx_strv_free(cfg->env);
    rbx_strv_free(cfg->entrypoint);
    rbx_strv_free(cfg->cmd);
    free(cfg->working_dir);
    free(cfg->user);
    free(cfg->stop_signal);
    rbx_strv_free(cfg->exposed_ports);
    free(cfg->os);
    free(cfg->architecture);
    free(cfg->variant);
    memset(cfg, 0, sizeof(*cfg));
}

static void config_clearp(struct rbx_image_config *cfg)
{
    rbx_config_clear(cfg);
}

static int dup_string(const json_t *obj, const char *key, const char *what, char **dst,
                      struct rbx_error **err)
{
    const char *v;
    int r = rbx_json_get_string(obj, key, what, &v, err);
    if (r < 0)
        return r;
    *dst = v && *v ? rbx_xstrdup(v) : NULL;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rbx_config_parse(const char *buf, size_t len, const char *what, struct rbx_image_config *out,
                     char ***diff_ids, json_t **json, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_json_ json_t *root = rbx_json_loadb(buf, len, what, err);
    if (!root)
        return -EINVAL;
    if (!json_is_object(root))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: expected a JSON object", what);
    _cleanup_(config_clearp) struct rbx_image_config cfg = {0};
    int r;
    if ((r = dup_string(root, "os", what, &cfg.os, err)) < 0 ||
        (r = dup_string(root, "architecture", what, &cfg.architecture, err)) < 0 ||
        (r = dup_string(root, "variant", what, &cfg.variant, err)) < 0)
        return r;

    json_t *c = json_object_get(root, "config");
    if (c && !json_is_null(c)) {
        if (!json_is_object(c))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: config: expected an object",
                                 what);
        _cleanup_free_ char *cw = rbx_xasprintf("%s: config", what);
        if ((r = rbx_json_get_strv(c, "Env", cw, &cfg.env, err)) < 0 ||
            (r = rbx_json_get_strv(c, "Entrypoint", cw, &cfg.entrypoint, err)) < 0 ||
            (r = rbx_json_get_strv(c, "Cmd", cw, &cfg.cmd, err)) < 0 ||
            (r = dup_string(c, "WorkingDir", cw, &cfg.working_dir, err)) < 0 ||
            (r = dup_string(c, "User", cw, &cfg.user, err)) < 0 ||
            (r = dup_string(c, "StopSignal", cw, &cfg.stop_signal, err)) < 0)
            return r;
        json_t *ports = json_object_get(c, "ExposedPorts");
        if (ports && !json_is_null(ports)) {
            if (!json_is_object(ports))
                return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                     "%s.ExposedPorts: expected an object", cw);
            const char *k;
            json_t *v;
            cfg.exposed_ports = rbx_xcalloc(1, sizeof(char *));
            json_object_foreach (ports, k, v)
                rbx_strv_push(&cfg.exposed_ports, k);
            qsort(cfg.exposed_ports, rbx_strv_len(cfg.exposed_ports), sizeof(char *), cmp_str);
        }
    }

    json_t *rootfs = json_object_get(root, "rootfs");
    if (!json_is_object(rootfs))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: rootfs: expected an object",
                             what);
    json_t *type = json_object_get(rootfs, "type");
    if (!json_is_string(type) || strcmp(json_string_value(type), "layers") != 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: rootfs.type: expected \"layers\"",
                             what);
    json_t *ids = json_object_get(rootfs, "diff_ids");
    if (!json_is_array(ids))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: rootfs.diff_ids: expected an array", what);
    if (json_array_size(ids) > RBX_LAYERS_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%s: more than %d layers", what,
                             RBX_LAYERS_MAX);
    _cleanup_strv_ char **dv = rbx_xcalloc(json_array_size(ids) + 1, sizeof(char *));
    size_t i;
    json_t *id;
    json_array_foreach (ids, i, id) {
        if (!json_is_string(id) || !rbx_digest_valid(json_string_value(id)))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s: rootfs.diff_ids[%zu]: expected a sha256 digest", what, i);
        dv[i] = rbx_xstrdup(json_string_value(id));
    }
    if (diff_ids)
        *diff_ids = TAKE_PTR(dv);
    if (json)
        *json = TAKE_PTR(root);
    *out = cfg;
    memset(&cfg, 0, sizeof(cfg));
    return 0;
}

int rbx_image_load_config(struct rbx_image *img, const char *config_digest, int64_t size,
                          struct rbx_error **err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    _cleanup_free_ char *what = rbx_xasprintf("blob %s", config_digest);
    int r =
        rbx_blob_read(img->blob_dirfd, config_digest, size, RBX_CONFIG_MAX, what, &buf, &len, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *cwhat = rbx_xasprintf("config %s", config_digest);
    _cleanup_strv_ char **diff_ids = NULL;
    r = rbx_config_parse(buf, len, cwhat, &img->config, &diff_ids, &img->config_json, err);
    if (r < 0)
        return r;
    if (rbx_strv_len(diff_ids) != img->n_layers)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: %zu diff_ids for %zu layers",
                             cwhat, rbx_strv_len(diff_ids), img->n_layers);
    for (size_t i = 0; i < img->n_layers; i++)
        img->layers[i].diff_id = TAKE_PTR(diff_ids[i]);
    img->config_digest = rbx_xstrdup(config_digest);
    return 0;
}

struct rbx_image *rbx_image_free(struct rbx_image *img)
{
    if (!img)
        return NULL;
    free(img->reference);
    free(img->manifest_digest);
    free(img->config_digest);
    for (size_t i = 0; i < img->n_layers; i++) {
        free(img->layers[i].digest);
        free(img->layers[i].media_type);
        free(img->layers[i].diff_id);
    }
    free(img->layers);
    rbx_config_clear(&img->config);
    json_decref(img->config_json);
    json_decref(img->manifest_json);
    if (img->blob_dirfd >= 0)
        close(img->blob_dirfd);
    rbx_strv_free(img->blob_paths);
    free(img->archive_key);
    free(img);
    return NULL;
}

static void ref_clearp(struct rbx_ref *r)
{
    rbx_ref_clear(r);
}

int rbx_image_open(struct rbx_store *store, const char *reference, const struct rbx_open_opts *opts,
                   struct rbx_image **out, struct rbx_error **err)
{
    _cleanup_(ref_clearp) struct rbx_ref ref = {0};
    int r = rbx_ref_parse(reference, &ref, err);
    if (r < 0)
        return r;
    struct rbx_platform host;
    const struct rbx_platform *platform = opts && opts->platform ? opts->platform : NULL;
    if (!platform) {
        rbx_platform_host(&host);
        platform = &host;
    }
    /* The tag was written out when the part after the transport has a second ':'. */
    const char *rest = strchr(reference, ':') + 1;
    bool tag_explicit = strchr(rest, ':') != NULL;

    _cleanup_(rbx_image_freep) struct rbx_image *img = rbx_xcalloc(1, sizeof(*img));
    img->reference = rbx_xstrdup(reference);
    img->blob_dirfd = -1;
    if (!store && ref.transport != RBX_TRANSPORT_OCI)
        return rbx_error_set(err, RBX_ERR_INTERNAL, EINVAL, "%s: needs a store", reference);
    /* A prune waits until the image is recorded (and its archive imported). */
    _cleanup_close_ int gc = store ? rbx_store_gc_lock(store, LOCK_SH, err) : -1;
    if (store && gc < 0)
        return rbx_error_wrap(err, "%s", reference);

    switch (ref.transport) {
    case RBX_TRANSPORT_OCI:
        r = rbx_oci_open_layout(img, ref.path, ref.tag, tag_explicit, platform, err);
        break;
    case RBX_TRANSPORT_OCI_ARCHIVE:
        r = rbx_oci_archive_open(store, img, ref.path, ref.tag, tag_explicit, platform, err);
        break;
    case RBX_TRANSPORT_DOCKER_ARCHIVE:
        r = rbx_docker_archive_open(store, img, ref.path, ref.tag, err);
        break;
    case RBX_TRANSPORT_DOCKER: r = rbx_docker_open(store, img, &ref, opts, platform, err); break;
    default: r = rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP, "transport not supported"); break;
    }
    if (r < 0)
        return rbx_error_wrap(err, "%s", reference);
    _cleanup_free_ char *canonical = rbx_ref_canonical(&ref);
    /* Best effort: an image that was not recorded is only pruned sooner. */
    if (store && canonical)
        (void)rbx_image_record(store, img, canonical, img->archive_key, NULL);
    *out = TAKE_PTR(img);
    return 0;
}
