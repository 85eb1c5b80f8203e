/* layers-internal.h — what the files of layers/ share: input bounds, media types, descriptors,
 * the verified blob stream, the tar applier and the store's private layout. Not a public API. */
#pragma once

#include "layers/layers.h"

#include <stdatomic.h>

/* ---- bounds on what an image controls -------------------------------------------------- */

#define RBX_MANIFEST_MAX ((size_t)4 << 20) /* an index or a manifest */
#define RBX_CONFIG_MAX ((size_t)20 << 20)  /* an image config */
#define RBX_SMALL_FILE_MAX ((size_t)4096)  /* oci-layout */
#define RBX_INDEX_DEPTH_MAX 8              /* index -> index -> ... */
#define RBX_INDEX_ENTRIES_MAX 4096         /* descriptors in one index */
#define RBX_LAYERS_MAX 512                 /* layers in one manifest */
#define RBX_LAYER_BYTES_DEFAULT ((uint64_t)32 << 30)
#define RBX_LAYER_ENTRIES_MAX 4000000u  /* tar entries in one layer */
#define RBX_ARCHIVE_ENTRIES_MAX 100000u /* files in an image archive */

/* Hand an error held in a local slot to the caller's (dropped when the caller passed none). */
static inline int rbx_error_move(struct rbx_error **dst, struct rbx_error **src)
{
    int r = *src && (*src)->errnum ? -(*src)->errnum : -EINVAL;
    if (dst && !*dst)
        *dst = *src;
    else
        rbx_error_free(*src);
    *src = NULL;
    return r;
}

/* ---- media types ------------------------------------------------------------------------- */

enum rbx_media {
    RBX_MEDIA_UNKNOWN = 0,
    RBX_MEDIA_OCI_INDEX,
    RBX_MEDIA_DOCKER_LIST,
    RBX_MEDIA_OCI_MANIFEST,
    RBX_MEDIA_DOCKER_MANIFEST,
    RBX_MEDIA_OCI_CONFIG,
    RBX_MEDIA_DOCKER_CONFIG,
    RBX_MEDIA_LAYER_TAR,
    RBX_MEDIA_LAYER_GZIP,
    RBX_MEDIA_LAYER_ZSTD,
};

enum rbx_compression {
    RBX_COMPRESSION_NONE,
    RBX_COMPRESSION_GZIP,
    RBX_COMPRESSION_ZSTD,
};

enum rbx_media rbx_media_parse(const char *media_type);
static inline bool rbx_media_is_index(enum rbx_media m)
{
    return m == RBX_MEDIA_OCI_INDEX || m == RBX_MEDIA_DOCKER_LIST;
}
static inline bool rbx_media_is_manifest(enum rbx_media m)
{
    return m == RBX_MEDIA_OCI_MANIFEST || m == RBX_MEDIA_DOCKER_MANIFEST;
}
static inline bool rbx_media_is_layer(enum rbx_media m)
{
    return m == RBX_MEDIA_LAYER_TAR || m == RBX_MEDIA_LAYER_GZIP || m == RBX_MEDIA_LAYER_ZSTD;
}
enum rbx_compression rbx_media_compression(enum rbx_media m);
/* The compression a stream starts with (gzip and zstd magic), for archives that do not say. */
enum rbx_compression rbx_compression_sniff(const unsigned char *head, size_t len);
const char *rbx_compression_name(enum rbx_compression c);

/* ---- descriptors, indexes, manifests (manifest.c) ------------------------------------------- */

#define RBX_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"

struct rbx_descriptor {
    char *media_type;
    enum rbx_media media;
    char *digest;
    int64_t size;
    char *ref_name; /* org.opencontainers.image.ref.name, or NULL */
    bool has_platform;
    struct rbx_platform platform;
};

struct rbx_index {
    struct rbx_descriptor *manifests;
    size_t n_manifests;
};

struct rbx_manifest {
    enum rbx_media media;
    struct rbx_descriptor config;
    struct rbx_descriptor *layers;
    size_t n_layers;
    json_t *json;
};

void rbx_descriptor_clear(struct rbx_descriptor *d);
/* Parse an index (OCI image index or Docker manifest list). Unknown members are ignored, as
 * the image-spec asks; known ones are type-checked, digests validated. */
