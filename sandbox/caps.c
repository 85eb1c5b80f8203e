/* caps.c — capabilities and rlimits of a process: Docker's default capability set minus
 * NET_RAW, MKNOD and AUDIT_WRITE, --cap-add/--cap-drop by name (libcap knows the names), applied
 * to the bounding, permitted and effective sets with inheritable and ambient empty; and the
 * rlimits, with a sane nofile default. */
#include "sandbox/sandbox-internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

unsigned rbx_cap_last(void)
{
    static unsigned last;
    if (!last) {
        /* The kernel's own number, which may be newer than what libcap was built with. */
        _cleanup_free_ char *text = NULL;
        _cleanup_error_ struct rbx_error *e = NULL;
        uint32_t v;
        if (rbx_read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", 64, &text, NULL, &e) ==
                0 &&
            rbx_parse_id(text, strcspn(text, "\n"), &v) && v < 64)
            last = v;
        else
            last = (unsigned)cap_max_bits() - 1;
    }
    return last;
}

const char *rbx_cap_name(unsigned cap)
{
    static char names[64][32];
    if (cap >= 64 || cap > rbx_cap_last())
        return NULL;
    if (!names[cap][0]) {
        char *n = cap_to_name((cap_value_t)cap);
        if (!n)
            return NULL;
        size_t k = 0;
        const char *p = n;
        /* libcap says "cap_chown"; docker and the OCI spec say "CAP_CHOWN". */
        if (strncmp(p, "cap_", 4) != 0) {
            snprintf(names[cap], sizeof(names[cap]), "CAP_%u", cap);
        } else {
            memcpy(names[cap], "CAP_", 4);
            k = 4;
            for (p += 4; *p && k + 1 < sizeof(names[cap]); p++)
                names[cap][k++] = (char)toupper((unsigned char)*p);
            names[cap][k] = '\0';
        }
        cap_free(n);
    }
    return names[cap];
}

/* "chown", "CHOWN", "cap_chown", "CAP_CHOWN" -> 0. */
static int cap_parse(const char *name, unsigned *out)
{
    char buf[64];
    const char *p = name;
    if (strncasecmp(p, "CAP_", 4) == 0)
        p += 4;
    if (!*p || strlen(p) + 5 > sizeof(buf))
        return -EINVAL;
    memcpy(buf, "cap_", 4);
    size_t k = 4;
    for (; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_')
            return -EINVAL;
        buf[k++] = (char)tolower((unsigned char)*p);
    }
    buf[k] = '\0';
    cap_value_t v;
    if (cap_from_name(buf, &v) < 0 || v < 0 || (unsigned)v > rbx_cap_last())
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int rbx_caps_resolve(char *const *cap_add, char *const *cap_drop, uint64_t *out,
                     struct rbx_error **err)
{
    uint64_t all = rbx_cap_last() >= 63 ? ~0ULL : (1ULL << (rbx_cap_last() + 1)) - 1;
    uint64_t caps = RBX_DEFAULT_CAPS;
    for (size_t i = 0; cap_drop && cap_drop[i]; i++) {
        unsigned c;
        if (strcasecmp(cap_drop[i], "ALL") == 0)
            caps = 0;
        else if (cap_parse(cap_drop[i], &c) == 0)
            caps &= ~(1ULL << c);
        else
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "--cap-drop %s: unknown capability", cap_drop[i]);
    }
    for (size_t i = 0; cap_add && cap_add[i]; i++) {
        unsigned c;
        if (strcasecmp(cap_add[i], "ALL") == 0)
            caps = all;
        else if (cap_parse(cap_add[i], &c) == 0)
            caps |= 1ULL << c;
        else
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "--cap-add %s: unknown capability", cap_add[i]);
    }
    *out = caps & all;
    return 0;
}

void rbx_caps_format(uint64_t caps, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (unsigned c = 0; c < 64 && k < len; c++) {
        if (!(caps & (1ULL << c)))
            continue;
        const char *n = rbx_cap_name(c);
        int w = n ? snprintf(buf + k, len - k, "%s%s", k ? "," : "", n)
                  : snprintf(buf + k, len - k, "%s%u", k ? "," : "", c);
        if (w < 0)
            break;
        k += (size_t)w;
    }
}

/* ---- child side: raw system calls only -------------------------------------------------- */

