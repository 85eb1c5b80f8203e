/* layers_testlib.h — what the layers suites share: tars written with libarchive's writer, gzip
 * and zstd made here, and OCI layouts / archives assembled from them at test time. */
#pragma once

#include "layers/layers-internal.h"

#include <stdbool.h>
#include <stddef.h>

/* A tar being built in memory. */
struct tl_tar;
struct tl_tar *tl_tar_new(void);
/* In another libarchive format (ARCHIVE_FORMAT_TAR_GNUTAR: GNU long names). */
struct tl_tar *tl_tar_new_format(int format);
/* A sparse file of `size` bytes whose data is in the n_data (offset, length) pairs of `data`,
 * filled with 'a', 'b'... one letter per segment; the rest are holes. */
void tl_tar_sparse(struct tl_tar *t, const char *path, size_t size, const size_t *data,
                   size_t n_data);
/* Any entry (consumed), with its data. */
struct archive_entry;
void tl_tar_entry(struct tl_tar *t, struct archive_entry *e, const void *data, size_t len);
void tl_tar_fifo(struct tl_tar *t, const char *path);
void tl_tar_file(struct tl_tar *t, const char *path, const char *content, unsigned mode);
void tl_tar_dir(struct tl_tar *t, const char *path, unsigned mode);
void tl_tar_symlink(struct tl_tar *t, const char *path, const char *target);
void tl_tar_hardlink(struct tl_tar *t, const char *path, const char *target);
void tl_tar_chardev(struct tl_tar *t, const char *path, unsigned major, unsigned minor);
/* A regular file with owner, mtime and xattrs ("name=value" pairs, NULL-terminated). */
void tl_tar_file_ex(struct tl_tar *t, const char *path, const char *content, unsigned mode,
                    unsigned uid, unsigned gid, long mtime, const char *const *xattrs);
void tl_tar_dir_ex(struct tl_tar *t, const char *path, unsigned mode, long mtime);
/* A regular file with binary content. */
void tl_tar_file_bin(struct tl_tar *t, const char *path, const char *data, size_t len);
/* Every file below dir, named relative to it (an OCI layout into an oci-archive). */
void tl_tar_add_tree(struct tl_tar *t, const char *dir);
/* Finish: the tar bytes (malloc'd) and their length. Frees t. */
char *tl_tar_finish(struct tl_tar *t, size_t *len);

char *tl_gzip(const char *buf, size_t len, size_t *outlen);
char *tl_zstd(const char *buf, size_t len, size_t *outlen);

/* Temp dirs */
char *tl_mkdtemp(void);
void tl_rm_rf(const char *path);

/* Write a blob into <layout>/blobs/sha256/<hex>; digest returned in out. */
void tl_blob(const char *layout, const char *data, size_t len, char out[RBX_DIGEST_LEN + 1]);

struct tl_layer {
    const char *tar; /* uncompressed tar */
    size_t len;
    enum rbx_compression compression;
    const char *media_type; /* NULL: the OCI type for the compression */
    const char *blob;       /* when set: the blob as stored, already compressed */
    size_t blob_len;
    /* Sabotage, for the tests of verification: */
    bool bad_diff_id;   /* config says another diff_id */
    bool truncate_blob; /* the blob (as described) is cut in half */
    bool corrupt_blob;  /* the stored blob differs from its digest */
};

/* Write oci-layout and a layout with one image tagged `tag`, made of these layers. Returns the
 * manifest digest (static buffer). With `platform` non-NULL the index descriptor carries it. */
const char *tl_image(const char *layout, const char *tag, const struct tl_layer *layers, size_t n,
                     const char *platform_os, const char *platform_arch);
/* Write index.json from raw text and oci-layout. */
void tl_layout_raw(const char *layout, const char *index_json);
/* Write a file (path relative to dir). */
void tl_write(const char *dir, const char *name, const char *data, size_t len);
/* A config JSON with these diff_ids. */
char *tl_config_json(char *const *diff_ids);