int rbx_index_parse(const char *buf, size_t len, const char *what, struct rbx_index *out,
                    struct rbx_error **err);
void rbx_index_clear(struct rbx_index *idx);
/* Parse an image manifest. `expect` is the media type of the descriptor that led here
 * (RBX_MEDIA_UNKNOWN when none); a manifest whose own mediaType disagrees is refused. Layer
 * media types outside the supported set are refused naming the layer. */
int rbx_manifest_parse(const char *buf, size_t len, const char *what, enum rbx_media expect,
                       struct rbx_manifest *out, struct rbx_error **err);
void rbx_manifest_clear(struct rbx_manifest *m);
/* Does a descriptor's platform satisfy the wanted one (variant empty on either side matches)? */
bool rbx_platform_matches(const struct rbx_platform *have, const struct rbx_platform *want);
void rbx_platform_format(const struct rbx_platform *p, char *buf, size_t len);

/* ---- blobs (blob.c) ------------------------------------------------------------------------ */

/* Open sha256/<hex> below dirfd: a regular file, else an error. NOT_FOUND when absent. */
int rbx_blob_open(int dirfd, const char *digest, struct rbx_error **err);
/* Read a whole small blob, verifying its size (when size >= 0) and digest while reading. */
int rbx_blob_read(int dirfd, const char *digest, int64_t size, size_t max, const char *what,
                  char **out, size_t *len, struct rbx_error **err);

/* A stream of decompressed bytes from a blob fd: the compressed bytes are counted and hashed
 * and checked against the descriptor at their end (a longer blob is refused as soon as it is
 * longer); the decompressed bytes are hashed (the diff_id) and capped. */
struct rbx_stream;
typedef void (*rbx_stream_progress_fn)(void *userdata, uint64_t raw_bytes);
struct rbx_stream *rbx_stream_new(int fd, enum rbx_compression c, const char *digest, int64_t size,
                                  uint64_t max_out, const char *what);
void rbx_stream_set_progress(struct rbx_stream *s, rbx_stream_progress_fn fn, void *userdata);
/* Next chunk of decompressed bytes (valid until the next call); 0 at the verified end. */
ssize_t rbx_stream_next(struct rbx_stream *s, const void **buf, struct rbx_error **err);
/* Read to the end, hashing: the bytes after a tar's end marker belong to the diff_id too. */
int rbx_stream_drain(struct rbx_stream *s, struct rbx_error **err);
/* After a failure downstream: read the rest of the compressed bytes, and when they do not
 * match the descriptor set *err to that (the real cause) in place of the error it holds. */
void rbx_stream_blame_blob(struct rbx_stream *s, struct rbx_error **err);
/* sha256 of all decompressed bytes; after rbx_stream_next returned 0. */
void rbx_stream_diff_id(struct rbx_stream *s, char out[RBX_DIGEST_LEN + 1]);
uint64_t rbx_stream_raw_bytes(const struct rbx_stream *s);
uint64_t rbx_stream_out_bytes(const struct rbx_stream *s);
struct rbx_stream *rbx_stream_free(struct rbx_stream *s);
RBX_DEFINE_CLEANUP(struct rbx_stream, rbx_stream_free)

/* Open a libarchive reader (tar formats only, no filters) pulling from the stream. */
struct archive;
struct archive *rbx_tar_reader_new(struct rbx_stream *s, struct rbx_error **errslot);
int rbx_tar_reader_error(struct archive *a, struct rbx_stream *s, struct rbx_error **errslot,
                         struct rbx_error **err);

/* ---- unpack (unpack.c, whiteout.c) --------------------------------------------------------- */

struct rbx_unpack_counts {
    uint64_t entries;
    uint64_t skipped_devices; /* mknod refused */
    uint64_t skipped_owners;  /* chown refused: id not mapped, or not permitted */
    uint64_t skipped_xattrs;  /* xattrs not permitted or dropped */
    uint64_t skipped_other;   /* sockets, aufs metadata */
    uint64_t whiteouts, opaques;
};

/* Apply the tar read from `s` to the directory rootfd (an O_RDONLY|O_DIRECTORY fd of a fresh,
 * private dir), then drain the stream. `layer` names it in errors. Stops early when *cancel. */
int rbx_layer_apply(struct rbx_stream *s, int rootfd, const char *layer, atomic_bool *cancel,
                    struct rbx_unpack_counts *counts, struct rbx_error **err);

