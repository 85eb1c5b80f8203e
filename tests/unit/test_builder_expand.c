/* test_builder_expand.c — Docker's substitution rules as tables (results as BuildKit's shell
 * lexer gives them), word splitting, whole-instruction substitution, used build args, and the
 * RUN --mount reader. */
#include "builder/builder.h"
#include "rbx_check.h"

#include <string.h>

static char *env[] = {
    "PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL=",   "V=abcabc", "P=/usr/local/bin",
    "STAR=a*b",  "SP=  ab c",  "TR=ab c   ",    "R0=[$0]", "R2=<$$>",  NULL};

/* ---- single words ---------------------------------------------------------------------------- */

struct word_case {
    const char *in;
    const char *want; /* NULL: an error whose message contains `why` */
    const char *why;
};

static const struct word_case word_cases[] = {
    /* quotes and escapes */
    {"hello", "hello", NULL},
    {"he'll'o", "hello", NULL},
    {"he'llo", NULL, "unexpected end of statement while looking for matching single-quote"},
    {"he\\'llo", "he'llo", NULL},
    {"he\\\\'llo", NULL, "matching single-quote"},
    {"abc\\tdef", "abctdef", NULL},
    {"\"abc\\tdef\"", "abc\\tdef", NULL},
    {"\"abc\\\\tdef\"", "abc\\tdef", NULL},
    {"'abc\\tdef'", "abc\\tdef", NULL},
    {"hello\\", "hello", NULL},
    {"hello\\\\", "hello\\", NULL},
    {"\"hello", NULL, "unexpected end of statement while looking for matching double-quote"},
    {"\"hello\\\"", NULL, "matching double-quote"},
    {"\"hel'lo\"", "hel'lo", NULL},
    {"'hello", NULL, "matching single-quote"},
    {"'hello\\'", "hello\\", NULL},
    {"'hello\\there'", "hello\\there", NULL},
    {"'hello\\\\there'", "hello\\\\there", NULL},
    {"\"''\"", "''", NULL},
    {"'\"hello\"'", "\"hello\"", NULL},
    /* $ and names */
    {"$.", "$.", NULL},
    {"a$", "a$", NULL},
    {"he$1x", "hex", NULL},
    {"he$.x", "he$.x", NULL},
    {"he$pwd.", "he.", NULL},
    {"he$PWD", "he/home", NULL},
    {"he$PWD/x", "he/home/x", NULL},
    {"he$PWDx", "he", NULL},
    {"$$", "", NULL},
    {"$@$*$#$?$-$!", "", NULL},
    {"he\\$PWD", "he$PWD", NULL},
    {"he\\\\$PWD", "he\\/home", NULL},
    {"\"he\\$PWD\"", "he$PWD", NULL},
    {"\"he\\\\$PWD\"", "he\\/home", NULL},
    {"'he\\$PWD'", "he\\$PWD", NULL},
    {"\"$PWD\"", "/home", NULL},
    {"'$PWD'", "$PWD", NULL},
    {"'\\$PWD'", "\\$PWD", NULL},
    {"\"he'$PWD'\"", "he'/home'", NULL},
    {"안녕$KOREAN", "안녕한국어", NULL},
    {"안녕${KOREAN}", "안녕한국어", NULL},
    /* ${} */
    {"\\${}", "${}", NULL},
    {"\\${}aaa", "${}aaa", NULL},
    {"he\\${}xx", "he${}xx", NULL},
    {"${}", NULL, "syntax error: bad substitution"},
    {"he${}xx", NULL, "bad substitution"},
    {"${:x}", NULL, "bad substitution"},
    {"${{x}}", NULL, "bad substitution"},
    {"he${hi}xx", "hexx", NULL},
    {"he${PWD}", "he/home", NULL},
    {"he${.}", NULL, "unsupported modifier (.) in substitution"},
    {"he${PWD", NULL, "syntax error: missing '}'"},
    {"he${", NULL, "syntax error: missing '}'"},
    {"'he${XX}'", "he${XX}", NULL},
    {"\"he${PWD}\"", "he/home", NULL},
    /* :- - :+ + */
    {"he${XXX:-000}xx", "he000xx", NULL},
    {"he${PWD:-000}xx", "he/homexx", NULL},
    {"he${XXX:-$PWD}xx", "he/homexx", NULL},
    {"he${XXX:-${PWD:-yyy}}xx", "he/homexx", NULL},
    {"he${XXX:-${YYY:-yyy}}xx", "heyyyxx", NULL},
    {"he${NULL:-def}", "hedef", NULL},
    {"he${NULL-def}", "he", NULL},
    {"he${XXX-def}", "hedef", NULL},
    {"he${PWD-000}xx", "he/homexx", NULL},
    {"he${XXX:+${PWD}}xx", "hexx", NULL},
    {"he${PWD:+${XXX}}xx", "hexx", NULL},
    {"he${PWD:+${SHELL}}xx", "hebashxx", NULL},
    {"he${XXX:+000}xx", "hexx", NULL},
    {"he${PWD:+000}xx", "he000xx", NULL},
    {"he${NULL:+x}", "he", NULL},
    {"he${NULL+x}", "hex", NULL},
    {"he${PWD+000}xx", "he000xx", NULL},
    {"${XXX:-a b}", "a b", NULL},
    {"${XXX:-'a}'}", "a}", NULL},
    {"${XXX:-a\\}b}", "a}b", NULL},
    {"${XXX:-}", "", NULL},
    /* ? and :? */
    {"he${XXX?}", NULL, "XXX: is not allowed to be unset"},
    {"he${XXX:?}", NULL, "XXX: is not allowed to be unset"},
    {"he${XXX?set it}", NULL, "XXX: set it"},
    {"he${PWD?}", "he/home", NULL},
    {"he${PWD:?}", "he/home", NULL},
    {"he${NULL?}", "he", NULL},
    {"he${NULL:?}", NULL, "NULL: is not allowed to be empty"},
    /* unsupported */
    {"he${PWD=000}xx", NULL, "unsupported modifier (=) in substitution"},
    {"he${XXX:=000}xx", NULL, "unsupported modifier (:=) in substitution"},
    {"he${XXX:YYY}", NULL, "unsupported modifier (:Y) in substitution"},
    {"${#PWD}", NULL, "unsupported modifier (P) in substitution"},
    {"${PWD:#x}", NULL, "unsupported modifier (:#) in substitution"},
    {"${PWD:%x}", NULL, "unsupported modifier (:%) in substitution"},
    /* # ## % %% */
    {"${V#*b}", "cabc", NULL},
    {"${V##*b}", "c", NULL},
    {"${V%b*}", "abca", NULL},
    {"${V%%b*}", "a", NULL},
    {"${V#x}", "abcabc", NULL},
    {"${V#}", "abcabc", NULL},
    {"${V#a?c}", "abc", NULL},
    {"${V%?}", "abcab", NULL},
    {"${P##*/}", "bin", NULL},
    {"${P%/*}", "/usr/local", NULL},
    {"${P#/}", "usr/local/bin", NULL},
    {"${STAR#a\\*}", "b", NULL},
    {"${STAR%\\*b}", "a", NULL},
    {"${STAR#a\\x}", NULL, "invalid pattern (a\\x) in substitution: invalid escape '\\x'"},
    {"${XXX#a}", "", NULL},
    /* / and // */
    {"${V/b/X}", "aXcabc", NULL},
    {"${V//b/X}", "aXcaXc", NULL},
    {"${V/b*/X}", "aX", NULL},
    {"${V//?/.}", "......", NULL},
    {"${V/zz/X}", "abcabc", NULL},
    {"${V//c/}", "abab", NULL},
    {"${V///-}", "-a-b-c-a-b-c-", NULL},
    {"${V//*/y}", "y", NULL},
    {"${P//\\//:}", ":usr:local:bin", NULL},
    {"${V//b/<$$>}", "a<>ca<>c", NULL},  /* $$ names the variable "$" */
    {"${V//b/$R2}", "a<$>ca<$>c", NULL}, /* ReplaceAllString's template: $$ is '$' */
    {"${V//b/$R0}", "a[b]ca[b]c", NULL}, /* ... and $0 the match */
    {"${V/b/$R0}", "a[$0]cabc", NULL},   /* a single replacement is literal */
    {"${V/b", NULL, "syntax error: missing '/' in ${}"},
    {"${V/b/c", NULL, "syntax error: missing '}'"},
    {"${XXX/a/b}", "", NULL},
};

