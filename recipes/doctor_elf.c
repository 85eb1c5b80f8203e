/* doctor_elf.c — ELF files as the kernel and the dynamic loader see them: class, machine,
 * PT_INTERP, DT_NEEDED, RPATH/RUNPATH; and the loader's search for every library a program
 * needs, through the image's own ld.so.conf or musl path file, never the host's. */
#include "recipes/doctor-internal.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>

#define PT_LOAD_ 1
#define PT_DYNAMIC_ 2
#define PT_INTERP_ 3
#define DT_NULL_ 0
#define DT_NEEDED_ 1
#define DT_STRTAB_ 5
#define DT_STRSZ_ 10
#define DT_SONAME_ 14
#define DT_RPATH_ 15
#define DT_RUNPATH_ 29
#define ET_DYN_ 3

#define MAX_PHDR_BYTES 65536 /* the kernel refuses more */
#define MAX_DYNAMIC_BYTES 65536
#define MAX_STRING 4096

static uint64_t rd(const unsigned char *p, size_t n, bool be)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

void rbx_elf_clear(struct rbx_elf *e)
{
    free(e->interp);
    rbx_strv_free(e->needed);
    free(e->soname);
    free(e->rpath);
    free(e->runpath);
    memset(e, 0, sizeof(*e));
}

static bool pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    if (off > (uint64_t)INT64_MAX - n)
        return false;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

struct load {
    uint64_t vaddr, offset, filesz;
};

/* A string of the dynamic string table, read on its own (libstdc++'s table is half a MiB). */
static char *read_dynstr(int fd, uint64_t stroff, uint64_t strsz, uint64_t idx)
{
    if (idx >= strsz)
        return NULL;
    size_t n = strsz - idx < MAX_STRING ? (size_t)(strsz - idx) : MAX_STRING;
    char buf[MAX_STRING + 1];
    if (!pread_all(fd, buf, n, stroff + idx))
        return NULL;
    buf[n] = '\0';
    if (strlen(buf) == n) /* no NUL inside the table */
        return NULL;
    return rbx_xstrdup(buf);
}

RBX_PRINTF(3, 4)
static int malformed(struct rbx_error **err, const char *what, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rbx_error_set(err, RBX_ERR_MALFORMED, ENOEXEC, "%s: malformed ELF file: %s", what, msg);
}

