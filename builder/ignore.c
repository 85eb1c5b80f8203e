/* ignore.c — .dockerignore: the file's lines into patterns, and Docker's verdict on a context path
 * (moby/patternmatcher's rules: filepath.Match plus "**", parents count, the last match wins). */
#include "builder/builder-internal.h"

#include <string.h>

#define IGNORE_MAX_PATTERNS 10000u

/* A pattern compiled as patternmatcher does: most are exact strings, a literal followed by a
 * final double star is a prefix, a leading double star followed by a literal a suffix; the rest
 * run on a small NFA. */
enum match_type { M_EXACT, M_PREFIX, M_SUFFIX, M_GLOB };

enum gtok_kind {
    G_LIT,   /* one rune */
    G_ONE,   /* ?  : one rune but '/' */
    G_STAR,  /* *  : runes but '/' */
    G_DIRS,  /* a double star before more pattern: any directories, or none */
    G_ALL,   /* a final double star after other wildcards: anything */
    G_CLASS, /* [...] */
};

struct range {
    uint32_t lo, hi;
};

struct gtok {
    enum gtok_kind kind;
    uint32_t r;
    bool negated;
    struct range *ranges;
    size_t n_ranges;
};

struct pattern {
    char *text; /* cleaned, without the '!' */
    bool exclusion;
    enum match_type type;
    struct gtok *toks;
    size_t n_toks;
};

struct rbx_ignore {
    struct pattern *pats;
    size_t n;
    struct rbx_strvec strs;
};

/* ---- Go's filepath.Clean (Unix) -------------------------------------------------------------- */

