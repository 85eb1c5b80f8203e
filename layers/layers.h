/* layers.h — the one public header of layers/: image references and transports, digest-verified
 * reading of OCI layouts and docker archives, the content-addressed layer cache, and the scratch
 * space of a run. Nothing here runs code from an image or prints. */
#pragma once

#include "common/common.h"

/* ---- references (the transports skopeo users know) --------------------------------------- */

enum rbx_transport {
    RBX_TRANSPORT_OCI,            /* oci:DIR[:TAG] */
    RBX_TRANSPORT_OCI_ARCHIVE,    /* oci-archive:FILE[:TAG] */
    RBX_TRANSPORT_DOCKER_ARCHIVE, /* docker-archive:FILE[:REPO:TAG] */
    RBX_TRANSPORT_DOCKER,         /* docker://[HOST[:PORT]/]NAME[:TAG][@DIGEST] */
};

#define RBX_DOCKER_HUB "docker.io"

struct rbx_ref {
    enum rbx_transport transport;
    char *path; /* the layout dir or archive file (local transports) */
    char *tag;  /* oci: tag (default "latest"); docker-archive: "repo:tag" or NULL;
                 * docker://: the tag ("latest" when neither tag nor digest is given, NULL with
                 * a digest alone) */
    /* docker:// only: "docker.io" or "host[:port]"; "library/node"; "sha256:..." or NULL */
    char *registry, *repository, *digest;
};

/* Parse "transport:rest". The user's string is named in errors. docker:// names are normalised
 * as docker does: "node:20" is docker.io/library/node:20. */
int rbx_ref_parse(const char *s, struct rbx_ref *out, struct rbx_error **err);
void rbx_ref_clear(struct rbx_ref *ref);
/* "registry/repository:tag" or "registry/repository@digest" (the digest wins when both are
 * given, as it decides what is pulled); NULL for other transports. */
char *rbx_ref_docker_name(const struct rbx_ref *ref);

/* ---- platforms ---------------------------------------------------------------------------- */

struct rbx_platform {
    char os[32];
    char architecture[32];
    char variant[32]; /* "" when none */
};

/* linux/<GOARCH of this machine>: linux/amd64 here. */
void rbx_platform_host(struct rbx_platform *p);
/* "os/arch[/variant]". */
int rbx_platform_parse(const char *s, struct rbx_platform *p, struct rbx_error **err);

/* ---- the store: $XDG_CACHE_HOME/reprobox, /var/lib/reprobox or --root ---------------------- */

struct rbx_store;

/* The default location for this user (malloc'd). */
char *rbx_store_default_dir(bool rootless);
/* Open (creating, mode 0700) the store; sweeps runs left by a killed reprobox. */
int rbx_store_open(const char *dir, struct rbx_store **out, struct rbx_error **err);
struct rbx_store *rbx_store_free(struct rbx_store *s);
RBX_DEFINE_CLEANUP(struct rbx_store, rbx_store_free)
const char *rbx_store_dir(const struct rbx_store *s);

/* ---- images ------------------------------------------------------------------------------- */

struct rbx_layer {
    char *digest;     /* blob digest, as in the manifest */
    char *media_type; /* OCI or Docker v2 layer type: tar, tar+gzip, tar+zstd */
    int64_t size;     /* blob size from the descriptor */
    char *diff_id;    /* digest of the uncompressed tar, from the config */
};

/* The parts of the OCI image config a run uses (the whole JSON is kept too). */
struct rbx_image_config {
    char **env;        /* "K=V" */
    char **entrypoint; /* NULL when unset */
    char **cmd;        /* NULL when unset */
    char *working_dir; /* NULL when unset */
    char *user;        /* NULL when unset */
    char *stop_signal;
    char **exposed_ports; /* "4000/tcp", sorted */
    char *os, *architecture, *variant;
};

