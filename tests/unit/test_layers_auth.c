/* test_layers_auth.c — auth.c: --creds, docker config.json / containers auth.json lookups (keys,
 * namespaces, helpers, identity tokens), the files searched, WWW-Authenticate, base64. Errors
 * must never carry a secret. */
#include "layers/registry-internal.h"
#include "layers_testlib.h"
#include "rbx_check.h"

#include <string.h>
#include <sys/stat.h>

/* "alice:s3cret" */
#define ALICE "YWxpY2U6czNjcmV0"

static int lookup(const char *json, const char *registry, const char *repo, struct rbx_creds *c,
                  struct rbx_error **err)
{
    return rbx_auth_file_lookup(json, strlen(json), "config.json", registry, repo, c, err);
}

START_TEST(test_creds_flag)
{
    struct rbx_creds c;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_creds_parse("alice:pa:ss", &c, &err), 0);
    ck_assert_str_eq(c.username, "alice");
    ck_assert_str_eq(c.password, "pa:ss");
    ck_assert_str_eq(c.source, "--creds");
    rbx_creds_clear(&c);
    const char *bad[] = {"alice", ":pass", ""};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(bad); i++) {
        _cleanup_error_ struct rbx_error *e = NULL;
        ck_assert_int_lt(rbx_creds_parse(bad[i], &c, &e), 0);
        ck_assert_error(e, RBX_ERR_USAGE, "--creds");
    }
}
END_TEST

START_TEST(test_auth_file_keys)
{
    struct rbx_creds c;
    struct rbx_error *err = NULL;
    /* A bare host, with a port. */
    ck_assert_int_eq(lookup("{\"auths\":{\"reg.io:5000\":{\"auth\":\"" ALICE "\"}}}", "reg.io:5000",
                            "app", &c, &err),
                     1);
    ck_assert_str_eq(c.username, "alice");
    ck_assert_str_eq(c.password, "s3cret");
    ck_assert_str_eq(c.source, "config.json");
    rbx_creds_clear(&c);
    /* Another port is another registry. */
    ck_assert_int_eq(
        lookup("{\"auths\":{\"reg.io:5000\":{\"auth\":\"" ALICE "\"}}}", "reg.io", "app", &c, &err),
        0);
    /* Docker's URL keys, Docker Hub under any of its names. */
    ck_assert_int_eq(lookup("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"" ALICE
                            "\"}}}",
                            "docker.io", "library/node", &c, &err),
                     1);
    ck_assert_str_eq(c.username, "alice");
    rbx_creds_clear(&c);
    ck_assert_int_eq(lookup("{\"auths\":{\"http://reg.io/v2/\":{\"auth\":\"" ALICE "\"}}}",
                            "reg.io", "a/b", &c, &err),
                     1);
    rbx_creds_clear(&c);
}
END_TEST

START_TEST(test_auth_file_namespaces_most_specific_wins)
{
    /* "bob:other" */
    const char *json = "{\"auths\":{"
                       "\"reg.io\":{\"auth\":\"Ym9iOm90aGVy\"},"
                       "\"reg.io/team\":{\"auth\":\"" ALICE "\"},"
                       "\"reg.io/team/app/x\":{\"auth\":\"Ym9iOm90aGVy\"}}}";
    struct rbx_creds c;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(lookup(json, "reg.io", "team/app", &c, &err), 1);
    ck_assert_str_eq(c.username, "alice");
    rbx_creds_clear(&c);
    ck_assert_int_eq(lookup(json, "reg.io", "teamwork/app", &c, &err), 1);
    ck_assert_str_eq(c.username, "bob"); /* "team" is no prefix of "teamwork" */
    rbx_creds_clear(&c);
    ck_assert_int_eq(lookup(json, "reg.io", "other", &c, &err), 1);
    ck_assert_str_eq(c.username, "bob");
    rbx_creds_clear(&c);
}
END_TEST

