/* dockerfile.c — Dockerfile text into stages of instructions, by BuildKit's rules: physical lines,
 * continuations, comments, parser directives, heredocs, instruction words, flags, and the
 * arguments of each instruction. Every error names file:line:column. */
#include "builder/builder-internal.h"

#include <string.h>
#include <strings.h>

/* ---- small buffers --------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const void *data, size_t n)
{
    if (n >= (size_t)PTRDIFF_MAX - b->len)
        abort(); /* no text is that long; said for the optimiser's bounds checks (-O3) */
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = rbx_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool ascii_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* BuildKit's reWhitespace / tokenWhitespace: [\t\v\f\r ] */
static bool ws_sep(int c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* Bytes of leading unicode.IsSpace runes. */
static size_t lead_space(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n;
        uint32_t r = rbx_utf8_decode((const unsigned char *)s, len, i, &n);
        if (!rbx_rune_is_space(r))
            break;
        i += n;
    }
    return i;
}

/* Length without trailing unicode.IsSpace runes (ASCII ones are what occurs in practice; a
 * trailing U+00A0 or U+0085 is two bytes ending in 0xa0/0x85 after 0xc2). */
static size_t trim_right_len(const char *s, size_t len)
{
    while (len > 0) {
        if (ascii_space((unsigned char)s[len - 1])) {
            len--;
        } else if (len >= 2 && (unsigned char)s[len - 2] == 0xc2 &&
                   ((unsigned char)s[len - 1] == 0xa0 || (unsigned char)s[len - 1] == 0x85)) {
            len -= 2;
        } else {
            break;
        }
    }
    return len;
}

/* ---- the parser state ------------------------------------------------------------------------ */

/* Where a piece of the logical line came from, to turn an offset back into line:column. */
struct seg {
    size_t off;
    unsigned line, col;
};

struct parser {
    const char *name;
    const char *buf;
    size_t len, pos;
    unsigned lineno; /* physical lines read so far */
    char escape;
    bool directives_done;
    bool seen_escape, seen_syntax, seen_check;
    struct rbx_dockerfile *df;
    size_t n_instrs;
    struct rbx_error **err;

    /* the instruction being read */
    struct buf text;
    struct seg *segs;
    size_t n_segs, cap_segs;
    unsigned first_line, first_col;
};

static void locate(const struct parser *p, size_t off, unsigned *line, unsigned *col)
{
    const struct seg *s = &p->segs[0];
    for (size_t i = 1; i < p->n_segs && p->segs[i].off <= off; i++)
        s = &p->segs[i];
    *line = s->line;
    *col = s->col + (unsigned)(off - s->off);
}

#define AT_INSTR SIZE_MAX

RBX_PRINTF(4, 5)
static int fail_at(struct parser *p, size_t off, enum rbx_error_kind kind, const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    unsigned line = p->first_line, col = p->first_col;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (off != AT_INSTR && p->n_segs > 0)
        locate(p, off, &line, &col);
    return rbx_error_set(p->err, kind, kind == RBX_ERR_LIMIT ? E2BIG : EINVAL, "%s:%u:%u: %s",
                         p->name, line, col, msg);
}

RBX_PRINTF(5, 6)
static int fail_line(struct parser *p, unsigned line, unsigned col, enum rbx_error_kind kind,
                     const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    return rbx_error_set(p->err, kind, kind == RBX_ERR_LIMIT ? E2BIG : EINVAL, "%s:%u:%u: %s",
                         p->name, line, col, msg);
}

/* Next physical line, newline included; 0 at the end of the input. */
static int next_line(struct parser *p, const char **line, size_t *len)
{
    if (p->pos >= p->len)
        return 0;
    const char *s = p->buf + p->pos;
    const char *nl = memchr(s, '\n', p->len - p->pos);
    size_t n = nl ? (size_t)(nl - s) + 1 : p->len - p->pos;
    p->lineno++;
    if (n - (nl ? 1 : 0) > RBX_DF_MAX_LINE)
        return fail_line(p, p->lineno, 1, RBX_ERR_LIMIT, "line longer than %u bytes",
                         RBX_DF_MAX_LINE);
    const char *nul = memchr(s, '\0', n);
    if (nul)
        return fail_line(p, p->lineno, (unsigned)(nul - s) + 1, RBX_ERR_MALFORMED,
                         "NUL byte in the Dockerfile");
    if (p->lineno == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        s += 3;
        n -= 3;
    }
    p->pos += (size_t)(s - (p->buf + p->pos)) + n;
    *line = s;
    *len = n;
    return 1;
}

/* BuildKit's trimNewline: every trailing '\r' and '\n'. */
static size_t trim_newline(const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    return len;
}

static bool is_comment(const char *s, size_t len)
{
    size_t l = lead_space(s, len);
    return l < len && s[l] == '#';
}

/* The escape character at the end of a line (before blanks) continues it, unless it is itself
 * escaped. Returns the length without it; *more tells whether it was there. */
static size_t trim_continuation(const char *s, size_t len, char escape, bool *more)
{
    size_t end = len;
    while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    *more = end > 0 && s[end - 1] == escape && (end == 1 || s[end - 2] != escape);
    return *more ? end - 1 : len;
}

/* ---- parser directives: "# escape=`", "# syntax=...", "# check=..." -------------------------- */

static bool re_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static int directive(struct parser *p, const char *s, size_t len, unsigned col)
{
    if (p->directives_done)
        return 0;
    size_t i = 0;
    if (len == 0 || s[0] != '#')
        goto done;
    i = 1;
    while (i < len && re_space(s[i]))
        i++;
    size_t k0 = i;
    if (i >= len || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        goto done;
    while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                       (s[i] >= '0' && s[i] <= '9')))
        i++;
    size_t k1 = i;
    while (i < len && re_space(s[i]))
        i++;
    if (i >= len || s[i] != '=')
        goto done;
    i++;
    while (i < len && re_space(s[i]))
        i++;
    size_t v0 = i, v1 = len;
    while (v1 > v0 && re_space(s[v1 - 1]))
        v1--;
    if (v1 == v0)
        goto done;

    char key[16] = "";
    size_t klen = k1 - k0;
    if (klen >= sizeof(key))
        goto done;
    for (size_t j = 0; j < klen; j++)
        key[j] = (char)((s[k0 + j] >= 'A' && s[k0 + j] <= 'Z') ? s[k0 + j] + 32 : s[k0 + j]);
    bool *seen = strcmp(key, "escape") == 0   ? &p->seen_escape
                 : strcmp(key, "syntax") == 0 ? &p->seen_syntax
                 : strcmp(key, "check") == 0  ? &p->seen_check
                                              : NULL;
    if (!seen)
        goto done;
    if (*seen)
        return fail_line(p, p->lineno, col, RBX_ERR_MALFORMED,
                         "only one %s parser directive can be used", key);
    *seen = true;
    if (strcmp(key, "escape") == 0) {
        if (v1 - v0 != 1 || (s[v0] != '\\' && s[v0] != '`'))
            return fail_line(p, p->lineno, col + (unsigned)v0, RBX_ERR_MALFORMED,
                             "invalid escape token '%.*s' does not match ` or \\", (int)(v1 - v0),
                             s + v0);
        p->escape = s[v0];
    } else if (strcmp(key, "syntax") == 0) {
        p->df->syntax = rbx_xstrndup(s + v0, v1 - v0);
    }
    return 0;
done:
    p->directives_done = true;
    return 0;
}

/* ---- suggestions ----------------------------------------------------------------------------- */

static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = (a[i - 1] | 32) == (b[j - 1] | 32) ? 0 : 1;
            size_t best = prev + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* The closest of `names` within two edits, or NULL. */
static const char *suggest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t score = 3, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t d = levenshtein(word, names[i]);
        if (d < score && d < wl) {
            score = d;
            best = names[i];
        }
    }
    return best;
}

/* ---- flags: "--name=value" words before the arguments ---------------------------------------- */

enum flag_type { FLAG_STRING, FLAG_BOOL, FLAG_MULTI };

struct flag_def {
    const char *name;
    enum flag_type type;
};

struct flag_val {
    bool set;
    size_t off;    /* of the flag word in the logical line */
    char *value;   /* STRING, BOOL ("true"/"false") */
    char **values; /* MULTI */
    size_t *offs;  /* MULTI: the offset of each value's flag */
    size_t n_values;
};

#define MAX_FLAGS 8

/* A word of the flag area, as BuildKit's extractBuilderFlags reads it: quotes removed, '\'
 * escaping the next byte. */
struct flag_word {
    char *text;
    size_t off;
};

/* Reads the flag words at the start of s[0..len) (offset `base` in the line); returns the
 * offset where the arguments start. */
