/* layers_testlib.c — test inputs made at test time: tars (libarchive's writer), gzip (zlib),
 * zstd (libzstd), OCI layouts. Nothing here is a committed blob. */
#include "layers_testlib.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

struct tl_tar {
    struct archive *a;
    char *buf;
    size_t len, cap;
};

static la_ssize_t tar_write_cb(struct archive *a, void *ud, const void *data, size_t n)
{
    struct tl_tar *t = ud;
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2;
        t->buf = rbx_xrealloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    return (la_ssize_t)n;
}

struct tl_tar *tl_tar_new(void)
{
    return tl_tar_new_format(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
}

struct tl_tar *tl_tar_new_format(int format)
{
    struct tl_tar *t = rbx_xcalloc(1, sizeof(*t));
    t->a = archive_write_new();
    if (archive_write_set_format(t->a, format) != ARCHIVE_OK)
        abort();
    archive_write_add_filter_none(t->a);
    if (archive_write_open(t->a, t, NULL, tar_write_cb, NULL) != ARCHIVE_OK)
        abort();
    return t;
}

static struct archive_entry *entry(const char *path, unsigned type, unsigned mode)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, path);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_mtime(e, 1000000000, 0);
    return e;
}

static void put(struct tl_tar *t, struct archive_entry *e, const char *content)
{
    if (archive_write_header(t->a, e) != ARCHIVE_OK)
        abort();
    if (content && *content)
        archive_write_data(t->a, content, strlen(content));
    archive_entry_free(e);
}

void tl_tar_file_ex(struct tl_tar *t, const char *path, const char *content, unsigned mode,
                    unsigned uid, unsigned gid, long mtime, const char *const *xattrs)
{
    struct archive_entry *e = entry(path, AE_IFREG, mode);
    archive_entry_set_size(e, (la_int64_t)strlen(content));
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_mtime(e, mtime, 0);
    for (size_t i = 0; xattrs && xattrs[i]; i++) {
        const char *eq = strchr(xattrs[i], '=');
        _cleanup_free_ char *name = rbx_xstrndup(xattrs[i], (size_t)(eq - xattrs[i]));
        archive_entry_xattr_add_entry(e, name, eq + 1, strlen(eq + 1));
    }
    put(t, e, content);
}

void tl_tar_file_bin(struct tl_tar *t, const char *path, const char *data, size_t len)
{
    struct archive_entry *e = entry(path, AE_IFREG, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_header(t->a, e) != ARCHIVE_OK)
        abort();
    if (len)
        archive_write_data(t->a, data, len);
    archive_entry_free(e);
}

static struct tl_tar *tree_tar;
static size_t tree_prefix;
static int tree_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (flag != FTW_F || strlen(p) <= tree_prefix)
        return 0;
    char *buf = NULL;
    size_t len = 0;
    if (rbx_read_file_at(AT_FDCWD, p, 1 << 26, &buf, &len, NULL) < 0)
        abort();
    tl_tar_file_bin(tree_tar, p + tree_prefix + 1, buf, len);
    free(buf);
    return 0;
}

void tl_tar_add_tree(struct tl_tar *t, const char *dir)
{
    tree_tar = t;
    tree_prefix = strlen(dir);
    nftw(dir, tree_cb, 16, FTW_PHYS);
}

void tl_tar_file(struct tl_tar *t, const char *path, const char *content, unsigned mode)
{
    tl_tar_file_ex(t, path, content, mode, 0, 0, 1000000000, NULL);
}

void tl_tar_dir_ex(struct tl_tar *t, const char *path, unsigned mode, long mtime)
{
    struct archive_entry *e = entry(path, AE_IFDIR, mode);
    archive_entry_set_mtime(e, mtime, 0);
    put(t, e, NULL);
}

void tl_tar_dir(struct tl_tar *t, const char *path, unsigned mode)
{
    tl_tar_dir_ex(t, path, mode, 1000000000);
}

void tl_tar_symlink(struct tl_tar *t, const char *path, const char *target)
{
    struct archive_entry *e = entry(path, AE_IFLNK, 0777);
    archive_entry_set_symlink(e, target);
    put(t, e, NULL);
}

