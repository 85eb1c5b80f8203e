/* auth.c — registry credentials: --creds, docker's config.json and containers' auth.json (inline
 * "auth" entries only: no credential helper is ever run), and the WWW-Authenticate challenges
 * that say how to present them. Secrets never reach an error message. */
#include "layers/registry-internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>

void rbx_creds_clear(struct rbx_creds *c)
{
    if (c->password)
        explicit_bzero(c->password, strlen(c->password));
    free(c->username);
    free(c->password);
    free(c->source);
    free(c->unusable);
    memset(c, 0, sizeof(*c));
}

static void creds_clearp(struct rbx_creds *c)
{
    rbx_creds_clear(c);
}

int rbx_creds_parse(const char *s, struct rbx_creds *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--creds: expected USER:PASSWORD");
    out->username = rbx_xstrndup(s, (size_t)(colon - s));
    out->password = rbx_xstrdup(colon + 1);
    out->source = rbx_xstrdup("--creds");
    return 0;
}

/* ---- base64 ------------------------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *rbx_base64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = rbx_xmalloc((len + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < len ? p[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int rbx_base64_decode(const char *s, size_t len, char **out, size_t *outlen)
{
    if (len % 4 != 0)
        return -EINVAL;
    _cleanup_free_ char *buf = rbx_xmalloc(len / 4 * 3 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        bool last = i + 4 == len;
        for (int k = 0; k < 4; k++) {
            v[k] = b64_value(s[i + k]);
            /* '=' only at the very end: "xx==" or "xxx=" */
            if (v[k] < 0 && !(last && s[i + k] == '=' && k >= 2 && (k == 3 || s[i + 3] == '=')))
                return -EINVAL;
        }
        unsigned w = (unsigned)(v[0] << 18 | v[1] << 12 | (v[2] < 0 ? 0 : v[2] << 6) |
                                (v[3] < 0 ? 0 : v[3]));
        buf[n++] = (char)(w >> 16);
        if (v[2] >= 0)
            buf[n++] = (char)(w >> 8 & 255);
        if (v[3] >= 0)
            buf[n++] = (char)(w & 255);
    }
    buf[n] = '\0';
    *out = TAKE_PTR(buf);
    if (outlen)
        *outlen = n;
    return 0;
}

/* ---- auth files ------------------------------------------------------------------------------ */

/* Docker Hub answers to several names; files say any of them. */
static bool is_hub(const char *host, size_t n)
{
    static const char *const names[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(names); i++)
        if (strlen(names[i]) == n && memcmp(host, names[i], n) == 0)
            return true;
    return false;
}

/* How well an auth file key names registry/repository: the matched length (longer is more
 * specific), or 0 when it does not match. "https://host/v1/" style keys name the host alone. */
static size_t key_match(const char *key, const char *registry, const char *repository)
{
    bool url = false;
    if (strncmp(key, "https://", 8) == 0) {
        key += 8;
        url = true;
    } else if (strncmp(key, "http://", 7) == 0) {
        key += 7;
        url = true;
    }
    size_t klen = strlen(key);
    const char *slash = strchr(key, '/');
    size_t hlen = slash ? (size_t)(slash - key) : klen;
    if (url)
        klen = hlen;
    bool host_ok = (hlen == strlen(registry) && memcmp(key, registry, hlen) == 0) ||
                   (strcmp(registry, RBX_DOCKER_HUB) == 0 && is_hub(key, hlen));
    if (!host_ok)
        return 0;
    if (klen == hlen)
        return hlen;
    /* "host/ns[/repo]": a prefix of the repository at a component boundary. */
    const char *path = key + hlen + 1;
    size_t plen = klen - hlen - 1, rlen = strlen(repository);
    if (plen == 0 || plen > rlen || memcmp(path, repository, plen) != 0 ||
        (plen < rlen && repository[plen] != '/'))
        return 0;
    return klen;
}

static int fill_from_entry(const json_t *entry, const char *what, const char *key,
                           struct rbx_creds *out, struct rbx_error **err)
{
    if (!json_is_object(entry))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: auths.\"%.200s\": expected an object", what, key);
    json_t *auth = json_object_get(entry, "auth");
    if (auth && !json_is_string(auth))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "%s: auths.\"%.200s\".auth: expected a string", what, key);
    if (auth && json_string_length(auth) > 0) {
        _cleanup_free_ char *plain = NULL;
        size_t plen = 0;
        if (rbx_base64_decode(json_string_value(auth), json_string_length(auth), &plain, &plen) < 0)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s: auths.\"%.200s\".auth: not base64", what, key);
        char *colon = memchr(plain, ':', plen);
        if (!colon || colon == plain || memchr(plain, '\0', plen)) {
            explicit_bzero(plain, plen);
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s: auths.\"%.200s\".auth: expected base64 of USER:PASSWORD",
                                 what, key);
        }
        out->username = rbx_xstrndup(plain, (size_t)(colon - plain));
        out->password = rbx_xstrndup(colon + 1, plen - (size_t)(colon - plain) - 1);
        explicit_bzero(plain, plen);
        out->source = rbx_xstrdup(what);
        return 1;
    }
    json_t *id = json_object_get(entry, "identitytoken");
    if (json_is_string(id) && json_string_length(id) > 0) {
        out->unusable = rbx_xasprintf("an identity token (%s), which reprobox does not use", what);
        return 1;
    }
    return 0;
}