static size_t extract_flags(const char *s, size_t len, size_t base, struct flag_word **words,
                            size_t *n_words)
{
    enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
    struct buf w = {0};
    bool blank_ok = false;
    char quote = 0;
    size_t start = 0, pos;
    *words = NULL;
    *n_words = 0;

#define PUSH_WORD()                                                                                \
    do {                                                                                           \
        *words = rbx_grow(*words, *n_words, sizeof(**words));                                      \
        (*words)[(*n_words)++] = (struct flag_word){w.p ? w.p : rbx_xstrdup(""), base + start};    \
        w.p = NULL;                                                                                \
        w.len = w.cap = 0;                                                                         \
    } while (0)

    for (pos = 0; pos <= len; pos++) {
        char ch = pos < len ? s[pos] : 0;
        if (phase == IN_SPACES) {
            if (pos == len)
                break;
            if (ascii_space((unsigned char)ch))
                continue;
            if (ch != '-' || pos + 1 == len || s[pos + 1] != '-')
                goto out;
            phase = IN_WORD;
            start = pos;
        }
        if (pos == len) {
            if (!(w.len == 2 && memcmp(w.p, "--", 2) == 0) && (blank_ok || w.len > 0))
                PUSH_WORD();
            break;
        }
        if (phase == IN_WORD) {
            if (ascii_space((unsigned char)ch)) {
                phase = IN_SPACES;
                if (w.len == 2 && memcmp(w.p, "--", 2) == 0)
                    goto out;
                if (blank_ok || w.len > 0)
                    PUSH_WORD();
                free(w.p);
                w.p = NULL;
                w.len = w.cap = 0;
                blank_ok = false;
                continue;
            }
            if (ch == '\'' || ch == '"') {
                quote = ch;
                blank_ok = true;
                phase = IN_QUOTE;
                continue;
            }
            if (ch == '\\') {
                if (pos + 1 == len)
                    continue;
                ch = s[++pos];
            }
            buf_put(&w, &ch, 1);
            continue;
        }
        /* IN_QUOTE */
        if (ch == quote) {
            phase = IN_WORD;
            continue;
        }
        if (ch == '\\') {
            if (pos + 1 == len) {
                phase = IN_WORD;
                continue;
            }
            ch = s[++pos];
        }
        buf_put(&w, &ch, 1);
    }
    pos = len;
out:
    free(w.p);
#undef PUSH_WORD
    return pos;
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(t); i++) {
        if (strcmp(s, t[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, f[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- the instruction table ------------------------------------------------------------------- */

struct ictx {
    struct rbx_df_instr *in;
    const struct flag_def *defs;
    struct flag_val flags[MAX_FLAGS];
    const char *args; /* the arguments, trimmed (NUL-terminated copy) */
    size_t args_off;  /* their offset in the logical line */
};

typedef int (*parse_fn)(struct parser *p, struct ictx *c);

struct instr_def {
    const char *name; /* lowercase */
    enum rbx_df_kind kind;
    parse_fn parse;
    const struct flag_def *flags;
    bool heredocs; /* may carry heredocs (in shell form) */
};

static const struct flag_def no_flags[] = {{NULL, 0}};
static const struct flag_def from_flags[] = {{"platform", FLAG_STRING}, {NULL, 0}};
static const struct flag_def run_flags[] = {{"mount", FLAG_MULTI},
                                            {"network", FLAG_STRING},
                                            {"security", FLAG_STRING},
                                            {"device", FLAG_MULTI},
                                            {NULL, 0}};
static const struct flag_def copy_flags[] = {{"from", FLAG_STRING},
                                             {"chown", FLAG_STRING},
                                             {"chmod", FLAG_STRING},
                                             {"link", FLAG_BOOL},
                                             {"exclude", FLAG_MULTI},
                                             {"parents", FLAG_BOOL},
                                             {NULL, 0}};
static const struct flag_def add_flags[] = {{"chown", FLAG_STRING},    {"chmod", FLAG_STRING},
                                            {"link", FLAG_BOOL},       {"exclude", FLAG_MULTI},
                                            {"checksum", FLAG_STRING}, {"keep-git-dir", FLAG_BOOL},
                                            {"unpack", FLAG_BOOL},     {NULL, 0}};
static const struct flag_def health_flags[] = {
    {"interval", FLAG_STRING},       {"timeout", FLAG_STRING}, {"start-period", FLAG_STRING},
    {"start-interval", FLAG_STRING}, {"retries", FLAG_STRING}, {NULL, 0}};

static int parse_from(struct parser *p, struct ictx *c);
static int parse_run(struct parser *p, struct ictx *c);
static int parse_cmd(struct parser *p, struct ictx *c);
static int parse_copy(struct parser *p, struct ictx *c);
static int parse_env(struct parser *p, struct ictx *c);
static int parse_arg(struct parser *p, struct ictx *c);
static int parse_maintainer(struct parser *p, struct ictx *c);
static int parse_one(struct parser *p, struct ictx *c);
static int parse_expose(struct parser *p, struct ictx *c);
static int parse_volume(struct parser *p, struct ictx *c);
static int parse_health(struct parser *p, struct ictx *c);
static int parse_onbuild(struct parser *p, struct ictx *c);

static const struct instr_def instr_defs[] = {
    {"from", RBX_DF_FROM, parse_from, from_flags, false},
    {"run", RBX_DF_RUN, parse_run, run_flags, true},
    {"cmd", RBX_DF_CMD, parse_cmd, no_flags, false},
    {"entrypoint", RBX_DF_ENTRYPOINT, parse_cmd, no_flags, false},
    {"shell", RBX_DF_SHELL, parse_cmd, no_flags, false},
    {"copy", RBX_DF_COPY, parse_copy, copy_flags, true},
    {"add", RBX_DF_ADD, parse_copy, add_flags, true},
    {"env", RBX_DF_ENV, parse_env, no_flags, false},
    {"arg", RBX_DF_ARG, parse_arg, no_flags, false},
    {"label", RBX_DF_LABEL, parse_env, no_flags, false},
    {"maintainer", RBX_DF_MAINTAINER, parse_maintainer, no_flags, false},
    {"workdir", RBX_DF_WORKDIR, parse_one, no_flags, false},
    {"user", RBX_DF_USER, parse_one, no_flags, false},
    {"stopsignal", RBX_DF_STOPSIGNAL, parse_one, no_flags, false},
    {"expose", RBX_DF_EXPOSE, parse_expose, no_flags, false},
    {"volume", RBX_DF_VOLUME, parse_volume, no_flags, false},
    {"healthcheck", RBX_DF_HEALTHCHECK, parse_health, health_flags, false},
    {"onbuild", RBX_DF_ONBUILD, parse_onbuild, no_flags, false},
};

static const char *const instr_upper[] = {
    [RBX_DF_FROM] = "FROM",
    [RBX_DF_RUN] = "RUN",
    [RBX_DF_CMD] = "CMD",
    [RBX_DF_ENTRYPOINT] = "ENTRYPOINT",
    [RBX_DF_SHELL] = "SHELL",
    [RBX_DF_COPY] = "COPY",
    [RBX_DF_ADD] = "ADD",
    [RBX_DF_ENV] = "ENV",
    [RBX_DF_ARG] = "ARG",
    [RBX_DF_LABEL] = "LABEL",
    [RBX_DF_MAINTAINER] = "MAINTAINER",
    [RBX_DF_WORKDIR] = "WORKDIR",
    [RBX_DF_USER] = "USER",
    [RBX_DF_STOPSIGNAL] = "STOPSIGNAL",
    [RBX_DF_EXPOSE] = "EXPOSE",
    [RBX_DF_VOLUME] = "VOLUME",
    [RBX_DF_HEALTHCHECK] = "HEALTHCHECK",
    [RBX_DF_ONBUILD] = "ONBUILD",
};

const char *rbx_df_kind_name(enum rbx_df_kind kind)
{
    return (unsigned)kind < RBX_ARRAY_SIZE(instr_upper) ? instr_upper[kind] : "?";
}

static const char *KN(const struct ictx *c)
{
    return rbx_df_kind_name(c->in->kind);
}

static struct flag_val *flag(struct ictx *c, const char *name)
{
    for (size_t i = 0; c->defs[i].name; i++)
        if (strcmp(c->defs[i].name, name) == 0)
            return c->flags[i].set ? &c->flags[i] : NULL;
    return NULL;
}

static char *flag_str(struct ictx *c, const char *name)
{
    struct flag_val *f = flag(c, name);
    return f && f->value ? rbx_xstrdup(f->value) : NULL;
}

static bool flag_bool(struct ictx *c, const char *name)
{
    struct flag_val *f = flag(c, name);
    return f && f->value && strcmp(f->value, "true") == 0;
}

static char **flag_multi(struct ictx *c, const char *name)
{
    struct flag_val *f = flag(c, name);
    return f ? rbx_strv_copy(f->values) : NULL;
}

static void flags_clear(struct ictx *c)
{
    for (size_t i = 0; i < MAX_FLAGS; i++) {
        free(c->flags[i].value);
        rbx_strv_free(c->flags[i].values);
        free(c->flags[i].offs);
    }
    memset(c->flags, 0, sizeof(c->flags));
}

/* BuildKit's BFlags: known names, no duplicates (except repeatable ones), "--x" alone only for
 * booleans, booleans only "true"/"false". */
static int parse_flags(struct parser *p, struct ictx *c, const struct flag_word *words, size_t n)
{
    const char *names[MAX_FLAGS];
    size_t n_names = 0;
    for (size_t i = 0; c->defs[i].name; i++)
        names[n_names++] = c->defs[i].name;

    for (size_t k = 0; k < n; k++) {
        const char *w = words[k].text + 2; /* after "--" */
        const char *eq = strchr(w, '=');
        _cleanup_free_ char *fname = eq ? rbx_xstrndup(w, (size_t)(eq - w)) : rbx_xstrdup(w);
        const char *value = eq ? eq + 1 : NULL;
        size_t d;
        for (d = 0; c->defs[d].name; d++)
            if (strcmp(c->defs[d].name, fname) == 0)
                break;
        if (!c->defs[d].name) {
            const char *s = suggest(fname, names, n_names);
            if (s)
                return fail_at(p, words[k].off, RBX_ERR_MALFORMED,
                               "unknown flag \"--%.80s\" for %s (did you mean --%s?)", fname, KN(c),
                               s);
            return fail_at(p, words[k].off, RBX_ERR_MALFORMED, "unknown flag \"--%.80s\" for %s",
                           fname, KN(c));
        }
        struct flag_val *v = &c->flags[d];
        if (v->set && c->defs[d].type != FLAG_MULTI)
            return fail_at(p, words[k].off, RBX_ERR_MALFORMED, "duplicate flag specified: --%s",
                           fname);
        switch (c->defs[d].type) {
        case FLAG_BOOL:
            if (value && !*value)
                return fail_at(p, words[k].off, RBX_ERR_MALFORMED, "missing a value on flag: --%s",
                               fname);
            if (!value || strcasecmp(value, "true") == 0)
                v->value = rbx_xstrdup("true");
            else if (strcasecmp(value, "false") == 0)
                v->value = rbx_xstrdup("false");
            else
                return fail_at(p, words[k].off, RBX_ERR_MALFORMED,
                               "expecting boolean value for flag --%s, not: %s", fname, value);
            break;
        case FLAG_STRING:
        case FLAG_MULTI:
            if (!value)
                return fail_at(p, words[k].off, RBX_ERR_MALFORMED, "missing a value on flag: --%s",
                               fname);
            if (c->defs[d].type == FLAG_STRING) {
                v->value = rbx_xstrdup(value);
            } else {
                v->offs = rbx_grow(v->offs, v->n_values, sizeof(size_t));
                v->offs[v->n_values] = words[k].off;
                v->values = rbx_grow(v->values, v->n_values + 1, sizeof(char *));
                v->values[v->n_values++] = rbx_xstrdup(value);
                v->values[v->n_values] = NULL;
            }
            break;
        }
        if (!v->set)
            v->off = words[k].off;
        v->set = true;
    }
    return 0;
}

/* ---- argument shapes ------------------------------------------------------------------------- */

/* parseStringsWhitespaceDelimited: split at runs of [\t\v\f\r ]. */
static char **split_ws(const char *s)
{
    struct rbx_strvec v = {0};
    size_t i = 0, len = strlen(s);
    while (i < len) {
        while (i < len && ws_sep((unsigned char)s[i]))
            i++;
        size_t j = i;
        while (j < len && !ws_sep((unsigned char)s[j]))
            j++;
        if (j > i)
            rbx_strvec_push_take(&v, rbx_xstrndup(s + i, j - i));
        i = j;
    }
    return rbx_strvec_take(&v);
}

/* BuildKit's parseWords for ENV, LABEL and ARG: blanks split words, quotes group them and are
 * kept (substitution removes them), the escape character keeps the next character. */
static char **parse_words(const char *s, char escape)
{
    enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
    struct rbx_strvec v = {0};
    struct buf w = {0};
    bool blank_ok = false;
    char quote = 0;
    size_t len = strlen(s);
    for (size_t pos = 0; pos <= len;) {
        size_t n = 0;
        uint32_t r = pos < len ? rbx_utf8_decode((const unsigned char *)s, len, pos, &n) : 0;
        if (phase == IN_SPACES) {
            if (pos == len)
                break;
            if (rbx_rune_is_space(r)) {
                pos += n;
                continue;
            }
            phase = IN_WORD;
        }
        if (pos == len) {
            if (blank_ok || w.len > 0)
                rbx_strvec_push_take(&v, w.p ? w.p : rbx_xstrdup(""));
            else
                free(w.p);
            w.p = NULL;
            break;
        }
        if (phase == IN_WORD) {
            if (rbx_rune_is_space(r)) {
                phase = IN_SPACES;
                if (blank_ok || w.len > 0)
                    rbx_strvec_push_take(&v, w.p ? w.p : rbx_xstrdup(""));
                else
                    free(w.p);
                w.p = NULL;
                w.len = w.cap = 0;
                blank_ok = false;
                pos += n;
                continue;
            }
            if (r == '\'' || r == '"') {
                quote = (char)r;
                blank_ok = true;
                phase = IN_QUOTE;
            }
            if (r == (unsigned char)escape) {
                if (pos + n == len) {
                    pos += n;
                    continue;
                }
                buf_put(&w, s + pos, n);
                pos += n;
                rbx_utf8_decode((const unsigned char *)s, len, pos, &n);
            }
            buf_put(&w, s + pos, n);
            pos += n;
            continue;
        }
        /* IN_QUOTE */
        if (r == (unsigned char)quote)
            phase = IN_WORD;
        if (r == (unsigned char)escape && quote != '\'') {
            if (pos + n == len) {
                phase = IN_WORD;
                pos += n;
                continue;
            }
            buf_put(&w, s + pos, n);
            pos += n;
            rbx_utf8_decode((const unsigned char *)s, len, pos, &n);
        }
        buf_put(&w, s + pos, n);
        pos += n;
    }
    free(w.p);
    return rbx_strvec_take(&v);
}

/* parseJSON: 1 with *out when `s` is a JSON array of strings, 0 when it is not JSON (shell form,
 * as Docker falls back), <0 when it is an array holding something else. */
static int parse_json(struct parser *p, struct ictx *c, const char *s, char ***out)
{
    if (s[0] != '[')
        return 0;
    json_error_t jerr;
    _cleanup_json_ json_t *j = json_loadb(s, strlen(s), 0, &jerr);
    if (!j || !json_is_array(j))
        return 0;
    _cleanup_strv_ char **v = rbx_xcalloc(json_array_size(j) + 1, sizeof(char *));
    size_t i;
    json_t *item;
    json_array_foreach (j, i, item) {
        if (!json_is_string(item))
            return fail_at(
                p, c->args_off, RBX_ERR_MALFORMED,
                "when using JSON array syntax, arrays must be comprised of strings only");
        v[i] = rbx_xstrndup(json_string_value(item), json_string_length(item));
    }
    *out = TAKE_PTR(v);
    return 1;
}

/* parseMaybeJSON: RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK CMD. */
static int maybe_json(struct parser *p, struct ictx *c, const char *s, struct rbx_df_command *cmd)
{
    int r = parse_json(p, c, s, &cmd->args);
    if (r < 0)
        return r;
    cmd->exec = r == 1;
    if (!cmd->exec) {
        cmd->args = rbx_xcalloc(2, sizeof(char *));
        if (*s)
            cmd->args[0] = rbx_xstrdup(s);
    }
    return 0;
}

/* parseMaybeJSONToList: COPY, ADD, VOLUME. */
static int maybe_json_list(struct parser *p, struct ictx *c, char ***words, bool *exec)
{
    int r = parse_json(p, c, c->args, words);
    if (r < 0)
        return r;
    *exec = r == 1;
    if (!*exec)
        *words = split_ws(c->args);
    return 0;
}

/* ---- instructions ---------------------------------------------------------------------------- */

static bool valid_stage_name(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return true;
}

static int parse_from(struct parser *p, struct ictx *c)
{
    _cleanup_strv_ char **w = split_ws(c->args);
    size_t n = rbx_strv_len(w);
    if (!(n == 1 || (n == 3 && strcasecmp(w[1], "as") == 0)))
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED,
                       "FROM requires either one or three arguments");
    if (n == 3) {
        _cleanup_free_ char *lower = rbx_xstrdup(w[2]);
        for (char *q = lower; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q + 32);
        if (!valid_stage_name(lower))
            return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED,
                           "invalid name for build stage: \"%s\", name can't start with a number "
                           "or contain symbols",
                           w[2]);
        c->in->from.name = TAKE_PTR(lower);
    }
    c->in->from.image = rbx_xstrdup(w[0]);
    c->in->from.platform = flag_str(c, "platform");
    return 0;
}

static int parse_run(struct parser *p, struct ictx *c)
{
    struct rbx_df_instr *in = c->in;
    int r = maybe_json(p, c, c->args, &in->run.cmd);
    if (r < 0)
        return r;
    if (!in->run.cmd.args[0])
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "RUN requires at least one argument");
    in->run.mount_specs = flag_multi(c, "mount");
    in->run.n_mounts = rbx_strv_len(in->run.mount_specs);
    if (in->run.n_mounts)
        in->run.mounts = rbx_xcalloc(in->run.n_mounts, sizeof(*in->run.mounts));
    for (size_t i = 0; i < in->run.n_mounts; i++) {
        if ((r = rbx_df_mount_parse(in->run.mount_specs[i], p->escape, NULL, NULL,
                                    &in->run.mounts[i], p->err)) < 0) {
            unsigned line, col;
            locate(p, flag(c, "mount")->offs[i], &line, &col);
            return rbx_error_wrap(p->err, "%s:%u:%u: --mount=%s", p->name, line, col,
                                  in->run.mount_specs[i]);
        }
    }
    struct flag_val *f = flag(c, "network");
    if (f) {
        if (strcmp(f->value, "default") != 0 && strcmp(f->value, "none") != 0 &&
            strcmp(f->value, "host") != 0)
            return fail_at(p, f->off, RBX_ERR_MALFORMED, "unsupported network mode \"%s\"",
                           f->value);
        in->run.network = rbx_xstrdup(f->value);
    }
    if ((f = flag(c, "security"))) {
        if (strcmp(f->value, "sandbox") != 0 && strcmp(f->value, "insecure") != 0)
            return fail_at(p, f->off, RBX_ERR_MALFORMED, "unsupported security mode \"%s\"",
                           f->value);
        in->run.security = rbx_xstrdup(f->value);
    }
    in->run.devices = flag_multi(c, "device");
    return 0;
}

static int parse_cmd(struct parser *p, struct ictx *c)
{
    struct rbx_df_command *cmd = &c->in->cmd;
    int r = maybe_json(p, c, c->args, cmd);
    if (r < 0)
        return r;
    if (c->in->kind == RBX_DF_SHELL) {
        if (!cmd->args[0])
            return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "SHELL requires at least one argument");
        if (!cmd->exec)
            return fail_at(p, c->args_off, RBX_ERR_MALFORMED,
                           "SHELL requires the arguments to be in JSON form");
    } else if (!cmd->args[0]) {
        cmd->exec = true; /* "CMD" alone: an empty command */
    }
    return 0;
}

/* Octal up to 07777, or the symbolic form ("u+x", "go=rx,u=rwx"). */
static bool valid_chmod(const char *s)
{
    if (!*s)
        return false;
    if (strspn(s, "01234567") == strlen(s))
        return strlen(s) <= 8 && strtoul(s, NULL, 8) <= 07777;
    for (const char *q = s;;) {
        q += strspn(q, "ugoa");
        if (!*q || !strchr("+-=", *q))
            return false;
        while (*q && strchr("+-=", *q)) {
            q++;
            if (*q && strchr("ugo", *q))
                q++;
            else
                q += strspn(q, "rwxXst");
        }
        if (!*q)
            return true;
        if (*q != ',')
            return false;
        q++;
    }
}

static int parse_copy(struct parser *p, struct ictx *c)
{
    struct rbx_df_instr *in = c->in;
    int r = maybe_json_list(p, c, &in->copy.srcs, &in->copy.exec);
    if (r < 0)
        return r;
    in->copy.from = flag_str(c, "from");
    in->copy.chown = flag_str(c, "chown");
    in->copy.chmod = flag_str(c, "chmod");
    in->copy.link = flag_bool(c, "link");
    in->copy.excludes = flag_multi(c, "exclude");
    in->copy.parents = flag_bool(c, "parents");
    in->copy.checksum = flag_str(c, "checksum");
    in->copy.keep_git_dir = flag_bool(c, "keep-git-dir");
    in->copy.unpack_set = flag(c, "unpack") != NULL;
    in->copy.unpack = flag_bool(c, "unpack");
    struct flag_val *f = flag(c, "chmod");
    if (f && !strchr(f->value, '$') && !valid_chmod(f->value))
        return fail_at(p, f->off, RBX_ERR_MALFORMED,
                       "invalid chmod parameter: '%s'. it should be octal string and between 0 "
                       "and 07777",
                       f->value);
    if (rbx_strv_len(in->copy.srcs) < 2)
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "%s requires at least two arguments", KN(c));
    /* the destination is the last word; heredoc sources are matched once bodies are read */
    size_t n = rbx_strv_len(in->copy.srcs);
    in->copy.dest = in->copy.srcs[n - 1];
    in->copy.srcs[n - 1] = NULL;
    return 0;
}

