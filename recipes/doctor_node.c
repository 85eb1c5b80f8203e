/* doctor_node.c — what `node` will load: the modules named by an entry script (and the app files
 * it requires), by the app's package.json dependencies and theirs, resolved with Node's own
 * algorithm inside the image; and the generated client that @prisma/client loads. */
#include "recipes/doctor-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_APP_FILES 256
#define MAX_PACKAGES 4096
#define MAX_TOKENS (1u << 20)

/* ---- the JavaScript lexer: just enough to never take a string or comment for code ---------- */

enum tkind { K_IDENT, K_STR, K_PUNCT, K_OTHER };

struct token {
    enum tkind kind;
    size_t start, len; /* K_STR: the content, between the quotes */
    unsigned line;
    bool guarded, nested;
};

struct lexer {
    const char *s;
    size_t n, i;
    unsigned line;
    struct token *t;
    size_t nt, cap;
    /* braces: 'b' block, 't' try/catch, '`' template; parens: 'c' after catch */
    char braces[256];
    size_t nb;
    char parens[256];
    size_t np;
    unsigned guards; /* 't' braces open */
};

static bool ident_char(unsigned char c, bool first)
{
    return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

static void push_tok(struct lexer *L, enum tkind k, size_t start, size_t len)
{
    if (L->nt >= MAX_TOKENS)
        return;
    if (L->nt == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 256;
        L->t = rbx_xrealloc(L->t, L->cap * sizeof(*L->t));
    }
    /* template braces (`${`) do not make code conditional */
    bool nested = false;
    for (size_t i = 0; i < L->nb && !nested; i++)
        nested = L->braces[i] != '`';
    L->t[L->nt++] = (struct token){k, start, len, L->line, L->guards > 0, nested};
}

static const struct token *last(const struct lexer *L)
{
    return L->nt ? &L->t[L->nt - 1] : NULL;
}

static bool tok_is(const struct lexer *L, const struct token *t, const char *word)
{
    return t && (t->kind == K_IDENT || t->kind == K_PUNCT) && t->len == strlen(word) &&
           memcmp(L->s + t->start, word, t->len) == 0;
}

/* After these a "/" starts a regular expression, not a division. */
static bool regex_allowed(const struct lexer *L)
{
    const struct token *t = last(L);
    if (!t)
        return true;
    if (t->kind == K_PUNCT) {
        char c = L->s[t->start];
        return !(c == ')' || c == ']' || c == '}');
    }
    if (t->kind == K_IDENT) {
        static const char *const kw[] = {"return", "typeof", "instanceof", "in",    "of",
                                         "new",    "delete", "void",       "throw", "case",
                                         "do",     "else",   "yield",      "await"};
        for (size_t i = 0; i < RBX_ARRAY_SIZE(kw); i++)
            if (tok_is(L, t, kw[i]))
                return true;
    }
    return false;
}

static void skip_string(struct lexer *L, char q)
{
    size_t start = ++L->i;
    while (L->i < L->n && L->s[L->i] != q && L->s[L->i] != '\n') {
        if (L->s[L->i] == '\\' && L->i + 1 < L->n) {
            if (L->s[L->i + 1] == '\n')
                L->line++;
            L->i++;
        }
        L->i++;
    }
    push_tok(L, K_STR, start, L->i - start);
    if (L->i < L->n && L->s[L->i] == q)
        L->i++;
}

/* Template text up to "${" (which opens a brace) or the closing backquote. */
static void template_text(struct lexer *L)
{
    while (L->i < L->n) {
        char c = L->s[L->i];
        if (c == '\\') {
            L->i += 2;
            continue;
        }
        if (c == '\n')
            L->line++;
        if (c == '`') {
            L->i++;
            push_tok(L, K_OTHER, L->i, 0);
            return;
        }
        if (c == '$' && L->i + 1 < L->n && L->s[L->i + 1] == '{') {
            L->i += 2;
            if (L->nb < sizeof(L->braces))
                L->braces[L->nb++] = '`';
            push_tok(L, K_PUNCT, L->i - 1, 1);
            return;
        }
        L->i++;
    }
}

static void lex(struct lexer *L)
{
    if (L->n >= 2 && L->s[0] == '#' && L->s[1] == '!')
        while (L->i < L->n && L->s[L->i] != '\n')
            L->i++;
    while (L->i < L->n && L->nt < MAX_TOKENS) {
        unsigned char c = (unsigned char)L->s[L->i];
        if (c == '\n') {
            L->line++;
            L->i++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            L->i++;
        } else if (c == '/' && L->i + 1 < L->n && L->s[L->i + 1] == '/') {
            while (L->i < L->n && L->s[L->i] != '\n')
                L->i++;
        } else if (c == '/' && L->i + 1 < L->n && L->s[L->i + 1] == '*') {
            L->i += 2;
            while (L->i + 1 < L->n && !(L->s[L->i] == '*' && L->s[L->i + 1] == '/')) {
                if (L->s[L->i] == '\n')
                    L->line++;
                L->i++;
            }
            L->i += 2;
        } else if (c == '\'' || c == '"') {
            skip_string(L, (char)c);
        } else if (c == '`') {
            L->i++;
            template_text(L);
        } else if (c == '/' && regex_allowed(L)) {
            bool cls = false;
            size_t start = L->i++;
            while (L->i < L->n && L->s[L->i] != '\n' && (cls || L->s[L->i] != '/')) {
                if (L->s[L->i] == '\\')
                    L->i++;
                else if (L->s[L->i] == '[')
                    cls = true;
                else if (L->s[L->i] == ']')
                    cls = false;
                L->i++;
            }
            L->i++;
            while (L->i < L->n && ident_char((unsigned char)L->s[L->i], false))
                L->i++;
            push_tok(L, K_OTHER, start, 0);
        } else if (ident_char(c, true)) {
            size_t start = L->i;
            while (L->i < L->n && ident_char((unsigned char)L->s[L->i], false))
                L->i++;
            push_tok(L, K_IDENT, start, L->i - start);
        } else if (c >= '0' && c <= '9') {
            size_t start = L->i;
            while (L->i < L->n &&
                   (ident_char((unsigned char)L->s[L->i], false) || L->s[L->i] == '.'))
                L->i++;
            push_tok(L, K_OTHER, start, L->i - start);
        } else {
            /* punctuation: braces and parens tell try/catch blocks and template ends */
            if (c == '{') {
                const struct token *t = last(L);
                char kind = 'b';
                if (tok_is(L, t, "try") || tok_is(L, t, "catch"))
                    kind = 't';
                else if (tok_is(L, t, ")") && L->np < sizeof(L->parens) && L->parens[L->np] == 'c')
                    kind = 't';
                if (L->nb < sizeof(L->braces))
                    L->braces[L->nb++] = kind;
                if (kind == 't')
                    L->guards++;
            } else if (c == '}') {
                char kind = L->nb ? L->braces[--L->nb] : 'b';
                if (kind == 't' && L->guards)
                    L->guards--;
                if (kind == '`') {
                    push_tok(L, K_PUNCT, L->i, 1);
                    L->i++;
                    template_text(L);
                    continue;
                }
            } else if (c == '(') {
                if (L->np < sizeof(L->parens))
                    L->parens[L->np++] = tok_is(L, last(L), "catch") ? 'c' : 'p';
            } else if (c == ')') {
                /* the popped entry stays readable at parens[np] for a "{" right after
                 * "catch (e)" */
                if (L->np)
                    L->np--;
            }
            push_tok(L, K_PUNCT, L->i, 1);
            L->i++;
        }
    }
}

/* The content of a string token, with the common escapes undone. */
static char *str_value(const struct lexer *L, const struct token *t)
{
    char *out = rbx_xmalloc(t->len + 1);
    size_t k = 0;
    for (size_t i = 0; i < t->len; i++) {
        char c = L->s[t->start + i];
        if (c == '\\' && i + 1 < t->len)
            c = L->s[t->start + ++i];
        out[k++] = c;
    }
    out[k] = '\0';
    return out;
}

static void add_import(struct rbx_js_import **v, size_t *n, char *spec, unsigned line, bool esm,
                       bool guarded, bool nested)
{
    *v = rbx_xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = (struct rbx_js_import){spec, line, esm, guarded, nested};
}

void rbx_js_imports(const char *text, size_t len, struct rbx_js_import **out, size_t *n)
{
    struct lexer L = {.s = text, .n = len, .line = 1};
    *out = NULL;
    *n = 0;
    lex(&L);
    const struct token *t = L.t;
    for (size_t i = 0; i < L.nt; i++) {
        /* x.require() is a method; ...require() a spread */
        bool member = i > 0 && tok_is(&L, &t[i - 1], ".") &&
                      !(i > 2 && tok_is(&L, &t[i - 2], ".") && tok_is(&L, &t[i - 3], "."));
        if (t[i].kind != K_IDENT || member)
            continue;
        bool req = tok_is(&L, &t[i], "require");
        bool imp = tok_is(&L, &t[i], "import");
        bool exp = tok_is(&L, &t[i], "export");
        if (req || (imp && i + 1 < L.nt && tok_is(&L, &t[i + 1], "("))) {
            /* require('x') and import('x'): a literal alone, or nothing */
            if (i + 3 < L.nt && tok_is(&L, &t[i + 1], "(") && t[i + 2].kind == K_STR &&
                (tok_is(&L, &t[i + 3], ")") || (imp && tok_is(&L, &t[i + 3], ","))))
                add_import(out, n, str_value(&L, &t[i + 2]), t[i + 2].line, imp, t[i].guarded,
                           t[i].nested);
            continue;
        }
        if (imp && i + 1 < L.nt && t[i + 1].kind == K_STR) { /* import 'x' */
            add_import(out, n, str_value(&L, &t[i + 1]), t[i + 1].line, true, false, false);
            continue;
        }
        if (!imp && !exp)
            continue;
        if (imp && i + 1 < L.nt && tok_is(&L, &t[i + 1], "."))
            continue; /* import.meta */
        /* import ... from 'x' / export ... from 'x', within one statement */
        for (size_t j = i + 1; j + 1 < L.nt && j < i + 256; j++) {
            if (tok_is(&L, &t[j], ";") || tok_is(&L, &t[j], "import") ||
                tok_is(&L, &t[j], "export") ||
                (exp && (tok_is(&L, &t[j], "(") || tok_is(&L, &t[j], "=") ||
                         tok_is(&L, &t[j], "function") || tok_is(&L, &t[j], "class") ||
                         tok_is(&L, &t[j], "const") || tok_is(&L, &t[j], "let") ||
                         tok_is(&L, &t[j], "var"))))
                break;
            if (tok_is(&L, &t[j], "from") && t[j + 1].kind == K_STR) {
                add_import(out, n, str_value(&L, &t[j + 1]), t[j + 1].line, true, false, false);
                break;
            }
        }
    }
    free(L.t);
}

void rbx_js_imports_free(struct rbx_js_import *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].specifier);
    free(v);
}