int rbx_elf_read(int fd, const char *what, struct rbx_elf *out, struct rbx_error **err)
{
    unsigned char h[64];
    memset(out, 0, sizeof(*out));
    ssize_t n = pread(fd, h, sizeof(h), 0);
    if (n < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "read %s", what);
    if (n < 4 || memcmp(h, "\177ELF", 4) != 0)
        return 0;
    struct rbx_elf e = {.is_elf = true};
    if (n < 52 || (h[4] != 1 && h[4] != 2) || (h[5] != 1 && h[5] != 2))
        return malformed(err, what, "unknown class or byte order");
    bool is64 = h[4] == 2, be = h[5] == 2;
    if (is64 && n < 64)
        return malformed(err, what, "truncated header");
    e.cls = h[4];
    e.big_endian = be;
    e.type = (unsigned)rd(h + 16, 2, be);
    e.machine = (unsigned)rd(h + 18, 2, be);
    uint64_t phoff = is64 ? rd(h + 32, 8, be) : rd(h + 28, 4, be);
    unsigned phentsize = (unsigned)rd(h + (is64 ? 54 : 42), 2, be);
    unsigned phnum = (unsigned)rd(h + (is64 ? 56 : 44), 2, be);
    unsigned want = is64 ? 56 : 32;
    if (phnum == 0) {
        *out = e; /* a relocatable object or a file with nothing to load: no loader either */
        return 0;
    }
    if (phentsize < want || (uint64_t)phentsize * phnum > MAX_PHDR_BYTES)
        return malformed(err, what, "%u program headers of %u bytes", phnum, phentsize);
    _cleanup_free_ unsigned char *ph = rbx_xmalloc((size_t)phentsize * phnum);
    if (!pread_all(fd, ph, (size_t)phentsize * phnum, phoff))
        return malformed(err, what, "program headers outside the file");

    struct load loads[64];
    size_t n_loads = 0;
    uint64_t dyn_off = 0, dyn_size = 0;
    bool has_dyn = false;
    for (unsigned i = 0; i < phnum; i++) {
        const unsigned char *p = ph + (size_t)i * phentsize;
        uint32_t type = (uint32_t)rd(p, 4, be);
        uint64_t off = is64 ? rd(p + 8, 8, be) : rd(p + 4, 4, be);
        uint64_t vaddr = is64 ? rd(p + 16, 8, be) : rd(p + 8, 4, be);
        uint64_t filesz = is64 ? rd(p + 32, 8, be) : rd(p + 16, 4, be);
        if (type == PT_INTERP_ && !e.interp) {
            /* As the kernel: at most PATH_MAX, NUL-terminated in place. */
            if (filesz < 2 || filesz > RBX_PATH_MAX) {
                rbx_elf_clear(&e);
                return malformed(err, what, "PT_INTERP of %llu bytes", (unsigned long long)filesz);
            }
            char *s = rbx_xmalloc((size_t)filesz);
            if (!pread_all(fd, s, (size_t)filesz, off) || s[filesz - 1] != '\0') {
                free(s);
                rbx_elf_clear(&e);
                return malformed(err, what, "PT_INTERP outside the file or not terminated");
            }
            e.interp = s;
        } else if (type == PT_LOAD_ && n_loads < RBX_ARRAY_SIZE(loads)) {
            loads[n_loads++] = (struct load){vaddr, off, filesz};
        } else if (type == PT_DYNAMIC_ && !has_dyn) {
            has_dyn = true;
            dyn_off = off;
            dyn_size = filesz;
        }
    }
    if (!has_dyn) {
        *out = e;
        return 0;
    }

    size_t entsz = is64 ? 16 : 8;
    if (dyn_size > MAX_DYNAMIC_BYTES)
        dyn_size = MAX_DYNAMIC_BYTES;
    size_t n_ent = (size_t)dyn_size / entsz;
    _cleanup_free_ unsigned char *dyn = rbx_xmalloc(n_ent * entsz + 1);
    if (n_ent && !pread_all(fd, dyn, n_ent * entsz, dyn_off)) {
        rbx_elf_clear(&e);
        return malformed(err, what, "dynamic section outside the file");
    }
    uint64_t strtab = 0, strsz = 0, soname = UINT64_MAX, rpath = UINT64_MAX, runpath = UINT64_MAX;
    bool has_strtab = false;
    uint64_t needed[RBX_ELF_MAX_NEEDED];
    size_t n_needed = 0;
    for (size_t i = 0; i < n_ent; i++) {
        const unsigned char *d = dyn + i * entsz;
        uint64_t tag = rd(d, entsz / 2, be), val = rd(d + entsz / 2, entsz / 2, be);
        if (tag == DT_NULL_)
            break;
        switch (tag) {
        case DT_NEEDED_:
            if (n_needed == RBX_ELF_MAX_NEEDED) {
                rbx_elf_clear(&e);
                return malformed(err, what, "more than %d DT_NEEDED entries", RBX_ELF_MAX_NEEDED);
            }
            needed[n_needed++] = val;
            break;
        case DT_STRTAB_: strtab = val, has_strtab = true; break;
        case DT_STRSZ_: strsz = val; break;
        case DT_SONAME_: soname = val; break;
        case DT_RPATH_: rpath = val; break;
        case DT_RUNPATH_: runpath = val; break;
        default: break;
        }
    }
    if (!n_needed && soname == UINT64_MAX && rpath == UINT64_MAX && runpath == UINT64_MAX) {
        *out = e;
        return 0;
    }
    /* DT_STRTAB is an address: the PT_LOAD segment that holds it gives its file offset. */
    uint64_t stroff = UINT64_MAX;
    for (size_t i = 0; has_strtab && i < n_loads; i++)
        if (strtab >= loads[i].vaddr && strtab - loads[i].vaddr < loads[i].filesz) {
            stroff = loads[i].offset + (strtab - loads[i].vaddr);
            if (strsz > loads[i].filesz - (strtab - loads[i].vaddr))
                strsz = loads[i].filesz - (strtab - loads[i].vaddr);
            break;
        }
    if (stroff == UINT64_MAX) {
        rbx_elf_clear(&e);
        return malformed(err, what, "the dynamic string table is in no loaded segment");
    }
    for (size_t i = 0; i < n_needed; i++) {
        char *s = read_dynstr(fd, stroff, strsz, needed[i]);
        if (!s || !*s) {
            free(s);
            rbx_elf_clear(&e);
            return malformed(err, what, "DT_NEEDED entry %zu is not a string of the table", i);
        }
        rbx_strv_push_take(&e.needed, s);
    }
    struct {
        uint64_t idx;
        char **dst;
    } strs[] = {{soname, &e.soname}, {rpath, &e.rpath}, {runpath, &e.runpath}};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(strs); i++) {
        if (strs[i].idx == UINT64_MAX)
            continue;
        *strs[i].dst = read_dynstr(fd, stroff, strsz, strs[i].idx);
        if (!*strs[i].dst) {
            rbx_elf_clear(&e);
            return malformed(err, what, "a DT_SONAME, DT_RPATH or DT_RUNPATH outside the table");
        }
    }
    *out = e;
    return 0;
}

