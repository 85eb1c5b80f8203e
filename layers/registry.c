/* registry.c — a client of the Distribution HTTP API v2 over libcurl: scheme and TLS choice, the
 * /v2/ ping, Basic and Bearer auth on 401, redirects followed by hand (the Authorization header
 * stays with the registry's origin), retries with backoff, manifests negotiated and verified, and
 * blobs streamed to a file with Range resumption. */
#include "layers/registry-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define HEADER_MAX 8192             /* longest response header value kept */
#define ERRBODY_MAX 4096            /* bytes of an error body kept for its message */
#define TOKEN_MAX ((size_t)1 << 20) /* a token server's answer */
#define REDIRECTS_MAX 8
#define CONNECT_TIMEOUT_S 30L
#define STALL_TIMEOUT_S 60L /* no byte for this long: the transfer is retried */

static const char accept_manifests[] = "Accept: application/vnd.oci.image.index.v1+json, "
                                       "application/vnd.docker.distribution.manifest.list.v2+json, "
                                       "application/vnd.oci.image.manifest.v1+json, "
                                       "application/vnd.docker.distribution.manifest.v2+json";

/* ---- retry policy ---------------------------------------------------------------------------- */

enum rbx_retry_class rbx_retry_classify(int curl_code, long status)
{
    switch (curl_code) {
    case CURLE_OK: break;
    case CURLE_COULDNT_RESOLVE_HOST: /* DNS hiccups are common in CI */
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return RBX_RETRY_YES;
    default: return RBX_RETRY_NO;
    }
    return status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505)
               ? RBX_RETRY_YES
               : RBX_RETRY_NO;
}

unsigned rbx_retry_delay_ms(unsigned attempt, long retry_after_s, double jitter)
{
    if (retry_after_s >= 0)
        return (unsigned)(retry_after_s > RBX_RETRY_AFTER_MAX_S ? RBX_RETRY_AFTER_MAX_S
                                                                : retry_after_s) *
               1000u;
    uint64_t d = RBX_RETRY_BASE_MS;
    for (unsigned i = 1; i < attempt && d < RBX_RETRY_CAP_MS; i++)
        d *= 2;
    if (d > RBX_RETRY_CAP_MS)
        d = RBX_RETRY_CAP_MS;
    if (jitter < 0)
        jitter = 0;
    if (jitter > 1)
        jitter = 1;
    return (unsigned)(d + (uint64_t)((double)d / 4 * jitter));
}

long rbx_retry_after_parse(const char *v)
{
    if (!v)
        return -1;
    while (*v == ' ')
        v++;
    if (!*v)
        return -1;
    long n = 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > 1000000)
            return -1;
        n = n * 10 + (*v - '0');
    }
    while (*v == ' ')
        v++;
    return *v ? -1 : n;
}

/* ---- the client ------------------------------------------------------------------------------ */

struct rbx_registry {
    char *name; /* "host[:port]/repository" for messages */
    char *host; /* as the reference says: "docker.io", "127.0.0.1:5000" */
    char *base; /* "https://registry-1.docker.io", no trailing '/' */
    char *repository;
    bool insecure;
    char *ca_pem; /* CA certificates of the cert dir, concatenated */
    size_t ca_len;
    char *client_cert, *client_key;
    uint64_t limit_rate;
    const char *opt_creds;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

    pthread_mutex_t mu; /* the auth state below */
    bool creds_loaded;
    struct rbx_creds creds;
    char *auth_header; /* "Authorization: ..." or NULL */
    enum rbx_auth_scheme auth_scheme;
    unsigned auth_gen; /* bumped at every change of auth_header */
    unsigned auth_rejections;
    struct rbx_registry_conn *main;
};

struct rbx_registry_conn {
    struct rbx_registry *reg;
    CURL *h;
    char errbuf[CURL_ERROR_SIZE];
    /* Blob bytes on their way to the file: curl hands over 16 KiB at a time, the disk is
     * written a MiB at a time. */
    char *wbuf;
    size_t wlen;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        abort();
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
    struct rbx_registry *reg = ud;
    pthread_mutex_lock(&reg->share_mu[data]);
}
static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
    struct rbx_registry *reg = ud;
    pthread_mutex_unlock(&reg->share_mu[data]);
}

const char *rbx_registry_name(const struct rbx_registry *reg)
{
    return reg->name;
}

struct rbx_registry_conn *rbx_registry_conn_free(struct rbx_registry_conn *c)
{
    if (!c)
        return NULL;
    curl_easy_cleanup(c->h);
    free(c->wbuf);
    free(c);
    return NULL;
}

struct rbx_registry *rbx_registry_free(struct rbx_registry *reg)
{
    if (!reg)
        return NULL;
    rbx_registry_conn_free(reg->main);
    if (reg->share)
        curl_share_cleanup(reg->share);
    for (size_t i = 0; i < RBX_ARRAY_SIZE(reg->share_mu); i++)
        pthread_mutex_destroy(&reg->share_mu[i]);
    pthread_mutex_destroy(&reg->mu);
    rbx_creds_clear(&reg->creds);
    if (reg->auth_header)
        explicit_bzero(reg->auth_header, strlen(reg->auth_header));
    free(reg->auth_header);
    free(reg->name);
    free(reg->host);
    free(reg->base);
    free(reg->repository);
    free(reg->ca_pem);
    free(reg->client_cert);
    free(reg->client_key);
    free(reg);
    return NULL;
}

