/* doctor_exec.c — a command as execve and the shell would resolve it in the image: PATH, the
 * executable bit for the process's user, "#!" interpreters (and /usr/bin/env's lookup), ELF
 * architecture, loader and libraries; then what the program will do with its arguments: a shell
 * runs a script or a -c string (whose commands are checked in turn), node loads an entry, npx
 * may download. */
#include "recipes/doctor-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct arg {
    const char *s;
    bool dynamic; /* only known when the shell runs */
    bool args;    /* the script's own arguments ("$@"), unknown here */
};

/* What the script being read defines: its functions, and the commands it probes for first. */
struct script_ctx {
    char *const *functions;
    char *const *probed;
};

static void resolve(struct rbx_doctor *d, const struct arg *argv, size_t argc, const char *where,
                    bool from_shell, const struct script_ctx *sc);
static void run_script(struct rbx_doctor *d, const char *name, const struct arg *args, size_t nargs,
                       const char *where, bool sourced);

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool strv_has(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static const char *path_env(const struct rbx_doctor *d)
{
    const char *p = rbx_env_get(d->proc->env, "PATH");
    return p ? p : DEFAULT_PATH;
}

static const char *cwd_of(const struct rbx_doctor *d)
{
    return d->proc->cwd && *d->proc->cwd ? d->proc->cwd : "/";
}

/* "a b c" of the words, for evidence (an unknown word as "$..."). */
static char *words_text(const struct arg *argv, size_t argc)
{
    size_t n = 8; /* " ..." and the NUL */
    for (size_t i = 0; i < argc && i < 16; i++)
        n += (argv[i].dynamic && !*argv[i].s ? 4 : strlen(argv[i].s)) + 1;
    char *out = rbx_xmalloc(n);
    out[0] = '\0';
    for (size_t i = 0; i < argc && i < 16; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, argv[i].dynamic && !*argv[i].s ? "$..." : argv[i].s);
    }
    if (argc > 16)
        strcat(out, " ...");
    return out;
}

/* The absolute form of a path the process names relative to its working directory. */
static char *absolute(const struct rbx_doctor *d, const char *p)
{
    _cleanup_free_ char *joined =
        p[0] == '/' ? rbx_xstrdup(p) : rbx_xasprintf("%s/%s", cwd_of(d), p);
    _cleanup_free_ char *clean = NULL;
    /* "/app/./scripts/x.sh" as "/app/scripts/x.sh"; a ".." above the root stays as written */
    if (rbx_path_clean(joined, &clean, NULL) < 0)
        return TAKE_PTR(joined);
    return rbx_xasprintf("/%s", clean);
}

/* Where a chain of links breaks, as evidence: "A -> T: M is not in the image". */
static void broken_chain(struct rbx_doctor *d, struct rbx_finding *f, const char *path)
{
    _cleanup_free_ char *abs = absolute(d, path);
    _cleanup_free_ char *where = NULL;
    int r = rbx_realpath_in_root(d->rootfd, abs, &where, NULL);
    if (r >= 0 || !where)
        return;
    char target[RBX_PATH_MAX + 1];
    _cleanup_close_ int fd =
        rbx_open_in_root(d->rootfd, abs, O_PATH, 0, RBX_RESOLVE_NOFOLLOW, NULL);
    ssize_t n = fd >= 0 ? readlinkat(fd, "", target, sizeof(target) - 1) : -1;
    if (n > 0) {
        target[n] = '\0';
        rbx_finding_evidence(f, "%s -> %s, and %s is not in the image", abs, target, where);
    } else if (strcmp(where, abs) != 0) {
        rbx_finding_evidence(f, "%s is not in the image", where);
    }
}

static bool executable_by(const struct rbx_doctor *d, const struct stat *st)
{
    if (!d->have_user || d->user.uid == 0)
        return st->st_mode & 0111;
    if (st->st_uid == d->user.uid)
        return st->st_mode & S_IXUSR;
    bool in_group = st->st_gid == d->user.gid;
    for (size_t i = 0; i < d->user.n_groups && !in_group; i++)
        in_group = d->user.groups[i] == st->st_gid;
    return in_group ? st->st_mode & S_IXGRP : st->st_mode & S_IXOTH;
}

static const char *user_name(const struct rbx_doctor *d)
{
    return d->proc->user && *d->proc->user ? d->proc->user : "root";
}

/* "from scripts/run.sh:4" for messages; "" at the top. */
static char *from_where(const char *where)
{
    return strcmp(where, "the command") == 0 ? rbx_xstrdup("") : rbx_xasprintf(" (%s)", where);
}

/* ---- not found: what the image has instead ------------------------------------------------- */

