/* blob.c — digest-verified blob streams: compressed bytes counted and hashed against their
 * descriptor, decompressed by us (zlib, libzstd) and hashed again for the diff_id, then handed to
 * libarchive's tar parser through a read callback. libarchive never sees a file or a filter. */
#include "layers/layers-internal.h"

#include <archive.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>
#ifdef RBX_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#define RAW_CHUNK (128 * 1024)
#define OUT_CHUNK (256 * 1024)

int rbx_blob_open(int dirfd, const char *digest, struct rbx_error **err)
{
    if (!rbx_digest_valid(digest))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid digest \"%s\"", digest);
    char path[8 + RBX_DIGEST_HEX_LEN];
    snprintf(path, sizeof(path), "sha256/%s", rbx_digest_hex(digest));
    /* O_NONBLOCK: a FIFO planted as a blob must not hang us; the type is checked next. */
    _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT
                   ? rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "blob %s: not found", digest)
                   : rbx_error_set_errno(err, RBX_ERR_IO, errno, "blob %s", digest);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "blob %s", digest);
    if (!S_ISREG(st.st_mode))
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "blob %s: not a regular file", digest);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return TAKE_FD(fd);
}

/* ---- the stream ------------------------------------------------------------------------------ */

struct rbx_stream {
    int fd;
    enum rbx_compression compression;
    char *what;                      /* "blob sha256:..": names the compressed object in errors */
    char digest[RBX_DIGEST_LEN + 1]; /* expected, "" when not checked */
    int64_t size;                    /* expected, -1 when not checked */
    uint64_t max_out;

    struct rbx_sha256 *raw_hash, *out_hash;
    uint64_t raw_bytes, out_bytes;
    bool raw_eof, raw_verified, done;

    unsigned char *in;
    size_t in_pos, in_len;
    unsigned char *out;

    z_stream z;
    bool z_init, z_member_done;
#ifdef RBX_HAVE_ISAL
    struct inflate_state *isal; /* gzip through ISA-L: about twice zlib's speed */
#else
    void *isal; /* always NULL */
#endif
    ZSTD_DCtx *zd;
    size_t zret; /* last ZSTD_decompressStream result: 0 at a frame end */
    bool any_input;

    rbx_stream_progress_fn progress;
    void *progress_data;
    struct rbx_error **tar_errslot; /* where the libarchive callback leaves a stream error */

    struct prefetch *pf; /* decompression ahead, in its own thread */
};

/* ---- prefetch: a thread decompresses (and hashes) ahead into a few buffers ------------------ */

#define PF_SLOTS 8 /* 2 MiB ahead: enough to keep both cores busy, nothing like a layer */

struct prefetch {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *buf[PF_SLOTS];
    size_t len[PF_SLOTS];
    size_t head, count; /* filled slots: head .. head+count-1 */
    bool borrowed;      /* the consumer holds the slot at head */
    bool done, cancel;
    ssize_t result;          /* 0 at the verified end, or the error's return */
    struct rbx_error *err;   /* the producer's error */
    struct rbx_stream *next; /* started when this one is done */
};

static ssize_t stream_next_direct(struct rbx_stream *s, const void **buf, struct rbx_error **err);

static void *prefetch_main(void *arg)
{
    struct rbx_stream *s = arg;
    struct prefetch *pf = s->pf;
    for (;;) {
        const void *chunk;
        struct rbx_error *e = NULL;
        ssize_t n = stream_next_direct(s, &chunk, &e);
        pthread_mutex_lock(&pf->mu);
        if (n <= 0) {
            pf->result = n;
            pf->err = e;
            pf->done = true;
            pthread_cond_broadcast(&pf->cv);
            pthread_mutex_unlock(&pf->mu);
            break;
        }
        while (!pf->cancel && pf->count == PF_SLOTS)
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->cancel) {
            pf->done = true;
            pthread_cond_broadcast(&pf->cv);
            pthread_mutex_unlock(&pf->mu);
            break;
        }
        size_t slot = (pf->head + pf->count) % PF_SLOTS;
        pthread_mutex_unlock(&pf->mu);
        /* Only this thread writes a free slot; the consumer reads filled ones. */
        memcpy(pf->buf[slot], chunk, (size_t)n);
        pthread_mutex_lock(&pf->mu);
        pf->len[slot] = (size_t)n;
        pf->count++;
        pthread_cond_broadcast(&pf->cv);
        pthread_mutex_unlock(&pf->mu);
    }
    pthread_mutex_lock(&pf->mu);
    struct rbx_stream *next = pf->result == 0 && !pf->cancel ? TAKE_PTR(pf->next) : NULL;
    pthread_mutex_unlock(&pf->mu);
    if (next)
        (void)rbx_stream_prefetch(next, NULL);
    return NULL;
}