bool rbx_node_builtin(const char *spec)
{
    if (strncmp(spec, "node:", 5) == 0)
        return true;
    static const char *const mods[] = {
        "assert",
        "async_hooks",
        "buffer",
        "child_process",
        "cluster",
        "console",
        "constants",
        "crypto",
        "dgram",
        "diagnostics_channel",
        "dns",
        "domain",
        "events",
        "fs",
        "http",
        "http2",
        "https",
        "inspector",
        "module",
        "net",
        "os",
        "path",
        "perf_hooks",
        "process",
        "punycode",
        "querystring",
        "readline",
        "repl",
        "stream",
        "string_decoder",
        "sys",
        "timers",
        "tls",
        "trace_events",
        "tty",
        "url",
        "util",
        "v8",
        "vm",
        "wasi",
        "worker_threads",
        "zlib",
        "_http_agent",
        "_http_client",
        "_http_common",
        "_http_incoming",
        "_http_outgoing",
        "_http_server",
        "_stream_duplex",
        "_stream_passthrough",
        "_stream_readable",
        "_stream_transform",
        "_stream_wrap",
        "_stream_writable",
        "_tls_common",
        "_tls_wrap",
    };
    size_t n = strcspn(spec, "/");
    for (size_t i = 0; i < RBX_ARRAY_SIZE(mods); i++)
        if (strlen(mods[i]) == n && strncmp(spec, mods[i], n) == 0)
            return true;
    return false;
}

/* ---- Node's resolution ------------------------------------------------------------------------
 */

struct res {
    int rootfd;
    bool esm;
    struct rbx_node_resolution *out;
};

static int stat_in(int rootfd, const char *p, struct stat *st)
{
    _cleanup_close_ int fd = rbx_open_in_root(rootfd, p, O_PATH, 0, 0, NULL);
    if (fd < 0)
        return fd;
    return fstat(fd, st) < 0 ? -errno : 0;
}