/* ---- machines and architectures ------------------------------------------------------------ */

static const struct arch_row {
    const char *arch; /* OCI / GOARCH */
    unsigned machine, cls;
    bool be;
    const char *triplet; /* Debian's multiarch directory */
} arch_rows[] = {
    {"amd64", 62, 2, false, "x86_64-linux-gnu"},
    {"386", 3, 1, false, "i386-linux-gnu"},
    {"arm64", 183, 2, false, "aarch64-linux-gnu"},
    {"arm", 40, 1, false, "arm-linux-gnueabihf"},
    {"ppc64le", 21, 2, false, "powerpc64le-linux-gnu"},
    {"ppc64", 21, 2, true, "powerpc64-linux-gnu"},
    {"s390x", 22, 2, true, "s390x-linux-gnu"},
    {"riscv64", 243, 2, false, "riscv64-linux-gnu"},
    {"mips64le", 8, 2, false, "mips64el-linux-gnuabi64"},
    {"mipsle", 8, 1, false, "mipsel-linux-gnu"},
    {"mips64", 8, 2, true, "mips64-linux-gnuabi64"},
    {"mips", 8, 1, true, "mips-linux-gnu"},
    {"loong64", 258, 2, false, "loongarch64-linux-gnu"},
    {"x32", 62, 1, false, "x86_64-linux-gnux32"},
};

static const struct arch_row *row_of(const struct rbx_elf *e)
{
    for (size_t i = 0; i < RBX_ARRAY_SIZE(arch_rows); i++)
        if (arch_rows[i].machine == e->machine && arch_rows[i].cls == e->cls &&
            arch_rows[i].be == e->big_endian)
            return &arch_rows[i];
    return NULL;
}

const char *rbx_elf_arch_name(const struct rbx_elf *e)
{
    const struct arch_row *r = row_of(e);
    return r ? r->arch : NULL;
}

