/* expand.c — Docker's variable substitution (BuildKit's shell lexer: quotes, escapes, $VAR and
 * the ${VAR...} modifiers, word splitting) and its application to whole instructions. */
#include "builder/builder-internal.h"

#include <string.h>
#include <strings.h>

/* ---- growable strings and word lists --------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_put(struct sbuf *b, const void *data, size_t n)
{
    if (n >= (size_t)PTRDIFF_MAX - b->len)
        abort(); /* no text is that long; said for the optimiser's bounds checks (-O3) */
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = rbx_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static void sb_putc(struct sbuf *b, char c)
{
    sb_put(b, &c, 1);
}
static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}
static char *sb_take(struct sbuf *b)
{
    char *p = b->p ? b->p : rbx_xstrdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
static void sb_free(struct sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* BuildKit's word splitter: blanks end a word unless they came quoted or escaped; an empty
 * quoted string marks a word as started but a word is only kept when it has bytes. */
struct words {
    struct rbx_strvec v;
    struct sbuf cur;
    bool in_word;
};

static void words_raw(struct words *w, const char *s, size_t n)
{
    sb_put(&w->cur, s, n);
    w->in_word = true;
}

static void words_flush(struct words *w)
{
    if (w->cur.len > 0)
        rbx_strvec_push_take(&w->v, sb_take(&w->cur));
    w->in_word = false;
}

static void words_char(struct words *w, const char *s, size_t n, uint32_t r)
{
    if (rbx_rune_is_space(r)) {
        if (w->in_word && w->cur.len > 0)
            words_flush(w);
    } else {
        words_raw(w, s, n);
    }
}

static void words_string(struct words *w, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n;
        uint32_t r = rbx_utf8_decode((const unsigned char *)s, len, i, &n);
        words_char(w, s + i, n, r);
        i += n;
    }
}

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

uint32_t rbx_utf8_decode(const unsigned char *s, size_t len, size_t i, size_t *n)
{
    unsigned char c = s[i];
    size_t need;
    uint32_t r, min;
    if (c < 0x80) {
        *n = 1;
        return c;
    } else if ((c & 0xe0) == 0xc0) {
        need = 1, r = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        need = 2, r = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        need = 3, r = c & 0x07, min = 0x10000;
    } else {
        goto invalid;
    }
    if (i + need >= len)
        goto invalid;
    for (size_t k = 1; k <= need; k++) {
        if ((s[i + k] & 0xc0) != 0x80)
            goto invalid;
        r = (r << 6) | (s[i + k] & 0x3f);
    }
    if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
        goto invalid;
    *n = need + 1;
    return r;
invalid:
    *n = 1;
    return 0x80000000u | c;
}

/* Go's unicode.IsSpace. */
bool rbx_rune_is_space(uint32_t r)
{
    switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000: return true;
    default: return r >= 0x2000 && r <= 0x200a;
    }
}

/* ---- the lexer ------------------------------------------------------------------------------- */

#define LEX_MAX_DEPTH 64

struct lexer {
    const unsigned char *s;
    size_t len, pos;
    int escape;
    struct rbx_df_lex_opts o;
    bool raw_escapes; /* o.raw_escapes, switched on while lexing ${VAR#pattern} words */
    rbx_df_lookup_fn lookup;
    void *userdata;
    unsigned depth;
    const char *source;
    struct rbx_error **err;
};

#define LEX_EOF (-1)

static int peek(const struct lexer *lx)
{
    return lx->pos < lx->len ? lx->s[lx->pos] : LEX_EOF;
}

RBX_PRINTF(3, 4)
static int lex_fail(struct lexer *lx, enum rbx_error_kind kind, const char *fmt, ...)
{
    _cleanup_free_ char *why = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&why, fmt, ap) < 0)
        abort();
    va_end(ap);
    size_t n = strlen(lx->source);
    return rbx_error_set(lx->err, kind, EINVAL, "failed to process \"%.*s%s\": %s",
                         (int)(n > 200 ? 200 : n), lx->source, n > 200 ? "..." : "", why);
}

/* Replace an error a nested call set with a more precise one. */
static void lex_clear_error(struct lexer *lx)
{
    if (lx->err && *lx->err)
        *lx->err = rbx_error_free(*lx->err);
}

/* The value of `name`; *set tells whether it is set. */
static const char *get_env(struct lexer *lx, const char *name, bool *set)
{
    const char *v = lx->lookup ? lx->lookup(lx->userdata, name) : NULL;
    *set = v != NULL;
    return v ? v : "";
}