static bool is_file(int rootfd, const char *p)
{
    struct stat st;
    return stat_in(rootfd, p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(int rootfd, const char *p)
{
    struct stat st;
    return stat_in(rootfd, p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* package.json of dir: NULL when there is none; *bad when it is not JSON. */
static json_t *package_json(int rootfd, const char *dir, bool *bad)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/package.json", strcmp(dir, "/") ? dir : "");
    _cleanup_close_ int fd = rbx_open_in_root(rootfd, p, O_RDONLY | O_NONBLOCK, 0, 0, NULL);
    *bad = false;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return NULL;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (rbx_read_fd(fd, 4u << 20, p, &text, &len, NULL) < 0)
        return NULL;
    /* as lenient as Node's JSON.parse (a repeated key is the last one); jansson caps the depth */
    json_t *j = json_loadb(text, len, 0, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        *bad = true;
        return NULL;
    }
    return j;
}

static bool found(struct res *r, const char *p)
{
    if (!is_file(r->rootfd, p))
        return false;
    free(r->out->path);
    if (rbx_realpath_in_root(r->rootfd, p, &r->out->path, NULL) < 0) {
        free(r->out->path);
        r->out->path = rbx_xstrdup(p);
    }
    return true;
}

static bool load_as_file(struct res *r, const char *x)
{
    static const char *const exts[] = {"", ".js", ".json", ".node", ".cjs", ".mjs"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(exts); i++) {
        _cleanup_free_ char *p = rbx_xasprintf("%s%s", x, exts[i]);
        if (found(r, p))
            return true;
    }
    return false;
}

static bool load_index(struct res *r, const char *x)
{
    static const char *const idx[] = {"/index.js", "/index.json", "/index.node", "/index.cjs",
                                      "/index.mjs"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(idx); i++) {
        _cleanup_free_ char *p = rbx_xasprintf("%s%s", strcmp(x, "/") ? x : "", idx[i]);
        if (found(r, p))
            return true;
    }
    return false;
}

static bool load_as_directory(struct res *r, const char *x)
{
    if (!is_dir(r->rootfd, x))
        return false;
    bool bad = false;
    _cleanup_json_ json_t *pj = package_json(r->rootfd, x, &bad);
    if (bad) {
        r->out->status = RBX_NODE_BAD_PACKAGE;
        free(r->out->detail);
        r->out->detail = rbx_xasprintf("%s/package.json is not valid JSON", x);
        return false;
    }
    json_t *main = json_object_get(pj, "main");
    if (json_is_string(main) && *json_string_value(main)) {
        _cleanup_free_ char *m = rbx_xasprintf("%s/%s", x, json_string_value(main));
        if (load_as_file(r, m) || load_index(r, m))
            return true;
    }
    return load_index(r, x);
}

/* ---- package.json "exports" -------------------------------------------------------------------
 */

static bool condition_matches(const char *key, bool esm)
{
    return strcmp(key, "default") == 0 || strcmp(key, "node") == 0 ||
           strcmp(key, "node-addons") == 0 || strcmp(key, esm ? "import" : "require") == 0;
}

/* A target string, with "*" replaced by what the pattern matched. NULL: no target here. */
static char *resolve_target(const json_t *v, const char *star, bool esm, unsigned depth)
{
    if (depth > 16 || !v)
        return NULL;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strncmp(s, "./", 2) != 0)
            return NULL;
        if (!star)
            return rbx_xstrdup(s);
        size_t n = strlen(s) + 1, sl = strlen(star);
        for (const char *q = s; (q = strchr(q, '*')); q++)
            n += sl;
        char *out = rbx_xmalloc(n);
        size_t k = 0;
        for (const char *q = s; *q; q++) {
            if (*q == '*') {
                memcpy(out + k, star, sl);
                k += sl;
            } else {
                out[k++] = *q;
            }
        }
        out[k] = '\0';
        return out;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach ((json_t *)v, i, e) {
            char *t = resolve_target(e, star, esm, depth + 1);
            if (t)
                return t;
        }
        return NULL;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach ((json_t *)v, key, val) {
            if (!condition_matches(key, esm))
                continue;
            char *t = resolve_target(val, star, esm, depth + 1);
            if (t)
                return t;
        }
    }
    return NULL;
}

/* The target of subpath ("." or "./x") in an "exports" value; NULL when it is not exported. */
static char *exports_target(const json_t *exports, const char *subpath, bool esm)
{
    bool map = false;
    if (json_is_object(exports)) {
        const char *key;
        json_t *val;
        json_object_foreach ((json_t *)exports, key, val) {
            map = key[0] == '.';
            break;
        }
    }
    if (!map)
        return strcmp(subpath, ".") == 0 ? resolve_target(exports, NULL, esm, 0) : NULL;
    json_t *exact = json_object_get(exports, subpath);
    if (exact && !strchr(subpath, '*'))
        return resolve_target(exact, NULL, esm, 0);
    /* patterns like "./x/STAR" (the longest prefix wins), and old folder mappings "./x/" */
    const char *best = NULL;
    size_t best_len = 0;
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)exports, key, val) {
        const char *star = strchr(key, '*');
        size_t klen = strlen(key);
        if (star) {
            size_t pre = (size_t)(star - key), suf = klen - pre - 1;
            if (strlen(subpath) >= pre + suf && strncmp(subpath, key, pre) == 0 &&
                strcmp(subpath + strlen(subpath) - suf, star + 1) == 0 && pre >= best_len) {
                best = key;
                best_len = pre;
            }
        } else if (klen && key[klen - 1] == '/' && strncmp(subpath, key, klen) == 0 &&
                   klen >= best_len) {
            best = key;
            best_len = klen;
        }
    }
    if (!best)
        return NULL;
    const char *star = strchr(best, '*');
    const json_t *target = json_object_get(exports, best);
    if (star) {
        size_t pre = (size_t)(star - best), suf = strlen(best) - pre - 1;
        _cleanup_free_ char *match = rbx_xstrndup(subpath + pre, strlen(subpath) - pre - suf);
        return resolve_target(target, match, esm, 0);
    }
    _cleanup_free_ char *base = resolve_target(target, NULL, esm, 0);
    return base ? rbx_xasprintf("%s%s", base, subpath + best_len) : NULL;
}

/* ---- bare specifiers ------------------------------------------------------------------------- */

/* "a/b", "@s/a/b" into the package name and its subpath ("." or "./b"). */
static bool split_bare(const char *spec, char **name, char **sub)
{
    const char *slash = strchr(spec, '/');
    if (spec[0] == '@') {
        if (!slash || slash == spec + 1 || !slash[1])
            return false;
        slash = strchr(slash + 1, '/');
    }
    size_t n = slash ? (size_t)(slash - spec) : strlen(spec);
    *name = rbx_xstrndup(spec, n);
    *sub = slash ? rbx_xasprintf(".%s", slash) : rbx_xstrdup(".");
    return n > 0;
}

