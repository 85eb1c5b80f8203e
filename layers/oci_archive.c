/* oci_archive.c — oci-archive:FILE[:TAG], a tar of an OCI layout: its blobs are imported into
 * the store (each checked against its name), then the layout is read as oci: would read it. */
#include "layers/layers-internal.h"

#include <fcntl.h>
#include <string.h>

static void import_clearp(struct rbx_import *imp)
{
    rbx_import_clear(imp);
}

int rbx_oci_archive_open(struct rbx_store *store, struct rbx_image *img, const char *file,
                         const char *tag, bool tag_explicit, const struct rbx_platform *platform,
                         struct rbx_error **err)
{
    _cleanup_(import_clearp) struct rbx_import imp = {0};
    int r = rbx_store_import_archive(store, file, true, &imp, err);
    if (r < 0)
        return r;
    const struct rbx_import_entry *marker = rbx_import_find(&imp, "oci-layout");
    if (!marker)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT,
                             "no such image layout (no oci-layout file in the archive)");
    const struct rbx_import_entry *index = rbx_import_find(&imp, "index.json");
    if (!index)
        return rbx_error_set(err, RBX_ERR_NOT_FOUND, ENOENT, "index.json: not in the archive");

    _cleanup_free_ char *mbuf = NULL, *ibuf = NULL;
    size_t mlen = 0, ilen = 0;
    if ((r = rbx_blob_read(store->blobs_fd, marker->digest, marker->size, RBX_SMALL_FILE_MAX,
                           "oci-layout", &mbuf, &mlen, err)) < 0 ||
        (r = rbx_oci_layout_check(mbuf, mlen, err)) < 0 ||
        (r = rbx_blob_read(store->blobs_fd, index->digest, index->size, RBX_MANIFEST_MAX,
                           "index.json", &ibuf, &ilen, err)) < 0)
        return r;
    img->archive_key = rbx_xstrdup(imp.key);
    img->blob_dirfd = fcntl(store->blobs_fd, F_DUPFD_CLOEXEC, 3);
    if (img->blob_dirfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "dup");
    return rbx_oci_resolve(img, ibuf, ilen, tag, tag_explicit, platform, err);
}
