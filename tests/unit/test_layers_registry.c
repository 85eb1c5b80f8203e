/* test_layers_registry.c — registry.c: the retry policy, and the client against a scripted HTTP
 * server on loopback: Basic auth, redirects (Authorization never follows to another origin),
 * retries on 5xx, Range resumption after a cut, and manifests checked against their digests. */
#include "layers/registry-internal.h"
#include "layers_testlib.h"
#include "rbx_check.h"
#include "testsrv.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

/* ---- the retry policy ------------------------------------------------------------------------ */

START_TEST(test_retry_classify)
{
    ck_assert_int_eq(rbx_retry_classify(0, 200), RBX_RETRY_NO);
    ck_assert_int_eq(rbx_retry_classify(0, 404), RBX_RETRY_NO);
    ck_assert_int_eq(rbx_retry_classify(0, 401), RBX_RETRY_NO);
    ck_assert_int_eq(rbx_retry_classify(0, 500), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(0, 502), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(0, 503), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(0, 429), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(0, 408), RBX_RETRY_YES);
    /* Not implemented, not supported: asking again changes nothing. */
    ck_assert_int_eq(rbx_retry_classify(0, 501), RBX_RETRY_NO);
    ck_assert_int_eq(rbx_retry_classify(0, 505), RBX_RETRY_NO);
    /* Refused, reset, cut, timed out: transient. */
    ck_assert_int_eq(rbx_retry_classify(7 /* COULDNT_CONNECT */, 0), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(56 /* RECV_ERROR */, 200), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(18 /* PARTIAL_FILE */, 200), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(28 /* OPERATION_TIMEDOUT */, 0), RBX_RETRY_YES);
    ck_assert_int_eq(rbx_retry_classify(52 /* GOT_NOTHING */, 0), RBX_RETRY_YES);
    /* A certificate that does not verify, a bad URL: final. */
    ck_assert_int_eq(rbx_retry_classify(60 /* PEER_FAILED_VERIFICATION */, 0), RBX_RETRY_NO);
    ck_assert_int_eq(rbx_retry_classify(3 /* URL_MALFORMAT */, 0), RBX_RETRY_NO);
    ck_assert_int_eq(rbx_retry_classify(23 /* WRITE_ERROR */, 200), RBX_RETRY_NO);
}
END_TEST

