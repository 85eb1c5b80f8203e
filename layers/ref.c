/* ref.c — image references: "transport:details", as skopeo and podman users write them, and
 * docker:// names normalised as docker does (docker.io, library/, latest). */
#include "layers/layers.h"

#include <ctype.h>
#include <string.h>

static const struct {
    const char *prefix;
    enum rbx_transport transport;
} transports[] = {
    {"oci:", RBX_TRANSPORT_OCI},
    {"oci-archive:", RBX_TRANSPORT_OCI_ARCHIVE},
    {"docker-archive:", RBX_TRANSPORT_DOCKER_ARCHIVE},
    {"docker://", RBX_TRANSPORT_DOCKER},
};

void rbx_ref_clear(struct rbx_ref *ref)
{
    free(ref->path);
    free(ref->tag);
    free(ref->registry);
    free(ref->repository);
    free(ref->digest);
    memset(ref, 0, sizeof(*ref));
}

static bool valid_tag(const char *t)
{
    /* OCI ref.name is liberal; refuse only what can not be a name: empty, control chars, '/'
     * at either end. */
    size_t n = strlen(t);
    if (n == 0 || n > 255 || t[0] == '/' || t[n - 1] == '/')
        return false;
    for (const char *p = t; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7f)
            return false;
    return true;
}

/* ---- docker://[HOST[:PORT]/]NAME[:TAG][@DIGEST] (the grammar of distribution/reference) ---- */

#define RBX_DOCKER_NAME_MAX 255
#define RBX_DOCKER_TAG_MAX 128

static bool alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component: [a-z0-9]+ joined by '.', '_', "__" or any run of '-'. */
static bool valid_path_component(const char *p, size_t n)
{
    if (n == 0 || !alnum_lower(p[0]) || !alnum_lower(p[n - 1]))
        return false;
    for (size_t i = 0; i < n;) {
        if (alnum_lower(p[i])) {
            i++;
            continue;
        }
        size_t j = i;
        if (p[i] == '.' || p[i] == '_') {
            j = i + 1;
            if (p[i] == '_' && p[j] == '_')
                j++;
        } else if (p[i] == '-') {
            while (j < n && p[j] == '-')
                j++;
        } else {
            return false;
        }
        if (j >= n || !alnum_lower(p[j]))
            return false;
        i = j;
    }
    return true;
}

/* domain: components of [A-Za-z0-9-] (no '-' at either end) joined by '.', an optional :port,
 * or a bracketed IPv6 address with an optional port. */
static bool valid_domain(const char *d, size_t n)
{
    size_t host_end = n;
    if (n > 0 && d[0] == '[') {
        const char *close = memchr(d, ']', n);
        if (!close || close == d + 1)
            return false;
        for (const char *p = d + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return false;
        host_end = (size_t)(close - d) + 1;
        if (host_end < n && d[host_end] != ':')
            return false;
    } else {
        const char *colon = memchr(d, ':', n);
        host_end = colon ? (size_t)(colon - d) : n;
        if (host_end == 0)
            return false;
        for (size_t i = 0; i < host_end; i++) {
            char c = d[i];
            bool edge = i == 0 || d[i - 1] == '.' || i + 1 == host_end || d[i + 1] == '.';
            if (c == '.') {
                if (i == 0 || i + 1 == host_end || d[i + 1] == '.')
                    return false;
            } else if (c == '-') {
                if (edge)
                    return false;
            } else if (!isalnum((unsigned char)c)) {
                return false;
            }
        }
    }
    if (host_end < n) {
        size_t plen = n - host_end - 1;
        if (plen == 0 || plen > 5)
            return false;
        unsigned port = 0;
        for (size_t i = host_end + 1; i < n; i++) {
            if (!isdigit((unsigned char)d[i]))
                return false;
            port = port * 10 + (unsigned)(d[i] - '0');
        }
        if (port == 0 || port > 65535)
            return false;
    }
    return true;
}

static bool valid_docker_tag(const char *t, size_t n)
{
    if (n == 0 || n > RBX_DOCKER_TAG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        bool word = isalnum((unsigned char)c) || c == '_';
        if (!(word || (i > 0 && (c == '.' || c == '-'))))
            return false;
    }
    return true;
}

static int docker_bad(struct rbx_error **err, const char *s, const char *why)
{
    return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL, "invalid image reference \"%.300s\": %s",
                         s, why);
}