START_TEST(test_expand_word)
{
    const struct word_case *c = &word_cases[_i];
    char *out = NULL;
    struct rbx_error *err = NULL;
    int r = rbx_df_expand_word(c->in, '\\', rbx_df_lookup_env, env, &out, &err);
    if (c->want) {
        ck_assert_msg(r == 0, "%s: %s", c->in, err ? err->message : "?");
        ck_assert_msg(strcmp(out, c->want) == 0, "%s: want \"%s\", got \"%s\"", c->in, c->want,
                      out);
    } else {
        ck_assert_msg(r < 0, "%s: wanted an error, got \"%s\"", c->in, out ? out : "");
        ck_assert_msg(strstr(err->message, c->why) != NULL, "%s: \"%s\" lacks \"%s\"", c->in,
                      err->message, c->why);
        ck_assert_msg(strncmp(err->message, "failed to process \"", 19) == 0, "%s", err->message);
    }
    free(out);
    rbx_error_free(err);
}
END_TEST

/* The escape directive changes the escape character; the backslash becomes literal. */
START_TEST(test_expand_with_backtick_escape)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"c:\\dir", "c:\\dir"}, {"a`$PWD", "a$PWD"}, {"\\$PWD", "\\/home"},
        {"\"a`\"b\"", "a\"b"},  {"a` b", "a b"},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        char *out = NULL;
        ck_assert_int_eq(rbx_df_expand_word(cases[i].in, '`', rbx_df_lookup_env, env, &out, NULL),
                         0);
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "%s: got %s", cases[i].in, out);
        free(out);
    }
}
END_TEST