bool rbx_elf_runs_on(const struct rbx_elf *e, const char *arch)
{
    if (!arch || !*arch)
        return true;
    const char *mine = rbx_elf_arch_name(e);
    if (!mine)
        return false;
    if (strcmp(mine, arch) == 0)
        return true;
    /* 32-bit compat modes of 64-bit kernels */
    static const char *const compat[][2] = {{"amd64", "386"}, {"amd64", "x32"}, {"arm64", "arm"}};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(compat); i++)
        if (strcmp(arch, compat[i][0]) == 0 && strcmp(mine, compat[i][1]) == 0)
            return true;
    bool known = false;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(arch_rows); i++)
        known = known || strcmp(arch_rows[i].arch, arch) == 0;
    return !known;
}

enum rbx_libc rbx_elf_libc_of_interp(const char *interp)
{
    if (!interp)
        return RBX_LIBC_UNKNOWN;
    const char *base = strrchr(interp, '/');
    base = base ? base + 1 : interp;
    if (strncmp(base, "ld-musl-", 8) == 0)
        return RBX_LIBC_MUSL;
    if (strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld64.so", 7) == 0 ||
        strncmp(base, "ld.so", 5) == 0)
        return RBX_LIBC_GLIBC;
    return RBX_LIBC_UNKNOWN;
}

/* ---- ld.so.conf ---------------------------------------------------------------------------- */

#define MAX_CONF_FILES 128
#define MAX_CONF_DEPTH 8

static bool strv_has(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void push_unique(char ***v, const char *s)
{
    if (!strv_has(*v, s))
        rbx_strv_push(v, s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void conf_file(int rootfd, const char *path, unsigned depth, unsigned *files, char ***dirs);

/* "include PATTERN": glob(3) order, wildcards in the last component only (what distributions
 * write: /etc/ld.so.conf.d/ *.conf). */
static void conf_include(int rootfd, const char *from, const char *pattern, unsigned depth,
                         unsigned *files, char ***dirs)
{
    _cleanup_free_ char *full = NULL;
    if (pattern[0] == '/') {
        full = rbx_xstrdup(pattern);
    } else {
        const char *slash = strrchr(from, '/');
        full = rbx_xasprintf("%.*s/%s", slash ? (int)(slash - from) : 0, from, pattern);
    }
    char *slash = strrchr(full, '/');
    const char *glob = slash + 1;
    if (!strpbrk(glob, "*?[")) {
        conf_file(rootfd, full, depth + 1, files, dirs);
        return;
    }
    *slash = '\0';
    int dfd = rbx_open_in_root(rootfd, *full ? full : "/", O_RDONLY | O_DIRECTORY, 0, 0, NULL);
    if (dfd < 0)
        return;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    _cleanup_strv_ char **names = NULL;
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)) && n < MAX_CONF_FILES) {
        if (de->d_name[0] == '.' && glob[0] != '.')
            continue;
        if (fnmatch(glob, de->d_name, FNM_PERIOD) == 0) {
            rbx_strv_push(&names, de->d_name);
            n++;
        }
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *p = rbx_xasprintf("%s/%s", full, names[i]);
        conf_file(rootfd, p, depth + 1, files, dirs);
    }
}

static void conf_file(int rootfd, const char *path, unsigned depth, unsigned *files, char ***dirs)
{
    if (depth > MAX_CONF_DEPTH || ++*files > MAX_CONF_FILES)
        return;
    _cleanup_close_ int fd = rbx_open_in_root(rootfd, path, O_RDONLY, 0, 0, NULL);
    if (fd < 0)
        return;
    _cleanup_free_ char *text = NULL;
    if (rbx_read_fd(fd, 1 << 20, path, &text, NULL, NULL) < 0)
        return;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (strncmp(line, "include", 7) == 0 && (line[7] == ' ' || line[7] == '\t')) {
            char *s2 = NULL;
            for (char *pat = strtok_r(line + 8, " \t", &s2); pat; pat = strtok_r(NULL, " \t", &s2))
                conf_include(rootfd, path, pat, depth, files, dirs);
            continue;
        }
        if (strncmp(line, "hwcap", 5) == 0 && (line[5] == ' ' || line[5] == '\t'))
            continue;
        char *s2 = NULL;
        for (char *dir = strtok_r(line, " \t:,\r", &s2); dir;
             dir = strtok_r(NULL, " \t:,\r", &s2)) {
            char *eq = strchr(dir, '='); /* libc5's "dir=TYPE" */
            if (eq)
                *eq = '\0';
            size_t len = strlen(dir);
            while (len > 1 && dir[len - 1] == '/')
                dir[--len] = '\0';
            if (dir[0] == '/')
                push_unique(dirs, dir);
        }
    }
}

