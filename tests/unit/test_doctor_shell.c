/* test_doctor_shell.c — the shell word splitter: which words are commands, what quoting and
 * expansion make of them, what compound commands hide, and that no input makes it crash. */
#include "rbx_check.h"
#include "recipes/doctor-internal.h"

#include <string.h>

static struct rbx_sh_script S;

static void parse(const char *text, char **env)
{
    struct rbx_error *err = NULL;
    int r = rbx_sh_parse(text, strlen(text), env, NULL, &S, &err);
    ck_assert_msg(r == 0, "%s", err ? err->message : "");
}

static void teardown(void)
{
    rbx_sh_script_clear(&S);
}

/* The command words, space-joined: "set node echo". */
static char *commands(void)
{
    static char buf[4096];
    buf[0] = '\0';
    for (size_t i = 0; i < S.n_cmds; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, S.cmds[i].words[0].dynamic ? "?" : S.cmds[i].words[0].text);
    }
    return buf;
}

static bool probed(const char *name)
{
    for (size_t i = 0; S.probed && S.probed[i]; i++)
        if (strcmp(S.probed[i], name) == 0)
            return true;
    return false;
}

START_TEST(test_shell_migration_script)
{
    parse("#!/bin/sh\n"
          "# The migration task's command: wait for the database, then apply the migrations.\n"
          "set -e\n"
          "node ./scripts/wait-for-db.js\n"
          "echo \"🔄 Running database migrations...\"\n"
          "./node_modules/.bin/prisma migrate deploy\n"
          "echo \"✅ Migrations completed successfully!\"\n",
          NULL);
    ck_assert_str_eq(commands(), "set node echo ./node_modules/.bin/prisma echo");
    ck_assert_uint_eq(S.cmds[1].line, 4);
    ck_assert_uint_eq(S.cmds[3].line, 6);
    ck_assert_uint_eq(S.cmds[3].n_words, 3);
    ck_assert_str_eq(S.cmds[3].words[2].text, "deploy");
    ck_assert_str_eq(S.cmds[2].words[1].text, "🔄 Running database migrations...");
}
END_TEST

START_TEST(test_shell_operators_split_commands)
{
    parse("a && b || c; d & e | f |& g\n(h; i) && { j; }\n", NULL);
    ck_assert_str_eq(commands(), "a b c d e f g h i j");
}
END_TEST

START_TEST(test_shell_quoting)
{
    parse("'p n' \"x y\" a\\ b \"q\\\"uote\" 'it'\\''s' \"\"\n", NULL);
    ck_assert_uint_eq(S.n_cmds, 1);
    ck_assert_uint_eq(S.cmds[0].n_words, 6);
    ck_assert_str_eq(S.cmds[0].words[0].text, "p n");
    ck_assert_str_eq(S.cmds[0].words[1].text, "x y");
    ck_assert_str_eq(S.cmds[0].words[2].text, "a b");
    ck_assert_str_eq(S.cmds[0].words[3].text, "q\"uote");
    ck_assert_str_eq(S.cmds[0].words[4].text, "it's");
    ck_assert_str_eq(S.cmds[0].words[5].text, "");
}
END_TEST

START_TEST(test_shell_variables_from_env_and_text)
{
    char *env[] = {"PRISMA=./node_modules/.bin/prisma", "EMPTY=", NULL};
    parse("$PRISMA migrate\n"
          "RUNNER=pnpm\n"
          "$RUNNER install\n"
          "R=a\nR=b\n$R go\n"  /* two values: unknown */
          "\"$UNSET\" x\n"     /* unknown */
          "$EMPTY node y\n"    /* an empty unquoted expansion is no word */
          "${NOPE:-npx} z\n"   /* NOPE unknown: so is the result */
          "${EMPTY:-yarn} w\n" /* known empty: the default */
          "${EMPTY-bun} v\n",  /* set (empty): not the default, so no word */
          env);
    ck_assert_str_eq(commands(), "./node_modules/.bin/prisma pnpm ? ? node ? yarn v");
}
END_TEST

START_TEST(test_shell_field_splitting)
{
    parse("CMD=\"npx prisma\"\n$CMD migrate\n\"$CMD\" migrate\n", NULL);
    ck_assert_uint_eq(S.n_cmds, 2);
    ck_assert_uint_eq(S.cmds[0].n_words, 3);
    ck_assert_str_eq(S.cmds[0].words[0].text, "npx");
    ck_assert_str_eq(S.cmds[0].words[1].text, "prisma");
    ck_assert_uint_eq(S.cmds[1].n_words, 2);
    ck_assert_str_eq(S.cmds[1].words[0].text, "npx prisma");
}
END_TEST