struct rbx_registry_conn *rbx_registry_conn_new(struct rbx_registry *reg)
{
    struct rbx_registry_conn *c = rbx_xcalloc(1, sizeof(*c));
    c->reg = reg;
    c->h = curl_easy_init();
    if (!c->h)
        abort();
    CURL *h = c->h;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, STALL_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
    /* One connection per download thread: HTTP/2's multiplexing buys nothing here and its flow
     * control costs a third of the throughput of a large blob (docs/BENCHMARKS.md). */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "reprobox/" REPROBOX_VERSION);
    curl_easy_setopt(h, CURLOPT_SHARE, reg->share);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, reg->insecure ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, reg->insecure ? 0L : 2L);
    if (reg->ca_pem) {
        struct curl_blob blob = {
            .data = reg->ca_pem, .len = reg->ca_len, .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (reg->client_cert && reg->client_key) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, reg->client_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, reg->client_key);
    }
    if (reg->limit_rate)
        curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)reg->limit_rate);
    return c;
}

/* ---- one HTTP exchange ---------------------------------------------------------------------- */

struct xfer {
    struct rbx_registry_conn *c;
    long status;
    char *content_type, *docker_digest, *location, *www_auth, *content_range, *retry_after;
    bool status_checked; /* the sink saw the status of the current response */
    /* 2xx bodies go to the sink; others are kept (bounded) for the error message */
    int (*sink)(struct xfer *x, const char *buf, size_t n);
    void *sink_data;
    struct rbx_error *sink_err;
    char errbody[ERRBODY_MAX];
    size_t errlen;
    atomic_bool *cancel;
};

static void xfer_reset(struct xfer *x)
{
    x->status = 0;
    x->status_checked = false;
    free(x->content_type);
    free(x->docker_digest);
    free(x->location);
    free(x->www_auth);
    free(x->content_range);
    free(x->retry_after);
    x->content_type = x->docker_digest = x->location = x->www_auth = x->content_range =
        x->retry_after = NULL;
    x->errlen = 0;
}

static void xfer_clear(struct xfer *x)
{
    xfer_reset(x);
    rbx_error_free(x->sink_err);
    x->sink_err = NULL;
}

static void set_header(char **slot, const char *v, size_t n, bool keep_first)
{
    if (*slot && keep_first)
        return;
    free(*slot);
    *slot = rbx_xstrndup(v, n > HEADER_MAX ? HEADER_MAX : n);
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nitems, len = n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, or the next hop): forget the last one's. */
        xfer_reset(x);
        const char *sp = memchr(buf, ' ', len);
        if (sp)
            x->status = strtol(sp + 1, NULL, 10);
        return n;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon)
        return n;
    size_t nlen = (size_t)(colon - buf);
    const char *v = colon + 1;
    while (v < buf + len && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t)(buf + len - v);
    static const struct {
        const char *name;
        size_t off;
    } wanted[] = {
        {"content-type", offsetof(struct xfer, content_type)},
        {"docker-content-digest", offsetof(struct xfer, docker_digest)},
        {"location", offsetof(struct xfer, location)},
        {"content-range", offsetof(struct xfer, content_range)},
        {"retry-after", offsetof(struct xfer, retry_after)},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(wanted); i++)
        if (strlen(wanted[i].name) == nlen && strncasecmp(buf, wanted[i].name, nlen) == 0)
            set_header((char **)((char *)x + wanted[i].off), v, vlen, false);
    if (nlen == 16 && strncasecmp(buf, "www-authenticate", 16) == 0) {
        /* Several challenges may come in several headers: a Bearer one is what we want. */
        bool bearer = vlen >= 6 && strncasecmp(v, "bearer", 6) == 0;
        if (!x->www_auth || bearer)
            set_header(&x->www_auth, v, vlen, false);
    }
    return n;
}

static size_t write_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (x->status >= 200 && x->status < 300) {
        if (!x->sink)
            return n;
        return x->sink(x, buf, n) < 0 ? 0 : n;
    }
    if (x->status >= 300 && x->status < 400)
        return n;
    size_t room = sizeof(x->errbody) - 1 - x->errlen;
    size_t take = n < room ? n : room;
    memcpy(x->errbody + x->errlen, buf, take);
    x->errlen += take;
    x->errbody[x->errlen] = '\0';
    return n;
}

static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct xfer *x = ud;
    return x->cancel && atomic_load(x->cancel) ? 1 : 0;
}

/* A URL for messages: no query string (signed storage URLs carry credentials there). */
static char *url_for_message(const char *url)
{
    size_t n = strcspn(url, "?#");
    return rbx_xstrndup(url, n > 300 ? 300 : n);
}

/* scheme://host[:port] of a URL, lowercased, for same-origin checks. */
static char *url_origin(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return NULL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n); /* userinfo is not part of the origin */
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    char *o = rbx_xasprintf("%.*s://%.*s", (int)(strstr(url, "://") - url), url, (int)n, p);
    for (char *c = o; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return o;
}