static int get_helper(const json_t *root, const char *field, const char *key, const char *what,
                      const char **out, struct rbx_error **err)
{
    *out = NULL;
    json_t *v = json_object_get(root, field);
    if (!v || json_is_null(v))
        return 0;
    if (key) {
        if (!json_is_object(v))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: %s: expected an object", what,
                                 field);
        v = json_object_get(v, key);
        if (!v)
            return 0;
    }
    if (!json_is_string(v))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: %s: expected a string", what,
                             field);
    *out = json_string_length(v) ? json_string_value(v) : NULL;
    return 0;
}

int rbx_auth_file_lookup(const char *text, size_t len, const char *what, const char *registry,
                         const char *repository, struct rbx_creds *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    /* Not rbx_json_loadb: jansson quotes the text near an error, and this text holds secrets. */
    json_error_t jerr;
    _cleanup_json_ json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s:%d:%d: not valid JSON", what,
                             jerr.line, jerr.column);
    if (!json_is_object(root))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: expected a JSON object", what);

    /* A helper named for this registry is what docker would use, before any inline entry. */
    const char *helper = NULL;
    int r = get_helper(root, "credHelpers", registry, what, &helper, err);
    if (r < 0)
        return r;
    if (!helper && strcmp(registry, RBX_DOCKER_HUB) == 0) {
        static const char *const hub[] = {"index.docker.io", "registry-1.docker.io",
                                          "https://index.docker.io/v1/"};
        for (size_t i = 0; i < RBX_ARRAY_SIZE(hub) && !helper; i++)
            if ((r = get_helper(root, "credHelpers", hub[i], what, &helper, err)) < 0)
                return r;
    }
    if (helper) {
        out->unusable = rbx_xasprintf("credential helper \"%.100s\" (%s), which reprobox does not "
                                      "run",
                                      helper, what);
        return 1;
    }

    json_t *auths = json_object_get(root, "auths");
    if (auths && !json_is_null(auths) && !json_is_object(auths))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: auths: expected an object", what);
    const char *best_key = NULL;
    json_t *best = NULL;
    size_t best_len = 0;
    const char *k;
    json_t *v;
    json_object_foreach (auths, k, v) {
        size_t m = key_match(k, registry, repository);
        if (m > best_len) {
            best_len = m;
            best_key = k;
            best = v;
        }
    }
    if (best && (r = fill_from_entry(best, what, best_key, out, err)) != 0)
        return r;
    const char *store = NULL;
    if ((r = get_helper(root, "credsStore", NULL, what, &store, err)) < 0)
        return r;
    if (store) {
        out->unusable = rbx_xasprintf(
            "credential store \"%.100s\" (%s), which reprobox does not run", store, what);
        return 1;
    }
    return 0;
}

static char *home_dir(void)
{
    const char *home = getenv("HOME");
    if (home && home[0] == '/')
        return rbx_xstrdup(home);
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_dir[0] == '/')
        return rbx_xstrdup(res->pw_dir);
    return NULL;
}

int rbx_auth_find(const char *registry, const char *repository, struct rbx_creds *out,
                  struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_strv_ char **files = NULL;
    const char *env = getenv("REGISTRY_AUTH_FILE");
    if (env && *env)
        rbx_strv_push(&files, env);
    env = getenv("XDG_RUNTIME_DIR");
    if (env && env[0] == '/')
        rbx_strv_push_take(&files, rbx_xasprintf("%s/containers/auth.json", env));
    env = getenv("DOCKER_CONFIG");
    _cleanup_free_ char *home = home_dir();
    if (env && *env)
        rbx_strv_push_take(&files, rbx_xasprintf("%s/config.json", env));
    else if (home)
        rbx_strv_push_take(&files, rbx_xasprintf("%s/.docker/config.json", home));

    _cleanup_free_ char *note = NULL;
    for (size_t i = 0; files && files[i]; i++) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        _cleanup_close_ int fd = open(files[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue;
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "auth file %s", files[i]);
        }
        int r = rbx_read_fd(fd, RBX_AUTH_FILE_MAX, files[i], &text, &len, err);
        if (r < 0)
            return r;
        _cleanup_(creds_clearp) struct rbx_creds c = {0};
        r = rbx_auth_file_lookup(text, len, files[i], registry, repository, &c, err);
        explicit_bzero(text, len);
        if (r < 0)
            return r;
        if (r == 0)
            continue;
        if (c.username) {
            *out = c;
            memset(&c, 0, sizeof(c));
            return 0;
        }
        if (!note)
            note = TAKE_PTR(c.unusable);
    }
    out->unusable = TAKE_PTR(note);
    return 0;
}