/* ENV and LABEL: "K=V K2=V2" or the legacy "K value with spaces". */
static int parse_env(struct parser *p, struct ictx *c)
{
    struct rbx_df_instr *in = c->in;
    _cleanup_strv_ char **w = parse_words(c->args, p->escape);
    if (!w[0])
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "%s requires at least one argument", KN(c));
    if (!strchr(w[0], '=')) {
        const char *s = c->args;
        size_t k = 0;
        while (s[k] && !ws_sep((unsigned char)s[k]))
            k++;
        size_t v = k;
        while (s[v] && ws_sep((unsigned char)s[v]))
            v++;
        if (k == strlen(s))
            return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "%s must have two arguments", KN(c));
        in->kv.pairs = rbx_xcalloc(1, sizeof(*in->kv.pairs));
        in->kv.n_pairs = 1;
        in->kv.pairs[0].key = rbx_xstrndup(s, k);
        in->kv.pairs[0].value = rbx_xstrdup(s + v);
        return 0;
    }
    size_t n = rbx_strv_len(w);
    in->kv.pairs = rbx_xcalloc(n, sizeof(*in->kv.pairs));
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(w[i], '=');
        if (!eq)
            return fail_at(p, c->args_off, RBX_ERR_MALFORMED,
                           "can't find = in \"%s\": %s arguments must be of the form name=value",
                           w[i], KN(c));
        if (eq == w[i])
            return fail_at(p, c->args_off, RBX_ERR_MALFORMED, "%s names can not be blank", KN(c));
        in->kv.pairs[i].key = rbx_xstrndup(w[i], (size_t)(eq - w[i]));
        in->kv.pairs[i].value = rbx_xstrdup(eq + 1);
        in->kv.n_pairs++;
    }
    return 0;
}

