/* diff.c — the first difference between two layers, read from their blobs (verified): an entry
 * only one has, entries in another order, or the first field of an entry that differs (type,
 * mode, owner, mtime, link, content, xattrs). What `reprobox build --check` names. */
#include "layers/layers-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

struct dentry {
    char *name;
    mode_t type, perm;
    int64_t uid, gid, mtime, size;
    char *link;
    bool hardlink;
    char content[RBX_DIGEST_LEN + 1];
    char xattrs[RBX_DIGEST_LEN + 1];
};

struct dlist {
    struct dentry *v;
    size_t n;
};

static void dlist_clear(struct dlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].link);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int read_layer(const struct rbx_out_layer *l, struct dlist *out, struct rbx_error **err)
{
    int fd = rbx_blob_open(l->blob_dirfd, l->digest, err);
    if (fd < 0)
        return fd;
    _cleanup_error_ struct rbx_error *serr = NULL;
    _cleanup_(rbx_stream_freep) struct rbx_stream *s =
        rbx_stream_new(fd, rbx_media_compression(rbx_media_parse(l->media_type)), l->digest,
                       l->size, RBX_LAYER_BYTES_DEFAULT, "blob");
    struct archive *a = rbx_tar_reader_new(s, &serr);
    int r = 0;
    size_t cap = 0;
    for (;;) {
        struct archive_entry *e;
        int ar = archive_read_next_header(a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN) {
            r = rbx_tar_reader_error(a, s, &serr, err);
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 256;
            out->v = rbx_xrealloc(out->v, cap * sizeof(*out->v));
        }
        struct dentry *d = &out->v[out->n++];
        memset(d, 0, sizeof(*d));
        d->name = rbx_xstrdup(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
        size_t nl = strlen(d->name);
        if (nl > 1 && d->name[nl - 1] == '/')
            d->name[nl - 1] = '\0';
        d->type = archive_entry_filetype(e);
        d->perm = archive_entry_perm(e);
        d->uid = archive_entry_uid(e);
        d->gid = archive_entry_gid(e);
        d->mtime = archive_entry_mtime(e);
        d->size = archive_entry_size(e);
        const char *hl = archive_entry_hardlink(e), *sl = archive_entry_symlink(e);
        d->hardlink = hl != NULL;
        d->link = hl ? rbx_xstrdup(hl) : sl ? rbx_xstrdup(sl) : NULL;
        _cleanup_(rbx_sha256_freep) struct rbx_sha256 *h = rbx_sha256_new();
        const void *buf;
        size_t size;
        la_int64_t off;
        int dr;
        while ((dr = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
            rbx_sha256_update(h, buf, size);
        if (dr < ARCHIVE_WARN) {
            r = rbx_tar_reader_error(a, s, &serr, err);
            break;
        }
        rbx_sha256_final(h, d->content);
        _cleanup_(rbx_sha256_freep) struct rbx_sha256 *xh = rbx_sha256_new();
        const char *k;
        const void *v;
        size_t vl;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &k, &v, &vl) == ARCHIVE_OK) {
            rbx_sha256_update(xh, k, strlen(k) + 1);
            rbx_sha256_update(xh, v, vl);
        }
        rbx_sha256_final(xh, d->xattrs);
    }
    archive_read_free(a);
    if (r == 0)
        r = rbx_stream_drain(s, err);
    return r < 0 ? rbx_error_wrap(err, "layer %s", l->digest) : 0;
}

static bool has_name(const struct dlist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return true;
    return false;
}

static void set(struct rbx_layer_difference *d, const char *path, const char *field, char *detail)
{
    d->path = rbx_xstrdup(path);
    d->field = rbx_xstrdup(field);
    d->detail = detail;
}

static const char *type_name(mode_t t)
{
    switch (t) {
    case AE_IFREG: return "file";
    case AE_IFDIR: return "directory";
    case AE_IFLNK: return "symlink";
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "fifo";
    default: return "other";
    }
}

static bool compare_entry(const struct dentry *a, const struct dentry *b,
                          struct rbx_layer_difference *d)
{
    if (a->type != b->type || a->hardlink != b->hardlink) {
        set(d, a->name, "type",
            rbx_xasprintf("%s%s vs %s%s", a->hardlink ? "hardlink to " : "", type_name(a->type),
                          b->hardlink ? "hardlink to " : "", type_name(b->type)));
        return true;
    }
    if (a->perm != b->perm) {
        set(d, a->name, "mode", rbx_xasprintf("%04o vs %04o", a->perm, b->perm));
        return true;
    }
    if (a->uid != b->uid || a->gid != b->gid) {
        set(d, a->name, "owner",
            rbx_xasprintf("%lld:%lld vs %lld:%lld", (long long)a->uid, (long long)a->gid,
                          (long long)b->uid, (long long)b->gid));
        return true;
    }
    if (a->mtime != b->mtime) {
        set(d, a->name, "mtime",
            rbx_xasprintf("%lld vs %lld", (long long)a->mtime, (long long)b->mtime));
        return true;
    }
    if ((a->link || b->link) && (!a->link || !b->link || strcmp(a->link, b->link) != 0)) {
        set(d, a->name, "link",
            rbx_xasprintf("\"%s\" vs \"%s\"", a->link ? a->link : "", b->link ? b->link : ""));
        return true;
    }
    if (a->size != b->size || strcmp(a->content, b->content) != 0) {
        set(d, a->name, "content",
            rbx_xasprintf("%lld bytes %.19s vs %lld bytes %.19s", (long long)a->size, a->content,
                          (long long)b->size, b->content));
        return true;
    }
    if (strcmp(a->xattrs, b->xattrs) != 0) {
        set(d, a->name, "xattrs", rbx_xstrdup("extended attributes differ"));
        return true;
    }
    return false;
}

int rbx_layer_diff(const struct rbx_out_layer *a, const struct rbx_out_layer *b,
                   struct rbx_layer_difference *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    struct dlist la = {0}, lb = {0};
    int r = read_layer(a, &la, err);
    if (r == 0)
        r = read_layer(b, &lb, err);
    if (r < 0)
        goto done;
    r = 1;
    for (size_t i = 0; i < la.n || i < lb.n; i++) {
        if (i >= la.n || i >= lb.n) {
            const struct dentry *e = i < la.n ? &la.v[i] : &lb.v[i];
            set(out, e->name, "missing",
                rbx_xasprintf("only in the %s build", i < la.n ? "first" : "second"));
            goto done;
        }
        if (strcmp(la.v[i].name, lb.v[i].name) != 0) {
            if (!has_name(&lb, la.v[i].name)) {
                set(out, la.v[i].name, "missing", rbx_xstrdup("only in the first build"));
            } else if (!has_name(&la, lb.v[i].name)) {
                set(out, lb.v[i].name, "missing", rbx_xstrdup("only in the second build"));
            } else {
                set(out, la.v[i].name, "order",
                    rbx_xasprintf("entry %zu is \"%s\" in the first build, \"%s\" in the second",
                                  i + 1, la.v[i].name, lb.v[i].name));
            }
            goto done;
        }
        if (compare_entry(&la.v[i], &lb.v[i], out))
            goto done;
    }
    if (strcmp(a->diff_id, b->diff_id) != 0) {
        set(out, "", "encoding",
            rbx_xstrdup("the same entries, written differently (headers or padding)"));
        goto done;
    }
    if (strcmp(a->digest, b->digest) != 0) {
        set(out, "", "compression", rbx_xstrdup("the same tar, compressed differently"));
        goto done;
    }
    r = 0;
done:
    dlist_clear(&la);
    dlist_clear(&lb);
    return r;
}

void rbx_layer_difference_clear(struct rbx_layer_difference *d)
{
    free(d->path);
    free(d->field);
    free(d->detail);
    memset(d, 0, sizeof(*d));
}