static CURLcode exchange(struct rbx_registry_conn *c, struct xfer *x, const char *url,
                         const char *auth, const char *accept, uint64_t range_from)
{
    CURL *h = c->h;
    struct curl_slist *hdrs = NULL;
    if (accept)
        hdrs = curl_slist_append(hdrs, accept);
    if (auth)
        hdrs = curl_slist_append(hdrs, auth);
    char range[48];
    snprintf(range, sizeof(range), "%llu-", (unsigned long long)range_from);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_RANGE, range_from ? range : NULL);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    xfer_reset(x);
    c->errbuf[0] = '\0';
    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    for (struct curl_slist *l = hdrs; l; l = l->next) /* the Authorization line is a secret */
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(hdrs);
    return cc;
}

/* The registry's own words from an error body: {"errors":[{"code":..,"message":..}]}. */
static void registry_error_text(const struct xfer *x, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!x->errlen)
        return;
    json_error_t je;
    _cleanup_json_ json_t *j = json_loadb(x->errbody, x->errlen, 0, &je);
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    const char *code = json_string_value(json_object_get(e0, "code"));
    const char *msg = json_string_value(json_object_get(e0, "message"));
    if (!code && !msg)
        return;
    snprintf(buf, len, " (%.60s%s%.160s)", code ? code : "", code && msg ? ": " : "",
             msg ? msg : "");
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

static void sleep_ms(unsigned ms, atomic_bool *cancel)
{
    while (ms > 0 && !(cancel && atomic_load(cancel))) {
        unsigned step = ms > 100 ? 100 : ms;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        ms -= step;
    }
}

/* ---- auth ------------------------------------------------------------------------------------ */

static int load_creds(struct rbx_registry *reg, struct rbx_error **err)
{
    if (reg->creds_loaded)
        return 0;
    int r = reg->opt_creds ? rbx_creds_parse(reg->opt_creds, &reg->creds, err)
                           : rbx_auth_find(reg->host, reg->repository, &reg->creds, err);
    if (r < 0)
        return r;
    reg->creds_loaded = true;
    return 0;
}

static void set_auth_header(struct rbx_registry *reg, char *h, enum rbx_auth_scheme scheme)
{
    if (reg->auth_header)
        explicit_bzero(reg->auth_header, strlen(reg->auth_header));
    free(reg->auth_header);
    reg->auth_header = h;
    reg->auth_scheme = scheme;
    reg->auth_gen++;
}

static char *basic_header(const struct rbx_creds *c)
{
    _cleanup_free_ char *plain = rbx_xasprintf("%s:%s", c->username, c->password);
    _cleanup_free_ char *enc = rbx_base64_encode(plain, strlen(plain));
    explicit_bzero(plain, strlen(plain));
    char *h = rbx_xasprintf("Authorization: Basic %s", enc);
    explicit_bzero(enc, strlen(enc));
    return h;
}

static int sink_memory(struct xfer *x, const char *buf, size_t n);
struct membuf {
    char *data;
    size_t len, cap, max;
    const char *what;
};

static int need_credentials(struct rbx_registry *reg, struct rbx_error **err)
{
    if (reg->creds.unusable)
        return rbx_error_set(err, RBX_ERR_AUTH, EACCES,
                             "authentication required; the only credentials configured for %s "
                             "are %s (pass --creds USER:PASSWORD or add an \"auth\" entry)",
                             reg->host, reg->creds.unusable);
    return rbx_error_set(err, RBX_ERR_AUTH, EACCES,
                         "authentication required (no credentials for %s: pass --creds "
                         "USER:PASSWORD or log in with podman/docker/skopeo login)",
                         reg->host);
}

static int refused(struct rbx_registry *reg, const char *by, struct rbx_error **err)
{
    return rbx_error_set(err, RBX_ERR_AUTH, EACCES, "%s refused the credentials from %s", by,
                         reg->creds.source ? reg->creds.source : "?");
}

/* Ask the token server of a Bearer challenge for a token (with the credentials, if any). */
static int fetch_token(struct rbx_registry_conn *c, const struct rbx_challenge *ch,
                       struct rbx_error **err)
{
    struct rbx_registry *reg = c->reg;
    if (strncmp(ch->realm, "https://", 8) != 0 && strncmp(ch->realm, "http://", 7) != 0)
        return rbx_error_set(err, RBX_ERR_AUTH, EPROTO, "the token realm is not an http(s) URL");
    /* Credentials never travel in clear text unless the user said the registry is insecure. */
    if (strncmp(ch->realm, "http://", 7) == 0 && reg->creds.username && !reg->insecure)
        return rbx_error_set(err, RBX_ERR_AUTH, EPROTO,
                             "the token realm is plain http; refusing to send credentials "
                             "there (--tls-verify=false allows it)");
    _cleanup_free_ char *scope_default = rbx_xasprintf("repository:%s:pull", reg->repository);
    const char *scope = ch->scope && *ch->scope ? ch->scope : scope_default;
    char *esc_scope = curl_easy_escape(c->h, scope, 0);
    char *esc_service = ch->service ? curl_easy_escape(c->h, ch->service, 0) : NULL;
    _cleanup_free_ char *url =
        rbx_xasprintf("%s%cscope=%s%s%s", ch->realm, strchr(ch->realm, '?') ? '&' : '?', esc_scope,
                      esc_service ? "&service=" : "", esc_service ? esc_service : "");
    curl_free(esc_scope);
    curl_free(esc_service);
    _cleanup_free_ char *auth = reg->creds.username ? basic_header(&reg->creds) : NULL;