START_TEST(test_auth_file_helpers_are_named_not_run)
{
    struct rbx_creds c;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(
        lookup("{\"auths\":{\"reg.io\":{}},\"credHelpers\":{\"reg.io\":\"ecr-login\"}}", "reg.io",
               "app", &c, &err),
        1);
    ck_assert_ptr_null(c.username);
    ck_assert_ptr_nonnull(strstr(c.unusable, "credential helper \"ecr-login\""));
    rbx_creds_clear(&c);
    /* credsStore covers registries without an inline entry; an inline auth still wins. */
    ck_assert_int_eq(lookup("{\"credsStore\":\"desktop\"}", "docker.io", "library/x", &c, &err), 1);
    ck_assert_ptr_nonnull(strstr(c.unusable, "credential store \"desktop\""));
    rbx_creds_clear(&c);
    ck_assert_int_eq(lookup("{\"credsStore\":\"desktop\",\"auths\":{\"reg.io\":{\"auth\":\"" ALICE
                            "\"}}}",
                            "reg.io", "app", &c, &err),
                     1);
    ck_assert_str_eq(c.username, "alice");
    rbx_creds_clear(&c);
    ck_assert_int_eq(
        lookup("{\"auths\":{\"reg.io\":{\"identitytoken\":\"tok\"}}}", "reg.io", "app", &c, &err),
        1);
    ck_assert_ptr_nonnull(strstr(c.unusable, "identity token"));
    rbx_creds_clear(&c);
    ck_assert_int_eq(lookup("{}", "reg.io", "app", &c, &err), 0);
}
END_TEST

