/* rbx_probe.c — a static program the confinement tests copy into a rootfs and run inside the
 * sandbox: each argument names an attempt (a system call, a file write, a read of a masked file)
 * and the probe prints "NAME: ok" or "NAME: <errno name>", one line each. It is only ever run
 * inside reprobox. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long r)
{
    if (r >= 0)
        printf("%s: ok\n", name);
    else
        printf("%s: %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
}

/* A 32-bit system call through the i386 entry, from this 64-bit process. */
static long int80(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

static void int80_report(const char *name, long nr, long a, long b, long c)
{
    /* Kernels without ia32 emulation kill the caller: try in a child first. */
    pid_t p = fork();
    if (p == 0) {
        long r = int80(nr, a, b, c);
        _exit(r >= 0 ? 0 : r < -4095 ? 255 : (int)(-r) & 0xff);
    }
    int st;
    waitpid(p, &st, 0);
    if (WIFSIGNALED(st)) {
        printf("%s: unsupported\n", name);
        return;
    }
    int e = WEXITSTATUS(st);
    if (e == 0)
        printf("%s: ok\n", name);
    else
        printf("%s: %s\n", name, strerrorname_np(e) ? strerrorname_np(e) : "E?");
}

static void file_read(const char *name, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("%s: %s\n", name, errno == ENOENT ? "absent" : strerrorname_np(errno));
        return;
    }
    char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0 && errno == EISDIR) {
        printf("%s: dir\n", name);
        return;
    }
    printf("%s: %s\n", name, n == 0 ? "empty" : n > 0 ? "readable" : strerrorname_np(errno));
}

static void dir_list(const char *name, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        printf("%s: %s\n", name, errno == ENOENT ? "absent" : strerrorname_np(errno));
        return;
    }
    char buf[4096];
    long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
    close(fd);
    /* "." and ".." only: 2 entries of 24 bytes each. */
    printf("%s: %s\n", name, n <= 48 ? "empty" : "listed");
}

static void file_write(const char *name, const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        report(name, -1);
        return;
    }
    ssize_t n = write(fd, "0", 1);
    close(fd);
    report(name, n);
}

static void clone_with(const char *name, unsigned long flags)
{
    long r = syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    report(name, r);
}