int rbx_ld_so_conf_dirs(int rootfd, char ***dirs, struct rbx_error **err)
{
    unsigned files = 0;
    *dirs = NULL;
    conf_file(rootfd, "/etc/ld.so.conf", 0, &files, dirs);
    return 0;
}

/* ---- the loader's search ------------------------------------------------------------------- */

struct object {
    char *path; /* as opened (what $ORIGIN is made of), absolute in the image */
    struct rbx_elf elf;
    ssize_t loader; /* the object that needed it: its RPATH is searched too */
};

struct search {
    int rootfd;
    enum rbx_libc libc;
    const struct rbx_elf *exe;
    const struct arch_row *row;
    char platform[32]; /* $PLATFORM: the CPU name, the triplet's first part */
    char **ld_library_path, **conf, **defaults;
    struct object *objs;
    size_t n_objs;
};

static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return rbx_xstrdup("/");
    return rbx_xstrndup(path, (size_t)(slash - path));
}

/* Expand $ORIGIN, $LIB, $PLATFORM (and ${...}) in one directory of a path list; $LIB has one
 * expansion per distribution convention, all kept. */
static void expand_dir(const struct search *s, const char *dir, const char *origin, char ***out)
{
    const char *libs[4] = {"lib", NULL, NULL, NULL};
    size_t n_libs = 1;
    if (s->exe->cls == 2)
        libs[n_libs++] = "lib64";
    _cleanup_free_ char *multi = s->row ? rbx_xasprintf("lib/%s", s->row->triplet) : NULL;
    if (multi)
        libs[n_libs++] = multi;
    for (size_t v = 0; v < n_libs; v++) {
        char buf[RBX_PATH_MAX + 1];
        size_t len = 0;
        bool ok = true, used_lib = false;
        for (const char *p = dir; *p && ok;) {
            const char *val = NULL;
            size_t adv = 0;
            static const char *const names[] = {"ORIGIN", "LIB", "PLATFORM"};
            if (*p == '$') {
                for (size_t k = 0; k < RBX_ARRAY_SIZE(names) && !val; k++) {
                    size_t nl = strlen(names[k]);
                    bool braced =
                        p[1] == '{' && strncmp(p + 2, names[k], nl) == 0 && p[2 + nl] == '}';
                    bool bare = strncmp(p + 1, names[k], nl) == 0 &&
                                !(p[1 + nl] == '_' || (p[1 + nl] >= 'A' && p[1 + nl] <= 'Z') ||
                                  (p[1 + nl] >= 'a' && p[1 + nl] <= 'z') ||
                                  (p[1 + nl] >= '0' && p[1 + nl] <= '9'));
                    if (!braced && !bare)
                        continue;
                    adv = braced ? nl + 3 : nl + 1;
                    val = k == 0 ? origin : k == 1 ? libs[v] : s->platform;
                    used_lib = used_lib || k == 1;
                }
                if (!val) {
                    ok = false; /* an unknown token: the loader ignores the directory */
                    break;
                }
            } else {
                val = p;
                adv = 1;
            }
            size_t vl = val == p ? 1 : strlen(val);
            if (len + vl >= sizeof(buf)) {
                ok = false;
                break;
            }
            memcpy(buf + len, val, vl);
            len += vl;
            p += adv;
        }
        buf[len] = '\0';
        _cleanup_free_ char *clean = NULL;
        if (ok && buf[0] == '/' && rbx_path_clean(buf, &clean, NULL) == 0) {
            _cleanup_free_ char *abs = rbx_xasprintf("/%s", clean);
            push_unique(out, abs);
        }
        if (!used_lib)
            break; /* one expansion is all there is */
    }
}

