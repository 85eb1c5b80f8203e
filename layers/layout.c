/* layout.c — writing an image: the canonical OCI manifest of a config and its layers, an OCI image
 * layout (blobs copied in, the tag added or replaced in index.json, every file published by an
 * atomic rename under a lock on the layout), and a docker-archive tar with plain layers. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define COPY_CHUNK (256 * 1024)

/* Docker v2 types read as their OCI twins: the written manifest is OCI through and through. */
static const char *oci_layer_type(const char *media_type)
{
    switch (rbx_media_compression(rbx_media_parse(media_type))) {
    case RBX_COMPRESSION_GZIP: return MT_OCI_LAYER "+gzip";
    case RBX_COMPRESSION_ZSTD: return MT_OCI_LAYER "+zstd";
    default: return MT_OCI_LAYER;
    }
}

char *rbx_manifest_build(const char *config_digest, int64_t config_size,
                         const struct rbx_out_layer *layers, size_t n)
{
    json_t *ls = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ls, json_pack("{s:s, s:s, s:I}", "mediaType",
                                            oci_layer_type(layers[i].media_type), "digest",
                                            layers[i].digest, "size", (json_int_t)layers[i].size));
    _cleanup_json_ json_t *m =
        json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
                  MT_OCI_MANIFEST, "config", "mediaType", MT_OCI_CONFIG, "digest", config_digest,
                  "size", (json_int_t)config_size, "layers", ls);
    if (!m)
        abort();
    return rbx_json_dump_canonical(m);
}

/* ---- blobs into a layout --------------------------------------------------------------------- */

static int copy_fd(int in, int out, const char *what, struct rbx_error **err)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy %s", what);
        break;
    }
    _cleanup_free_ char *buf = rbx_xmalloc(COPY_CHUNK);
    for (;;) {
        ssize_t n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read %s", what);
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "write %s", what);
            off += w;
        }
    }
}

static bool blob_present(int blobs_fd, const char *digest, int64_t size)
{
    char rel[8 + RBX_DIGEST_HEX_LEN];
    snprintf(rel, sizeof(rel), "sha256/%s", rbx_digest_hex(digest));
    struct stat st;
    return fstatat(blobs_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           (size < 0 || st.st_size == size);
}

/* Copy a blob from its source dir; a file of the right size under the digest is taken as it. */
static int put_blob(int blobs_fd, const struct rbx_out_layer *l, struct rbx_error **err)
{
    if (blob_present(blobs_fd, l->digest, l->size))
        return 0;
    _cleanup_close_ int in = rbx_blob_open(l->blob_dirfd, l->digest, err);
    if (in < 0)
        return in;
    char rel[8 + RBX_DIGEST_HEX_LEN], tmp[32 + RBX_DIGEST_HEX_LEN], rnd[13];
    rbx_random_hex(rnd, 12);
    snprintf(rel, sizeof(rel), "sha256/%s", rbx_digest_hex(l->digest));
    snprintf(tmp, sizeof(tmp), "sha256/.%s.tmp-%s", rbx_digest_hex(l->digest), rnd);
    _cleanup_close_ int out = openat(blobs_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "blob %s", l->digest);
    int r = copy_fd(in, out, l->digest, err);
    if (r == 0 && (fdatasync(out) < 0 || renameat(blobs_fd, tmp, blobs_fd, rel) < 0))
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "blob %s", l->digest);
    if (r < 0)
        unlinkat(blobs_fd, tmp, 0);
    return r;
}

static int put_blob_data(int blobs_fd, const char *data, size_t len,
                         char digest[RBX_DIGEST_LEN + 1], struct rbx_error **err)
{
    rbx_sha256_buf(data, len, digest);
    if (blob_present(blobs_fd, digest, (int64_t)len))
        return 0;
    char rel[8 + RBX_DIGEST_HEX_LEN];
    snprintf(rel, sizeof(rel), "sha256/%s", rbx_digest_hex(digest));
    return rbx_write_file_atomic_at(blobs_fd, rel, data, len, 0644, err);
}

static int mkdir_all(const char *path, struct rbx_error **err)
{
    _cleanup_free_ char *p = rbx_xstrdup(path);
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir %s", p);
        *s = '/';
    }
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir %s", p);
    return 0;
}

