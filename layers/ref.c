/* ref.c — image references: "transport:details", as skopeo and podman users write them. */
#include "layers/layers.h"

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

    if (out->transport == RBX_TRANSPORT_DOCKER)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: registry references are not supported yet", s);

    /* The path ends at the first ':' (as in containers/image: paths with ':' are not allowed). */
    const char *colon = strchr(rest, ':');
    size_t plen = colon ? (size_t)(colon - rest) : strlen(rest);
    if (plen == 0)
        return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL, "invalid image reference \"%s\": no path", s);
    if (plen > RBX_PATH_MAX)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "invalid image reference: path over %d bytes",
                             RBX_PATH_MAX);
    out->path = rbx_xstrndup(rest, plen);
    const char *tag = colon ? colon + 1 : NULL;

    switch (out->transport) {
    case RBX_TRANSPORT_OCI:
    case RBX_TRANSPORT_OCI_ARCHIVE:
        if (tag && !valid_tag(tag)) {
            rbx_ref_clear(out);
            return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL, "invalid image reference \"%s\": bad tag", s);
        }
        out->tag = rbx_xstrdup(tag ? tag : "latest");
        break;
    case RBX_TRANSPORT_DOCKER_ARCHIVE:
        if (tag) {
            if (!valid_tag(tag) || tag[0] == ':') {
                rbx_ref_clear(out);
                return rbx_error_set(err, RBX_ERR_REFERENCE, EINVAL,
                                     "invalid image reference \"%s\": expected REPO:TAG after the path", s);
            }
            /* "repo" alone means "repo:latest"; a ':' after the last '/' separates the tag. */
            const char *slash = strrchr(tag, '/');
            const char *tcolon = strchr(slash ? slash : tag, ':');
            out->tag = tcolon ? rbx_xstrdup(tag) : rbx_xasprintf("%s:latest", tag);
        }
        break;
    case RBX_TRANSPORT_DOCKER:
        break;
    }
    return 0;
}
