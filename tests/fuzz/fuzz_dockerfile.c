/* fuzz_dockerfile.c — libFuzzer target for builder/: the input is parsed as a Dockerfile (then
 * every instruction substituted and its build args listed), lexed as one word, read as a
 * --mount value and as a .dockerignore matched against a few paths. */
#include "builder/builder.h"

#include <string.h>

static char *env[] = {"A=a b", "EMPTY=", "P=/usr/local/bin", "X=${A}", "S=$", NULL};
static char *args[] = {"A", "B", "P", NULL};

static void fuzz_instr(const struct rbx_df_instr *in, char escape)
{
    struct rbx_df_instr out = {0};
    struct rbx_error *err = NULL;
    if (rbx_df_instr_expand(in, escape, rbx_df_lookup_env, env, &out, &err) == 0)
        rbx_df_instr_clear(&out);
    err = rbx_error_free(err);
    char **used = NULL;
    if (rbx_df_instr_used_args(in, escape, args, &used, &err) == 0)
        rbx_strv_free(used);
    rbx_error_free(err);
    for (size_t i = 0; i < in->n_heredocs; i++)
        free(rbx_df_heredoc_body(&in->heredocs[i]));
    struct rbx_df_instr copy = {0};
    rbx_df_instr_copy(in, &copy);
    rbx_df_instr_clear(&copy);
}

static void fuzz_dockerfile(const char *data, size_t size)
{
    struct rbx_dockerfile *df = NULL;
    struct rbx_error *err = NULL;
    if (rbx_dockerfile_parse(data, size, "Dockerfile", &df, &err) == 0) {
        for (size_t i = 0; i < df->n_global_args; i++)
            fuzz_instr(&df->global_args[i], df->escape);
        for (size_t s = 0; s < df->n_stages; s++) {
            fuzz_instr(&df->stages[s].from, df->escape);
            for (size_t i = 0; i < df->stages[s].n_instrs; i++)
                fuzz_instr(&df->stages[s].instrs[i], df->escape);
            if (df->stages[s].from.from.name)
                rbx_dockerfile_find_stage(df, df->stages[s].from.from.name);
        }
    }
    rbx_error_free(err);
    rbx_dockerfile_free(df);
}

static void fuzz_word(const char *word)
{
    static const char escapes[] = {'\\', '`'};
    for (size_t e = 0; e < sizeof(escapes); e++) {
        char *out = NULL, **words = NULL;
        struct rbx_error *err = NULL;
        if (rbx_df_expand_word(word, escapes[e], rbx_df_lookup_env, env, &out, &err) == 0)
            free(out);
        err = rbx_error_free(err);
        if (rbx_df_expand_words(word, escapes[e], rbx_df_lookup_env, env, &words, &err) == 0)
            rbx_strv_free(words);
        rbx_error_free(err);
    }
    struct rbx_df_mount m = {0};
    struct rbx_error *err = NULL;
    if (rbx_df_mount_parse(word, '\\', NULL, NULL, &m, &err) == 0)
        rbx_df_mount_clear(&m);
    err = rbx_error_free(err);
    if (rbx_df_mount_parse(word, '\\', rbx_df_lookup_env, env, &m, &err) == 0)
        rbx_df_mount_clear(&m);
    rbx_error_free(err);
}

static void fuzz_ignore(const char *data, size_t size, const char *word)
{
    static const char *const paths[] = {"a", "a/b/c", "node_modules/x/y", ".", "src/main.c"};
    struct rbx_ignore *ign = NULL;
    struct rbx_error *err = NULL;
    if (rbx_ignore_parse(data, size, ".dockerignore", &ign, &err) == 0) {
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            rbx_ignore_match(ign, paths[i], false);
            rbx_ignore_match(ign, paths[i], true);
        }
        /* the first line of the input as a path, too */
        size_t n = strcspn(word, "\n");
        char *path = strndup(word, n < 512 ? n : 512);
        rbx_ignore_match(ign, path, true);
        free(path);
        rbx_ignore_patterns(ign);
    }
    rbx_error_free(err);
    rbx_ignore_free(ign);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fuzz_dockerfile((const char *)data, size);
    /* the string APIs take NUL-terminated text: cut at the first NUL, keep it small */
    size_t n = strnlen((const char *)data, size < 65536 ? size : 65536);
    char *word = strndup((const char *)data, n);
    fuzz_word(word);
    fuzz_ignore((const char *)data, size, word);
    free(word);
    return 0;
}