static void add_path_list(const struct search *s, const char *list, const char *origin, char ***out)
{
    if (!list)
        return;
    _cleanup_free_ char *copy = rbx_xstrdup(list);
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
        expand_dir(s, d, origin, out);
}

/* Already loaded under that name: by SONAME or by the file name it was found as. */
static bool loaded(const struct search *s, const char *name)
{
    for (size_t i = 0; i < s->n_objs; i++) {
        const struct object *o = &s->objs[i];
        const char *base = strrchr(o->path, '/');
        if ((o->elf.soname && strcmp(o->elf.soname, name) == 0) ||
            (base && strcmp(base + 1, name) == 0) || strcmp(o->path, name) == 0)
            return true;
    }
    return false;
}

static bool compatible(const struct search *s, const struct rbx_elf *e)
{
    return e->is_elf && e->cls == s->exe->cls && e->machine == s->exe->machine &&
           e->big_endian == s->exe->big_endian;
}

static void add_object(struct search *s, const char *path, struct rbx_elf *elf, ssize_t loader)
{
    _cleanup_free_ char *clean = NULL;
    s->objs = rbx_xrealloc(s->objs, (s->n_objs + 1) * sizeof(*s->objs));
    /* "/app/bin/../lib/libfoo.so" as the user would write it; a ".." above the root is left */
    char *name =
        rbx_path_clean(path, &clean, NULL) == 0 ? rbx_xasprintf("/%s", clean) : rbx_xstrdup(path);
    s->objs[s->n_objs++] = (struct object){name, *elf, loader};
    memset(elf, 0, sizeof(*elf));
}

/* 1: found and added; 0: not there; -1: there but incompatible (`skipped` names it). */
static int try_candidate(struct search *s, const char *path, ssize_t loader, char **skipped)
{
    _cleanup_close_ int fd = rbx_open_in_root(s->rootfd, path, O_RDONLY | O_NOCTTY, 0, 0, NULL);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    struct rbx_elf e;
    if (rbx_elf_read(fd, path, &e, NULL) < 0)
        return -1;
    if (!compatible(s, &e)) {
        if (!*skipped) {
            const char *a = rbx_elf_arch_name(&e);
            *skipped = e.is_elf ? rbx_xasprintf("%s (%s%s)", path, a ? a : "another machine",
                                                e.cls == 1 ? ", 32-bit" : "")
                                : rbx_xasprintf("%s (not ELF)", path);
        }
        rbx_elf_clear(&e);
        return -1;
    }
    add_object(s, path, &e, loader);
    return 1;
}

static void search_dirs_for(const struct search *s, size_t obj, char ***dirs)
{
    const struct object *o = &s->objs[obj];
    _cleanup_free_ char *origin = dirname_of(o->path);
    bool glibc = s->libc != RBX_LIBC_MUSL;
    if (glibc && !o->elf.runpath) {
        /* DT_RPATH of the object, then of the objects that loaded it up to the program */
        for (ssize_t i = (ssize_t)obj; i >= 0; i = s->objs[i].loader) {
            _cleanup_free_ char *orig = dirname_of(s->objs[i].path);
            add_path_list(s, s->objs[i].elf.rpath, orig, dirs);
            if (s->objs[i].loader == i)
                break;
        }
    }
    for (size_t i = 0; s->ld_library_path && s->ld_library_path[i]; i++)
        expand_dir(s, s->ld_library_path[i], origin, dirs);
    if (glibc) {
        add_path_list(s, o->elf.runpath, origin, dirs);
    } else {
        /* musl: the object's RUNPATH or RPATH, then its loaders' */
        for (ssize_t i = (ssize_t)obj; i >= 0; i = s->objs[i].loader) {
            _cleanup_free_ char *orig = dirname_of(s->objs[i].path);
            const struct rbx_elf *e = &s->objs[i].elf;
            add_path_list(s, e->runpath ? e->runpath : e->rpath, orig, dirs);
            if (s->objs[i].loader == i)
                break;
        }
    }
    for (size_t i = 0; s->conf && s->conf[i]; i++)
        push_unique(dirs, s->conf[i]);
    for (size_t i = 0; s->defaults && s->defaults[i]; i++)
        push_unique(dirs, s->defaults[i]);
}

