/* whiteout.c — OCI whiteouts in overlayfs form, written inside the layer's own directory:
 * ".wh.NAME" becomes a 0/0 character device NAME, ".wh..wh..opq" an opaque directory xattr.
 * The sandbox mounts with "userxattr", so user.overlay.* is what the kernel reads there. */
#include "layers/layers-internal.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

bool rbx_xattr_forbidden(const char *name)
{
    /* Carried over from a tar, these would forge whiteouts, opaque dirs or redirects in the
     * layer: overlay state is made here from the OCI form, never taken from the input. */
    return strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "user.overlay.", 13) == 0;
}

int rbx_whiteout_make(int parentfd, const char *target, struct rbx_error **err)
{
    /* mknod of a 0/0 char device is allowed in a user namespace since Linux 5.8 for exactly
     * this purpose; refused, there is no way to express the whiteout. */
    if (mknodat(parentfd, target, S_IFCHR | 0000, makedev(0, 0)) < 0)
        return rbx_error_set_errno(err, errno == EPERM ? RBX_ERR_PERMISSION : RBX_ERR_IO, errno,
                                   "whiteout \"%s\": cannot create its 0/0 character device",
                                   target);
    return 0;
}

int rbx_whiteout_opaque(int dirfd, struct rbx_error **err)
{
    if (fsetxattr(dirfd, "user.overlay.opaque", "y", 1, 0) < 0) {
        if (errno == ENOTSUP)
            return rbx_error_set(err, RBX_ERR_UNSUPPORTED, ENOTSUP,
                                 "opaque directory: the store's filesystem has no user xattrs");
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "opaque directory: user.overlay.opaque");
    }
    /* For an overlay mounted by real root without userxattr; refused in a user namespace, where
     * the user.* form above is the one read. Detected by trying, not by uid. */
    (void)fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0);
    return 0;
}