START_TEST(test_shell_substitutions_hold_commands)
{
    parse("VERSION=$(node -v)\necho $(which pnpm) `date` \"$(id -u)\"\nx=$((1 + 2))\nls *.js\n",
          NULL);
    ck_assert_str_eq(commands(), "node which date id echo ls");
    ck_assert(S.cmds[5].words[1].dynamic); /* a glob */
    ck_assert(probed("pnpm"));
    /* the substitution's result is not known */
    ck_assert(S.cmds[5].words[1].dynamic);
}
END_TEST

START_TEST(test_shell_compound_commands)
{
    parse("if command -v pnpm >/dev/null 2>&1; then\n"
          "  pnpm install\n"
          "elif [ -x ./node_modules/.bin/prisma ]; then\n"
          "  ./node_modules/.bin/prisma migrate deploy\n"
          "else\n"
          "  echo none\n"
          "fi\n"
          "for f in a b c; do cat \"$f\"; done\n"
          "case \"$1\" in\n"
          "  start|run) node server.js ;;\n"
          "  migrate)\n"
          "    (cd db && prisma migrate deploy) ;;\n"
          "  (*) exec \"$@\" ;;\n"
          "esac\n"
          "while read -r line; do echo \"$line\"; done < file\n"
          "until false; do break; done\n",
          NULL);
    ck_assert_str_eq(commands(),
                     "command pnpm [ ./node_modules/.bin/prisma echo cat node cd prisma exec read "
                     "echo false break");
    ck_assert(probed("pnpm"));
    ck_assert(probed("./node_modules/.bin/prisma"));
    ck_assert(!probed("none"));
}
END_TEST

START_TEST(test_shell_functions)
{
    parse("greet() { echo hi; }\nfunction other { greet; }\nfunction third() {\n  other\n}\n"
          "fourth ()\n{\n  third\n}\nfourth\n",
          NULL);
    ck_assert_str_eq(commands(), "echo greet other third fourth");
    ck_assert_uint_eq(rbx_strv_len(S.functions), 4);
    ck_assert_str_eq(S.functions[0], "greet");
    ck_assert_str_eq(S.functions[3], "fourth");
}
END_TEST

START_TEST(test_shell_heredocs_and_redirections)
{
    parse("cat <<EOF >/tmp/out\npnpm install\nnot a command\nEOF\n"
          "cat <<-'END'\n\tyarn\n\tEND\n"
          "node x.js > /tmp/log 2>&1 < in\n"
          "2>/dev/null pnpm i\n"
          "NODE_ENV=production node app.js\n",
          NULL);
    ck_assert_str_eq(commands(), "cat cat node pnpm node");
    ck_assert_uint_eq(S.cmds[2].n_words, 2);
    ck_assert_str_eq(S.cmds[2].words[1].text, "x.js");
    ck_assert_uint_eq(S.cmds[4].n_words, 2);
    ck_assert_uint_eq(S.cmds[4].line, 10);
}
END_TEST

START_TEST(test_shell_skips_tests_arithmetic_and_comments)
{
    parse("[[ -f x && -x y ]] && run\n(( i++ ))\necho a # rm -rf /\nnode \\\n  dist/index.js\n",
          NULL);
    ck_assert_str_eq(commands(), "run echo node");
    ck_assert_uint_eq(S.cmds[1].n_words, 2);
    ck_assert_str_eq(S.cmds[2].words[1].text, "dist/index.js");
}
END_TEST

START_TEST(test_shell_unterminated_quote_is_located)
{
    struct rbx_error *err = NULL;
    const char *t = "ok\necho 'x\ny\n";
    ck_assert_int_eq(rbx_sh_parse(t, strlen(t), NULL, NULL, &S, &err), -EINVAL);
    ck_assert_error(err, RBX_ERR_MALFORMED, "line 2");
    ck_assert_uint_eq(S.n_cmds, 1);
    ck_assert_str_eq(S.cmds[0].words[0].text, "ok");
    rbx_error_free(err);
}
END_TEST

START_TEST(test_shell_bounds)
{
    /* nesting deeper than the bound: no crash, the text says so */
    char deep[1024] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "$(a");
    for (int i = 0; i < 20; i++)
        strcat(deep, ")");
    parse(deep, NULL);
    ck_assert(S.truncated);
    rbx_sh_script_clear(&S);

    size_t n = (RBX_SH_MAX_COMMANDS + 100) * 2;
    char *many = malloc(n + 1);
    for (size_t i = 0; i < n; i += 2)
        memcpy(many + i, "a;", 2);
    many[n] = '\0';
    parse(many, NULL);
    ck_assert(S.truncated);
    ck_assert_uint_eq(S.n_cmds, RBX_SH_MAX_COMMANDS);
    free(many);
}
END_TEST

/* Malformed input must never crash the splitter: every prefix of a script that uses every
 * construct, and the script with each byte replaced by each special character. */