    struct membuf mb = {.max = TOKEN_MAX, .what = "token"};
    struct xfer x = {.c = c, .sink = sink_memory, .sink_data = &mb};
    CURLcode cc = CURLE_OK;
    for (unsigned attempt = 0;; attempt++) {
        mb.len = 0;
        cc = exchange(c, &x, url, auth, NULL, 0);
        if (x.sink_err || rbx_retry_classify((int)cc, x.status) == RBX_RETRY_NO ||
            attempt + 1 >= RBX_RETRY_ATTEMPTS)
            break;
        sleep_ms(rbx_retry_delay_ms(attempt + 1, rbx_retry_after_parse(x.retry_after),
                                    (double)(rbx_now_ns() % 1000) / 1000.0),
                 NULL);
    }
    if (auth)
        explicit_bzero(auth, strlen(auth));
    _cleanup_free_ char *data = mb.data;
    _cleanup_free_ char *uwhat = url_for_message(ch->realm);
    int r = 0;
    if (x.sink_err)
        r = rbx_error_move(err, &x.sink_err);
    else if (cc != CURLE_OK)
        r = rbx_error_set(err, RBX_ERR_NETWORK, ECONNREFUSED, "token server %s: %s", uwhat,
                          c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
    else if (x.status == 401 || x.status == 403)
        r = reg->creds.username ? refused(reg, "the token server", err)
                                : need_credentials(reg, err);
    else if (x.status != 200)
        r = rbx_error_set(err, RBX_ERR_AUTH, EPROTO, "token server %s answered %ld", uwhat,
                          x.status);
    xfer_clear(&x);
    if (r < 0)
        return r;
    json_error_t je;
    _cleanup_json_ json_t *j = json_loadb(data ? data : "", mb.len, 0, &je);
    if (data)
        explicit_bzero(data, mb.len);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok || !*tok)
        tok = json_string_value(json_object_get(j, "access_token"));
    if (!tok || !*tok || strpbrk(tok, "\r\n"))
        return rbx_error_set(err, RBX_ERR_AUTH, EPROTO, "token server %s: no token in its answer",
                             uwhat);
    set_auth_header(reg, rbx_xasprintf("Authorization: Bearer %s", tok), RBX_AUTH_BEARER);
    return 0;
}

/* Answer a 401 (with reg->mu held): present credentials as its challenge asks. */
static int authenticate_locked(struct rbx_registry_conn *c, const char *www_auth,
                               struct rbx_error **err)
{
    struct rbx_registry *reg = c->reg;
    if (!www_auth)
        return rbx_error_set(err, RBX_ERR_AUTH, EACCES, "401 without a WWW-Authenticate challenge");
    _cleanup_(rbx_challenge_clear) struct rbx_challenge ch = {0};
    int r = rbx_challenge_parse(www_auth, &ch, err);
    if (r < 0)
        return r;
    if ((r = load_creds(reg, err)) < 0)
        return r;
    if (ch.scheme == RBX_AUTH_BASIC) {
        if (!reg->creds.username)
            return need_credentials(reg, err);
        if (reg->auth_scheme == RBX_AUTH_BASIC) /* these very credentials were just refused */
            return refused(reg, "the registry", err);
        set_auth_header(reg, basic_header(&reg->creds), RBX_AUTH_BASIC);
        return 0;
    }
    /* Bearer: a token refused once may have expired; refused again, it is final. */
    if (reg->auth_scheme == RBX_AUTH_BEARER && ++reg->auth_rejections > 2)
        return reg->creds.username ? refused(reg, "the registry", err) : need_credentials(reg, err);
    return fetch_token(c, &ch, err);
}

/* `seen_gen` is the auth state the refused request used: when another thread has changed it
 * since, the request is just tried again with the new one. */
static int authenticate(struct rbx_registry_conn *c, const char *www_auth, unsigned seen_gen,
                        struct rbx_error **err)
{
    struct rbx_registry *reg = c->reg;
    pthread_mutex_lock(&reg->mu);
    int r = reg->auth_gen == seen_gen ? authenticate_locked(c, www_auth, err) : 0;
    pthread_mutex_unlock(&reg->mu);
    return r;
}

/* ---- requests: auth, redirects, retries ------------------------------------------------------ */

struct request {
    const char *path;            /* below the base: "/v2/..." */
    const char *accept;          /* a whole "Accept: ..." header, or NULL */
    struct rbx_blob_fetch *blob; /* ranges start at blob->have */
};