static char *go_clean(const char *path)
{
    size_t len = strlen(path);
    if (len == 0)
        return rbx_xstrdup(".");
    bool rooted = path[0] == '/';
    char *out = rbx_xmalloc(len + 2);
    size_t w = 0, dotdot = 0;
    size_t r = 0;
    if (rooted) {
        out[w++] = '/';
        r = 1;
        dotdot = 1;
    }
    while (r < len) {
        if (path[r] == '/') {
            r++;
        } else if (path[r] == '.' && (r + 1 == len || path[r + 1] == '/')) {
            r++;
        } else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == len || path[r + 2] == '/')) {
            r += 2;
            if (w > dotdot) {
                w--;
                while (w > dotdot && out[w] != '/')
                    w--;
            } else if (!rooted) {
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                dotdot = w;
            }
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            while (r < len && path[r] != '/')
                out[w++] = path[r++];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

/* ---- pattern syntax -------------------------------------------------------------------------- */

static size_t rune_at(const char *s, size_t i, uint32_t *r)
{
    size_t n;
    *r = rbx_utf8_decode((const unsigned char *)s, strlen(s), i, &n);
    return n;
}

/* filepath.Match's getEsc: one class character, '\' escaping; '-' and ']' need escaping. */
static int class_char(const char *p, size_t *i, uint32_t *out)
{
    if (!p[*i] || p[*i] == '-' || p[*i] == ']')
        return -EINVAL;
    if (p[*i] == '\\') {
        (*i)++;
        if (!p[*i])
            return -EINVAL;
    }
    uint32_t r;
    *i += rune_at(p, *i, &r);
    if (r & 0x80000000u)
        return -EINVAL;
    if (!p[*i])
        return -EINVAL;
    *out = r;
    return 0;
}

/* Parse a class at p[*i] == '['; fills t when given. The syntax is filepath.Match's. */
static int parse_class(const char *p, size_t *i, struct gtok *t)
{
    (*i)++;
    bool neg = p[*i] == '^';
    if (neg)
        (*i)++;
    struct range *ranges = NULL;
    size_t n = 0;
    for (;;) {
        if (!p[*i]) {
            free(ranges);
            return -EINVAL;
        }
        if (p[*i] == ']' && n > 0) {
            (*i)++;
            break;
        }
        uint32_t lo, hi;
        if (class_char(p, i, &lo) < 0) {
            free(ranges);
            return -EINVAL;
        }
        hi = lo;
        if (p[*i] == '-') {
            (*i)++;
            if (class_char(p, i, &hi) < 0) {
                free(ranges);
                return -EINVAL;
            }
        }
        ranges = rbx_grow(ranges, n, sizeof(*ranges));
        ranges[n++] = (struct range){lo, hi};
    }
    if (t) {
        *t = (struct gtok){.kind = G_CLASS, .negated = neg, .ranges = ranges, .n_ranges = n};
    } else {
        free(ranges);
    }
    return 0;
}

/* patternmatcher checks syntax with filepath.Match(pattern, "."): the whole pattern is read. */
static int validate(const char *p)
{
    for (size_t i = 0; p[i];) {
        if (p[i] == '\\') {
            if (!p[i + 1])
                return -EINVAL;
            uint32_t r;
            i += 1 + rune_at(p, i + 1, &r);
        } else if (p[i] == '[') {
            if (parse_class(p, &i, NULL) < 0)
                return -EINVAL;
        } else {
            uint32_t r;
            i += rune_at(p, i, &r);
        }
    }
    return 0;
}

static void push_tok(struct pattern *pt, struct gtok t)
{
    pt->toks = rbx_grow(pt->toks, pt->n_toks, sizeof(*pt->toks));
    pt->toks[pt->n_toks++] = t;
}

/* patternmatcher's compile: which kind of match, and the tokens for a glob. */
static void compile(struct pattern *pt)
{
    const char *p = pt->text;
    enum match_type type = M_EXACT;
    for (size_t i = 0, iter = 0; p[i]; iter++) {
        uint32_t r;
        size_t n = rune_at(p, i, &r);
        if (r == '*') {
            i += n;
            if (p[i] == '*') {
                i++;
                if (p[i] == '/')
                    i++;
                if (!p[i]) {
                    if (type == M_EXACT) {
                        type = M_PREFIX;
                    } else {
                        push_tok(pt, (struct gtok){.kind = G_ALL});
                        type = M_GLOB;
                    }
                } else {
                    push_tok(pt, (struct gtok){.kind = G_DIRS});
                    type = M_GLOB;
                }
                if (iter == 0)
                    type = M_SUFFIX;
            } else {
                push_tok(pt, (struct gtok){.kind = G_STAR});
                type = M_GLOB;
            }
        } else if (r == '?') {
            push_tok(pt, (struct gtok){.kind = G_ONE});
            type = M_GLOB;
            i += n;
        } else if (r == '\\') {
            i += n;
            if (p[i]) {
                i += rune_at(p, i, &r);
                type = M_GLOB;
            }
            push_tok(pt, (struct gtok){.kind = G_LIT, .r = r});
        } else if (r == '[') {
            struct gtok t;
            if (parse_class(p, &i, &t) == 0) { /* validated before */
                push_tok(pt, t);
                type = M_GLOB;
            }
        } else {
            push_tok(pt, (struct gtok){.kind = G_LIT, .r = r});
            i += n;
        }
    }
    pt->type = type;
}

static bool class_has(const struct gtok *t, uint32_t r)
{
    bool in = false;
    for (size_t i = 0; i < t->n_ranges && !in; i++)
        in = r >= t->ranges[i].lo && r <= t->ranges[i].hi;
    return in != t->negated;
}

/* ---- the NFA: state k before token k; "inside" k is within a G_DIRS group -------------------- */

struct nfa {
    bool *at, *inside;
};

static void nfa_closure(const struct pattern *pt, struct nfa *s)
{
    for (size_t k = 0; k < pt->n_toks; k++) {
        if (!s->at[k])
            continue;
        enum gtok_kind kind = pt->toks[k].kind;
        if (kind == G_STAR || kind == G_ALL || kind == G_DIRS)
            s->at[k + 1] = true;
        if (kind == G_DIRS)
            s->inside[k] = true;
    }
}

/* Consume rune r; returns whether any state is left. */
static bool nfa_step(const struct pattern *pt, struct nfa *cur, struct nfa *next, uint32_t r)
{
    size_t n = pt->n_toks;
    memset(next->at, 0, (n + 1) * sizeof(bool));
    memset(next->inside, 0, (n + 1) * sizeof(bool));
    bool any = false;
    for (size_t k = 0; k < n; k++) {
        const struct gtok *t = &pt->toks[k];
        if (cur->at[k]) {
            switch (t->kind) {
            case G_LIT:
                if (r == t->r)
                    any = next->at[k + 1] = true;
                break;
            case G_ONE:
                if (r != '/')
                    any = next->at[k + 1] = true;
                break;
            case G_STAR:
                if (r != '/')
                    any = next->at[k] = true;
                break;
            case G_ALL:
                if (r != '\n')
                    any = next->at[k] = true;
                break;
            case G_CLASS:
                if (class_has(t, r))
                    any = next->at[k + 1] = true;
                break;
            case G_DIRS: break; /* only through `inside` */
            }
        }
        if (cur->inside[k]) {
            if (r != '\n')
                any = next->inside[k] = true;
            if (r == '/')
                any = next->at[k + 1] = true;
        }
    }
    return any;
}

/* Run the pattern over s[0..len): `full` asks for a whole match; otherwise, whether some
 * continuation could still match (states left after the input). */
static bool glob_run(const struct pattern *pt, const char *s, size_t len, bool full)
{
    size_t n = pt->n_toks;
    struct nfa a = {rbx_xcalloc(n + 1, sizeof(bool)), rbx_xcalloc(n + 1, sizeof(bool))};
    struct nfa b = {rbx_xcalloc(n + 1, sizeof(bool)), rbx_xcalloc(n + 1, sizeof(bool))};
    struct nfa *cur = &a, *next = &b;
    bool result = false, alive = true;
    cur->at[0] = true;
    for (size_t i = 0; i < len && alive;) {
        size_t w;
        uint32_t r = rbx_utf8_decode((const unsigned char *)s, len, i, &w);
        nfa_closure(pt, cur);
        alive = nfa_step(pt, cur, next, r);
        struct nfa *tmp = cur;
        cur = next;
        next = tmp;
        i += w;
    }
    if (alive) {
        nfa_closure(pt, cur);
        result = full ? cur->at[n] : true;
    }
    free(a.at);
    free(a.inside);
    free(b.at);
    free(b.inside);
    return result;
}

static bool starts_with(const char *s, size_t slen, const char *pre, size_t plen)
{
    return slen >= plen && memcmp(s, pre, plen) == 0;
}

static bool pattern_match(const struct pattern *pt, const char *path, size_t len)
{
    size_t tl = strlen(pt->text);
    switch (pt->type) {
    case M_EXACT: return len == tl && memcmp(path, pt->text, len) == 0;
    case M_PREFIX: return starts_with(path, len, pt->text, tl - 2);
    case M_SUFFIX: {
        const char *suf = pt->text + 2;
        size_t sl = tl - 2;
        if (len >= sl && memcmp(path + len - sl, suf, sl) == 0)
            return true;
        return sl > 0 && suf[0] == '/' && len == sl - 1 && memcmp(path, suf + 1, len) == 0;
    }
    case M_GLOB: return glob_run(pt, path, len, true);
    }
    return false;
}

/* The pattern, or one of the path's parent directories, matches. */
static bool matches_or_parent(const struct pattern *pt, const char *path)
{
    size_t len = strlen(path);
    if (pattern_match(pt, path, len))
        return true;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '/' && pattern_match(pt, path, i))
            return true;
    return false;
}

