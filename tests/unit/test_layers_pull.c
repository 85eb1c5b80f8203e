/* test_layers_pull.c — pull.c: the pull policy, images pulled from a scripted registry on
 * loopback into a store, opened again offline from refs/, by digest without a record, platform
 * selection in an index, and a corrupted layer that publishes nothing. */
#include "layers/registry-internal.h"
#include "layers_testlib.h"
#include "rbx_check.h"
#include "testsrv.h"

#include <string.h>
#include <sys/stat.h>

/* ---- an image served by name ----------------------------------------------------------------- */

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"

struct object {
    char *path; /* after /v2/test/app/: "manifests/1", "blobs/sha256:..." */
    char *body;
    size_t len;
    const char *type;
};

struct served {
    struct object obj[16];
    size_t n;
    bool corrupt_layer; /* the same size, one byte changed */
    char layer[RBX_DIGEST_LEN + 1], manifest[RBX_DIGEST_LEN + 1], arm[RBX_DIGEST_LEN + 1],
        index[RBX_DIGEST_LEN + 1];
};

static void serve(struct served *sv, const char *path, const char *body, size_t len,
                  const char *type)
{
    struct object *o = &sv->obj[sv->n++];
    o->path = rbx_xstrdup(path);
    o->body = rbx_xmalloc(len + 1);
    memcpy(o->body, body, len);
    o->len = len;
    o->type = type;
}

/* A blob served under its digest; the digest into out. */
static void serve_blob(struct served *sv, const char *body, size_t len,
                       char out[RBX_DIGEST_LEN + 1])
{
    rbx_sha256_buf(body, len, out);
    _cleanup_free_ char *p = rbx_xasprintf("blobs/%s", out);
    serve(sv, p, body, len, "application/octet-stream");
}

static void served_clear(struct served *sv)
{
    for (size_t i = 0; i < sv->n; i++) {
        free(sv->obj[i].path);
        free(sv->obj[i].body);
    }
}

static void image_handler(struct srv *s, int fd, const char *req)
{
    struct served *sv = s->data;
    if (strncmp(req, "GET /v2/ ", 9) == 0) {
        respond(fd, "200 OK", NULL, "{}", 2);
        return;
    }
    static const char prefix[] = "GET /v2/test/app/";
    const char *sp = strchr(req + sizeof(prefix) - 1, ' ');
    if (strncmp(req, prefix, sizeof(prefix) - 1) == 0 && sp) {
        size_t n = (size_t)(sp - req) - (sizeof(prefix) - 1);
        for (size_t i = 0; i < sv->n; i++) {
            const struct object *o = &sv->obj[i];
            if (strlen(o->path) != n || strncmp(o->path, req + sizeof(prefix) - 1, n) != 0)
                continue;
            char hdr[160];
            snprintf(hdr, sizeof(hdr), "Content-Type: %s\r\n", o->type);
            if (sv->corrupt_layer && strncmp(o->path, "blobs/", 6) == 0 &&
                strcmp(o->path + 6, sv->layer) == 0) {
                _cleanup_free_ char *bad = rbx_xmalloc(o->len);
                memcpy(bad, o->body, o->len);
                bad[o->len / 2] ^= 0x55;
                respond(fd, "200 OK", hdr, bad, o->len);
                return;
            }
            respond(fd, "200 OK", hdr, o->body, o->len);
            return;
        }
    }
    respond(fd, "404 Not Found", NULL, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}", 40);
}

static char *manifest_json(const char *config, size_t config_len, const char *layer,
                           size_t layer_len)
{
    return rbx_xasprintf(
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
        "\"digest\":\"%s\",\"size\":%zu},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
        "\"digest\":\"%s\",\"size\":%zu}]}",
        config, config_len, layer, layer_len);
}