static int write_oci(const struct rbx_ref *ref, const char *config, size_t config_len,
                     const struct rbx_out_layer *layers, size_t n,
                     const struct rbx_platform *platform, char out_digest[RBX_DIGEST_LEN + 1],
                     struct rbx_error **err)
{
    int r = mkdir_all(ref->path, err);
    if (r < 0)
        return r;
    _cleanup_close_ int dirfd = open(ref->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", ref->path);
    /* One writer at a time: two builds tagging into one layout must not lose a tag. */
    if (flock(dirfd, LOCK_EX) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s: lock", ref->path);

    _cleanup_free_ char *marker = NULL;
    size_t mlen = 0;
    r = rbx_read_file_at(dirfd, "oci-layout", RBX_SMALL_FILE_MAX, &marker, &mlen, NULL);
    if (r == 0) {
        if ((r = rbx_oci_layout_check(marker, mlen, err)) < 0)
            return rbx_error_wrap(err, "%s", ref->path);
    } else {
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        if ((r = rbx_write_file_atomic_at(dirfd, "oci-layout", layout, sizeof(layout) - 1, 0644,
                                          err)) < 0)
            return r;
    }
    if ((mkdirat(dirfd, "blobs", 0755) < 0 && errno != EEXIST))
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s/blobs", ref->path);
    _cleanup_close_ int blobs = openat(dirfd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (blobs < 0 || (mkdirat(blobs, "sha256", 0755) < 0 && errno != EEXIST))
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s/blobs/sha256", ref->path);

    for (size_t i = 0; i < n; i++)
        if ((r = put_blob(blobs, &layers[i], err)) < 0)
            return rbx_error_wrap(err, "%s", ref->path);
    char config_digest[RBX_DIGEST_LEN + 1], manifest_digest[RBX_DIGEST_LEN + 1];
    if ((r = put_blob_data(blobs, config, config_len, config_digest, err)) < 0)
        return r;
    _cleanup_free_ char *manifest =
        rbx_manifest_build(config_digest, (int64_t)config_len, layers, n);
    if ((r = put_blob_data(blobs, manifest, strlen(manifest), manifest_digest, err)) < 0)
        return r;

    /* index.json: the other tags stay; this one now names the new manifest. */
    _cleanup_free_ char *old = NULL;
    size_t olen = 0;
    _cleanup_json_ json_t *index = NULL;
    r = rbx_read_file_at(dirfd, "index.json", RBX_MANIFEST_MAX, &old, &olen, NULL);
    if (r == 0) {
        _cleanup_free_ char *what = rbx_xasprintf("%s/index.json", ref->path);
        index = rbx_json_loadb(old, olen, what, err);
        if (!index)
            return -EINVAL;
        if (!json_is_object(index) || !json_is_array(json_object_get(index, "manifests")))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s: not an image index with manifests", what);
    } else {
        index = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX,
                          "manifests");
    }
    json_t *ms = json_object_get(index, "manifests");
    for (size_t i = json_array_size(ms); i-- > 0;) {
        json_t *ann = json_object_get(json_array_get(ms, i), "annotations");
        json_t *name = ann ? json_object_get(ann, RBX_ANNOTATION_REF_NAME) : NULL;
        if (json_is_string(name) && strcmp(json_string_value(name), ref->tag) == 0)
            json_array_remove(ms, i);
    }
    json_t *desc = json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType", MT_OCI_MANIFEST, "digest",
                             manifest_digest, "size", (json_int_t)strlen(manifest), "annotations",
                             RBX_ANNOTATION_REF_NAME, ref->tag);
    if (platform) {
        json_t *p =
            json_pack("{s:s, s:s}", "os", platform->os, "architecture", platform->architecture);
        if (platform->variant[0])
            json_object_set_new(p, "variant", json_string(platform->variant));
        json_object_set_new(desc, "platform", p);
    }
    json_array_append_new(ms, desc);
    _cleanup_free_ char *text = rbx_json_dump_canonical(index);
    if ((r = rbx_write_file_atomic_at(dirfd, "index.json", text, strlen(text), 0644, err)) < 0)
        return r;
    memcpy(out_digest, manifest_digest, RBX_DIGEST_LEN + 1);
    return 0;
}

/* ---- docker-archive ------------------------------------------------------------------------ */

static void tar_header(unsigned char h[512], const char *name, char type, mode_t perm,
                       uint64_t size)
{
    memset(h, 0, 512);
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", (unsigned)perm);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static int write_all(int fd, const void *data, size_t len, struct rbx_error **err)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "write archive");
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int pad(int fd, uint64_t size, struct rbx_error **err)
{
    static const char zeros[512];
    size_t p = (512 - size % 512) % 512;
    return p ? write_all(fd, zeros, p, err) : 0;
}

static int tar_add_data(int fd, const char *name, const void *data, size_t len,
                        struct rbx_error **err)
{
    unsigned char h[512];
    tar_header(h, name, '0', 0644, len);
    int r = write_all(fd, h, 512, err);
    if (r == 0)
        r = write_all(fd, data, len, err);
    return r < 0 ? r : pad(fd, len, err);
}

/* The layer as a plain tar: decompressed and verified against its digest and diff_id on the way;
 * the header is written last, once the size is known. */
static int tar_add_layer(int fd, const char *name, const struct rbx_out_layer *l,
                         struct rbx_error **err)
{
    off_t hdr = lseek(fd, 0, SEEK_CUR);
    unsigned char h[512] = {0};
    int r = write_all(fd, h, 512, err);
    if (r < 0)
        return r;
    int blobfd = rbx_blob_open(l->blob_dirfd, l->digest, err);
    if (blobfd < 0)
        return blobfd;
    _cleanup_(rbx_stream_freep) struct rbx_stream *s =
        rbx_stream_new(blobfd, rbx_media_compression(rbx_media_parse(l->media_type)), l->digest,
                       l->size, RBX_LAYER_BYTES_DEFAULT, "layer");
    const void *buf;
    ssize_t n;
    while ((n = rbx_stream_next(s, &buf, err)) > 0)
        if ((r = write_all(fd, buf, (size_t)n, err)) < 0)
            return r;
    if (n < 0)
        return rbx_error_wrap(err, "layer %s", l->digest);
    char got[RBX_DIGEST_LEN + 1];
    rbx_stream_diff_id(s, got);
    if (strcmp(got, l->diff_id) != 0)
        return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG, "layer %s: diff_id %s, expected %s",
                             l->digest, got, l->diff_id);
    uint64_t size = rbx_stream_out_bytes(s);
    tar_header(h, name, '0', 0644, size);
    if (pwrite(fd, h, 512, hdr) != 512)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "write archive");
    return pad(fd, size, err);
}