static bool is_redirect(long s)
{
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

/* Run a request to its final answer. Returns the HTTP status (the caller judges it), or an error
 * for what no caller can use: network failures after the retries, auth failures. */
static long do_request(struct rbx_registry_conn *c, const struct request *req, struct xfer *x,
                       struct rbx_error **err)
{
    struct rbx_registry *reg = c->reg;
    _cleanup_free_ char *origin = url_origin(reg->base);
    unsigned attempt = 0, auth_rounds = 0;
    uint64_t progress = req->blob ? req->blob->have : 0;
    for (;;) {
        _cleanup_free_ char *url = rbx_xasprintf("%s%s", reg->base, req->path);
        bool to_registry = true;
        CURLcode cc;
        unsigned gen;
        for (unsigned hops = 0;; hops++) {
            _cleanup_free_ char *auth = NULL;
            pthread_mutex_lock(&reg->mu);
            gen = reg->auth_gen;
            if (to_registry && reg->auth_header)
                auth = rbx_xstrdup(reg->auth_header);
            pthread_mutex_unlock(&reg->mu);
            cc = exchange(c, x, url, auth, req->accept, req->blob ? req->blob->have : 0);
            if (auth)
                explicit_bzero(auth, strlen(auth));
            if (x->sink_err)
                return rbx_error_move(err, &x->sink_err);
            if (cc == CURLE_ABORTED_BY_CALLBACK && x->cancel && atomic_load(x->cancel))
                return rbx_error_set(err, RBX_ERR_INTERNAL, ECANCELED, "cancelled");
            if (cc != CURLE_OK || !is_redirect(x->status))
                break;
            char *next = NULL;
            curl_easy_getinfo(c->h, CURLINFO_REDIRECT_URL, &next);
            _cleanup_free_ char *uwhat = url_for_message(url);
            if (!next)
                return rbx_error_set(err, RBX_ERR_NETWORK, EPROTO,
                                     "GET %s: redirect without a Location", uwhat);
            if (hops + 1 >= REDIRECTS_MAX)
                return rbx_error_set(err, RBX_ERR_NETWORK, ELOOP, "GET %s: more than %d redirects",
                                     uwhat, REDIRECTS_MAX);
            if (strncmp(url, "https:", 6) == 0 && strncmp(next, "https:", 6) != 0 && !reg->insecure)
                return rbx_error_set(err, RBX_ERR_NETWORK, EPROTO,
                                     "GET %s: refusing a redirect from https to plain http", uwhat);
            _cleanup_free_ char *norigin = url_origin(next);
            /* Blob storage elsewhere gets no Authorization of ours (its URL is signed). */
            to_registry = norigin && origin && strcmp(norigin, origin) == 0;
            free(url);
            url = rbx_xstrdup(next);
        }
        /* A download cut after it made progress starts a fresh series of tries: a long blob on
         * a flaky link gets there as long as each try moves it on. */
        if (req->blob && req->blob->have > progress) {
            progress = req->blob->have;
            attempt = 0;
        }
        if (rbx_retry_classify((int)cc, x->status) == RBX_RETRY_YES &&
            attempt + 1 < RBX_RETRY_ATTEMPTS) {
            attempt++;
            sleep_ms(rbx_retry_delay_ms(attempt, rbx_retry_after_parse(x->retry_after),
                                        (double)(rbx_now_ns() % 1000) / 1000.0),
                     x->cancel);
            continue;
        }
        if (cc != CURLE_OK) {
            _cleanup_free_ char *uwhat = url_for_message(url);
            int e = cc == CURLE_COULDNT_CONNECT      ? ECONNREFUSED
                    : cc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
                    : cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ? EPERM
                                                                                             : EIO;
            const char *hint =
                cc == CURLE_PEER_FAILED_VERIFICATION
                    ? " (a private CA: --cert-dir DIR; or --tls-verify=false)"
                : cc == CURLE_SSL_CONNECT_ERROR
                    ? " (a plain HTTP registry? --tls-verify=false allows it on a loopback address)"
                    : "";
            return rbx_error_set(err, RBX_ERR_NETWORK, e, "GET %s: %s%s", uwhat,
                                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc), hint);
        }
        if (x->status == 401 && to_registry && auth_rounds < 3) {
            auth_rounds++;
            _cleanup_free_ char *wa = x->www_auth ? rbx_xstrdup(x->www_auth) : NULL;
            int r = authenticate(c, wa, gen, err);
            if (r < 0)
                return r;
            continue;
        }
        if (x->status == 401 || x->status == 403) {
            pthread_mutex_lock(&reg->mu);
            bool had = reg->creds.username != NULL;
            pthread_mutex_unlock(&reg->mu);
            char why[256];
            registry_error_text(x, why, sizeof(why));
            if (x->status == 401)
                return had ? refused(reg, "the registry", err) : need_credentials(reg, err);
            return rbx_error_set(err, RBX_ERR_AUTH, EACCES, "access denied%s", why);
        }
        if (to_registry && x->status < 400) {
            /* Accepted: a token refused later (expired) may be fetched again. */
            pthread_mutex_lock(&reg->mu);
            reg->auth_rejections = 0;
            pthread_mutex_unlock(&reg->mu);
        }
        return x->status;
    }
}

/* ---- opening --------------------------------------------------------------------------------- */

static bool loopback_host(const char *hostport)
{
    char host[256];
    const char *end;
    if (hostport[0] == '[') {
        end = strchr(hostport, ']');
        if (!end)
            return false;
        snprintf(host, sizeof(host), "%.*s", (int)(end - hostport - 1), hostport + 1);
    } else {
        end = strchr(hostport, ':');
        snprintf(host, sizeof(host), "%.*s", end ? (int)(end - hostport) : (int)strlen(hostport),
                 hostport);
    }
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* skopeo's cert dir: *.crt are CAs (added to the system's), NAME.cert with NAME.key a client
 * certificate. */