/* node_modules/.bin/NAME in the working directory or above it, as npm and npx look. */
static char *local_bin(const struct rbx_doctor *d, const char *name)
{
    _cleanup_free_ char *dir = rbx_xstrdup(cwd_of(d));
    for (;;) {
        _cleanup_free_ char *p =
            rbx_xasprintf("%s/node_modules/.bin/%s", strcmp(dir, "/") ? dir : "", name);
        _cleanup_close_ int fd = rbx_open_in_root(d->rootfd, p, O_PATH, 0, 0, NULL);
        if (fd >= 0)
            return TAKE_PTR(p);
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            if (strcmp(dir, "/") == 0)
                return NULL;
            strcpy(dir, "/");
            continue;
        }
        *slash = '\0';
    }
}

/* For `pnpm db:migrate`: the package.json script it would run ("\"db:migrate\": \"prisma
 * migrate deploy\""), and in *command that command alone. */
static char *package_script(struct rbx_doctor *d, const struct arg *argv, size_t argc,
                            char **pkg_path, char **command)
{
    size_t i = 1;
    if (i < argc && (strcmp(argv[i].s, "run") == 0 || strcmp(argv[i].s, "run-script") == 0))
        i++;
    if (i >= argc || argv[i].dynamic || argv[i].s[0] == '-')
        return NULL;
    _cleanup_free_ char *dir = rbx_xstrdup(cwd_of(d));
    for (;;) {
        _cleanup_free_ char *p = rbx_xasprintf("%s/package.json", strcmp(dir, "/") ? dir : "");
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (rbx_doctor_read(d, p, 1 << 20, &text, &len) == 0) {
            _cleanup_json_ json_t *j = rbx_json_loadb(text, len, p, NULL);
            json_t *s = json_object_get(json_object_get(j, "scripts"), argv[i].s);
            if (!json_is_string(s))
                return NULL;
            *pkg_path = TAKE_PTR(p);
            *command = rbx_xstrdup(json_string_value(s));
            return rbx_xasprintf("\"%s\": \"%s\"", argv[i].s, json_string_value(s));
        }
        char *slash = strrchr(dir, '/');
        if (!slash || strcmp(dir, "/") == 0)
            return NULL;
        if (slash == dir)
            strcpy(dir, "/");
        else
            *slash = '\0';
    }
}

/* The script checks for it first (command -v X, which X, [ -x /path/X ]): it handles the
 * absence itself. */
static bool probed(const struct script_ctx *sc, const char *name)
{
    for (size_t i = 0; sc && sc->probed && sc->probed[i]; i++)
        if (strcmp(sc->probed[i], name) == 0 ||
            (!strchr(name, '/') && strcmp(base_name(sc->probed[i]), name) == 0))
            return true;
    return false;
}

static void not_found(struct rbx_doctor *d, const struct arg *argv, size_t argc, const char *where,
                      const struct script_ctx *sc)
{
    const char *name = argv[0].s;
    if (probed(sc, name))
        return;
    _cleanup_free_ char *fw = from_where(where);
    _cleanup_free_ char *bin = strchr(name, '/') ? NULL : local_bin(d, name);
    _cleanup_free_ char *pkg = NULL;
    static const char *const managers[] = {"pnpm", "npm", "yarn", "bun", "corepack"};
    bool manager = false;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(managers); i++)
        manager = manager || strcmp(name, managers[i]) == 0;
    _cleanup_free_ char *command = NULL;
    _cleanup_free_ char *script = manager ? package_script(d, argv, argc, &pkg, &command) : NULL;
    _cleanup_free_ char *hint = NULL;
    /* the script's program, when the image has it in node_modules/.bin */
    _cleanup_free_ char *prog = command ? rbx_xstrndup(command, strcspn(command, " \t")) : NULL;
    _cleanup_free_ char *prog_bin = prog && *prog && !strchr(prog, '/') ? local_bin(d, prog) : NULL;
    if (prog_bin) {
        const char *cwd = cwd_of(d);
        size_t cl = strlen(cwd);
        bool under = strncmp(prog_bin, cwd, cl) == 0 && prog_bin[cl] == '/';
        hint = rbx_xasprintf("%s is a tool of the build stage that the final image lacks: run the "
                             "script's command directly: %s%s%s",
                             name, under ? "." : "", under ? prog_bin + cl : prog_bin,
                             command + strlen(prog));
    } else if (script)
        hint = rbx_xasprintf("%s is a tool of the build stage that the final image lacks: run the "
                             "script's own command instead, with the program from "
                             "./node_modules/.bin",
                             name);
    else if (bin)
        hint = rbx_xasprintf("it is at %s, which is not on PATH: call it by that path, or add its "
                             "directory to PATH",
                             bin);
    else
        hint = rbx_xstrdup(strchr(name, '/') ? "copy it into the image, or fix the path"
                                             : "install it in the final image, or call a program "
                                               "that is there");
    struct rbx_finding *f = rbx_doctor_add(d, "command-not-found", RBX_SEVERITY_ERROR, hint,
                                           "\"%s\" is not in the image%s", name, fw);
    _cleanup_free_ char *text = words_text(argv, argc);
    rbx_finding_evidence(f, "%s: %s", where, text);
    if (strchr(name, '/'))
        broken_chain(d, f, name);
    else
        rbx_finding_evidence(f, "searched PATH=%s", path_env(d));
    if (script)
        rbx_finding_evidence(f, "%s: %s", pkg, script);
}

