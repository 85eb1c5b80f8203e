/* rootfs.c — the root of the sandbox: an overlay of the image's layers with a writable upper dir,
 * or a plain directory bound onto itself, mounted by the child; then pivot_root into it. */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>

#define RBX_MAX_LOWERS 500 /* overlayfs' own limit */

static bool force_mount2;

void rbx_rootfs_force_mount2(bool on)
{
    force_mount2 = on;
}

char *rbx_overlay_escape(const char *path)
{
    size_t n = 0;
    for (const char *s = path; *s; s++)
        n += (*s == '\\' || *s == ':' || *s == ',') ? 2 : 1;
    char *out = rbx_xmalloc(n + 1), *o = out;
    for (const char *s = path; *s; s++) {
        if (*s == '\\' || *s == ':' || *s == ',')
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* "lowerdir=L2:L1,upperdir=U,workdir=W,userxattr" with each path made relative to `base`
 * (a directory prefix of all of them, ending in '/') when base is given. */
static char *overlay_data(const struct rbx_spec *spec, const struct rbx_rootfs_plan *p,
                          const char *base)
{
    size_t skip = base ? strlen(base) : 0;
    char *data = rbx_xstrdup("lowerdir=");
    for (size_t i = 0; i < p->n_lowers; i++) {
        _cleanup_free_ char *e = rbx_overlay_escape(p->lowers[i] + skip);
        char *next = rbx_xasprintf("%s%s%s", data, i ? ":" : "", e);
        free(data);
        data = next;
    }
    if (spec->upper_dir) {
        _cleanup_free_ char *u = rbx_overlay_escape(spec->upper_dir + skip);
        _cleanup_free_ char *w = rbx_overlay_escape(spec->work_dir + skip);
        char *next = rbx_xasprintf("%s,upperdir=%s,workdir=%s", data, u, w);
        free(data);
        data = next;
    }
    char *next = rbx_xasprintf("%s,userxattr", data);
    free(data);
    return next;
}

/* The longest directory prefix ("/a/b/") shared by every path of the overlay. */
static char *common_dir(const struct rbx_spec *spec, const struct rbx_rootfs_plan *p)
{
    size_t len = strlen(p->lowers[0]);
    const char *first = p->lowers[0];
    const char *all[RBX_MAX_LOWERS + 2];
    size_t n = 0;
    for (size_t i = 0; i < p->n_lowers; i++)
        all[n++] = p->lowers[i];
    if (spec->upper_dir) {
        all[n++] = spec->upper_dir;
        all[n++] = spec->work_dir;
    }
    for (size_t i = 1; i < n; i++) {
        size_t k = 0;
        while (k < len && all[i][k] && all[i][k] == first[k])
            k++;
        len = k;
    }
    while (len > 0 && first[len - 1] != '/')
        len--;
    if (len <= 1)
        return NULL;
    /* Every path must go on below the prefix: "/a/b/" for "/a/b/c" but not for "/a/b/". */
    for (size_t i = 0; i < n; i++)
        if (strlen(all[i]) <= len)
            return NULL;
    return rbx_xstrndup(first, len);
}

int rbx_rootfs_plan_build(const struct rbx_spec *spec, size_t page, struct rbx_rootfs_plan *p,
                          struct rbx_error **err)
{
    memset(p, 0, sizeof(*p));
    if (!spec->rootfs_dir || spec->rootfs_dir[0] != '/')
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL, "rootfs: \"%s\" is not an absolute path",
                             spec->rootfs_dir ? spec->rootfs_dir : "");
    size_t n = rbx_strv_len(spec->lower_dirs);
    if (n == 0)
        return 0;
    if (n > RBX_MAX_LOWERS)
        return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "rootfs: %zu layers (overlayfs takes %d)",
                             n, RBX_MAX_LOWERS);
    if (!spec->upper_dir != !spec->work_dir)
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "rootfs: upper_dir and work_dir go together");
    for (size_t i = 0; i < n; i++)
        if (spec->lower_dirs[i][0] != '/')
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "rootfs: layer dir \"%s\" is not an absolute path",
                                 spec->lower_dirs[i]);
    if (spec->upper_dir && (spec->upper_dir[0] != '/' || spec->work_dir[0] != '/'))
        return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                             "rootfs: upper_dir and work_dir must be absolute paths");

    p->overlay = true;
    p->n_lowers = n;
    p->lowers = rbx_xcalloc(n, sizeof(*p->lowers));
    for (size_t i = 0; i < n; i++)
        p->lowers[i] = spec->lower_dirs[n - 1 - i]; /* overlayfs wants the top layer first */

    p->data = overlay_data(spec, p, NULL);
    if (strlen(p->data) < page)
        return 0;
    /* Too long for mount(2): the same string relative to a directory the child chdirs to. */
    free(p->data);
    p->data = NULL;
    p->data_dir = common_dir(spec, p);
    if (p->data_dir) {
        p->data = overlay_data(spec, p, p->data_dir);
        if (strlen(p->data) >= page) {
            free(p->data);
            p->data = NULL;
        }
    }
    /* Still too long: only the kernel's "lowerdir+" (6.8) can mount it; the child says so. */
    return 0;
}