int rbx_caps_drop_bounding(uint64_t caps, unsigned last)
{
    for (unsigned c = 0; c <= last && c < 64; c++) {
        if (caps & (1ULL << c))
            continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return -errno;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    return 0;
}

int rbx_caps_apply(uint64_t caps, bool root)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (root) {
        /* What execve gives root anyway (its bounding set); others get nothing from it. */
        d[0].permitted = d[0].effective = (uint32_t)caps;
        d[1].permitted = d[1].effective = (uint32_t)(caps >> 32);
    }
    return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* ---- rlimits ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int resource;
} rlimit_names[] = {
    {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},         {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE},     {"locks", RLIMIT_LOCKS},     {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},     {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},         {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME},   {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK},
    {"as", RLIMIT_AS},
};

const char *rbx_rlimit_name(int resource)
{
    for (size_t i = 0; i < RBX_ARRAY_SIZE(rlimit_names); i++)
        if (rlimit_names[i].resource == resource)
            return rlimit_names[i].name;
    return "rlimit";
}

int rbx_rlimit_resource(const char *name)
{
    const char *n = strncasecmp(name, "RLIMIT_", 7) == 0 ? name + 7 : name;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(rlimit_names); i++)
        if (strcasecmp(rlimit_names[i].name, n) == 0)
            return rlimit_names[i].resource;
    return -1;
}

static bool parse_limit(const char *s, size_t len, uint64_t *out)
{
    if (len == 2 && memcmp(s, "-1", 2) == 0) {
        *out = RLIM_INFINITY;
        return true;
    }
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

int rbx_rlimit_parse(const char *s, struct rbx_rlimit *out, struct rbx_error **err)
{
    const char *eq = strchr(s, '=');
    if (!eq)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "--ulimit \"%s\": expected NAME=SOFT[:HARD]", s);
    _cleanup_free_ char *name = rbx_xstrndup(s, (size_t)(eq - s));
    int res = rbx_rlimit_resource(name);
    if (res < 0)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--ulimit \"%s\": unknown limit \"%s\"",
                             s, name);
    const char *v = eq + 1;
    const char *colon = strchr(v, ':');
    uint64_t soft, hard;
    if (!parse_limit(v, colon ? (size_t)(colon - v) : strlen(v), &soft) ||
        (colon && !parse_limit(colon + 1, strlen(colon + 1), &hard)))
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "--ulimit \"%s\": limits are numbers or -1 (unlimited)", s);
    if (!colon)
        hard = soft;
    if (soft > hard)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "--ulimit \"%s\": the soft limit is above the hard one", s);
    out->resource = res;
    out->soft = soft;
    out->hard = hard;
    return 0;
}

int rbx_rlimits_plan(const struct rbx_rlimit *in, size_t n, struct rbx_rlimit *out,
                     size_t *n_out, struct rbx_error **err)
{
    if (n >= RBX_MAX_RLIMITS)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%zu rlimits (limit %d)", n,
                             RBX_MAX_RLIMITS - 1);
    size_t k = 0;
    bool nofile = false;
    for (size_t i = 0; i < n; i++) {
        /* The last setting of a resource wins, as with repeated --ulimit. */
        size_t j = 0;
        while (j < k && out[j].resource != in[i].resource)
            j++;
        out[j] = in[i];
        if (j == k)
            k++;
        nofile |= in[i].resource == RLIMIT_NOFILE;
    }
    if (!nofile)
        out[k++] = (struct rbx_rlimit){RLIMIT_NOFILE, RBX_DEFAULT_NOFILE_SOFT,
                                       RBX_DEFAULT_NOFILE_HARD};
    /* A user namespace cannot raise a hard limit above ours: cap, so the default never fails;
     * an explicit request above it fails loudly instead. */
    for (size_t i = 0; i < k; i++) {
        struct rlimit cur;
        if (getrlimit(out[i].resource, &cur) < 0)
            continue;
        bool explicit_one = false;
        for (size_t j = 0; j < n; j++)
            explicit_one |= in[j].resource == out[i].resource;
        if (out[i].hard > cur.rlim_max && !explicit_one) {
            out[i].hard = cur.rlim_max;
            if (out[i].soft > out[i].hard)
                out[i].soft = out[i].hard;
        } else if (out[i].hard > cur.rlim_max) {
            /* Real root may raise its own first; the sandbox's namespace never could. */
            struct rlimit raised = {.rlim_cur = cur.rlim_cur, .rlim_max = out[i].hard};
            if (setrlimit(out[i].resource, &raised) < 0)
                return rbx_error_set(err, RBX_ERR_PERMISSION, EPERM,
                                     "--ulimit %s: hard limit %llu above this user's (%llu)",
                                     rbx_rlimit_name(out[i].resource),
                                     (unsigned long long)out[i].hard,
                                     (unsigned long long)cur.rlim_max);
        }
    }
    *n_out = k;
    return 0;
}