/* ---- ELF ------------------------------------------------------------------------------------ */

/* The loaders of the other C library that the image does have, if any. */
static char *other_loader(struct rbx_doctor *d, enum rbx_libc want)
{
    static const char *const dirs[] = {"/lib", "/lib64", "/usr/lib"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(dirs); i++) {
        int fd = rbx_open_in_root(d->rootfd, dirs[i], O_RDONLY | O_DIRECTORY, 0, 0, NULL);
        if (fd < 0)
            continue;
        DIR *dir = fdopendir(fd);
        if (!dir) {
            close(fd);
            continue;
        }
        struct dirent *de;
        char *found = NULL;
        while (!found && (de = readdir(dir))) {
            _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dirs[i], de->d_name);
            enum rbx_libc l = rbx_elf_libc_of_interp(p);
            if (l != RBX_LIBC_UNKNOWN && l != want && strstr(de->d_name, ".so"))
                found = TAKE_PTR(p);
        }
        closedir(dir);
        if (found)
            return found;
    }
    return NULL;
}

static void check_loader(struct rbx_doctor *d, const char *path, const struct rbx_elf *e)
{
    enum rbx_libc libc = rbx_elf_libc_of_interp(e->interp);
    _cleanup_free_ char *other = libc != RBX_LIBC_UNKNOWN ? other_loader(d, libc) : NULL;
    struct rbx_finding *f;
    if (other && libc == RBX_LIBC_GLIBC)
        f = rbx_doctor_add(d, "musl-glibc-mismatch", RBX_SEVERITY_ERROR,
                           "a glibc binary on a musl image (Alpine): use a glibc base image, build "
                           "the program on the musl image, or add a compatibility layer (gcompat)",
                           "%s is built for glibc, but the image has musl's loader %s", path,
                           other);
    else if (other)
        f = rbx_doctor_add(d, "musl-glibc-mismatch", RBX_SEVERITY_ERROR,
                           "a musl binary on a glibc image: build it for glibc, or use a musl "
                           "base image",
                           "%s is built for musl, but the image has glibc's loader %s", path,
                           other);
    else
        f = rbx_doctor_add(d, "elf-loader-missing", RBX_SEVERITY_ERROR,
                           "copy the loader and the libraries the program needs (ldd lists them) "
                           "into the image, or link it statically",
                           "the ELF interpreter of %s, %s, is not in the image: execve fails "
                           "with \"no such file or directory\"",
                           path, e->interp);
    rbx_finding_evidence(f, "%s: PT_INTERP %s", path, e->interp);
    broken_chain(d, f, e->interp);
}

/* The checks of an ELF program that do not depend on its arguments, once per image (and
 * LD_LIBRARY_PATH). */
static void check_elf(struct rbx_doctor *d, const char *path, int fd)
{
    const char *llp = rbx_env_get(d->proc->env, "LD_LIBRARY_PATH");
    _cleanup_free_ char *key = rbx_xasprintf("elf:%s:%s", path, llp ? llp : "");
    if (rbx_doctor_seen(d, key, true))
        return;
    struct rbx_elf e;
    struct rbx_error *err = NULL;
    if (rbx_elf_read(fd, path, &e, &err) < 0) {
        rbx_doctor_add(d, "exec-format", RBX_SEVERITY_ERROR, "rebuild or recopy the program",
                       "%s cannot be executed: %s", path, err->message);
        rbx_error_free(err);
        return;
    }
    if (d->arch && !rbx_elf_runs_on(&e, d->arch)) {
        const char *a = rbx_elf_arch_name(&e);
        struct rbx_finding *f = rbx_doctor_add(
            d, "elf-arch-mismatch", RBX_SEVERITY_ERROR,
            "build or download the program for the image's architecture (docker buildx "
            "--platform), or choose the matching image",
            "%s is a binary for %s, but the image is %s: execve fails with \"exec format error\"",
            path, a ? a : "another machine", d->arch);
        rbx_finding_evidence(f, "%s: ELF e_machine %u, %d-bit, %s-endian", path, e.machine,
                             e.cls == 1 ? 32 : 64, e.big_endian ? "big" : "little");
        rbx_elf_clear(&e);
        return;
    }
    if (e.interp) {
        _cleanup_close_ int lfd = rbx_open_in_root(d->rootfd, e.interp, O_PATH, 0, 0, NULL);
        if (lfd < 0) {
            check_loader(d, path, &e);
            rbx_elf_clear(&e);
            return;
        }
    }
    if (e.interp || e.needed) {
        struct rbx_elf_closure c;
        if (rbx_elf_closure(d->rootfd, path, &e, d->proc->env, &c, NULL) == 0 && c.n_missing) {
            _cleanup_free_ char *names = NULL;
            for (size_t i = 0; i < c.n_missing; i++) {
                char *n = rbx_xasprintf("%s%s%s", names ? names : "", names ? ", " : "",
                                        c.missing[i].name);
                free(names);
                names = n;
            }
            struct rbx_finding *f = rbx_doctor_add(
                d, "library-missing", RBX_SEVERITY_ERROR,
                "copy the libraries into the image (ldd on the build stage lists them), or fix "
                "RUNPATH / LD_LIBRARY_PATH",
                "%s needs %s, which the dynamic loader will not find in the image", path, names);
            for (size_t i = 0; i < c.n_missing; i++) {
                const struct rbx_elf_missing *m = &c.missing[i];
                rbx_finding_evidence(f, "%s: needed by %s; searched %s", m->name, m->needed_by,
                                     m->searched && *m->searched ? m->searched : "(a path)");
                if (m->incompatible)
                    rbx_finding_evidence(f, "%s: skipped %s, built for another machine", m->name,
                                         m->incompatible);
            }
        }
        rbx_elf_closure_clear(&c);
    }
    rbx_elf_clear(&e);
}