START_TEST(test_shell_survives_every_prefix_and_mutation)
{
    const char *script = "#!/bin/sh\nf() { x=\"${A:-b}\"; echo `date` $(ls \"$x\") $((1+2)); }\n"
                         "case $1 in a|b) cat <<E\nbody\nE\n;; *) [[ -x y ]] && (z) ;; esac\n"
                         "for i in 1 2; do 'q' \"w\\\"\" ${#i} 2>&1; done\n";
    size_t len = strlen(script);
    char buf[512];
    for (size_t n = 0; n <= len; n++) {
        struct rbx_error *err = NULL;
        rbx_sh_parse(script, n, NULL, NULL, &S, &err);
        rbx_error_free(err);
        rbx_sh_script_clear(&S);
    }
    const char specials[] = "'\"`$(){}\\\n;|&<>#=[]";
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(specials) - 1; k++) {
            memcpy(buf, script, len);
            buf[i] = specials[k];
            struct rbx_error *err = NULL;
            rbx_sh_parse(buf, len, NULL, NULL, &S, &err);
            rbx_error_free(err);
            rbx_sh_script_clear(&S);
        }
    }
}
END_TEST

static void parse_args(const char *text, char **args)
{
    struct rbx_error *err = NULL;
    int r = rbx_sh_parse(text, strlen(text), NULL, args, &S, &err);
    ck_assert_msg(r == 0, "%s", err ? err->message : "");
}

START_TEST(test_shell_positional_parameters)
{
    char *args[] = {"postgres", "-c", "fsync=off", NULL};
    /* an entrypoint's exec "$@": the image's Cmd is the command */
    parse_args("if [ \"$1\" = postgres ]; then echo $#; fi\nexec \"$@\"\n", args);
    ck_assert_str_eq(commands(), "[ echo exec");
    ck_assert_uint_eq(S.cmds[2].n_words, 4);
    ck_assert_str_eq(S.cmds[2].words[1].text, "postgres");
    ck_assert_str_eq(S.cmds[2].words[3].text, "fsync=off");
    ck_assert_str_eq(S.cmds[0].words[1].text, "postgres");
    ck_assert_str_eq(S.cmds[1].words[1].text, "3");
    rbx_sh_script_clear(&S);

    /* "$*" is one word; unquoted $@ splits; no arguments: no word */
    char *two[] = {"a b", "c", NULL};
    parse_args("x \"$*\"\ny $@\nz \"$@\"\n", two);
    ck_assert_uint_eq(S.cmds[0].n_words, 2);
    ck_assert_str_eq(S.cmds[0].words[1].text, "a b c");
    ck_assert_uint_eq(S.cmds[1].n_words, 4);
    ck_assert_uint_eq(S.cmds[2].n_words, 3);
    ck_assert_str_eq(S.cmds[2].words[1].text, "a b");
    rbx_sh_script_clear(&S);
    char *none[] = {NULL};
    parse_args("exec \"$@\"\n", none);
    ck_assert_uint_eq(S.cmds[0].n_words, 1);
    rbx_sh_script_clear(&S);

    /* a function's $1 is its own; after shift, nothing is known */
    parse_args("run() { \"$1\" x; }\nrun node\n\"$1\" y\nshift\n\"$1\" z\n", args);
    ck_assert_str_eq(commands(), "? run postgres shift ?");
    rbx_sh_script_clear(&S);

    /* unknown arguments: dynamic, and known to be the arguments */
    parse_args("exec \"$@\"\nexec \"x$1\"\n", NULL);
    ck_assert(S.cmds[0].words[1].dynamic);
    ck_assert(S.cmds[0].words[1].args);
    ck_assert(S.cmds[1].words[1].dynamic);
    ck_assert(!S.cmds[1].words[1].args);
}
END_TEST

START_TEST(test_shell_builtins)
{
    ck_assert(rbx_sh_builtin("cd"));
    ck_assert(rbx_sh_builtin("["));
    ck_assert(rbx_sh_builtin("."));
    ck_assert(!rbx_sh_builtin("pnpm"));
    ck_assert(!rbx_sh_builtin("node"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("doctor_shell");
    TCase *tc = tcase_create("shell");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_shell_migration_script);
    tcase_add_test(tc, test_shell_operators_split_commands);
    tcase_add_test(tc, test_shell_quoting);
    tcase_add_test(tc, test_shell_variables_from_env_and_text);
    tcase_add_test(tc, test_shell_field_splitting);
    tcase_add_test(tc, test_shell_substitutions_hold_commands);
    tcase_add_test(tc, test_shell_compound_commands);
    tcase_add_test(tc, test_shell_functions);
    tcase_add_test(tc, test_shell_heredocs_and_redirections);
    tcase_add_test(tc, test_shell_skips_tests_arithmetic_and_comments);
    tcase_add_test(tc, test_shell_unterminated_quote_is_located);
    tcase_add_test(tc, test_shell_bounds);
    tcase_add_test(tc, test_shell_survives_every_prefix_and_mutation);
    tcase_add_test(tc, test_shell_positional_parameters);
    tcase_add_test(tc, test_shell_builtins);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