/* Tag "1": one amd64 image of one gzip layer. Tag "multi": an index of it and an arm64 image. */
static void make_image(struct served *sv)
{
    struct tl_tar *t = tl_tar_new();
    tl_tar_file(t, "hello", "pulled\n", 0644);
    size_t tlen, glen;
    _cleanup_free_ char *tar = tl_tar_finish(t, &tlen);
    _cleanup_free_ char *gz = tl_gzip(tar, tlen, &glen);
    char diff_id[RBX_DIGEST_LEN + 1], cfg_dg[RBX_DIGEST_LEN + 1], arm_cfg_dg[RBX_DIGEST_LEN + 1];
    rbx_sha256_buf(tar, tlen, diff_id);
    serve_blob(sv, gz, glen, sv->layer);
    char *ids[] = {diff_id, NULL};
    _cleanup_free_ char *cfg = tl_config_json(ids);
    serve_blob(sv, cfg, strlen(cfg), cfg_dg);
    _cleanup_free_ char *m = manifest_json(cfg_dg, strlen(cfg), sv->layer, glen);
    rbx_sha256_buf(m, strlen(m), sv->manifest);
    serve(sv, "manifests/1", m, strlen(m), MT_MANIFEST);
    _cleanup_free_ char *mp = rbx_xasprintf("manifests/%s", sv->manifest);
    serve(sv, mp, m, strlen(m), MT_MANIFEST);

    /* The arm64 twin: the same layer, another config. */
    _cleanup_free_ char *acfg = rbx_xstrdup(cfg);
    char *arch = strstr(acfg, "\"amd64\"");
    ck_assert_ptr_nonnull(arch);
    memcpy(arch, "\"arm64\"", 7);
    serve_blob(sv, acfg, strlen(acfg), arm_cfg_dg);
    _cleanup_free_ char *am = manifest_json(arm_cfg_dg, strlen(acfg), sv->layer, glen);
    rbx_sha256_buf(am, strlen(am), sv->arm);
    _cleanup_free_ char *amp = rbx_xasprintf("manifests/%s", sv->arm);
    serve(sv, amp, am, strlen(am), MT_MANIFEST);
    _cleanup_free_ char *idx =
        rbx_xasprintf("{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":["
                      "{\"mediaType\":\"" MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,"
                      "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
                      "{\"mediaType\":\"" MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu,"
                      "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}",
                      sv->manifest, strlen(m), sv->arm, strlen(am));
    rbx_sha256_buf(idx, strlen(idx), sv->index);
    serve(sv, "manifests/multi", idx, strlen(idx), MT_INDEX);
}

/* ---- fixtures -------------------------------------------------------------------------------- */

struct fx {
    struct served sv;
    struct srv *srv;
    int port; /* stays known after the server is stopped */
    char *dir;
    struct rbx_store *store;
};

static void fx_setup(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    make_image(&f->sv);
    f->srv = srv_start(image_handler);
    f->srv->data = &f->sv;
    f->port = f->srv->port;
    f->dir = tl_mkdtemp();
    _cleanup_free_ char *sdir = rbx_xasprintf("%s/store", f->dir);
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_store_open(sdir, &f->store, &err) == 0, "%s", err ? err->message : "");
}

static void fx_teardown(struct fx *f)
{
    if (f->srv)
        srv_stop(f->srv);
    rbx_store_free(f->store);
    tl_rm_rf(f->dir);
    free(f->dir);
    served_clear(&f->sv);
}

static int open_ref(struct fx *f, const char *name, enum rbx_pull_policy policy,
                    const struct rbx_platform *platform, struct rbx_pull_stats *stats,
                    struct rbx_image **img, struct rbx_error **err)
{
    /* The server speaks plain HTTP on loopback: allowed only as "insecure". */
    struct rbx_registry_opts ro = {.tls_insecure = true};
    struct rbx_open_opts o = {
        .platform = platform, .pull = policy, .registry = &ro, .pull_stats = stats};
    _cleanup_free_ char *ref = rbx_xasprintf("docker://127.0.0.1:%d/test/app%s", f->port, name);
    return rbx_image_open(f->store, ref, &o, img, err);
}

static bool stored(struct fx *f, const char *digest)
{
    _cleanup_free_ char *p =
        rbx_xasprintf("%s/store/blobs/sha256/%s", f->dir, rbx_digest_hex(digest));
    struct stat st;
    return stat(p, &st) == 0;
}