START_TEST(test_retry_backoff)
{
    /* Doubling from the base, capped, jitter adding at most a quarter. */
    ck_assert_uint_eq(rbx_retry_delay_ms(1, -1, 0), RBX_RETRY_BASE_MS);
    ck_assert_uint_eq(rbx_retry_delay_ms(2, -1, 0), 2 * RBX_RETRY_BASE_MS);
    ck_assert_uint_eq(rbx_retry_delay_ms(3, -1, 0), 4 * RBX_RETRY_BASE_MS);
    ck_assert_uint_eq(rbx_retry_delay_ms(30, -1, 0), RBX_RETRY_CAP_MS);
    ck_assert_uint_eq(rbx_retry_delay_ms(1000, -1, 0), RBX_RETRY_CAP_MS);
    ck_assert_uint_eq(rbx_retry_delay_ms(1, -1, 1), RBX_RETRY_BASE_MS + RBX_RETRY_BASE_MS / 4);
    ck_assert_uint_eq(rbx_retry_delay_ms(1, -1, 7), RBX_RETRY_BASE_MS + RBX_RETRY_BASE_MS / 4);
    ck_assert_uint_eq(rbx_retry_delay_ms(1, -1, -3), RBX_RETRY_BASE_MS);
    /* Retry-After wins, within reason. */
    ck_assert_uint_eq(rbx_retry_delay_ms(1, 3, 0.5), 3000);
    ck_assert_uint_eq(rbx_retry_delay_ms(1, 0, 0.5), 0);
    ck_assert_uint_eq(rbx_retry_delay_ms(1, 100000, 0), RBX_RETRY_AFTER_MAX_S * 1000u);
    /* The whole budget of one request stays well under a minute. */
    unsigned total = 0;
    for (unsigned a = 1; a < RBX_RETRY_ATTEMPTS; a++)
        total += rbx_retry_delay_ms(a, -1, 1);
    ck_assert_uint_lt(total, 30000);
    ck_assert_int_eq(rbx_retry_after_parse("5"), 5);
    ck_assert_int_eq(rbx_retry_after_parse(" 120 "), 120);
    ck_assert_int_eq(rbx_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
    ck_assert_int_eq(rbx_retry_after_parse(""), -1);
    ck_assert_int_eq(rbx_retry_after_parse(NULL), -1);
    ck_assert_int_eq(rbx_retry_after_parse("99999999999999"), -1);
}
END_TEST

static struct rbx_registry *open_reg(struct srv *s, const char *creds, struct rbx_error **err)
{
    struct rbx_ref ref;
    _cleanup_free_ char *r = rbx_xasprintf("docker://127.0.0.1:%d/team/app:1", s->port);
    ck_assert_int_eq(rbx_ref_parse(r, &ref, err), 0);
    struct rbx_registry_opts o = {.tls_insecure = true, .creds = creds};
    struct rbx_registry *reg = NULL;
    int rc = rbx_registry_open(&ref, &o, &reg, err);
    rbx_ref_clear(&ref);
    return rc < 0 ? NULL : reg;
}

/* ---- Basic auth, manifest checks ------------------------------------------------------------- */

#define MANIFEST                                                                                   \
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","           \
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"           \
    "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\",\"size\":2},"     \
    "\"layers\":[]}"

static void basic_handler(struct srv *s, int fd, const char *req)
{
    /* "u:p" */
    if (!strstr(req, "Authorization: Basic dTpw")) {
        respond(fd, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"test\"\r\n", "{}", 2);
        return;
    }
    if (strstr(req, "/v2/team/app/manifests/bad-digest")) {
        respond(fd, "200 OK",
                "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                "Docker-Content-Digest: sha256:1111111111111111111111111111111111111111111111111111"
                "111111111111\r\n",
                MANIFEST, strlen(MANIFEST));
    } else if (strstr(req, "/v2/team/app/manifests/huge")) {
        size_t n = RBX_MANIFEST_MAX + 10;
        char *big = rbx_xmalloc(n);
        memset(big, ' ', n);
        respond(fd, "200 OK", "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", big,
                n);
        free(big);
    } else if (strstr(req, "/v2/team/app/manifests/")) {
        respond(fd, "200 OK", "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                MANIFEST, strlen(MANIFEST));
    } else if (strstr(req, "GET /v2/ ")) {
        respond(fd, "200 OK", NULL, "{}", 2);
    } else {
        respond(fd, "404 Not Found", NULL,
                "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"nope\"}]}", 52);
    }
}

START_TEST(test_client_basic_auth_and_manifests)
{
    struct srv *s = srv_start(basic_handler);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_registry *reg = open_reg(s, "u:p", &err);
    ck_assert_msg(reg != NULL, "%s", err ? err->message : "");
    struct rbx_fetched f;
    ck_assert_int_eq(rbx_registry_get_manifest(reg, "1", &f, &err), 0);
    ck_assert_int_eq(f.media, RBX_MEDIA_OCI_MANIFEST);
    char want[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(MANIFEST, strlen(MANIFEST), want);
    ck_assert_str_eq(f.digest, want);
    rbx_fetched_clear(&f);
    /* Asked by digest: the content must hash to it. */
    ck_assert_int_eq(rbx_registry_get_manifest(reg, want, &f, &err), 0);
    rbx_fetched_clear(&f);
    const char *other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    ck_assert_int_lt(rbx_registry_get_manifest(reg, other, &f, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "digest mismatch");
    rbx_error_free(TAKE_PTR(err));
    /* A Docker-Content-Digest that disagrees with the bytes. */
    ck_assert_int_lt(rbx_registry_get_manifest(reg, "bad-digest", &f, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "the registry says its digest is");
    rbx_error_free(TAKE_PTR(err));
    /* Over the bound: refused while streaming. */
    ck_assert_int_lt(rbx_registry_get_manifest(reg, "huge", &f, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, "larger than");
    rbx_error_free(TAKE_PTR(err));
    rbx_registry_free(reg);
    /* The first /v2/ went out without credentials, then with them. */
    ck_assert_int_ge(srv_count(s, "GET /v2/ ", NULL), 2);

    /* Wrong credentials: one clear refusal, the password nowhere. */
    reg = open_reg(s, "u:wrong-secret", &err);
    ck_assert_ptr_null(reg);
    ck_assert_error(err, RBX_ERR_AUTH, "refused the credentials from --creds");
    ck_assert_ptr_null(strstr(err->message, "wrong-secret"));
    rbx_error_free(TAKE_PTR(err));
    /* None at all. */
    setenv("HOME", "/nonexistent", 1);
    unsetenv("REGISTRY_AUTH_FILE");
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("DOCKER_CONFIG");
    reg = open_reg(s, NULL, &err);
    ck_assert_ptr_null(reg);
    ck_assert_error(err, RBX_ERR_AUTH, "authentication required");
    srv_stop(s);
}
END_TEST

/* ---- blobs: redirects, retries, resumption --------------------------------------------------- */

static void storage_handler(struct srv *s, int fd, const char *req)
{
    respond(fd, "200 OK", "Content-Type: application/octet-stream\r\n", s->blob, s->blob_len);
}

/* /v2/ open; blobs: a 503 first, then a redirect to the other server. */
static void redirect_handler(struct srv *s, int fd, const char *req)
{
    if (!strstr(req, "Authorization: Basic dTpw")) {
        respond(fd, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"test\"\r\n", NULL, 0);
        return;
    }
    if (strstr(req, "GET /v2/ ")) {
        respond(fd, "200 OK", NULL, "{}", 2);
        return;
    }
    if (s->step++ == 0) {
        respond(fd, "503 Service Unavailable", "Retry-After: 0\r\n", NULL, 0);
        return;
    }
    char loc[256];
    snprintf(loc, sizeof(loc), "Location: http://127.0.0.1:%d/storage/blob?sig=SECRET\r\n",
             s->other_port);
    respond(fd, "307 Temporary Redirect", loc, NULL, 0);
}

static int fetch_into(struct rbx_registry *reg, const char *digest, int64_t size, int fd,
                      uint64_t have, struct rbx_blob_fetch *out, struct rbx_error **err)
{
    _cleanup_(rbx_registry_conn_freep) struct rbx_registry_conn *c = rbx_registry_conn_new(reg);
    struct rbx_blob_fetch f = {.digest = digest, .size = size, .fd = fd, .hash = rbx_sha256_new()};
    if (have) {
        char buf[65536];
        ssize_t n = pread(fd, buf, have, 0);
        ck_assert_int_eq(n, (ssize_t)have);
        rbx_sha256_update(f.hash, buf, have);
        f.have = have;
        lseek(fd, (off_t)have, SEEK_SET);
    }
    int r = rbx_registry_get_blob(c, &f, err);
    rbx_sha256_free(f.hash);
    f.hash = NULL;
    *out = f;
    return r;
}

static char *make_blob(size_t n)
{
    char *b = rbx_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(i * 7 + i / 251);
    return b;
}

START_TEST(test_blob_redirect_keeps_authorization_home)
{
    struct srv *storage = srv_start(storage_handler);
    struct srv *s = srv_start(redirect_handler);
    s->other_port = storage->port;
    _cleanup_free_ char *blob = make_blob(50001); /* one spare byte: "other bytes" below */
    storage->blob = blob;
    storage->blob_len = 50000;
    char digest[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(blob, 50000, digest);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_registry *reg = open_reg(s, "u:p", &err);
    ck_assert_msg(reg != NULL, "%s", err ? err->message : "");
    _cleanup_free_ char *dir = tl_mkdtemp();
    _cleanup_free_ char *path = rbx_xasprintf("%s/blob", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct rbx_blob_fetch f;
    ck_assert_msg(fetch_into(reg, digest, 50000, fd, 0, &f, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_uint_eq(f.have, 50000);
    /* The 503 was retried; the storage server never saw the registry's credentials. */
    ck_assert_int_eq(srv_count(s, "/blobs/", NULL), 2);
    ck_assert_int_eq(srv_count(storage, "/storage/blob", NULL), 1);
    ck_assert_int_eq(srv_count(storage, "/storage/blob", "Authorization:"), 0);
    ck_assert_int_eq(srv_count(s, "/blobs/", "Authorization: Basic"), 2);

    /* The wrong size from storage: refused, naming the blob, never the signed URL. */
    storage->blob_len = 40000;
    s->step = 1;
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    lseek(fd, 0, SEEK_SET);
    ck_assert_int_lt(fetch_into(reg, digest, 50000, fd, 0, &f, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, digest);
    rbx_error_free(TAKE_PTR(err));
    storage->blob_len = 50000;
    storage->blob = blob + 1; /* same size, other bytes */
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    lseek(fd, 0, SEEK_SET);
    ck_assert_int_lt(fetch_into(reg, digest, 50000, fd, 0, &f, &err), 0);
    ck_assert_error(err, RBX_ERR_DIGEST, "digest mismatch");
    ck_assert_ptr_null(strstr(err->message, "SECRET"));
    close(fd);
    rbx_registry_free(reg);
    srv_stop(s);
    srv_stop(storage);
    tl_rm_rf(dir);
}
END_TEST

/* /v2/ anonymous; the first blob GET is cut after half the bytes, the next must ask for the
 * rest with Range and gets a 206. */
static void cut_handler(struct srv *s, int fd, const char *req)
{
    if (strstr(req, "GET /v2/ ")) {
        respond(fd, "200 OK", NULL, "{}", 2);
        return;
    }
    const char *range = strcasestr(req, "\r\nRange: bytes=");
    if (!range) {
        if (s->step++ == 0) {
            /* Promise everything, send half, hang up. */
            char head[256];
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                     s->blob_len);
            send_all(fd, head, strlen(head));
            send_all(fd, s->blob, s->blob_len / 2);
            return;
        }
        respond(fd, "200 OK", NULL, s->blob, s->blob_len);
        return;
    }
    unsigned long long from = strtoull(range + 15, NULL, 10);
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Content-Range: bytes %llu-%zu/%zu\r\n", from, s->blob_len - 1,
             s->blob_len);
    respond(fd, "206 Partial Content", hdr, s->blob + from, s->blob_len - from);
}

START_TEST(test_blob_resumes_with_range_after_a_cut)
{
    struct srv *s = srv_start(cut_handler);
    size_t n = 300000;
    _cleanup_free_ char *blob = make_blob(n);
    s->blob = blob;
    s->blob_len = n;
    char digest[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(blob, n, digest);
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_registry *reg = open_reg(s, NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err ? err->message : "");
    _cleanup_free_ char *dir = tl_mkdtemp();
    _cleanup_free_ char *path = rbx_xasprintf("%s/blob", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct rbx_blob_fetch f;
    ck_assert_msg(fetch_into(reg, digest, (int64_t)n, fd, 0, &f, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_uint_eq(f.have, n);
    ck_assert_uint_eq(f.resumed_from, n / 2);
    ck_assert_int_eq(srv_count(s, "/blobs/", "Range: bytes=150000-"), 1);

    /* Bytes a previous run left: hashed again, only the rest asked for. */
    ck_assert_int_eq(ftruncate(fd, 1000), 0);
    ck_assert_int_eq(fetch_into(reg, digest, (int64_t)n, fd, 1000, &f, &err), 0);
    ck_assert_uint_eq(f.downloaded, n - 1000);
    ck_assert_int_eq(srv_count(s, "/blobs/", "Range: bytes=1000-"), 1);

    /* Leftovers that are wrong: the digest fails once, the blob is fetched again from zero. */
    ck_assert_int_eq(ftruncate(fd, 0), 0);
    ck_assert_int_eq(pwrite(fd, "garbage!", 8, 0), 8);
    ck_assert_int_eq(fetch_into(reg, digest, (int64_t)n, fd, 8, &f, &err), 0);
    ck_assert_uint_eq(f.have, n);
    close(fd);
    rbx_registry_free(reg);
    srv_stop(s);
    tl_rm_rf(dir);
}
END_TEST

/* Bearer: /v2/ sends to the token endpoint (the same server), which hands out "t1", "t2"...
 * A token is good for one blob GET, then expired (401). */
static void bearer_handler(struct srv *s, int fd, const char *req)
{
    char challenge[256];
    snprintf(challenge, sizeof(challenge),
             "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"svc\"\r\n",
             s->port);
    if (strstr(req, "GET /token?")) {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"token\":\"t%d\",\"expires_in\":60}", ++s->step);
        respond(fd, "200 OK", "Content-Type: application/json\r\n", body, (size_t)n);
        return;
    }
    const char *auth = strcasestr(req, "\r\nAuthorization: Bearer t");
    if (!auth) {
        respond(fd, "401 Unauthorized", challenge, NULL, 0);
        return;
    }
    if (strstr(req, "GET /v2/ ")) {
        respond(fd, "200 OK", NULL, "{}", 2);
        return;
    }
    int t = atoi(auth + strlen("\r\nAuthorization: Bearer t"));
    if (t < 1 || t > 30 || (s->other_port & (1 << t))) {
        respond(fd, "401 Unauthorized", challenge, NULL, 0);
        return;
    }
    s->other_port |= 1 << t; /* used: expired from now on */
    respond(fd, "200 OK", NULL, s->blob, s->blob_len);
}

START_TEST(test_bearer_token_refreshed_when_refused)
{
    struct srv *s = srv_start(bearer_handler);
    _cleanup_free_ char *blob = make_blob(1000);
    s->blob = blob;
    s->blob_len = 1000;
    char digest[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(blob, 1000, digest);
    _cleanup_error_ struct rbx_error *err = NULL;
    /* Over plain http the token server gets no credentials: go anonymous. */
    struct rbx_registry *reg = open_reg(s, NULL, &err);
    ck_assert_msg(reg != NULL, "%s", err ? err->message : "");
    _cleanup_free_ char *dir = tl_mkdtemp();
    _cleanup_free_ char *path = rbx_xasprintf("%s/blob", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    /* Five blobs in a row, each after its token expired: a refusal after a success is an
     * expiry, not a final no. */
    for (int i = 0; i < 5; i++) {
        struct rbx_blob_fetch f;
        ck_assert_int_eq(ftruncate(fd, 0), 0);
        lseek(fd, 0, SEEK_SET);
        ck_assert_msg(fetch_into(reg, digest, 1000, fd, 0, &f, &err) == 0, "blob %d: %s", i,
                      err ? err->message : "");
    }
    ck_assert_int_eq(
        srv_count(s, "GET /token?scope=repository%3Ateam%2Fapp%3Apull&service=svc", NULL), 5);
    ck_assert_int_eq(srv_count(s, "/token", "Authorization:"), 0);
    close(fd);
    rbx_registry_free(reg);
    srv_stop(s);
    tl_rm_rf(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_registry");
    TCase *tc = tcase_create("retry");
    tcase_add_test(tc, test_retry_classify);
    tcase_add_test(tc, test_retry_backoff);
    suite_add_tcase(s, tc);
    tc = tcase_create("client");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_client_basic_auth_and_manifests);
    tcase_add_test(tc, test_blob_redirect_keeps_authorization_home);
    tcase_add_test(tc, test_blob_resumes_with_range_after_a_cut);
    tcase_add_test(tc, test_bearer_token_refreshed_when_refused);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