/* Node's NODE_MODULES_PATHS(start), then NODE_PATH and the home folders. */
static char **module_dirs(const char *start, char *const *env)
{
    char **dirs = NULL;
    _cleanup_free_ char *d = rbx_xstrdup(start);
    for (;;) {
        const char *base = strrchr(d, '/');
        if (!base || strcmp(base + 1, "node_modules") != 0)
            rbx_strv_push_take(&dirs, rbx_xasprintf("%s/node_modules", strcmp(d, "/") ? d : ""));
        char *slash = strrchr(d, '/');
        if (!slash || strcmp(d, "/") == 0)
            break;
        if (slash == d)
            strcpy(d, "/");
        else
            *slash = '\0';
    }
    const char *np = rbx_env_get(env, "NODE_PATH");
    if (np) {
        _cleanup_free_ char *copy = rbx_xstrdup(np);
        char *save = NULL;
        for (char *s = strtok_r(copy, ":", &save); s; s = strtok_r(NULL, ":", &save))
            if (s[0] == '/')
                rbx_strv_push(&dirs, s);
    }
    const char *home = rbx_env_get(env, "HOME");
    if (home && home[0] == '/') {
        rbx_strv_push_take(&dirs, rbx_xasprintf("%s/.node_modules", home));
        rbx_strv_push_take(&dirs, rbx_xasprintf("%s/.node_libraries", home));
    }
    return dirs;
}

/* A package directory that is a link leading nowhere: say where it breaks. */
static void note_broken_link(struct res *r, const char *pkgdir)
{
    _cleanup_close_ int fd =
        rbx_open_in_root(r->rootfd, pkgdir, O_PATH, 0, RBX_RESOLVE_NOFOLLOW, NULL);
    char target[RBX_PATH_MAX + 1];
    ssize_t n = fd >= 0 ? readlinkat(fd, "", target, sizeof(target) - 1) : -1;
    if (n <= 0)
        return;
    target[n] = '\0';
    _cleanup_free_ char *where = NULL;
    if (rbx_realpath_in_root(r->rootfd, pkgdir, &where, NULL) < 0 && where)
        rbx_strv_push_take(&r->out->broken, rbx_xasprintf("%s -> %s, and %s is not in the image",
                                                          pkgdir, target, where));
}

static void set_package_dir(struct res *r, const char *pkgdir)
{
    free(r->out->package_dir);
    if (rbx_realpath_in_root(r->rootfd, pkgdir, &r->out->package_dir, NULL) < 0) {
        free(r->out->package_dir);
        r->out->package_dir = rbx_xstrdup(pkgdir);
    }
}

static void load_node_modules(struct res *r, const char *spec, const char *from, char *const *env)
{
    _cleanup_free_ char *name = NULL, *sub = NULL;
    if (!split_bare(spec, &name, &sub)) {
        r->out->status = RBX_NODE_NOT_FOUND;
        return;
    }
    _cleanup_strv_ char **dirs = module_dirs(from, env);
    for (size_t i = 0; dirs && dirs[i]; i++) {
        _cleanup_free_ char *pkgdir = rbx_xasprintf("%s/%s", dirs[i], name);
        rbx_strv_push(&r->out->searched, pkgdir);
        if (!is_dir(r->rootfd, pkgdir)) {
            note_broken_link(r, pkgdir);
            if (strcmp(sub, ".") == 0 && load_as_file(r, pkgdir)) { /* node_modules/x.js */
                r->out->status = RBX_NODE_FOUND;
                return;
            }
            continue;
        }
        bool bad = false;
        _cleanup_json_ json_t *pj = package_json(r->rootfd, pkgdir, &bad);
        json_t *exports = json_object_get(pj, "exports");
        if (exports) {
            _cleanup_free_ char *t = exports_target(exports, sub, r->esm);
            set_package_dir(r, pkgdir);
            if (!t) {
                r->out->status = RBX_NODE_NOT_EXPORTED;
                r->out->detail = rbx_xasprintf("%s/package.json \"exports\" has no \"%s\" for %s",
                                               pkgdir, sub, r->esm ? "import" : "require");
                return;
            }
            _cleanup_free_ char *p = rbx_xasprintf("%s/%s", pkgdir, t + 2);
            if (found(r, p)) {
                r->out->status = RBX_NODE_FOUND;
                return;
            }
            r->out->status = RBX_NODE_NOT_FOUND;
            r->out->detail = rbx_xasprintf("%s/package.json \"exports\" names %s, which is not in "
                                           "the image",
                                           pkgdir, t);
            return;
        }
        _cleanup_free_ char *x =
            strcmp(sub, ".") == 0 ? rbx_xstrdup(pkgdir) : rbx_xasprintf("%s/%s", pkgdir, sub + 2);
        if (load_as_file(r, x) || load_as_directory(r, x)) {
            set_package_dir(r, pkgdir);
            r->out->status = RBX_NODE_FOUND;
            return;
        }
        if (r->out->status == RBX_NODE_BAD_PACKAGE)
            return;
    }
    r->out->status = RBX_NODE_NOT_FOUND;
}

int rbx_node_resolve(int rootfd, const char *specifier, const char *from_dir, bool esm,
                     char *const *env, struct rbx_node_resolution *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    struct res r = {.rootfd = rootfd, .esm = esm, .out = out};
    const char *s = specifier;
    if (s[0] == '/' || strncmp(s, "./", 2) == 0 || strncmp(s, "../", 3) == 0 ||
        strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        /* path.resolve is lexical */
        _cleanup_free_ char *joined =
            s[0] == '/' ? rbx_xstrdup(s) : rbx_xasprintf("%s/%s", from_dir, s);
        _cleanup_free_ char *clean = NULL;
        if (rbx_path_clean(joined, &clean, NULL) < 0) {
            out->status = RBX_NODE_NOT_FOUND;
            return 0;
        }
        _cleanup_free_ char *abs = rbx_xasprintf("/%s", clean);
        rbx_strv_push(&out->searched, abs);
        if (load_as_file(&r, abs) || load_as_directory(&r, abs)) {
            out->status = RBX_NODE_FOUND;
            return 0;
        }
        if (out->status != RBX_NODE_BAD_PACKAGE)
            out->status = RBX_NODE_NOT_FOUND;
        note_broken_link(&r, abs);
        return 0;
    }
    load_node_modules(&r, s, from_dir, env);
    return 0;
}