static void alloc_mb(long mb)
{
    /* Touch every page: the memory limit is met by use, not by reservation. */
    for (long i = 0; i < mb; i++) {
        char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            report("alloc", -1);
            return;
        }
        memset(p, 1, 1 << 20);
    }
    printf("alloc: ok\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "mount"))
            report(a, mount("none", "/tmp", "tmpfs", 0, NULL));
        else if (!strcmp(a, "umount2"))
            report(a, umount2("/proc", MNT_DETACH));
        else if (!strcmp(a, "unshare-user"))
            report(a, unshare(CLONE_NEWUSER));
        else if (!strcmp(a, "unshare-mnt"))
            report(a, unshare(CLONE_NEWNS));
        else if (!strcmp(a, "clone-newns"))
            clone_with(a, CLONE_NEWNS);
        else if (!strcmp(a, "clone-newuser"))
            clone_with(a, CLONE_NEWUSER);
        else if (!strcmp(a, "clone-plain"))
            clone_with(a, 0);
        else if (!strcmp(a, "clone3")) {
            struct clone_args ca;
            memset(&ca, 0, sizeof(ca));
            ca.exit_signal = SIGCHLD;
            long r = syscall(SYS_clone3, &ca, sizeof(ca));
            if (r == 0)
                _exit(0);
            if (r > 0)
                waitpid((pid_t)r, NULL, 0);
            report(a, r);
        } else if (!strcmp(a, "setns")) {
            int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
            report(a, setns(fd, 0));
        } else if (!strcmp(a, "keyctl"))
            report(a, syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0));
        else if (!strcmp(a, "add_key"))
            report(a, syscall(SYS_add_key, "user", "rbx", "x", 1, -3));
        else if (!strcmp(a, "request_key"))
            report(a, syscall(SYS_request_key, "user", "rbx", NULL, 0));
        else if (!strcmp(a, "bpf")) {
            char attr[128];
            memset(attr, 0, sizeof(attr));
            report(a, syscall(SYS_bpf, 0 /* MAP_CREATE */, attr, sizeof(attr)));
        } else if (!strcmp(a, "perf_event_open")) {
            char attr[128];
            memset(attr, 0, sizeof(attr));
            *(uint32_t *)attr = 1;               /* PERF_TYPE_SOFTWARE */
            *(uint32_t *)(attr + 4) = 112;       /* size */
            report(a, syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
        } else if (!strcmp(a, "userfaultfd"))
            report(a, syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */));
        else if (!strcmp(a, "io_uring_setup")) {
            char params[120];
            memset(params, 0, sizeof(params));
            report(a, syscall(425, 1, params));
        } else if (!strcmp(a, "kexec_load"))
            report(a, syscall(SYS_kexec_load, 0, 0, NULL, 0));
        else if (!strcmp(a, "init_module"))
            report(a, syscall(SYS_init_module, NULL, 0, ""));
        else if (!strcmp(a, "open_by_handle_at")) {
            char h[136];
            memset(h, 0, sizeof(h));
            *(unsigned *)h = 8;
            report(a, syscall(SYS_open_by_handle_at, AT_FDCWD, h, O_RDONLY));
        } else if (!strcmp(a, "socket-vsock"))
            report(a, socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
        else if (!strcmp(a, "socket-alg"))
            report(a, socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0));
        else if (!strcmp(a, "socket-inet"))
            report(a, socket(AF_INET, SOCK_STREAM, 0));
        else if (!strcmp(a, "socket-raw"))
            report(a, socket(AF_INET, SOCK_RAW, 1));
        else if (!strcmp(a, "personality-query"))
            report(a, personality(0xffffffff));
        else if (!strcmp(a, "personality-norandom"))
            report(a, personality(ADDR_NO_RANDOMIZE));
        else if (!strcmp(a, "sethostname"))
            report(a, sethostname("x", 1));
        else if (!strcmp(a, "mknod"))
            report(a, mknod("/tmp/rbx-null", S_IFCHR | 0666, makedev(1, 3)));
        else if (!strcmp(a, "chroot"))
            report(a, chroot("/tmp"));
        else if (!strcmp(a, "newer-syscall"))
            report(a, syscall(1000));
        else if (!strcmp(a, "kexec_file_load"))
            report(a, syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
        else if (!strcmp(a, "x32-unshare"))
            report(a, syscall(0x40000000 | 272, CLONE_NEWUSER));
        else if (!strcmp(a, "x32-getpid"))
            report(a, syscall(0x40000000 | 39));
        else if (!strcmp(a, "int80-getpid"))
            int80_report(a, 20, 0, 0, 0);
        else if (!strcmp(a, "int80-mount"))
            int80_report(a, 21, 0, 0, 0);
        else if (!strcmp(a, "int80-unshare"))
            int80_report(a, 310, CLONE_NEWUSER, 0, 0);
        else if (!strcmp(a, "int80-keyctl"))
            int80_report(a, 288, 0, -3, 0);
        else if (!strcmp(a, "int80-newer"))
            int80_report(a, 1000, 0, 0, 0);
        else if (!strcmp(a, "write-sysrq"))
            file_write(a, "/proc/sysrq-trigger");
        else if (!strcmp(a, "write-procsys"))
            file_write(a, "/proc/sys/kernel/domainname");
        else if (!strncmp(a, "read:", 5))
            file_read(a, a + 5);
        else if (!strncmp(a, "list:", 5))
            dir_list(a, a + 5);
        else if (!strcmp(a, "tiocsti")) {
            char c = 'x';
            report(a, ioctl(0, TIOCSTI, &c));
        } else if (!strncmp(a, "chdir:", 6))
            report(a, chdir(a + 6));
        else if (!strncmp(a, "alloc:", 6))
            alloc_mb(atol(a + 6));
        else
            printf("%s: unknown probe\n", a);
    }
    return 0;
}