static int load_cert_dir(struct rbx_registry *reg, const char *dir, bool explicit,
                         struct rbx_error **err)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    if (!d) {
        if (!explicit && (errno == ENOENT || errno == ENOTDIR))
            return 0;
        return rbx_error_set_errno(err, errno == ENOENT ? RBX_ERR_NOT_FOUND : RBX_ERR_IO, errno,
                                   "--cert-dir %s", dir);
    }
    _cleanup_strv_ char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            rbx_strv_push(&names, de->d_name);
    size_t n = rbx_strv_len(names);
    if (n)
        qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        _cleanup_free_ char *path = rbx_xasprintf("%s/%s", dir, names[i]);
        if (len > 4 && strcmp(names[i] + len - 4, ".crt") == 0) {
            _cleanup_free_ char *pem = NULL;
            size_t plen = 0;
            int r = rbx_read_file_at(AT_FDCWD, path, (size_t)1 << 20, &pem, &plen, err);
            if (r < 0)
                return r;
            reg->ca_pem = rbx_xrealloc(reg->ca_pem, reg->ca_len + plen + 2);
            memcpy(reg->ca_pem + reg->ca_len, pem, plen);
            reg->ca_len += plen;
            reg->ca_pem[reg->ca_len++] = '\n';
        } else if (len > 5 && strcmp(names[i] + len - 5, ".cert") == 0 && !reg->client_cert) {
            _cleanup_free_ char *key = rbx_xasprintf("%s/%.*s.key", dir, (int)(len - 5), names[i]);
            if (access(key, R_OK) != 0)
                return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                     "--cert-dir %s: %s has no matching .key", dir, names[i]);
            reg->client_cert = TAKE_PTR(path);
            reg->client_key = TAKE_PTR(key);
        }
    }
    return 0;
}

static int unexpected(struct rbx_registry *reg, const char *what, const struct xfer *x,
                      struct rbx_error **err)
{
    char why[256];
    registry_error_text(x, why, sizeof(why));
    return rbx_error_set(err, x->status >= 500 ? RBX_ERR_NETWORK : RBX_ERR_MALFORMED, EPROTO,
                         "%s: the registry answered %ld%s", what, x->status, why);
}

/* GET /v2/: is this a registry, in which scheme, and which auth does it want? Answering its
 * challenge here saves a round trip on the first real request. */
static int ping(struct rbx_registry *reg, struct rbx_error **err)
{
    struct xfer x = {.c = reg->main};
    if (reg->insecure && strncmp(reg->base, "https://", 8) == 0 && loopback_host(reg->host)) {
        /* An insecure loopback registry may speak plain HTTP: a TLS handshake that fails (or a
         * plain answer) says so. */
        _cleanup_free_ char *url = rbx_xasprintf("%s/v2/", reg->base);
        CURLcode cc = exchange(reg->main, &x, url, NULL, NULL, 0);
        if (cc == CURLE_SSL_CONNECT_ERROR) {
            _cleanup_free_ char *plain = rbx_xasprintf("http://%s", reg->base + 8);
            free(reg->base);
            reg->base = TAKE_PTR(plain);
        }
        xfer_clear(&x);
    }
    struct request req = {.path = "/v2/"};
    long st = do_request(reg->main, &req, &x, err);
    int r = 0;
    if (st < 0)
        r = (int)st;
    else if (st == 404)
        r = rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                          "%s is not a registry (GET /v2/ answered 404)", reg->host);
    else if (st != 200)
        r = unexpected(reg, "GET /v2/", &x, err);
    xfer_clear(&x);
    return r;
}