static void defaults_for(struct search *s)
{
    if (s->libc == RBX_LIBC_MUSL) {
        /* /etc/ld-musl-ARCH.path replaces the defaults when it exists */
        const char *base = strrchr(s->exe->interp, '/');
        base = base ? base + 1 : s->exe->interp;
        size_t alen = strcspn(base + 8, ".");
        _cleanup_free_ char *file = rbx_xasprintf("/etc/ld-musl-%.*s.path", (int)alen, base + 8);
        _cleanup_close_ int fd = rbx_open_in_root(s->rootfd, file, O_RDONLY, 0, 0, NULL);
        _cleanup_free_ char *text = NULL;
        if (fd >= 0 && rbx_read_fd(fd, 1 << 16, file, &text, NULL, NULL) == 0) {
            char *save = NULL;
            for (char *d = strtok_r(text, ":\n", &save); d; d = strtok_r(NULL, ":\n", &save))
                if (d[0] == '/')
                    push_unique(&s->defaults, d);
            return;
        }
        static const char *const musl[] = {"/lib", "/usr/local/lib", "/usr/lib"};
        for (size_t i = 0; i < RBX_ARRAY_SIZE(musl); i++)
            push_unique(&s->defaults, musl[i]);
        return;
    }
    /* glibc's trusted directories differ by distribution (Debian's multiarch, Fedora's lib64):
     * all of them, so no image is judged by another's convention. */
    if (s->row) {
        _cleanup_free_ char *a = rbx_xasprintf("/lib/%s", s->row->triplet);
        _cleanup_free_ char *b = rbx_xasprintf("/usr/lib/%s", s->row->triplet);
        push_unique(&s->defaults, a);
        push_unique(&s->defaults, b);
    }
    if (s->exe->cls == 2) {
        push_unique(&s->defaults, "/lib64");
        push_unique(&s->defaults, "/usr/lib64");
    } else {
        push_unique(&s->defaults, "/lib32");
        push_unique(&s->defaults, "/usr/lib32");
    }
    push_unique(&s->defaults, "/lib");
    push_unique(&s->defaults, "/usr/lib");
}

static char *join_dirs(char *const *dirs)
{
    size_t n = 1;
    for (size_t i = 0; dirs && dirs[i]; i++)
        n += strlen(dirs[i]) + 1;
    char *out = rbx_xmalloc(n);
    out[0] = '\0';
    for (size_t i = 0; dirs && dirs[i]; i++) {
        if (i)
            strcat(out, ":");
        strcat(out, dirs[i]);
    }
    return out;
}

static void add_missing(struct rbx_elf_closure *c, const char *name, const char *by, char **dirs,
                        char *skipped)
{
    c->missing = rbx_xrealloc(c->missing, (c->n_missing + 1) * sizeof(*c->missing));
    c->missing[c->n_missing++] =
        (struct rbx_elf_missing){rbx_xstrdup(name), rbx_xstrdup(by), join_dirs(dirs), skipped};
}

