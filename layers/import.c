/* import.c — bringing an image archive (oci-archive, docker-archive) into the store: every file
 * streamed once into tmp/, hashed on the way, and published as blobs/sha256/<digest>; the
 * archive's names are kept only as a map to those digests, never used as paths. */
#include "layers/layers-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

void rbx_import_clear(struct rbx_import *imp)
{
    for (size_t i = 0; i < imp->n; i++) {
        free(imp->entries[i].name);
        free(imp->entries[i].link);
    }
    free(imp->entries);
    memset(imp, 0, sizeof(*imp));
}

static void import_clearp(struct rbx_import *imp)
{
    rbx_import_clear(imp);
}

const struct rbx_import_entry *rbx_import_find(const struct rbx_import *imp, const char *name)
{
    _cleanup_free_ char *want = NULL;
    if (rbx_path_clean(name, &want, NULL) < 0)
        return NULL;
    for (int hops = 0; hops < RBX_SYMLINK_HOPS; hops++) {
        const struct rbx_import_entry *hit = NULL;
        /* The last entry of a name wins, as when the archive is extracted. */
        for (size_t i = imp->n; i-- > 0;)
            if (strcmp(imp->entries[i].name, want) == 0) {
                hit = &imp->entries[i];
                break;
            }
        if (!hit || !hit->link)
            return hit;
        free(want);
        want = rbx_xstrdup(hit->link);
    }
    return NULL;
}

static struct rbx_import_entry *push_entry(struct rbx_import *imp, const char *name)
{
    imp->entries = rbx_xrealloc(imp->entries, (imp->n + 1) * sizeof(*imp->entries));
    struct rbx_import_entry *e = &imp->entries[imp->n++];
    memset(e, 0, sizeof(*e));
    e->name = rbx_xstrdup(name);
    return e;
}

/* Copy one entry's data into tmpfd/<file>, hashing it. A sparse entry's holes are zeros in the
 * hash and holes in the copy. */
static int copy_entry(struct archive *a, struct archive_entry *e, int fd,
                      struct rbx_import_entry *ent, struct rbx_error **err)
{
    _cleanup_(rbx_sha256_freep) struct rbx_sha256 *h = rbx_sha256_new();
    const void *buf;
    size_t size;
    la_int64_t offset;
    int64_t pos = 0;
    unsigned char head[4];
    size_t head_len = 0;
    for (;;) {
        int r = archive_read_data_block(a, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return -EBADMSG;
        if (offset < pos)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "overlapping sparse data");
        if (offset > pos) {
            static const char zeros[4096];
            for (int64_t gap = offset - pos; gap > 0;) {
                size_t n = gap > (int64_t)sizeof(zeros) ? sizeof(zeros) : (size_t)gap;
                rbx_sha256_update(h, zeros, n);
                for (size_t i = 0; i < n && head_len < sizeof(head); i++)
                    head[head_len++] = 0;
                gap -= (int64_t)n;
            }
            if (lseek(fd, offset, SEEK_SET) < 0)
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "seek");
            pos = offset;
        }
        rbx_sha256_update(h, buf, size);
        for (size_t i = 0; i < size && head_len < sizeof(head); i++)
            head[head_len++] = ((const unsigned char *)buf)[i];
        const char *p = buf;
        while (size > 0) {
            ssize_t w = write(fd, p, size);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return rbx_error_set_errno(err, RBX_ERR_IO, errno, "write");
            }
            p += w;
            size -= (size_t)w;
            pos += w;
        }
    }
    /* Ending in a hole. */
    int64_t total = archive_entry_size_is_set(e) ? archive_entry_size(e) : pos;
    if (total > pos) {
        static const char zeros[4096];
        for (int64_t gap = total - pos; gap > 0;) {
            size_t n = gap > (int64_t)sizeof(zeros) ? sizeof(zeros) : (size_t)gap;
            rbx_sha256_update(h, zeros, n);
            gap -= (int64_t)n;
        }
        if (ftruncate(fd, total) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "truncate");
        pos = total;
    }
    rbx_sha256_final(h, ent->digest);
    ent->size = pos;
    ent->compression = rbx_compression_sniff(head, head_len);
    return 0;
}

/* Is `name` "blobs/sha256/<64 hex>"? Then the hex is what its content must hash to. */
static const char *named_digest(const char *name)
{
    static const char prefix[] = "blobs/sha256/";
    if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
        return NULL;
    const char *hex = name + sizeof(prefix) - 1;
    char d[RBX_DIGEST_LEN + 1];
    snprintf(d, sizeof(d), "sha256:%s", hex);
    return strlen(hex) == RBX_DIGEST_HEX_LEN && rbx_digest_valid(d) ? hex : NULL;
}

struct import_lock {
    struct rbx_store *s;
    int fd;
    char key[32];
};
static void import_lock_release(struct import_lock *l)
{
    if (l->fd >= 0) {
        unlinkat(l->s->locks_fd, l->key, 0);
        close(l->fd);
    }
}
struct tmp_dir {
    int tmp_fd;
    char *name;
};
static void tmp_dir_cleanup(struct tmp_dir *t)
{
    if (t->name)
        (void)rbx_rm_rf_at(t->tmp_fd, t->name, NULL);
    free(t->name);
}