struct rbx_image {
    char *reference;       /* as the user wrote it */
    char *manifest_digest; /* NULL for docker-archive (it has no manifest) */
    char *config_digest;
    struct rbx_layer *layers; /* lowest first */
    size_t n_layers;
    struct rbx_image_config config;
    json_t *config_json;   /* the whole config */
    json_t *manifest_json; /* NULL for docker-archive */
    /* private to layers/: where the blobs are read from */
    int blob_dirfd;        /* dir holding sha256/<hex> blobs, or -1 */
    char **blob_paths;     /* docker-archive: per-layer file inside the import, or NULL */
    char *archive_key;     /* archives: the import's record in the store */
};

/* ---- registries (docker://): docs/registry.md ------------------------------------------------ */

/* When rbx_image_open may contact a registry. */
enum rbx_pull_policy {
    RBX_PULL_MISSING = 0, /* only when the image (for this platform) is not in the store */
    RBX_PULL_ALWAYS,      /* re-resolve the tag; blobs already stored are not fetched again */
    RBX_PULL_NEVER,       /* the store only; absent is an error */
};
/* "missing", "always", "never". */
int rbx_pull_policy_parse(const char *s, enum rbx_pull_policy *out, struct rbx_error **err);

enum rbx_pull_layer_state {
    RBX_PULL_LAYER_WAITING,
    RBX_PULL_LAYER_DOWNLOADING,
    RBX_PULL_LAYER_DONE,    /* downloaded and verified */
    RBX_PULL_LAYER_PRESENT, /* already in the store */
};
/* One layer's progress. Called from the download threads, one call at a time. */
struct rbx_pull_event {
    unsigned layer, n_layers; /* layer index (lowest first) and count */
    const char *digest;
    enum rbx_pull_layer_state state;
    uint64_t done, total; /* bytes */
};
typedef void (*rbx_pull_progress_fn)(void *userdata, const struct rbx_pull_event *ev);

struct rbx_registry_opts {
    const char *creds;       /* "USER:PASSWORD" (--creds); NULL: the auth files (docs/registry.md) */
    bool tls_insecure;       /* --tls-verify=false: certificates are not checked, and a loopback
                              * registry may be spoken to in plain HTTP */
    const char *cert_dir;    /* CA certificates (NAME.crt) and a client certificate (NAME.cert
                              * with NAME.key); NULL:
                              * /etc/containers/certs.d/HOST or /etc/docker/certs.d/HOST */
    unsigned max_concurrent; /* blobs fetched at once; 0: 3 */
    uint64_t limit_rate;     /* bytes per second per blob; 0: no limit */
    rbx_pull_progress_fn progress; /* may be NULL */
    void *progress_data;
};

struct rbx_pull_stats {
    bool contacted;            /* the registry was asked (false: served from the store) */
    char manifest_digest[RBX_DIGEST_LEN + 1];
    char index_digest[RBX_DIGEST_LEN + 1]; /* "" unless the reference named an index */
    struct rbx_platform platform;          /* of the manifest, when the index said */
    unsigned layers, layers_downloaded, layers_present, layers_resumed;
    uint64_t bytes_downloaded; /* layer bytes received over the network */
    uint64_t bytes_total;      /* all layers */
    uint64_t elapsed_ns;
};

struct rbx_open_opts {
    const struct rbx_platform *platform; /* NULL: the host's */
    /* docker:// only */
    enum rbx_pull_policy pull;
    const struct rbx_registry_opts *registry; /* NULL: defaults */
    struct rbx_pull_stats *pull_stats;        /* filled when non-NULL */
};

/* Resolve a reference to one image: read and verify its index, manifest and config (sizes and
 * digests), select the platform. Layers are not read yet. Archives are imported into the store;
 * docker:// images are pulled into it as the pull policy says (layer blobs included), and
 * recorded under refs/ so that the next open needs no network. */
int rbx_image_open(struct rbx_store *store, const char *reference, const struct rbx_open_opts *opts,
                   struct rbx_image **out, struct rbx_error **err);
