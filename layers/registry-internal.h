/* registry-internal.h — what the registry files of layers/ share: credentials and their files,
 * WWW-Authenticate challenges, the Distribution API client and its retry policy. Not a public API.
 */
#pragma once

#include "layers/layers-internal.h"

/* ---- credentials (auth.c) ------------------------------------------------------------------ */

#define RBX_AUTH_FILE_MAX ((size_t)1 << 20)

struct rbx_creds {
    char *username, *password; /* both NULL: anonymous */
    char *source;              /* where they came from, for messages: "--creds", a file name */
    /* Set when the only thing configured for this registry is something reprobox does not use:
     * "credential helper \"desktop\" (…/config.json)", "an identity token (…)". */
    char *unusable;
};
void rbx_creds_clear(struct rbx_creds *c);
/* "USER:PASS" as --creds takes it (a PASS may hold ':'). Never names the text in errors. */
int rbx_creds_parse(const char *s, struct rbx_creds *out, struct rbx_error **err);
/* Look up registry ("host[:port]" or "docker.io") and repository in one auth file: a docker
 * config.json or a containers auth.json. Keys may be "host", "https://host/v1/" or
 * "host/namespace[/repo]"; the longest that matches wins. Returns 1 with creds or an unusable
 * note filled, 0 when the file says nothing about this registry. Errors name the file (`what`)
 * and the key, never a value. */
int rbx_auth_file_lookup(const char *text, size_t len, const char *what, const char *registry,
                         const char *repository, struct rbx_creds *out, struct rbx_error **err);
/* Search this user's auth files in order: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/
 * auth.json, $DOCKER_CONFIG/config.json (else ~/.docker/config.json). Missing files are
 * skipped; the first usable credentials win. *out stays anonymous when none are found (with the
 * first unusable note, if any). */
int rbx_auth_find(const char *registry, const char *repository, struct rbx_creds *out,
                  struct rbx_error **err);

/* ---- WWW-Authenticate (auth.c) -------------------------------------------------------------- */

enum rbx_auth_scheme { RBX_AUTH_NONE = 0, RBX_AUTH_BASIC, RBX_AUTH_BEARER };

struct rbx_challenge {
    enum rbx_auth_scheme scheme;
    char *realm, *service, *scope, *error;
};
/* Parse one WWW-Authenticate value (RFC 7235: a scheme, then comma-separated params of tokens
 * or quoted strings). Several challenges in one value: Bearer is preferred to Basic. Unknown
 * schemes are RBX_ERR_UNSUPPORTED. */
int rbx_challenge_parse(const char *header, struct rbx_challenge *out, struct rbx_error **err);
void rbx_challenge_clear(struct rbx_challenge *c);

/* Base64 (RFC 4648, padded); decode refuses anything else. Caller frees. */
char *rbx_base64_encode(const void *data, size_t len);
int rbx_base64_decode(const char *s, size_t len, char **out, size_t *outlen);

/* ---- retries (registry.c) -------------------------------------------------------------------- */

#define RBX_RETRY_ATTEMPTS 6     /* tries of one request, the first included */
#define RBX_RETRY_BASE_MS 250    /* first wait; doubled each time */
#define RBX_RETRY_CAP_MS 8000    /* longest wait */
#define RBX_RETRY_AFTER_MAX_S 60 /* longest Retry-After honoured */

enum rbx_retry_class {
    RBX_RETRY_NO = 0, /* a final answer */
    RBX_RETRY_YES,    /* transient: 5xx, 429, 408, a reset or refused connection, a timeout */
};
/* Classify an outcome: curl_code is a CURLcode (0 when the exchange completed), status the HTTP
 * status (0 when there was none). */
enum rbx_retry_class rbx_retry_classify(int curl_code, long status);
/* How long to wait before try number `attempt` (1 = the first retry): exponential from
 * RBX_RETRY_BASE_MS, capped, with `jitter` (0..1) adding up to a quarter more; a Retry-After
 * (seconds, -1 when absent) overrides it up to RBX_RETRY_AFTER_MAX_S. */
unsigned rbx_retry_delay_ms(unsigned attempt, long retry_after_s, double jitter);
/* Parse a Retry-After value: delta-seconds only (an HTTP date gives -1). */
long rbx_retry_after_parse(const char *v);

/* ---- the Distribution API client (registry.c) --------------------------------------------- */

struct rbx_registry;

/* Connect to the registry of `ref` (docker://): choose the scheme (https; plain http only with
 * tls_insecure on a loopback host), ping /v2/ and learn its auth challenge. */
int rbx_registry_open(const struct rbx_ref *ref, const struct rbx_registry_opts *opts,
                      struct rbx_registry **out, struct rbx_error **err);
struct rbx_registry *rbx_registry_free(struct rbx_registry *reg);
RBX_DEFINE_CLEANUP(struct rbx_registry, rbx_registry_free)
/* "host[:port]/repository", for messages. */
const char *rbx_registry_name(const struct rbx_registry *reg);

/* A fetched manifest or index: verified against `digest` (when given) and against the
 * registry's Docker-Content-Digest (when it sends one). */
struct rbx_fetched {
    char *data;
    size_t len;
    char digest[RBX_DIGEST_LEN + 1];
    enum rbx_media media;
    char *media_type;
};
void rbx_fetched_clear(struct rbx_fetched *f);
/* GET /v2/<name>/manifests/<tag or digest>, negotiated for the OCI and Docker v2 types. */
int rbx_registry_get_manifest(struct rbx_registry *reg, const char *tag_or_digest,
                              struct rbx_fetched *out, struct rbx_error **err);

/* A blob download: streamed into fd (which already holds `have` bytes of it, hashed into h),
 * resumed with Range after a reset, size and digest checked at the end. */
struct rbx_blob_fetch {
    const char *digest;
    int64_t size;
    int fd;
    struct rbx_sha256 *hash; /* holds the hash of the first `have` bytes */
    uint64_t have;           /* bytes in fd already */
    uint64_t resumed_from;   /* out: the offset of the first Range request that was honoured */
    uint64_t downloaded;     /* out: bytes received over the network */
    atomic_bool *cancel;
    void (*progress)(void *ud, uint64_t have);
    void *progress_data;
};
/* Per-thread connection state: one per worker, reused across its blobs. */
struct rbx_registry_conn;
struct rbx_registry_conn *rbx_registry_conn_new(struct rbx_registry *reg);
struct rbx_registry_conn *rbx_registry_conn_free(struct rbx_registry_conn *c);
RBX_DEFINE_CLEANUP(struct rbx_registry_conn, rbx_registry_conn_free)
/* GET /v2/<name>/blobs/<digest>. On a digest mismatch after a resume the partial bytes are
 * dropped and the blob is fetched once more from the start. */
int rbx_registry_get_blob(struct rbx_registry_conn *c, struct rbx_blob_fetch *f,
                          struct rbx_error **err);