/* ${A:-${A:-...}} nests the lexer: 64 levels are fine, 65 are refused, nothing overflows. */
START_TEST(test_nesting_bound)
{
    char word[1024];
    for (int depth = 64; depth <= 65; depth++) {
        char *q = word;
        for (int i = 0; i < depth; i++)
            q += sprintf(q, "${A:-");
        *q++ = 'x';
        for (int i = 0; i < depth; i++)
            *q++ = '}';
        *q = '\0';
        char *out = NULL;
        struct rbx_error *err = NULL;
        int r = rbx_df_expand_word(word, '\\', NULL, NULL, &out, &err);
        if (depth == 64) {
            ck_assert_int_eq(r, 0);
            ck_assert_str_eq(out, "x");
            free(out);
        } else {
            ck_assert_int_lt(r, 0);
            ck_assert_error(err, RBX_ERR_LIMIT, "substitutions nested deeper than 64 levels");
            rbx_error_free(err);
        }
    }
}
END_TEST

START_TEST(test_error_kinds)
{
    struct rbx_error *err = NULL;
    char *out = NULL;
    ck_assert_int_lt(rbx_df_expand_word("${MISSING?}", '\\', rbx_df_lookup_env, env, &out, &err),
                     0);
    ck_assert_error(err, RBX_ERR_USAGE, "MISSING: is not allowed to be unset");
    rbx_error_free(err);
    err = NULL;
    ck_assert_int_lt(rbx_df_expand_word("'x", '\\', NULL, NULL, &out, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "failed to process \"'x\"");
    rbx_error_free(err);
    /* no lookup: everything unset */
    ck_assert_int_eq(rbx_df_expand_word("a${X:-b}$Y", '\\', NULL, NULL, &out, NULL), 0);
    ck_assert_str_eq(out, "ab");
    free(out);
}
END_TEST

/* ---- word splitting (BuildKit's wordsTest) --------------------------------------------------- */

struct words_case {
    const char *in;
    const char *want; /* words joined with '|'; "error" for an error */
};

static const struct words_case words_cases[] = {
    {"hello", "hello"},
    {"hello${hi}bye", "hellobye"},
    {"hello${SHELL}bye", "hellobashbye"},
    {"hello${SP}bye", "hello|ab|cbye"},
    {"hello\"${SP}\"bye", "hello  ab cbye"},
    {"hello \"${SP}\"bye", "hello|  ab cbye"},
    {"hello${SP}def", "hello|ab|cdef"},
    {"hello\"${SP}\" def", "hello  ab c|def"},
    {"hello${TR}", "helloab|c"},
    {"hello${TR}d", "helloab|c|d"},
    {"hello\"${TR}\"d", "helloab c   d"},
    {"hel\"lo${TR}\"", "helloab c   "},
    {"hello\" there  \"", "hello there  "},
    {"hello there     ", "hello|there"},
    {"  hello   there", "hello|there"},
    {"hello\\ there", "hello there"},
    {"hello\" there", "error"},
    {"hello\\\" there", "hello\"|there"},
    {"hello\"\\\\there\"", "hello\\there"},
    {"hello\"\\there\"", "hello\\there"},
    {"hello'\\\\there'", "hello\\\\there"},
    {"hello'\\there'", "hello\\there"},
    {"hello'$there'", "hello$there"},
    {"a \"\" b", "a|b"},
    {"${XXX:-x y} z", "x|y|z"},
    {"\"${XXX:-x y}\" z", "x y|z"},
    {"", ""},
    {"   ", ""},
};

START_TEST(test_expand_words)
{
    const struct words_case *c = &words_cases[_i];
    char **w = NULL;
    struct rbx_error *err = NULL;
    int r = rbx_df_expand_words(c->in, '\\', rbx_df_lookup_env, env, &w, &err);
    if (strcmp(c->want, "error") == 0) {
        ck_assert_msg(r < 0, "%s: wanted an error", c->in);
        rbx_error_free(err);
        return;
    }
    ck_assert_msg(r == 0, "%s: %s", c->in, err ? err->message : "?");
    char got[256] = "";
    for (size_t i = 0; w[i]; i++) {
        if (i)
            strcat(got, "|");
        strcat(got, w[i]);
    }
    ck_assert_msg(strcmp(got, c->want) == 0, "%s: want \"%s\", got \"%s\"", c->in, c->want, got);
    rbx_strv_free(w);
}
END_TEST

/* ---- whole instructions ---------------------------------------------------------------------- */

static struct rbx_dockerfile *parse(const char *text)
{
    struct rbx_dockerfile *df = NULL;
    struct rbx_error *err = NULL;
    int r = rbx_dockerfile_parse(text, strlen(text), "Dockerfile", &df, &err);
    ck_assert_msg(r == 0, "%s", err ? err->message : "?");
    return df;
}

static char *stage_env[] = {"BASE=alpine", "TAG=3.20", "U=app",  "D=/srv",      "PORTS=80 443/udp",
                            "NAME=World",  "T=/cache", "EMPTY=", "DIR=sub dir", NULL};

static void expand_at(const struct rbx_dockerfile *df, size_t i, struct rbx_df_instr *out)
{
    struct rbx_error *err = NULL;
    const struct rbx_df_instr *in = &df->stages[0].instrs[i];
    int r = rbx_df_instr_expand(in, df->escape, rbx_df_lookup_env, stage_env, out, &err);
    ck_assert_msg(r == 0, "%s: %s", in->original, err ? err->message : "?");
}

START_TEST(test_instr_expand)
{
    struct rbx_dockerfile *df =
        parse("FROM ${BASE}:${TAG} AS b\n"
              "ENV HOME=$D \"K$U\"='v $U'\n"
              "LABEL a=\"$U:$U\"\n"
              "WORKDIR $D/\"$DIR\"\n"
              "USER ${U}\n"
              "EXPOSE $PORTS 8080\n"
              "VOLUME [\"$D/data\", \"/x\"]\n"
              "COPY --chown=$U:$U --chmod=0755 --from=b --exclude=$U *.go $D/\n"
              "COPY <<A <<'B' <<-C /etc/\nhello $NAME \\$x \"q\"\nA\nraw $NAME\nB\n\t$U\n\tC\n"
              "RUN --mount=type=cache,target=$T,id=c-$U echo $NAME\n"
              "CMD echo $NAME\n"
              "ARG X=$NAME\n"
              "STOPSIGNAL ${SIG:-SIGQUIT}\n");
    struct rbx_df_instr o = {0};

    /* FROM substitutes (the builder passes the global ARGs) */
    struct rbx_error *err = NULL;
    ck_assert_int_eq(
        rbx_df_instr_expand(&df->stages[0].from, '\\', rbx_df_lookup_env, stage_env, &o, &err), 0);
    ck_assert_str_eq(o.from.image, "alpine:3.20");
    ck_assert_str_eq(o.from.name, "b");
    rbx_df_instr_clear(&o);

    expand_at(df, 0, &o); /* ENV: keys and values, all against the environment before it */
    ck_assert_uint_eq(o.kv.n_pairs, 2);
    ck_assert_str_eq(o.kv.pairs[0].key, "HOME");
    ck_assert_str_eq(o.kv.pairs[0].value, "/srv");
    ck_assert_str_eq(o.kv.pairs[1].key, "Kapp");
    ck_assert_str_eq(o.kv.pairs[1].value, "v $U");
    rbx_df_instr_clear(&o);

    expand_at(df, 1, &o);
    ck_assert_str_eq(o.kv.pairs[0].value, "app:app");
    rbx_df_instr_clear(&o);
    expand_at(df, 2, &o);
    ck_assert_str_eq(o.arg, "/srv/sub dir");
    rbx_df_instr_clear(&o);
    expand_at(df, 3, &o);
    ck_assert_str_eq(o.arg, "app");
    rbx_df_instr_clear(&o);

    expand_at(df, 4, &o); /* EXPOSE: substituted, then split */
    ck_assert_uint_eq(rbx_strv_len(o.list.words), 3);
    ck_assert_str_eq(o.list.words[0], "80");
    ck_assert_str_eq(o.list.words[1], "443/udp");
    ck_assert_str_eq(o.list.words[2], "8080");
    rbx_df_instr_clear(&o);

    expand_at(df, 5, &o); /* JSON items are substituted too, as BuildKit does */
    ck_assert_str_eq(o.list.words[0], "/srv/data");
    rbx_df_instr_clear(&o);

    expand_at(df, 6, &o);
    ck_assert_str_eq(o.copy.chown, "app:app");
    ck_assert_str_eq(o.copy.from, "b");
    ck_assert_str_eq(o.copy.excludes[0], "$U"); /* never substituted */
    ck_assert_str_eq(o.copy.srcs[0], "*.go");
    ck_assert_str_eq(o.copy.dest, "/srv/");
    rbx_df_instr_clear(&o);

    expand_at(df, 7, &o); /* heredoc bodies: quotes are plain, '\' escapes, quoted name = raw */
    ck_assert_uint_eq(o.n_heredocs, 3);
    ck_assert_str_eq(o.heredocs[0].content, "hello World $x \"q\"\n");
    ck_assert_str_eq(o.heredocs[1].content, "raw $NAME\n");
    ck_assert_str_eq(o.heredocs[2].content, "app\n"); /* <<-: tabs stripped, then substituted */
    ck_assert(!o.heredocs[2].chomp);
    rbx_df_instr_clear(&o);

    expand_at(df, 8, &o); /* RUN: only --mount values; the command is the shell's */
    ck_assert_str_eq(o.run.cmd.args[0], "echo $NAME");
    ck_assert_str_eq(o.run.mounts[0].target, "/cache");
    ck_assert_str_eq(o.run.mounts[0].id, "c-app");
    ck_assert_str_eq(o.run.mount_specs[0], "type=cache,target=$T,id=c-$U");
    rbx_df_instr_clear(&o);

    expand_at(df, 9, &o);
    ck_assert_str_eq(o.cmd.args[0], "echo $NAME");
    rbx_df_instr_clear(&o);
    expand_at(df, 10, &o); /* ARG defaults are the builder's to substitute */
    ck_assert_str_eq(o.kv.pairs[0].value, "$NAME");
    rbx_df_instr_clear(&o);
    expand_at(df, 11, &o);
    ck_assert_str_eq(o.arg, "SIGQUIT");
    rbx_df_instr_clear(&o);
    rbx_dockerfile_free(df);
}
END_TEST

START_TEST(test_instr_expand_errors)
{
    struct rbx_dockerfile *df = parse("FROM $EMPTY\nRUN --mount=type=$EMPTY,target=/x true\n"
                                      "USER ${NOPE:?set NOPE}\n");
    struct rbx_df_instr o = {0};
    struct rbx_error *err = NULL;
    ck_assert_int_lt(
        rbx_df_instr_expand(&df->stages[0].from, '\\', rbx_df_lookup_env, stage_env, &o, &err), 0);
    ck_assert_str_eq(err->message, "base name ($EMPTY) should not be blank");
    rbx_error_free(err);
    err = NULL;
    ck_assert_int_lt(
        rbx_df_instr_expand(&df->stages[0].instrs[0], '\\', rbx_df_lookup_env, stage_env, &o, &err),
        0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "unsupported mount type \"\"");
    rbx_error_free(err);
    err = NULL;
    ck_assert_int_lt(
        rbx_df_instr_expand(&df->stages[0].instrs[1], '\\', rbx_df_lookup_env, stage_env, &o, &err),
        0);
    ck_assert_error(err, RBX_ERR_USAGE, "NOPE: set NOPE");
    rbx_error_free(err);
    rbx_dockerfile_free(df);
}
END_TEST

/* One instruction sees one environment: the builder applies ENV after substituting it all. */
START_TEST(test_env_sees_the_environment_before_it)
{
    struct rbx_dockerfile *df = parse("FROM a\nENV A=2 B=$A\n");
    char *before[] = {"A=1", NULL};
    struct rbx_df_instr o = {0};
    ck_assert_int_eq(
        rbx_df_instr_expand(&df->stages[0].instrs[0], '\\', rbx_df_lookup_env, before, &o, NULL),
        0);
    ck_assert_str_eq(o.kv.pairs[0].value, "2");
    ck_assert_str_eq(o.kv.pairs[1].value, "1");
    rbx_df_instr_clear(&o);
    rbx_dockerfile_free(df);
}
END_TEST

START_TEST(test_from_platform_and_add_checksum)
{
    struct rbx_dockerfile *df =
        parse("FROM --platform=$BUILDPLATFORM ${IMG} AS x\nADD --checksum=$SUM --chmod=$M u /d\n");
    char *e[] = {"BUILDPLATFORM=linux/arm64", "IMG=busybox", "SUM=sha256:ab", "M=0640", NULL};
    struct rbx_df_instr o = {0};
    ck_assert_int_eq(rbx_df_instr_expand(&df->stages[0].from, '\\', rbx_df_lookup_env, e, &o, NULL),
                     0);
    ck_assert_str_eq(o.from.platform, "linux/arm64");
    ck_assert_str_eq(o.from.image, "busybox");
    rbx_df_instr_clear(&o);
    ck_assert_int_eq(
        rbx_df_instr_expand(&df->stages[0].instrs[0], '\\', rbx_df_lookup_env, e, &o, NULL), 0);
    ck_assert_str_eq(o.copy.checksum, "sha256:ab");
    ck_assert_str_eq(o.copy.chmod, "0640");
    rbx_df_instr_clear(&o);
    char *globals[] = {"BUILDPLATFORM", "IMG", "OTHER", NULL}, **used = NULL;
    ck_assert_int_eq(rbx_df_instr_used_args(&df->stages[0].from, '\\', globals, &used, NULL), 0);
    ck_assert_uint_eq(rbx_strv_len(used), 2);
    ck_assert_str_eq(used[0], "BUILDPLATFORM");
    ck_assert_str_eq(used[1], "IMG");
    rbx_strv_free(used);
    rbx_dockerfile_free(df);
}
END_TEST

START_TEST(test_lookup_env_last_entry_wins)
{
    char *e[] = {"A=1", "AB=x", "A=2", "B", NULL};
    ck_assert_str_eq(rbx_df_lookup_env(e, "A"), "2");
    ck_assert_str_eq(rbx_df_lookup_env(e, "AB"), "x");
    ck_assert_ptr_null(rbx_df_lookup_env(e, "B"));
    ck_assert_ptr_null(rbx_df_lookup_env(NULL, "A"));
}
END_TEST

/* ---- the build args an instruction uses ------------------------------------------------------ */

START_TEST(test_used_args)
{
    static const struct {
        const char *line;
        const char *want; /* joined with ',' */
    } cases[] = {
        {"COPY $A ${B:-$C} /x", "A,B,C"},
        {"COPY --chown=$D x /y", "D"},
        {"COPY --from=$A x /y", ""},
        {"ENV X=$A Y=${A}", "A"},
        {"ENV $B=1", "B"},
        {"ARG Y=${C:?required}", "C"},
        {"WORKDIR /src/${Z}", ""},
        {"RUN echo hi", "A,B,C,D"},
        {"CMD echo $A", ""},
        {"EXPOSE ${B}", "B"},
        {"COPY <<EOF /f\n$C\nEOF", "C"},
        {"COPY <<'EOF' /f\n$C\nEOF", ""},
        {"LABEL l='$A'", ""},
    };
    char *args[] = {"D", "C", "B", "A", NULL};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        char text[256];
        snprintf(text, sizeof(text), "FROM a\n%s\n", cases[i].line);
        struct rbx_dockerfile *df = parse(text);
        char **used = NULL;
        ck_assert_int_eq(rbx_df_instr_used_args(&df->stages[0].instrs[0], '\\', args, &used, NULL),
                         0);
        char got[64] = "";
        for (size_t k = 0; used[k]; k++) {
            if (k)
                strcat(got, ",");
            strcat(got, used[k]);
        }
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s: want %s, got %s", cases[i].line,
                      cases[i].want, got);
        rbx_strv_free(used);
        rbx_dockerfile_free(df);
    }
}
END_TEST