void rbx_node_resolution_clear(struct rbx_node_resolution *r)
{
    free(r->path);
    free(r->package_dir);
    rbx_strv_free(r->searched);
    rbx_strv_free(r->broken);
    free(r->detail);
    memset(r, 0, sizeof(*r));
}

/* ---- the checks ------------------------------------------------------------------------------ */

/* A module Node would not find, with everything known about it, reported once. */
struct missing {
    char *name;      /* the specifier, or the package name */
    char *dependent; /* "express@4.21.2" for a package's dependency, NULL for the app's */
    char **evidence;
    bool listed;  /* in the app's package.json dependencies */
    bool certain; /* loaded unconditionally (top level, a static import, a dependency) */
    bool broken_link;
    bool not_exported;
};

struct app {
    struct rbx_doctor *d;
    char *root;      /* the app's directory: where its package.json is */
    char *root_pkg;  /* its package.json */
    char **app_deps; /* the app's dependencies */
    char **dev_deps; /* and its devDependencies */
    bool aliases;    /* module-alias or tsconfig-paths rewrite bare names at run time */
    char **queue;    /* app files still to scan */
    char **scanned;
    char **pkg_dirs;  /* packages found (canonical dirs), for their dependencies */
    char *prisma_dir; /* @prisma/client, when found */
    struct missing *missing;
    size_t n_missing;
};

