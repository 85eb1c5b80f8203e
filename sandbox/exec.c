/* exec.c — finding the command inside the rootfs as execvp would (PATH walk, symlinks resolved in
 * the root), and explaining an execve() that failed: missing #! interpreter or ELF loader, wrong
 * architecture, no permission. These are the answers to "why does it say not found?". */
#include "sandbox/sandbox-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    return rbx_xasprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

/* 0: a regular file with an x bit. -EISDIR / -EACCES: there but not runnable. Other -errno:
 * not there. */
static int check_candidate(int rootfd, const char *path)
{
    _cleanup_error_ struct rbx_error *e = NULL;
    _cleanup_close_ int fd = rbx_open_in_root(rootfd, path, O_PATH, 0, 0, &e);
    if (fd < 0)
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
        return -EACCES;
    return 0;
}

/* Drop "." components and doubled slashes, which name the same file either way; ".." stays, as
 * after a symlink it is not what a lexical clean would make of it. */
static void tidy(char *path)
{
    char *w = path;
    const char *r = path;
    while (*r) {
        if (r[0] == '/' && r[1] == '/') {
            r++;
            continue;
        }
        if (r[0] == '/' && r[1] == '.' && (r[2] == '/' || r[2] == '\0')) {
            r += 2;
            continue;
        }
        *w++ = *r++;
    }
    if (w == path)
        *w++ = '/';
    *w = '\0';
}

static int copy_out(char *path, char *out, size_t outlen, struct rbx_error **err)
{
    tidy(path);
    size_t n = strlen(path);
    if (n >= outlen)
        return rbx_error_set(err, RBX_ERR_LIMIT, ENAMETOOLONG, "\"%s\": path too long", path);
    memcpy(out, path, n + 1);
    return 0;
}

int rbx_exec_lookup(int rootfd, const char *cwd, const char *argv0, const char *path_env, char *out,
                    size_t outlen, struct rbx_error **err)
{
    if (!cwd || !*cwd)
        cwd = "/";
    if (!path_env)
        path_env = RBX_DEFAULT_PATH;
    if (!argv0 || !*argv0)
        return rbx_error_set(err, RBX_ERR_EXEC_NOT_FOUND, ENOENT,
                             "\"\": executable file not found in $PATH");

    if (strchr(argv0, '/')) {
        _cleanup_free_ char *path = argv0[0] == '/' ? rbx_xstrdup(argv0) : join(cwd, argv0);
        int r = check_candidate(rootfd, path);
        if (r == 0)
            return copy_out(path, out, outlen, err);
        if (r == -EISDIR)
            return rbx_error_set(err, RBX_ERR_EXEC_DENIED, EISDIR, "\"%s\": is a directory", argv0);
        if (r == -EACCES)
            return rbx_error_set(err, RBX_ERR_EXEC_DENIED, EACCES, "\"%s\": permission denied",
                                 argv0);
        if (argv0[0] == '/')
            return rbx_error_set_errno(err, RBX_ERR_EXEC_NOT_FOUND, -r, "\"%s\"", argv0);
        return rbx_error_set_errno(err, RBX_ERR_EXEC_NOT_FOUND, -r, "\"%s\" (in %s)", argv0, cwd);
    }

    /* Like execvp: the first runnable match wins; a match we cannot run is reported only when
     * nothing later is runnable. */
    _cleanup_free_ char *denied = NULL;
    int denied_why = 0;
    for (const char *p = path_env;;) {
        const char *c = strchrnul(p, ':');
        _cleanup_free_ char *dir = c > p ? rbx_xstrndup(p, (size_t)(c - p)) : rbx_xstrdup(".");
        _cleanup_free_ char *base = dir[0] == '/' ? NULL : join(cwd, dir);
        _cleanup_free_ char *path = join(base ? base : dir, argv0);
        int r = check_candidate(rootfd, path);
        if (r == 0)
            return copy_out(path, out, outlen, err);
        if ((r == -EACCES || r == -EISDIR) && !denied) {
            denied = TAKE_PTR(path);
            denied_why = -r;
        }
        if (!*c)
            break;
        p = c + 1;
    }
    if (denied)
        return rbx_error_set(
            err, RBX_ERR_EXEC_DENIED, denied_why, "\"%s\": permission denied: %s %s (PATH=%s)",
            argv0, denied, denied_why == EISDIR ? "is a directory" : "is not executable", path_env);
    return rbx_error_set(err, RBX_ERR_EXEC_NOT_FOUND, ENOENT,
                         "\"%s\": executable file not found in $PATH (PATH=%s)", argv0, path_env);
}

/* ---- why execve failed -------------------------------------------------------------------- */

static uint64_t rd(const unsigned char *p, size_t n, bool be)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

static const char *machine_name(unsigned m)
{
    switch (m) {
    case 3: return "386";
    case 8: return "mips";
    case 20: return "ppc";
    case 21: return "ppc64";
    case 22: return "s390x";
    case 40: return "arm";
    case 62: return "amd64";
    case 183: return "arm64";
    case 243: return "riscv64";
    case 258: return "loong64";
    default: return NULL;
    }
}

