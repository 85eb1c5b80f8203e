/* doctor_shell.c — the simple commands of a shell text, as far as they can be known without
 * running it: a tokenizer for POSIX quoting and expansions, and a small state machine for the
 * compound commands (if, while, for, case, functions, subshells). Every count and depth capped. */
#include "recipes/doctor-internal.h"

#include <string.h>

#define MAX_WORD_BYTES 65536
#define MAX_VARS 1024
#define MAX_HEREDOCS 16

/* ---- words under construction: bytes, plus which bytes came from an unquoted expansion ---------
 */

struct wbuf {
    char *s;
    unsigned char *split; /* 1: a blank that may be field-split; 2: a boundary of "$@" */
    size_t n, cap;
    bool dynamic, quoted, glob, bracket, literal_name; /* literal_name: only unquoted name chars */
    bool empty_at;    /* a "$@" of no arguments: no word, even quoted */
    bool args, other; /* held unknown positional parameters; held anything else */
    ssize_t eq;       /* first unquoted '=' when all before it is a name, else -1 */
};

static void wbuf_reset(struct wbuf *w)
{
    w->n = 0;
    w->dynamic = w->quoted = w->glob = w->bracket = w->empty_at = w->args = w->other = false;
    w->literal_name = true;
    w->eq = -1;
}

static void wbuf_free(struct wbuf *w)
{
    free(w->s);
    free(w->split);
    memset(w, 0, sizeof(*w));
}

static bool wbuf_put(struct wbuf *w, char c, unsigned char split)
{
    if (w->n + 1 >= MAX_WORD_BYTES)
        return false;
    if (w->n + 1 >= w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->s = rbx_xrealloc(w->s, w->cap);
        w->split = rbx_xrealloc(w->split, w->cap);
    }
    w->s[w->n] = c;
    w->split[w->n] = split;
    w->n++;
    w->s[w->n] = '\0';
    return true;
}

