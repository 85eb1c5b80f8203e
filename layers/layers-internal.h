/* layers-internal.h — what the files of layers/ share: input bounds, media types, descriptors,
 * the verified blob stream, the tar applier and the store's private layout. Not a public API. */
#pragma once

#include "layers/layers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>

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

/* The cap on one layer's expanded size: the caller's, else $REPROBOX_MAX_LAYER_SIZE ("512m",
 * "8g"), else RBX_LAYER_BYTES_DEFAULT. */
uint64_t rbx_layer_cap(const struct rbx_unpack_opts *opts);

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
/* Decompress ahead in a thread of its own (a few buffers ahead); when that is done, start
 * `next` (may be NULL) the same way: the layers of a flat unpack stream one after the other
 * while the applier works. Without a thread the stream works inline. */
int rbx_stream_prefetch(struct rbx_stream *s, struct rbx_stream *next);
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

/* ---- a string map (strmap.c) -------------------------------------------------------------- */

struct rbx_strmap {
    char **keys;
    size_t *vals;
    size_t cap, n;
};
/* The value slot of key (inserted as 0 when `insert`), or NULL when absent. */
size_t *rbx_strmap_slot(struct rbx_strmap *m, const char *key, bool insert);
size_t rbx_strmap_get(const struct rbx_strmap *m, const char *key); /* 0 when absent */
void rbx_strmap_clear(struct rbx_strmap *m);

/* ---- unpack (unpack.c, whiteout.c) --------------------------------------------------------- */

struct rbx_unpack_counts {
    uint64_t entries;
    uint64_t skipped_devices; /* mknod refused */
    uint64_t skipped_owners;  /* chown refused: id not mapped, or not permitted */
    uint64_t skipped_xattrs;  /* xattrs not permitted or dropped */
    uint64_t skipped_other;   /* sockets, aufs metadata */
    uint64_t whiteouts, opaques;
    char **skipped_names;     /* the first skipped devices, by path */
};
void rbx_unpack_counts_clear(struct rbx_unpack_counts *c);

/* Applies tars to the directory rootfd (an O_RDONLY|O_DIRECTORY fd of a private dir):
 * - overlay form (`flat` false): one layer's own tree; whiteouts become overlayfs whiteouts;
 *   hardlinks to files of lower layers are not made but listed (rbx_applier_lower_links);
 * - flat form: layers one over the other, lowest first; whiteouts and opaque markers remove
 *   what lower layers made; hardlinks to lower layers are real.
 * Directory modes and times wait for rbx_applier_finish. */
struct rbx_applier;
struct rbx_applier *rbx_applier_new(int rootfd, bool flat, struct rbx_unpack_counts *counts);
/* Apply the tar read from `s`, then drain the stream. `layer` names it in errors. Stops early
 * when *cancel. */
int rbx_applier_layer(struct rbx_applier *ap, struct rbx_stream *s, const char *layer,
                      atomic_bool *cancel, struct rbx_error **err);
int rbx_applier_finish(struct rbx_applier *ap, struct rbx_error **err);
/* Overlay form, after a layer: "link", "target" pairs (cleaned paths) whose target is below. */
char **rbx_applier_lower_links(const struct rbx_applier *ap);
struct rbx_applier *rbx_applier_free(struct rbx_applier *ap);
RBX_DEFINE_CLEANUP(struct rbx_applier, rbx_applier_free)

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
    int images_fd;   /* images/<key>.json: the images opened, their last use (the mtime) */
    int archives_fd; /* archives/<key>.json: what an imported archive holds, by blob digest */
    /* Shared locks on locks/<key>.use for the layer dirs this handle uses, held until freed:
     * a prune leaves them alone. */
    pthread_mutex_t held_mu;
    int *held_fds;
    char **held_keys;
    size_t n_held;
    /* The sweep of runs/ started by rbx_store_open_for_run, while the caller goes on (joined
     * by that process only: a forked child has no such thread). */
    pthread_t sweeper;
    pid_t sweeper_owner;
    bool sweeping;
    /* rbx_store_open_for_run: a run dir that thread makes first, for rbx_run_dir_create. */
    pthread_mutex_t spare_mu;
    pthread_cond_t spare_cv;
    bool spare_wanted, spare_done;
    struct rbx_run_dir *spare;
};

/* The run dir made ahead for this store handle (waiting until it is), once; NULL when none. */
struct rbx_run_dir *rbx_store_take_spare(struct rbx_store *s);
/* rbx_run_dir_create without the one made ahead. */
int rbx_run_dir_make(struct rbx_store *store, struct rbx_run_dir **out, struct rbx_error **err);