struct rbx_image *rbx_image_free(struct rbx_image *img);
RBX_DEFINE_CLEANUP(struct rbx_image, rbx_image_free)

/* Parsers, exposed for unit tests and fuzzing. `what` names the input in errors. */
int rbx_config_parse(const char *buf, size_t len, const char *what, struct rbx_image_config *cfg,
                     char ***diff_ids, json_t **json, struct rbx_error **err);
void rbx_config_clear(struct rbx_image_config *cfg);

/* ---- unpack into the cache ---------------------------------------------------------------- */

struct rbx_unpack_opts {
    rbx_progress_fn progress; /* may be NULL; called from the worker threads, one call at a time */
    void *progress_data;
    unsigned jobs;            /* layers extracted at once; 0: one per CPU */
    uint64_t max_layer_bytes; /* cap on one layer's expanded size; 0: $REPROBOX_MAX_LAYER_SIZE
                               * ("512m", "8g") when set, else 32 GiB */
};

struct rbx_unpack_stats {
    unsigned layers_extracted; /* extracted by this call */
    unsigned layers_cached;    /* already in the cache */
    uint64_t bytes_read;       /* compressed bytes read */
};

/* Make sure every layer of the image is unpacked in the cache (whiteouts in overlayfs form),
 * each verified against its digest and diff_id and published by an atomic rename. The store
 * handle then holds a shared lock on each of them until it is freed: a prune leaves them. */
int rbx_image_unpack(struct rbx_store *store, const struct rbx_image *img,
                     const struct rbx_unpack_opts *opts, struct rbx_unpack_stats *stats,
                     struct rbx_error **err);
/* The unpacked dir of layer i (absolute) and, when that layer hardlinks files of lower layers,
 * the dir stacked right above it that holds their copies (*links_dir, else NULL). */
int rbx_image_layer_dir(struct rbx_store *store, const struct rbx_image *img, size_t i, char **dir,
                        char **links_dir, struct rbx_error **err);
/* The unpacked layer dirs (absolute paths), lowest first; after rbx_image_unpack. There may be
 * more dirs than layers: a layer that hardlinks files of lower layers is followed by a small
 * links dir holding those links (see links.c). Stack them all, in this order. */
int rbx_image_layer_dirs(struct rbx_store *store, const struct rbx_image *img, char ***dirs,
                         struct rbx_error **err);

/* ---- what the cache holds: `reprobox images`, `reprobox cache du|prune` ------------------- */

struct rbx_cached_image {
    char *reference; /* "oci:/real/path:tag", "docker-archive:/real/file" ... */
    char *platform;  /* "linux/amd64" */
    char *config_digest;
    size_t n_layers, n_layers_cached;
    uint64_t bytes;    /* the unpacked size of its cached layers (tar bytes) */
    int64_t last_used; /* unix seconds */
};
struct rbx_cached_layer {
    char *name;    /* below layers/: the diff_id's hex, or "links-<chain id hex>" */
    char *diff_id; /* NULL for a links dir */
    char *digest;  /* the blob it came from */
    uint64_t entries, bytes;
    unsigned used_by; /* image records that list it */
};
struct rbx_cache_list {
    struct rbx_cached_image *images;
    size_t n_images;
    struct rbx_cached_layer *layers;
    size_t n_layers;
    size_t n_blobs; /* imported from archives */
    uint64_t blob_bytes;
};
int rbx_store_list(struct rbx_store *s, struct rbx_cache_list *out, struct rbx_error **err);
void rbx_cache_list_clear(struct rbx_cache_list *l);

struct rbx_cache_usage {
    struct {
        uint64_t count, bytes; /* bytes on disk, each inode once */
    } blobs, layers, runs, kept_runs, tmp, records;
};
int rbx_store_du(struct rbx_store *s, struct rbx_cache_usage *out, struct rbx_error **err);