static bool is_special_param(int c)
{
    return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' ||
           c == '0';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Go's unicode.IsLetter/IsDigit plus '_', approximated for non-ASCII runes: every rune that is
 * not a blank counts as a letter. */
static bool is_name_char(const struct lexer *lx)
{
    int c = peek(lx);
    if (c == LEX_EOF)
        return false;
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
    size_t n;
    uint32_t r = rbx_utf8_decode(lx->s, lx->len, lx->pos, &n);
    return !(r & 0x80000000u) && !rbx_rune_is_space(r);
}

static char *lex_name(struct lexer *lx)
{
    size_t start = lx->pos;
    int c = peek(lx);
    if (c != LEX_EOF && is_digit(c)) {
        while (peek(lx) != LEX_EOF && is_digit(peek(lx)))
            lx->pos++;
    } else if (c != LEX_EOF && is_special_param(c)) {
        lx->pos++;
    } else {
        while (is_name_char(lx)) {
            size_t n;
            rbx_utf8_decode(lx->s, lx->len, lx->pos, &n);
            lx->pos += n;
        }
    }
    return rbx_xstrndup((const char *)lx->s + start, lx->pos - start);
}

static int lex_until(struct lexer *lx, int stop, bool raw_escapes, struct sbuf *result,
                     struct words *words);

/* ---- shell patterns: ${VAR#p}, ${VAR%p}, ${VAR/p/r} ------------------------------------------ */

/* BuildKit turns these patterns into Go regexps: '*' is ".*" (lazy for the shortest forms),
 * '?' is "." (neither crosses a newline), '\' escapes '*', '?' and '\' and is dropped before
 * '}' and '/'; everything else is literal. We match the same language with a small NFA. */
enum { P_LIT, P_ANY, P_STAR };
struct ptok {
    int kind;
    uint32_t r;
};

static int compile_pattern(struct lexer *lx, const char *pat, struct ptok **out, size_t *n_out)
{
    size_t len = strlen(pat), n = 0;
    struct ptok *t = rbx_xcalloc(len + 1, sizeof(*t));
    for (size_t i = 0; i < len;) {
        size_t w;
        uint32_t r = rbx_utf8_decode((const unsigned char *)pat, len, i, &w);
        i += w;
        if (r == '*') {
            t[n++] = (struct ptok){P_STAR, 0};
        } else if (r == '?') {
            t[n++] = (struct ptok){P_ANY, 0};
        } else if (r == '\\') {
            if (i < len && (pat[i] == '}' || pat[i] == '/'))
                continue;
            if (i >= len || (pat[i] != '*' && pat[i] != '?' && pat[i] != '\\')) {
                size_t ew = 0;
                if (i < len)
                    rbx_utf8_decode((const unsigned char *)pat, len, i, &ew);
                free(t);
                return lex_fail(lx, RBX_ERR_MALFORMED,
                                "invalid pattern (%s) in substitution: invalid escape '\\%.*s'",
                                pat, (int)ew, pat + i);
            }
            t[n++] = (struct ptok){P_LIT, (uint32_t)pat[i]};
            i++;
        } else {
            t[n++] = (struct ptok){P_LIT, r};
        }
    }
    *out = t;
    *n_out = n;
    return 0;
}

/* A value split into runes: rune k starts at byte off[k]; off[n] is the length. */
struct runes {
    uint32_t *r;
    size_t *off;
    size_t n;
};

static void runes_init(struct runes *rs, const char *s)
{
    size_t len = strlen(s);
    rs->r = rbx_xcalloc(len + 1, sizeof(uint32_t));
    rs->off = rbx_xcalloc(len + 1, sizeof(size_t));
    rs->n = 0;
    for (size_t i = 0; i < len;) {
        size_t w;
        rs->off[rs->n] = i;
        rs->r[rs->n++] = rbx_utf8_decode((const unsigned char *)s, len, i, &w);
        i += w;
    }
    rs->off[rs->n] = len;
}

static void runes_free(struct runes *rs)
{
    free(rs->r);
    free(rs->off);
}

static bool ptok_accepts(const struct ptok *t, uint32_t r)
{
    return t->kind == P_LIT ? t->r == r : r != '\n';
}

/* The match budget keeps a hostile pattern against a large value from running for minutes. */
#define PATTERN_BUDGET (64u << 20)

static int check_budget(struct lexer *lx, size_t nt, size_t n)
{
    if ((nt + 1) > PATTERN_BUDGET / (n + 1))
        return lex_fail(lx, RBX_ERR_LIMIT, "pattern too complex for a value of %zu characters", n);
    return 0;
}

/* Anchored at the start of rs: the end (in runes) of the shortest or longest match, -1 when
 * the pattern matches no prefix. */
static ssize_t prefix_match(const struct ptok *t, size_t nt, const struct runes *rs, bool longest)
{
    _cleanup_free_ bool *cur = rbx_xcalloc(nt + 1, sizeof(bool));
    _cleanup_free_ bool *next = rbx_xcalloc(nt + 1, sizeof(bool));
    ssize_t end = -1;
    cur[0] = true;
    for (size_t i = 0;; i++) {
        for (size_t k = 0; k < nt; k++)
            if (cur[k] && t[k].kind == P_STAR)
                cur[k + 1] = true;
        if (cur[nt]) {
            end = (ssize_t)i;
            if (!longest)
                return end;
        }
        if (i == rs->n)
            break;
        bool any = false;
        memset(next, 0, (nt + 1) * sizeof(bool));
        for (size_t k = 0; k < nt; k++) {
            if (!cur[k] || !ptok_accepts(&t[k], rs->r[i]))
                continue;
            next[t[k].kind == P_STAR ? k : k + 1] = true;
            any = true;
        }
        if (!any)
            break;
        bool *tmp = cur;
        cur = next;
        next = tmp;
    }
    return end;
}

/* Unanchored, from rune `from`: the leftmost match, longest at that start (Go's regexp with
 * greedy stars). Threads carry their start; the smallest start wins. */
static bool search_match(const struct ptok *t, size_t nt, const struct runes *rs, size_t from,
                         size_t *ms, size_t *me)
{
    const size_t none = SIZE_MAX;
    _cleanup_free_ size_t *cur = rbx_xcalloc(nt + 1, sizeof(size_t));
    _cleanup_free_ size_t *next = rbx_xcalloc(nt + 1, sizeof(size_t));
    bool found = false;
    size_t bs = 0, be = 0;
    for (size_t k = 0; k <= nt; k++)
        cur[k] = none;
    for (size_t i = from;; i++) {
        if (!found && cur[0] > i)
            cur[0] = i;
        for (size_t k = 0; k < nt; k++)
            if (cur[k] != none && t[k].kind == P_STAR && cur[k] < cur[k + 1])
                cur[k + 1] = cur[k];
        if (cur[nt] != none && (!found || cur[nt] < bs || (cur[nt] == bs && i > be))) {
            found = true;
            bs = cur[nt];
            be = i;
        }
        bool alive = false;
        for (size_t k = 0; k <= nt; k++) {
            if (found && cur[k] != none && cur[k] > bs)
                cur[k] = none;
            alive |= cur[k] != none && k < nt;
        }
        if (i == rs->n || (found && !alive))
            break;
        for (size_t k = 0; k <= nt; k++)
            next[k] = none;
        for (size_t k = 0; k < nt; k++) {
            if (cur[k] == none || !ptok_accepts(&t[k], rs->r[i]))
                continue;
            size_t to = t[k].kind == P_STAR ? k : k + 1;
            if (cur[k] < next[to])
                next[to] = cur[k];
        }
        size_t *tmp = cur;
        cur = next;
        next = tmp;
    }
    *ms = bs;
    *me = be;
    return found;
}

static void reverse_runes(struct runes *rs)
{
    for (size_t a = 0, b = rs->n ? rs->n - 1 : 0; a < b; a++, b--) {
        uint32_t tmp = rs->r[a];
        rs->r[a] = rs->r[b];
        rs->r[b] = tmp;
    }
}

/* ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p} */
static int trim_value(struct lexer *lx, const char *value, const char *pattern, bool suffix,
                      bool longest, struct sbuf *out)
{
    _cleanup_free_ struct ptok *t = NULL;
    size_t nt;
    int r = compile_pattern(lx, pattern, &t, &nt);
    if (r < 0)
        return r;
    struct runes rs;
    runes_init(&rs, value);
    if ((r = check_budget(lx, nt, rs.n)) < 0) {
        runes_free(&rs);
        return r;
    }
    if (suffix) {
        /* a suffix match is a prefix match of both reversed */
        for (size_t a = 0, b = nt ? nt - 1 : 0; a < b; a++, b--) {
            struct ptok tmp = t[a];
            t[a] = t[b];
            t[b] = tmp;
        }
        reverse_runes(&rs);
    }
    ssize_t k = prefix_match(t, nt, &rs, longest);
    if (k < 0)
        sb_puts(out, value);
    else if (suffix)
        sb_put(out, value, rs.off[rs.n - (size_t)k]);
    else
        sb_puts(out, value + rs.off[k]);
    runes_free(&rs);
    return 0;
}

/* Go's Regexp.Expand for a pattern without groups: "$$" is '$', "$0"/"${0}" the match, any
 * other well-formed reference is empty, a malformed one a literal '$'. */
static void expand_template(const char *tpl, const char *match, size_t match_len, struct sbuf *out)
{
    for (const char *p = tpl; *p;) {
        if (*p != '$') {
            sb_putc(out, *p++);
            continue;
        }
        if (p[1] == '$') {
            sb_putc(out, '$');
            p += 2;
            continue;
        }
        const char *q = p + 1;
        bool brace = *q == '{';
        if (brace)
            q++;
        const char *name = q;
        while (*q && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || is_digit(*q) ||
                      *q == '_' || (unsigned char)*q >= 0x80))
            q++;
        size_t nlen = (size_t)(q - name);
        if (nlen == 0 || (brace && *q != '}')) {
            sb_putc(out, '$');
            p++;
            continue;
        }
        if (brace)
            q++;
        bool zero = nlen > 0;
        for (size_t i = 0; i < nlen; i++)
            zero &= name[i] == '0';
        if (zero)
            sb_put(out, match, match_len);
        p = q;
    }
}

