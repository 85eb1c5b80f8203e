/* doctor-internal.h — what the files of `reprobox doctor` share: the ELF reader and the dynamic
 * loader's search, the shell word splitter, the Node resolver, and the checking context that
 * collects findings. Exposed to the unit suites; not part of recipes.h. */
#pragma once

#include "recipes/recipes.h"

/* ---- ELF (doctor_elf.c) -------------------------------------------------------------------- */

#define RBX_ELF_MAX_NEEDED 256
#define RBX_ELF_MAX_OBJECTS 512 /* objects one program may load */

struct rbx_elf {
    bool is_elf;      /* false: not ELF at all (no error) */
    unsigned cls;     /* 1: 32-bit, 2: 64-bit */
    bool big_endian;
    unsigned type;    /* ET_EXEC 2, ET_DYN 3 */
    unsigned machine; /* e_machine */
    char *interp;     /* PT_INTERP, NULL for a static binary */
    char **needed;    /* DT_NEEDED in order, NULL when none */
    char *soname, *rpath, *runpath;
};

/* Read what the kernel and the dynamic loader read: header, program headers, PT_INTERP and the
 * dynamic section's strings. Not ELF: 0 with is_elf false. A broken ELF file (offsets outside the
 * file, strings without an end...) is RBX_ERR_MALFORMED naming `what`. Reads with pread only
 * what it needs, whatever the file's size. */
int rbx_elf_read(int fd, const char *what, struct rbx_elf *out, struct rbx_error **err);
void rbx_elf_clear(struct rbx_elf *e);
/* The OCI architecture of a machine ("amd64", "arm64"...), or NULL when unknown. */
const char *rbx_elf_arch_name(const struct rbx_elf *e);
/* Whether a kernel of the OCI architecture `arch` runs this ELF file natively (or through the
 * compat modes every distribution enables: 386 on amd64, arm on arm64). Unknown arch: true. */
bool rbx_elf_runs_on(const struct rbx_elf *e, const char *arch);

enum rbx_libc { RBX_LIBC_UNKNOWN = 0, RBX_LIBC_GLIBC, RBX_LIBC_MUSL };
/* Which C library's loader a PT_INTERP names ("/lib64/ld-linux-x86-64.so.2": glibc). */
enum rbx_libc rbx_elf_libc_of_interp(const char *interp);

/* A DT_NEEDED library the loader would not find. */
struct rbx_elf_missing {
    char *name;      /* "libssl.so.3" */
    char *needed_by; /* the object that asks for it, canonical path in the image */
    char *searched;  /* the directories searched, ":"-joined */
    char *incompatible; /* a file of that name skipped for its class or machine, or NULL */
};

struct rbx_elf_closure {
    struct rbx_elf_missing *missing;
    size_t n_missing;
    size_t n_objects; /* objects found (the program, its loader, the libraries) */
    bool truncated;   /* more than RBX_ELF_MAX_OBJECTS */
};

/* Follow DT_NEEDED from the program at `exe_path` (canonical, inside the root) as its loader
 * would: RPATH (of the object and its loaders, when it has no RUNPATH), LD_LIBRARY_PATH of env,
 * RUNPATH, the image's ld.so.conf (glibc, includes followed) or /etc/ld-musl-ARCH.path (musl),
 * then the default directories; $ORIGIN, $LIB and $PLATFORM expanded; libraries of another class
 * or machine skipped as the loader skips them. */
int rbx_elf_closure(int rootfd, const char *exe_path, const struct rbx_elf *exe, char *const *env,
                    struct rbx_elf_closure *out, struct rbx_error **err);
void rbx_elf_closure_clear(struct rbx_elf_closure *c);
/* The directories glibc's ldconfig would cache: /etc/ld.so.conf and what it includes. */
int rbx_ld_so_conf_dirs(int rootfd, char ***dirs, struct rbx_error **err);

/* ---- shell words (doctor_shell.c) ------------------------------------------------------------ */
/* Not a shell: a careful, bounded splitter that finds the simple commands of sh -c strings and
 * scripts (quotes, escapes, $(...) and `...` inside, here-documents skipped, if/for/case/while
 * structure, function definitions) and expands the variables it can know. */

#define RBX_SH_MAX_BYTES (1u << 20)
#define RBX_SH_MAX_COMMANDS 4096
#define RBX_SH_MAX_WORDS 256
#define RBX_SH_MAX_DEPTH 8

struct rbx_sh_word {
    char *text;   /* after quote removal and the expansions that could be resolved */
    bool dynamic; /* holds what only the running shell knows: $1, $(...), ${x%y}, an unset $X, a glob */
};

struct rbx_sh_command {
    struct rbx_sh_word *words; /* argv: assignments and redirections taken out */
    size_t n_words;
    unsigned line; /* of the command word, from 1 */
};

struct rbx_sh_script {
    struct rbx_sh_command *cmds;
    size_t n_cmds;
    char **functions; /* defined in the text */
    char **probed;    /* what the text checks for first: command -v X, which X, [ -x X ] */
    bool truncated;   /* a bound was hit; what follows was not read */
};

/* Split `text` into simple commands, in order. `env` gives the values of variables the text does
 * not set itself (NULL: none known). A text the splitter cannot follow (an unterminated quote)
 * is RBX_ERR_MALFORMED with its line; `out` keeps the commands read up to there. */
int rbx_sh_parse(const char *text, size_t len, char *const *env, struct rbx_sh_script *out,
                 struct rbx_error **err);
void rbx_sh_script_clear(struct rbx_sh_script *s);
/* Builtins and keywords of sh, dash, ash and bash: commands that need no file. */
bool rbx_sh_builtin(const char *name);