/* The prune policy. An image record is forgotten when it was last used more than `older_than`
 * seconds ago (default: 7 days) or its source is gone (the layout dir, or the archive changed
 * or removed). Then everything no remaining record and no kept run needs goes: layers, links
 * dirs, archive records and the blobs they list. `all`: every record and kept run too. Layers
 * a running reprobox holds are always left (counted in layers_in_use). */
struct rbx_prune_opts {
    bool all;
    int64_t older_than; /* seconds; < 0: the default */
};
struct rbx_prune_stats {
    uint64_t images, layers, blobs, runs, bytes;
    uint64_t layers_in_use;
};
int rbx_store_prune(struct rbx_store *s, const struct rbx_prune_opts *opts,
                    struct rbx_prune_stats *stats, struct rbx_error **err);

/* ---- a flat rootfs: layers applied one over the other, whiteouts carried out ------------- */

struct rbx_flat_stats {
    unsigned layers;
    uint64_t bytes_read; /* compressed */
    uint64_t entries;
    uint64_t skipped_devices; /* device nodes and fifos not permitted (rootless) */
    uint64_t skipped_owners;  /* owners not mapped here (rootless): left as the caller's */
    uint64_t skipped_xattrs;
    char **skipped_names; /* the first skipped devices, by path */
};
void rbx_flat_stats_clear(struct rbx_flat_stats *st);

/* Apply every layer of the image, lowest first, to the empty directory dirfd, reading the
 * blobs directly (each verified against its digest and diff_id as it streams): whiteouts and
 * opaque directories carried out, no overlay marker left, hardlinks to lower layers real. The
 * store is not used. opts->jobs is ignored. */
int rbx_image_flatten(const struct rbx_image *img, int dirfd, const struct rbx_unpack_opts *opts,
                      struct rbx_flat_stats *stats, struct rbx_error **err);
/* The same into the directory `dest`, which must be absent or empty: the tree is built beside it
 * (".<name>.reprobox-<random>") and renamed into place, so `dest` never holds half an image. */
/* DEST for rbx_image_unpack_to (or a bundle): absent or an empty directory, in a parent that
 * exists; else a usage error saying which. */
int rbx_dest_check(const char *dest, struct rbx_error **err);
int rbx_image_unpack_to(const struct rbx_image *img, const char *dest,
                        const struct rbx_unpack_opts *opts, struct rbx_flat_stats *stats,
                        struct rbx_error **err);

/* ---- a run's scratch space: <store>/runs/<id>/{upper,work} ---------------------------------- */

struct rbx_run_dir;

/* Create a fresh run dir, locked (flock) for as long as it is open so a sweep at the next start
 * removes it only when its owner is gone. It records the layers the store handle holds (call
 * after rbx_image_unpack), so that a kept run keeps them from a prune. */
int rbx_run_dir_create(struct rbx_store *store, struct rbx_run_dir **out, struct rbx_error **err);
/* rbx_store_open for a command that makes one run dir: a thread of the store makes it while the
 * caller opens its image, and the first rbx_run_dir_create hands it out (its layers noted then). */
int rbx_store_open_for_run(const char *dir, struct rbx_store **out, struct rbx_error **err);
const char *rbx_run_dir_path(const struct rbx_run_dir *rd);
const char *rbx_run_dir_upper(const struct rbx_run_dir *rd);
const char *rbx_run_dir_work(const struct rbx_run_dir *rd);
/* Where to mount the overlay: the run dir itself (upper/ and work/ under it are hidden only in
 * the sandbox's mount namespace, where the overlay is). */
const char *rbx_run_dir_merged(const struct rbx_run_dir *rd);
/* The layer a run stacks on top of the image's, as docker's init layer: the mount points /proc,
 * /dev and /sys, so that an image without them (a static binary's) has them made neither in
 * each run's upper dir nor removed from it after. Made once in the store, atomically. */