/* ---- what a program does with its arguments ---------------------------------------------------
 */

static bool is_shell(const char *base)
{
    static const char *const shells[] = {"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "hush"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(shells); i++)
        if (strcmp(base, shells[i]) == 0)
            return true;
    return false;
}

static void script_commands(struct rbx_doctor *d, struct rbx_sh_script *s, const char *display)
{
    struct script_ctx sc = {s->functions, s->probed};
    d->depth++;
    for (size_t i = 0; i < s->n_cmds; i++) {
        const struct rbx_sh_command *c = &s->cmds[i];
        struct arg *argv = rbx_xcalloc(c->n_words + 1, sizeof(*argv));
        for (size_t k = 0; k < c->n_words; k++)
            argv[k] = (struct arg){c->words[k].text, c->words[k].dynamic, c->words[k].args};
        _cleanup_free_ char *where = rbx_xasprintf("%s:%u", display, c->line);
        resolve(d, argv, c->n_words, where, true, &sc);
        free(argv);
    }
    d->depth--;
}

static void parse_and_check(struct rbx_doctor *d, const char *text, size_t len, const char *display,
                            const struct arg *args, size_t nargs)
{
    bool known = true;
    char **argsv = rbx_xcalloc(nargs + 1, sizeof(char *));
    for (size_t i = 0; i < nargs; i++) {
        argsv[i] = (char *)args[i].s;
        known = known && !args[i].dynamic;
    }
    struct rbx_sh_script s;
    struct rbx_error *err = NULL;
    int r = rbx_sh_parse(text, len, d->proc->env, known ? argsv : NULL, &s, &err);
    free(argsv);
    script_commands(d, &s, display);
    if (r < 0)
        rbx_doctor_add(d, "command-unresolved", RBX_SEVERITY_WARNING, NULL,
                       "%s: read up to %s only", display, err->message);
    else if (s.truncated)
        rbx_doctor_add(d, "command-unresolved", RBX_SEVERITY_WARNING, NULL,
                       "%s: too long or too deeply nested; the rest was not read", display);
    rbx_error_free(err);
    rbx_sh_script_clear(&s);
}

/* sh [options] script [args] | sh [options] -c string [name [args]] */
static void shell_args(struct rbx_doctor *d, const struct arg *argv, size_t argc, const char *where)
{
    size_t i = 1;
    bool cmd = false;
    while (i < argc) {
        const char *a = argv[i].s;
        if (argv[i].dynamic)
            return;
        if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0) {
            i++;
            break;
        }
        if ((a[0] != '-' && a[0] != '+') || !a[1])
            break;
        if (a[1] == '-') { /* bash's long options */
            i += strcmp(a, "--rcfile") == 0 || strcmp(a, "--init-file") == 0 ? 2 : 1;
            continue;
        }
        if (strcmp(a + 1, "o") == 0) {
            i += 2;
            continue;
        }
        if (a[0] == '-' && strchr(a + 1, 'c'))
            cmd = true;
        if (a[0] == '-' && strchr(a + 1, 's'))
            return; /* commands from stdin */
        i++;
    }
    if (i >= argc || argv[i].dynamic)
        return;
    if (cmd) {
        size_t first_arg = i + 2 <= argc ? i + 2 : argc;
        _cleanup_free_ char *display =
            strcmp(where, "the command") == 0
                ? rbx_xasprintf("%s -c", base_name(argv[0].s))
                : rbx_xasprintf("%s: %s -c", where, base_name(argv[0].s));
        parse_and_check(d, argv[i].s, strlen(argv[i].s), display, argv + first_arg,
                        argc - first_arg);
        return;
    }
    run_script(d, argv[i].s, argv + i + 1, argc - i - 1, where, false);
}