struct elf_info {
    bool is_elf;
    unsigned machine;
    char interp[256]; /* "" when static */
};

/* Read what the kernel reads before running an ELF file: its machine and PT_INTERP. */
static void elf_read(int fd, struct elf_info *info)
{
    unsigned char h[64];
    memset(info, 0, sizeof(*info));
    if (pread(fd, h, sizeof(h), 0) < 52 || memcmp(h, "\177ELF", 4) != 0)
        return;
    bool is64 = h[4] == 2, be = h[5] == 2;
    info->is_elf = true;
    info->machine = (unsigned)rd(h + 18, 2, be);
    uint64_t phoff = is64 ? rd(h + 32, 8, be) : rd(h + 28, 4, be);
    unsigned phentsize = (unsigned)rd(h + (is64 ? 54 : 42), 2, be);
    unsigned phnum = (unsigned)rd(h + (is64 ? 56 : 44), 2, be);
    if (phentsize < (is64 ? 56u : 32u) || phentsize > 256 || phnum > 256)
        return;
    for (unsigned i = 0; i < phnum; i++) {
        unsigned char ph[256];
        if (pread(fd, ph, phentsize, (off_t)(phoff + (uint64_t)i * phentsize)) != phentsize)
            return;
        if (rd(ph, 4, be) != 3 /* PT_INTERP */)
            continue;
        uint64_t off = is64 ? rd(ph + 8, 8, be) : rd(ph + 4, 4, be);
        uint64_t sz = is64 ? rd(ph + 32, 8, be) : rd(ph + 16, 4, be);
        if (sz == 0 || sz > sizeof(info->interp))
            return;
        ssize_t n = pread(fd, info->interp, (size_t)sz, (off_t)off);
        if (n <= 0)
            info->interp[0] = '\0';
        else
            info->interp[(size_t)n < sizeof(info->interp) ? (size_t)n : sizeof(info->interp) - 1] =
                '\0';
        return;
    }
}

/* The interpreter named on a "#!" line, "" when there is none. */
static void shebang_read(int fd, char *out, size_t len)
{
    char buf[256];
    out[0] = '\0';
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n < 3 || buf[0] != '#' || buf[1] != '!')
        return;
    buf[n] = '\0';
    const char *p = buf + 2;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t k = strcspn(p, " \t\r\n");
    if (k == 0 || k >= len)
        return;
    memcpy(out, p, k);
    out[k] = '\0';
}

int rbx_exec_explain(int rootfd, const char *argv0, const char *exec_path, int errnum,
                     struct rbx_error **err)
{
    _cleanup_free_ char *name = strcmp(argv0, exec_path) == 0
                                    ? rbx_xasprintf("\"%s\"", argv0)
                                    : rbx_xasprintf("\"%s\" (%s)", argv0, exec_path);
    _cleanup_error_ struct rbx_error *ignored = NULL;
    _cleanup_close_ int fd = rbx_open_regular_in_root(rootfd, exec_path, &ignored);
    struct elf_info elf = {0};
    char interp[256] = "";
    if (fd >= 0) {
        elf_read(fd, &elf);
        if (!elf.is_elf)
            shebang_read(fd, interp, sizeof(interp));
    }

    switch (errnum) {
    case ENOENT: {
        /* The file is there (the lookup found it): what is missing is what it needs to run. */
        const char *need = elf.is_elf ? elf.interp : interp;
        int there = *need ? check_candidate(rootfd, need) : 0;
        if (*need && there != 0 && there != -EACCES && there != -EISDIR)
            return rbx_error_set(err, RBX_ERR_EXEC_FORMAT, ENOENT,
                                 "%s: %s %s not found in the image%s", name,
                                 elf.is_elf ? "ELF interpreter" : "interpreter", need,
                                 elf.is_elf ? " (built for another C library?)" : "");
        if (*need)
            return rbx_error_set(err, RBX_ERR_EXEC_FORMAT, ENOENT,
                                 "%s: interpreter %s could not be run: No such file or directory",
                                 name, need);
        return rbx_error_set_errno(err, RBX_ERR_EXEC_FORMAT, ENOENT, "%s", name);
    }
    case ENOEXEC: {
        const char *m = elf.is_elf ? machine_name(elf.machine) : NULL;
        if (elf.is_elf)
            return rbx_error_set(err, RBX_ERR_EXEC_FORMAT, ENOEXEC,
                                 "%s: exec format error: an ELF binary for %s%s", name,
                                 m ? m : "another machine", m ? ", not this machine" : "");
        return rbx_error_set(err, RBX_ERR_EXEC_FORMAT, ENOEXEC,
                             "%s: exec format error: neither a binary nor a #! script", name);
    }
    case EACCES:
    case EPERM: return rbx_error_set_errno(err, RBX_ERR_EXEC_DENIED, errnum, "%s", name);
    default:
        return rbx_error_set_errno(err, RBX_ERR_EXEC_DENIED, errnum, "%s: cannot execute", name);
    }
}