/* ---- WWW-Authenticate ---------------------------------------------------------------------- */

void rbx_challenge_clear(struct rbx_challenge *c)
{
    free(c->realm);
    free(c->service);
    free(c->scope);
    free(c->error);
    memset(c, 0, sizeof(*c));
}

static void challenge_clearp(struct rbx_challenge *c)
{
    rbx_challenge_clear(c);
}

static bool tchar(char c)
{
    return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A token or a quoted string (with \-escapes) into a new string; *pp moves past it. */
static int param_value(const char **pp, char **out)
{
    const char *p = *pp;
    if (*p == '"') {
        size_t cap = strlen(p), n = 0;
        _cleanup_free_ char *v = rbx_xmalloc(cap + 1);
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            v[n++] = *p;
        }
        if (*p != '"')
            return -EINVAL;
        v[n] = '\0';
        *pp = p + 1;
        *out = TAKE_PTR(v);
        return 0;
    }
    const char *s = p;
    while (tchar(*p) || *p == '/' || *p == '=' || *p == ':')
        p++;
    if (p == s)
        return -EINVAL;
    *out = rbx_xstrndup(s, (size_t)(p - s));
    *pp = p;
    return 0;
}

int rbx_challenge_parse(const char *header, struct rbx_challenge *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_(challenge_clearp) struct rbx_challenge best = {0};
    char first_scheme[32] = "";
    const char *p = skip_ows(header);
    while (*p) {
        /* A scheme starts a challenge; its params follow until the next scheme. */
        const char *s = p;
        while (tchar(*p))
            p++;
        size_t slen = (size_t)(p - s);
        if (slen == 0)
            goto malformed;
        _cleanup_(challenge_clearp) struct rbx_challenge c = {0};
        if (slen == 6 && strncasecmp(s, "bearer", 6) == 0)
            c.scheme = RBX_AUTH_BEARER;
        else if (slen == 5 && strncasecmp(s, "basic", 5) == 0)
            c.scheme = RBX_AUTH_BASIC;
        if (!first_scheme[0])
            snprintf(first_scheme, sizeof(first_scheme), "%.*s", (int)(slen < 31 ? slen : 31), s);
        p = skip_ows(p);
        for (;;) {
            /* name=value, or the next scheme (a token not followed by '='). */
            const char *n = p;
            while (tchar(*p))
                p++;
            size_t nlen = (size_t)(p - n);
            const char *q = skip_ows(p);
            if (nlen == 0 || *q != '=') {
                p = n;
                break;
            }
            q = skip_ows(q + 1);
            _cleanup_free_ char *v = NULL;
            if (param_value(&q, &v) < 0)
                goto malformed;
            char **slot = nlen == 5 && strncasecmp(n, "realm", 5) == 0     ? &c.realm
                          : nlen == 7 && strncasecmp(n, "service", 7) == 0 ? &c.service
                          : nlen == 5 && strncasecmp(n, "scope", 5) == 0   ? &c.scope
                          : nlen == 5 && strncasecmp(n, "error", 5) == 0   ? &c.error
                                                                           : NULL;
            if (slot) {
                free(*slot);
                *slot = TAKE_PTR(v);
            }
            p = skip_ows(q);
            if (*p == ',')
                p = skip_ows(p + 1);
            else if (*p)
                goto malformed;
            if (!*p)
                break;
        }
        if (c.scheme > best.scheme) {
            rbx_challenge_clear(&best);
            best = c;
            memset(&c, 0, sizeof(c));
        }
        if (*p == ',')
            p = skip_ows(p + 1);
    }
    if (best.scheme == RBX_AUTH_NONE)
        return rbx_error_set(
            err, RBX_ERR_UNSUPPORTED, ENOTSUP,
            "the registry asks for \"%s\" authentication (reprobox speaks Basic and "
            "Bearer)",
            first_scheme[0] ? first_scheme : "?");
    if (best.scheme == RBX_AUTH_BEARER && (!best.realm || !*best.realm))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                             "WWW-Authenticate: a Bearer challenge without a realm");
    *out = best;
    memset(&best, 0, sizeof(best));
    return 0;
malformed:
    return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "WWW-Authenticate: malformed challenge");
}