/* ---- RUN --mount ----------------------------------------------------------------------------- */

struct mount_case {
    const char *spec;
    const char *want; /* a summary, or the error message */
};

static void summarize(const struct rbx_df_mount *m, char *buf, size_t len)
{
    static const char *const types[] = {"bind", "cache", "tmpfs", "secret", "ssh"};
    snprintf(buf, len, "%s target=%s source=%s from=%s id=%s sharing=%s %s%s%s%s", types[m->type],
             m->target ? m->target : "-", m->source ? m->source : "-", m->from ? m->from : "-",
             m->id ? m->id : "-", m->sharing ? m->sharing : "-", m->readonly ? "ro" : "rw",
             m->required ? " required" : "", m->has_mode ? " mode" : "", m->size ? " size" : "");
}

static const struct mount_case mount_cases[] = {
    {"type=cache,target=/root/.cache,sharing=locked",
     "cache target=/root/.cache source=- from=- id=- sharing=locked rw"},
    {"type=cache,target=/c,id=go,mode=0700,uid=1000,gid=1000",
     "cache target=/c source=- from=- id=go sharing=- rw mode"},
    {"type=bind,source=.,target=/src", "bind target=/src source=. from=- id=- sharing=- ro"},
    {"target=/src,rw", "bind target=/src source=- from=- id=- sharing=- rw"},
    {"type=bind,from=builder,src=/out,dst=/in,readwrite=true",
     "bind target=/in source=/out from=builder id=- sharing=- rw"},
    {"TYPE=Secret,id=npmrc,destination=/root/.npmrc,required",
     "secret target=/root/.npmrc source=- from=- id=npmrc sharing=- ro required"},
    {"type=secret,id=tok,env=TOKEN", "secret target=- source=- from=- id=tok sharing=- ro"},
    {"type=ssh", "ssh target=- source=- from=- id=- sharing=- ro"},
    {"type=tmpfs,target=/tmp,size=64m", "tmpfs target=/tmp source=- from=- id=- sharing=- rw size"},
    {"type=bind,\"source=a,b\",target=/x", "bind target=/x source=a,b from=- id=- sharing=- ro"},
    {"type=$T,target=/x,required,size=1",
     "bind target=/x source=- from=- id=- sharing=- ro required size"},
    {"type=foo,target=/x", "unsupported mount type \"foo\""},
    {"type=cach,target=/x", "unsupported mount type \"cach\" (did you mean cache?)"},
    {"target=/x,sharing=locked", "invalid cache sharing set for bind mount"},
    {"type=cache,target=/x,sharing=maybe", "unsupported sharing value \"maybe\""},
    {"type=bind,target=/x,size=1m", "unexpected key 'size' for mount type 'bind'"},
    {"type=bind,target=/x,mode=0755", "mode not allowed for \"bind\" type mounts"},
    {"type=tmpfs,target=/x,uid=0", "uid not allowed for \"tmpfs\" type mounts"},
    {"type=secret", "invalid secret mount. one of source, target required"},
    {"type=secret,id=a,source=b", "both source and id can't be set"},
    {"type=bind,from=$X,target=/x",
     "'from' doesn't support variable expansion, define alias stage instead"},
    {"target=/x,zzz=bar", "unexpected key 'zzz' in 'zzz=bar'"},
    {"target=/x,traget=/y", "unexpected key 'traget' in 'traget=/y' (did you mean target?)"},
    {"type=bind,target", "invalid field 'target' must be a key=value pair"},
    {"required,type=secret,id=x", "unexpected key 'required' for mount type 'bind'"},
    {"type=bind", "mount target is required for bind mounts"},
    {"type=cache,target=/x,uid=abc", "invalid value abc for uid"},
    {"type=cache,target=/x,mode=9", "invalid value 9 for mode"},
    {"type=cache,target=/x,ro=maybe", "invalid value for ro: maybe"},
    {"type=bind,sou\"rce=a,target=/x", "bare \" in non-quoted field"},
    {"\"type=bind\"x,target=/x", "extraneous or missing \" in quoted-field"},
    {"type=tmpfs,target=/x,size=lots", "invalid value lots for size"},
    {"", "empty value"},
};