/* ${VAR/p/r} ${VAR//p/r}: Go's ReplaceAllString (template expansion, no empty match right
 * after a match) for the second; the first replaces the leftmost match literally. */
static int replace_value(struct lexer *lx, const char *value, const char *pattern, const char *repl,
                         bool all, struct sbuf *out)
{
    _cleanup_free_ struct ptok *t = NULL;
    size_t nt;
    int r = compile_pattern(lx, pattern, &t, &nt);
    if (r < 0)
        return r;
    struct runes rs;
    runes_init(&rs, value);
    if ((r = check_budget(lx, nt, rs.n)) < 0) {
        runes_free(&rs);
        return r;
    }
    size_t ms, me;
    if (!all) {
        if (search_match(t, nt, &rs, 0, &ms, &me)) {
            sb_put(out, value, rs.off[ms]);
            sb_puts(out, repl);
            sb_puts(out, value + rs.off[me]);
        } else {
            sb_puts(out, value);
        }
        runes_free(&rs);
        return 0;
    }
    size_t last_end = 0, pos = 0;
    while (pos <= rs.n && search_match(t, nt, &rs, pos, &ms, &me)) {
        sb_put(out, value + rs.off[last_end], rs.off[ms] - rs.off[last_end]);
        if (me > last_end || ms == 0)
            expand_template(repl, value + rs.off[ms], rs.off[me] - rs.off[ms], out);
        last_end = me;
        pos = me > pos ? me : pos + 1;
        if (out->len > RBX_DF_MAX_EXPANSION) {
            runes_free(&rs);
            return lex_fail(lx, RBX_ERR_LIMIT, "substitution result larger than %u bytes",
                            RBX_DF_MAX_EXPANSION);
        }
    }
    sb_puts(out, value + rs.off[last_end]);
    runes_free(&rs);
    return 0;
}