static int parse_arg(struct parser *p, struct ictx *c)
{
    struct rbx_df_instr *in = c->in;
    _cleanup_strv_ char **w = parse_words(c->args, p->escape);
    size_t n = rbx_strv_len(w);
    if (n == 0)
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "ARG requires at least one argument");
    in->kv.pairs = rbx_xcalloc(n, sizeof(*in->kv.pairs));
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(w[i], '=');
        if (eq == w[i])
            return fail_at(p, c->args_off, RBX_ERR_MALFORMED, "ARG names can not be blank");
        in->kv.pairs[i].key = eq ? rbx_xstrndup(w[i], (size_t)(eq - w[i])) : rbx_xstrdup(w[i]);
        in->kv.pairs[i].value = eq ? rbx_xstrdup(eq + 1) : NULL;
        in->kv.n_pairs++;
    }
    return 0;
}

static int parse_maintainer(struct parser *p, struct ictx *c)
{
    if (!*c->args)
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "MAINTAINER requires exactly one argument");
    c->in->kv.pairs = rbx_xcalloc(1, sizeof(*c->in->kv.pairs));
    c->in->kv.n_pairs = 1;
    c->in->kv.pairs[0].key = rbx_xstrdup("maintainer");
    c->in->kv.pairs[0].value = rbx_xstrdup(c->args);
    return 0;
}

/* WORKDIR, USER, STOPSIGNAL: the rest of the line is one argument. */
static int parse_one(struct parser *p, struct ictx *c)
{
    if (!*c->args)
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "%s requires exactly one argument", KN(c));
    c->in->arg = rbx_xstrdup(c->args);
    return 0;
}

static int cmp_bytes(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_expose(struct parser *p, struct ictx *c)
{
    c->in->list.words = split_ws(c->args);
    size_t n = rbx_strv_len(c->in->list.words);
    if (n == 0)
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "EXPOSE requires at least one argument");
    qsort(c->in->list.words, n, sizeof(char *), cmp_bytes);
    return 0;
}

static int parse_volume(struct parser *p, struct ictx *c)
{
    int r = maybe_json_list(p, c, &c->in->list.words, &c->in->list.exec);
    if (r < 0)
        return r;
    char **w = c->in->list.words;
    if (!w[0])
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "VOLUME requires at least one argument");
    for (size_t i = 0; w[i]; i++) {
        size_t l = lead_space(w[i], strlen(w[i]));
        size_t len = trim_right_len(w[i] + l, strlen(w[i] + l));
        if (len == 0)
            return fail_at(p, c->args_off, RBX_ERR_MALFORMED,
                           "VOLUME specified can not be an empty string");
        char *t = rbx_xstrndup(w[i] + l, len);
        free(w[i]);
        w[i] = t;
    }
    return 0;
}

/* Go's time.ParseDuration, into nanoseconds. */
static int parse_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        {"ns", 1},       {"us", 1000},         {"\xc2\xb5s", 1000},   {"\xce\xbcs", 1000},
        {"ms", 1000000}, {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull}};
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (!*s)
        return -EINVAL;
    uint64_t total = 0;
    while (*s) {
        uint64_t whole = 0, frac = 0, scale = 1;
        bool digits = false;
        while (*s >= '0' && *s <= '9') {
            if (whole > (UINT64_MAX - 9) / 10)
                return -ERANGE;
            whole = whole * 10 + (uint64_t)(*s++ - '0');
            digits = true;
        }
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9') {
                if (scale < 1000000000000000000ull) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                }
                s++;
                digits = true;
            }
        }
        if (!digits)
            return -EINVAL;
        /* the unit is everything up to the next digit or '.' */
        size_t ulen = 0;
        while (s[ulen] && s[ulen] != '.' && !(s[ulen] >= '0' && s[ulen] <= '9'))
            ulen++;
        size_t u;
        for (u = 0; u < RBX_ARRAY_SIZE(units); u++)
            if (strlen(units[u].unit) == ulen && strncmp(s, units[u].unit, ulen) == 0)
                break;
        if (u == RBX_ARRAY_SIZE(units))
            return -EINVAL;
        s += ulen;
        uint64_t ns = units[u].ns;
        if (whole > (uint64_t)INT64_MAX / ns)
            return -ERANGE;
        uint64_t v =
            whole * ns + (uint64_t)((long double)frac * (long double)ns / (long double)scale);
        if (v > (uint64_t)INT64_MAX - total)
            return -ERANGE;
        total += v;
    }
    *out = neg ? -(int64_t)total : (int64_t)total;
    return 0;
}