int rbx_stream_prefetch(struct rbx_stream *s, struct rbx_stream *next)
{
    if (s->pf) {
        /* Already running: `next` starts when it is done, or now if it is. */
        pthread_mutex_lock(&s->pf->mu);
        bool now = s->pf->done && s->pf->result == 0 && !s->pf->cancel;
        if (!now)
            s->pf->next = next;
        pthread_mutex_unlock(&s->pf->mu);
        return now && next ? rbx_stream_prefetch(next, NULL) : 0;
    }
    struct prefetch *pf = rbx_xcalloc(1, sizeof(*pf));
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    for (size_t i = 0; i < PF_SLOTS; i++)
        pf->buf[i] = rbx_xmalloc(s->out ? OUT_CHUNK : RAW_CHUNK);
    pf->next = next;
    s->pf = pf;
    if (pthread_create(&pf->th, NULL, prefetch_main, s) != 0) {
        /* No thread: the stream decompresses inline, as without prefetch. */
        for (size_t i = 0; i < PF_SLOTS; i++)
            free(pf->buf[i]);
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
        free(pf);
        s->pf = NULL;
        return -EAGAIN;
    }
    return 0;
}

/* Stop the producer (when running) and wait for it; the stream is the caller's again. */
static void prefetch_stop(struct rbx_stream *s)
{
    struct prefetch *pf = s->pf;
    if (!pf)
        return;
    pthread_mutex_lock(&pf->mu);
    pf->cancel = true;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->th, NULL);
    for (size_t i = 0; i < PF_SLOTS; i++)
        free(pf->buf[i]);
    rbx_error_free(pf->err);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
    free(pf);
    s->pf = NULL;
}

static ssize_t prefetch_next(struct rbx_stream *s, const void **buf, struct rbx_error **err)
{
    struct prefetch *pf = s->pf;
    pthread_mutex_lock(&pf->mu);
    if (pf->borrowed) {
        pf->head = (pf->head + 1) % PF_SLOTS;
        pf->count--;
        pf->borrowed = false;
        pthread_cond_broadcast(&pf->cv);
    }
    while (pf->count == 0 && !pf->done)
        pthread_cond_wait(&pf->cv, &pf->mu);
    ssize_t n;
    if (pf->count > 0) {
        *buf = pf->buf[pf->head];
        n = (ssize_t)pf->len[pf->head];
        pf->borrowed = true;
    } else {
        n = pf->result;
        if (n < 0 && pf->err) {
            if (err && !*err)
                *err = TAKE_PTR(pf->err);
        } else if (n < 0) {
            n = rbx_error_set(err, RBX_ERR_INTERNAL, ECANCELED, "%s: cancelled", s->what);
        }
    }
    pthread_mutex_unlock(&pf->mu);
    return n;
}

struct rbx_stream *rbx_stream_new(int fd, enum rbx_compression c, const char *digest, int64_t size,
                                  uint64_t max_out, const char *what)
{
    struct rbx_stream *s = rbx_xcalloc(1, sizeof(*s));
    s->fd = fd;
    s->compression = c;
    s->what = rbx_xstrdup(what);
    if (digest)
        snprintf(s->digest, sizeof(s->digest), "%s", digest);
    s->size = size;
    s->max_out = max_out;
    s->raw_hash = rbx_sha256_new();
    /* An uncompressed blob's diff_id is its digest: no second hash. */
    if (c != RBX_COMPRESSION_NONE)
        s->out_hash = rbx_sha256_new();
    s->in = rbx_xmalloc(RAW_CHUNK);
    if (c == RBX_COMPRESSION_GZIP) {
        s->out = rbx_xmalloc(OUT_CHUNK);
#ifdef RBX_HAVE_ISAL
        if (rbx_isal_available()) {
            s->isal = rbx_xmalloc(sizeof(*s->isal));
            isal_inflate_init(s->isal);
            s->isal->crc_flag = ISAL_GZIP;
        }
#endif
        if (!s->isal) {
            if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
                abort();
            s->z_init = true;
        }
    } else if (c == RBX_COMPRESSION_ZSTD) {
        s->out = rbx_xmalloc(OUT_CHUNK);
        s->zd = ZSTD_createDCtx();
        if (!s->zd)
            abort();
        s->zret = 1;
    }
    return s;
}

