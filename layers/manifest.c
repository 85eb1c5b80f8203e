/* manifest.c — the image-spec documents: media types, descriptors, indexes (OCI and Docker
 * manifest lists) and image manifests, parsed strictly with a location on every error. */
#include "layers/layers-internal.h"

#include <string.h>

static const struct {
    const char *name;
    enum rbx_media media;
} media_types[] = {
    {"application/vnd.oci.image.index.v1+json", RBX_MEDIA_OCI_INDEX},
    {"application/vnd.docker.distribution.manifest.list.v2+json", RBX_MEDIA_DOCKER_LIST},
    {"application/vnd.oci.image.manifest.v1+json", RBX_MEDIA_OCI_MANIFEST},
    {"application/vnd.docker.distribution.manifest.v2+json", RBX_MEDIA_DOCKER_MANIFEST},
    {"application/vnd.oci.image.config.v1+json", RBX_MEDIA_OCI_CONFIG},
    {"application/vnd.docker.container.image.v1+json", RBX_MEDIA_DOCKER_CONFIG},
    {"application/vnd.oci.image.layer.v1.tar", RBX_MEDIA_LAYER_TAR},
    {"application/vnd.oci.image.layer.v1.tar+gzip", RBX_MEDIA_LAYER_GZIP},
    {"application/vnd.oci.image.layer.v1.tar+zstd", RBX_MEDIA_LAYER_ZSTD},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar", RBX_MEDIA_LAYER_TAR},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", RBX_MEDIA_LAYER_GZIP},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", RBX_MEDIA_LAYER_ZSTD},
    {"application/vnd.docker.image.rootfs.diff.tar", RBX_MEDIA_LAYER_TAR},
    {"application/vnd.docker.image.rootfs.diff.tar.gzip", RBX_MEDIA_LAYER_GZIP},
    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", RBX_MEDIA_LAYER_GZIP},
};

enum rbx_media rbx_media_parse(const char *media_type)
{
    for (size_t i = 0; media_type && i < RBX_ARRAY_SIZE(media_types); i++)
        if (strcmp(media_type, media_types[i].name) == 0)
            return media_types[i].media;
    return RBX_MEDIA_UNKNOWN;
}

enum rbx_compression rbx_media_compression(enum rbx_media m)
{
    return m == RBX_MEDIA_LAYER_GZIP   ? RBX_COMPRESSION_GZIP
           : m == RBX_MEDIA_LAYER_ZSTD ? RBX_COMPRESSION_ZSTD
                                       : RBX_COMPRESSION_NONE;
}

enum rbx_compression rbx_compression_sniff(const unsigned char *head, size_t len)
{
    if (len >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        return RBX_COMPRESSION_GZIP;
    if (len >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
        return RBX_COMPRESSION_ZSTD;
    return RBX_COMPRESSION_NONE;
}

const char *rbx_compression_name(enum rbx_compression c)
{
    return c == RBX_COMPRESSION_GZIP ? "gzip" : c == RBX_COMPRESSION_ZSTD ? "zstd" : "none";
}

bool rbx_platform_matches(const struct rbx_platform *have, const struct rbx_platform *want)
{
    if (strcmp(have->os, want->os) != 0 || strcmp(have->architecture, want->architecture) != 0)
        return false;
    return !have->variant[0] || !want->variant[0] || strcmp(have->variant, want->variant) == 0;
}

void rbx_platform_format(const struct rbx_platform *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s%s%s", p->os[0] ? p->os : "?",
             p->architecture[0] ? p->architecture : "?", p->variant[0] ? "/" : "", p->variant);
}

void rbx_descriptor_clear(struct rbx_descriptor *d)
{
    free(d->media_type);
    free(d->digest);
    free(d->ref_name);
    memset(d, 0, sizeof(*d));
}

static int bad(struct rbx_error **err, const char *what, const char *field, const char *expect)
{
    return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: %s: %s", what, field, expect);
}

static int get_platform_string(const json_t *obj, const char *key, const char *what,
                               const char *field, char *dst, size_t dstlen, struct rbx_error **err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: %s.%s: expected a string", what,
                             field, key);
    if (json_string_length(v) >= dstlen)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%s: %s.%s: longer than %zu bytes", what,
                             field, key, dstlen - 1);
    snprintf(dst, dstlen, "%s", json_string_value(v));
    return 0;
}