void tl_tar_hardlink(struct tl_tar *t, const char *path, const char *target)
{
    struct archive_entry *e = entry(path, AE_IFREG, 0644);
    archive_entry_set_hardlink(e, target);
    archive_entry_set_size(e, 0);
    put(t, e, NULL);
}

void tl_tar_sparse(struct tl_tar *t, const char *path, size_t size, const size_t *data,
                   size_t n_data)
{
    struct archive_entry *e = entry(path, AE_IFREG, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    char *buf = rbx_xcalloc(1, size + 1);
    for (size_t i = 0; i < n_data; i++) {
        archive_entry_sparse_add_entry(e, (la_int64_t)data[2 * i], (la_int64_t)data[2 * i + 1]);
        memset(buf + data[2 * i], 'a' + (int)i, data[2 * i + 1]);
    }
    if (archive_write_header(t->a, e) != ARCHIVE_OK)
        abort();
    archive_write_data(t->a, buf, size); /* the writer leaves the holes out */
    free(buf);
    archive_entry_free(e);
}

void tl_tar_entry(struct tl_tar *t, struct archive_entry *e, const void *data, size_t len)
{
    if (archive_write_header(t->a, e) != ARCHIVE_OK)
        abort();
    if (len)
        archive_write_data(t->a, data, len);
    archive_entry_free(e);
}

void tl_tar_fifo(struct tl_tar *t, const char *path)
{
    put(t, entry(path, AE_IFIFO, 0644), NULL);
}

void tl_tar_chardev(struct tl_tar *t, const char *path, unsigned major, unsigned minor)
{
    struct archive_entry *e = entry(path, AE_IFCHR, 0666);
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
    put(t, e, NULL);
}

char *tl_tar_finish(struct tl_tar *t, size_t *len)
{
    archive_write_close(t->a);
    archive_write_free(t->a);
    char *b = t->buf;
    *len = t->len;
    free(t);
    return b;
}

char *tl_gzip(const char *buf, size_t len, size_t *outlen)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, len) + 64;
    char *out = rbx_xmalloc(cap);
    z.next_in = (Bytef *)buf;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

char *tl_zstd(const char *buf, size_t len, size_t *outlen)
{
    size_t cap = ZSTD_compressBound(len);
    char *out = rbx_xmalloc(cap);
    size_t n = ZSTD_compress(out, cap, buf, len, 3);
    if (ZSTD_isError(n))
        abort();
    *outlen = n;
    return out;
}

char *tl_mkdtemp(void)
{
    char *p = rbx_xstrdup("/tmp/rbx-layers-test.XXXXXX");
    if (!mkdtemp(p))
        abort();
    return p;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (flag == FTW_DP || flag == FTW_D)
        chmod(p, 0700);
    return remove(p) < 0 ? 0 : 0;
}