/* The file a shell reads: `sh ./x.sh` from the working directory, `. x.sh` through PATH. */
static void run_script(struct rbx_doctor *d, const char *name, const struct arg *args, size_t nargs,
                       const char *where, bool sourced)
{
    if (d->depth >= RBX_DOCTOR_MAX_DEPTH)
        return;
    _cleanup_free_ char *path = NULL;
    if (sourced && !strchr(name, '/')) {
        char found[RBX_PATH_MAX + 1];
        _cleanup_error_ struct rbx_error *e = NULL;
        if (rbx_exec_lookup(d->rootfd, cwd_of(d), name, path_env(d), found, sizeof(found), &e) == 0)
            path = rbx_xstrdup(found);
    }
    if (!path) {
        if (name[0] != '/' && d->cwd_missing)
            return; /* the missing working directory is the finding */
        path = absolute(d, name);
    }
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = rbx_doctor_read(d, path, RBX_SH_MAX_BYTES, &text, &len);
    _cleanup_free_ char *fw = from_where(where);
    if (r == -ENOENT || r == -ENOTDIR) {
        struct rbx_finding *f = rbx_doctor_add(
            d, "script-missing", RBX_SEVERITY_ERROR,
            "copy the script into the image, or fix its path",
            "the script %s is not in the image%s: the shell cannot open it", name, fw);
        rbx_finding_evidence(f, "looked for %s", path);
        broken_chain(d, f, path);
        return;
    }
    if (r == -EISDIR) {
        rbx_doctor_add(d, "script-missing", RBX_SEVERITY_ERROR, "name the script file",
                       "the script %s is a directory%s", name, fw);
        return;
    }
    if (r < 0)
        return; /* too large, unreadable: nothing to say about its commands */
    _cleanup_free_ char *key = rbx_xasprintf("script:%s", path);
    if (rbx_doctor_seen(d, key, false))
        return;
    parse_and_check(d, text, len, path, args, nargs);
}

/* npx X: X from node_modules/.bin, or else downloaded from the registry when it runs. */
static void npx_args(struct rbx_doctor *d, const struct arg *argv, size_t argc, const char *where)
{
    size_t i = 1;
    while (i < argc && argv[i].s[0] == '-' && !argv[i].dynamic) {
        const char *a = argv[i].s;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--call") == 0 || strcmp(a, "-p") == 0 ||
            strncmp(a, "--package", 9) == 0)
            return; /* what runs is then named elsewhere */
        i++;
    }
    if (i >= argc || argv[i].dynamic)
        return;
    _cleanup_free_ char *name = rbx_xstrdup(argv[i].s);
    char *at = strchr(name + (name[0] == '@'), '@'); /* prisma@5.22.0 */
    if (at)
        *at = '\0';
    if (strchr(name, '/'))
        return;
    _cleanup_free_ char *bin = local_bin(d, name);
    if (bin)
        return;
    _cleanup_free_ char *fw = from_where(where);
    struct rbx_finding *f = rbx_doctor_add(
        d, "npx-download", RBX_SEVERITY_WARNING,
        "add it to the image's dependencies, or call its binary directly",
        "npx %s%s: \"%s\" is not in node_modules/.bin, so npx will fetch it from the npm "
        "registry at start (without network, it waits)",
        name, fw, name);
    rbx_finding_evidence(f, "looked for node_modules/.bin/%s from %s up", name, cwd_of(d));
}