#define RBX_WHITEOUT_PREFIX ".wh."
#define RBX_WHITEOUT_OPAQUE ".wh..wh..opq"
/* Create the overlayfs whiteout for `target` (the X of ".wh.X") in parentfd, where nothing is. */
int rbx_whiteout_make(int parentfd, const char *target, struct rbx_error **err);
/* Mark the directory fd opaque: user.overlay.opaque always, trusted.overlay.opaque when allowed. */
int rbx_whiteout_opaque(int dirfd, struct rbx_error **err);
/* Is this xattr name one a tar must not carry into a layer (it would forge overlay state)? */
bool rbx_xattr_forbidden(const char *name);

/* ---- the store (store.c) ----------------------------------------------------------------- */

struct rbx_store {
    char *dir;
    int dirfd;
    int blobs_fd; /* blobs/: holds sha256/<hex> */
    int layers_fd, tmp_fd, locks_fd, runs_fd;
};

/* Take an exclusive flock on locks/<key> (created when missing). `wait`: block, else -EAGAIN
 * without setting err when held elsewhere. Returns the locked fd. */
int rbx_store_lock(struct rbx_store *s, const char *key, bool wait, struct rbx_error **err);
/* Make tmp/<key>.<random> (mode 0700); the caller holds locks/<key>. Returns an O_DIRECTORY fd
 * and the name. */
int rbx_store_mktemp(struct rbx_store *s, const char *key, char **name, struct rbx_error **err);

/* Remove runs whose owner is gone (lock free or missing) unless kept. */
int rbx_run_dir_sweep(struct rbx_store *s, struct rbx_error **err);

/* Import every regular file of an image archive (tar, possibly gzip or zstd) into
 * blobs/sha256/<digest>. Names (cleaned) map to the digests; symlinks and hardlinks are kept as
 * aliases. With `verify_names`, a file named blobs/sha256/<hex> must hash to <hex>. */
struct rbx_import_entry {
    char *name;
    char *link; /* an alias: the cleaned name it points to */
    char digest[RBX_DIGEST_LEN + 1];
    int64_t size;
    enum rbx_compression compression; /* sniffed from the first bytes */
};
struct rbx_import {
    struct rbx_import_entry *entries;
    size_t n;
};
int rbx_store_import_archive(struct rbx_store *s, const char *path, bool verify_names,
                             struct rbx_import *out, struct rbx_error **err);
/* Find a name (cleaned first), following aliases. NULL when absent. */
const struct rbx_import_entry *rbx_import_find(const struct rbx_import *imp, const char *name);
void rbx_import_clear(struct rbx_import *imp);

/* ---- images (image.c, oci.c, oci_archive.c, docker_archive.c) ----------------------------------
 */

/* Resolve, inside a layout whose index.json is `index`, the tag and platform to a manifest;
 * read and verify it and its config, and fill img (manifest, config, layers). */
int rbx_oci_resolve(struct rbx_image *img, const char *index, size_t index_len, const char *tag,
                    bool tag_explicit, const struct rbx_platform *platform, struct rbx_error **err);
/* The oci-layout marker: {"imageLayoutVersion": "1.x"}. */
int rbx_oci_layout_check(const char *buf, size_t len, struct rbx_error **err);
int rbx_oci_open_layout(struct rbx_image *img, const char *dir, const char *tag, bool tag_explicit,
                        const struct rbx_platform *platform, struct rbx_error **err);
int rbx_oci_archive_open(struct rbx_store *store, struct rbx_image *img, const char *file,
                         const char *tag, bool tag_explicit, const struct rbx_platform *platform,
                         struct rbx_error **err);
int rbx_docker_archive_open(struct rbx_store *store, struct rbx_image *img, const char *file,
                            const char *tag, struct rbx_error **err);
/* docker://: from the store, or pulled as opts->pull says (pull.c). */
int rbx_docker_open(struct rbx_store *store, struct rbx_image *img, const struct rbx_ref *ref,
                    const struct rbx_open_opts *opts, const struct rbx_platform *platform,
                    struct rbx_error **err);
/* Read and verify the config blob, parse it, and attach diff_ids to the layers already set. */
int rbx_image_load_config(struct rbx_image *img, const char *config_digest, int64_t size,
                          struct rbx_error **err);