void rbx_stream_set_progress(struct rbx_stream *s, rbx_stream_progress_fn fn, void *userdata)
{
    s->progress = fn;
    s->progress_data = userdata;
}

struct rbx_stream *rbx_stream_free(struct rbx_stream *s)
{
    if (!s)
        return NULL;
    prefetch_stop(s);
    if (s->fd >= 0)
        close(s->fd);
    if (s->z_init)
        inflateEnd(&s->z);
#ifdef RBX_HAVE_ISAL
    free(s->isal);
#endif
    ZSTD_freeDCtx(s->zd);
    rbx_sha256_free(s->raw_hash);
    rbx_sha256_free(s->out_hash);
    free(s->in);
    free(s->out);
    free(s->what);
    free(s);
    return NULL;
}

uint64_t rbx_stream_raw_bytes(const struct rbx_stream *s)
{
    return s->raw_bytes;
}
uint64_t rbx_stream_out_bytes(const struct rbx_stream *s)
{
    return s->out_bytes;
}

/* At the end of the compressed bytes: they must be exactly the descriptor's. */
static int raw_verify(struct rbx_stream *s, struct rbx_error **err)
{
    if (s->raw_verified)
        return 0;
    s->raw_verified = true;
    if (s->size >= 0 && s->raw_bytes != (uint64_t)s->size)
        return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG, "%s: size %llu, descriptor says %lld",
                             s->what, (unsigned long long)s->raw_bytes, (long long)s->size);
    if (s->digest[0]) {
        char got[RBX_DIGEST_LEN + 1];
        rbx_sha256_final(s->raw_hash, got);
        if (strcmp(got, s->digest) != 0)
            return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG, "%s: digest mismatch (got %s)",
                                 s->what, got);
    }
    return 0;
}

/* Refill the input buffer when it is empty. Returns 0, or 1 at the verified end of input. */
static int raw_fill(struct rbx_stream *s, struct rbx_error **err)
{
    if (s->in_pos < s->in_len)
        return 0;
    if (s->raw_eof)
        return 1;
    size_t want = RAW_CHUNK;
    /* Never read more than one byte past the promised size: a longer blob is refused at once,
     * not after streaming gigabytes of it. */
    if (s->size >= 0 && (uint64_t)s->size + 1 - s->raw_bytes < want)
        want = (size_t)((uint64_t)s->size + 1 - s->raw_bytes);
    ssize_t n;
    do
        n = read(s->fd, s->in, want);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read %s", s->what);
    if (n == 0) {
        s->raw_eof = true;
        int r = raw_verify(s, err);
        return r < 0 ? r : 1;
    }
    s->raw_bytes += (uint64_t)n;
    if (s->size >= 0 && s->raw_bytes > (uint64_t)s->size)
        return rbx_error_set(err, RBX_ERR_DIGEST, EBADMSG,
                             "%s: longer than the %lld bytes its descriptor says", s->what,
                             (long long)s->size);
    rbx_sha256_update(s->raw_hash, s->in, (size_t)n);
    s->in_pos = 0;
    s->in_len = (size_t)n;
    s->any_input = true;
    if (s->progress)
        s->progress(s->progress_data, (uint64_t)n);
    return 0;
}

static int out_account(struct rbx_stream *s, const void *buf, size_t n, struct rbx_error **err)
{
    s->out_bytes += n;
    if (s->max_out && s->out_bytes > s->max_out) {
        char lim[32];
        return rbx_error_set(err, RBX_ERR_LIMIT, EFBIG, "%s: expands to more than %s", s->what,
                             rbx_format_size(s->max_out, lim, sizeof(lim)));
    }
    if (s->out_hash)
        rbx_sha256_update(s->out_hash, buf, n);
    return 0;
}

static ssize_t next_plain(struct rbx_stream *s, const void **buf, struct rbx_error **err)
{
    int r = raw_fill(s, err);
    if (r < 0)
        return r;
    if (r == 1)
        return 0;
    size_t n = s->in_len - s->in_pos;
    *buf = s->in + s->in_pos;
    s->in_pos = s->in_len;
    if ((r = out_account(s, *buf, n, err)) < 0)
        return r;
    return (ssize_t)n;
}

