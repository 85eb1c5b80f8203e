/* doctor-internal.h — what the files of `reprobox doctor` share: the ELF reader and the dynamic
 * loader's search, the shell word splitter, the Node resolver, and the checking context that
 * collects findings. Exposed to the unit suites; not part of recipes.h. */
#pragma once

#include "recipes/recipes.h"

/* ---- ELF (doctor_elf.c) -------------------------------------------------------------------- */

#define RBX_ELF_MAX_NEEDED 256
#define RBX_ELF_MAX_OBJECTS 512 /* objects one program may load */

struct rbx_elf {
    bool is_elf;  /* false: not ELF at all (no error) */
    unsigned cls; /* 1: 32-bit, 2: 64-bit */
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
    char *name;         /* "libssl.so.3" */
    char *needed_by;    /* the object that asks for it, canonical path in the image */
    char *searched;     /* the directories searched, ":"-joined */
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
    bool dynamic; /* holds what only the running shell knows: $1, $(...), ${x%y}, an unset $X, a
                     glob */
    bool args;    /* nothing but the script's own (unknown) arguments: "$@", $1 */
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
 * not set itself (NULL: none known), `args` its positional parameters $1... (NULL: unknown; they
 * stay unknown inside function bodies and after shift or set --). A text the splitter cannot
 * follow (an unterminated quote) is RBX_ERR_MALFORMED with its line; `out` keeps the commands
 * read up to there. */
int rbx_sh_parse(const char *text, size_t len, char *const *env, char *const *args,
                 struct rbx_sh_script *out, struct rbx_error **err);
void rbx_sh_script_clear(struct rbx_sh_script *s);
/* Builtins and keywords of sh, dash, ash and bash: commands that need no file. */
bool rbx_sh_builtin(const char *name);

/* ---- Node (doctor_node.c) ------------------------------------------------------------------ */

#define RBX_JS_MAX_BYTES (2u << 20) /* larger files (bundles) are not scanned */

struct rbx_js_import {
    char *specifier;
    unsigned line;
    bool esm;     /* import/export ... from, import 'x' (not require, not import()) */
    bool guarded; /* inside try { } or catch { }: the code expects it may be missing */
    bool nested;  /* inside a block or function: loaded on some paths only */
};

/* The literal specifiers a JavaScript file loads: require('x'), import ... from 'x', import 'x',
 * import('x'), export ... from 'x'. Comments, strings, template literals and regular expressions
 * are lexed, so no text inside them is taken for a load. */
void rbx_js_imports(const char *text, size_t len, struct rbx_js_import **out, size_t *n);
void rbx_js_imports_free(struct rbx_js_import *v, size_t n);
/* "fs", "node:fs", "fs/promises": Node's own modules. */
bool rbx_node_builtin(const char *specifier);

enum rbx_node_status {
    RBX_NODE_FOUND = 0,
    RBX_NODE_NOT_FOUND,    /* MODULE_NOT_FOUND */
    RBX_NODE_NOT_EXPORTED, /* ERR_PACKAGE_PATH_NOT_EXPORTED: "exports" has no such entry */
    RBX_NODE_BAD_PACKAGE,  /* a package.json that is not JSON */
};

struct rbx_node_resolution {
    enum rbx_node_status status;
    char *path;        /* the file, canonical (symlinks followed in the image) */
    char *package_dir; /* bare specifiers: the package's directory, canonical */
    char **searched;   /* where it was looked for: ".../node_modules/express" */
    char **broken;     /* links on the way that lead nowhere: "A -> T (M is not in the image)" */
    char *detail;      /* why a package refused it */
};

/* Resolve `specifier` from a module in directory `from_dir` with Node's algorithm: relative and
 * absolute paths (file, .js/.json/.node, directory with package.json main or index), bare names
 * through node_modules up the tree and NODE_PATH, package.json "exports" with the conditions
 * node, require (or import for esm) and default, symlinks followed inside the image. */
int rbx_node_resolve(int rootfd, const char *specifier, const char *from_dir, bool esm,
                     char *const *env, struct rbx_node_resolution *out, struct rbx_error **err);
void rbx_node_resolution_clear(struct rbx_node_resolution *r);

/* ---- the checking context (doctor.c) -------------------------------------------------------- */

#define RBX_DOCTOR_MAX_DEPTH 6 /* scripts calling scripts, interpreters of interpreters */

struct rbx_doctor {
    int rootfd;
    const char *arch;
    unsigned flags;
    struct rbx_doctor_report *rep;
    const struct rbx_doctor_process *proc; /* being checked */
    bool cwd_missing;
    bool have_user;
    struct rbx_user user; /* the process's user, when it resolves */
    unsigned depth;
    bool migrate_deploy; /* the process runs `prisma migrate deploy` somewhere */
    char **seen;         /* what was checked already for this process ("script:/app/x.sh") */
    char **seen_image;   /* what was checked for every process ("elf:/usr/bin/node") */
};

/* Add a finding for the process being checked (NULL proc: the image as such); returns it so the
 * caller can add evidence. */
struct rbx_finding *rbx_doctor_add(struct rbx_doctor *d, const char *check, enum rbx_severity sev,
                                   const char *hint, const char *fmt, ...) RBX_PRINTF(5, 6);
void rbx_finding_evidence(struct rbx_finding *f, const char *fmt, ...) RBX_PRINTF(2, 3);
/* Marks `key` seen; true when it was already (in the process's set, or the image's). */
bool rbx_doctor_seen(struct rbx_doctor *d, const char *key, bool image_wide);
/* A file of the image that is a regular file, read whole (at most max bytes): 0, -errno. */
int rbx_doctor_read(struct rbx_doctor *d, const char *path, size_t max, char **out, size_t *len);

/* The checks, one entry point per file. */
void rbx_doctor_command(struct rbx_doctor *d, char *const *argv, size_t argc, const char *where,
                        bool from_shell); /* doctor_exec.c */
void rbx_doctor_node(struct rbx_doctor *d, char *const *args, size_t argc, const char *where);
/* doctor_node.c */
void rbx_doctor_workdir(struct rbx_doctor *d); /* doctor_fs.c */
void rbx_doctor_user(struct rbx_doctor *d);
void rbx_doctor_symlinks(struct rbx_doctor *d, const struct rbx_doctor_process *procs, size_t n);
void rbx_doctor_env(struct rbx_doctor *d); /* doctor_env.c */