/* ---- $ --------------------------------------------------------------------------------------- */

static int lex_dollar(struct lexer *lx, struct sbuf *out)
{
    lx->pos++; /* '$' */
    if (peek(lx) != '{') {
        _cleanup_free_ char *name = lex_name(lx);
        if (!*name) {
            sb_putc(out, '$');
            return 0;
        }
        bool set;
        const char *v = get_env(lx, name, &set);
        if (!set && lx->o.skip_unset) {
            sb_putc(out, '$');
            sb_puts(out, name);
        } else {
            sb_puts(out, v);
        }
        return 0;
    }
    lx->pos++; /* '{' */
    int c = peek(lx);
    if (c == LEX_EOF)
        return lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: missing '}'");
    if (c == '{' || c == '}' || c == ':')
        return lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: bad substitution");
    if (++lx->depth > LEX_MAX_DEPTH)
        return lex_fail(lx, RBX_ERR_LIMIT, "substitutions nested deeper than %d levels",
                        LEX_MAX_DEPTH);

    _cleanup_free_ char *name = lex_name(lx);
    int r = 0;
    bool set;
    c = peek(lx);
    if (c == LEX_EOF) {
        r = lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: missing '}'");
        goto out;
    }
    lx->pos++;
    if (c == '}') {
        const char *v = get_env(lx, name, &set);
        if (!set && lx->o.skip_unset) {
            sb_puts(out, "${");
            sb_puts(out, name);
            sb_putc(out, '}');
        } else {
            sb_puts(out, v);
        }
        goto out;
    }

    /* the modifier as written, for messages: ':' and the rune after it */
    char mod[8] = {(char)c, 0};
    bool null_is_unset = false;
    if (c == ':') {
        null_is_unset = true;
        c = peek(lx);
        if (c == LEX_EOF) {
            r = lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: missing '}'");
            goto out;
        }
        size_t n;
        rbx_utf8_decode(lx->s, lx->len, lx->pos, &n);
        memcpy(mod + 1, lx->s + lx->pos, n);
        lx->pos += n;
    } else if (c >= 0x80) {
        size_t n;
        rbx_utf8_decode(lx->s, lx->len, lx->pos - 1, &n);
        memcpy(mod, lx->s + lx->pos - 1, n);
        lx->pos += n - 1;
    }

    if (c == '/' && !null_is_unset) {
        bool all = peek(lx) == '/';
        if (all)
            lx->pos++;
        struct sbuf pat = {0}, repl = {0}, res = {0};
        r = lex_until(lx, '/', true, &pat, NULL);
        if (r < 0 && peek(lx) == LEX_EOF) {
            lex_clear_error(lx);
            r = lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: missing '/' in ${}");
        }
        if (r >= 0) {
            r = lex_until(lx, '}', true, &repl, NULL);
            if (r < 0 && peek(lx) == LEX_EOF) {
                lex_clear_error(lx);
                r = lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: missing '}'");
            }
        }
        if (r >= 0) {
            const char *v = get_env(lx, name, &set);
            if (!set && lx->o.skip_unset) {
                sb_puts(out, "${");
                sb_puts(out, name);
                sb_puts(out, all ? "//" : "/");
                sb_puts(out, pat.p ? pat.p : "");
                sb_putc(out, '/');
                sb_puts(out, repl.p ? repl.p : "");
                sb_putc(out, '}');
            } else {
                r = replace_value(lx, v, pat.p ? pat.p : "", repl.p ? repl.p : "", all, &res);
                if (r >= 0)
                    sb_put(out, res.p ? res.p : "", res.len);
            }
        }
        sb_free(&pat);
        sb_free(&repl);
        sb_free(&res);
        goto out;
    }

    if (!strchr("+-?#%", c) || c == '\0') {
        if (!null_is_unset) {
            r = lex_fail(lx, RBX_ERR_MALFORMED, "unsupported modifier (%s) in substitution", mod);
            goto out;
        }
        /* after ':', BuildKit lexes the word before it rejects the modifier */
        struct sbuf skip = {0};
        r = lex_until(lx, '}', false, &skip, NULL);
        sb_free(&skip);
        if (r >= 0 || peek(lx) != LEX_EOF) {
            lex_clear_error(lx);
            r = lex_fail(lx, RBX_ERR_MALFORMED, "unsupported modifier (%s) in substitution", mod);
        } else {
            lex_clear_error(lx);
            r = lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: missing '}'");
        }
        goto out;
    }
    bool pattern = c == '#' || c == '%';
    if (null_is_unset && pattern) {
        r = lex_fail(lx, RBX_ERR_MALFORMED, "unsupported modifier (%s) in substitution", mod);
        goto out;
    }
    struct sbuf word = {0};
    r = lex_until(lx, '}', pattern, &word, NULL);
    if (r < 0) {
        if (peek(lx) == LEX_EOF) {
            lex_clear_error(lx);
            r = lex_fail(lx, RBX_ERR_MALFORMED, "syntax error: missing '}'");
        }
        sb_free(&word);
        goto out;
    }
    const char *w = word.p ? word.p : "";
    const char *v = get_env(lx, name, &set);
    if (!set && lx->o.skip_unset) {
        sb_puts(out, "${");
        sb_puts(out, name);
        sb_puts(out, mod);
        sb_puts(out, w);
        sb_putc(out, '}');
    } else if (c == '-') {
        sb_puts(out, !set || (null_is_unset && !*v) ? w : v);
    } else if (c == '+') {
        if (!(!set || (null_is_unset && !*v)))
            sb_puts(out, w);
    } else if (c == '?') {
        if (!set)
            r = lex_fail(lx, RBX_ERR_USAGE, "%s: %s", name, *w ? w : "is not allowed to be unset");
        else if (null_is_unset && !*v)
            r = lex_fail(lx, RBX_ERR_USAGE, "%s: %s", name, *w ? w : "is not allowed to be empty");
        else
            sb_puts(out, v);
    } else {
        bool longest = *w == c;
        r = trim_value(lx, v, longest ? w + 1 : w, c == '%', longest, out);
    }
    sb_free(&word);
out:
    lx->depth--;
    return r;
}