static ssize_t next_gzip(struct rbx_stream *s, const void **buf, struct rbx_error **err)
{
    for (;;) {
        int r = raw_fill(s, err);
        if (r < 0)
            return r;
        if (r == 1) {
            if (!s->z_member_done)
                return rbx_error_set(err, RBX_ERR_MALFORMED, EBADMSG, "truncated gzip stream");
            return 0;
        }
        if (s->z_member_done) {
            /* More bytes after a member: another member (gzip is multi-member). */
            if (inflateReset(&s->z) != Z_OK)
                abort();
            s->z_member_done = false;
        }
        s->z.next_in = s->in + s->in_pos;
        s->z.avail_in = (uInt)(s->in_len - s->in_pos);
        s->z.next_out = s->out;
        s->z.avail_out = OUT_CHUNK;
        int zr = inflate(&s->z, Z_NO_FLUSH);
        s->in_pos = s->in_len - s->z.avail_in;
        size_t produced = OUT_CHUNK - s->z.avail_out;
        if (zr == Z_STREAM_END) {
            s->z_member_done = true;
        } else if (zr != Z_OK && !(zr == Z_BUF_ERROR && produced == 0)) {
            return rbx_error_set(err, RBX_ERR_MALFORMED, EBADMSG, "invalid gzip data: %s",
                                 s->z.msg ? s->z.msg : "inflate failed");
        }
        if (produced) {
            *buf = s->out;
            if ((r = out_account(s, s->out, produced, err)) < 0)
                return r;
            return (ssize_t)produced;
        }
    }
}

#ifdef RBX_HAVE_ISAL
static ssize_t next_gzip_isal(struct rbx_stream *s, const void **buf, struct rbx_error **err)
{
    struct inflate_state *st = s->isal;
    for (;;) {
        int r = raw_fill(s, err);
        if (r < 0)
            return r;
        if (r == 1) {
            if (!s->z_member_done)
                return rbx_error_set(err, RBX_ERR_MALFORMED, EBADMSG, "truncated gzip stream");
            return 0;
        }
        if (s->z_member_done) {
            /* More bytes after a member: another member (gzip is multi-member). */
            isal_inflate_reset(st);
            st->crc_flag = ISAL_GZIP;
            s->z_member_done = false;
        }
        st->next_in = s->in + s->in_pos;
        st->avail_in = (uint32_t)(s->in_len - s->in_pos);
        st->next_out = s->out;
        st->avail_out = OUT_CHUNK;
        int ir = isal_inflate(st);
        s->in_pos = s->in_len - st->avail_in;
        size_t produced = OUT_CHUNK - st->avail_out;
        if (ir < 0)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EBADMSG, "invalid gzip data (%s)",
                                 ir == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch"
                                 : ir == ISAL_INVALID_WRAPPER  ? "not a gzip header"
                                                               : "bad deflate stream");
        if (st->block_state == ISAL_BLOCK_FINISH)
            s->z_member_done = true;
        if (produced) {
            *buf = s->out;
            if ((r = out_account(s, s->out, produced, err)) < 0)
                return r;
            return (ssize_t)produced;
        }
    }
}
#endif

static ssize_t next_zstd(struct rbx_stream *s, const void **buf, struct rbx_error **err)
{
    for (;;) {
        int r = raw_fill(s, err);
        if (r < 0)
            return r;
        if (r == 1) {
            if (s->zret != 0 || !s->any_input)
                return rbx_error_set(err, RBX_ERR_MALFORMED, EBADMSG, "truncated zstd stream");
            return 0;
        }
        ZSTD_inBuffer in = {s->in, s->in_len, s->in_pos};
        ZSTD_outBuffer out = {s->out, OUT_CHUNK, 0};
        size_t zr = ZSTD_decompressStream(s->zd, &out, &in);
        if (ZSTD_isError(zr))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EBADMSG, "invalid zstd data: %s",
                                 ZSTD_getErrorName(zr));
        s->zret = zr;
        s->in_pos = in.pos;
        if (out.pos) {
            *buf = s->out;
            if ((r = out_account(s, s->out, out.pos, err)) < 0)
                return r;
            return (ssize_t)out.pos;
        }
    }
}

ssize_t rbx_stream_next(struct rbx_stream *s, const void **buf, struct rbx_error **err)
{
    if (s->pf)
        return prefetch_next(s, buf, err);
    return stream_next_direct(s, buf, err);
}

static ssize_t stream_next_direct(struct rbx_stream *s, const void **buf, struct rbx_error **err)
{
    if (s->done)
        return 0;
    ssize_t n;
    switch (s->compression) {
#ifdef RBX_HAVE_ISAL
    case RBX_COMPRESSION_GZIP:
        n = s->isal ? next_gzip_isal(s, buf, err) : next_gzip(s, buf, err);
        break;
#else
    case RBX_COMPRESSION_GZIP: n = next_gzip(s, buf, err); break;
#endif
    case RBX_COMPRESSION_ZSTD: n = next_zstd(s, buf, err); break;
    default: n = next_plain(s, buf, err); break;
    }
    if (n == 0)
        s->done = true;
    return n;
}

