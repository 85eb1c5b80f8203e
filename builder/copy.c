/* copy.c — COPY, ADD and WORKDIR as BuildKit runs them: sources resolved inside the context or a
 * source stage (never followed out), the destination resolved in the target stage, a plan of what
 * the layer will hold (hashed for the step cache) carried out into a staging dir that becomes the
 * layer; plus --chown and --chmod, and the copies RUN --mount=type=bind needs. */
#include "builder/builder-internal.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define COPY_CHUNK (256 * 1024)
#define PASSWD_MAX (4u << 20)
#define URL_MAX_BYTES ((uint64_t)8 << 30)

/* ---- the plan -----------------------------------------------------------------------------------
 */

enum cop_kind {
    COP_DIR,
    COP_FILE,
    COP_SYMLINK,
    COP_HARDLINK,
    COP_NODE,
    COP_DATA, /* a heredoc's body */
    COP_TAR,  /* ADD of a local archive: extracted into dst */
};

struct cxattr {
    char *name, *value;
    size_t len;
};

struct cop {
    enum cop_kind kind;
    char *dst; /* in the rootfs, cleaned, relative */
    mode_t perm, type;
    uid_t uid;
    gid_t gid;
    int64_t mtime;
    dev_t rdev;
    int64_t size;
    char *link; /* symlink target; the first name of a hardlink */
    int srcfd;  /* a layer root (borrowed) with src below it, or AT_FDCWD with src absolute */
    char *src;
    char *data;
    size_t len;
    enum rbx_archive_kind archive;
    struct cxattr *xattrs;
    size_t n_xattrs;
};

struct hl {
    int root;
    dev_t dev;
    ino_t ino;
    char *dst;
};

struct plan {
    struct cop *ops;
    size_t n, cap;
    struct hl *links;
    size_t n_links;
    char **dirs; /* dsts planned as directories */
    int64_t now;
    /* what applies to every copied entry */
    bool chown;
    uid_t uid;
    gid_t gid;
    const char *chmod;
    struct rbx_ignore *exclude;
};

static void plan_clear(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        struct cop *o = &p->ops[i];
        free(o->dst);
        free(o->link);
        free(o->src);
        free(o->data);
        for (size_t k = 0; k < o->n_xattrs; k++) {
            free(o->xattrs[k].name);
            free(o->xattrs[k].value);
        }
        free(o->xattrs);
    }
    free(p->ops);
    for (size_t i = 0; i < p->n_links; i++)
        free(p->links[i].dst);
    free(p->links);
    rbx_strv_free(p->dirs);
    rbx_ignore_free(p->exclude);
    memset(p, 0, sizeof(*p));
}

static struct cop *plan_push(struct plan *p, enum cop_kind kind, const char *dst)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->ops = rbx_xrealloc(p->ops, p->cap * sizeof(*p->ops));
    }
    struct cop *o = &p->ops[p->n++];
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->dst = rbx_xstrdup(dst);
    o->srcfd = -1;
    return o;
}

static bool planned_dir(const struct plan *p, const char *dst)
{
    for (size_t i = 0; p->dirs && p->dirs[i]; i++)
        if (strcmp(p->dirs[i], dst) == 0)
            return true;
    return false;
}

static char *join(const char *a, const char *b)
{
    if (!*a)
        return rbx_xstrdup(b);
    if (!*b)
        return rbx_xstrdup(a);
    return rbx_xasprintf("%s/%s", a, b);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ---- --chown and --chmod ----------------------------------------------------------------------
 */

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Find `name` in /etc/passwd or /etc/group text: field 3 (uid or gid) and, for passwd, field 4. */
static int lookup_db(const char *text, const char *name, long *id, long *gid)
{
    size_t nl = strlen(name);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nl && strncmp(line, name, nl) == 0 && line[nl] == ':') {
            _cleanup_free_ char *copy = rbx_xstrndup(line, len);
            char *fields[5] = {0};
            char *save = NULL, *f = copy;
            size_t k = 0;
            /* strsep keeps empty fields ("x::0") */
            while (k < 5 && (fields[k] = strsep(&f, ":")))
                k++;
            (void)save;
            if (k >= 3 && all_digits(fields[2])) {
                *id = strtol(fields[2], NULL, 10);
                if (gid)
                    *gid = k >= 4 && all_digits(fields[3]) ? strtol(fields[3], NULL, 10) : *id;
                return 0;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return -ENOENT;
}

int rbx_chown_resolve(const struct rbx_view *v, const char *spec, uid_t *uid, gid_t *gid,
                      struct rbx_error **err)
{
    _cleanup_free_ char *user = rbx_xstrdup(spec);
    char *group = strchr(user, ':');
    if (group)
        *group++ = '\0';
    long u = 0, g = -1;
    if (!*user && !group)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "--chown: empty user");
    if (all_digits(user)) {
        u = strtol(user, NULL, 10);
        g = u; /* a numeric user gives its own number as the group */
    } else if (*user) {
        _cleanup_free_ char *pw = NULL;
        if (rbx_view_read_file(v, "/etc/passwd", PASSWD_MAX, &pw, NULL, NULL) < 0 ||
            lookup_db(pw, user, &u, &g) < 0)
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                 "--chown: unable to find user %s: no matching entries in "
                                 "passwd file",
                                 user);
    }
    if (group && *group) {
        if (all_digits(group)) {
            g = strtol(group, NULL, 10);
        } else {
            _cleanup_free_ char *gr = NULL;
            if (rbx_view_read_file(v, "/etc/group", PASSWD_MAX, &gr, NULL, NULL) < 0 ||
                lookup_db(gr, group, &g, NULL) < 0)
                return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                                     "--chown: unable to find group %s: no matching entries in "
                                     "group file",
                                     group);
        }
    }
    if (u < 0 || u > 0xfffffffe || g < 0 || g > 0xfffffffe)
        return rbx_error_set(err, RBX_ERR_USAGE, ERANGE, "--chown %s: id out of range", spec);
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return 0;
}