START_TEST(test_auth_file_errors_never_show_secrets)
{
    struct {
        const char *json, *needle;
    } cases[] = {
        /* not base64 */
        {"{\"auths\":{\"reg.io\":{\"auth\":\"s3cret!!\"}}}", "auths.\"reg.io\".auth: not base64"},
        /* base64 of "s3cret" with no ':' */
        {"{\"auths\":{\"reg.io\":{\"auth\":\"czNjcmV0\"}}}", "expected base64 of USER:PASSWORD"},
        /* broken JSON right after a secret: jansson would quote it */
        {"{\"auths\":{\"reg.io\":{\"auth\":\"s3cret\" x}}}", "config.json:1:"},
        {"{\"auths\":[]}", "auths: expected an object"},
        {"{\"auths\":{\"reg.io\":{\"auth\":5}}}", "auth: expected a string"},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        struct rbx_creds c;
        _cleanup_error_ struct rbx_error *err = NULL;
        ck_assert_int_lt(lookup(cases[i].json, "reg.io", "app", &c, &err), 0);
        ck_assert_error(err, RBX_ERR_MALFORMED, cases[i].needle);
        ck_assert_msg(!strstr(err->message, "s3cret") && !strstr(err->message, "czNjcmV0"),
                      "secret in \"%s\"", err->message);
    }
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_auth_find_order)
{
    _cleanup_free_ char *dir = tl_mkdtemp();
    _cleanup_free_ char *home = rbx_xasprintf("%s/home", dir),
                        *docker = rbx_xasprintf("%s/.docker", home),
                        *xdg = rbx_xasprintf("%s/xdg", dir),
                        *containers = rbx_xasprintf("%s/containers", xdg),
                        *authfile = rbx_xasprintf("%s/auth.json", dir),
                        *podman = rbx_xasprintf("%s/auth.json", containers),
                        *dockercfg = rbx_xasprintf("%s/config.json", docker);
    ck_assert_int_eq(mkdir(home, 0700), 0);
    ck_assert_int_eq(mkdir(docker, 0700), 0);
    ck_assert_int_eq(mkdir(xdg, 0700), 0);
    ck_assert_int_eq(mkdir(containers, 0700), 0);
    setenv("HOME", home, 1);
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    unsetenv("DOCKER_CONFIG");
    unsetenv("REGISTRY_AUTH_FILE");
    struct rbx_creds c;
    struct rbx_error *err = NULL;

    /* Nothing anywhere: anonymous. */
    ck_assert_int_eq(rbx_auth_find("reg.io", "app", &c, &err), 0);
    ck_assert_ptr_null(c.username);
    ck_assert_ptr_null(c.unusable);

    /* "bob:docker", "carol:podman", "dave:file" */
    write_file(dockercfg, "{\"auths\":{\"reg.io\":{\"auth\":\"Ym9iOmRvY2tlcg==\"}}}");
    ck_assert_int_eq(rbx_auth_find("reg.io", "app", &c, &err), 0);
    ck_assert_str_eq(c.username, "bob");
    ck_assert_str_eq(c.source, dockercfg);
    rbx_creds_clear(&c);
    write_file(podman, "{\"auths\":{\"reg.io\":{\"auth\":\"Y2Fyb2w6cG9kbWFu\"}}}");
    ck_assert_int_eq(rbx_auth_find("reg.io", "app", &c, &err), 0);
    ck_assert_str_eq(c.username, "carol");
    rbx_creds_clear(&c);
    write_file(authfile, "{\"auths\":{\"reg.io\":{\"auth\":\"ZGF2ZTpmaWxl\"}}}");
    setenv("REGISTRY_AUTH_FILE", authfile, 1);
    ck_assert_int_eq(rbx_auth_find("reg.io", "app", &c, &err), 0);
    ck_assert_str_eq(c.username, "dave");
    ck_assert_str_eq(c.password, "file");
    rbx_creds_clear(&c);

    /* A helper in the first file does not hide credentials in a later one. */
    write_file(authfile, "{\"credHelpers\":{\"reg.io\":\"pass\"}}");
    ck_assert_int_eq(rbx_auth_find("reg.io", "app", &c, &err), 0);
    ck_assert_str_eq(c.username, "carol");
    rbx_creds_clear(&c);
    unlink(podman);
    unlink(dockercfg);
    ck_assert_int_eq(rbx_auth_find("reg.io", "app", &c, &err), 0);
    ck_assert_ptr_null(c.username);
    ck_assert_ptr_nonnull(strstr(c.unusable, "credential helper \"pass\""));
    rbx_creds_clear(&c);

    /* DOCKER_CONFIG names the directory of config.json. */
    unsetenv("REGISTRY_AUTH_FILE");
    setenv("DOCKER_CONFIG", dir, 1);
    _cleanup_free_ char *alt = rbx_xasprintf("%s/config.json", dir);
    write_file(alt, "{\"auths\":{\"reg.io\":{\"auth\":\"" ALICE "\"}}}");
    ck_assert_int_eq(rbx_auth_find("reg.io", "app", &c, &err), 0);
    ck_assert_str_eq(c.username, "alice");
    rbx_creds_clear(&c);
    tl_rm_rf(dir);
}
END_TEST

static void challenge_ok(const char *h, enum rbx_auth_scheme scheme, const char *realm,
                         const char *service, const char *scope)
{
    struct rbx_challenge c;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_challenge_parse(h, &c, &err) == 0, "%s: %s", h, err ? err->message : "");
    ck_assert_int_eq(c.scheme, scheme);
    if (realm)
        ck_assert_str_eq(c.realm, realm);
    else
        ck_assert_ptr_null(c.realm);
    if (service)
        ck_assert_str_eq(c.service, service);
    else
        ck_assert_ptr_null(c.service);
    if (scope)
        ck_assert_str_eq(c.scope, scope);
    else
        ck_assert_ptr_null(c.scope);
    rbx_challenge_clear(&c);
}