static int write_docker_archive(const struct rbx_ref *ref, const char *config, size_t config_len,
                                const struct rbx_out_layer *layers, size_t n,
                                char out_digest[RBX_DIGEST_LEN + 1], struct rbx_error **err)
{
    char config_digest[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(config, config_len, config_digest);
    char rnd[13];
    rbx_random_hex(rnd, 12);
    _cleanup_free_ char *tmp = rbx_xasprintf("%s.tmp-%s", ref->path, rnd);
    _cleanup_close_ int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "create %s", tmp);
    _cleanup_free_ char *cname = rbx_xasprintf("%s.json", rbx_digest_hex(config_digest));
    int r = tar_add_data(fd, cname, config, config_len, err);
    json_t *ls = json_array();
    for (size_t i = 0; i < n && r == 0; i++) {
        _cleanup_free_ char *dir = rbx_xasprintf("%s/", rbx_digest_hex(layers[i].diff_id));
        _cleanup_free_ char *file = rbx_xasprintf("%slayer.tar", dir);
        json_array_append_new(ls, json_string(file));
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(layers[j].diff_id, layers[i].diff_id) == 0;
        if (seen)
            continue;
        unsigned char h[512];
        tar_header(h, dir, '5', 0755, 0);
        if ((r = write_all(fd, h, 512, err)) == 0)
            r = tar_add_layer(fd, file, &layers[i], err);
    }
    _cleanup_json_ json_t *mf =
        json_pack("[{s:s, s:o, s:o}]", "Config", cname, "RepoTags",
                  ref->tag ? json_pack("[s]", ref->tag) : json_array(), "Layers", ls);
    if (!mf)
        abort();
    _cleanup_free_ char *mtext = rbx_json_dump_canonical(mf);
    static const char zeros[1024];
    if (r == 0)
        r = tar_add_data(fd, "manifest.json", mtext, strlen(mtext), err);
    if (r == 0)
        r = write_all(fd, zeros, sizeof(zeros), err);
    if (r == 0 && (fdatasync(fd) < 0 || rename(tmp, ref->path) < 0))
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "publish %s", ref->path);
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    /* The archive has no manifest: the image is named by the one its OCI form has. */
    _cleanup_free_ char *manifest =
        rbx_manifest_build(config_digest, (int64_t)config_len, layers, n);
    rbx_sha256_buf(manifest, strlen(manifest), out_digest);
    return 0;
}

int rbx_image_write(const char *reference, const char *config, size_t config_len,
                    const struct rbx_out_layer *layers, size_t n,
                    const struct rbx_platform *platform, char manifest_digest[RBX_DIGEST_LEN + 1],
                    struct rbx_error **err)
{
    struct rbx_ref ref;
    int r = rbx_ref_parse(reference, &ref, err);
    if (r < 0)
        return r;
    switch (ref.transport) {
    case RBX_TRANSPORT_OCI:
        r = write_oci(&ref, config, config_len, layers, n, platform, manifest_digest, err);
        break;
    case RBX_TRANSPORT_DOCKER_ARCHIVE:
        r = write_docker_archive(&ref, config, config_len, layers, n, manifest_digest, err);
        break;
    default:
        r = rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                          "%s: images are written as oci:DIR[:TAG] or "
                          "docker-archive:FILE[:NAME:TAG]",
                          reference);
        break;
    }
    rbx_ref_clear(&ref);
    if (r < 0 && err && *err && !strstr((*err)->message, reference))
        rbx_error_wrap(err, "%s", reference);
    return r;
}