int rbx_chmod_parse(const char *spec, mode_t mode, bool is_dir, mode_t *out, struct rbx_error **err)
{
    if (all_digits(spec)) {
        char *end;
        unsigned long m = strtoul(spec, &end, 8);
        if (*end || m > 07777)
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "invalid chmod parameter: '%s'. it should be octal string and "
                                 "between 0 and 07777",
                                 spec);
        *out = (mode_t)m;
        return 0;
    }
    /* Symbolic, as chmod(1): [ugoa]*[+-=][rwxXst]*, comma-separated. */
    if (!*spec)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "invalid chmod parameter: ''");
    mode_t m = mode & 07777;
    _cleanup_free_ char *copy = rbx_xstrdup(spec);
    char *save = NULL;
    for (char *clause = strtok_r(copy, ",", &save); clause; clause = strtok_r(NULL, ",", &save)) {
        mode_t who = 0;
        char *p = clause;
        for (; *p && strchr("ugoa", *p); p++)
            who |= *p == 'u' ? 04700 : *p == 'g' ? 02070 : *p == 'o' ? 01007 : 07777;
        if (!who)
            who = 07777;
        if (!*p)
            goto bad;
        while (*p) {
            char op = *p++;
            if (op != '+' && op != '-' && op != '=')
                goto bad;
            mode_t bits = 0;
            for (; *p && strchr("rwxXst", *p); p++) {
                switch (*p) {
                case 'r': bits |= 0444; break;
                case 'w': bits |= 0222; break;
                case 'x': bits |= 0111; break;
                case 'X':
                    if (is_dir || (m & 0111))
                        bits |= 0111;
                    break;
                case 's': bits |= 06000; break;
                case 't': bits |= 01000; break;
                }
            }
            bits &= who;
            if (op == '+')
                m |= bits;
            else if (op == '-')
                m &= ~bits;
            else
                m = (m & ~who) | bits;
        }
    }
    *out = m;
    return 0;
bad:
    return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "invalid chmod parameter: '%s'", spec);
}

/* ---- planning ----------------------------------------------------------------------------------
 */

static void read_xattrs(int fd, bool is_link, struct cop *o)
{
    if (is_link)
        return; /* user.* cannot be set on a symlink; security.capability has no meaning there */
    char proc[32], list[4096];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = listxattr(proc, list, sizeof(list));
    for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(list + off) + 1) {
        const char *key = list + off;
        if (!rbx_layer_xattr_kept(key))
            continue;
        char val[4096];
        ssize_t vl = getxattr(proc, key, val, sizeof(val));
        if (vl < 0)
            continue;
        o->xattrs = rbx_xrealloc(o->xattrs, (o->n_xattrs + 1) * sizeof(*o->xattrs));
        o->xattrs[o->n_xattrs++] =
            (struct cxattr){rbx_xstrdup(key), rbx_xstrndup(val, (size_t)vl), (size_t)vl};
    }
}

/* The parents of `dir` (canonical, in the target), then `dir` itself when `self`: an existing
 * directory keeps what it is (its entry in the layer says so), a new one is 0755 and owned as
 * the copy is. */
static int plan_parents(struct plan *p, const struct rbx_view *target, const char *dir, bool self,
                        struct rbx_error **err)
{
    if (!*dir)
        return 0;
    _cleanup_free_ char *prefix = rbx_xstrdup(dir);
    size_t len = strlen(prefix);
    for (size_t i = 0; i <= len; i++) {
        if (prefix[i] != '/' && prefix[i] != '\0')
            continue;
        if (prefix[i] == '\0' && !self)
            break;
        char saved = prefix[i];
        prefix[i] = '\0';
        if (!planned_dir(p, prefix)) {
            struct rbx_vnode n;
            int r = target ? rbx_view_lookup(target, prefix, false, &n, err) : -ENOENT;
            if (r < 0 && r != -ENOENT)
                return r == -ENOTDIR ? rbx_error_set(err, RBX_ERR_USAGE, ENOTDIR,
                                                     "cannot copy to non-directory: /%s", prefix)
                                     : r;
            struct cop *o = plan_push(p, COP_DIR, prefix);
            o->mtime = p->now;
            if (r == 0) {
                if (!S_ISDIR(n.st.st_mode)) {
                    rbx_vnode_clear(&n);
                    return rbx_error_set(err, RBX_ERR_USAGE, ENOTDIR,
                                         "cannot copy to non-directory: /%s", prefix);
                }
                o->perm = n.st.st_mode & 07777;
                o->uid = n.st.st_uid;
                o->gid = n.st.st_gid;
                read_xattrs(n.fd, false, o);
                rbx_vnode_clear(&n);
            } else {
                o->perm = 0755;
                o->uid = p->chown ? p->uid : 0;
                o->gid = p->chown ? p->gid : 0;
            }
            rbx_strv_push(&p->dirs, prefix);
        }
        prefix[i] = saved;
    }
    return 0;
}

/* Does `dst` name a directory in the target as it will be (planned here or already there)? */
static bool dest_is_dir(const struct plan *p, const struct rbx_view *target, const char *dst)
{
    if (planned_dir(p, dst))
        return true;
    if (!target)
        return false;
    struct rbx_vnode n;
    if (rbx_view_lookup(target, dst, true, &n, NULL) < 0)
        return false;
    bool d = S_ISDIR(n.st.st_mode);
    rbx_vnode_clear(&n);
    return d;
}

struct source {
    const struct rbx_view *view;
    bool context; /* the build context: files are owned by root, as BuildKit sends them */
};

static int apply_mode(const struct plan *p, mode_t src_mode, bool is_dir, mode_t *out,
                      struct rbx_error **err)
{
    if (!p->chmod) {
        *out = src_mode & 07777;
        return 0;
    }
    return rbx_chmod_parse(p->chmod, src_mode, is_dir, out, err);
}

static int plan_entry(struct plan *p, const struct source *s, const struct rbx_vnode *n,
                      const char *dst, const char *rel, bool keep_existing_dir,
                      const struct rbx_view *target, unsigned depth, struct rbx_error **err);