/* Could the pattern match some path strictly below directory `dir`? Conservative: true when
 * unsure. */
static bool could_match_below(const struct pattern *pt, const char *dir)
{
    _cleanup_free_ char *d = rbx_xasprintf("%s/", dir);
    size_t dl = strlen(d), tl = strlen(pt->text);
    switch (pt->type) {
    case M_EXACT: return tl > dl && starts_with(pt->text, tl, d, dl);
    case M_PREFIX:
        return starts_with(pt->text, tl - 2, d, dl) || starts_with(d, dl, pt->text, tl - 2);
    case M_SUFFIX: return true;
    case M_GLOB: return glob_run(pt, d, dl, false);
    }
    return true;
}

/* ---- the file -------------------------------------------------------------------------------- */

static void pattern_clear(struct pattern *pt)
{
    for (size_t i = 0; i < pt->n_toks; i++)
        free(pt->toks[i].ranges);
    free(pt->toks);
    free(pt->text);
}

struct rbx_ignore *rbx_ignore_free(struct rbx_ignore *ign)
{
    if (!ign)
        return NULL;
    for (size_t i = 0; i < ign->n; i++)
        pattern_clear(&ign->pats[i]);
    free(ign->pats);
    rbx_strv_free(ign->strs.v);
    free(ign);
    return NULL;
}