/* Wait for the sweep of runs/ the store's open started (before anything lists runs/). */
void rbx_store_sweep_wait(struct rbx_store *s);

/* Take an flock (LOCK_EX or LOCK_SH) on locks/<key> (created when missing). `wait`: block, else
 * -EAGAIN without setting err when held elsewhere. Returns the locked fd. */
int rbx_store_lock_mode(struct rbx_store *s, const char *key, int how, bool wait,
                        struct rbx_error **err);
static inline int rbx_store_lock(struct rbx_store *s, const char *key, bool wait,
                                 struct rbx_error **err)
{
    return rbx_store_lock_mode(s, key, LOCK_EX, wait, err);
}
/* Make tmp/<key>.<random> (mode 0700); the caller holds locks/<key>. Returns an O_DIRECTORY fd
 * and the name. */
int rbx_store_mktemp(struct rbx_store *s, const char *key, char **name, struct rbx_error **err);
/* Hold a shared lock on locks/<key>.use for as long as the store is open. */
int rbx_store_hold(struct rbx_store *s, const char *key, struct rbx_error **err);
/* Is layers/<key> a published entry? */
bool rbx_store_published(struct rbx_store *s, const char *key);
/* Append "<what> <key>" to the journal (publishes and removals, for people and tests). */
void rbx_store_journal(struct rbx_store *s, const char *what, const char *key);

/* A tmp/ entry removed on every exit unless published (name taken). */
struct rbx_store_tmp {
    int tmp_fd;
    char *name;
};
void rbx_store_tmp_cleanup(struct rbx_store_tmp *t);

/* ---- hardlinks into lower layers, overlay form (links.c) ---------------------------------- */

#define RBX_LOWER_LINKS_FILE "lower_links.json"
/* A layer whose tar hardlinks files of the layers below gets, right above it, a small dir
 * layers/links-<chain id hex> holding those links (and their targets) copied up from below, as
 * containerd's overlay snapshotter does. Make it for layer i of img when needed (after all its
 * layers are published), and hold it. */
int rbx_links_ensure(struct rbx_store *s, const struct rbx_image *img, size_t i,
                     struct rbx_error **err);
/* Its name below layers/ ("links-<hex>"), or NULL when layer i needs none. */
int rbx_links_dir(struct rbx_store *s, const struct rbx_image *img, size_t i, char **name,
                  struct rbx_error **err);
/* The OCI chain id of layers 0..i. */
void rbx_chain_id(const struct rbx_image *img, size_t i, char out[RBX_DIGEST_LEN + 1]);

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
    char key[RBX_DIGEST_HEX_LEN + 1]; /* its record: archives/<key>.json */
};
int rbx_store_import_archive(struct rbx_store *s, const char *path, bool verify_names,
                             struct rbx_import *out, struct rbx_error **err);
/* Find a name (cleaned first), following aliases. NULL when absent. */
const struct rbx_import_entry *rbx_import_find(const struct rbx_import *imp, const char *name);
void rbx_import_clear(struct rbx_import *imp);

/* ---- records (records.c) ------------------------------------------------------------------- */

/* <store>/gc.lock: shared while an image is opened, exclusive while pruning. Returns the fd. */
int rbx_store_gc_lock(struct rbx_store *s, int how, struct rbx_error **err);
#define RBX_PRUNE_AGE_DEFAULT ((int64_t)7 * 24 * 3600)

/* The key of an archive: its real path and identity (device, inode, size, mtime, ctime). */
void rbx_archive_key(const char *realpath, const struct stat *st,
                     char out[RBX_DIGEST_HEX_LEN + 1]);
int rbx_archive_record_save(struct rbx_store *s, const char *key, const char *path,
                            const struct rbx_import *imp, struct rbx_error **err);
/* -ENOENT when there is no record or a blob it lists is gone. */
int rbx_archive_record_load(struct rbx_store *s, const char *key, struct rbx_import *out);
/* "transport:/real/path[:tag]" for local transports (NULL for docker://). */
char *rbx_ref_canonical(const struct rbx_ref *ref);
/* Record (or touch) the image under its canonical reference. */
int rbx_image_record(struct rbx_store *s, const struct rbx_image *img, const char *canonical,
                     const char *archive_key, struct rbx_error **err);

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

/* ISA-L's inflate can be used (isal_lazy.c: libisal.so.2 is loaded on the first call). */
bool rbx_isal_available(void);
/* Test hook: zlib inflates even where ISA-L could. */
void rbx_isal_force_off(bool off);