int rbx_store_init_layer(struct rbx_store *s, char **dir, struct rbx_error **err);
/* Where overlayfs can not be mounted: a flat copy of the image in <run dir>/rootfs, made from
 * the blobs as rbx_image_flatten does. The run then uses that directory as its rootfs as it
 * is (no lower/upper dirs). */
int rbx_run_dir_flatten(struct rbx_run_dir *rd, const struct rbx_image *img,
                        const struct rbx_unpack_opts *opts, struct rbx_error **err);
/* <run dir>/rootfs, after rbx_run_dir_flatten. */
const char *rbx_run_dir_rootfs(const struct rbx_run_dir *rd);
/* Remembered per store: overlayfs was found unusable here (the first overlay mount of a run
 * failed with EINVAL, EPERM or ENODEV), so later runs go flat without trying. Also true, without
 * a record, for a store on overlayfs (which can hold no overlay's upper dir, nor the cache's
 * whiteouts): runs use a flat copy from the blobs, and the layer cache is not used. */
bool rbx_store_overlay_unusable(struct rbx_store *s);
/* Whether the store has recorded it (rbx_store_set_overlay_unusable was called). */
bool rbx_store_overlay_recorded(struct rbx_store *s);
int rbx_store_set_overlay_unusable(struct rbx_store *s, const char *why, struct rbx_error **err);
/* Close: the dir is removed unless `keep` (then it stays, unlocked, for the user to inspect). */
struct rbx_run_dir *rbx_run_dir_close(struct rbx_run_dir *rd, bool keep);
/* Close a throwaway run's dir. When its command changed nothing (upper/ empty, no flat rootfs),
 * the dir stays, unlocked, for the sweep of the next store open (for a run, a thread while that
 * process opens its image): on ext4 without a journal mounted with discard, each rmdir waits
 * for the discard of the dir's block, and a run leaves six dirs. Anything else is removed now. */
struct rbx_run_dir *rbx_run_dir_leave(struct rbx_run_dir *rd);

/* ---- writing layers (writer.c) --------------------------------------------------------------- */

/* Pinned: the blob digest depends on it. 1: a local build is paid in time, not bytes (four times
 * faster than 6, about 11% larger). */
#define RBX_LAYER_GZIP_LEVEL 1

struct rbx_layer_write_opts {
    int64_t source_date_epoch; /* mtimes later than this are written as this */
    bool overlay;              /* an overlay upper dir: 0/0 character devices are whiteouts and
                                * user.overlay.opaque="y" dirs opaque */
    bool normalize;            /* also make the tree what the tar says (times, xattrs, exclusions)
                                * so that it can be published as the layer's cache entry */
    char *const *exclude; /* cleaned relative paths left out with all below (NULL-terminated) */
};

struct rbx_layer_blob {
    char digest[RBX_DIGEST_LEN + 1];  /* of the blob (gzip'd unless written plain) */
    char diff_id[RBX_DIGEST_LEN + 1]; /* of the tar */
    int64_t size;                     /* of the blob */
    uint64_t tar_size, entries, whiteouts, opaques;
    bool gzip;
};

/* Write the tree below rootfd as a deterministic tar: entries sorted bytewise (parents first),
 * no root entry, mtimes clamped, no atime/ctime, numeric owners without names, modes as on disk,
 * PAX headers only when ustar cannot say it (records sorted), xattrs of rbx_layer_xattr_kept,
 * hardlinks as tar hardlinks, sockets left out; gzip'd (no name, time 0, OS 255, pinned level)
 * when `gzip`. The tree must not change meanwhile. */
int rbx_layer_write_fd(int rootfd, const struct rbx_layer_write_opts *opts, int outfd, bool gzip,
                       struct rbx_layer_blob *out, struct rbx_error **err);
/* The same into the store's blobs, published under its digest. */
int rbx_layer_write(struct rbx_store *store, int rootfd, const struct rbx_layer_write_opts *opts,
                    struct rbx_layer_blob *out, struct rbx_error **err);