static int docker_parse(const char *s, const char *rest, struct rbx_ref *out,
                        struct rbx_error **err)
{
    size_t len = strlen(rest);
    if (len == 0)
        return docker_bad(err, s, "no image name");
    if (len > 2 * RBX_DOCKER_NAME_MAX + RBX_DOCKER_TAG_MAX + RBX_DIGEST_LEN)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG,
                             "invalid image reference: longer than %d bytes",
                             2 * RBX_DOCKER_NAME_MAX + RBX_DOCKER_TAG_MAX + RBX_DIGEST_LEN);
    const char *at = strchr(rest, '@');
    size_t nlen = at ? (size_t)(at - rest) : len;
    if (at) {
        const char *d = at + 1;
        if (strncmp(d, "sha256:", 7) != 0 && strchr(d, ':'))
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                 "image reference \"%.300s\": only sha256 digests are supported",
                                 s);
        if (!rbx_digest_valid(d))
            return docker_bad(err, s, "the digest is not \"sha256:\" and 64 lowercase hex digits");
        out->digest = rbx_xstrdup(d);
    }
    /* The tag is after the last ':' that follows the last '/' (a port's ':' comes before it). */
    const char *slash = memrchr(rest, '/', nlen);
    const char *tcolon =
        memchr(slash ? slash : rest, ':', nlen - (size_t)((slash ? slash : rest) - rest));
    size_t name_len = tcolon ? (size_t)(tcolon - rest) : nlen;
    if (tcolon) {
        size_t tlen = nlen - name_len - 1;
        if (!valid_docker_tag(tcolon + 1, tlen))
            return docker_bad(err, s,
                              "a tag is up to 128 letters, digits, '_', '.' and '-' (not first)");
        out->tag = rbx_xstrndup(tcolon + 1, tlen);
    } else if (!out->digest) {
        out->tag = rbx_xstrdup("latest");
    }
    if (name_len == 0)
        return docker_bad(err, s, "no image name");

    /* The first component names a registry when it looks like a host: a '.', a ':', localhost,
     * or capitals (which a repository may not have). Otherwise the image is on Docker Hub. */
    const char *first_slash = memchr(rest, '/', name_len);
    const char *path = rest;
    size_t path_len = name_len;
    if (first_slash) {
        size_t dlen = (size_t)(first_slash - rest);
        bool host = memchr(rest, '.', dlen) || memchr(rest, ':', dlen) ||
                    (dlen == 9 && memcmp(rest, "localhost", 9) == 0);
        for (size_t i = 0; i < dlen && !host; i++)
            host = isupper((unsigned char)rest[i]);
        if (host) {
            if (!valid_domain(rest, dlen))
                return docker_bad(err, s, "the registry is not HOST[:PORT]");
            out->registry = rbx_xstrndup(rest, dlen);
            path = first_slash + 1;
            path_len = name_len - dlen - 1;
        }
    }
    if (!out->registry || strcmp(out->registry, "index.docker.io") == 0) {
        free(out->registry);
        out->registry = rbx_xstrdup(RBX_DOCKER_HUB);
    }
    if (path_len == 0)
        return docker_bad(err, s, "no repository after the registry");
    for (size_t i = 0; i < path_len;) {
        const char *e = memchr(path + i, '/', path_len - i);
        size_t clen = e ? (size_t)(e - path - i) : path_len - i;
        if (!valid_path_component(path + i, clen))
            return docker_bad(err, s,
                              "a repository name is lowercase letters and digits, "
                              "separated by '/', '.', '_' or '-'");
        i += clen + 1;
        if (e && i == path_len)
            return docker_bad(err, s, "the name ends with '/'");
    }
    bool hub = strcmp(out->registry, RBX_DOCKER_HUB) == 0;
    out->repository = hub && !memchr(path, '/', path_len)
                          ? rbx_xasprintf("library/%.*s", (int)path_len, path)
                          : rbx_xstrndup(path, path_len);
    if (strlen(out->registry) + 1 + strlen(out->repository) > RBX_DOCKER_NAME_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG,
                             "invalid image reference: the name is longer than %d bytes",
                             RBX_DOCKER_NAME_MAX);
    return 0;
}

char *rbx_ref_docker_name(const struct rbx_ref *ref)
{
    if (ref->transport != RBX_TRANSPORT_DOCKER)
        return NULL;
    if (ref->digest)
        return rbx_xasprintf("%s/%s@%s", ref->registry, ref->repository, ref->digest);
    return rbx_xasprintf("%s/%s:%s", ref->registry, ref->repository, ref->tag);
}

int rbx_ref_parse(const char *s, struct rbx_ref *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    size_t i;
    for (i = 0; i < RBX_ARRAY_SIZE(transports); i++)
        if (strncmp(s, transports[i].prefix, strlen(transports[i].prefix)) == 0)
            break;
    if (i == RBX_ARRAY_SIZE(transports))
        return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL,
                             "invalid image reference \"%s\": expected oci:DIR[:TAG], "
                             "oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG] or "
                             "docker://NAME[:TAG]",
                             s);
    out->transport = transports[i].transport;
    const char *rest = s + strlen(transports[i].prefix);

    if (out->transport == RBX_TRANSPORT_DOCKER) {
        int r = docker_parse(s, rest, out, err);
        if (r < 0)
            rbx_ref_clear(out);
        return r;
    }

    /* The path ends at the first ':' (as in containers/image: paths with ':' are not allowed). */
    const char *colon = strchr(rest, ':');
    size_t plen = colon ? (size_t)(colon - rest) : strlen(rest);
    if (plen == 0)
        return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL,
                             "invalid image reference \"%s\": no path", s);
    if (plen > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG,
                             "invalid image reference: path over %d bytes", RBX_PATH_MAX);
    out->path = rbx_xstrndup(rest, plen);
    const char *tag = colon ? colon + 1 : NULL;

    switch (out->transport) {
    case RBX_TRANSPORT_OCI:
    case RBX_TRANSPORT_OCI_ARCHIVE:
        if (tag && !valid_tag(tag)) {
            rbx_ref_clear(out);
            return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL,
                                 "invalid image reference \"%s\": bad tag", s);
        }
        out->tag = rbx_xstrdup(tag ? tag : "latest");
        break;
    case RBX_TRANSPORT_DOCKER_ARCHIVE:
        if (tag) {
            if (!valid_tag(tag) || tag[0] == ':') {
                rbx_ref_clear(out);
                return rbx_error_set(
                    err, RBX_ERR_REFERENCE, EINVAL,
                    "invalid image reference \"%s\": expected REPO:TAG after the path", s);
            }
            /* "repo" alone means "repo:latest"; a ':' after the last '/' separates the tag. */
            const char *slash = strrchr(tag, '/');
            const char *tcolon = strchr(slash ? slash : tag, ':');
            out->tag = tcolon ? rbx_xstrdup(tag) : rbx_xasprintf("%s:latest", tag);
        }
        break;
    case RBX_TRANSPORT_DOCKER: break;
    }
    return 0;
}
