/* platform.c — OCI platforms: the host's, and "os/arch[/variant]" from --platform. */
#include "layers/layers.h"

#include <string.h>
#include <sys/utsname.h>

/* uname machine -> GOARCH, the names OCI uses. */
static const struct {
    const char *machine, *arch, *variant;
} arches[] = {
    {"x86_64", "amd64", ""}, {"aarch64", "arm64", "v8"}, {"armv7l", "arm", "v7"},
    {"armv6l", "arm", "v6"}, {"i686", "386", ""},        {"i386", "386", ""},
    {"ppc64le", "ppc64le", ""}, {"s390x", "s390x", ""},  {"riscv64", "riscv64", ""},
};

void rbx_platform_host(struct rbx_platform *p)
{
    struct utsname u;
    memset(p, 0, sizeof(*p));
    strcpy(p->os, "linux");
    strcpy(p->architecture, "amd64");
    if (uname(&u) < 0)
        return;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(arches); i++) {
        if (strcmp(u.machine, arches[i].machine) == 0) {
            snprintf(p->architecture, sizeof(p->architecture), "%s", arches[i].arch);
            snprintf(p->variant, sizeof(p->variant), "%s", arches[i].variant);
            return;
        }
    }
    snprintf(p->architecture, sizeof(p->architecture), "%.31s", u.machine);
}

int rbx_platform_parse(const char *s, struct rbx_platform *p, struct rbx_error **err)
{
    memset(p, 0, sizeof(*p));
    const char *a = strchr(s, '/');
    if (!a || a == s || !a[1])
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "invalid platform \"%s\": expected OS/ARCH[/VARIANT]", s);
    const char *v = strchr(a + 1, '/');
    size_t oslen = (size_t)(a - s), alen = v ? (size_t)(v - a - 1) : strlen(a + 1);
    if (oslen >= sizeof(p->os) || alen == 0 || alen >= sizeof(p->architecture) ||
        (v && (strlen(v + 1) == 0 || strlen(v + 1) >= sizeof(p->variant) || strchr(v + 1, '/'))))
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "invalid platform \"%s\": expected OS/ARCH[/VARIANT]", s);
    memcpy(p->os, s, oslen);
    memcpy(p->architecture, a + 1, alen);
    if (v)
        strcpy(p->variant, v + 1);
    return 0;
}