/* The xattrs a layer carries: security.capability and user.* except user.overlay.*. */
bool rbx_layer_xattr_kept(const char *name);
/* Move `dir` (an absolute path on the store's filesystem, normalised by rbx_layer_write) into
 * the cache as the unpacked layer of blob->diff_id; removed when that layer is cached already. */
int rbx_store_adopt_layer(struct rbx_store *s, const struct rbx_layer_blob *blob, const char *dir,
                          struct rbx_error **err);
/* The unpacked layer dir of a diff_id (malloc'd path), -ENOENT (err untouched) when not cached. */
int rbx_store_layer_path(struct rbx_store *s, const char *diff_id, char **path,
                         struct rbx_error **err);
/* The store's blob dir (holding sha256/<hex>), borrowed; and whether it holds a blob. */
int rbx_store_blob_dirfd(const struct rbx_store *s);
bool rbx_store_has_blob(const struct rbx_store *s, const char *digest);

/* ---- writing images (layout.c) --------------------------------------------------------------- */

struct rbx_out_layer {
    char digest[RBX_DIGEST_LEN + 1];
    char diff_id[RBX_DIGEST_LEN + 1];
    char media_type[96]; /* as the source says; written as the OCI type */
    int64_t size;
    int blob_dirfd; /* borrowed: the dir holding sha256/<hex> of digest */
};

/* The canonical (sorted keys, compact) OCI manifest of a config blob and layers. */
char *rbx_manifest_build(const char *config_digest, int64_t config_size,
                         const struct rbx_out_layer *layers, size_t n);
/* Write an image with this config (canonical JSON) and layers as `reference`: oci:DIR[:TAG]
 * creates the layout or adds the tag to it (replacing an older image of that tag), each file
 * published atomically; docker-archive:FILE[:NAME:TAG] writes the archive (plain layers) beside
 * FILE and renames it into place. manifest_digest is the OCI manifest's. */
int rbx_image_write(const char *reference, const char *config, size_t config_len,
                    const struct rbx_out_layer *layers, size_t n,
                    const struct rbx_platform *platform, char manifest_digest[RBX_DIGEST_LEN + 1],
                    struct rbx_error **err);

/* ---- local archives (ADD) (extract.c) -------------------------------------------------------- */

enum rbx_archive_kind {
    RBX_ARCHIVE_NONE = 0, /* not an archive: copied as a file */
    RBX_ARCHIVE_TAR,
    RBX_ARCHIVE_TAR_GZIP,
    RBX_ARCHIVE_TAR_ZSTD,
    RBX_ARCHIVE_BZIP2, /* compressed with what reprobox does not decompress */
    RBX_ARCHIVE_XZ,
};
/* What the file at fd holds, by its content (compressed, a tar when it starts like one). */
int rbx_tar_sniff(int fd, enum rbx_archive_kind *kind, struct rbx_error **err);
struct rbx_tar_extract_stats {
    uint64_t entries, skipped;
};
/* Apply the archive to dirfd through the layer applier (paths kept inside, owners, modes, xattrs
 * and times as the tar says); whiteout entries are refused. */
int rbx_tar_extract(int fd, enum rbx_archive_kind kind, int dirfd, const char *what,
                    struct rbx_tar_extract_stats *stats, struct rbx_error **err);

/* ---- comparing layers (diff.c) --------------------------------------------------------------- */

struct rbx_layer_difference {
    char *path;   /* the entry ("" when the tars differ only in encoding) */
    char *field;  /* "missing", "order", "type", "mode", "owner", "mtime", "link", "content",
                   * "xattrs", "encoding", "compression" */
    char *detail; /* first vs second, for people */
};
/* Read both layers (verified) and name their first difference: 1 when found, 0 when none. */
int rbx_layer_diff(const struct rbx_out_layer *a, const struct rbx_out_layer *b,
                   struct rbx_layer_difference *out, struct rbx_error **err);
void rbx_layer_difference_clear(struct rbx_layer_difference *d);