START_TEST(test_www_authenticate)
{
    challenge_ok("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                 "scope=\"repository:library/node:pull\"",
                 RBX_AUTH_BEARER, "https://auth.docker.io/token", "registry.docker.io",
                 "repository:library/node:pull");
    /* Case, spaces, unquoted tokens, unknown params, a scope with a comma inside quotes. */
    challenge_ok("bearer  Realm = \"https://r/t\" , error=\"insufficient_scope\", "
                 "scope=\"repository:a:pull,push\", foo=bar",
                 RBX_AUTH_BEARER, "https://r/t", NULL, "repository:a:pull,push");
    challenge_ok("Basic realm=\"Registry Realm\"", RBX_AUTH_BASIC, "Registry Realm", NULL, NULL);
    challenge_ok("Basic realm=x", RBX_AUTH_BASIC, "x", NULL, NULL);
    challenge_ok("Basic", RBX_AUTH_BASIC, NULL, NULL, NULL);
    /* Escapes in quoted strings. */
    challenge_ok("Bearer realm=\"https://r/t?a=\\\"b\\\"\"", RBX_AUTH_BEARER, "https://r/t?a=\"b\"",
                 NULL, NULL);
    /* Two challenges in one value: Bearer is preferred. */
    challenge_ok("Basic realm=\"x\", Bearer realm=\"https://r/t\",service=\"s\"", RBX_AUTH_BEARER,
                 "https://r/t", "s", NULL);
    challenge_ok("Negotiate abc==, Basic realm=\"x\"", RBX_AUTH_BASIC, "x", NULL, NULL);
}
END_TEST

START_TEST(test_www_authenticate_bad)
{
    struct {
        const char *h;
        enum rbx_error_kind kind;
        const char *needle;
    } cases[] = {
        {"Negotiate", RBX_ERR_UNSUPPORTED, "\"Negotiate\""},
        {"", RBX_ERR_UNSUPPORTED, "\"?\""},
        {"Bearer service=\"s\"", RBX_ERR_MALFORMED, "without a realm"},
        {"Bearer realm=\"https://unterminated", RBX_ERR_MALFORMED, "malformed"},
        {"Bearer realm=\"a\" service=\"b\"", RBX_ERR_MALFORMED, "malformed"},
        {"Bearer realm=", RBX_ERR_MALFORMED, "malformed"},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        struct rbx_challenge c;
        _cleanup_error_ struct rbx_error *err = NULL;
        ck_assert_msg(rbx_challenge_parse(cases[i].h, &c, &err) < 0, "%s parsed", cases[i].h);
        ck_assert_error(err, cases[i].kind, cases[i].needle);
    }
}
END_TEST

START_TEST(test_base64)
{
    const char *plain[] = {"", "a", "ab", "abc", "abcd", "alice:s3cret", "\xff\x00\x10"};
    size_t lens[] = {0, 1, 2, 3, 4, 12, 3};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(plain); i++) {
        _cleanup_free_ char *enc = rbx_base64_encode(plain[i], lens[i]);
        _cleanup_free_ char *dec = NULL;
        size_t n = 0;
        ck_assert_int_eq(rbx_base64_decode(enc, strlen(enc), &dec, &n), 0);
        ck_assert_uint_eq(n, lens[i]);
        ck_assert_int_eq(memcmp(dec, plain[i], n), 0);
    }
    _cleanup_free_ char *e = rbx_base64_encode("alice:s3cret", 12);
    ck_assert_str_eq(e, ALICE);
    const char *bad[] = {"abc", "ab=c", "a===", "=abc", "ab!c", "YQ==YQ=="};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(bad); i++) {
        char *out = NULL;
        ck_assert_msg(rbx_base64_decode(bad[i], strlen(bad[i]), &out, NULL) < 0, "%s decoded",
                      bad[i]);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_auth");
    TCase *tc = tcase_create("auth");
    tcase_add_test(tc, test_creds_flag);
    tcase_add_test(tc, test_auth_file_keys);
    tcase_add_test(tc, test_auth_file_namespaces_most_specific_wins);
    tcase_add_test(tc, test_auth_file_helpers_are_named_not_run);
    tcase_add_test(tc, test_auth_file_errors_never_show_secrets);
    tcase_add_test(tc, test_auth_find_order);
    tcase_add_test(tc, test_www_authenticate);
    tcase_add_test(tc, test_www_authenticate_bad);
    tcase_add_test(tc, test_base64);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