START_TEST(test_mount_parse)
{
    const struct mount_case *c = &mount_cases[_i];
    struct rbx_df_mount m = {0};
    struct rbx_error *err = NULL;
    char got[256];
    if (rbx_df_mount_parse(c->spec, '\\', NULL, NULL, &m, &err) == 0) {
        summarize(&m, got, sizeof(got));
        rbx_df_mount_clear(&m);
    } else {
        snprintf(got, sizeof(got), "%s", err->message);
        ck_assert_str_eq(rbx_error_kind_name(err->kind), "malformed");
        rbx_error_free(err);
    }
    ck_assert_msg(strcmp(got, c->want) == 0, "%s:\n want %s\n got  %s", c->spec, c->want, got);
}
END_TEST

START_TEST(test_mount_parse_substitutes_values_but_not_from)
{
    char *e[] = {"T=/cache", "KIND=cache", "FROM=x", NULL};
    struct rbx_df_mount m = {0};
    ck_assert_int_eq(rbx_df_mount_parse("type=$KIND,target=${T}/go,id='a b'", '\\',
                                        rbx_df_lookup_env, e, &m, NULL),
                     0);
    ck_assert_int_eq(m.type, RBX_DF_MOUNT_CACHE);
    ck_assert_str_eq(m.target, "/cache/go");
    ck_assert_str_eq(m.id, "a b");
    ck_assert(!m.readonly);
    rbx_df_mount_clear(&m);
    struct rbx_error *err = NULL;
    ck_assert_int_lt(
        rbx_df_mount_parse("from=$FROM,target=/x", '\\', rbx_df_lookup_env, e, &m, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "'from' doesn't support variable expansion");
    rbx_error_free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("builder_expand");
    TCase *tc = tcase_create("expand");
    tcase_add_loop_test(tc, test_expand_word, 0, (int)RBX_ARRAY_SIZE(word_cases));
    tcase_add_test(tc, test_expand_with_backtick_escape);
    tcase_add_test(tc, test_nesting_bound);
    tcase_add_test(tc, test_error_kinds);
    tcase_add_loop_test(tc, test_expand_words, 0, (int)RBX_ARRAY_SIZE(words_cases));
    tcase_add_test(tc, test_instr_expand);
    tcase_add_test(tc, test_instr_expand_errors);
    tcase_add_test(tc, test_env_sees_the_environment_before_it);
    tcase_add_test(tc, test_from_platform_and_add_checksum);
    tcase_add_test(tc, test_lookup_env_last_entry_wins);
    tcase_add_test(tc, test_used_args);
    tcase_add_loop_test(tc, test_mount_parse, 0, (int)RBX_ARRAY_SIZE(mount_cases));
    tcase_add_test(tc, test_mount_parse_substitutes_values_but_not_from);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
