/* user.c — docker's user resolution ("", name, uid, uid:gid, name:group...) over the image's own
 * /etc/passwd and /etc/group, read inside the rootfs with bounded sizes and no NSS. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define RBX_ID_MAX 2147483647u          /* docker's range for uids and gids */
#define RBX_ACCOUNT_FILE_MAX (4u << 20) /* /etc/passwd or /etc/group */

int rbx_open_regular_in_root(int rootfd, const char *path, struct rbx_error **err)
{
    _cleanup_close_ int pfd = rbx_open_in_root(rootfd, path, O_PATH, 0, 0, err);
    if (pfd < 0)
        return pfd;
    struct stat st;
    if (fstat(pfd, &st) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "stat %s", path);
    if (!S_ISREG(st.st_mode))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s: not a regular file", path);
    /* Reopen the very inode we checked: opening by name again could meet something else. */
    char proc[32];
    int fd = open(rbx_fd_path(proc, pfd), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open %s", path);
    return fd;
}

/* The file's text, or NULL when the image has none (docker then uses numeric ids as given). */
static int read_account_file(int rootfd, const char *path, char **out, struct rbx_error **err)
{
    *out = NULL;
    _cleanup_close_ int fd = rbx_open_regular_in_root(rootfd, path, err);
    if (fd == -ENOENT || fd == -ENOTDIR)
        return 0;
    if (fd < 0)
        return fd;
    return rbx_read_fd(fd, RBX_ACCOUNT_FILE_MAX, path, out, NULL, err);
}

bool rbx_parse_id(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Split one line into at most `max` ':'-separated fields; returns how many. */
static size_t split_fields(const char *line, size_t len, const char **f, size_t *flen, size_t max)
{
    size_t n = 0;
    const char *p = line, *end = line + len;
    while (n < max) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        f[n] = p;
        flen[n] = c ? (size_t)(c - p) : (size_t)(end - p);
        n++;
        if (!c)
            break;
        p = c + 1;
    }
    return n;
}

struct line_iter {
    const char *p;
};

/* Next non-empty, non-comment line, without its newline (and a trailing '\r'). */
static bool next_line(struct line_iter *it, const char **line, size_t *len)
{
    while (it->p && *it->p) {
        const char *eol = strchrnul(it->p, '\n');
        const char *l = it->p;
        size_t n = (size_t)(eol - l);
        it->p = *eol ? eol + 1 : eol;
        if (n && l[n - 1] == '\r')
            n--;
        /* '+' and '-' lines are NIS compat entries: names, not accounts. */
        if (n == 0 || l[0] == '#' || l[0] == '+' || l[0] == '-')
            continue;
        *line = l;
        *len = n;
        return true;
    }
    return false;
}

static bool field_is(const char *f, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(f, s, len) == 0;
}

struct pw_match {
    bool found;
    char name[256];
    uint32_t uid, gid;
    const char *home;
    size_t home_len;
};

/* First passwd entry for `name` (by_uid false) or `uid`; malformed lines are skipped, never
 * read as uid 0. */
static void passwd_find(const char *text, bool by_uid, const char *name, uint32_t uid,
                        struct pw_match *m)
{
    struct line_iter it = {text};
    const char *line;
    size_t len;
    m->found = false;
    while (next_line(&it, &line, &len)) {
        const char *f[7] = {0};
        size_t fl[7] = {0};
        size_t n = split_fields(line, len, f, fl, 7);
        uint32_t u, g;
        if (n < 4 || fl[0] == 0 || fl[0] >= sizeof(m->name) || !rbx_parse_id(f[2], fl[2], &u) ||
            !rbx_parse_id(f[3], fl[3], &g) || u > RBX_ID_MAX || g > RBX_ID_MAX)
            continue;
        if (by_uid ? u != uid : !field_is(f[0], fl[0], name))
            continue;
        m->found = true;
        memcpy(m->name, f[0], fl[0]);
        m->name[fl[0]] = '\0';
        m->uid = u;
        m->gid = g;
        m->home = n >= 6 ? f[5] : NULL;
        m->home_len = n >= 6 ? fl[5] : 0;
        return;
    }
}

/* First group entry for `name` (by_gid false) or `gid`. */
static bool group_find(const char *text, bool by_gid, const char *name, uint32_t gid, uint32_t *out)
{
    struct line_iter it = {text};
    const char *line;
    size_t len;
    while (next_line(&it, &line, &len)) {
        const char *f[4] = {0};
        size_t fl[4] = {0};
        uint32_t g;
        if (split_fields(line, len, f, fl, 4) < 3 || fl[0] == 0 || !rbx_parse_id(f[2], fl[2], &g) ||
            g > RBX_ID_MAX)
            continue;
        if (by_gid ? g == gid : field_is(f[0], fl[0], name)) {
            *out = g;
            return true;
        }
    }
    return false;
}

static void add_group(struct rbx_user *u, uint32_t gid)
{
    for (size_t i = 0; i < u->n_groups; i++)
        if (u->groups[i] == gid)
            return;
    /* More than 64 memberships: the first 64 in file order (the header's fixed array). */
    if (u->n_groups < RBX_ARRAY_SIZE(u->groups))
        u->groups[u->n_groups++] = gid;
}

/* Supplementary groups: every group whose member list names the user. */
static void group_memberships(const char *text, const char *user, struct rbx_user *u)
{
    struct line_iter it = {text};
    const char *line;
    size_t len;
    while (next_line(&it, &line, &len)) {
        const char *f[4] = {0};
        size_t fl[4] = {0};
        uint32_t g;
        if (split_fields(line, len, f, fl, 4) < 4 || !rbx_parse_id(f[2], fl[2], &g) ||
            g > RBX_ID_MAX)
            continue;
        const char *p = f[3], *end = f[3] + fl[3];
        while (p < end) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            const char *e = c ? c : end;
            const char *s = p;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            const char *t = e;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (field_is(s, (size_t)(t - s), user)) {
                add_group(u, g);
                break;
            }
            p = c ? c + 1 : end;
        }
    }
}

