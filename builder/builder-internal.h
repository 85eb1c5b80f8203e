/* builder-internal.h — what builder/'s own files share: the shell lexer's modes (heredoc
 * detection lexes lines raw) and Go's CSV field splitting for RUN --mount. */
#pragma once

#include "builder/builder.h"

/* BuildKit's Lex switches: keep quotes and escapes in the output, leave unset variables as
 * written, treat quotes as ordinary characters (COPY heredoc bodies). */
struct rbx_df_lex_opts {
    bool raw_quotes, raw_escapes, skip_unset, skip_quotes;
};

/* Lex `word`: the substituted text into *result and/or the split words into *words (either may
 * be NULL). `lookup` may be NULL (everything unset). */
int rbx_df_lex(const char *word, char escape, const struct rbx_df_lex_opts *opts,
               rbx_df_lookup_fn lookup, void *userdata, char **result, char ***words,
               struct rbx_error **err);

/* Split one CSV record as Go's encoding/csv reads it (',' separated, '"' quoting, "" inside
 * quotes for a quote). Errors name the problem; the caller adds context. */
int rbx_df_csv_split(const char *s, char ***fields, struct rbx_error **err);

/* UTF-8 helpers shared by the lexer and the ignore matcher: decode one rune at s[i] (invalid
 * bytes decode to 0x80000000 | byte, length 1). */
uint32_t rbx_utf8_decode(const unsigned char *s, size_t len, size_t i, size_t *n);
bool rbx_rune_is_space(uint32_t r);

/* Make room for element `k` of an array grown one element at a time, k = 0, 1, 2...: the
 * capacity doubles at powers of two, so n pushes cost O(n) even where realloc always copies. */
static inline void *rbx_grow(void *p, size_t k, size_t size)
{
    if (k >= 4 && (k & (k - 1)) != 0)
        return p;
    return rbx_xrealloc(p, (k < 4 ? 4 : 2 * k) * size);
}

/* A NULL-terminated string vector that knows its length. */
struct rbx_strvec {
    char **v;
    size_t n;
};

static inline void rbx_strvec_push_take(struct rbx_strvec *sv, char *s)
{
    sv->v = rbx_grow(sv->v, sv->n + 1, sizeof(char *));
    sv->v[sv->n++] = s;
    sv->v[sv->n] = NULL;
}

/* The vector (never NULL), leaving sv empty. */
static inline char **rbx_strvec_take(struct rbx_strvec *sv)
{
    char **v = sv->v ? sv->v : (char **)rbx_xcalloc(1, sizeof(char *));
    sv->v = NULL;
    sv->n = 0;
    return v;
}