/* ---- quotes ---------------------------------------------------------------------------------- */

static int lex_single_quote(struct lexer *lx, struct sbuf *out)
{
    lx->pos++;
    if (lx->o.raw_quotes)
        sb_putc(out, '\'');
    for (;;) {
        int c = peek(lx);
        if (c == LEX_EOF)
            return lex_fail(lx, RBX_ERR_MALFORMED,
                            "unexpected end of statement while looking for matching single-quote");
        lx->pos++;
        if (c == '\'') {
            if (lx->o.raw_quotes)
                sb_putc(out, '\'');
            return 0;
        }
        sb_putc(out, (char)c);
    }
}

static int lex_double_quote(struct lexer *lx, struct sbuf *out)
{
    lx->pos++;
    if (lx->o.raw_quotes)
        sb_putc(out, '"');
    for (;;) {
        int c = peek(lx);
        if (c == LEX_EOF)
            return lex_fail(lx, RBX_ERR_MALFORMED,
                            "unexpected end of statement while looking for matching double-quote");
        if (c == '"') {
            lx->pos++;
            if (lx->o.raw_quotes)
                sb_putc(out, '"');
            return 0;
        }
        if (c == '$') {
            int r = lex_dollar(lx, out);
            if (r < 0)
                return r;
            continue;
        }
        lx->pos++;
        if (c == lx->escape) {
            if (lx->raw_escapes)
                sb_putc(out, (char)c);
            int n = peek(lx);
            if (n == LEX_EOF)
                continue; /* then fails: the quote is never closed */
            /* only '"', '$' and the escape itself are escaped; otherwise it stays */
            if (n == '"' || n == '$' || n == lx->escape) {
                lx->pos++;
                c = n;
            }
        }
        sb_putc(out, (char)c);
    }
}