void tl_rm_rf(const char *path)
{
    (void)rbx_rm_rf_at(AT_FDCWD, path, NULL);
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void tl_write(const char *dir, const char *name, const char *data, size_t len)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    _cleanup_free_ char *d = rbx_xstrdup(p);
    for (char *s = strchr(d + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(d, 0755);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        abort();
}

void tl_blob(const char *layout, const char *data, size_t len, char out[RBX_DIGEST_LEN + 1])
{
    rbx_sha256_buf(data, len, out);
    _cleanup_free_ char *name = rbx_xasprintf("blobs/sha256/%s", rbx_digest_hex(out));
    tl_write(layout, name, data, len);
}

void tl_layout_raw(const char *layout, const char *index_json)
{
    static const char marker[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    tl_write(layout, "oci-layout", marker, strlen(marker));
    tl_write(layout, "index.json", index_json, strlen(index_json));
}

char *tl_config_json(char *const *diff_ids)
{
    json_t *ids = json_array();
    for (size_t i = 0; diff_ids && diff_ids[i]; i++)
        json_array_append_new(ids, json_string(diff_ids[i]));
    json_t *j =
        json_pack("{s:s, s:s, s:{s:[s], s:[s], s:s}, s:{s:s, s:o}}", "architecture", "amd64", "os",
                  "linux", "config", "Env", "PATH=/usr/bin:/bin", "Cmd", "/bin/sh", "WorkingDir",
                  "/work", "rootfs", "type", "layers", "diff_ids", ids);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static const char *default_media(enum rbx_compression c)
{
    return c == RBX_COMPRESSION_GZIP   ? "application/vnd.oci.image.layer.v1.tar+gzip"
           : c == RBX_COMPRESSION_ZSTD ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                       : "application/vnd.oci.image.layer.v1.tar";
}

static json_t *descriptor(const char *mt, const char *digest, size_t size)
{
    return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size",
                     (json_int_t)size);
}

const char *tl_image(const char *layout, const char *tag, const struct tl_layer *layers, size_t n,
                     const char *platform_os, const char *platform_arch)
{
    static char manifest_digest[RBX_DIGEST_LEN + 1];
    _cleanup_strv_ char **diff_ids = rbx_xcalloc(n + 1, sizeof(char *));
    json_t *ldescs = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct tl_layer *l = &layers[i];
        char diff[RBX_DIGEST_LEN + 1], dg[RBX_DIGEST_LEN + 1];
        rbx_sha256_buf(l->tar, l->len, diff);
        diff_ids[i] =
            l->bad_diff_id
                ? rbx_xstrdup(
                      "sha256:0000000000000000000000000000000000000000000000000000000000000000")
                : rbx_xstrdup(diff);
        size_t blen = 0;
        _cleanup_free_ char *blob = NULL;
        if (l->blob) {
            blob = rbx_xmalloc(l->blob_len + 1);
            memcpy(blob, l->blob, l->blob_len);
            blen = l->blob_len;
        } else if (l->compression == RBX_COMPRESSION_GZIP) {
            blob = tl_gzip(l->tar, l->len, &blen);
        } else if (l->compression == RBX_COMPRESSION_ZSTD) {
            blob = tl_zstd(l->tar, l->len, &blen);
        } else {
            blob = rbx_xmalloc(l->len + 1);
            memcpy(blob, l->tar, l->len);
            blen = l->len;
        }
        if (l->truncate_blob)
            blen /= 2;
        rbx_sha256_buf(blob, blen, dg);
        if (l->corrupt_blob)
            blob[blen / 2] ^= 0x55;
        _cleanup_free_ char *name = rbx_xasprintf("blobs/sha256/%s", rbx_digest_hex(dg));
        tl_write(layout, name, blob, blen);
        json_array_append_new(
            ldescs,
            descriptor(l->media_type ? l->media_type : default_media(l->compression), dg, blen));
    }
    _cleanup_free_ char *cfg = tl_config_json(diff_ids);
    char cdg[RBX_DIGEST_LEN + 1];
    tl_blob(layout, cfg, strlen(cfg), cdg);
    json_t *m = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
                          "application/vnd.oci.image.manifest.v1+json", "config",
                          descriptor("application/vnd.oci.image.config.v1+json", cdg, strlen(cfg)),
                          "layers", ldescs);
    _cleanup_free_ char *mtext = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    tl_blob(layout, mtext, strlen(mtext), manifest_digest);

    /* Add to index.json (made when missing). */
    _cleanup_free_ char *ipath = rbx_xasprintf("%s/index.json", layout);
    json_t *index = json_load_file(ipath, 0, NULL);
    if (!index)
        index = json_pack("{s:i, s:[]}", "schemaVersion", 2, "manifests");
    json_t *d =
        descriptor("application/vnd.oci.image.manifest.v1+json", manifest_digest, strlen(mtext));
    if (tag)
        json_object_set_new(d, "annotations", json_pack("{s:s}", RBX_ANNOTATION_REF_NAME, tag));
    if (platform_os)
        json_object_set_new(
            d, "platform",
            json_pack("{s:s, s:s}", "os", platform_os, "architecture", platform_arch));
    json_array_append_new(json_object_get(index, "manifests"), d);
    _cleanup_free_ char *itext = json_dumps(index, JSON_COMPACT);
    json_decref(index);
    tl_layout_raw(layout, itext);
    return manifest_digest;
}
