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