/* ---- the word loop --------------------------------------------------------------------------- */

static int lex_until(struct lexer *lx, int stop, bool raw_escapes, struct sbuf *result,
                     struct words *words)
{
    bool saved = lx->raw_escapes;
    int r = 0;
    lx->raw_escapes = raw_escapes;
    for (;;) {
        int c = peek(lx);
        if (c == LEX_EOF)
            break;
        if (stop != LEX_EOF && c == stop) {
            lx->pos++;
            goto done;
        }
        if (c == '$' || (!lx->o.skip_quotes && (c == '\'' || c == '"'))) {
            struct sbuf tmp = {0};
            r = c == '$'    ? lex_dollar(lx, &tmp)
                : c == '\'' ? lex_single_quote(lx, &tmp)
                            : lex_double_quote(lx, &tmp);
            if (r < 0) {
                sb_free(&tmp);
                goto done;
            }
            const char *t = tmp.p ? tmp.p : "";
            sb_put(result, t, tmp.len);
            if (words) {
                if (c == '$')
                    words_string(words, t);
                else
                    words_raw(words, t, tmp.len);
            }
            sb_free(&tmp);
            if (result->len > RBX_DF_MAX_EXPANSION) {
                r = lex_fail(lx, RBX_ERR_LIMIT, "substitution result larger than %u bytes",
                             RBX_DF_MAX_EXPANSION);
                goto done;
            }
            continue;
        }
        size_t n;
        uint32_t ru = rbx_utf8_decode(lx->s, lx->len, lx->pos, &n);
        const char *bytes = (const char *)lx->s + lx->pos;
        lx->pos += n;
        if (c == lx->escape) {
            if (lx->raw_escapes) {
                if (words)
                    words_raw(words, bytes, 1);
                sb_put(result, bytes, 1);
            }
            if (peek(lx) == LEX_EOF)
                break; /* a trailing escape is dropped */
            bytes = (const char *)lx->s + lx->pos;
            rbx_utf8_decode(lx->s, lx->len, lx->pos, &n);
            lx->pos += n;
            if (words)
                words_raw(words, bytes, n);
        } else if (words) {
            words_char(words, bytes, n, ru);
        }
        sb_put(result, bytes, n);
    }
    if (stop != LEX_EOF)
        r = lex_fail(lx, RBX_ERR_MALFORMED,
                     "unexpected end of statement while looking for matching %c", stop);
done:
    lx->raw_escapes = saved;
    return r;
}

int rbx_df_lex(const char *word, char escape, const struct rbx_df_lex_opts *opts,
               rbx_df_lookup_fn lookup, void *userdata, char **result, char ***words,
               struct rbx_error **err)
{
    static const struct rbx_df_lex_opts plain = {0};
    struct lexer lx = {
        .s = (const unsigned char *)word,
        .len = strlen(word),
        .escape = (unsigned char)escape,
        .o = opts ? *opts : plain,
        .lookup = lookup,
        .userdata = userdata,
        .source = word,
        .err = err,
    };
    lx.raw_escapes = lx.o.raw_escapes;
    struct sbuf res = {0};
    struct words w = {0};
    int r = lex_until(&lx, LEX_EOF, lx.o.raw_escapes, &res, words ? &w : NULL);
    if (r < 0) {
        sb_free(&res);
        sb_free(&w.cur);
        rbx_strv_free(w.v.v);
        return r;
    }
    if (words) {
        words_flush(&w);
        sb_free(&w.cur); /* an empty quoted word may have left a buffer */
        *words = rbx_strvec_take(&w.v);
    }
    if (result)
        *result = sb_take(&res);
    sb_free(&res);
    return 0;
}

int rbx_df_expand_word(const char *word, char escape, rbx_df_lookup_fn lookup, void *userdata,
                       char **out, struct rbx_error **err)
{
    return rbx_df_lex(word, escape, NULL, lookup, userdata, out, NULL, err);
}

int rbx_df_expand_words(const char *word, char escape, rbx_df_lookup_fn lookup, void *userdata,
                        char ***out, struct rbx_error **err)
{
    return rbx_df_lex(word, escape, NULL, lookup, userdata, NULL, out, err);
}

const char *rbx_df_lookup_env(void *env_strv, const char *name)
{
    char **env = env_strv;
    size_t k = strlen(name);
    const char *found = NULL;
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, k) == 0 && env[i][k] == '=')
            found = env[i] + k + 1;
    return found;
}