/* The command a wrapper runs: env A=1 cmd, nohup cmd, tini -- cmd, gosu user cmd... (0: none) */
static size_t wrapped(const char *base, const struct arg *argv, size_t argc, const char **path)
{
    size_t i = 1;
    if (strcmp(base, "env") == 0) {
        while (i < argc && !argv[i].dynamic) {
            const char *a = argv[i].s;
            if (strcmp(a, "-u") == 0 || strcmp(a, "-C") == 0)
                i += 2;
            else if (strcmp(a, "-S") == 0 || strncmp(a, "-S", 2) == 0 ||
                     strcmp(a, "--split-string") == 0)
                return 0; /* a string env splits itself: not followed */
            else if (a[0] == '-')
                i++;
            else if (strchr(a, '=')) {
                if (strncmp(a, "PATH=", 5) == 0)
                    *path = a + 5;
                i++;
            } else
                break;
        }
        return i < argc ? i : 0;
    }
    if (strcmp(base, "nohup") == 0 || strcmp(base, "setsid") == 0 || strcmp(base, "nice") == 0 ||
        strcmp(base, "stdbuf") == 0 || strcmp(base, "chrt") == 0 || strcmp(base, "ionice") == 0) {
        while (i < argc && argv[i].s[0] == '-' && !argv[i].dynamic) {
            const char *a = argv[i].s;
            bool takes = (strcmp(base, "nice") == 0 && strcmp(a, "-n") == 0) ||
                         (strcmp(base, "stdbuf") == 0 && strlen(a) == 2) ||
                         (strcmp(base, "ionice") == 0 && strlen(a) == 2 && strchr("cnp", a[1]));
            i += takes ? 2 : 1;
        }
        return i < argc ? i : 0;
    }
    if (strcmp(base, "timeout") == 0) {
        while (i < argc && argv[i].s[0] == '-' && !argv[i].dynamic)
            i += strcmp(argv[i].s, "-s") == 0 || strcmp(argv[i].s, "-k") == 0 ? 2 : 1;
        return i + 1 < argc ? i + 1 : 0; /* after the duration */
    }
    if (strcmp(base, "tini") == 0 || strcmp(base, "dumb-init") == 0 ||
        strcmp(base, "catatonit") == 0 || strcmp(base, "docker-init") == 0) {
        while (i < argc && argv[i].s[0] == '-' && !argv[i].dynamic) {
            if (strcmp(argv[i].s, "--") == 0)
                return i + 1 < argc ? i + 1 : 0;
            const char *a = argv[i].s;
            i += strcmp(a, "-p") == 0 || strcmp(a, "-e") == 0 || strcmp(a, "-r") == 0 ? 2 : 1;
        }
        return i < argc ? i : 0;
    }
    if (strcmp(base, "gosu") == 0 || strcmp(base, "su-exec") == 0)
        return argc > 2 ? 2 : 0;
    return 0;
}

static void program_args(struct rbx_doctor *d, const struct arg *argv, size_t argc,
                         const char *where)
{
    const char *base = base_name(argv[0].s);
    if (strcmp(base, "busybox") == 0 && argc > 1 && !argv[1].dynamic) {
        argv++; /* busybox sh ... */
        argc--;
        base = base_name(argv[0].s);
    }
    if (is_shell(base)) {
        shell_args(d, argv, argc, where);
        return;
    }
    if (strcmp(base, "node") == 0 || strcmp(base, "nodejs") == 0) {
        char **args = rbx_xcalloc(argc + 1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 1; i < argc && !argv[i].dynamic; i++)
            args[n++] = (char *)argv[i].s;
        rbx_doctor_node(d, args, n, where);
        free(args);
        return;
    }
    if (strcmp(base, "npx") == 0) {
        npx_args(d, argv, argc, where);
        return;
    }
    const char *path_override = NULL;
    size_t k = wrapped(base, argv, argc, &path_override);
    if (!k)
        return;
    if (path_override) {
        /* env PATH=... cmd: the lookup uses that PATH */
        char *kv = rbx_xasprintf("PATH=%s", path_override);
        char **env = rbx_strv_copy(d->proc->env);
        rbx_env_set(&env, kv);
        free(kv);
        struct rbx_doctor_process p = *d->proc;
        const struct rbx_doctor_process *saved = d->proc;
        p.env = env;
        d->proc = &p;
        resolve(d, argv + k, argc - k, where, false, NULL);
        d->proc = saved;
        rbx_strv_free(env);
        return;
    }
    resolve(d, argv + k, argc - k, where, false, NULL);
}

/* ---- one file, as execve sees it ------------------------------------------------------------ */

/* The "#!" line as the kernel reads it: the interpreter and at most one argument. */
static bool shebang(const char *head, size_t n, char *interp, size_t ilen, char *arg, size_t alen)
{
    if (n < 2 || head[0] != '#' || head[1] != '!')
        return false;
    size_t i = 2, end = n;
    const char *nl = memchr(head, '\n', n);
    if (nl)
        end = (size_t)(nl - head);
    while (i < end && (head[i] == ' ' || head[i] == '\t'))
        i++;
    size_t s = i;
    while (i < end && head[i] != ' ' && head[i] != '\t' && head[i] != '\r')
        i++;
    if (i == s || i - s >= ilen)
        return false;
    memcpy(interp, head + s, i - s);
    interp[i - s] = '\0';
    while (i < end && (head[i] == ' ' || head[i] == '\t'))
        i++;
    size_t e = end;
    while (e > i && (head[e - 1] == ' ' || head[e - 1] == '\t' || head[e - 1] == '\r'))
        e--;
    size_t al = e - i < alen - 1 ? e - i : alen - 1;
    memcpy(arg, head + i, al);
    arg[al] = '\0';
    return true;
}