static bool name_char(char c, bool first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

/* ---- the splitter's state -------------------------------------------------------------------- */

struct var {
    char *name, *value; /* value NULL: set to something we cannot know */
};

struct sh {
    const char *s;
    size_t len, pos;
    unsigned line, tok_line; /* where we are, where the last token began */
    unsigned depth;
    char *const *env;
    char *const *args;            /* $1...: the script's arguments, when known */
    bool *args_known;             /* shared: "shift" or "set --" anywhere makes them unknown */
    unsigned braces, func_braces; /* { } depth; inside a function body when > func_braces */
    bool func_pending;            /* a function's name was read: its body comes next */
    struct var *vars;             /* shared by nested texts (backquotes) */
    size_t *n_vars;
    struct rbx_sh_script *out;
    struct {
        char *delim;
        bool strip_tabs;
    } heredocs[MAX_HEREDOCS];
    size_t n_heredocs;
    struct rbx_error **err;
    bool failed;
};

RBX_PRINTF(2, 3)
static void fail(struct sh *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->failed = true;
    rbx_error_set(p->err, RBX_ERR_MALFORMED, EINVAL, "line %u: %s", p->line, msg);
}

static int peek(const struct sh *p, size_t ahead)
{
    return p->pos + ahead < p->len ? (unsigned char)p->s[p->pos + ahead] : -1;
}

/* ---- variables ----------------------------------------------------------------------------- */

static struct var *var_find(struct sh *p, const char *name, size_t n)
{
    for (size_t i = 0; i < *p->n_vars; i++)
        if (strlen(p->vars[i].name) == n && strncmp(p->vars[i].name, name, n) == 0)
            return &p->vars[i];
    return NULL;
}

/* Assignments are followed in text order, not control flow: a variable given two different
 * values is one we do not know. */
static void var_set(struct sh *p, const char *name, size_t n, const char *value)
{
    struct var *v = var_find(p, name, n);
    if (v) {
        if (!value || !v->value || strcmp(v->value, value) != 0) {
            free(v->value);
            v->value = NULL;
        }
        return;
    }
    if (*p->n_vars >= MAX_VARS)
        return;
    p->vars[(*p->n_vars)++] =
        (struct var){rbx_xstrndup(name, n), value ? rbx_xstrdup(value) : NULL};
}

/* 1 known (in *val), 0 unknown. A variable set neither by the text nor by env is unknown: a
 * sourced file or the caller may set it. */
static int var_get(struct sh *p, const char *name, size_t n, const char **val)
{
    struct var *v = var_find(p, name, n);
    if (v) {
        *val = v->value;
        return v->value != NULL;
    }
    for (size_t i = 0; p->env && p->env[i]; i++)
        if (strncmp(p->env[i], name, n) == 0 && p->env[i][n] == '=') {
            *val = p->env[i] + n + 1;
            return 1;
        }
    return 0;
}

/* ---- expansions ------------------------------------------------------------------------------ */

static void parse_list(struct sh *p, bool until_paren);

/* Skip to the ")" that closes an opened "(" (quotes respected); pos ends after it. */
static bool skip_balanced(struct sh *p, int open, int close, unsigned count)
{
    while (p->pos < p->len) {
        int c = peek(p, 0);
        p->pos++;
        if (c == '\n')
            p->line++;
        else if (c == '\\' && p->pos < p->len)
            p->pos++;
        else if (c == '\'' || c == '"') {
            while (p->pos < p->len && peek(p, 0) != c) {
                if (peek(p, 0) == '\n')
                    p->line++;
                if (c == '"' && peek(p, 0) == '\\')
                    p->pos++;
                p->pos++;
            }
            p->pos++;
        } else if (c == open)
            count++;
        else if (c == close && --count == 0)
            return true;
    }
    return false;
}

static void append_value(struct wbuf *w, const char *v, bool quoted)
{
    for (; *v; v++)
        if (!wbuf_put(w, *v, !quoted))
            break;
}

/* A nested text (the inside of `...`): its own position and line, the same variables and
 * output. */
static void parse_nested(struct sh *p, const char *text, size_t len, unsigned line)
{
    struct sh q = *p;
    q.s = text;
    q.len = len;
    q.pos = 0;
    q.line = line;
    q.depth = p->depth + 1;
    q.n_heredocs = 0;
    parse_list(&q, false);
    for (size_t i = 0; i < q.n_heredocs; i++)
        free(q.heredocs[i].delim);
    if (q.failed)
        p->failed = true;
}

static bool args_usable(const struct sh *p)
{
    return p->args && *p->args_known && p->braces <= p->func_braces;
}

/* $1..$9, $@, $*, $#: the script's arguments, unless a function body (its own arguments) or a
 * shift made them unknown. */
static void positional(struct sh *p, struct wbuf *w, char which, bool quoted)
{
    if (!args_usable(p)) {
        w->dynamic = w->args = true;
        return;
    }
    size_t argc = rbx_strv_len(p->args);
    if (which >= '1' && which <= '9') {
        size_t i = (size_t)(which - '1');
        append_value(w, i < argc ? p->args[i] : "", quoted);
        return;
    }
    if (which == '#') {
        char num[24];
        snprintf(num, sizeof(num), "%zu", argc);
        append_value(w, num, quoted);
        return;
    }
    if (argc == 0) {
        w->empty_at = which == '@';
        return;
    }
    for (size_t i = 0; i < argc; i++) {
        if (i)
            wbuf_put(w, ' ', quoted ? (which == '@' ? 2 : 0) : 1);
        append_value(w, p->args[i], quoted);
    }
}

/* At "$": one expansion into w. */
static void expansion(struct sh *p, struct wbuf *w, bool quoted)
{
    p->pos++; /* '$' */
    int c = peek(p, 0);
    if (c == '{') {
        size_t start = p->pos + 1;
        unsigned line = p->line;
        if (!skip_balanced(p, '{', '}', 0)) {
            p->line = line;
            fail(p, "\"${\" without its \"}\"");
            return;
        }
        const char *in = p->s + start;
        size_t n = p->pos - 1 - start, k = 0;
        if (n == 1 && strchr("123456789@*#", in[0])) {
            positional(p, w, in[0], quoted);
            return;
        }
        while (k < n && name_char(in[k], k == 0))
            k++;
        const char *val = NULL;
        bool known = k > 0 && var_get(p, in, k, &val);
        bool set_nonempty = known && val && *val;
        if (k > 0 && k == n && known) {
            append_value(w, val, quoted);
            return;
        }
        /* ${X:-word} ${X-word} ${X:=word} ${X=word}: the word when X is unset (or empty) */
        if (k > 0 && k < n) {
            size_t op = k, colon = in[op] == ':';
            char how = op + colon < n ? in[op + colon] : 0;
            const char *word = in + op + colon + 1;
            size_t wlen = n - (op + colon + 1);
            bool literal = (how == '-' || how == '=') && !memchr(word, '$', wlen) &&
                           !memchr(word, '`', wlen) && !memchr(word, '\'', wlen) &&
                           !memchr(word, '"', wlen) && !memchr(word, '\\', wlen);
            if (literal && known) {
                bool use_word = colon ? !set_nonempty : (val == NULL);
                if (use_word) {
                    _cleanup_free_ char *wd = rbx_xstrndup(word, wlen);
                    append_value(w, wd, quoted);
                } else {
                    append_value(w, val, quoted);
                }
                return;
            }
        }
        w->dynamic = w->other = true;
        return;
    }
    if (c == '(') {
        if (peek(p, 1) == '(') { /* $(( arithmetic )) */
            p->pos += 2;
            if (!skip_balanced(p, '(', ')', 2))
                fail(p, "\"$((\" without its \"))\"");
            w->dynamic = w->other = true;
            return;
        }
        p->pos++;
        if (p->depth >= RBX_SH_MAX_DEPTH) {
            p->out->truncated = true;
            if (!skip_balanced(p, '(', ')', 1))
                fail(p, "\"$(\" without its \")\"");
        } else {
            p->depth++;
            parse_list(p, true);
            p->depth--;
        }
        w->dynamic = w->other = true;
        return;
    }
    if (c >= 0 && name_char((char)c, true)) {
        size_t start = p->pos;
        while (p->pos < p->len && name_char(p->s[p->pos], false))
            p->pos++;
        const char *val = NULL;
        if (var_get(p, p->s + start, p->pos - start, &val))
            append_value(w, val, quoted);
        else
            w->dynamic = w->other = true;
        return;
    }
    if (c >= 0 && strchr("123456789@*#", c)) {
        p->pos++;
        positional(p, w, (char)c, quoted);
        return;
    }
    if (c >= 0 && strchr("0?$!-", c)) {
        p->pos++;
        w->dynamic = w->other = true;
        return;
    }
    wbuf_put(w, '$', false); /* a lone "$" is itself */
}

/* At "`": the command inside is parsed as its own text. */
static void backquote(struct sh *p, struct wbuf *w)
{
    unsigned line = p->line;
    p->pos++;
    struct wbuf inner = {0};
    wbuf_reset(&inner);
    bool closed = false;
    while (p->pos < p->len) {
        int c = peek(p, 0);
        if (c == '`') {
            p->pos++;
            closed = true;
            break;
        }
        if (c == '\\' && p->pos + 1 < p->len && strchr("`\\$", p->s[p->pos + 1]))
            p->pos++;
        else if (c == '\n')
            p->line++;
        wbuf_put(&inner, p->s[p->pos], false);
        p->pos++;
    }
    if (!closed) {
        p->line = line;
        fail(p, "\"`\" without its closing \"`\"");
    } else if (p->depth < RBX_SH_MAX_DEPTH) {
        parse_nested(p, inner.s ? inner.s : "", inner.n, line);
    } else {
        p->out->truncated = true;
    }
    wbuf_free(&inner);
    w->dynamic = w->other = true;
}

static bool metachar(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '<' ||
           c == '>' || c == '(' || c == ')';
}

/* One word at pos (which is not a blank or an operator). */
static void read_word(struct sh *p, struct wbuf *w)
{
    wbuf_reset(w);
    while (p->pos < p->len && !p->failed) {
        int c = peek(p, 0);
        if (metachar(c))
            break;
        if (c == '\\') {
            if (peek(p, 1) == '\n') { /* a continued line */
                p->pos += 2;
                p->line++;
                continue;
            }
            if (p->pos + 1 < p->len)
                wbuf_put(w, p->s[p->pos + 1], false);
            p->pos += 2;
            w->quoted = true;
            w->literal_name = false;
            continue;
        }
        if (c == '\'') {
            unsigned line = p->line;
            p->pos++;
            while (p->pos < p->len && peek(p, 0) != '\'') {
                if (peek(p, 0) == '\n')
                    p->line++;
                wbuf_put(w, p->s[p->pos++], false);
            }
            if (p->pos >= p->len) {
                p->line = line;
                fail(p, "a \"'\" without its closing quote");
                return;
            }
            p->pos++;
            w->quoted = true;
            w->literal_name = false;
            continue;
        }
        if (c == '"') {
            unsigned line = p->line;
            p->pos++;
            w->quoted = true;
            w->literal_name = false;
            while (p->pos < p->len && peek(p, 0) != '"' && !p->failed) {
                int d = peek(p, 0);
                if (d == '\\' && p->pos + 1 < p->len && strchr("$`\"\\\n", p->s[p->pos + 1])) {
                    if (p->s[p->pos + 1] == '\n')
                        p->line++;
                    else
                        wbuf_put(w, p->s[p->pos + 1], false);
                    p->pos += 2;
                } else if (d == '$') {
                    expansion(p, w, true);
                } else if (d == '`') {
                    backquote(p, w);
                } else {
                    if (d == '\n')
                        p->line++;
                    wbuf_put(w, (char)d, false);
                    p->pos++;
                }
            }
            if (p->pos >= p->len) {
                p->line = line;
                fail(p, "a '\"' without its closing quote");
                return;
            }
            p->pos++;
            continue;
        }
        if (c == '$') {
            w->literal_name = false;
            expansion(p, w, false);
            continue;
        }
        if (c == '`') {
            w->literal_name = false;
            backquote(p, w);
            continue;
        }
        if (c == '=' && w->eq < 0 && w->literal_name && w->n > 0)
            w->eq = (ssize_t)w->n;
        else if (!name_char((char)c, w->n == 0))
            w->literal_name = false;
        /* "[" alone is the test command; "[ab]" a pattern */
        if (c == '*' || c == '?' || (c == ']' && w->bracket))
            w->glob = true;
        w->bracket = w->bracket || c == '[';
        wbuf_put(w, (char)c, false);
        p->pos++;
    }
}

/* ---- tokens ------------------------------------------------------------------------------- */

enum tok { T_EOF, T_WORD, T_OP, T_NEWLINE };

static const char *const operators[] = {
    /* longest first */
    ";;&", "<<-", "&>>", "<<<", "&&", "||", ";;", ";&", "|&", "<<", ">>", "<&",
    ">&",  "<>",  ">|",  "&>",  ";",  "&",  "|",  "(",  ")",  "<",  ">",
};

static bool is_redirection(const char *op)
{
    return op[0] == '<' || op[0] == '>' || (op[0] == '&' && op[1] == '>');
}

/* Here-document bodies start on the line after their operator: skip them there. */
static void skip_heredocs(struct sh *p)
{
    for (size_t i = 0; i < p->n_heredocs; i++) {
        const char *delim = p->heredocs[i].delim;
        size_t dl = strlen(delim);
        bool done = false;
        while (p->pos < p->len && !done) {
            const char *ls = p->s + p->pos;
            const char *nl = memchr(ls, '\n', p->len - p->pos);
            size_t ll = nl ? (size_t)(nl - ls) : p->len - p->pos;
            const char *t = ls;
            if (p->heredocs[i].strip_tabs)
                while (t < ls + ll && *t == '\t')
                    t++;
            done = (size_t)(ls + ll - t) == dl && memcmp(t, delim, dl) == 0;
            p->pos += ll + (nl ? 1 : 0);
            p->line++;
        }
        free(p->heredocs[i].delim);
    }
    p->n_heredocs = 0;
}

/* The next token; a word is left in w. */
static enum tok next_token(struct sh *p, struct wbuf *w, char op[4])
{
    for (;;) {
        while (p->pos < p->len && (peek(p, 0) == ' ' || peek(p, 0) == '\t' || peek(p, 0) == '\r'))
            p->pos++;
        if (peek(p, 0) == '\\' && peek(p, 1) == '\n') {
            p->pos += 2;
            p->line++;
            continue;
        }
        if (peek(p, 0) == '#') { /* a comment runs to the end of the line */
            while (p->pos < p->len && peek(p, 0) != '\n')
                p->pos++;
        }
        break;
    }
    if (p->pos >= p->len || p->failed)
        return T_EOF;
    p->tok_line = p->line;
    int c = peek(p, 0);
    if (c == '\n') {
        p->pos++;
        p->line++;
        skip_heredocs(p);
        return T_NEWLINE;
    }
    for (size_t i = 0; i < RBX_ARRAY_SIZE(operators); i++) {
        size_t n = strlen(operators[i]);
        if (p->pos + n <= p->len && memcmp(p->s + p->pos, operators[i], n) == 0) {
            memcpy(op, operators[i], n + 1);
            p->pos += n;
            return T_OP;
        }
    }
    read_word(p, w);
    /* "2>file": digits right before a redirection are its fd, not a word */
    if (!w->quoted && !w->dynamic && w->n > 0 && strspn(w->s, "0123456789") == w->n &&
        (peek(p, 0) == '<' || peek(p, 0) == '>'))
        return next_token(p, w, op);
    return T_WORD;
}

/* ---- commands ------------------------------------------------------------------------------ */

enum mode {
    M_START,     /* a command word may come */
    M_ARGS,      /* the command's arguments */
    M_FOR_VAR,   /* after for / select */
    M_FOR_WORDS, /* for's list, up to do */
    M_CASE_WORD, /* after case */
    M_CASE_IN,
    M_PATTERN,   /* a case pattern, up to ")" */
    M_FUNC_NAME, /* after function */
    M_SKIP,      /* [[ ... ]]: no commands inside */
};

struct cmd {
    struct rbx_sh_word *words;
    size_t n_words;
    unsigned line;
    char **assigns; /* "NAME=value" of a prefix or a bare assignment; value NULL-marked by \1 */
};

static void cmd_clear(struct cmd *c)
{
    for (size_t i = 0; i < c->n_words; i++)
        free(c->words[i].text);
    free(c->words);
    rbx_strv_free(c->assigns);
    memset(c, 0, sizeof(*c));
}

/* Field splitting of a finished word: unquoted expansions split on blanks, "$@" into its
 * arguments, and an unquoted expansion to nothing is no word at all. */
static void emit(struct sh *p, struct cmd *c, const struct wbuf *w, size_t start, size_t end)
{
    if (c->n_words >= RBX_SH_MAX_WORDS)
        return;
    c->words = rbx_xrealloc(c->words, (c->n_words + 1) * sizeof(*c->words));
    c->words[c->n_words++] = (struct rbx_sh_word){
        rbx_xstrndup(w->n ? w->s + start : "", end - start), w->dynamic || (w->glob && !w->quoted),
        w->args && !w->other && w->n == 0};
    if (c->n_words == 1)
        c->line = p->tok_line;
}

static void add_fields(struct sh *p, struct cmd *c, struct wbuf *w)
{
    if (w->n == 0 && w->empty_at)
        return;
    size_t start = 0;
    bool any = false, prev_hard = false;
    for (size_t i = 0; i <= w->n; i++) {
        bool end = i == w->n;
        bool hard = !end && w->split[i] == 2;
        bool soft = !end && w->split[i] == 1 && strchr(" \t\n", w->s[i]);
        if (!end && !hard && !soft)
            continue;
        if (i > start || hard || prev_hard) {
            emit(p, c, w, start, i);
            any = true;
        }
        prev_hard = hard;
        start = i + 1;
    }
    if (!any && (w->quoted || w->dynamic))
        emit(p, c, w, 0, 0);
}

static void probe_words(struct sh *p, const struct cmd *c)
{
    const char *cmd = c->words[0].text;
    size_t first = 1;
    bool probing =
        strcmp(cmd, "which") == 0 || strcmp(cmd, "type") == 0 || strcmp(cmd, "hash") == 0;
    if (strcmp(cmd, "command") == 0 && c->n_words > 1 &&
        (strcmp(c->words[1].text, "-v") == 0 || strcmp(c->words[1].text, "-V") == 0)) {
        probing = true;
        first = 2;
    }
    if (strcmp(cmd, "[") == 0 || strcmp(cmd, "test") == 0 || strcmp(cmd, "[[") == 0) {
        for (size_t i = 1; i + 1 < c->n_words; i++)
            if (c->words[i].text[0] == '-' && strlen(c->words[i].text) == 2 &&
                strchr("xfes", c->words[i].text[1]))
                rbx_strv_push(&p->out->probed, c->words[i + 1].text);
        return;
    }
    if (!probing)
        return;
    for (size_t i = first; i < c->n_words; i++)
        if (c->words[i].text[0] != '-')
            rbx_strv_push(&p->out->probed, c->words[i].text);
}

static void commit_assign(struct sh *p, const char *kv)
{
    const char *eq = strchr(kv, '=');
    bool unknown = eq[1] == '\1';
    var_set(p, kv, (size_t)(eq - kv), unknown ? NULL : eq + 1);
}

static void finish(struct sh *p, struct cmd *c)
{
    if (c->n_words == 0) {
        for (size_t i = 0; c->assigns && c->assigns[i]; i++)
            commit_assign(p, c->assigns[i]);
        cmd_clear(c);
        return;
    }
    const char *w0 = c->words[0].text;
    if (strcmp(w0, "export") == 0 || strcmp(w0, "readonly") == 0 || strcmp(w0, "local") == 0 ||
        strcmp(w0, "declare") == 0 || strcmp(w0, "typeset") == 0) {
        for (size_t i = 1; i < c->n_words; i++) {
            const char *a = c->words[i].text;
            const char *eq = strchr(a, '=');
            if (eq && eq > a) {
                _cleanup_free_ char *kv = c->words[i].dynamic
                                              ? rbx_xasprintf("%.*s=\1", (int)(eq - a), a)
                                              : rbx_xstrdup(a);
                commit_assign(p, kv);
            }
        }
    } else if (strcmp(w0, "unset") == 0) {
        for (size_t i = 1; i < c->n_words; i++) {
            struct var *v = var_find(p, c->words[i].text, strlen(c->words[i].text));
            if (v) {
                free(v->value);
                v->value = NULL;
            }
        }
    } else if (strcmp(w0, "shift") == 0) {
        *p->args_known = false;
    } else if (strcmp(w0, "set") == 0) {
        for (size_t i = 1; i < c->n_words; i++) {
            const char *a = c->words[i].text;
            if ((a[0] != '-' && a[0] != '+') || strcmp(a, "--") == 0)
                *p->args_known = false;
            if (strcmp(a, "-o") == 0 || strcmp(a, "+o") == 0)
                i++;
        }
    } else if (strcmp(w0, "read") == 0) {
        for (size_t i = 1; i < c->n_words; i++)
            if (c->words[i].text[0] != '-')
                var_set(p, c->words[i].text, strlen(c->words[i].text), NULL);
    }
    probe_words(p, c);
    struct rbx_sh_script *o = p->out;
    if (o->n_cmds >= RBX_SH_MAX_COMMANDS) {
        o->truncated = true;
        cmd_clear(c);
        return;
    }
    o->cmds = rbx_xrealloc(o->cmds, (o->n_cmds + 1) * sizeof(*o->cmds));
    o->cmds[o->n_cmds++] = (struct rbx_sh_command){c->words, c->n_words, c->line};
    c->words = NULL;
    c->n_words = 0;
    cmd_clear(c);
}

static bool is(const struct wbuf *w, const char *word)
{
    return !w->quoted && !w->dynamic && strcmp(w->s ? w->s : "", word) == 0;
}

static void parse_list(struct sh *p, bool until_paren)
{
    struct wbuf w = {0};
    struct cmd c = {0};
    enum mode mode = M_START;
    unsigned cases = 0, subshells = 0;
    bool after_func_name = false;
    char op[4];

    while (!p->failed) {
        enum tok t = next_token(p, &w, op);
        if (t == T_EOF) {
            finish(p, &c);
            if (until_paren)
                fail(p, "\"$(\" without its \")\"");
            break;
        }
        if (mode == M_SKIP) { /* [[ ... ]] holds no commands, whatever its operators */
            if (t == T_WORD && is(&w, "]]"))
                mode = M_ARGS;
            else if (t == T_NEWLINE)
                mode = M_START;
            continue;
        }
        if (t == T_NEWLINE) {
            if (mode == M_PATTERN || mode == M_CASE_IN || mode == M_FUNC_NAME)
                continue;
            finish(p, &c);
            mode = M_START;
            continue;
        }
        if (t == T_OP) {
            if (is_redirection(op)) {
                /* the target is a file, not a command; a here-document's word is its end */
                bool heredoc = strcmp(op, "<<") == 0 || strcmp(op, "<<-") == 0;
                bool strip = strcmp(op, "<<-") == 0;
                enum tok tt = next_token(p, &w, op);
                if (tt == T_WORD && heredoc && p->n_heredocs < MAX_HEREDOCS) {
                    p->heredocs[p->n_heredocs].delim = rbx_xstrdup(w.s ? w.s : "");
                    p->heredocs[p->n_heredocs].strip_tabs = strip;
                    p->n_heredocs++;
                } else if (tt == T_NEWLINE) {
                    finish(p, &c);
                    mode = M_START;
                }
                continue;
            }
            if (mode == M_PATTERN) {
                if (strcmp(op, ")") == 0)
                    mode = M_START;
                continue; /* "(" and "|" inside a pattern */
            }
            if (strcmp(op, "(") == 0) {
                size_t q = p->pos;
                while (q < p->len && (p->s[q] == ' ' || p->s[q] == '\t'))
                    q++;
                bool empty_parens = q < p->len && p->s[q] == ')';
                if (empty_parens && (after_func_name || (mode == M_ARGS && c.n_words == 1))) {
                    /* name() body: a function, not a command */
                    if (!after_func_name)
                        rbx_strv_push(&p->out->functions, c.words[0].text);
                    p->func_pending = true;
                    cmd_clear(&c);
                    p->pos = q + 1;
                    after_func_name = false;
                    mode = M_START;
                    continue;
                }
                if (mode == M_START && c.n_words == 0 && peek(p, 0) == '(') {
                    p->pos++; /* (( arithmetic )) */
                    if (!skip_balanced(p, '(', ')', 2))
                        fail(p, "\"((\" without its \"))\"");
                    mode = M_ARGS;
                    continue;
                }
                if (mode == M_START) {
                    subshells++;
                    continue;
                }
                /* an array assignment a=(x y): skip it */
                if (!skip_balanced(p, '(', ')', 1))
                    fail(p, "\"(\" without its \")\"");
                continue;
            }
            if (strcmp(op, ")") == 0) {
                finish(p, &c);
                mode = M_ARGS;
                if (subshells) {
                    subshells--;
                    continue;
                }
                if (until_paren)
                    break;
                continue;
            }
            finish(p, &c);
            if (strcmp(op, ";;") == 0 || strcmp(op, ";&") == 0 || strcmp(op, ";;&") == 0)
                mode = cases ? M_PATTERN : M_START;
            else
                mode = M_START;
            continue;
        }

        /* a word */
        after_func_name = false;
        switch (mode) {
        case M_CASE_WORD: mode = M_CASE_IN; continue;
        case M_CASE_IN:
            if (is(&w, "in")) {
                cases++;
                mode = M_PATTERN;
            }
            continue;
        case M_PATTERN:
            if (is(&w, "esac")) {
                cases -= cases > 0;
                mode = M_ARGS;
            }
            continue;
        case M_FOR_VAR:
            if (w.s && !w.quoted)
                var_set(p, w.s, w.n, NULL);
            mode = M_FOR_WORDS;
            continue;
        case M_FOR_WORDS:
            if (is(&w, "do"))
                mode = M_START;
            continue;
        case M_FUNC_NAME:
            if (w.s)
                rbx_strv_push(&p->out->functions, w.s);
            after_func_name = true;
            p->func_pending = true;
            mode = M_START;
            continue;
        case M_START:
            if (c.n_words == 0) {
                static const char *const keep[] = {"if",    "then",  "else", "elif", "do",
                                                   "while", "until", "!",    "{",    "time",
                                                   "fi",    "done",  "}"};
                bool kw = false;
                for (size_t i = 0; i < RBX_ARRAY_SIZE(keep) && !kw; i++)
                    kw = is(&w, keep[i]);
                if (kw) {
                    if (c.assigns) /* "A=1 }" is not a thing; drop what came before */
                        cmd_clear(&c);
                    if (is(&w, "{")) {
                        if (p->func_pending && p->braces < p->func_braces)
                            p->func_braces = p->braces; /* a function body: $1 is its own */
                        p->func_pending = false;
                        p->braces++;
                    } else if (is(&w, "}") && p->braces > 0) {
                        if (--p->braces == p->func_braces)
                            p->func_braces = UINT32_MAX;
                    }
                    continue;
                }
                if (is(&w, "esac")) {
                    cases -= cases > 0;
                    mode = M_ARGS;
                    continue;
                }
                if (is(&w, "for") || is(&w, "select")) {
                    mode = M_FOR_VAR;
                    continue;
                }
                if (is(&w, "case")) {
                    mode = M_CASE_WORD;
                    continue;
                }
                if (is(&w, "function")) {
                    mode = M_FUNC_NAME;
                    continue;
                }
                if (is(&w, "[[")) {
                    mode = M_SKIP;
                    continue;
                }
                if (w.eq > 0) { /* NAME=value before the command (or alone) */
                    _cleanup_free_ char *kv =
                        w.dynamic ? rbx_xasprintf("%.*s=\1", (int)w.eq, w.s) : rbx_xstrdup(w.s);
                    rbx_strv_push(&c.assigns, kv);
                    continue;
                }
            }
            add_fields(p, &c, &w);
            if (c.n_words)
                mode = M_ARGS;
            continue;
        case M_ARGS: add_fields(p, &c, &w); continue;
        case M_SKIP: continue;
        }
    }
    cmd_clear(&c);
    wbuf_free(&w);
}

int rbx_sh_parse(const char *text, size_t len, char *const *env, char *const *args,
                 struct rbx_sh_script *out, struct rbx_error **err)
{
    memset(out, 0, sizeof(*out));
    if (len > RBX_SH_MAX_BYTES) {
        len = RBX_SH_MAX_BYTES;
        out->truncated = true;
    }
    size_t n_vars = 0;
    struct var *vars = rbx_xcalloc(MAX_VARS, sizeof(*vars));
    bool args_known = args != NULL;
    struct sh p = {.s = text,
                   .len = len,
                   .line = 1,
                   .env = env,
                   .args = args,
                   .args_known = &args_known,
                   .func_braces = UINT32_MAX,
                   .vars = vars,
                   .n_vars = &n_vars,
                   .out = out,
                   .err = err};
    /* "#!..." is a comment to the shell too */
    parse_list(&p, false);
    for (size_t i = 0; i < p.n_heredocs; i++)
        free(p.heredocs[i].delim);
    for (size_t i = 0; i < n_vars; i++) {
        free(vars[i].name);
        free(vars[i].value);
    }
    free(vars);
    return p.failed ? -EINVAL : 0;
}

void rbx_sh_script_clear(struct rbx_sh_script *s)
{
    for (size_t i = 0; i < s->n_cmds; i++) {
        for (size_t k = 0; k < s->cmds[i].n_words; k++)
            free(s->cmds[i].words[k].text);
        free(s->cmds[i].words);
    }
    free(s->cmds);
    rbx_strv_free(s->functions);
    rbx_strv_free(s->probed);
    memset(s, 0, sizeof(*s));
}

bool rbx_sh_builtin(const char *name)
{
    static const char *const builtins[] = {
        ":",       ".",         "[",        "[[",      "alias",    "bg",       "break",   "builtin",
        "caller",  "cd",        "command",  "compgen", "complete", "continue", "declare", "dirs",
        "disown",  "echo",      "enable",   "eval",    "exec",     "exit",     "export",  "false",
        "fc",      "fg",        "getopts",  "hash",    "help",     "history",  "jobs",    "kill",
        "let",     "local",     "logout",   "mapfile", "popd",     "printf",   "pushd",   "pwd",
        "read",    "readarray", "readonly", "return",  "set",      "shift",    "shopt",   "source",
        "suspend", "test",      "times",    "trap",    "true",     "type",     "typeset", "ulimit",
        "umask",   "unalias",   "unset",    "wait",
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(builtins); i++)
        if (strcmp(builtins[i], name) == 0)
            return true;
    return false;
}