static int plan_dir_contents(struct plan *p, const struct source *s, const struct rbx_vnode *dir,
                             const char *dst, const char *rel, const struct rbx_view *target,
                             unsigned depth, struct rbx_error **err)
{
    if (depth > RBX_PATH_MAX / 2)
        return rbx_error_set(err, RBX_ERR_LIMIT, ELOOP, "\"%s\": too deep", dir->path);
    _cleanup_strv_ char **names = NULL;
    int r = rbx_view_list(s->view, dir, &names, err);
    if (r < 0)
        return r;
    for (size_t i = 0; names[i]; i++) {
        _cleanup_free_ char *crel = join(rel, names[i]);
        if (p->exclude && rbx_ignore_match(p->exclude, crel, false) != RBX_IGNORE_KEEP) {
            struct rbx_vnode probe;
            if (rbx_view_child(s->view, dir, names[i], &probe, NULL) < 0)
                continue;
            bool d = S_ISDIR(probe.st.st_mode);
            rbx_vnode_clear(&probe);
            if (!d || rbx_ignore_match(p->exclude, crel, true) == RBX_IGNORE_EXCLUDE_TREE)
                continue;
        }
        struct rbx_vnode c;
        if ((r = rbx_view_child(s->view, dir, names[i], &c, err)) < 0) {
            if (r == -ENOENT)
                continue;
            return r;
        }
        _cleanup_free_ char *cdst = join(dst, names[i]);
        r = plan_entry(p, s, &c, cdst, crel, false, target, depth + 1, err);
        rbx_vnode_clear(&c);
        if (r < 0)
            return r;
    }
    return 0;
}

/* One source entry (not followed) to dst. */
static int plan_entry(struct plan *p, const struct source *s, const struct rbx_vnode *n,
                      const char *dst, const char *rel, bool keep_existing_dir,
                      const struct rbx_view *target, unsigned depth, struct rbx_error **err)
{
    const struct stat *st = &n->st;
    uid_t uid = p->chown ? p->uid : s->context ? 0 : st->st_uid;
    gid_t gid = p->chown ? p->gid : s->context ? 0 : st->st_gid;
    mode_t perm;
    int r = apply_mode(p, st->st_mode, S_ISDIR(st->st_mode), &perm, err);
    if (r < 0)
        return r;
    int srcroot = rbx_view_root_fd(s->view, n->layer);
    if (S_ISDIR(st->st_mode)) {
        /* The top directory of a copy keeps the metadata of one already there. */
        if (!(keep_existing_dir && dest_is_dir(p, target, dst))) {
            struct cop *o = plan_push(p, COP_DIR, dst);
            o->perm = perm;
            o->uid = uid;
            o->gid = gid;
            o->mtime = st->st_mtim.tv_sec;
            read_xattrs(n->fd, false, o);
            if (!planned_dir(p, dst))
                rbx_strv_push(&p->dirs, dst);
        } else if (!planned_dir(p, dst)) {
            if ((r = plan_parents(p, target, dst, true, err)) < 0)
                return r;
        }
        return plan_dir_contents(p, s, n, dst, rel, target, depth, err);
    }
    enum cop_kind kind = S_ISREG(st->st_mode)   ? COP_FILE
                         : S_ISLNK(st->st_mode) ? COP_SYMLINK
                                                : COP_NODE;
    if (S_ISSOCK(st->st_mode))
        return 0;
    if (kind == COP_FILE && st->st_nlink > 1) {
        for (size_t i = 0; i < p->n_links; i++)
            if (p->links[i].root == srcroot && p->links[i].dev == st->st_dev &&
                p->links[i].ino == st->st_ino) {
                struct cop *o = plan_push(p, COP_HARDLINK, dst);
                o->link = rbx_xstrdup(p->links[i].dst);
                return 0;
            }
        p->links = rbx_xrealloc(p->links, (p->n_links + 1) * sizeof(*p->links));
        p->links[p->n_links++] = (struct hl){srcroot, st->st_dev, st->st_ino, rbx_xstrdup(dst)};
    }
    struct cop *o = plan_push(p, kind, dst);
    o->perm = perm;
    o->type = st->st_mode & S_IFMT;
    o->uid = uid;
    o->gid = gid;
    o->mtime = st->st_mtim.tv_sec;
    o->rdev = st->st_rdev;
    o->size = kind == COP_FILE ? st->st_size : 0;
    o->srcfd = srcroot;
    o->src = rbx_xstrdup(n->path);
    if (kind == COP_SYMLINK) {
        char buf[RBX_PATH_MAX + 1];
        ssize_t k = readlinkat(n->fd, "", buf, sizeof(buf) - 1);
        if (k < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "readlink \"%s\"", n->path);
        buf[k] = '\0';
        o->link = rbx_xstrdup(buf);
    }
    read_xattrs(n->fd, kind == COP_SYMLINK, o);
    return 0;
}

static bool has_wildcard(const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            continue;
        }
        if (*s == '*' || *s == '?' || *s == '[')
            return true;
    }
    return false;
}