/* `field` locates the descriptor in the document ("manifests[2]", "config"). */
static int descriptor_parse(const json_t *j, const char *what, const char *field,
                            struct rbx_descriptor *d, struct rbx_error **err)
{
    memset(d, 0, sizeof(*d));
    if (!json_is_object(j))
        return bad(err, what, field, "expected an object");
    json_t *mt = json_object_get(j, "mediaType"), *dg = json_object_get(j, "digest"),
           *sz = json_object_get(j, "size");
    if (!json_is_string(mt))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: %s.mediaType: expected a string",
                             what, field);
    if (!json_is_string(dg) || !rbx_digest_valid(json_string_value(dg))) {
        if (json_is_string(dg) && strncmp(json_string_value(dg), "sha256:", 7) != 0 &&
            strchr(json_string_value(dg), ':'))
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                 "%s: %s.digest: unsupported digest algorithm in \"%.80s\"", what,
                                 field, json_string_value(dg));
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: %s.digest: expected \"sha256:\" and 64 lowercase hex digits",
                             what, field);
    }
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: %s.size: expected a non-negative integer", what, field);
    d->media_type = rbx_xstrdup(json_string_value(mt));
    d->media = rbx_media_parse(d->media_type);
    d->digest = rbx_xstrdup(json_string_value(dg));
    d->size = json_integer_value(sz);

    json_t *ann = json_object_get(j, "annotations");
    if (ann && !json_is_null(ann)) {
        if (!json_is_object(ann))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s: %s.annotations: expected an object", what, field);
        const char *k;
        json_t *v;
        json_object_foreach (ann, k, v) {
            if (!json_is_string(v))
                return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                     "%s: %s.annotations.%s: expected a string", what, field, k);
        }
        json_t *ref = json_object_get(ann, RBX_ANNOTATION_REF_NAME);
        if (ref)
            d->ref_name = rbx_xstrdup(json_string_value(ref));
    }
    json_t *plat = json_object_get(j, "platform");
    if (plat && !json_is_null(plat)) {
        if (!json_is_object(plat))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s: %s.platform: expected an object", what, field);
        _cleanup_free_ char *pf = rbx_xasprintf("%s.platform", field);
        int r;
        if ((r = get_platform_string(plat, "os", what, pf, d->platform.os, sizeof(d->platform.os),
                                     err)) < 0 ||
            (r = get_platform_string(plat, "architecture", what, pf, d->platform.architecture,
                                     sizeof(d->platform.architecture), err)) < 0 ||
            (r = get_platform_string(plat, "variant", what, pf, d->platform.variant,
                                     sizeof(d->platform.variant), err)) < 0)
            return r;
        if (!d->platform.os[0] || !d->platform.architecture[0])
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s: %s: expected \"os\" and \"architecture\"", what, pf);
        d->has_platform = true;
    }
    return 0;
}

static int schema_version_2(const json_t *root, const char *what, struct rbx_error **err)
{
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!json_is_integer(sv))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: schemaVersion: expected an integer", what);
    if (json_integer_value(sv) != 2)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: schemaVersion %lld is not supported (only 2)", what,
                             (long long)json_integer_value(sv));
    return 0;
}

void rbx_index_clear(struct rbx_index *idx)
{
    for (size_t i = 0; i < idx->n_manifests; i++)
        rbx_descriptor_clear(&idx->manifests[i]);
    free(idx->manifests);
    memset(idx, 0, sizeof(*idx));
}

static void index_clearp(struct rbx_index *idx)
{
    rbx_index_clear(idx);
}