static int health_duration(struct parser *p, struct ictx *c, const char *name, uint64_t *out)
{
    struct flag_val *f = flag(c, name);
    int64_t ns;
    if (!f || !*f->value)
        return 0;
    if (parse_duration(f->value, &ns) < 0)
        return fail_at(p, f->off, RBX_ERR_MALFORMED, "invalid duration \"%s\" for --%s", f->value,
                       name);
    if (ns < 1000000)
        return fail_at(p, f->off, RBX_ERR_MALFORMED, "--%s cannot be less than 1ms", name);
    *out = (uint64_t)ns;
    return 0;
}

static int parse_health(struct parser *p, struct ictx *c)
{
    struct rbx_df_instr *in = c->in;
    const char *s = c->args;
    size_t sep = 0;
    while (s[sep] && !ascii_space((unsigned char)s[sep]))
        sep++;
    if (sep == 0)
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED,
                       "HEALTHCHECK requires at least one argument");
    size_t next = sep;
    while (s[next] && ascii_space((unsigned char)s[next]))
        next++;
    _cleanup_free_ char *type = rbx_xstrndup(s, sep);
    for (char *q = type; *q; q++)
        if (*q >= 'a' && *q <= 'z')
            *q = (char)(*q - 32);
    if (strcmp(type, "NONE") == 0) {
        if (s[next])
            return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "HEALTHCHECK NONE takes no arguments");
        in->health.none = true;
        return 0;
    }
    if (strcmp(type, "CMD") != 0)
        return fail_at(p, c->args_off, RBX_ERR_MALFORMED,
                       "unknown type \"%s\" in HEALTHCHECK (try CMD)", type);
    size_t saved = c->args_off;
    c->args_off += next;
    int r = maybe_json(p, c, s + next, &in->health.cmd);
    c->args_off = saved;
    if (r < 0)
        return r;
    if (!in->health.cmd.args[0])
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "missing command after HEALTHCHECK CMD");
    if ((r = health_duration(p, c, "interval", &in->health.interval_ns)) < 0 ||
        (r = health_duration(p, c, "timeout", &in->health.timeout_ns)) < 0 ||
        (r = health_duration(p, c, "start-period", &in->health.start_period_ns)) < 0 ||
        (r = health_duration(p, c, "start-interval", &in->health.start_interval_ns)) < 0)
        return r;
    struct flag_val *f = flag(c, "retries");
    if (f && *f->value) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(f->value, &end, 10);
        if (errno || end == f->value || *end || v > INT32_MAX || v < INT32_MIN)
            return fail_at(p, f->off, RBX_ERR_MALFORMED, "invalid value \"%s\" for --retries",
                           f->value);
        if (v < 1)
            return fail_at(p, f->off, RBX_ERR_MALFORMED, "--retries must be at least 1 (not %lld)",
                           v);
        in->health.retries = (unsigned)v;
    }
    return 0;
}

static int build_instr(struct parser *p, size_t off, size_t len, bool trigger,
                       struct rbx_df_instr *in);

static int parse_onbuild(struct parser *p, struct ictx *c)
{
    if (!*c->args)
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "ONBUILD requires at least one argument");
    struct rbx_df_instr *t = rbx_xcalloc(1, sizeof(*t));
    c->in->onbuild.trigger = t;
    return build_instr(p, c->args_off, strlen(c->args), true, t);
}

/* ---- one logical line into one instruction --------------------------------------------------- */

static const struct instr_def *find_def(const char *word)
{
    for (size_t i = 0; i < RBX_ARRAY_SIZE(instr_defs); i++)
        if (strcasecmp(instr_defs[i].name, word) == 0)
            return &instr_defs[i];
    return NULL;
}

static int build_instr(struct parser *p, size_t off, size_t len, bool trigger,
                       struct rbx_df_instr *in)
{
    const char *text = p->text.p + off;
    if (++p->n_instrs > RBX_DF_MAX_INSTRUCTIONS)
        return fail_at(p, off, RBX_ERR_LIMIT, "more than %u instructions", RBX_DF_MAX_INSTRUCTIONS);
    /* TrimSpace, then the instruction word up to the first [\t\v\f\r ] */
    size_t lead = lead_space(text, len);
    size_t end = trim_right_len(text, len);
    size_t w0 = lead, w1 = lead;
    while (w1 < end && !ws_sep((unsigned char)text[w1]))
        w1++;
    _cleanup_free_ char *word = rbx_xstrndup(text + w0, w1 - w0);
    unsigned line, col;
    locate(p, off + w0, &line, &col);
    in->line = line;
    in->column = col;
    in->original = rbx_xstrndup(text + lead, end - lead);

    const struct instr_def *def = find_def(word);
    if (!def) {
        const char *names[RBX_ARRAY_SIZE(instr_defs)];
        for (size_t i = 0; i < RBX_ARRAY_SIZE(instr_defs); i++)
            names[i] = instr_upper[instr_defs[i].kind];
        const char *s = suggest(word, names, RBX_ARRAY_SIZE(names));
        if (s)
            return fail_at(p, off + w0, RBX_ERR_MALFORMED,
                           "unknown instruction \"%.80s\" (did you mean %s?)", word, s);
        return fail_at(p, off + w0, RBX_ERR_MALFORMED, "unknown instruction \"%.80s\"", word);
    }
    in->kind = def->kind;
    if (trigger) {
        if (def->kind == RBX_DF_ONBUILD)
            return fail_at(p, off + w0, RBX_ERR_MALFORMED,
                           "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (def->kind == RBX_DF_FROM || def->kind == RBX_DF_MAINTAINER)
            return fail_at(p, off + w0, RBX_ERR_MALFORMED, "%s isn't allowed as an ONBUILD trigger",
                           instr_upper[def->kind]);
    }

    size_t rest = w1;
    while (rest < end && ws_sep((unsigned char)text[rest]))
        rest++;
    struct flag_word *fw = NULL;
    size_t n_fw = 0;
    size_t a = rest + extract_flags(text + rest, end - rest, off + rest, &fw, &n_fw);
    size_t a_end = end;
    a += lead_space(text + a, a_end - a);
    _cleanup_free_ char *args = rbx_xstrndup(text + a, a_end - a);

    struct ictx c = {.in = in, .defs = def->flags, .args = args, .args_off = off + a};
    int r = parse_flags(p, &c, fw, n_fw);
    for (size_t i = 0; i < n_fw; i++)
        free(fw[i].text);
    free(fw);
    if (r >= 0)
        r = def->parse(p, &c);
    flags_clear(&c);
    return r;
}

/* ---- heredocs -------------------------------------------------------------------------------- */

/* A word of the form [n]<<[-]NAME (BuildKit's ^(\d*)<<(-?)\s*([^<]*)$): true with *h filled.
 * A name that does not lex is no heredoc (BuildKit's MustParseHeredoc). */
static bool heredoc_word(const char *w, struct rbx_df_heredoc *h)
{
    const char *q = w;
    while (*q >= '0' && *q <= '9')
        q++;
    size_t digits = (size_t)(q - w);
    if (q[0] != '<' || q[1] != '<')
        return false;
    q += 2;
    bool chomp = *q == '-';
    if (chomp)
        q++;
    while (re_space(*q))
        q++;
    if (!*q || strchr(q, '<'))
        return false;

    static const struct rbx_df_lex_opts plain = {.skip_unset = true};
    static const struct rbx_df_lex_opts raw = {.raw_quotes = true, .skip_unset = true};
    _cleanup_strv_ char **words = NULL, **raw_words = NULL;
    if (rbx_df_lex(q, '\\', &plain, NULL, NULL, NULL, &words, NULL) < 0 ||
        rbx_df_lex(q, '\\', &raw, NULL, NULL, NULL, &raw_words, NULL) < 0)
        return false;
    if (rbx_strv_len(words) != 1 || rbx_strv_len(raw_words) != 1)
        return false;
    size_t quotes = 0, raw_quotes = 0;
    for (const char *s = words[0]; *s; s++)
        quotes += *s == '\'' || *s == '"';
    for (const char *s = raw_words[0]; *s; s++)
        raw_quotes += *s == '\'' || *s == '"';
    unsigned long fd = 0;
    if (digits > 0 && digits < 10)
        fd = strtoul(w, NULL, 10);
    *h = (struct rbx_df_heredoc){
        .name = TAKE_PTR(words[0]),
        .fd = (unsigned)fd,
        .expand = quotes == raw_quotes,
        .chomp = chomp,
    };
    return true;
}

/* The heredocs named on the instruction's line, in order, with their bodies read from the
 * lines that follow. */
static int read_heredocs(struct parser *p, struct rbx_df_instr *in, size_t off, size_t len)
{
    static const struct rbx_df_lex_opts raw = {
        .raw_quotes = true, .raw_escapes = true, .skip_unset = true};
    _cleanup_free_ char *line = rbx_xstrndup(p->text.p + off, len);
    _cleanup_strv_ char **words = NULL;
    struct rbx_error *lerr = NULL;
    if (rbx_df_lex(line, '\\', &raw, NULL, NULL, NULL, &words, &lerr) < 0) {
        /* BuildKit ignores a line that does not lex: it has no heredocs */
        rbx_error_free(lerr);
        return 0;
    }
    size_t search = 0;
    for (size_t i = 0; words[i]; i++) {
        const char *at = strstr(line + search, words[i]);
        size_t woff = at ? (size_t)(at - line) : search;
        if (at)
            search = woff + strlen(words[i]);
        struct rbx_df_heredoc h = {0};
        if (!heredoc_word(words[i], &h))
            continue;
        int r;
        if (in->n_heredocs == RBX_DF_MAX_HEREDOCS) {
            free(h.name);
            return fail_at(p, off + woff, RBX_ERR_LIMIT, "more than %u heredocs on one line",
                           RBX_DF_MAX_HEREDOCS);
        }
        in->heredocs = rbx_xrealloc(in->heredocs, (in->n_heredocs + 1) * sizeof(h));
        in->heredocs[in->n_heredocs++] = h;
        struct rbx_df_heredoc *hd = &in->heredocs[in->n_heredocs - 1];
        struct buf body = {0};
        for (;;) {
            const char *l;
            size_t n;
            r = next_line(p, &l, &n);
            if (r < 0) {
                free(body.p);
                return r;
            }
            if (r == 0) {
                free(body.p);
                return fail_at(p, off + woff, RBX_ERR_MALFORMED, "unterminated heredoc \"%s\"",
                               hd->name);
            }
            size_t t = trim_newline(l, n), s = 0;
            if (hd->chomp)
                while (s < t && l[s] == '\t')
                    s++;
            if (t - s == strlen(hd->name) && memcmp(l + s, hd->name, t - s) == 0)
                break;
            if (body.len + n > RBX_DF_MAX_HEREDOC) {
                free(body.p);
                return fail_at(p, off + woff, RBX_ERR_LIMIT, "heredoc \"%s\" larger than %u bytes",
                               hd->name, RBX_DF_MAX_HEREDOC);
            }
            buf_put(&body, l, n);
        }
        hd->content = body.p ? body.p : rbx_xstrdup("");
    }
    return 0;
}

static bool can_have_heredocs(const struct rbx_df_instr *in)
{
    if (in->kind == RBX_DF_ONBUILD)
        in = in->onbuild.trigger;
    switch (in->kind) {
    case RBX_DF_RUN: return !in->run.cmd.exec;
    case RBX_DF_COPY:
    case RBX_DF_ADD: return !in->copy.exec;
    default: return false;
    }
}

/* After the bodies are read: COPY/ADD sources written as heredocs become inline files. */
static int finish_copy(struct parser *p, struct rbx_df_instr *in)
{
    struct rbx_df_heredoc h = {0};
    if (heredoc_word(in->copy.dest, &h)) {
        free(h.name);
        return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED,
                       "%s cannot accept a heredoc as a destination", rbx_df_kind_name(in->kind));
    }
    size_t k = 0;
    for (size_t i = 0; in->copy.srcs[i]; i++) {
        bool inline_file = false;
        if (heredoc_word(in->copy.srcs[i], &h)) {
            for (size_t j = 0; j < in->n_heredocs; j++)
                inline_file |= strcmp(in->heredocs[j].name, h.name) == 0;
            free(h.name);
        }
        if (inline_file)
            free(in->copy.srcs[i]);
        else
            in->copy.srcs[k++] = in->copy.srcs[i];
    }
    in->copy.srcs[k] = NULL;
    return 0;
}