/* Expand a pattern component by component, as filepath.Glob over the view. Sorted results. */
static int glob_view(const struct rbx_view *v, const char *pattern, char ***out,
                     struct rbx_error **err)
{
    _cleanup_free_ char *clean = rbx_path_clean_clamped(pattern);
    _cleanup_strv_ char **cur = NULL;
    rbx_strv_push(&cur, "");
    char *save = NULL;
    for (char *comp = strtok_r(clean, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        _cleanup_strv_ char **next = rbx_xcalloc(1, sizeof(char *));
        for (size_t i = 0; cur[i]; i++) {
            if (!has_wildcard(comp)) {
                _cleanup_free_ char *p = join(cur[i], comp);
                struct rbx_vnode n;
                if (rbx_view_lookup(v, p, false, &n, NULL) == 0) {
                    rbx_vnode_clear(&n);
                    rbx_strv_push(&next, p);
                }
                continue;
            }
            struct rbx_vnode dir;
            if (rbx_view_lookup(v, cur[i], true, &dir, NULL) < 0)
                continue;
            if (!S_ISDIR(dir.st.st_mode)) {
                rbx_vnode_clear(&dir);
                continue;
            }
            _cleanup_strv_ char **names = NULL;
            int r = rbx_view_list(v, &dir, &names, err);
            rbx_vnode_clear(&dir);
            if (r < 0)
                return r;
            for (size_t k = 0; names[k]; k++)
                if (fnmatch(comp, names[k], 0) == 0)
                    rbx_strv_push_take(&next, join(cur[i], names[k]));
        }
        rbx_strv_free(cur);
        cur = TAKE_PTR(next);
    }
    *out = TAKE_PTR(cur);
    return 0;
}

/* A source as written: each path it names, copied as BuildKit copies them. */
static int plan_source(struct plan *p, const struct source *s, const char *src_written,
                       const char *dest, bool dest_slash, const struct rbx_view *target,
                       bool add_unpack, struct rbx_error **err)
{
    _cleanup_strv_ char **matches = NULL;
    int r;
    if (has_wildcard(src_written)) {
        if ((r = glob_view(s->view, src_written, &matches, err)) < 0)
            return r;
    } else {
        rbx_strv_push_take(&matches, rbx_path_clean_clamped(src_written));
    }
    for (size_t i = 0; matches && matches[i]; i++) {
        struct rbx_vnode n;
        r = rbx_view_lookup(s->view, matches[i], true, &n, err);
        if (r == -ENOENT || r == -ENOTDIR)
            return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "\"/%s\": not found%s", matches[i],
                                 s->context ? " in the build context" : "");
        if (r < 0)
            return r;
        if (S_ISDIR(n.st.st_mode)) {
            if ((r = plan_parents(p, target, dest, false, err)) == 0)
                r = plan_entry(p, s, &n, dest, "", true, target, 0, err);
            rbx_vnode_clear(&n);
            if (r < 0)
                return r;
            continue;
        }
        const char *name = *matches[i] ? base_name(matches[i]) : "";
        bool into = dest_slash || dest_is_dir(p, target, dest);
        _cleanup_free_ char *dst = into ? join(dest, name) : rbx_xstrdup(dest);
        if (!*dst) {
            rbx_vnode_clear(&n);
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "cannot copy a file to /");
        }
        _cleanup_free_ char *parent = rbx_xstrndup(dst, strlen(dst) - strlen(base_name(dst)));
        if (*parent)
            parent[strlen(parent) - 1] = '\0';
        if ((r = plan_parents(p, target, parent, true, err)) < 0) {
            rbx_vnode_clear(&n);
            return r;
        }
        if (add_unpack && S_ISREG(n.st.st_mode)) {
            _cleanup_close_ int fd = rbx_vnode_open(&n, err);
            enum rbx_archive_kind kind = RBX_ARCHIVE_NONE;
            if (fd < 0 || (r = rbx_tar_sniff(fd, &kind, err)) < 0) {
                rbx_vnode_clear(&n);
                return fd < 0 ? fd : r;
            }
            if (kind == RBX_ARCHIVE_BZIP2 || kind == RBX_ARCHIVE_XZ) {
                rbx_vnode_clear(&n);
                return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                     "ADD /%s: bzip2 and xz archives are not extracted by "
                                     "reprobox (use gzip or zstd, or --unpack=false)",
                                     matches[i]);
            }
            if (kind != RBX_ARCHIVE_NONE) {
                /* An archive is extracted into the destination directory itself. */
                if ((r = plan_parents(p, target, dest, true, err)) < 0) {
                    rbx_vnode_clear(&n);
                    return r;
                }
                struct cop *o = plan_push(p, COP_TAR, dest);
                o->archive = kind;
                o->srcfd = rbx_view_root_fd(s->view, n.layer);
                o->src = rbx_xstrdup(n.path);
                o->size = n.st.st_size;
                rbx_vnode_clear(&n);
                continue;
            }
        }
        r = plan_entry(p, s, &n, dst, base_name(dst), false, target, 0, err);
        rbx_vnode_clear(&n);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- hashing: the inputs' digest for the cache key ----------------------------------------------
 */

static void hash_str(struct rbx_sha256 *h, const char *s)
{
    rbx_sha256_update(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

static int hash_file(struct rbx_sha256 *h, int fd, const char *what, struct rbx_error **err)
{
    _cleanup_free_ char *buf = rbx_xmalloc(COPY_CHUNK);
    for (;;) {
        ssize_t n = read(fd, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read \"%s\"", what);
        if (n == 0)
            return 0;
        rbx_sha256_update(h, buf, (size_t)n);
    }
}

static int open_src(const struct cop *o, struct rbx_error **err)
{
    if (o->srcfd == AT_FDCWD) {
        int fd = open(o->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? rbx_error_set_errno(err, RBX_ERR_IO, errno, "open %s", o->src) : fd;
    }
    int fd = rbx_open_in_root(o->srcfd, o->src, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0,
                              RBX_RESOLVE_NOFOLLOW, err);
    if (fd == -ENOENT || fd == -ENOTDIR)
        return rbx_error_set(err, RBX_ERR_IO, ENOENT, "\"%s\" vanished", o->src);
    return fd;
}

static int plan_digest(const struct plan *p, int64_t epoch, char out[RBX_DIGEST_LEN + 1],
                       struct rbx_error **err)
{
    _cleanup_(rbx_sha256_freep) struct rbx_sha256 *h = rbx_sha256_new();
    for (size_t i = 0; i < p->n; i++) {
        const struct cop *o = &p->ops[i];
        char meta[200];
        snprintf(meta, sizeof(meta), "%d %o %o %u:%u %lld %llu %lld", (int)o->kind,
                 (unsigned)o->perm, (unsigned)o->type, (unsigned)o->uid, (unsigned)o->gid,
                 (long long)(o->mtime > epoch ? epoch : o->mtime), (unsigned long long)o->rdev,
                 (long long)o->size);
        hash_str(h, o->dst);
        hash_str(h, meta);
        hash_str(h, o->link);
        for (size_t k = 0; k < o->n_xattrs; k++) {
            hash_str(h, o->xattrs[k].name);
            rbx_sha256_update(h, o->xattrs[k].value, o->xattrs[k].len);
        }
        if (o->kind == COP_DATA)
            rbx_sha256_update(h, o->data, o->len);
        if (o->kind == COP_FILE || o->kind == COP_TAR) {
            _cleanup_close_ int fd = open_src(o, err);
            if (fd < 0)
                return fd;
            int r = hash_file(h, fd, o->src, err);
            if (r < 0)
                return r;
        }
    }
    rbx_sha256_final(h, out);
    return 0;
}

/* ---- carrying the plan out into a staging dir ------------------------------------------------ */

static int owner_error(struct rbx_error **err, int e, const struct cop *o)
{
    if (e == EINVAL || e == EPERM)
        return rbx_error_set(err, RBX_ERR_PERMISSION, e,
                             "/%s: cannot give it owner %u:%u: that id is not mapped in this user "
                             "namespace (rootless: add subordinate ids in /etc/subuid and "
                             "/etc/subgid)",
                             o->dst, (unsigned)o->uid, (unsigned)o->gid);
    return rbx_error_set_errno(err, RBX_ERR_IO, e, "/%s: chown", o->dst);
}

static int set_xattrs(int fd, const struct cop *o, struct rbx_error **err)
{
    for (size_t k = 0; k < o->n_xattrs; k++)
        if (fsetxattr(fd, o->xattrs[k].name, o->xattrs[k].value, o->xattrs[k].len, 0) < 0 &&
            errno != ENOTSUP)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: xattr %s", o->dst,
                                       o->xattrs[k].name);
    return 0;
}

static int copy_data(int in, int out, const char *what, struct rbx_error **err)
{
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n > 0)
            continue;
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "copy \"%s\"", what);
        break;
    }
    _cleanup_free_ char *buf = rbx_xmalloc(COPY_CHUNK);
    for (;;) {
        ssize_t n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read \"%s\"", what);
        if (n == 0)
            return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "write \"%s\"", what);
            off += w;
        }
    }
}