int rbx_user_resolve(int rootfd, const char *spec, struct rbx_user *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    strcpy(out->home, "/");
    const char *s = spec ? spec : "";
    if (strlen(s) > 512)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "user: longer than 512 bytes");
    const char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':'))
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "invalid user \"%s\": expected user[:group]", s);
    _cleanup_free_ char *user_arg = colon ? rbx_xstrndup(s, (size_t)(colon - s)) : rbx_xstrdup(s);
    const char *group_arg = colon ? colon + 1 : "";
    uint32_t uid_arg = 0, gid_arg = 0;
    bool uid_num = rbx_parse_id(user_arg, strlen(user_arg), &uid_arg);
    bool gid_num = rbx_parse_id(group_arg, strlen(group_arg), &gid_arg);
    if ((uid_num && uid_arg > RBX_ID_MAX) || (gid_num && gid_arg > RBX_ID_MAX))
        return rbx_error_set(err, RBX_ERR_USAGE, ERANGE,
                             "user \"%s\": uids and gids must be in range 0-%u", s, RBX_ID_MAX);

    _cleanup_free_ char *passwd = NULL;
    if (read_account_file(rootfd, "/etc/passwd", &passwd, err) < 0)
        return rbx_error_wrap(err, "user \"%s\"", s);

    /* "" is root, matched by uid so the image's name for uid 0 and its home apply. */
    struct pw_match pw = {0};
    if (passwd) {
        if (!*user_arg)
            passwd_find(passwd, true, NULL, 0, &pw);
        else
            passwd_find(passwd, uid_num, user_arg, uid_arg, &pw);
    }
    if (pw.found) {
        if (pw.home_len >= sizeof(out->home))
            return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG,
                                 "user %s: home directory longer than %zu bytes", pw.name,
                                 sizeof(out->home) - 1);
        out->uid = pw.uid;
        out->gid = pw.gid;
        if (pw.home_len) {
            memcpy(out->home, pw.home, pw.home_len);
            out->home[pw.home_len] = '\0';
        }
    } else if (*user_arg) {
        if (!uid_num)
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                 "unable to find user %s: no matching entries in passwd file",
                                 user_arg);
        out->uid = uid_arg; /* a numeric id the image does not know: used as it is, gid 0 */
    }

    if (!*group_arg && !pw.found)
        return 0;
    _cleanup_free_ char *group = NULL;
    if (read_account_file(rootfd, "/etc/group", &group, err) < 0)
        return rbx_error_wrap(err, "user \"%s\"", s);
    if (*group_arg) {
        /* An explicit group replaces the passwd one and brings no supplementary groups. */
        uint32_t g;
        if (group && group_find(group, gid_num, group_arg, gid_arg, &g))
            out->gid = g;
        else if (gid_num)
            out->gid = gid_arg;
        else
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                 "unable to find group %s: no matching entries in group file",
                                 group_arg);
        return 0;
    }
    if (group)
        group_memberships(group, pw.name, out);
    return 0;
}