static size_t entries(struct fx *f, const char *sub)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/store/%s", f->dir, sub);
    DIR *d = opendir(p);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* ---- tests ----------------------------------------------------------------------------------- */

START_TEST(test_pull_policy_parse)
{
    enum rbx_pull_policy p;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_pull_policy_parse("missing", &p, &err), 0);
    ck_assert_int_eq(p, RBX_PULL_MISSING);
    ck_assert_int_eq(rbx_pull_policy_parse("always", &p, &err), 0);
    ck_assert_int_eq(p, RBX_PULL_ALWAYS);
    ck_assert_int_eq(rbx_pull_policy_parse("never", &p, &err), 0);
    ck_assert_int_eq(p, RBX_PULL_NEVER);
    _cleanup_error_ struct rbx_error *e = NULL;
    ck_assert_int_lt(rbx_pull_policy_parse("sometimes", &p, &e), 0);
    ck_assert_error(e, RBX_ERR_USAGE, "expected missing, always or never");
}
END_TEST

START_TEST(test_pull_missing_then_offline)
{
    struct fx f;
    fx_setup(&f);
    struct rbx_error *err = NULL;
    struct rbx_pull_stats st;
    struct rbx_image *img = NULL;
    ck_assert_msg(open_ref(&f, ":1", RBX_PULL_MISSING, NULL, &st, &img, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert(st.contacted);
    ck_assert_uint_eq(st.layers, 1);
    ck_assert_uint_eq(st.layers_downloaded, 1);
    ck_assert_str_eq(st.manifest_digest, f.sv.manifest);
    ck_assert_str_eq(st.index_digest, "");
    ck_assert_str_eq(st.platform.architecture, "amd64");
    ck_assert_str_eq(img->manifest_digest, f.sv.manifest);
    ck_assert(stored(&f, f.sv.layer));
    ck_assert_uint_eq(entries(&f, "refs"), 1);
    ck_assert_uint_eq(entries(&f, "tmp"), 0);
    /* What was pulled unpacks like any image. */
    ck_assert_msg(rbx_image_unpack(f.store, img, NULL, NULL, &err) == 0, "%s",
                  err ? err->message : "");
    img = rbx_image_free(img);

    /* Offline: the registry gone, the store answers for "missing", by tag and by digest. */
    srv_stop(f.srv);
    ck_assert_int_eq(open_ref(&f, ":1", RBX_PULL_MISSING, NULL, &st, &img, &err), 0);
    ck_assert(!st.contacted);
    ck_assert_uint_eq(st.layers_present, 1);
    img = rbx_image_free(img);
    _cleanup_free_ char *by_digest = rbx_xasprintf("@%s", f.sv.manifest);
    ck_assert_msg(open_ref(&f, by_digest, RBX_PULL_NEVER, NULL, &st, &img, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert(!st.contacted);
    img = rbx_image_free(img);
    /* "never" for what was never pulled. */
    _cleanup_error_ struct rbx_error *e = NULL;
    ck_assert_int_lt(open_ref(&f, ":2", RBX_PULL_NEVER, NULL, &st, &img, &e), 0);
    ck_assert_error(e, RBX_ERR_NOT_FOUND, "not in the store (--pull=never");
    f.srv = NULL;
    fx_teardown(&f);
}
END_TEST

START_TEST(test_pull_always_resolves_again_fetches_nothing_stored)
{
    struct fx f;
    fx_setup(&f);
    struct rbx_error *err = NULL;
    struct rbx_pull_stats st;
    struct rbx_image *img = NULL;
    ck_assert_int_eq(open_ref(&f, ":1", RBX_PULL_ALWAYS, NULL, &st, &img, &err), 0);
    img = rbx_image_free(img);
    int blob_gets = srv_count(f.srv, "/blobs/", NULL);
    ck_assert_int_eq(open_ref(&f, ":1", RBX_PULL_ALWAYS, NULL, &st, &img, &err), 0);
    ck_assert(st.contacted);
    ck_assert_uint_eq(st.layers_downloaded, 0);
    ck_assert_uint_eq(st.layers_present, 1);
    ck_assert_int_eq(srv_count(f.srv, "/blobs/", NULL), blob_gets);
    ck_assert_int_eq(srv_count(f.srv, "/manifests/1", NULL), 2);
    img = rbx_image_free(img);
    fx_teardown(&f);
}
END_TEST

START_TEST(test_pull_index_selects_the_platform)
{
    struct fx f;
    fx_setup(&f);
    struct rbx_error *err = NULL;
    struct rbx_pull_stats st;
    struct rbx_image *img = NULL;
    struct rbx_platform arm;
    ck_assert_int_eq(rbx_platform_parse("linux/arm64", &arm, &err), 0);
    ck_assert_msg(open_ref(&f, ":multi", RBX_PULL_MISSING, &arm, &st, &img, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert_str_eq(st.manifest_digest, f.sv.arm);
    ck_assert_str_eq(st.index_digest, f.sv.index);
    ck_assert_str_eq(img->config.architecture, "arm64");
    img = rbx_image_free(img);
    /* The host's platform from the same stored index: only its manifest and config are new. */
    ck_assert_int_eq(open_ref(&f, ":multi", RBX_PULL_MISSING, NULL, &st, &img, &err), 0);
    ck_assert(st.contacted);
    ck_assert_str_eq(st.manifest_digest, f.sv.manifest);
    ck_assert_uint_eq(st.layers_present, 1);
    img = rbx_image_free(img);
    /* Both in the store now: offline works for either. */
    ck_assert_int_eq(open_ref(&f, ":multi", RBX_PULL_NEVER, &arm, &st, &img, &err), 0);
    ck_assert_str_eq(st.manifest_digest, f.sv.arm);
    img = rbx_image_free(img);
    struct rbx_platform s390x;
    ck_assert_int_eq(rbx_platform_parse("linux/s390x", &s390x, &err), 0);
    _cleanup_error_ struct rbx_error *e = NULL;
    ck_assert_int_lt(open_ref(&f, ":multi", RBX_PULL_ALWAYS, &s390x, &st, &img, &e), 0);
    ck_assert_error(e, RBX_ERR_NOT_FOUND,
                    "no manifest for platform linux/s390x (available: linux/amd64, linux/arm64)");
    fx_teardown(&f);
}
END_TEST

START_TEST(test_pull_corrupted_layer_publishes_nothing)
{
    struct fx f;
    fx_setup(&f);
    f.sv.corrupt_layer = true;
    struct rbx_pull_stats st;
    struct rbx_image *img = NULL;
    _cleanup_error_ struct rbx_error *e = NULL;
    ck_assert_int_lt(open_ref(&f, ":1", RBX_PULL_MISSING, NULL, &st, &img, &e), 0);
    ck_assert_error(e, RBX_ERR_DIGEST, "digest mismatch");
    ck_assert_msg(strstr(e->message, f.sv.layer) != NULL, "%s", e->message);
    ck_assert(!stored(&f, f.sv.layer));
    ck_assert_uint_eq(entries(&f, "refs"), 0);
    ck_assert_uint_eq(entries(&f, "tmp"), 0);
    ck_assert_uint_eq(entries(&f, "locks"), 0);
    /* Served right again, the same store pulls it. */
    f.sv.corrupt_layer = false;
    struct rbx_error *err = NULL;
    ck_assert_msg(open_ref(&f, ":1", RBX_PULL_MISSING, NULL, &st, &img, &err) == 0, "%s",
                  err ? err->message : "");
    ck_assert(stored(&f, f.sv.layer));
    rbx_image_free(img);
    fx_teardown(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_pull");
    TCase *tc = tcase_create("pull");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pull_policy_parse);
    tcase_add_test(tc, test_pull_missing_then_offline);
    tcase_add_test(tc, test_pull_always_resolves_again_fetches_nothing_stored);
    tcase_add_test(tc, test_pull_index_selects_the_platform);
    tcase_add_test(tc, test_pull_corrupted_layer_publishes_nothing);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