static size_t trim_space(const char *s, size_t len, size_t *start)
{
    size_t a = 0;
    while (a < len) {
        size_t n;
        uint32_t r = rbx_utf8_decode((const unsigned char *)s, len, a, &n);
        if (!rbx_rune_is_space(r))
            break;
        a += n;
    }
    size_t b = len;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\n' || s[b - 1] == '\v' ||
                     s[b - 1] == '\f' || s[b - 1] == '\r'))
        b--;
    *start = a;
    return b - a;
}

int rbx_ignore_parse(const char *buf, size_t len, const char *name, struct rbx_ignore **out,
                     struct rbx_error **err)
{
    _cleanup_(rbx_ignore_freep) struct rbx_ignore *ign = rbx_xcalloc(1, sizeof(*ign));
    ign->strs.v = rbx_xcalloc(1, sizeof(char *));
    name = name ? name : ".dockerignore";
    unsigned lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *l = buf + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && l[n - 1] == '\r')
            n--;
        if (lineno == 1 && n >= 3 && memcmp(l, "\xef\xbb\xbf", 3) == 0) {
            l += 3;
            n -= 3;
        }
        if (memchr(l, '\0', n))
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s:%u: NUL byte in pattern", name,
                                 lineno);
        if (n > 0 && l[0] == '#')
            continue;
        size_t s0;
        n = trim_space(l, n, &s0);
        l += s0;
        if (n == 0)
            continue;
        if (n > RBX_PATH_MAX)
            return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%s:%u: pattern longer than %d bytes",
                                 name, lineno, RBX_PATH_MAX);
        bool invert = l[0] == '!';
        if (invert) {
            l++;
            n--;
            n = trim_space(l, n, &s0);
            l += s0;
        }
        _cleanup_free_ char *raw = rbx_xstrndup(l, n);
        _cleanup_free_ char *clean = n ? go_clean(raw) : rbx_xstrdup("");
        const char *pat = clean;
        if (strlen(pat) > 1 && pat[0] == '/')
            pat++;
        if (invert && !*pat)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s:%u: illegal exclusion pattern: \"!\"", name, lineno);
        if (validate(pat) < 0)
            return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                 "%s:%u: syntax error in pattern \"%s\"", name, lineno, pat);
        if (ign->n == IGNORE_MAX_PATTERNS)
            return rbx_error_set(err, RBX_ERR_LIMIT, E2BIG, "%s:%u: more than %u patterns", name,
                                 lineno, IGNORE_MAX_PATTERNS);
        ign->pats = rbx_grow(ign->pats, ign->n, sizeof(*ign->pats));
        struct pattern *pt = &ign->pats[ign->n++];
        *pt = (struct pattern){.text = rbx_xstrdup(pat), .exclusion = invert};
        compile(pt);
        rbx_strvec_push_take(&ign->strs, rbx_xasprintf("%s%s", invert ? "!" : "", pat));
    }
    *out = TAKE_PTR(ign);
    return 0;
}

char *const *rbx_ignore_patterns(const struct rbx_ignore *ign)
{
    static char *const none[] = {NULL};
    return ign ? ign->strs.v : none;
}

enum rbx_ignore_verdict rbx_ignore_match(const struct rbx_ignore *ign, const char *path,
                                         bool is_dir)
{
    if (!ign || ign->n == 0)
        return RBX_IGNORE_KEEP;
    _cleanup_free_ char *clean = go_clean(path);
    const char *p = clean;
    while (*p == '/')
        p++;
    if (!*p || strcmp(p, ".") == 0 || strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0)
        return RBX_IGNORE_KEEP;

    /* the last pattern that matches decides (patternmatcher's skipping gives the same) */
    ssize_t last = -1;
    for (size_t i = 0; i < ign->n; i++)
        if (matches_or_parent(&ign->pats[i], p))
            last = (ssize_t)i;
    if (last < 0 || ign->pats[last].exclusion)
        return RBX_IGNORE_KEEP;
    if (!is_dir)
        return RBX_IGNORE_EXCLUDE;
    /* A path below the directory matches, through its parent, every pattern the directory
     * matches, `last` included; so only a "!" pattern after `last` could bring it back. */
    for (size_t i = (size_t)last + 1; i < ign->n; i++)
        if (ign->pats[i].exclusion && could_match_below(&ign->pats[i], p))
            return RBX_IGNORE_EXCLUDE;
    return RBX_IGNORE_EXCLUDE_TREE;
}