/* ---- the file -------------------------------------------------------------------------------- */

static void seg_push(struct parser *p, unsigned line, unsigned col)
{
    if (p->n_segs == p->cap_segs) {
        p->cap_segs = p->cap_segs ? p->cap_segs * 2 : 8;
        p->segs = rbx_xrealloc(p->segs, p->cap_segs * sizeof(*p->segs));
    }
    p->segs[p->n_segs++] = (struct seg){p->text.len, line, col};
}

static int add_instr(struct parser *p, struct rbx_df_instr *in)
{
    struct rbx_dockerfile *df = p->df;
    if (in->kind == RBX_DF_FROM) {
        for (size_t i = 0; in->from.name && i < df->n_stages; i++) {
            const char *other = df->stages[i].from.from.name;
            if (other && strcmp(other, in->from.name) == 0)
                return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "duplicate stage name \"%s\"",
                               in->from.name);
        }
        df->stages = rbx_grow(df->stages, df->n_stages, sizeof(*df->stages));
        df->stages[df->n_stages++] = (struct rbx_df_stage){.from = *in};
        return 0;
    }
    if (df->n_stages == 0) {
        if (in->kind != RBX_DF_ARG)
            return fail_at(p, AT_INSTR, RBX_ERR_MALFORMED, "no FROM instruction before %s",
                           rbx_df_kind_name(in->kind));
        df->global_args = rbx_grow(df->global_args, df->n_global_args, sizeof(*df->global_args));
        df->global_args[df->n_global_args++] = *in;
        return 0;
    }
    struct rbx_df_stage *st = &df->stages[df->n_stages - 1];
    st->instrs = rbx_grow(st->instrs, st->n_instrs, sizeof(*st->instrs));
    st->instrs[st->n_instrs++] = *in;
    return 0;
}

static int parse_file(struct parser *p)
{
    const char *l;
    size_t n;
    int r;
    while ((r = next_line(p, &l, &n)) > 0) {
        unsigned start = p->lineno;
        size_t t = trim_newline(l, n);
        size_t lead = lead_space(l, t);
        if ((r = directive(p, l + lead, t - lead, (unsigned)lead + 1)) < 0)
            return r;
        if (lead < t && l[lead] == '#')
            continue; /* a comment (or a directive) */
        bool more;
        size_t keep = trim_continuation(l + lead, t - lead, p->escape, &more);
        if (!more && keep == 0)
            continue;

        p->text.len = 0;
        if (p->text.p)
            p->text.p[0] = '\0';
        p->n_segs = 0;
        p->first_line = start;
        p->first_col = (unsigned)lead + 1;
        seg_push(p, start, (unsigned)lead + 1);
        buf_put(&p->text, l + lead, keep);
        while (more) {
            if ((r = next_line(p, &l, &n)) < 0)
                return r;
            if (r == 0)
                break;
            t = trim_newline(l, n);
            if ((r = directive(p, l, t, 1)) < 0)
                return r;
            if (is_comment(l, t) || lead_space(l, t) == t)
                continue;
            keep = trim_continuation(l, t, p->escape, &more);
            seg_push(p, p->lineno, 1);
            buf_put(&p->text, l, keep);
        }

        struct rbx_df_instr in = {0};
        r = build_instr(p, 0, p->text.len, false, &in);
        if (r >= 0 && can_have_heredocs(&in)) {
            struct rbx_df_instr *target = in.kind == RBX_DF_ONBUILD ? in.onbuild.trigger : &in;
            r = read_heredocs(p, target, 0, p->text.len);
        }
        if (r >= 0) {
            struct rbx_df_instr *target = in.kind == RBX_DF_ONBUILD ? in.onbuild.trigger : &in;
            if (target->kind == RBX_DF_COPY || target->kind == RBX_DF_ADD)
                r = finish_copy(p, target);
        }
        if (r >= 0 && in.kind == RBX_DF_ONBUILD) {
            /* the trigger as Docker stores it: the text after ONBUILD, then each heredoc */
            struct buf e = {0};
            const char *o = in.original + strlen("ONBUILD");
            o += lead_space(o, strlen(o));
            buf_put(&e, o, strlen(o));
            const struct rbx_df_instr *tr = in.onbuild.trigger;
            for (size_t i = 0; i < tr->n_heredocs; i++) {
                buf_put(&e, "\n", 1);
                buf_put(&e, tr->heredocs[i].content, strlen(tr->heredocs[i].content));
                buf_put(&e, tr->heredocs[i].name, strlen(tr->heredocs[i].name));
            }
            in.onbuild.expression = e.p;
        }
        in.end_line = p->lineno;
        if (in.kind == RBX_DF_ONBUILD && in.onbuild.trigger)
            in.onbuild.trigger->end_line = p->lineno;
        if (r >= 0)
            r = add_instr(p, &in);
        if (r < 0) {
            rbx_df_instr_clear(&in);
            return r;
        }
    }
    if (r < 0)
        return r;
    if (p->df->n_stages == 0) {
        if (p->df->n_global_args == 0)
            return fail_line(p, p->lineno ? p->lineno : 1, 1, RBX_ERR_MALFORMED,
                             "file with no instructions");
        return fail_line(p, p->lineno, 1, RBX_ERR_MALFORMED,
                         "no FROM instruction: the Dockerfile has no stage to build");
    }
    return 0;
}

int rbx_dockerfile_parse(const char *buf, size_t len, const char *name, struct rbx_dockerfile **out,
                         struct rbx_error **err)
{
    _cleanup_(rbx_dockerfile_freep) struct rbx_dockerfile *df = rbx_xcalloc(1, sizeof(*df));
    df->name = rbx_xstrdup(name ? name : "Dockerfile");
    df->escape = '\\';
    if (len > RBX_DF_MAX_SIZE) {
        char sz[32];
        return rbx_error_set(err, RBX_ERR_LIMIT, EFBIG,
                             "%s: file is %s, larger than the %u MiB limit", df->name,
                             rbx_format_size(len, sz, sizeof(sz)), RBX_DF_MAX_SIZE >> 20);
    }
    struct parser p = {
        .name = df->name,
        .buf = buf,
        .len = len,
        .escape = '\\',
        .df = df,
        .err = err,
    };
    int r = parse_file(&p);
    free(p.text.p);
    free(p.segs);
    if (r < 0)
        return r;
    df->escape = p.escape;
    *out = TAKE_PTR(df);
    return 0;
}

