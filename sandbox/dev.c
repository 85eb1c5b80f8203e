/* dev.c — the container's /dev: a small tmpfs holding the host's harmless character devices
 * (bind-mounted, since a user namespace cannot make device nodes), a private devpts, /dev/shm,
 * /dev/mqueue and the usual symlinks. Rows of the mount table (mounts.c applies them). */
#include "sandbox/sandbox-internal.h"

#include <sys/mount.h>

const struct rbx_mount_row rbx_dev_rows[] = {
    {"tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_STRICTATIME, "mode=755,size=65536k",
     RBX_MNT_DIR},
    {"/dev/null", "/dev/null", NULL, MS_BIND, NULL, RBX_MNT_FILE},
    {"/dev/zero", "/dev/zero", NULL, MS_BIND, NULL, RBX_MNT_FILE},
    {"/dev/full", "/dev/full", NULL, MS_BIND, NULL, RBX_MNT_FILE | RBX_MNT_OPTIONAL},
    {"/dev/random", "/dev/random", NULL, MS_BIND, NULL, RBX_MNT_FILE},
    {"/dev/urandom", "/dev/urandom", NULL, MS_BIND, NULL, RBX_MNT_FILE},
    {"/dev/tty", "/dev/tty", NULL, MS_BIND, NULL, RBX_MNT_FILE | RBX_MNT_OPTIONAL},
    /* No gid=5: with a single mapped id the tty group does not exist in the namespace. */
    {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620",
     RBX_MNT_DIR},
    {NULL, "/dev/ptmx", NULL, 0, "pts/ptmx", RBX_MNT_SYMLINK},
    {"shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
     RBX_MNT_DIR},
    {"mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, RBX_MNT_DIR},
    {NULL, "/dev/fd", NULL, 0, "/proc/self/fd", RBX_MNT_SYMLINK},
    {NULL, "/dev/stdin", NULL, 0, "/proc/self/fd/0", RBX_MNT_SYMLINK},
    {NULL, "/dev/stdout", NULL, 0, "/proc/self/fd/1", RBX_MNT_SYMLINK},
    {NULL, "/dev/stderr", NULL, 0, "/proc/self/fd/2", RBX_MNT_SYMLINK},
};

const size_t rbx_dev_rows_count = RBX_ARRAY_SIZE(rbx_dev_rows);