/* ---- whole instructions ---------------------------------------------------------------------- */

/* One pass over every string of an instruction that Docker substitutes, in a fixed order, so
 * rbx_df_instr_expand and rbx_df_instr_used_args agree on what is substituted. */
enum slot_kind {
    SLOT_WORD,  /* substituted in place */
    SLOT_WORDS, /* substituted and split: the vector grows */
    SLOT_MOUNT, /* a --mount spec: each value substituted */
    SLOT_BODY,  /* a heredoc body: quotes are not special */
};
typedef int (*slot_fn)(void *ctx, enum slot_kind kind, char **str, struct rbx_error **err);

static int each_str(char **p, enum slot_kind kind, slot_fn fn, void *ctx, struct rbx_error **err)
{
    return *p ? fn(ctx, kind, p, err) : 0;
}

static int each_strv(char **v, enum slot_kind kind, slot_fn fn, void *ctx, struct rbx_error **err)
{
    for (size_t i = 0; v && v[i]; i++) {
        int r = fn(ctx, kind, &v[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

static int walk_slots(struct rbx_df_instr *in, bool arg_defaults, slot_fn fn, void *ctx,
                      struct rbx_error **err)
{
    int r = 0;
    switch (in->kind) {
    case RBX_DF_FROM:
        if ((r = each_str(&in->from.image, SLOT_WORD, fn, ctx, err)) < 0)
            return r;
        return each_str(&in->from.platform, SLOT_WORD, fn, ctx, err);
    case RBX_DF_ENV:
    case RBX_DF_LABEL:
        for (size_t i = 0; i < in->kv.n_pairs; i++) {
            if ((r = each_str(&in->kv.pairs[i].key, SLOT_WORD, fn, ctx, err)) < 0 ||
                (r = each_str(&in->kv.pairs[i].value, SLOT_WORD, fn, ctx, err)) < 0)
                return r;
        }
        return 0;
    case RBX_DF_ARG:
        if (!arg_defaults)
            return 0;
        for (size_t i = 0; i < in->kv.n_pairs; i++)
            if ((r = each_str(&in->kv.pairs[i].value, SLOT_WORD, fn, ctx, err)) < 0)
                return r;
        return 0;
    case RBX_DF_WORKDIR:
    case RBX_DF_USER:
    case RBX_DF_STOPSIGNAL: return each_str(&in->arg, SLOT_WORD, fn, ctx, err);
    case RBX_DF_VOLUME: return each_strv(in->list.words, SLOT_WORD, fn, ctx, err);
    case RBX_DF_EXPOSE: return each_strv(in->list.words, SLOT_WORDS, fn, ctx, err);
    case RBX_DF_COPY:
    case RBX_DF_ADD:
        if ((r = each_strv(in->copy.srcs, SLOT_WORD, fn, ctx, err)) < 0 ||
            (r = each_str(&in->copy.dest, SLOT_WORD, fn, ctx, err)) < 0 ||
            (r = each_str(&in->copy.chown, SLOT_WORD, fn, ctx, err)) < 0 ||
            (r = each_str(&in->copy.chmod, SLOT_WORD, fn, ctx, err)) < 0 ||
            (r = each_str(&in->copy.checksum, SLOT_WORD, fn, ctx, err)) < 0)
            return r;
        for (size_t i = 0; i < in->n_heredocs; i++)
            if (in->heredocs[i].expand &&
                (r = each_str(&in->heredocs[i].content, SLOT_BODY, fn, ctx, err)) < 0)
                return r;
        return 0;
    case RBX_DF_RUN: return each_strv(in->run.mount_specs, SLOT_MOUNT, fn, ctx, err);
    default: return 0;
    }
}

struct expand_ctx {
    char escape;
    rbx_df_lookup_fn lookup;
    void *userdata;
    /* SLOT_WORDS results, applied after the walk (the walk holds pointers into the vector) */
    struct rbx_strvec split;
};

static int expand_slot(void *vctx, enum slot_kind kind, char **str, struct rbx_error **err)
{
    struct expand_ctx *c = vctx;
    static const struct rbx_df_lex_opts body = {.skip_quotes = true};
    char *res = NULL;
    int r = 0;
    switch (kind) {
    case SLOT_WORD:
        r = rbx_df_lex(*str, c->escape, NULL, c->lookup, c->userdata, &res, NULL, err);
        break;
    case SLOT_BODY:
        r = rbx_df_lex(*str, c->escape, &body, c->lookup, c->userdata, &res, NULL, err);
        break;
    case SLOT_WORDS: {
        char **w = NULL;
        r = rbx_df_lex(*str, c->escape, NULL, c->lookup, c->userdata, NULL, &w, err);
        if (r < 0)
            return r;
        for (size_t i = 0; w[i]; i++)
            rbx_strvec_push_take(&c->split, w[i]);
        free(w);
        return 0;
    }
    case SLOT_MOUNT: return 0; /* re-parsed with the lookup below */
    }
    if (r < 0)
        return r;
    free(*str);
    *str = res;
    return 0;
}

int rbx_df_instr_expand(const struct rbx_df_instr *in, char escape, rbx_df_lookup_fn lookup,
                        void *userdata, struct rbx_df_instr *out, struct rbx_error **err)
{
    struct expand_ctx ctx = {escape, lookup, userdata, {0}};
    int r;

    rbx_df_instr_copy(in, out);
    if (out->kind == RBX_DF_COPY || out->kind == RBX_DF_ADD) {
        /* BuildKit strips the tabs of a <<- body before it substitutes it */
        for (size_t i = 0; i < out->n_heredocs; i++) {
            struct rbx_df_heredoc *h = &out->heredocs[i];
            if (h->chomp) {
                char *body = rbx_df_heredoc_body(h);
                free(h->content);
                h->content = body;
                h->chomp = false;
            }
        }
    }
    if ((r = walk_slots(out, false, expand_slot, &ctx, err)) < 0)
        goto fail;
    if (out->kind == RBX_DF_EXPOSE) {
        rbx_strv_free(out->list.words);
        out->list.words = rbx_strvec_take(&ctx.split);
    }
    if (out->kind == RBX_DF_FROM && !*out->from.image) {
        r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "base name (%s) should not be blank",
                          in->from.image);
        goto fail;
    }
    if (out->kind == RBX_DF_RUN) {
        for (size_t i = 0; i < out->run.n_mounts; i++) {
            struct rbx_df_mount m = {0};
            r = rbx_df_mount_parse(out->run.mount_specs[i], escape, lookup, userdata, &m, err);
            if (r < 0)
                goto fail;
            rbx_df_mount_clear(&out->run.mounts[i]);
            out->run.mounts[i] = m;
        }
    }
    return 0;
fail:
    rbx_strv_free(ctx.split.v);
    rbx_df_instr_clear(out);
    return r;
}

/* ---- the build args an instruction uses ------------------------------------------------------ */

struct refs_ctx {
    char escape;
    struct rbx_strvec names;
};

/* Every name answers "set and not empty", so ${A?} and ${A:?} never stop the walk. */
static const char *record_lookup(void *ud, const char *name)
{
    struct refs_ctx *c = ud;
    rbx_strvec_push_take(&c->names, rbx_xstrdup(name));
    return "x";
}

static int refs_slot(void *vctx, enum slot_kind kind, char **str, struct rbx_error **err)
{
    struct refs_ctx *c = vctx;
    static const struct rbx_df_lex_opts body = {.skip_quotes = true};
    _cleanup_free_ char *res = NULL;
    if (kind != SLOT_MOUNT)
        return rbx_df_lex(*str, c->escape, kind == SLOT_BODY ? &body : NULL, record_lookup, c, &res,
                          NULL, err);
    _cleanup_strv_ char **fields = NULL;
    int r = rbx_df_csv_split(*str, &fields, err);
    if (r < 0)
        return r;
    for (size_t i = 0; fields[i]; i++) {
        const char *eq = strchr(fields[i], '=');
        if (!eq || strncasecmp(fields[i], "from=", 5) == 0)
            continue;
        _cleanup_free_ char *v = NULL;
        if ((r = rbx_df_lex(eq + 1, c->escape, NULL, record_lookup, c, &v, NULL, err)) < 0)
            return r;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rbx_df_instr_used_args(const struct rbx_df_instr *in, char escape, char *const *args,
                           char ***used, struct rbx_error **err)
{
    struct refs_ctx ctx = {escape, {0}};
    struct rbx_strvec sv = {0};
    int r;

    if (in->kind == RBX_DF_RUN) {
        for (size_t k = 0; args && args[k]; k++)
            rbx_strvec_push_take(&sv, rbx_xstrdup(args[k]));
    } else {
        /* walk_slots takes a mutable instruction: the recorder never changes the strings */
        r = walk_slots((struct rbx_df_instr *)in, true, refs_slot, &ctx, err);
        if (r < 0) {
            rbx_strv_free(ctx.names.v);
            return r;
        }
        for (size_t i = 0; i < ctx.names.n; i++)
            for (size_t k = 0; args && args[k]; k++)
                if (strcmp(ctx.names.v[i], args[k]) == 0)
                    rbx_strvec_push_take(&sv, rbx_xstrdup(args[k]));
        rbx_strv_free(ctx.names.v);
    }
    char **out = rbx_strvec_take(&sv);
    size_t n = rbx_strv_len(out), k = 0;
    if (n > 1)
        qsort(out, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(out[k - 1], out[i]) == 0) {
            free(out[i]);
            continue;
        }
        out[k++] = out[i];
    }
    out[k] = NULL;
    *used = out;
    return 0;
}