ssize_t rbx_dockerfile_find_stage(const struct rbx_dockerfile *df, const char *ref)
{
    if (!ref || !*ref)
        return -1;
    for (size_t i = df->n_stages; i-- > 0;) {
        const char *n = df->stages[i].from.from.name;
        if (n && strcasecmp(n, ref) == 0)
            return (ssize_t)i;
    }
    if (strspn(ref, "0123456789") == strlen(ref) && strlen(ref) < 10) {
        unsigned long i = strtoul(ref, NULL, 10);
        if (i < df->n_stages)
            return (ssize_t)i;
    }
    return -1;
}

/* ---- RUN --mount ----------------------------------------------------------------------------- */

int rbx_df_csv_split(const char *s, char ***fields, struct rbx_error **err)
{
    struct rbx_strvec v = {0};
    if (!*s)
        return rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "empty value");
    int r = 0;
    const char *q = s;
    for (;;) {
        struct buf f = {0};
        if (*q == '"') {
            q++;
            for (;;) {
                if (!*q) {
                    free(f.p);
                    r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                      "extraneous or missing \" in quoted-field");
                    goto fail;
                }
                if (*q == '"') {
                    if (q[1] == '"') {
                        buf_put(&f, "\"", 1);
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                buf_put(&f, q++, 1);
            }
            if (*q && *q != ',') {
                free(f.p);
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                  "extraneous or missing \" in quoted-field");
                goto fail;
            }
        } else {
            size_t n = strcspn(q, ",\"\r\n");
            if (q[n] == '"') {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "bare \" in non-quoted field");
                goto fail;
            }
            buf_put(&f, q, n);
            q += n;
            if (*q == '\r' || *q == '\n')
                q += strlen(q); /* one record: the rest is another line */
        }
        rbx_strvec_push_take(&v, f.p ? f.p : rbx_xstrdup(""));
        if (*q != ',')
            break;
        q++;
    }
    *fields = rbx_strvec_take(&v);
    return 0;
fail:
    rbx_strv_free(v.v);
    return r;
}

void rbx_df_mount_clear(struct rbx_df_mount *m)
{
    free(m->from);
    free(m->source);
    free(m->target);
    free(m->id);
    free(m->sharing);
    free(m->env);
    free(m->size);
    memset(m, 0, sizeof(*m));
}

static const char *const mount_types[] = {
    [RBX_DF_MOUNT_BIND] = "bind",   [RBX_DF_MOUNT_CACHE] = "cache",
    [RBX_DF_MOUNT_TMPFS] = "tmpfs", [RBX_DF_MOUNT_SECRET] = "secret",
    [RBX_DF_MOUNT_SSH] = "ssh",
};

static int parse_uint(const char *s, int base, unsigned *out)
{
    char *end = NULL;
    if (!*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end || v > UINT32_MAX)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int rbx_df_mount_parse(const char *spec, char escape, rbx_df_lookup_fn lookup, void *userdata,
                       struct rbx_df_mount *out, struct rbx_error **err)
{
    static const char *const keys[] = {"type",      "from",    "source",   "target",     "readonly",
                                       "id",        "sharing", "required", "mode",       "uid",
                                       "gid",       "src",     "dst",      "ro",         "rw",
                                       "readwrite", "size",    "env",      "destination"};
    _cleanup_strv_ char **fields = NULL;
    struct rbx_df_mount m = {.type = RBX_DF_MOUNT_BIND};
    bool ro_auto = true, deferred = false;
    int r = rbx_df_csv_split(spec, &fields, err);
    if (r < 0)
        return r;

    for (size_t i = 0; fields[i]; i++) {
        const char *field = fields[i];
        const char *eq = strchr(field, '=');
        _cleanup_free_ char *key =
            eq ? rbx_xstrndup(field, (size_t)(eq - field)) : rbx_xstrdup(field);
        for (char *q = key; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q + 32);
        /* with the type still a variable, type-dependent keys are checked when the step runs */
        bool secretish = deferred || m.type == RBX_DF_MOUNT_SECRET || m.type == RBX_DF_MOUNT_SSH;
        if (!eq) {
            if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0) {
                m.readonly = true;
                ro_auto = false;
                continue;
            }
            if (strcmp(key, "readwrite") == 0 || strcmp(key, "rw") == 0) {
                m.readonly = false;
                ro_auto = false;
                continue;
            }
            if (strcmp(key, "required") == 0) {
                if (!secretish) {
                    r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                      "unexpected key '%s' for mount type '%s'", key,
                                      mount_types[m.type]);
                    goto fail;
                }
                m.required = true;
                continue;
            }
            r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                              "invalid field '%s' must be a key=value pair", field);
            goto fail;
        }
        _cleanup_free_ char *value = NULL;
        bool literal = true;
        if (strcmp(key, "from") == 0) {
            const char *d = strchr(eq + 1, '$');
            if (d && d[1]) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                  "'from' doesn't support variable expansion, define alias stage "
                                  "instead");
                goto fail;
            }
            value = rbx_xstrdup(eq + 1);
        } else if (lookup) {
            if ((r = rbx_df_expand_word(eq + 1, escape, lookup, userdata, &value, err)) < 0)
                goto fail;
        } else {
            value = rbx_xstrdup(eq + 1);
            literal = !strchr(value, '$');
        }

        char **slot = NULL;
        if (strcmp(key, "type") == 0) {
            if (!literal) {
                deferred = true;
                continue;
            }
            size_t t;
            for (t = 0; t < RBX_ARRAY_SIZE(mount_types); t++)
                if (strcasecmp(value, mount_types[t]) == 0)
                    break;
            if (t == RBX_ARRAY_SIZE(mount_types)) {
                const char *s = suggest(value, mount_types, RBX_ARRAY_SIZE(mount_types));
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                  "unsupported mount type \"%s\"%s%s%s", value,
                                  s ? " (did you mean " : "", s ? s : "", s ? "?)" : "");
                goto fail;
            }
            m.type = (enum rbx_df_mount_type)t;
        } else if (strcmp(key, "from") == 0) {
            slot = &m.from;
        } else if (strcmp(key, "source") == 0 || strcmp(key, "src") == 0) {
            slot = &m.source;
        } else if (strcmp(key, "target") == 0 || strcmp(key, "dst") == 0 ||
                   strcmp(key, "destination") == 0) {
            slot = &m.target;
        } else if (strcmp(key, "id") == 0) {
            slot = &m.id;
        } else if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0 ||
                   strcmp(key, "readwrite") == 0 || strcmp(key, "rw") == 0 ||
                   strcmp(key, "required") == 0) {
            bool b = false;
            if (strcmp(key, "required") == 0 && !secretish) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                  "unexpected key '%s' for mount type '%s'", key,
                                  mount_types[m.type]);
                goto fail;
            }
            if (!literal)
                continue;
            if (parse_bool(value, &b) < 0) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid value for %s: %s", key,
                                  value);
                goto fail;
            }
            if (strcmp(key, "required") == 0) {
                m.required = b;
            } else {
                bool is_ro = strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0;
                m.readonly = is_ro ? b : !b;
                ro_auto = false;
            }
        } else if (strcmp(key, "sharing") == 0) {
            if (literal && strcasecmp(value, "shared") != 0 && strcasecmp(value, "private") != 0 &&
                strcasecmp(value, "locked") != 0) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                  "unsupported sharing value \"%s\"", value);
                goto fail;
            }
            for (char *q = value; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    *q = (char)(*q + 32);
            slot = &m.sharing;
        } else if (strcmp(key, "mode") == 0 || strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
            bool is_mode = key[0] == 'm';
            unsigned *dst = is_mode ? &m.mode : key[0] == 'u' ? &m.uid : &m.gid;
            bool *has = is_mode ? &m.has_mode : key[0] == 'u' ? &m.has_uid : &m.has_gid;
            *has = true;
            if (literal && parse_uint(value, is_mode ? 8 : 10, dst) < 0) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid value %s for %s", value,
                                  key);
                goto fail;
            }
        } else if (strcmp(key, "size") == 0) {
            uint64_t sz;
            if (!deferred && m.type != RBX_DF_MOUNT_TMPFS) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                  "unexpected key '%s' for mount type '%s'", key,
                                  mount_types[m.type]);
                goto fail;
            }
            if (literal && rbx_parse_size(value, &sz) < 0) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid value %s for size",
                                  value);
                goto fail;
            }
            slot = &m.size;
        } else if (strcmp(key, "env") == 0) {
            if (!deferred && m.type != RBX_DF_MOUNT_SECRET) {
                r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                                  "unexpected key '%s' for mount type '%s'", key,
                                  mount_types[m.type]);
                goto fail;
            }
            slot = &m.env;
        } else {
            const char *s = suggest(key, keys, RBX_ARRAY_SIZE(keys));
            r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "unexpected key '%s' in '%s'%s%s%s",
                              key, field, s ? " (did you mean " : "", s ? s : "", s ? "?)" : "");
            goto fail;
        }
        if (slot) {
            free(*slot);
            *slot = TAKE_PTR(value);
        }
    }

    if (deferred)
        goto done; /* the type is a variable: checked when the step runs */
    bool file_info =
        m.type == RBX_DF_MOUNT_SECRET || m.type == RBX_DF_MOUNT_SSH || m.type == RBX_DF_MOUNT_CACHE;
    const char *what = m.has_mode ? "mode" : m.has_uid ? "uid" : m.has_gid ? "gid" : NULL;
    if (what && !file_info) {
        r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "%s not allowed for \"%s\" type mounts",
                          what, mount_types[m.type]);
        goto fail;
    }
    if (m.sharing && m.type != RBX_DF_MOUNT_CACHE) {
        r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "invalid cache sharing set for %s mount",
                          mount_types[m.type]);
        goto fail;
    }
    if (m.type == RBX_DF_MOUNT_SECRET) {
        if (m.from) {
            r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                              "secret mount should not have a from");
            goto fail;
        }
        if (!m.source && !m.target && !m.id && !m.env) {
            r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL,
                              "invalid secret mount. one of source, target required");
            goto fail;
        }
        if (m.source && m.id) {
            r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "both source and id can't be set");
            goto fail;
        }
    }
    if ((m.type == RBX_DF_MOUNT_BIND || m.type == RBX_DF_MOUNT_CACHE ||
         m.type == RBX_DF_MOUNT_TMPFS) &&
        (!m.target || !*m.target)) {
        r = rbx_error_set(err, RBX_ERR_MALFORMED, EINVAL, "mount target is required for %s mounts",
                          mount_types[m.type]);
        goto fail;
    }