static void check_file(struct rbx_doctor *d, const char *path, const struct arg *argv, size_t argc,
                       const char *where, bool from_shell)
{
    _cleanup_close_ int fd =
        rbx_open_in_root(d->rootfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0, 0, NULL);
    if (fd < 0)
        return;
    char head[256];
    ssize_t n = pread(fd, head, sizeof(head), 0);
    if (n < 0)
        return;
    if (n >= 4 && memcmp(head, "\177ELF", 4) == 0) {
        check_elf(d, path, fd);
        program_args(d, argv, argc, where);
        return;
    }
    char interp[256], arg[256];
    if (shebang(head, (size_t)n, interp, sizeof(interp), arg, sizeof(arg))) {
        _cleanup_free_ char *ipath = interp[0] == '/' ? rbx_xstrdup(interp) : absolute(d, interp);
        _cleanup_close_ int ifd = rbx_open_in_root(d->rootfd, ipath, O_PATH, 0, 0, NULL);
        _cleanup_free_ char *fw = from_where(where);
        struct stat st;
        if (ifd < 0 || fstat(ifd, &st) < 0 || S_ISDIR(st.st_mode)) {
            struct rbx_finding *f = rbx_doctor_add(
                d, "interpreter-missing", RBX_SEVERITY_ERROR,
                "install the interpreter in the image, or change the #! line to one it has",
                "the interpreter of %s, %s, is not in the image%s: execve fails with \"no such "
                "file or directory\"",
                path, interp, fw);
            rbx_finding_evidence(f, "%s: #!%s%s%s", path, interp, *arg ? " " : "", arg);
            broken_chain(d, f, ipath);
            return;
        }
        if (!executable_by(d, &st)) {
            struct rbx_finding *f =
                rbx_doctor_add(d, "not-executable", RBX_SEVERITY_ERROR, "chmod +x the interpreter",
                               "the interpreter of %s, %s, is not executable by %s%s", path, interp,
                               user_name(d), fw);
            rbx_finding_evidence(f, "%s: mode %04o, owner %u:%u", interp,
                                 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                                 (unsigned)st.st_gid);
            return;
        }
        if (d->depth >= RBX_DOCTOR_MAX_DEPTH)
            return;
        /* the kernel runs: interp [arg] path args... */
        struct arg *nv = rbx_xcalloc(argc + 3, sizeof(*nv));
        size_t k = 0;
        nv[k++] = (struct arg){interp, false, false};
        if (*arg)
            nv[k++] = (struct arg){arg, false, false};
        nv[k++] = (struct arg){path, false, false};
        for (size_t i = 1; i < argc; i++)
            nv[k++] = argv[i];
        d->depth++;
        if (strcmp(base_name(interp), "env") == 0 && *arg) {
            /* #!/usr/bin/env X: X through PATH (env is checked as a program too). Without -S the
             * kernel's one argument ("node --x") is one name to env. */
            check_file(d, ipath, nv, 1, where, false);
            char *words[16];
            size_t nw = 0;
            _cleanup_free_ char *copy = rbx_xstrdup(arg);
            if (strncmp(copy, "-S", 2) == 0) {
                char *save = NULL;
                for (char *t = strtok_r(copy + 2, " \t", &save); t && nw < RBX_ARRAY_SIZE(words);
                     t = strtok_r(NULL, " \t", &save))
                    words[nw++] = t;
            } else {
                words[nw++] = copy;
            }
            struct arg *ev = rbx_xcalloc(nw + argc + 2, sizeof(*ev));
            size_t m = 0;
            for (size_t i = 0; i < nw; i++)
                ev[m++] = (struct arg){words[i], false, false};
            ev[m++] = (struct arg){path, false, false};
            for (size_t i = 1; i < argc; i++)
                ev[m++] = argv[i];
            if (nw)
                resolve(d, ev, m, where, false, NULL);
            free(ev);
        } else {
            check_file(d, ipath, nv, k, where, false);
        }
        d->depth--;
        free(nv);
        return;
    }
    if (from_shell) {
        /* execve says ENOEXEC and the shell runs the file as a script itself */
        if (d->depth >= RBX_DOCTOR_MAX_DEPTH)
            return;
        run_script(d, path, argv + 1, argc - 1, where, false);
        return;
    }
    _cleanup_free_ char *fw = from_where(where);
    struct rbx_finding *f = rbx_doctor_add(
        d, "exec-format", RBX_SEVERITY_ERROR,
        "start it through its interpreter (sh script.sh), or add a #! line",
        "%s is neither an ELF binary nor a script with a #! line%s: execve fails with \"exec "
        "format error\"",
        path, fw);
    rbx_finding_evidence(f, n == 0 ? "%s: empty" : "%s: starts with \"%.8s\"", path,
                         n == 0 ? "" : head);
}

/* ---- the shell's builtins that run something ------------------------------------------------- */