int rbx_stream_drain(struct rbx_stream *s, struct rbx_error **err)
{
    const void *buf;
    ssize_t n;
    while ((n = rbx_stream_next(s, &buf, err)) > 0)
        ;
    return n < 0 ? (int)n : 0;
}

void rbx_stream_blame_blob(struct rbx_stream *s, struct rbx_error **err)
{
    prefetch_stop(s); /* the rest of the blob is read here */
    if (s->raw_verified)
        return;
    _cleanup_error_ struct rbx_error *mine = NULL;
    for (;;) {
        s->in_pos = s->in_len;
        int r = raw_fill(s, &mine);
        if (r != 0)
            break;
    }
    if (mine && mine->kind == RBX_ERR_DIGEST && err) {
        rbx_error_free(*err);
        *err = TAKE_PTR(mine);
    }
}

void rbx_stream_diff_id(struct rbx_stream *s, char out[RBX_DIGEST_LEN + 1])
{
    if (!s->out_hash) {
        /* Uncompressed: the diff_id is the blob digest, already final in raw_verify when a
         * digest was expected; otherwise finish the raw hash now. */
        if (s->digest[0] && s->raw_verified) {
            memcpy(out, s->digest, RBX_DIGEST_LEN + 1);
            return;
        }
        rbx_sha256_final(s->raw_hash, out);
        return;
    }
    rbx_sha256_final(s->out_hash, out);
}

/* ---- libarchive, fed by the stream -------------------------------------------------------- */

static la_ssize_t tar_read_cb(struct archive *a, void *ud, const void **buf)
{
    struct rbx_stream *s = ud;
    ssize_t n = rbx_stream_next(s, buf, s->tar_errslot);
    if (n < 0) {
        archive_set_error(a, EIO, "%s", "stream error");
        return -1;
    }
    return n;
}

struct archive *rbx_tar_reader_new(struct rbx_stream *s, struct rbx_error **errslot)
{
    struct archive *a = archive_read_new();
    if (!a)
        abort();
    /* The tar reader handles ustar, pax and GNU dialects; no filter, no other format: the
     * decompression is ours and nothing here may run an external program. */
    archive_read_support_format_tar(a);
    archive_read_support_filter_none(a);
    s->tar_errslot = errslot;
    /* A failed open (a stream error or no tar in the first block) leaves the reader fatal:
     * the first archive_read_next_header reports it, through rbx_tar_reader_error. */
    (void)archive_read_open(a, s, NULL, tar_read_cb, NULL);
    return a;
}

int rbx_tar_reader_error(struct archive *a, struct rbx_stream *s, struct rbx_error **errslot,
                         struct rbx_error **err)
{
    if (errslot && *errslot) {
        int r = -(*errslot)->errnum;
        if (err && !*err)
            *err = TAKE_PTR(*errslot);
        return r ? r : -EIO;
    }
    const char *msg = archive_error_string(a);
    return rbx_error_set(err, RBX_ERR_MALFORMED, EBADMSG, "tar: %s", msg ? msg : "unreadable");
}

int rbx_blob_read(int dirfd, const char *digest, int64_t size, size_t max, const char *what,
                  char **out, size_t *len, struct rbx_error **err)
{
    if (size >= 0 && (uint64_t)size > max)
        return rbx_error_set(err, RBX_ERR_LIMIT, EFBIG, "%s: %lld bytes (limit %zu)", what,
                             (long long)size, max);
    int fd = rbx_blob_open(dirfd, digest, err);
    if (fd < 0)
        return fd;
    _cleanup_(rbx_stream_freep) struct rbx_stream *s =
        rbx_stream_new(fd, RBX_COMPRESSION_NONE, digest, size, max, what);
    size_t cap = size >= 0 ? (size_t)size : 4096, n = 0;
    _cleanup_free_ char *buf = rbx_xmalloc(cap + 1);
    const void *chunk;
    ssize_t r;
    while ((r = rbx_stream_next(s, &chunk, err)) > 0) {
        if (n + (size_t)r > cap) {
            cap = (n + (size_t)r) * 2;
            buf = rbx_xrealloc(buf, cap + 1);
        }
        memcpy(buf + n, chunk, (size_t)r);
        n += (size_t)r;
    }
    if (r < 0)
        return (int)r;
    buf[n] = '\0';
    *out = TAKE_PTR(buf);
    if (len)
        *len = n;
    return 0;
}