int rbx_store_import_archive(struct rbx_store *s, const char *path, bool verify_names,
                             struct rbx_import *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "no such archive")
                               : rbx_error_set_errno(err, RBX_ERR_IO, errno, "open");
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "not a regular file");
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    /* Seen before, unchanged, its blobs still here: nothing to read. */
    _cleanup_free_ char *abs = realpath(path, NULL);
    char key[RBX_DIGEST_HEX_LEN + 1];
    rbx_archive_key(abs ? abs : path, &st, key);
    if (rbx_archive_record_load(s, key, out) == 0) {
        memcpy(out->key, key, sizeof(key));
        close(fd);
        return 0;
    }
    unsigned char head[4] = {0};
    ssize_t hn = pread(fd, head, sizeof(head), 0);
    _cleanup_(rbx_stream_freep) struct rbx_stream *stream = rbx_stream_new(
        fd, rbx_compression_sniff(head, hn > 0 ? (size_t)hn : 0), NULL, -1, 0, "archive");

    /* tmp/import-<random>.<random>, owned through locks/import-<random>. */
    _cleanup_(import_lock_release) struct import_lock lock = {.s = s, .fd = -1};
    char rnd[13];
    rbx_random_hex(rnd, 12);
    snprintf(lock.key, sizeof(lock.key), "import-%s", rnd);
    lock.fd = rbx_store_lock(s, lock.key, true, err);
    if (lock.fd < 0)
        return lock.fd;
    _cleanup_(tmp_dir_cleanup) struct tmp_dir tmp = {.tmp_fd = s->tmp_fd};
    _cleanup_close_ int tmpfd = rbx_store_mktemp(s, lock.key, &tmp.name, err);
    if (tmpfd < 0)
        return tmpfd;

    _cleanup_(import_clearp) struct rbx_import imp = {0};
    _cleanup_error_ struct rbx_error *stream_err = NULL;
    struct archive *a = rbx_tar_reader_new(stream, &stream_err);
    int r = 0;
    for (unsigned count = 0;; count++) {
        struct archive_entry *e;
        int ar = archive_read_next_header(a, &e);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN) {
            r = rbx_tar_reader_error(a, stream, &stream_err, err);
            break;
        }
        if (count >= RBX_ARCHIVE_ENTRIES_MAX) {
            r = rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "more than %u files",
                              RBX_ARCHIVE_ENTRIES_MAX);
            break;
        }
        const char *raw = archive_entry_pathname(e);
        _cleanup_free_ char *name = NULL;
        if (!raw || (r = rbx_path_clean(raw, &name, err)) < 0) {
            r = raw ? rbx_error_wrap(err, "entry")
                    : rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "an entry without a name");
            break;
        }
        const char *hardlink = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        if (hardlink || type == AE_IFLNK) {
            /* An alias (docker save links layers shared between images); resolved by name. */
            _cleanup_free_ char *joined = NULL, *target = NULL;
            if (hardlink) {
                joined = rbx_xstrdup(hardlink);
            } else {
                const char *t = archive_entry_symlink(e);
                const char *slash = strrchr(name, '/');
                joined = t && t[0] != '/' && slash
                             ? rbx_xasprintf("%.*s/%s", (int)(slash - name), name, t)
                             : rbx_xstrdup(t ? t : "");
            }
            if (rbx_path_clean(joined, &target, NULL) == 0 && *target)
                push_entry(&imp, name)->link = TAKE_PTR(target);
            continue;
        }
        if (type != AE_IFREG)
            continue;
        char file[32];
        snprintf(file, sizeof(file), "%zu", imp.n);
        _cleanup_close_ int ffd =
            openat(tmpfd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (ffd < 0) {
            r = rbx_error_set_errno(err, RBX_ERR_IO, errno, "create");
            break;
        }
        struct rbx_import_entry *ent = push_entry(&imp, name);
        r = copy_entry(a, e, ffd, ent, err);
        if (r == -EBADMSG && !(err && *err))
            r = rbx_tar_reader_error(a, stream, &stream_err, err);
        if (r < 0) {
            rbx_error_wrap(err, "entry \"%s\"", name);
            break;
        }
        const char *hex = named_digest(name);
        if (verify_names && hex && strcmp(hex, rbx_digest_hex(ent->digest)) != 0) {
            r = rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG,
                              "blob sha256:%s: digest mismatch (got %s)", hex, ent->digest);
            break;
        }
    }
    archive_read_free(a);
    if (r < 0)
        return r;
    if ((r = rbx_stream_drain(stream, err)) < 0)
        return r;

    /* Durable before any name points at them, then published one by one (each atomically). */
    if (syncfs(tmpfd) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "syncfs");
    for (size_t i = 0; i < imp.n; i++) {
        if (imp.entries[i].link)
            continue;
        char file[32], dst[RBX_DIGEST_HEX_LEN + 8];
        snprintf(file, sizeof(file), "%zu", i);
        snprintf(dst, sizeof(dst), "sha256/%s", rbx_digest_hex(imp.entries[i].digest));
        struct stat bst;
        if (fstatat(s->blobs_fd, dst, &bst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(bst.st_mode) &&
            bst.st_size == imp.entries[i].size)
            continue; /* already there; reads verify it again */
        if (renameat(tmpfd, file, s->blobs_fd, dst) < 0)
            return rbx_error_set_errno(err, RBX_ERR_IO, errno, "publish blob %s",
                                       imp.entries[i].digest);
    }
    _cleanup_close_ int shafd = openat(s->blobs_fd, "sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (shafd >= 0)
        (void)fsync(shafd);
    /* Best effort: without it the next open imports again. */
    (void)rbx_archive_record_save(s, key, abs ? abs : path, &imp, NULL);
    rbx_store_journal(s, "imported", key);
    memcpy(imp.key, key, sizeof(key));
    *out = imp;
    memset(&imp, 0, sizeof(imp));
    return 0;
}