int rbx_registry_open(const struct rbx_ref *ref, const struct rbx_registry_opts *opts,
                      struct rbx_registry **out, struct rbx_error **err)
{
    static const struct rbx_registry_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    pthread_once(&curl_once, curl_init_once);
    _cleanup_(rbx_registry_freep) struct rbx_registry *reg = rbx_xcalloc(1, sizeof(*reg));
    pthread_mutex_init(&reg->mu, NULL);
    for (size_t i = 0; i < RBX_ARRAY_SIZE(reg->share_mu); i++)
        pthread_mutex_init(&reg->share_mu[i], NULL);
    reg->host = rbx_xstrdup(ref->registry);
    reg->repository = rbx_xstrdup(ref->repository);
    reg->name = rbx_xasprintf("%s/%s", ref->registry, ref->repository);
    /* Docker Hub's API lives at another name than its images. */
    reg->base = rbx_xasprintf("https://%s", strcmp(ref->registry, RBX_DOCKER_HUB) == 0
                                                ? "registry-1.docker.io"
                                                : ref->registry);
    reg->insecure = opts->tls_insecure;
    reg->limit_rate = opts->limit_rate;
    reg->opt_creds = opts->creds;
    int r;
    if (opts->cert_dir) {
        if ((r = load_cert_dir(reg, opts->cert_dir, true, err)) < 0)
            return r;
    } else {
        static const char *const defaults_dirs[] = {"/etc/containers/certs.d",
                                                    "/etc/docker/certs.d"};
        for (size_t i = 0; i < RBX_ARRAY_SIZE(defaults_dirs) && !reg->ca_pem; i++) {
            _cleanup_free_ char *d = rbx_xasprintf("%s/%s", defaults_dirs[i], ref->registry);
            if ((r = load_cert_dir(reg, d, false, err)) < 0)
                return r;
        }
    }
    reg->share = curl_share_init();
    if (!reg->share)
        abort();
    curl_share_setopt(reg->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(reg->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(reg->share, CURLSHOPT_USERDATA, reg);
    curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    reg->main = rbx_registry_conn_new(reg);
    if (opts->creds) {
        /* Bad --creds is a usage error worth hearing before any network traffic. */
        if ((r = load_creds(reg, err)) < 0)
            return r;
    }
    if ((r = ping(reg, err)) < 0)
        return r;
    *out = TAKE_PTR(reg);
    return 0;
}

/* ---- manifests ------------------------------------------------------------------------------- */

static int sink_memory(struct xfer *x, const char *buf, size_t n)
{
    struct membuf *mb = x->sink_data;
    if (mb->len + n > mb->max)
        return rbx_error_set(&x->sink_err, RBX_ERR_LIMIT, EFBIG, "%s: larger than %zu bytes",
                             mb->what, mb->max);
    if (mb->len + n + 1 > mb->cap) {
        mb->cap = (mb->len + n + 1) * 2;
        if (mb->cap > mb->max + 1)
            mb->cap = mb->max + 1;
        mb->data = rbx_xrealloc(mb->data, mb->cap);
    }
    memcpy(mb->data + mb->len, buf, n);
    mb->len += n;
    mb->data[mb->len] = '\0';
    return 0;
}

void rbx_fetched_clear(struct rbx_fetched *f)
{
    free(f->data);
    free(f->media_type);
    memset(f, 0, sizeof(*f));
}

/* The media type of a manifest: its Content-Type when that names one, else its own mediaType,
 * else its shape (an index has "manifests"). */
static int manifest_media(const char *content_type, const char *data, size_t len, const char *what,
                          struct rbx_fetched *out, struct rbx_error **err)
{
    char ct[128] = "";
    if (content_type) {
        size_t n = strcspn(content_type, "; \t");
        snprintf(ct, sizeof(ct), "%.*s", (int)(n < sizeof(ct) - 1 ? n : sizeof(ct) - 1),
                 content_type);
    }
    enum rbx_media m = rbx_media_parse(ct);
    json_error_t je;
    _cleanup_json_ json_t *j = json_loadb(data, len, 0, &je);
    if (!json_is_object(j))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: not a JSON object", what);
    const char *own = json_string_value(json_object_get(j, "mediaType"));
    if (!rbx_media_is_index(m) && !rbx_media_is_manifest(m)) {
        if (strstr(ct, "manifest.v1") ||
            (json_integer_value(json_object_get(j, "schemaVersion")) == 1))
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                 "%s: a Docker schema 1 manifest (obsolete; not supported)", what);
        m = own                               ? rbx_media_parse(own)
            : json_object_get(j, "manifests") ? RBX_MEDIA_OCI_INDEX
                                              : RBX_MEDIA_OCI_MANIFEST;
        if (!rbx_media_is_index(m) && !rbx_media_is_manifest(m))
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                 "%s: media type \"%.100s\" is not an image manifest or index",
                                 what, own ? own : ct);
    }
    if (own && rbx_media_parse(own) != m)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: its mediaType \"%.100s\" differs from the Content-Type \"%s\"",
                             what, own, ct);
    out->media = m;
    static const struct {
        enum rbx_media m;
        const char *name;
    } names[] = {
        {RBX_MEDIA_OCI_INDEX, "application/vnd.oci.image.index.v1+json"},
        {RBX_MEDIA_DOCKER_LIST, "application/vnd.docker.distribution.manifest.list.v2+json"},
        {RBX_MEDIA_OCI_MANIFEST, "application/vnd.oci.image.manifest.v1+json"},
        {RBX_MEDIA_DOCKER_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"},
    };
    for (size_t k = 0; k < RBX_ARRAY_SIZE(names); k++)
        if (names[k].m == m)
            out->media_type = rbx_xstrdup(names[k].name);
    return 0;
}

int rbx_registry_get_manifest(struct rbx_registry *reg, const char *tag_or_digest,
                              struct rbx_fetched *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    bool by_digest = strncmp(tag_or_digest, "sha256:", 7) == 0;
    _cleanup_free_ char *path =
        rbx_xasprintf("/v2/%s/manifests/%s", reg->repository, tag_or_digest);
    _cleanup_free_ char *what =
        rbx_xasprintf("%s %s", by_digest ? "manifest" : "tag", tag_or_digest);
    struct membuf mb = {.max = RBX_MANIFEST_MAX, .what = what};
    struct xfer x = {.c = reg->main, .sink = sink_memory, .sink_data = &mb};
    struct request req = {.path = path, .accept = accept_manifests};
    long st = do_request(reg->main, &req, &x, err);
    _cleanup_free_ char *data = mb.data;
    int r = 0;
    if (st < 0)
        r = (int)st;
    else if (st == 404)
        r = rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "%s: not found in the registry", what);
    else if (st != 200)
        r = unexpected(reg, what, &x, err);
    if (r < 0) {
        xfer_clear(&x);
        return r;
    }
    if (!data)
        data = rbx_xstrdup("");
    rbx_sha256_buf(data, mb.len, out->digest);
    if (by_digest && strcmp(out->digest, tag_or_digest) != 0)
        r = rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG, "%s: digest mismatch (got %s)", what,
                          out->digest);
    else if (x.docker_digest && strncmp(x.docker_digest, "sha256:", 7) == 0 &&
             strcmp(x.docker_digest, out->digest) != 0)
        r = rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG,
                          "%s: the registry says its digest is %.80s, the content hashes to %s",
                          what, x.docker_digest, out->digest);
    else
        r = manifest_media(x.content_type, data, mb.len, what, out, err);
    xfer_clear(&x);
    if (r < 0) {
        rbx_fetched_clear(out);
        return r;
    }
    out->data = TAKE_PTR(data);
    out->len = mb.len;
    return 0;
}

