/* extract.c — a local tar archive (ADD's) recognised by its content and applied to a directory
 * through the same hardened applier that unpacks layers. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>

/* A tar header: "ustar" magic, or an old-style header whose checksum adds up. */
static bool tar_header_ok(const unsigned char *h, size_t len)
{
    if (len < 512)
        return false;
    if (memcmp(h + 257, "ustar", 5) == 0)
        return true;
    unsigned sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    char field[9];
    memcpy(field, h + 148, 8);
    field[8] = '\0';
    char *end;
    unsigned long want = strtoul(field, &end, 8);
    return end != field && want == sum && h[0] != '\0';
}

int rbx_tar_sniff(int fd, enum rbx_archive_kind *kind, struct rbx_error **err)
{
    *kind = RBX_ARCHIVE_NONE;
    unsigned char head[512];
    ssize_t n = pread(fd, head, sizeof(head), 0);
    if (n < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read");
    if (n >= 3 && memcmp(head, "BZh", 3) == 0) {
        *kind = RBX_ARCHIVE_BZIP2;
        return 0;
    }
    if (n >= 6 && memcmp(head,
                         "\xfd"
                         "7zXZ\0",
                         6) == 0) {
        *kind = RBX_ARCHIVE_XZ;
        return 0;
    }
    enum rbx_compression c = rbx_compression_sniff(head, (size_t)n);
    if (c == RBX_COMPRESSION_NONE) {
        if (tar_header_ok(head, (size_t)n))
            *kind = RBX_ARCHIVE_TAR;
        return 0;
    }
    /* Compressed: a tar only when what it holds starts like one. */
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "dup");
    if (lseek(dup, 0, SEEK_SET) < 0) {
        close(dup);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "seek");
    }
    _cleanup_(rbx_stream_freep) struct rbx_stream *s =
        rbx_stream_new(dup, c, NULL, -1, 1 << 20, "archive");
    unsigned char first[512];
    size_t got = 0;
    while (got < sizeof(first)) {
        const void *buf;
        ssize_t k = rbx_stream_next(s, &buf, NULL);
        if (k <= 0)
            break;
        size_t take = (size_t)k < sizeof(first) - got ? (size_t)k : sizeof(first) - got;
        memcpy(first + got, buf, take);
        got += take;
    }
    if (tar_header_ok(first, got))
        *kind = c == RBX_COMPRESSION_GZIP ? RBX_ARCHIVE_TAR_GZIP : RBX_ARCHIVE_TAR_ZSTD;
    return 0;
}

int rbx_tar_extract(int fd, enum rbx_archive_kind kind, int dirfd, const char *what,
                    struct rbx_tar_extract_stats *stats, struct rbx_error **err)
{
    enum rbx_compression c = kind == RBX_ARCHIVE_TAR_GZIP   ? RBX_COMPRESSION_GZIP
                             : kind == RBX_ARCHIVE_TAR_ZSTD ? RBX_COMPRESSION_ZSTD
                                                            : RBX_COMPRESSION_NONE;
    if (kind != RBX_ARCHIVE_TAR && c == RBX_COMPRESSION_NONE)
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: only tar archives, plain, gzip'd or zstd'd, are extracted", what);
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0 || lseek(dup, 0, SEEK_SET) < 0) {
        if (dup >= 0)
            close(dup);
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "%s", what);
    }
    _cleanup_(rbx_stream_freep) struct rbx_stream *s =
        rbx_stream_new(dup, c, NULL, -1, RBX_LAYER_BYTES_DEFAULT, what);
    struct rbx_unpack_counts counts = {0};
    int r;
    {
        /* Overlay form: one tree of its own, whiteouts counted (and refused below). */
        _cleanup_(rbx_applier_freep) struct rbx_applier *ap = rbx_applier_new(dirfd, false, &counts);
        r = rbx_applier_layer(ap, s, what, NULL, err);
        if (r >= 0)
            r = rbx_applier_finish(ap, err);
        if (r >= 0 && rbx_applier_lower_links(ap) && rbx_applier_lower_links(ap)[0])
            r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                              "%s: hardlink \"%s\" to \"%s\", which the archive does not hold",
                              what, rbx_applier_lower_links(ap)[0], rbx_applier_lower_links(ap)[1]);
    }
    if (r < 0) {
        rbx_unpack_counts_clear(&counts);
        return r;
    }
    if (counts.whiteouts || counts.opaques) {
        rbx_unpack_counts_clear(&counts);
        return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                             "%s: holds whiteout entries (.wh.*), which have no meaning outside "
                             "a layer",
                             what);
    }
    if (stats) {
        stats->entries = counts.entries;
        stats->skipped = counts.skipped_devices + counts.skipped_owners + counts.skipped_other;
    }
    rbx_unpack_counts_clear(&counts);
    return 0;
}