done:
    if (ro_auto)
        m.readonly = !(m.type == RBX_DF_MOUNT_CACHE || m.type == RBX_DF_MOUNT_TMPFS);
    *out = m;
    return 0;
fail:
    rbx_df_mount_clear(&m);
    return r;
}

/* ---- ownership ------------------------------------------------------------------------------- */

char *rbx_df_heredoc_body(const struct rbx_df_heredoc *h)
{
    if (!h->chomp)
        return rbx_xstrdup(h->content);
    struct buf b = {0};
    bool bol = true;
    for (const char *s = h->content; *s; s++) {
        if (bol && *s == '\t')
            continue;
        bol = *s == '\n';
        buf_put(&b, s, 1);
    }
    return b.p ? b.p : rbx_xstrdup("");
}

static void command_clear(struct rbx_df_command *c)
{
    c->args = rbx_strv_free(c->args);
}

void rbx_df_instr_clear(struct rbx_df_instr *in)
{
    if (!in)
        return;
    free(in->original);
    for (size_t i = 0; i < in->n_heredocs; i++) {
        free(in->heredocs[i].name);
        free(in->heredocs[i].content);
    }
    free(in->heredocs);
    switch (in->kind) {
    case RBX_DF_FROM:
        free(in->from.image);
        free(in->from.name);
        free(in->from.platform);
        break;
    case RBX_DF_RUN:
        command_clear(&in->run.cmd);
        rbx_strv_free(in->run.mount_specs);
        for (size_t i = 0; i < in->run.n_mounts; i++)
            rbx_df_mount_clear(&in->run.mounts[i]);
        free(in->run.mounts);
        free(in->run.network);
        free(in->run.security);
        rbx_strv_free(in->run.devices);
        break;
    case RBX_DF_CMD:
    case RBX_DF_ENTRYPOINT:
    case RBX_DF_SHELL: command_clear(&in->cmd); break;
    case RBX_DF_COPY:
    case RBX_DF_ADD:
        rbx_strv_free(in->copy.srcs);
        free(in->copy.dest);
        free(in->copy.from);
        free(in->copy.chown);
        free(in->copy.chmod);
        rbx_strv_free(in->copy.excludes);
        free(in->copy.checksum);
        break;
    case RBX_DF_ENV:
    case RBX_DF_ARG:
    case RBX_DF_LABEL:
    case RBX_DF_MAINTAINER:
        for (size_t i = 0; i < in->kv.n_pairs; i++) {
            free(in->kv.pairs[i].key);
            free(in->kv.pairs[i].value);
        }
        free(in->kv.pairs);
        break;
    case RBX_DF_WORKDIR:
    case RBX_DF_USER:
    case RBX_DF_STOPSIGNAL: free(in->arg); break;
    case RBX_DF_EXPOSE:
    case RBX_DF_VOLUME: rbx_strv_free(in->list.words); break;
    case RBX_DF_HEALTHCHECK: command_clear(&in->health.cmd); break;
    case RBX_DF_ONBUILD:
        free(in->onbuild.expression);
        if (in->onbuild.trigger) {
            rbx_df_instr_clear(in->onbuild.trigger);
            free(in->onbuild.trigger);
        }
        break;
    }
    memset(in, 0, sizeof(*in));
}

static char *dup0(const char *s)
{
    return s ? rbx_xstrdup(s) : NULL;
}

static void mount_copy(const struct rbx_df_mount *in, struct rbx_df_mount *out)
{
    *out = *in;
    out->from = dup0(in->from);
    out->source = dup0(in->source);
    out->target = dup0(in->target);
    out->id = dup0(in->id);
    out->sharing = dup0(in->sharing);
    out->env = dup0(in->env);
    out->size = dup0(in->size);
}

void rbx_df_instr_copy(const struct rbx_df_instr *in, struct rbx_df_instr *out)
{
    *out = *in;
    out->original = dup0(in->original);
    if (in->n_heredocs) {
        out->heredocs = rbx_xcalloc(in->n_heredocs, sizeof(*out->heredocs));
        for (size_t i = 0; i < in->n_heredocs; i++) {
            out->heredocs[i] = in->heredocs[i];
            out->heredocs[i].name = dup0(in->heredocs[i].name);
            out->heredocs[i].content = dup0(in->heredocs[i].content);
        }
    }
    switch (in->kind) {
    case RBX_DF_FROM:
        out->from.image = dup0(in->from.image);
        out->from.name = dup0(in->from.name);
        out->from.platform = dup0(in->from.platform);
        break;
    case RBX_DF_RUN:
        out->run.cmd.args = rbx_strv_copy(in->run.cmd.args);
        out->run.mount_specs = rbx_strv_copy(in->run.mount_specs);
        out->run.mounts = NULL;
        if (in->run.n_mounts) {
            out->run.mounts = rbx_xcalloc(in->run.n_mounts, sizeof(*out->run.mounts));
            for (size_t i = 0; i < in->run.n_mounts; i++)
                mount_copy(&in->run.mounts[i], &out->run.mounts[i]);
        }
        out->run.network = dup0(in->run.network);
        out->run.security = dup0(in->run.security);
        out->run.devices = rbx_strv_copy(in->run.devices);
        break;
    case RBX_DF_CMD:
    case RBX_DF_ENTRYPOINT:
    case RBX_DF_SHELL: out->cmd.args = rbx_strv_copy(in->cmd.args); break;
    case RBX_DF_COPY:
    case RBX_DF_ADD:
        out->copy.srcs = rbx_strv_copy(in->copy.srcs);
        out->copy.dest = dup0(in->copy.dest);
        out->copy.from = dup0(in->copy.from);
        out->copy.chown = dup0(in->copy.chown);
        out->copy.chmod = dup0(in->copy.chmod);
        out->copy.excludes = rbx_strv_copy(in->copy.excludes);
        out->copy.checksum = dup0(in->copy.checksum);
        break;
    case RBX_DF_ENV:
    case RBX_DF_ARG:
    case RBX_DF_LABEL:
    case RBX_DF_MAINTAINER:
        out->kv.pairs = NULL;
        if (in->kv.n_pairs) {
            out->kv.pairs = rbx_xcalloc(in->kv.n_pairs, sizeof(*out->kv.pairs));
            for (size_t i = 0; i < in->kv.n_pairs; i++) {
                out->kv.pairs[i].key = dup0(in->kv.pairs[i].key);
                out->kv.pairs[i].value = dup0(in->kv.pairs[i].value);
            }
        }
        break;
    case RBX_DF_WORKDIR:
    case RBX_DF_USER:
    case RBX_DF_STOPSIGNAL: out->arg = dup0(in->arg); break;
    case RBX_DF_EXPOSE:
    case RBX_DF_VOLUME: out->list.words = rbx_strv_copy(in->list.words); break;
    case RBX_DF_HEALTHCHECK: out->health.cmd.args = rbx_strv_copy(in->health.cmd.args); break;
    case RBX_DF_ONBUILD:
        out->onbuild.expression = dup0(in->onbuild.expression);
        out->onbuild.trigger = NULL;
        if (in->onbuild.trigger) {
            out->onbuild.trigger = rbx_xcalloc(1, sizeof(*out->onbuild.trigger));
            rbx_df_instr_copy(in->onbuild.trigger, out->onbuild.trigger);
        }
        break;
    }
}

struct rbx_dockerfile *rbx_dockerfile_free(struct rbx_dockerfile *df)
{
    if (!df)
        return NULL;
    free(df->name);
    free(df->syntax);
    for (size_t i = 0; i < df->n_global_args; i++)
        rbx_df_instr_clear(&df->global_args[i]);
    free(df->global_args);
    for (size_t i = 0; i < df->n_stages; i++) {
        rbx_df_instr_clear(&df->stages[i].from);
        for (size_t k = 0; k < df->stages[i].n_instrs; k++)
            rbx_df_instr_clear(&df->stages[i].instrs[k]);
        free(df->stages[i].instrs);
    }
    free(df->stages);
    free(df);
    return NULL;
}