void rbx_rootfs_plan_clear(struct rbx_rootfs_plan *p)
{
    free(p->lowers);
    free(p->data);
    free(p->data_dir);
    memset(p, 0, sizeof(*p));
}

/* ---- child ------------------------------------------------------------------------------- */

/* Keep the kernel's first message about what it refused ("e overlayfs: ..."). */
static void read_fs_log(int fsfd, char *detail, size_t len)
{
    char buf[256];
    ssize_t n;
    while ((n = read(fsfd, buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        if (detail[0] == '\0' && len > 0) {
            const char *m = (n > 2 && buf[1] == ' ') ? buf + 2 : buf;
            size_t k = strlen(m);
            if (k >= len)
                k = len - 1;
            while (k > 0 && (m[k - 1] == '\n' || m[k - 1] == ' '))
                k--;
            memcpy(detail, m, k);
            detail[k] = '\0';
        }
    }
}

static int overlay_new_api(const struct rbx_spec *spec, const struct rbx_rootfs_plan *p,
                           char *detail, size_t len, bool *unsupported)
{
    *unsupported = false;
    _cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fsfd < 0) {
        *unsupported = errno == ENOSYS;
        return -errno;
    }
    for (size_t i = 0; i < p->n_lowers; i++) {
        if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", p->lowers[i], 0) < 0) {
            int e = errno;
            /* Before 6.8 the key itself is unknown. */
            if (i == 0 && e == EINVAL)
                *unsupported = true;
            else
                read_fs_log(fsfd, detail, len);
            return -e;
        }
    }
    if (spec->upper_dir &&
        (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", spec->upper_dir, 0) < 0 ||
         fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", spec->work_dir, 0) < 0)) {
        int e = errno;
        read_fs_log(fsfd, detail, len);
        return -e;
    }
    /* Unmounting a writable overlay syncs the whole filesystem of its upper dir; one that is
     * thrown away after needs none of that. Only an optimisation: its refusal is forgotten. */
    if (spec->upper_dir && spec->upper_volatile &&
        fsconfig(fsfd, FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0) {
        char ignored[64] = "";
        read_fs_log(fsfd, ignored, sizeof(ignored));
    }
    /* We always mount inside a user namespace: overlay's own xattrs must be user.overlay.*. */
    if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0 ||
        fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int e = errno;
        read_fs_log(fsfd, detail, len);
        return -e;
    }
    _cleanup_close_ int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
    if (mfd < 0) {
        int e = errno;
        read_fs_log(fsfd, detail, len);
        return -e;
    }
    return rbx_move_mount(mfd, spec->rootfs_dir);
}

static int overlay_mount2(const struct rbx_spec *spec, const struct rbx_rootfs_plan *p,
                          char *detail, size_t len)
{
    if (!p->data) {
        snprintf(detail, len, "overlay options longer than a page; this kernel has no lowerdir+");
        return -E2BIG;
    }
    if (p->data_dir && chdir(p->data_dir) < 0)
        return -errno;
    int r = rbx_mount("overlay", spec->rootfs_dir, "overlay", 0, p->data);
    if (p->data_dir && chdir("/") < 0 && r == 0)
        r = -errno;
    return r;
}

int rbx_rootfs_mount(const struct rbx_spec *spec, const struct rbx_rootfs_plan *p, char *detail,
                     size_t detail_len)
{
    int r = rbx_mount_guard();
    if (r < 0)
        return r;
    if (!p->overlay) {
        r = rbx_mount(spec->rootfs_dir, spec->rootfs_dir, NULL, MS_BIND | MS_REC, NULL);
    } else {
        bool unsupported = true;
        r = force_mount2 ? -ENOSYS : overlay_new_api(spec, p, detail, detail_len, &unsupported);
        if (r < 0 && unsupported)
            r = overlay_mount2(spec, p, detail, detail_len);
    }
    if (r < 0)
        return r;
    int fd = open(spec->rootfs_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rbx_rootfs_make_readonly(int rootfd)
{
    return rbx_mount_make_readonly(rootfd, false);
}

int rbx_rootfs_pivot(int rootfd)
{
    /* The new root is a mount (we made it one) and "/" is private, as pivot_root requires. */
    if (fchdir(rootfd) < 0)
        return -errno;
    int r = rbx_mount_guard();
    if (r < 0)
        return r;
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return -errno;
    /* The old root is now stacked under the new one at "/": detach it. */
    r = rbx_umount(".", MNT_DETACH);
    if (r < 0)
        return r;
    return chdir("/") < 0 ? -errno : 0;
}