static bool strv_has(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static struct missing *missing_of(struct app *a, const char *name, const char *dependent)
{
    for (size_t i = 0; i < a->n_missing; i++)
        if (strcmp(a->missing[i].name, name) == 0 && !a->missing[i].dependent == !dependent &&
            (!dependent || strcmp(a->missing[i].dependent, dependent) == 0))
            return &a->missing[i];
    a->missing = rbx_xrealloc(a->missing, (a->n_missing + 1) * sizeof(*a->missing));
    struct missing *m = &a->missing[a->n_missing++];
    memset(m, 0, sizeof(*m));
    m->name = rbx_xstrdup(name);
    m->dependent = dependent ? rbx_xstrdup(dependent) : NULL;
    return m;
}

static void note_resolution(struct missing *m, const struct rbx_node_resolution *res)
{
    for (size_t i = 0; res->broken && res->broken[i]; i++) {
        rbx_strv_push(&m->evidence, res->broken[i]);
        m->broken_link = true;
    }
    if (res->detail)
        rbx_strv_push(&m->evidence, res->detail);
    m->not_exported = m->not_exported || res->status == RBX_NODE_NOT_EXPORTED;
    bool searched = false;
    for (size_t i = 0; m->evidence && m->evidence[i]; i++)
        searched = searched || strncmp(m->evidence[i], "searched ", 9) == 0;
    if (res->searched && !m->broken_link && !searched) {
        size_t n = 0, len = 0;
        for (; res->searched[n]; n++)
            len += strlen(res->searched[n]) + 2;
        char *s = rbx_xmalloc(len + 16);
        strcpy(s, "searched ");
        for (size_t i = 0; i < n; i++) {
            if (i)
                strcat(s, ", ");
            strcat(s, res->searched[i]);
        }
        rbx_strv_push_take(&m->evidence, s);
    }
}

static char *dirname_of(const char *p)
{
    const char *s = strrchr(p, '/');
    if (!s || s == p)
        return rbx_xstrdup("/");
    return rbx_xstrndup(p, (size_t)(s - p));
}

static bool is_relative(const char *s)
{
    return s[0] == '/' || strncmp(s, "./", 2) == 0 || strncmp(s, "../", 3) == 0 ||
           strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

static bool inside_node_modules(const char *p)
{
    return strstr(p, "/node_modules/") != NULL;
}

static bool js_file(const char *p)
{
    const char *base = strrchr(p, '/');
    const char *dot = strrchr(base ? base : p, '.');
    return !dot || strcmp(dot, ".js") == 0 || strcmp(dot, ".cjs") == 0 || strcmp(dot, ".mjs") == 0;
}

/* Whether a .js file is an ES module: its package says "type": "module". */
static bool esm_file(struct app *a, const char *p)
{
    size_t n = strlen(p);
    if (n > 4 && strcmp(p + n - 4, ".mjs") == 0)
        return true;
    if (n < 3 || strcmp(p + n - 3, ".js") != 0)
        return false;
    _cleanup_free_ char *dir = dirname_of(p);
    for (;;) {
        bool bad = false;
        _cleanup_json_ json_t *pj = package_json(a->d->rootfd, dir, &bad);
        if (pj) {
            json_t *type = json_object_get(pj, "type");
            return json_is_string(type) && strcmp(json_string_value(type), "module") == 0;
        }
        if (strcmp(dir, "/") == 0)
            return false;
        char *up = dirname_of(dir);
        free(dir);
        dir = up;
    }
}

static void resolve_import(struct app *a, const char *spec, const char *from_file, unsigned line,
                           bool esm, bool guarded, bool nested)
{
    struct rbx_doctor *d = a->d;
    if (rbx_node_builtin(spec) || spec[0] == '#' || !*spec)
        return;
    _cleanup_free_ char *dir =
        from_file ? dirname_of(from_file) : rbx_xstrdup(d->proc->cwd ? d->proc->cwd : "/");
    struct rbx_node_resolution res;
    rbx_node_resolve(d->rootfd, spec, dir, esm, d->proc->env, &res, NULL);
    if (res.status == RBX_NODE_FOUND) {
        if (is_relative(spec)) {
            if (res.path && js_file(res.path) && !inside_node_modules(res.path) &&
                !strv_has(a->scanned, res.path) && !strv_has(a->queue, res.path))
                rbx_strv_push(&a->queue, res.path);
        } else {
            if (res.package_dir && !strv_has(a->pkg_dirs, res.package_dir))
                rbx_strv_push(&a->pkg_dirs, res.package_dir);
            _cleanup_free_ char *name = NULL, *sub = NULL;
            if (split_bare(spec, &name, &sub) && strcmp(name, "@prisma/client") == 0 &&
                !a->prisma_dir && res.package_dir)
                a->prisma_dir = rbx_xstrdup(res.package_dir);
        }
    } else if (!guarded) {
        struct missing *m = missing_of(a, spec, NULL);
        m->certain = m->certain || !nested;
        if (from_file)
            rbx_strv_push_take(&m->evidence, rbx_xasprintf("required at %s:%u", from_file, line));
        else
            rbx_strv_push_take(&m->evidence, rbx_xasprintf("required by node's command line, "
                                                           "from %s",
                                                           dir));
        note_resolution(m, &res);
    }
    rbx_node_resolution_clear(&res);
}

static void scan_file(struct app *a, const char *path)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (rbx_doctor_read(a->d, path, RBX_JS_MAX_BYTES, &text, &len) < 0)
        return;
    struct rbx_js_import *imp = NULL;
    size_t n = 0;
    rbx_js_imports(text, len, &imp, &n);
    bool esm = esm_file(a, path);
    for (size_t i = 0; i < n; i++)
        resolve_import(a, imp[i].specifier, path, imp[i].line, imp[i].esm || esm, imp[i].guarded,
                       imp[i].nested);
    rbx_js_imports_free(imp, n);
}

/* The package directory `name` resolves to from dir, without loading a file of it: what an
 * install must have put there. */
static char *find_package(struct app *a, const char *name, const char *from,
                          struct rbx_node_resolution *res)
{
    memset(res, 0, sizeof(*res));
    struct res r = {.rootfd = a->d->rootfd, .out = res};
    _cleanup_strv_ char **dirs = module_dirs(from, a->d->proc->env);
    for (size_t i = 0; dirs && dirs[i]; i++) {
        _cleanup_free_ char *pkgdir = rbx_xasprintf("%s/%s", dirs[i], name);
        rbx_strv_push(&res->searched, pkgdir);
        if (is_dir(a->d->rootfd, pkgdir)) {
            char *canon = NULL;
            if (rbx_realpath_in_root(a->d->rootfd, pkgdir, &canon, NULL) < 0) {
                free(canon);
                canon = rbx_xstrdup(pkgdir);
            }
            return canon;
        }
        note_broken_link(&r, pkgdir);
    }
    res->status = RBX_NODE_NOT_FOUND;
    return NULL;
}

/* The names of a package.json list; for "dependencies", without those also in
 * "optionalDependencies" (an install may skip them: another platform's binaries). */
static char **dependency_names(json_t *pj, const char *list)
{
    char **names = NULL;
    const char *key;
    json_t *val;
    json_t *optional = json_object_get(pj, "optionalDependencies");
    json_object_foreach (json_object_get(pj, list), key, val) {
        if (strcmp(list, "dependencies") != 0 || !json_object_get(optional, key))
            rbx_strv_push(&names, key);
    }
    return names;
}

/* The app's dependencies, then theirs: an install must have put every one where Node looks. */
static void check_dependencies(struct app *a)
{
    struct rbx_doctor *d = a->d;
    for (size_t i = 0; a->app_deps && a->app_deps[i]; i++) {
        const char *name = a->app_deps[i];
        if (rbx_node_builtin(name))
            continue;
        struct rbx_node_resolution res;
        char *dir = find_package(a, name, a->root, &res);
        if (dir) {
            if (!strv_has(a->pkg_dirs, dir))
                rbx_strv_push(&a->pkg_dirs, dir);
            if (strcmp(name, "@prisma/client") == 0 && !a->prisma_dir)
                a->prisma_dir = rbx_xstrdup(dir);
            free(dir);
        } else {
            struct missing *m = missing_of(a, name, NULL);
            m->listed = m->certain = true;
            note_resolution(m, &res);
        }
        rbx_node_resolution_clear(&res);
    }
    for (size_t i = 0; a->pkg_dirs && a->pkg_dirs[i] && i < MAX_PACKAGES; i++) {
        _cleanup_free_ char *pdir = rbx_xstrdup(a->pkg_dirs[i]);
        _cleanup_free_ char *key = rbx_xasprintf("deps:%s", pdir);
        if (rbx_doctor_seen(d, key, false))
            continue;
        bool bad = false;
        _cleanup_json_ json_t *pj = package_json(d->rootfd, pdir, &bad);
        _cleanup_strv_ char **deps = dependency_names(pj, "dependencies");
        const char *pname = json_string_value(json_object_get(pj, "name"));
        const char *pver = json_string_value(json_object_get(pj, "version"));
        for (size_t k = 0; deps && deps[k]; k++) {
            if (rbx_node_builtin(deps[k]))
                continue;
            struct rbx_node_resolution res;
            char *dir = find_package(a, deps[k], pdir, &res);
            if (dir) {
                if (!strv_has(a->pkg_dirs, dir))
                    rbx_strv_push(&a->pkg_dirs, dir);
                free(dir);
            } else {
                _cleanup_free_ char *dep =
                    rbx_xasprintf("%s@%s", pname ? pname : pdir, pver ? pver : "?");
                struct missing *m = missing_of(a, deps[k], dep);
                m->certain = true;
                rbx_strv_push_take(&m->evidence,
                                   rbx_xasprintf("%s/package.json: dependencies", pdir));
                note_resolution(m, &res);
            }
            rbx_node_resolution_clear(&res);
        }
    }
}

/* @prisma/client loads the client `prisma generate` wrote, ".prisma/client", by Node's
 * resolution from its own directory. */
static void check_prisma(struct app *a)
{
    struct rbx_doctor *d = a->d;
    const char *p = a->prisma_dir;
    _cleanup_free_ char *key = rbx_xasprintf("prisma:%s", p);
    if (rbx_doctor_seen(d, key, true))
        return;
    char **specs = NULL;
    static const char *const files[] = {"default.js", "index.js"};
    _cleanup_free_ char *from = NULL;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *f = rbx_xasprintf("%s/%s", p, files[i]);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (rbx_doctor_read(d, f, RBX_JS_MAX_BYTES, &text, &len) < 0)
            continue;
        struct rbx_js_import *imp = NULL;
        size_t n = 0;
        rbx_js_imports(text, len, &imp, &n);
        for (size_t k = 0; k < n; k++)
            if (strncmp(imp[k].specifier, ".prisma/", 8) == 0 &&
                !strv_has(specs, imp[k].specifier)) {
                rbx_strv_push(&specs, imp[k].specifier);
                if (!from)
                    from = rbx_xstrdup(f);
            }
        rbx_js_imports_free(imp, n);
    }
    if (!specs)
        rbx_strv_push(&specs, ".prisma/client");
    for (size_t i = 0; specs[i]; i++) {
        struct rbx_node_resolution res;
        rbx_node_resolve(d->rootfd, specs[i], p, false, d->proc->env, &res, NULL);
        if (res.status != RBX_NODE_FOUND) {
            struct rbx_finding *f = rbx_doctor_add(
                d, "prisma-client-missing", RBX_SEVERITY_ERROR,
                "run `prisma generate` in the final stage (after the production install), or "
                "copy the generated node_modules/.prisma/client to where @prisma/client "
                "resolves it",
                "@prisma/client (%s) cannot load the generated client \"%s\": Node's resolution "
                "from there does not reach a node_modules/.prisma",
                p, specs[i]);
            if (from)
                rbx_finding_evidence(f, "required by %s", from);
            /* where it was generated instead */
            _cleanup_free_ char *parent = dirname_of(p);
            const char *cands[] = {p, parent};
            for (size_t k = 0; k < RBX_ARRAY_SIZE(cands); k++) {
                _cleanup_free_ char *c = rbx_xasprintf("%s/.prisma/client", cands[k]);
                if (is_dir(d->rootfd, c))
                    rbx_finding_evidence(f, "found at %s, where Node's resolution does not look",
                                         c);
            }
            for (size_t k = 0; res.searched && res.searched[k]; k++) {
                /* ".../node_modules/.prisma": the directories Node tried */
                _cleanup_free_ char *dir = dirname_of(res.searched[k]);
                rbx_finding_evidence(f, "searched %s", dir);
            }
        }
        rbx_node_resolution_clear(&res);
    }
    rbx_strv_free(specs);
}

