/* idmap.c — user namespace id maps: reading our own, computing a child's (the identity over what
 * we see) and writing it. Parsing and computing are pure so tests can feed sample maps. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

static bool parse_u32(const char **p, uint32_t *out)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return false;
        s++;
    }
    *out = (uint32_t)v;
    *p = s;
    return true;
}

int rbx_idmap_parse(const char *text, const char *what, struct rbx_idmap *out,
                    struct rbx_error **err)
{
    out->n = 0;
    unsigned line = 0;
    for (const char *p = text; *p;) {
        line++;
        const char *eol = strchr(p, '\n');
        const char *next = eol ? eol + 1 : p + strlen(p);
        const char *s = p;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\n' || *s == '\0') {
            p = next;
            continue;
        }
        struct rbx_idmap_range r;
        if (!parse_u32(&s, &r.inside) || !parse_u32(&s, &r.outside) || !parse_u32(&s, &r.count))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s:%u: expected \"inside outside count\"", what, line);
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s != '\n' && *s != '\0')
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s:%u: trailing text", what,
                                 line);
        if (r.count == 0 || (uint64_t)r.inside + r.count > (uint64_t)UINT32_MAX + 1 ||
            (uint64_t)r.outside + r.count > (uint64_t)UINT32_MAX + 1)
            return rbx_error_set(err, RBX_ERR_MALFORMED, ERANGE, "%s:%u: range out of bounds", what,
                                 line);
        if (out->n == RBX_IDMAP_MAX)
            return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%s: more than %d ranges", what,
                                 RBX_IDMAP_MAX);
        out->r[out->n++] = r;
        p = next;
    }
    if (out->n == 0)
        return rbx_error_set(err, RBX_ERR_SANDBOX, EINVAL,
                             "%s is empty: this process has no id mapping", what);
    return 0;
}

void rbx_idmap_identity(const struct rbx_idmap *own, struct rbx_idmap *child)
{
    child->n = own->n;
    for (size_t i = 0; i < own->n; i++) {
        child->r[i].inside = own->r[i].inside;
        child->r[i].outside = own->r[i].inside;
        child->r[i].count = own->r[i].count;
    }
}

size_t rbx_idmap_format(const struct rbx_idmap *m, char *buf, size_t len)
{
    size_t need = 0;
    for (size_t i = 0; i < m->n; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%" PRIu32 " %" PRIu32 " %" PRIu32 "\n",
                         m->r[i].inside, m->r[i].outside, m->r[i].count);
        if (need + (size_t)n < len)
            memcpy(buf + need, line, (size_t)n);
        need += (size_t)n;
    }
    if (len)
        buf[need < len ? need : len - 1] = '\0';
    return need;
}

bool rbx_idmap_contains(const struct rbx_idmap *m, uint32_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (id >= m->r[i].inside && (uint64_t)id < (uint64_t)m->r[i].inside + m->r[i].count)
            return true;
    return false;
}

uint64_t rbx_idmap_count(const struct rbx_idmap *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->r[i].count;
    return n;
}

int rbx_idmap_read_self(const char *file, struct rbx_idmap *out, struct rbx_error **err)
{
    _cleanup_free_ char *path = rbx_xasprintf("/proc/self/%s", file);
    _cleanup_free_ char *text = NULL;
    int r = rbx_read_file_at(AT_FDCWD, path, 64 * 1024, &text, NULL, err);
    if (r < 0)
        return r;
    return rbx_idmap_parse(text, path, out, err);
}

static int write_proc_file(pid_t pid, const char *file, const char *text, struct rbx_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "open %s", path);
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    if (w < 0)
        return rbx_error_set_errno(err, RBX_ERR_SANDBOX, errno, "write %s", path);
    if ((size_t)w != len)
        return rbx_error_set(err, RBX_ERR_SANDBOX, EIO, "write %s: short write", path);
    return 0;
}

int rbx_idmap_write(pid_t pid, const char *file, const struct rbx_idmap *m, struct rbx_error **err)
{
    size_t need = rbx_idmap_format(m, NULL, 0);
    _cleanup_free_ char *buf = rbx_xmalloc(need + 1);
    rbx_idmap_format(m, buf, need + 1);
    int r = write_proc_file(pid, file, buf, err);
    if (r < 0)
        return rbx_error_wrap(err, "id map \"%.*s\"", (int)strcspn(buf, "\n"), buf);
    return 0;
}

int rbx_setgroups_denied_self(bool *denied, struct rbx_error **err)
{
    _cleanup_free_ char *text = NULL;
    int r = rbx_read_file_at(AT_FDCWD, "/proc/self/setgroups", 64, &text, NULL, err);
    if (r < 0)
        return r;
    *denied = strncmp(text, "deny", 4) == 0;
    return 0;
}

int rbx_proc_write(pid_t pid, const char *file, const char *text, struct rbx_error **err)
{
    return write_proc_file(pid, file, text, err);
}