static void builtin(struct rbx_doctor *d, const struct arg *argv, size_t argc, const char *where,
                    const struct script_ctx *sc)
{
    const char *name = argv[0].s;
    size_t i = 1;
    if (strcmp(name, "exec") == 0) {
        while (i < argc && !argv[i].dynamic && argv[i].s[0] == '-')
            i += strcmp(argv[i].s, "-a") == 0 ? 2 : 1;
        if (i < argc)
            resolve(d, argv + i, argc - i, where, true, sc);
        return;
    }
    if (strcmp(name, "command") == 0) {
        while (i < argc && !argv[i].dynamic && argv[i].s[0] == '-') {
            if (strcmp(argv[i].s, "-v") == 0 || strcmp(argv[i].s, "-V") == 0)
                return; /* a probe */
            i++;
        }
        if (i < argc)
            resolve(d, argv + i, argc - i, where, true, sc);
        return;
    }
    if ((strcmp(name, ".") == 0 || strcmp(name, "source") == 0) && argc > 1 && !argv[1].dynamic)
        run_script(d, argv[1].s, argv + 2, argc - 2, where, true);
}

/* ---- one command ------------------------------------------------------------------------------
 */

static void resolve(struct rbx_doctor *d, const struct arg *argv, size_t argc, const char *where,
                    bool from_shell, const struct script_ctx *sc)
{
    if (argc == 0 || d->depth > RBX_DOCTOR_MAX_DEPTH)
        return;
    const char *name = argv[0].s;
    if (argv[0].dynamic) {
        /* exec "$@": the script runs what it is given, checked where it is given */
        if (!from_shell || argv[0].args)
            return;
        _cleanup_free_ char *text = words_text(argv, argc);
        struct rbx_finding *f = rbx_doctor_add(
            d, "command-unresolved", RBX_SEVERITY_WARNING, NULL,
            "%s: the command is made of expansions known only when the script runs; not checked",
            where);
        rbx_finding_evidence(f, "%s: %s", where, text);
        return;
    }
    if (from_shell) {
        if (sc && strv_has(sc->functions, name))
            return;
        if (rbx_sh_builtin(name)) {
            builtin(d, argv, argc, where, sc);
            return;
        }
    }
    if (!*name)
        return;
    /* prisma migrate deploy, however it is started: the schema's migrations are needed */
    for (size_t i = 0; i < argc; i++)
        if (strcmp(base_name(argv[i].s), "prisma") == 0 ||
            strstr(argv[i].s, "prisma/build/index.js"))
            for (size_t k = i + 1; k + 1 < argc; k++)
                if (strcmp(argv[k].s, "migrate") == 0 && strcmp(argv[k + 1].s, "deploy") == 0)
                    d->migrate_deploy = true;
    if (d->cwd_missing && name[0] != '/' && strchr(name, '/'))
        return; /* the missing working directory is the finding */
    char found[RBX_PATH_MAX + 1];
    struct rbx_error *err = NULL;
    int r = rbx_exec_lookup(d->rootfd, cwd_of(d), name, path_env(d), found, sizeof(found), &err);
    if (r < 0) {
        if (err->kind == RBX_ERR_EXEC_NOT_FOUND) {
            not_found(d, argv, argc, where, sc);
        } else {
            _cleanup_free_ char *fw = from_where(where);
            struct rbx_finding *f = rbx_doctor_add(
                d, "not-executable", RBX_SEVERITY_ERROR,
                "chmod +x it in the Dockerfile (COPY --chmod=755), or start it through its "
                "interpreter",
                "\"%s\" is in the image but cannot be executed%s", name, fw);
            rbx_finding_evidence(f, "%s", err->message);
        }
        rbx_error_free(err);
        return;
    }
    _cleanup_close_ int fd = rbx_open_in_root(d->rootfd, found, O_PATH, 0, 0, NULL);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && !executable_by(d, &st)) {
        _cleanup_free_ char *fw = from_where(where);
        struct rbx_finding *f =
            rbx_doctor_add(d, "not-executable", RBX_SEVERITY_ERROR,
                           "give the user execute permission (chmod a+x), or run as another user",
                           "%s is not executable by %s%s", found, user_name(d), fw);
        rbx_finding_evidence(f, "%s: mode %04o, owner %u:%u; %s is %u:%u", found,
                             (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                             (unsigned)st.st_gid, user_name(d), (unsigned)d->user.uid,
                             (unsigned)d->user.gid);
        return;
    }
    check_file(d, found, argv, argc, where, from_shell);
}

void rbx_doctor_command(struct rbx_doctor *d, char *const *argv, size_t argc, const char *where,
                        bool from_shell)
{
    struct arg *args = rbx_xcalloc(argc + 1, sizeof(*args));
    for (size_t i = 0; i < argc; i++)
        args[i] = (struct arg){argv[i], false, false};
    resolve(d, args, argc, where, from_shell, NULL);
    free(args);
}