static void report_missing(struct app *a)
{
    struct rbx_doctor *d = a->d;
    for (size_t i = 0; i < a->n_missing; i++) {
        struct missing *m = &a->missing[i];
        _cleanup_free_ char *name = NULL, *sub = NULL;
        bool bare = !is_relative(m->name);
        bool dev = bare && !m->dependent && split_bare(m->name, &name, &sub) &&
                   strv_has(a->dev_deps, name);
        /* a name an alias mechanism may map, or a load on some paths only: may not fail */
        bool sure = m->certain && !(a->aliases && bare && !m->listed && !m->dependent);
        const char *hint;
        if (m->broken_link)
            hint = "the package is a link into a store that was not copied into the image (pnpm): "
                   "copy node_modules with real files (pnpm deploy, node-linker=hoisted), or copy "
                   "the store too";
        else if (m->not_exported)
            hint = "import a path the package exports, or a version that exports it";
        else if (dev)
            hint = "a devDependency is left out of a production install: move it to dependencies "
                   "if the program loads it in production";
        else if (m->listed || m->dependent)
            hint = "it is a production dependency but not in node_modules: the final stage's "
                   "install or prune left it out (npm ci --omit=dev, pnpm install --prod, or "
                   "copy node_modules from the stage that installed it)";
        else if (is_relative(m->name))
            hint = "copy the file into the image (the build's output may be elsewhere)";
        else
            hint = "add it to package.json dependencies and install it in the final stage";
        enum rbx_severity sev = sure ? RBX_SEVERITY_ERROR : RBX_SEVERITY_WARNING;
        struct rbx_finding *f;
        if (m->dependent)
            f = rbx_doctor_add(d, "module-not-found", sev, hint,
                               "Node cannot find the module '%s', a dependency of %s", m->name,
                               m->dependent);
        else
            f = rbx_doctor_add(d, "module-not-found", sev, hint,
                               "Node cannot find the module '%s'%s%s", m->name,
                               m->listed ? ", a dependency in package.json" : "",
                               sure         ? ""
                               : m->certain ? " (unless a module alias maps it)"
                                            : " (loaded on some paths only)");
        if (m->listed && a->root_pkg)
            rbx_finding_evidence(f, "listed in %s dependencies", a->root_pkg);
        if (dev && a->root_pkg)
            rbx_finding_evidence(f, "listed in %s devDependencies", a->root_pkg);
        for (size_t k = 0; m->evidence && m->evidence[k]; k++)
            rbx_finding_evidence(f, "%s", m->evidence[k]);
    }
}

static void app_clear(struct app *a)
{
    free(a->root);
    free(a->root_pkg);
    rbx_strv_free(a->app_deps);
    rbx_strv_free(a->dev_deps);
    rbx_strv_free(a->queue);
    rbx_strv_free(a->scanned);
    rbx_strv_free(a->pkg_dirs);
    free(a->prisma_dir);
    for (size_t i = 0; i < a->n_missing; i++) {
        free(a->missing[i].name);
        free(a->missing[i].dependent);
        rbx_strv_free(a->missing[i].evidence);
    }
    free(a->missing);
}

/* The app an entry belongs to: the nearest directory above it with a package.json. */
static void find_app(struct app *a, const char *start)
{
    _cleanup_free_ char *dir = rbx_xstrdup(start);
    for (;;) {
        bool bad = false;
        _cleanup_json_ json_t *pj = package_json(a->d->rootfd, dir, &bad);
        if (pj) {
            a->root = rbx_xstrdup(dir);
            a->root_pkg = rbx_xasprintf("%s/package.json", strcmp(dir, "/") ? dir : "");
            a->app_deps = dependency_names(pj, "dependencies");
            a->dev_deps = dependency_names(pj, "devDependencies");
            a->aliases = json_object_get(pj, "_moduleAliases") != NULL;
            return;
        }
        if (strcmp(dir, "/") == 0)
            break;
        char *up = dirname_of(dir);
        free(dir);
        dir = up;
    }
    a->root = rbx_xstrdup(start);
}

/* Yarn's Plug'n'Play has no node_modules: Node's resolution is replaced, not ours to judge. */
static bool plug_n_play(struct app *a)
{
    static const char *const files[] = {".pnp.cjs", ".pnp.js"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *p =
            rbx_xasprintf("%s/%s", strcmp(a->root, "/") ? a->root : "", files[i]);
        if (is_file(a->d->rootfd, p))
            return true;
    }
    return false;
}