/* ---- blobs ----------------------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

#define WBUF_SIZE ((size_t)1 << 20)

static int blob_flush(struct rbx_registry_conn *c, struct rbx_blob_fetch *f)
{
    int r = c->wlen ? write_all(f->fd, c->wbuf, c->wlen) : 0;
    c->wlen = 0;
    return r;
}

/* Start over: no bytes, a fresh hash. */
static int blob_restart(struct rbx_registry_conn *c, struct rbx_blob_fetch *f)
{
    c->wlen = 0;
    if (ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0)
        return -errno;
    rbx_sha256_free(f->hash);
    f->hash = rbx_sha256_new();
    f->have = 0;
    return 0;
}

static int sink_blob(struct xfer *x, const char *buf, size_t n)
{
    struct rbx_blob_fetch *f = x->sink_data;
    if (!x->status_checked) {
        x->status_checked = true;
        if (x->status == 206) {
            /* Only the range we asked for may be appended. */
            unsigned long long start = 0;
            if (!x->content_range || sscanf(x->content_range, "bytes %llu-", &start) != 1 ||
                start != f->have)
                return rbx_error_set(&x->sink_err, RBX_ERR_NETWORK, EPROTO,
                                     "blob %s: the registry sent another range than asked",
                                     f->digest);
            if (!f->resumed_from)
                f->resumed_from = f->have;
        } else if (f->have > 0) {
            int r = blob_restart(x->c, f); /* a 200: the server ignored the Range */
            if (r < 0)
                return rbx_error_set_errno(&x->sink_err, RBX_ERR_IO, -r, "blob %s", f->digest);
        }
    }
    if (f->size >= 0 && f->have + n > (uint64_t)f->size)
        return rbx_error_set(&x->sink_err, RBX_ERR_DIGEST, EBADMSG,
                             "blob %s: longer than the %lld bytes its descriptor says", f->digest,
                             (long long)f->size);
    struct rbx_registry_conn *c = x->c;
    int r = 0;
    if (c->wlen + n > WBUF_SIZE)
        r = blob_flush(c, f);
    if (r == 0 && n >= WBUF_SIZE) {
        r = write_all(f->fd, buf, n);
    } else if (r == 0) {
        if (!c->wbuf)
            c->wbuf = rbx_xmalloc(WBUF_SIZE);
        memcpy(c->wbuf + c->wlen, buf, n);
        c->wlen += n;
    }
    if (r < 0)
        return rbx_error_set_errno(&x->sink_err, RBX_ERR_IO, -r, "blob %s: write", f->digest);
    rbx_sha256_update(f->hash, buf, n);
    f->have += n;
    f->downloaded += n;
    if (f->progress)
        f->progress(f->progress_data, f->have);
    return 0;
}

int rbx_registry_get_blob(struct rbx_registry_conn *c, struct rbx_blob_fetch *f,
                          struct rbx_error **err)
{
    struct rbx_registry *reg = c->reg;
    _cleanup_free_ char *path = rbx_xasprintf("/v2/%s/blobs/%s", reg->repository, f->digest);
    for (int round = 0;; round++) {
        bool resumed = f->have > 0;
        if (f->size >= 0 && f->have == (uint64_t)f->size) {
            /* Complete already (a previous run stopped before publishing): verify below. */
        } else {
            struct xfer x = {.c = c, .sink = sink_blob, .sink_data = f, .cancel = f->cancel};
            struct request req = {.path = path, .blob = f};
            long st = do_request(c, &req, &x, err);
            int r = blob_flush(c, f);
            if (r < 0 && st >= 0)
                r = rbx_error_set_errno(err, RBX_ERR_IO, -r, "blob %s: write", f->digest);
            else if (st < 0)
                r = (int)st;
            else if (st == 416 && f->have > 0)
                r = blob_restart(c, f) < 0
                        ? rbx_error_set_errno(err, RBX_ERR_IO, errno, "blob %s", f->digest)
                        : 1;
            else if (st == 404)
                r = rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                  "blob %s: not found in the registry", f->digest);
            else if (st != 200 && st != 206)
                r = unexpected(reg, f->digest, &x, err);
            xfer_clear(&x);
            if (r < 0)
                return r;
            if (r == 1 && round == 0)
                continue;
        }
        char got[RBX_DIGEST_LEN + 1];
        struct rbx_sha256 *copy = f->hash;
        if (f->size >= 0 && f->have != (uint64_t)f->size) {
            if (resumed && round == 0 && blob_restart(c, f) == 0)
                continue;
            return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG,
                                 "blob %s: size %llu, descriptor says %lld", f->digest,
                                 (unsigned long long)f->have, (long long)f->size);
        }
        rbx_sha256_final(copy, got);
        if (strcmp(got, f->digest) == 0)
            return 0;
        /* Bytes kept from an earlier try may be what is wrong: once more from scratch. */
        if (resumed && round == 0 && blob_restart(c, f) == 0)
            continue;
        return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG, "blob %s: digest mismatch (got %s)",
                             f->digest, got);
    }
}