int rbx_index_parse(const char *buf, size_t len, const char *what, struct rbx_index *out,
                    struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_json_ json_t *root = rbx_json_loadb(buf, len, what, err);
    if (!root)
        return -EINVAL;
    if (!json_is_object(root))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: expected a JSON object", what);
    int r = schema_version_2(root, what, err);
    if (r < 0)
        return r;
    const char *mt;
    if ((r = rbx_json_get_string(root, "mediaType", what, &mt, err)) < 0)
        return r;
    if (mt && !rbx_media_is_index(rbx_media_parse(mt)))
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: mediaType \"%s\" is not an image index", what, mt);
    json_t *ms = json_object_get(root, "manifests");
    if (!json_is_array(ms))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: manifests: expected an array",
                             what);
    if (json_array_size(ms) > RBX_INDEX_ENTRIES_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%s: more than %d manifests", what,
                             RBX_INDEX_ENTRIES_MAX);
    _cleanup_(index_clearp) struct rbx_index idx = {
        .manifests = rbx_xcalloc(json_array_size(ms) + 1, sizeof(struct rbx_descriptor))};
    size_t i;
    json_t *d;
    json_array_foreach (ms, i, d) {
        char field[32];
        snprintf(field, sizeof(field), "manifests[%zu]", i);
        r = descriptor_parse(d, what, field, &idx.manifests[i], err);
        idx.n_manifests = i + 1;
        if (r < 0)
            return r;
    }
    *out = idx;
    memset(&idx, 0, sizeof(idx));
    return 0;
}

void rbx_manifest_clear(struct rbx_manifest *m)
{
    rbx_descriptor_clear(&m->config);
    for (size_t i = 0; i < m->n_layers; i++)
        rbx_descriptor_clear(&m->layers[i]);
    free(m->layers);
    json_decref(m->json);
    memset(m, 0, sizeof(*m));
}

static void manifest_clearp(struct rbx_manifest *m)
{
    rbx_manifest_clear(m);
}

int rbx_manifest_parse(const char *buf, size_t len, const char *what, enum rbx_media expect,
                       struct rbx_manifest *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_json_ json_t *root = rbx_json_loadb(buf, len, what, err);
    if (!root)
        return -EINVAL;
    if (!json_is_object(root))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: expected a JSON object", what);
    int r = schema_version_2(root, what, err);
    if (r < 0)
        return r;
    const char *mt;
    if ((r = rbx_json_get_string(root, "mediaType", what, &mt, err)) < 0)
        return r;
    enum rbx_media media = mt ? rbx_media_parse(mt) : expect;
    if (mt && !rbx_media_is_manifest(media))
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: mediaType \"%s\" is not an image manifest", what, mt);
    if (mt && expect != RBX_MEDIA_UNKNOWN && media != expect)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: mediaType \"%s\" differs from its descriptor's", what, mt);
    if (media == RBX_MEDIA_UNKNOWN)
        media = RBX_MEDIA_OCI_MANIFEST;

    _cleanup_(manifest_clearp) struct rbx_manifest m = {.media = media};
    json_t *layers = json_object_get(root, "layers");
    if ((r = descriptor_parse(json_object_get(root, "config"), what, "config", &m.config, err)) < 0)
        return r;
    if (m.config.media != RBX_MEDIA_OCI_CONFIG && m.config.media != RBX_MEDIA_DOCKER_CONFIG) {
        r = rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                          "%s: config.mediaType \"%s\": not a container image config", what,
                          m.config.media_type);
        return r;
    }
    if (!json_is_array(layers)) {
        r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: layers: expected an array", what);
        return r;
    }
    if (json_array_size(layers) > RBX_LAYERS_MAX) {
        r = rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%s: more than %d layers", what,
                          RBX_LAYERS_MAX);
        return r;
    }
    m.layers = rbx_xcalloc(json_array_size(layers) + 1, sizeof(struct rbx_descriptor));
    size_t i;
    json_t *d;
    json_array_foreach (layers, i, d) {
        char field[32];
        snprintf(field, sizeof(field), "layers[%zu]", i);
        r = descriptor_parse(d, what, field, &m.layers[i], err);
        m.n_layers = i + 1;
        if (r < 0)
            return r;
        if (!rbx_media_is_layer(m.layers[i].media)) {
            r = rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                              "%s: layers[%zu] %s: unsupported layer media type \"%s\"", what, i,
                              m.layers[i].digest, m.layers[i].media_type);
            return r;
        }
    }
    m.json = TAKE_PTR(root);
    *out = m;
    memset(&m, 0, sizeof(m));
    return 0;
}