static void check_app(struct app *a, const char *entry, const char *eval, char **preloads)
{
    struct rbx_doctor *d = a->d;
    const char *cwd = d->proc->cwd && *d->proc->cwd ? d->proc->cwd : "/";
    _cleanup_free_ char *start = entry ? dirname_of(entry) : rbx_xstrdup(cwd);
    find_app(a, start);
    if (plug_n_play(a))
        return;
    for (size_t i = 0; preloads && preloads[i]; i++)
        a->aliases = a->aliases || strstr(preloads[i], "tsconfig-paths") ||
                     strstr(preloads[i], "module-alias");
    for (size_t i = 0; preloads && preloads[i]; i++) {
        struct rbx_node_resolution res;
        rbx_node_resolve(d->rootfd, preloads[i], cwd, false, d->proc->env, &res, NULL);
        if (res.status != RBX_NODE_FOUND) {
            struct missing *m = missing_of(a, preloads[i], NULL);
            m->certain = true;
            rbx_strv_push_take(&m->evidence, rbx_xasprintf("preloaded by node -r/--import"));
            note_resolution(m, &res);
        }
        rbx_node_resolution_clear(&res);
    }
    if (eval) {
        struct rbx_js_import *imp = NULL;
        size_t n = 0;
        rbx_js_imports(eval, strlen(eval), &imp, &n);
        for (size_t i = 0; i < n; i++)
            resolve_import(a, imp[i].specifier, NULL, imp[i].line, imp[i].esm, imp[i].guarded,
                           imp[i].nested);
        rbx_js_imports_free(imp, n);
    }
    if (entry)
        rbx_strv_push(&a->queue, entry);
    for (size_t i = 0; a->queue && a->queue[i] && i < MAX_APP_FILES; i++) {
        _cleanup_free_ char *f = rbx_xstrdup(a->queue[i]);
        rbx_strv_push(&a->scanned, f);
        if (js_file(f))
            scan_file(a, f);
    }
    _cleanup_free_ char *key = rbx_xasprintf("app:%s", a->root);
    if (!rbx_doctor_seen(d, key, false))
        check_dependencies(a);
    report_missing(a);
    if (!a->prisma_dir) {
        /* present without being required by what was read: still what the app loads */
        struct rbx_node_resolution res;
        char *dir = strv_has(a->app_deps, "@prisma/client")
                        ? find_package(a, "@prisma/client", a->root, &res)
                        : NULL;
        if (strv_has(a->app_deps, "@prisma/client"))
            rbx_node_resolution_clear(&res);
        a->prisma_dir = dir;
    }
    if (a->prisma_dir)
        check_prisma(a);
}

/* ---- node's command line ------------------------------------------------------------------- */

static bool takes_value(const char *opt)
{
    static const char *const opts[] = {
        "-r",
        "--require",
        "--import",
        "--loader",
        "--experimental-loader",
        "-e",
        "--eval",
        "-p",
        "--print",
        "-C",
        "--conditions",
        "--input-type",
        "--title",
        "--inspect-port",
        "--env-file",
        "--openssl-config",
        "--redirect-warnings",
        "--icu-data-dir",
        "--diagnostic-dir",
        "--report-dir",
        "--report-directory",
        "--report-filename",
        "--secure-heap",
        "--secure-heap-min",
        "--dns-result-order",
        "--unhandled-rejections",
        "--disable-warning",
        "--watch-path",
        "--cpu-prof-dir",
        "--cpu-prof-name",
        "--heap-prof-dir",
        "--heap-prof-name",
        "--experimental-policy",
        "--policy-integrity",
        "--experimental-sea-config",
        "--run",
        "--test-reporter",
        "--test-reporter-destination",
        "--stack-size",
        "--max-old-space-size",
        "--max-semi-space-size",
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(opts); i++)
        if (strcmp(opt, opts[i]) == 0)
            return true;
    return false;
}

void rbx_doctor_node(struct rbx_doctor *d, char *const *args, size_t argc, const char *where)
{
    const char *eval = NULL, *entry = NULL;
    _cleanup_strv_ char **preloads = NULL;
    bool check_only = false;
    for (size_t i = 0; i < argc; i++) {
        const char *a = args[i];
        if (strcmp(a, "--") == 0) {
            entry = i + 1 < argc ? args[i + 1] : NULL;
            break;
        }
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            entry = strcmp(a, "-") == 0 ? NULL : a;
            break;
        }
        const char *eq = strchr(a, '=');
        _cleanup_free_ char *opt = eq ? rbx_xstrndup(a, (size_t)(eq - a)) : rbx_xstrdup(a);
        const char *val = eq ? eq + 1 : takes_value(opt) && i + 1 < argc ? args[i + 1] : NULL;
        if (!eq && takes_value(opt))
            i++;
        if (!val)
            check_only = check_only || strcmp(opt, "-c") == 0 || strcmp(opt, "--check") == 0;
        if (!val)
            continue;
        if (strcmp(opt, "-e") == 0 || strcmp(opt, "--eval") == 0 || strcmp(opt, "-p") == 0 ||
            strcmp(opt, "--print") == 0)
            eval = val;
        else if (strcmp(opt, "-r") == 0 || strcmp(opt, "--require") == 0 ||
                 strcmp(opt, "--import") == 0 || strcmp(opt, "--loader") == 0 ||
                 strcmp(opt, "--experimental-loader") == 0)
            rbx_strv_push(&preloads, val);
    }
    if (eval)
        entry = NULL; /* with -e, the other words are arguments */
    if (!eval && !entry && !preloads)
        return; /* the REPL, or a script on stdin */
    if (entry && d->cwd_missing && entry[0] != '/')
        return; /* the missing working directory is the finding */
    _cleanup_free_ char *entry_path = NULL;
    if (entry) {
        const char *cwd = d->proc->cwd && *d->proc->cwd ? d->proc->cwd : "/";
        /* node's main is a path, never a package: `node x` is ./x */
        _cleanup_free_ char *spec =
            is_relative(entry) ? rbx_xstrdup(entry) : rbx_xasprintf("./%s", entry);
        struct rbx_node_resolution res;
        rbx_node_resolve(d->rootfd, spec, cwd, false, d->proc->env, &res, NULL);
        if (res.status != RBX_NODE_FOUND) {
            _cleanup_free_ char *abs =
                res.searched && res.searched[0] ? rbx_xstrdup(res.searched[0]) : rbx_xstrdup(entry);
            struct rbx_finding *f = rbx_doctor_add(
                d, "module-not-found", RBX_SEVERITY_ERROR,
                "copy the build output into the image, or fix the path (relative to the working "
                "directory)",
                "node's entry script %s is not in the image: \"Cannot find module '%s'\"", entry,
                abs);
            rbx_finding_evidence(f, "%s: node %s", where, entry);
            for (size_t i = 0; res.broken && res.broken[i]; i++)
                rbx_finding_evidence(f, "%s", res.broken[i]);
            rbx_node_resolution_clear(&res);
            return;
        }
        entry_path = TAKE_PTR(res.path);
        rbx_node_resolution_clear(&res);
        if (check_only)
            return;
    }
    _cleanup_free_ char *key =
        rbx_xasprintf("node:%s:%s", entry_path ? entry_path : "", eval ? eval : "");
    if (rbx_doctor_seen(d, key, false))
        return;
    struct app a = {.d = d};
    check_app(&a, entry_path, eval, preloads);
    app_clear(&a);
}