static int exec_op(int stagefd, const struct cop *o, bool chown_tree, uid_t uid, gid_t gid,
                   struct rbx_error **err);

/* Owners of everything an archive put below dirfd, for ADD --chown. */
static int chown_tree_at(int dirfd, uid_t uid, gid_t gid, unsigned depth, struct rbx_error **err)
{
    if (depth > RBX_PATH_MAX / 2)
        return rbx_error_set(err, RBX_ERR_LIMIT, ELOOP, "too deep");
    int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open");
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fchownat(dirfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "chown \"%s\"", de->d_name);
        if (de->d_type == DT_DIR) {
            _cleanup_close_ int sub =
                openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open \"%s\"", de->d_name);
            int r = chown_tree_at(sub, uid, gid, depth + 1, err);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int exec_op(int stagefd, const struct cop *o, bool chown_tree, uid_t uid, gid_t gid,
                   struct rbx_error **err)
{
    char name[RBX_NAME_MAX + 1];
    _cleanup_close_ int parent = rbx_open_parent_in_root(stagefd, o->dst, true, name, err);
    if (parent < 0)
        return rbx_error_wrap(err, "/%s", o->dst);
    struct stat st;
    bool exists = fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    /* What an earlier source of the same step put here is replaced, a directory merged into. */
    if (exists && !(o->kind == COP_DIR && S_ISDIR(st.st_mode)) &&
        !(o->kind == COP_TAR && S_ISDIR(st.st_mode))) {
        int r = rbx_rm_rf_at(parent, name, err);
        if (r < 0)
            return r;
        exists = false;
    }
    struct timespec ts[2] = {{.tv_sec = o->mtime}, {.tv_sec = o->mtime}};
    switch (o->kind) {
    case COP_DIR:
    case COP_TAR: {
        if (!exists && mkdirat(parent, name, 0700) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: mkdir", o->dst);
        _cleanup_close_ int fd =
            openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: open", o->dst);
        if (o->kind == COP_TAR) {
            _cleanup_close_ int in = open_src(o, err);
            if (in < 0)
                return in;
            _cleanup_free_ char *what = rbx_xasprintf("archive \"/%s\"", o->src);
            int r = rbx_tar_extract(in, o->archive, fd, what, NULL, err);
            if (r == 0 && chown_tree)
                r = chown_tree_at(fd, uid, gid, 0, err);
            return r;
        }
        if (fchown(fd, o->uid, o->gid) < 0)
            return owner_error(err, errno, o);
        if (fchmod(fd, o->perm) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: chmod", o->dst);
        return set_xattrs(fd, o, err); /* times: after the contents, by the caller */
    }
    case COP_FILE:
    case COP_DATA: {
        _cleanup_close_ int fd =
            openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: create", o->dst);
        int r = 0;
        if (o->kind == COP_DATA) {
            for (size_t off = 0; off < o->len;) {
                ssize_t w = write(fd, o->data + off, o->len - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0)
                    return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: write", o->dst);
                off += (size_t)w;
            }
        } else {
            _cleanup_close_ int in = open_src(o, err);
            if (in < 0)
                return in;
            if ((r = copy_data(in, fd, o->src, err)) < 0)
                return r;
        }
        /* chown clears set-id bits and capabilities: chown, chmod, then xattrs */
        if (fchown(fd, o->uid, o->gid) < 0)
            return owner_error(err, errno, o);
        if (fchmod(fd, o->perm) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: chmod", o->dst);
        if ((r = set_xattrs(fd, o, err)) < 0)
            return r;
        if (futimens(fd, ts) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: times", o->dst);
        return 0;
    }
    case COP_SYMLINK:
        if (symlinkat(o->link, parent, name) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: symlink", o->dst);
        if (fchownat(parent, name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) < 0)
            return owner_error(err, errno, o);
        if (utimensat(parent, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: times", o->dst);
        return 0;
    case COP_HARDLINK: {
        char tname[RBX_NAME_MAX + 1];
        _cleanup_close_ int tparent = rbx_open_parent_in_root(stagefd, o->link, false, tname, err);
        if (tparent < 0)
            return tparent;
        if (linkat(tparent, tname, parent, name, 0) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: link", o->dst);
        return 0;
    }
    case COP_NODE:
        if (mknodat(parent, name, o->type | (o->perm & 0777), o->rdev) < 0)
            return rbx_error_set_errno(err, errno == EPERM ? RBX_ERR_PERMISSION : RBX_ERR_IO, errno,
                                       "/%s: mknod", o->dst);
        if (fchownat(parent, name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) < 0)
            return owner_error(err, errno, o);
        if (fchmodat(parent, name, o->perm, 0) < 0 ||
            utimensat(parent, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s", o->dst);
        return 0;
    }
    return 0;
}

static int plan_execute(const struct plan *p, int stagefd, struct rbx_error **err)
{
    for (size_t i = 0; i < p->n; i++) {
        int r = exec_op(stagefd, &p->ops[i], p->chown, p->uid, p->gid, err);
        if (r < 0)
            return r;
    }
    /* Directory times last, deepest first: writing into a directory changes its mtime. */
    for (size_t i = p->n; i-- > 0;) {
        const struct cop *o = &p->ops[i];
        if (o->kind != COP_DIR)
            continue;
        struct timespec ts[2] = {{.tv_sec = o->mtime}, {.tv_sec = o->mtime}};
        if (utimensat(stagefd, o->dst, ts, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "/%s: times", o->dst);
    }
    return 0;
}

/* ---- ADD of a URL
 * -------------------------------------------------------------------------------- */

struct dl {
    int fd;
    uint64_t bytes;
    struct rbx_sha256 *h;
    bool too_big;
};

static size_t dl_write(char *data, size_t size, size_t n, void *ud)
{
    struct dl *d = ud;
    size_t len = size * n;
    d->bytes += len;
    if (d->bytes > URL_MAX_BYTES) {
        d->too_big = true;
        return 0;
    }
    rbx_sha256_update(d->h, data, len);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(d->fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return 0;
        off += (size_t)w;
    }
    return len;
}

static int download(const char *url, const char *path, const char *checksum, struct rbx_error **err)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", path);
    CURL *c = curl_easy_init();
    if (!c)
        return rbx_error_set(err, RBX_ERR_INTERNAL, ENOMEM, "curl");
    _cleanup_(rbx_sha256_freep) struct rbx_sha256 *h = rbx_sha256_new();
    struct dl d = {.fd = fd, .h = h};
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    CURLcode cr = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (d.too_big)
        return rbx_error_set(err, RBX_ERR_LIMIT, EFBIG, "ADD %s: larger than 8 GiB", url);
    if (cr != CURLE_OK)
        return rbx_error_set(err, RBX_ERR_NETWORK, EIO, "ADD %s: %s", url,
                             ebuf[0] ? ebuf : curl_easy_strerror(cr));
    if (checksum) {
        char got[RBX_DIGEST_LEN + 1];
        rbx_sha256_final(h, got);
        if (strcmp(got, checksum) != 0)
            return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG, "ADD %s: digest mismatch %s: %s",
                                 url, checksum, got);
    }
    return 0;
}

static bool is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static bool is_git(const char *s)
{
    return strncmp(s, "git@", 4) == 0 || strncmp(s, "git://", 6) == 0 ||
           (is_url(s) &&
            (strstr(s, ".git#") || (strlen(s) > 4 && !strcmp(s + strlen(s) - 4, ".git"))));
}

/* ---- the steps ----------------------------------------------------------------------------------
 */

static int stage_view(const struct rbx_bstage *st, struct rbx_view **v, struct rbx_error **err)
{
    _cleanup_strv_ char **dirs = rbx_stage_layer_dirs(st);
    return rbx_view_new(dirs, true, NULL, v, err);
}

/* The destination in the target as a canonical path: existing components resolved (symlinks
 * followed inside the rootfs), the rest taken as written. */
static int resolve_dest(const struct rbx_view *target, const char *path, char **out,
                        struct rbx_error **err)
{
    _cleanup_free_ char *clean = rbx_path_clean_clamped(path);
    struct rbx_vnode n;
    int r = rbx_view_lookup(target, clean, true, &n, err);
    if (r == 0) {
        *out = TAKE_PTR(n.path);
        rbx_vnode_clear(&n);
        return 0;
    }
    if (r != -ENOENT && r != -ENOTDIR)
        return r;
    /* the longest prefix that exists */
    _cleanup_free_ char *resolved = rbx_xstrdup("");
    char *rest = clean;
    while (*rest) {
        char *slash = strchr(rest, '/');
        size_t cl = slash ? (size_t)(slash - rest) : strlen(rest);
        _cleanup_free_ char *comp = rbx_xstrndup(rest, cl);
        _cleanup_free_ char *next = join(resolved, comp);
        r = rbx_view_lookup(target, next, true, &n, err);
        if (r < 0) {
            if (r != -ENOENT && r != -ENOTDIR)
                return r;
            if (r == -ENOTDIR)
                return rbx_error_set(err, RBX_ERR_USAGE, ENOTDIR,
                                     "cannot copy to non-directory: /%s", next);
            break;
        }
        free(resolved);
        resolved = TAKE_PTR(n.path);
        rbx_vnode_clear(&n);
        rest += cl;
        while (*rest == '/')
            rest++;
    }
    *out = join(resolved, rest);
    return 0;
}

/* Write the staging dir as a layer of the stage (or note that it made none), and cache it. */
static int commit_staging(struct rbx_build_state *b, struct rbx_bstage *st, struct rbx_run_dir *rd,
                          const char *key, const char *history, struct rbx_error **err)
{
    _cleanup_close_ int fd = open(rbx_run_dir_upper(rd), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "staging");
    struct rbx_layer_write_opts wo = {.source_date_epoch = b->opts->source_date_epoch,
                                      .normalize = true};
    struct rbx_cache_hit hit = {0};
    int r = rbx_layer_write(b->store, fd, &wo, &hit.blob, err);
    if (r < 0)
        return r;
    if (hit.blob.entries == 0) {
        hit.empty = true;
        rbx_stage_history(b, st, history, true);
    } else {
        if ((r = rbx_store_adopt_layer(b->store, &hit.blob, rbx_run_dir_upper(rd), err)) < 0)
            return r;
        if ((r = rbx_stage_add_layer(b, st, &hit.blob, history, err)) < 0)
            return r;
        rbx_stage_history(b, st, history, false);
        memcpy(st->chain, key, RBX_DIGEST_LEN + 1);
    }
    return rbx_cache_put(b, key, &hit, err);
}

static int apply_hit(struct rbx_build_state *b, struct rbx_bstage *st, const char *key,
                     const struct rbx_cache_hit *hit, const char *history, struct rbx_error **err)
{
    if (hit->empty) {
        rbx_stage_history(b, st, history, true);
    } else {
        int r = rbx_stage_add_layer(b, st, &hit->blob, history, err);
        if (r < 0)
            return r;
        rbx_stage_history(b, st, history, false);
        memcpy(st->chain, key, RBX_DIGEST_LEN + 1);
    }
    b->cur.state = RBX_STEP_CACHED;
    b->cur.duration_ns = rbx_now_ns() - b->cur_start;
    if (b->opts->events.step)
        b->opts->events.step(b->opts->events.userdata, &b->cur);
    json_array_append_new(b->res->steps,
                          json_pack("{s:s, s:i, s:i, s:i, s:s, s:s, s:I}", "stage", b->cur.stage,
                                    "index", b->cur.index, "total", b->cur.total, "line",
                                    b->cur.line, "instruction", b->cur.text, "status", "cached",
                                    "duration_ms", (json_int_t)(b->cur.duration_ns / 1000000)));
    b->res->n_steps++;
    b->res->n_cached++;
    return 0;
}

/* Plan, key, and (on a miss) carry out and commit. */
static int finish_step(struct rbx_build_state *b, struct rbx_bstage *st, struct plan *p,
                       json_t *keyobj, const char *history, struct rbx_error **err)
{
    char inputs[RBX_DIGEST_LEN + 1], key[RBX_DIGEST_LEN + 1];
    int r = plan_digest(p, b->opts->source_date_epoch, inputs, err);
    if (r < 0)
        return r;
    json_object_set_new(keyobj, "inputs", json_string(inputs));
    rbx_cache_key(st, keyobj, b->opts->source_date_epoch, key);
    struct rbx_cache_hit hit;
    if (rbx_cache_get(b, key, &hit) == 1)
        return apply_hit(b, st, key, &hit, history, err);
    struct rbx_run_dir *rd = NULL;
    if ((r = rbx_run_dir_create(b->store, &rd, err)) < 0)
        return r;
    _cleanup_close_ int stagefd = open(rbx_run_dir_upper(rd), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (stagefd < 0)
        r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "staging");
    if (r == 0)
        r = plan_execute(p, stagefd, err);
    if (r == 0)
        r = commit_staging(b, st, rd, key, history, err);
    rbx_run_dir_close(rd, false);
    return r;
}

int rbx_step_copy(struct rbx_build_state *b, struct rbx_bstage *st, const struct rbx_df_instr *in,
                  struct rbx_error **err)
{
    bool add = in->kind == RBX_DF_ADD;
    const char *word = add ? "ADD" : "COPY";
    if (in->copy.parents)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP, "%s --parents is not supported",
                             word);
    size_t n_src = rbx_strv_len(in->copy.srcs) + in->n_heredocs;
    size_t dl = strlen(in->copy.dest);
    bool dest_slash = dl > 0 && (in->copy.dest[dl - 1] == '/' || strcmp(in->copy.dest, ".") == 0 ||
                                 (dl >= 2 && strcmp(in->copy.dest + dl - 2, "/.") == 0));
    if (n_src > 1 && !dest_slash)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "When using %s with more than one source file, the destination must "
                             "be a directory and end with a /",
                             word);
    _cleanup_(rbx_view_freep) struct rbx_view *target = NULL;
    int r = stage_view(st, &target, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *dest_abs = in->copy.dest[0] == '/'
                                        ? rbx_xstrdup(in->copy.dest)
                                        : rbx_xasprintf("%s/%s", st->workdir, in->copy.dest);
    _cleanup_free_ char *dest = NULL;
    if ((r = resolve_dest(target, dest_abs, &dest, err)) < 0)
        return r;

    struct plan p = {.now = rbx_build_now(b), .chmod = in->copy.chmod};
    /* declared before the first jump to out: */
    _cleanup_(rbx_view_freep) struct rbx_view *owned_from = NULL;
    _cleanup_free_ char *history = rbx_xstrdup(word);
    _cleanup_free_ char *tmpdir = NULL;
    _cleanup_json_ json_t *keyobj =
        json_pack("{s:s, s:s, s:b}", "kind", word, "dest", dest, "dest_dir", dest_slash);
    if (in->copy.chown) {
        if ((r = rbx_chown_resolve(target, in->copy.chown, &p.uid, &p.gid, err)) < 0)
            goto out;
        p.chown = true;
    }
    if (in->copy.chmod) {
        mode_t probe;
        if ((r = rbx_chmod_parse(in->copy.chmod, 0644, false, &probe, err)) < 0)
            goto out;
    }
    if (in->copy.excludes && in->copy.excludes[0]) {
        _cleanup_free_ char *text = rbx_xstrdup("");
        for (size_t i = 0; in->copy.excludes[i]; i++) {
            char *t = rbx_xasprintf("%s%s\n", text, in->copy.excludes[i]);
            free(text);
            text = t;
        }
        if ((r = rbx_ignore_parse(text, strlen(text), "--exclude", &p.exclude, err)) < 0)
            goto out;
    }

    struct source src = {.view = b->ctx, .context = true};
    if (in->copy.from) {
        char fromkey[RBX_DIGEST_LEN + 1];
        if ((r = rbx_build_source_view(b, in->copy.from, &owned_from, fromkey, err)) < 0)
            goto out;
        src = (struct source){.view = owned_from, .context = false};
    }
    bool unpack = add && (!in->copy.unpack_set || in->copy.unpack);
    if (in->copy.chown) {
        char *h = rbx_xasprintf("%s --chown=%s", history, in->copy.chown);
        free(history);
        history = h;
    }
    if (in->copy.chmod) {
        char *h = rbx_xasprintf("%s --chmod=%s", history, in->copy.chmod);
        free(history);
        history = h;
    }
    if (in->copy.from) {
        char *h = rbx_xasprintf("%s --from=%s", history,
                                rbx_dockerfile_find_stage(b->df, in->copy.from) >= 0 ? in->copy.from
                                                                                     : "(image)");
        free(history);
        history = h;
    }
    for (size_t i = 0; in->copy.srcs && in->copy.srcs[i]; i++) {
        const char *s = in->copy.srcs[i];
        char *h = rbx_xasprintf("%s %s", history, s);
        free(history);
        history = h;
        if (add && is_git(s)) {
            r = rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                              "ADD %s: git sources are not "
                              "supported",
                              s);
            goto out;
        }
        if (is_url(s)) {
            if (!add) {
                r = rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "source can't be a URL for COPY");
                goto out;
            }
            if (b->opts->network == RBX_NETWORK_NONE) {
                r = rbx_error_set(err, RBX_ERR_NETWORK, ENETUNREACH,
                                  "ADD %s: a URL needs the network (the build runs with "
                                  "--network none)",
                                  s);
                goto out;
            }
            if (!tmpdir) {
                /* this step's own download dir: builds running at once never share one */
                _cleanup_free_ char *top = rbx_builder_dir(b, "downloads", err);
                char rnd[17];
                rbx_random_hex(rnd, 16);
                tmpdir = top ? rbx_xasprintf("%s/%s", top, rnd) : NULL;
                if (!tmpdir || mkdir(tmpdir, 0700) < 0) {
                    r = top ? rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", tmpdir) : -EIO;
                    goto out;
                }
            }
            char rnd[17];
            rbx_random_hex(rnd, 16);
            _cleanup_free_ char *path = rbx_xasprintf("%s/%s", tmpdir, rnd);
            r = download(s, path, in->copy.checksum, err);
            if (r == 0) {
                _cleanup_free_ char *u = rbx_xstrdup(s + (s[4] == 's' ? 8 : 7));
                u[strcspn(u, "?#")] = '\0';
                const char *slash = strrchr(u, '/');
                const char *fname = slash && slash[1] ? slash + 1 : "__unnamed__";
                bool into = dest_slash || dest_is_dir(&p, target, dest);
                _cleanup_free_ char *dst = into ? join(dest, fname) : rbx_xstrdup(dest);
                _cleanup_free_ char *parent =
                    rbx_xstrndup(dst, strlen(dst) - strlen(base_name(dst)));
                if (*parent)
                    parent[strlen(parent) - 1] = '\0';
                r = plan_parents(&p, target, parent, true, err);
                if (r == 0) {
                    struct cop *o = plan_push(&p, COP_FILE, dst);
                    o->perm = 0600;
                    if (in->copy.chmod)
                        r = rbx_chmod_parse(in->copy.chmod, 0600, false, &o->perm, err);
                    o->uid = p.chown ? p.uid : 0;
                    o->gid = p.chown ? p.gid : 0;
                    o->mtime = p.now;
                    o->srcfd = AT_FDCWD;
                    o->src = rbx_xstrdup(path);
                    struct stat sb;
                    o->size = stat(path, &sb) == 0 ? sb.st_size : 0;
                }
            }
            if (r < 0)
                goto out;
            continue;
        }
        if (in->copy.checksum) {
            r = rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                              "checksum requires HTTP(S) or Git sources");
            goto out;
        }
        if ((r = plan_source(&p, &src, s, dest, dest_slash, target, unpack, err)) < 0)
            goto out;
    }
    for (size_t i = 0; i < in->n_heredocs; i++) {
        const struct rbx_df_heredoc *hd = &in->heredocs[i];
        char *h = rbx_xasprintf("%s <<%s", history, hd->name);
        free(history);
        history = h;
        bool into = dest_slash || dest_is_dir(&p, target, dest);
        _cleanup_free_ char *dst = into ? join(dest, hd->name) : rbx_xstrdup(dest);
        _cleanup_free_ char *parent = rbx_xstrndup(dst, strlen(dst) - strlen(base_name(dst)));
        if (*parent)
            parent[strlen(parent) - 1] = '\0';
        if ((r = plan_parents(&p, target, parent, true, err)) < 0)
            goto out;
        struct cop *o = plan_push(&p, COP_DATA, dst);
        o->perm = 0644;
        if (in->copy.chmod && (r = rbx_chmod_parse(in->copy.chmod, 0644, false, &o->perm, err)) < 0)
            goto out;
        o->uid = p.chown ? p.uid : 0;
        o->gid = p.chown ? p.gid : 0;
        o->mtime = p.now;
        o->data = rbx_xstrdup(hd->content); /* substituted and chomped by the expansion */
        o->len = strlen(o->data);
    }
    {
        char *h = rbx_xasprintf("%s %s", history, in->copy.dest);
        free(history);
        history = h;
    }
    r = finish_step(b, st, &p, keyobj, history, err);
out:
    plan_clear(&p);
    if (tmpdir)
        (void)rbx_rm_rf_at(AT_FDCWD, tmpdir, NULL);
    return r;
}

int rbx_step_workdir(struct rbx_build_state *b, struct rbx_bstage *st, struct rbx_error **err)
{
    _cleanup_free_ char *history = rbx_xasprintf("WORKDIR %s", st->workdir);
    if (strcmp(st->workdir, "/") == 0) {
        rbx_stage_history(b, st, history, true);
        return 0;
    }
    _cleanup_(rbx_view_freep) struct rbx_view *target = NULL;
    int r = stage_view(st, &target, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *dest = NULL;
    if ((r = resolve_dest(target, st->workdir, &dest, err)) < 0)
        return r;
    struct rbx_vnode n;
    if (rbx_view_lookup(target, dest, true, &n, NULL) == 0) {
        bool dir = S_ISDIR(n.st.st_mode);
        rbx_vnode_clear(&n);
        if (!dir)
            return rbx_error_set(err, RBX_ERR_USAGE, ENOTDIR, "WORKDIR %s: not a directory",
                                 st->workdir);
        rbx_stage_history(b, st, history, true); /* there already: no layer */
        return 0;
    }
    /* Made by the stage's USER, as BuildKit makes it. */
    struct plan p = {.now = rbx_build_now(b)};
    if (st->user && *st->user) {
        if ((r = rbx_chown_resolve(target, st->user, &p.uid, &p.gid, err)) < 0)
            return rbx_error_wrap(err, "WORKDIR %s: USER %s", st->workdir, st->user);
        p.chown = true;
    }
    _cleanup_json_ json_t *keyobj = json_pack("{s:s, s:s, s:i, s:i}", "kind", "WORKDIR", "dest",
                                              dest, "uid", (int)p.uid, "gid", (int)p.gid);
    r = plan_parents(&p, target, dest, true, err);
    if (r == 0)
        r = finish_step(b, st, &p, keyobj, history, err);
    plan_clear(&p);
    return r;
}

int rbx_copy_materialize(struct rbx_build_state *b, const struct rbx_view *v, bool context,
                         const char *src, const char *dest_dir, char digest[RBX_DIGEST_LEN + 1],
                         struct rbx_error **err)
{
    struct plan p = {.now = rbx_build_now(b)};
    struct source s = {.view = v, .context = context};
    struct rbx_vnode n;
    int r = rbx_view_lookup(v, src, true, &n, err);
    if (r == -ENOENT || r == -ENOTDIR)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "\"/%s\": not found", src);
    if (r < 0)
        return r;
    if (S_ISDIR(n.st.st_mode))
        r = plan_dir_contents(&p, &s, &n, "", "", NULL, 0, err);
    else
        r = plan_entry(&p, &s, &n, base_name(n.path), base_name(n.path), false, NULL, 0, err);
    rbx_vnode_clear(&n);
    if (r == 0)
        r = plan_digest(&p, INT64_MAX, digest, err);
    if (r == 0 && dest_dir) {
        _cleanup_close_ int fd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = fd < 0 ? rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", dest_dir)
                   : plan_execute(&p, fd, err);
    }
    plan_clear(&p);
    return r;
}