int rbx_elf_closure(int rootfd, const char *exe_path, const struct rbx_elf *exe, char *const *env,
                    struct rbx_elf_closure *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    struct search s = {.rootfd = rootfd, .exe = exe, .libc = rbx_elf_libc_of_interp(exe->interp)};
    s.row = row_of(exe);
    if (s.row)
        snprintf(s.platform, sizeof(s.platform), "%.*s", (int)strcspn(s.row->triplet, "-"),
                 s.row->triplet);
    if (s.libc != RBX_LIBC_MUSL)
        rbx_ld_so_conf_dirs(rootfd, &s.conf, NULL);
    defaults_for(&s);
    const char *llp = rbx_env_get(env, "LD_LIBRARY_PATH");
    if (llp) {
        _cleanup_free_ char *copy = rbx_xstrdup(llp);
        char *save = NULL;
        for (char *d = strtok_r(copy, ":;", &save); d; d = strtok_r(NULL, ":;", &save))
            rbx_strv_push(&s.ld_library_path, d);
    }

    struct rbx_elf copy = {0};
    copy.is_elf = true;
    copy.cls = exe->cls;
    copy.machine = exe->machine;
    copy.big_endian = exe->big_endian;
    copy.needed = rbx_strv_copy(exe->needed);
    copy.rpath = exe->rpath ? rbx_xstrdup(exe->rpath) : NULL;
    copy.runpath = exe->runpath ? rbx_xstrdup(exe->runpath) : NULL;
    copy.soname = exe->soname ? rbx_xstrdup(exe->soname) : NULL;
    add_object(&s, exe_path, &copy, 0);
    s.objs[0].loader = 0;
    /* The loader itself is loaded first: libc's DT_NEEDED on it is met by it. */
    if (exe->interp) {
        char *skipped = NULL;
        try_candidate(&s, exe->interp, 0, &skipped);
        free(skipped);
    }

    for (size_t i = 0; i < s.n_objs; i++) {
        char **needed = s.objs[i].elf.needed;
        for (size_t k = 0; needed && needed[k]; k++) {
            const char *name = needed[k];
            if (loaded(&s, name))
                continue;
            if (s.n_objs >= RBX_ELF_MAX_OBJECTS) {
                out->truncated = true;
                break;
            }
            char *skipped = NULL;
            if (strchr(name, '/')) {
                _cleanup_free_ char *p =
                    name[0] == '/' ? rbx_xstrdup(name) : rbx_xasprintf("/%s", name);
                if (try_candidate(&s, p, (ssize_t)i, &skipped) != 1)
                    add_missing(out, name, s.objs[i].path, NULL, skipped);
                else
                    free(skipped);
                continue;
            }
            _cleanup_strv_ char **dirs = NULL;
            search_dirs_for(&s, i, &dirs);
            bool found = false;
            for (size_t d = 0; dirs && dirs[d] && !found; d++) {
                _cleanup_free_ char *p =
                    rbx_xasprintf("%s/%s", strcmp(dirs[d], "/") ? dirs[d] : "", name);
                found = try_candidate(&s, p, (ssize_t)i, &skipped) == 1;
            }
            if (found)
                free(skipped);
            else
                add_missing(out, name, s.objs[i].path, dirs, skipped);
        }
    }
    out->n_objects = s.n_objs;
    for (size_t i = 0; i < s.n_objs; i++) {
        free(s.objs[i].path);
        rbx_elf_clear(&s.objs[i].elf);
    }
    free(s.objs);
    rbx_strv_free(s.ld_library_path);
    rbx_strv_free(s.conf);
    rbx_strv_free(s.defaults);
    return 0;
}

void rbx_elf_closure_clear(struct rbx_elf_closure *c)
{
    for (size_t i = 0; i < c->n_missing; i++) {
        free(c->missing[i].name);
        free(c->missing[i].needed_by);
        free(c->missing[i].searched);
        free(c->missing[i].incompatible);
    }
    free(c->missing);
    memset(c, 0, sizeof(*c));
}
