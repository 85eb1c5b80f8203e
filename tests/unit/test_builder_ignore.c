/* test_builder_ignore.c — .dockerignore as Docker reads it: the cases of Docker's documentation
 * and of moby/patternmatcher's tests (filepath.Match's included), written as tables. */
#include "builder/builder.h"
#include "rbx_check.h"

#include <string.h>

static struct rbx_ignore *load(const char *text)
{
    struct rbx_ignore *ign = NULL;
    struct rbx_error *err = NULL;
    int r = rbx_ignore_parse(text, strlen(text), ".dockerignore", &ign, &err);
    ck_assert_msg(r == 0, "%s: %s", text, err ? err->message : "?");
    return ign;
}

/* ---- one pattern: does it match the path or one of its parents? ------------------------------ */

struct one_case {
    const char *pattern, *path;
    bool match;
};

static const struct one_case one_cases[] = {
    /* patternmatcher's TestMatches ("exact" and "inexact" both match) */
    {"**", "file", true},
    {"**", "file/", true},
    {"**/", "file", true},
    {"**/", "file/", true},
    {"**", "dir/file", true},
    {"**/", "dir/file", true},
    {"**", "dir/file/", true},
    {"**/", "dir/file/", true},
    {"**/**", "dir/file", true},
    {"**/**", "dir/file/", true},
    {"dir/**", "dir/file", true},
    {"dir/**", "dir/file/", true},
    {"dir/**", "dir/dir2/file", true},
    {"dir/**", "dir/dir2/file/", true},
    {"**/dir", "dir", true},
    {"**/dir", "dir/file", true},
    {"**/dir2/*", "dir/dir2/file", true},
    {"**/dir2/*", "dir/dir2/file/", true},
    {"**/dir2/**", "dir/dir2/dir3/file", true},
    {"**/dir2/**", "dir/dir2/dir3/file/", true},
    {"**file", "file", true},
    {"**file", "dir/file", true},
    {"**/file", "dir/file", true},
    {"**file", "dir/dir/file", true},
    {"**/file", "dir/dir/file", true},
    {"**/file*", "dir/dir/file", true},
    {"**/file*", "dir/dir/file.txt", true},
    {"**/file*txt", "dir/dir/file.txt", true},
    {"**/file*.txt", "dir/dir/file.txt", true},
    {"**/file*.txt*", "dir/dir/file.txt", true},
    {"**/**/*.txt", "dir/dir/file.txt", true},
    {"**/**/*.txt2", "dir/dir/file.txt", false},
    {"**/*.txt", "file.txt", true},
    {"**/**/*.txt", "file.txt", true},
    {"a**/*.txt", "a/file.txt", true},
    {"a**/*.txt", "a/dir/file.txt", true},
    {"a**/*.txt", "a/dir/dir/file.txt", true},
    {"a/*.txt", "a/dir/file.txt", false},
    {"a/*.txt", "a/file.txt", true},
    {"a/*.txt**", "a/file.txt", true},
    {"a[b-d]e", "ae", false},
    {"a[b-d]e", "ace", true},
    {"a[b-d]e", "aae", false},
    {"a[^b-d]e", "aze", true},
    {".*", ".foo", true},
    {".*", "foo", false},
    {"abc.def", "abcdef", false},
    {"abc.def", "abc.def", true},
    {"abc.def", "abcZdef", false},
    {"abc?def", "abcZdef", true},
    {"abc?def", "abcdef", false},
    {"**/foo/bar", "foo/bar", true},
    {"**/foo/bar", "dir/foo/bar", true},
    {"**/foo/bar", "dir/dir2/foo/bar", true},
    {"abc/**", "abc", false},
    {"abc/**", "abc/def", true},
    {"abc/**", "abc/def/ghi", true},
    {"**/.foo", ".foo", true},
    {"**/.foo", "bar.foo", false},
    {"a(b)c/def", "a(b)c/def", true},
    {"a(b)c/def", "a(b)c/xyz", false},
    {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
    {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
    {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
    {"a\\\\", "a\\", true},
    {"a\\*b", "a*b", true},
    /* Go's filepath.Match tests, through patternmatcher */
    {"abc", "abc", true},
    {"*", "abc", true},
    {"*c", "abc", true},
    {"a*", "a", true},
    {"a*", "abc", true},
    {"a*", "ab/c", true},
    {"a*/b", "abc/b", true},
    {"a*/b", "a/c/b", false},
    {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
    {"a*b?c*x", "abxbbxdbxebxczzx", true},
    {"a*b?c*x", "abxbbxdbxebxczzy", false},
    {"ab[c]", "abc", true},
    {"ab[b-d]", "abc", true},
    {"ab[e-g]", "abc", false},
    {"ab[^c]", "abc", false},
    {"ab[^b-d]", "abc", false},
    {"ab[^e-g]", "abc", true},
    {"a\\*b", "ab", false},
    {"a?b",
     "a\xe2\x98\xba"
     "b",
     true},
    {"a[^a]b",
     "a\xe2\x98\xba"
     "b",
     true},
    {"a???b",
     "a\xe2\x98\xba"
     "b",
     false},
    {"a[^a][^a][^a]b",
     "a\xe2\x98\xba"
     "b",
     false},
    {"[a-\xce\xb6]*", "\xce\xb1", true},
    {"*[a-\xce\xb6]", "A", false},
    {"a?b", "a/b", false},
    {"a*b", "a/b", false},
    {"[\\]a]", "]", true},
    {"[\\-]", "-", true},
    {"[x\\-]", "x", true},
    {"[x\\-]", "-", true},
    {"[x\\-]", "z", false},
    {"[\\-x]", "x", true},
    {"[\\-x]", "-", true},
    {"[\\-x]", "a", false},
    {"*x", "xxx", true},
    /* a leading "/" or "./" is the context root; parents match */
    {"/foo", "foo/bar", true},
    {"./foo", "foo", true},
    {"foo", "a/foo", false},
    {"docs", "docs/README.md", true},
    {"docs/", "docs/README.md", true},
    {"foo/../bar", "bar/x", true},
    {"  spaced  ", "spaced", true},
};

START_TEST(test_one_pattern)
{
    const struct one_case *c = &one_cases[_i];
    struct rbx_ignore *ign = load(c->pattern);
    enum rbx_ignore_verdict v = rbx_ignore_match(ign, c->path, false);
    ck_assert_msg((v != RBX_IGNORE_KEEP) == c->match, "pattern %s, path %s: want %s", c->pattern,
                  c->path, c->match ? "excluded" : "kept");
    rbx_ignore_free(ign);
}
END_TEST

/* ---- several patterns: the last match wins --------------------------------------------------- */

struct many_case {
    const char *file, *path;
    bool is_dir;
    enum rbx_ignore_verdict want;
};

#define KEEP RBX_IGNORE_KEEP
#define EXCL RBX_IGNORE_EXCLUDE
#define TREE RBX_IGNORE_EXCLUDE_TREE

static const struct many_case many_cases[] = {
    /* Docker's documentation */
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temporary.txt", false, EXCL},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/temp", true, TREE},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "somedir/subdir/temporary.txt", false, EXCL},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "tempa", false, EXCL},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "temp", false, KEEP},
    {"# comment\n*/temp*\n*/*/temp*\ntemp?\n", "a/b/c/temp", false, KEEP},
    {"**/*.go\n", "a/b/main.go", false, EXCL},
    {"**/*.go\n", "main.go", false, EXCL},
    {"*.md\n!README.md\n", "CHANGES.md", false, EXCL},
    {"*.md\n!README.md\n", "README.md", false, KEEP},
    {"*.md\n!README*.md\nREADME-secret.md\n", "README-secret.md", false, EXCL},
    {"*.md\n!README*.md\nREADME-secret.md\n", "README-public.md", false, KEEP},
    {"*.md\nREADME-secret.md\n!README*.md\n", "README-secret.md", false, KEEP},
    /* patternmatcher's multi-pattern tests */
    {"**\n!util/docker/web\n", "util/docker/web/foo", false, KEEP},
    {"**\n!util/docker/web\nutil/docker/web/foo\n", "util/docker/web/foo", false, EXCL},
    {"**\n!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl\n",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false, KEEP},
    {"**\n!dist/*.whl\n", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false, KEEP},
    {"!fileutils.go\n*.go\n", "fileutils.go", false, EXCL},
    {"docs\n!docs/README.md\n", "docs/README.md", false, KEEP},
    {"docs/\n!docs/README.md\n", "docs/README.md", false, KEEP},
    {"docs/*\n!docs/README.md\n", "docs/README.md", false, KEEP},
    {"*.go\n!fileutils.go\n", "fileutils.go", false, KEEP},
    {"*.go\n", ".", true, KEEP},
    {"*\n", "", true, KEEP},
    /* skipping whole directories */
    {"node_modules\n", "node_modules", true, TREE},
    {"node_modules\n!node_modules/keep\n", "node_modules", true, EXCL},
    {"node_modules\n!node_modules/keep\n", "node_modules/other", true, TREE},
    {"node_modules\n!node_modules/keep\n", "node_modules/keep", true, KEEP},
    {"node_modules\n!node_modules/keep\n", "node_modules/keep/x", false, KEEP},
    {"**/tmp\n!**/tmp/keep\n", "a/tmp", true, EXCL},
    {"build\n!docs\n", "build", true, TREE},
    {"*\n!src/*.c\n", "src", true, EXCL},
    {"*\n!src/*.c\n", "lib", true, TREE},
    {"*\n!src/*.c\n", "src/x.c", false, KEEP},
    {"*\n!src/*.c\n", "src/x.h", false, EXCL},
    {"!keep\ntmp\n", "tmp", true, TREE},
    {"tmp\n!tmp\n", "tmp", true, KEEP},
    {"a/**\n!a/b/**\n", "a", true, KEEP},
    {"a/**\n!a/b/**\n", "a/b", true, EXCL},
    {"a/**\n!a/b/**\n", "a/b/c", false, KEEP},
    {"a/**\n!a/b/**\n", "a/c", true, TREE},
    {"a\n!a/b/c\n", "a/b", true, EXCL},
    {"a\n!a/b/c\n", "a/d", true, TREE},
    {"a\n!a/b[cd]\n", "a/x", true, TREE},
    {"a\n!a/b[cd]\n", "a", true, EXCL},
    {"a\n!**\n", "a", true, KEEP},
    {"a\n!*/x\n", "a", true, EXCL},
    /* paths are cleaned before matching */
    {"a/b\n", "./a//b/", true, TREE},
    {"a/b\n", "/a/b/c", false, EXCL},
};

START_TEST(test_many_patterns)
{
    const struct many_case *c = &many_cases[_i];
    struct rbx_ignore *ign = load(c->file);
    enum rbx_ignore_verdict v = rbx_ignore_match(ign, c->path, c->is_dir);
    ck_assert_msg(v == c->want, "%s| path %s%s: want %d, got %d", c->file, c->path,
                  c->is_dir ? "/" : "", c->want, v);
    rbx_ignore_free(ign);
}
END_TEST

/* ---- the file -------------------------------------------------------------------------------- */

START_TEST(test_file_lines)
{
    /* moby's ignorefile test, without its two bare "!" lines */
    struct rbx_ignore *ign =
        load("test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n"
             "  # not a comment\n./x/../y \r\n\xef\xbb\xbfnot-a-bom\nfoo//bar/\n/\n");
    static const char *const want[] = {"test1",
                                       "test2",
                                       "a/file/here",
                                       "lastfile",
                                       "!inverted/abs/path",
                                       "# not a comment",
                                       "y",
                                       "\xef\xbb\xbfnot-a-bom",
                                       "foo/bar",
                                       "/",
                                       NULL};
    char *const *got = rbx_ignore_patterns(ign);
    for (size_t i = 0; want[i]; i++) {
        ck_assert_ptr_nonnull(got[i]);
        ck_assert_str_eq(got[i], want[i]);
    }
    ck_assert_ptr_null(got[RBX_ARRAY_SIZE(want) - 1]);
    rbx_ignore_free(ign);

    ign = load("\xef\xbb\xbf*.log\r\n");
    ck_assert_str_eq(rbx_ignore_patterns(ign)[0], "*.log");
    ck_assert_int_eq(rbx_ignore_match(ign, "x.log", false), RBX_IGNORE_EXCLUDE);
    rbx_ignore_free(ign);

    ign = load("");
    ck_assert_ptr_null(rbx_ignore_patterns(ign)[0]);
    ck_assert_int_eq(rbx_ignore_match(ign, "anything", true), RBX_IGNORE_KEEP);
    rbx_ignore_free(ign);
    ck_assert_int_eq(rbx_ignore_match(NULL, "anything", true), RBX_IGNORE_KEEP);
    ck_assert_ptr_null(rbx_ignore_patterns(NULL)[0]);
}
END_TEST

struct bad_case {
    const char *file, *want;
};

static const struct bad_case bad_cases[] = {
    {"a\n!\n", ".dockerignore:2: illegal exclusion pattern: \"!\""},
    {"a\n!   \n", ".dockerignore:2: illegal exclusion pattern: \"!\""},
    {"[", ".dockerignore:1: syntax error in pattern \"[\""},
    {"ok\n[^\n", ".dockerignore:2: syntax error in pattern \"[^\""},
    {"[^bc", ".dockerignore:1: syntax error in pattern \"[^bc\""},
    {"a[", ".dockerignore:1: syntax error in pattern \"a[\""},
    {"[]a]", ".dockerignore:1: syntax error in pattern \"[]a]\""},
    {"[-]", ".dockerignore:1: syntax error in pattern \"[-]\""},
    {"[x-]", ".dockerignore:1: syntax error in pattern \"[x-]\""},
    {"[-x]", ".dockerignore:1: syntax error in pattern \"[-x]\""},
    {"[a-b-c]", ".dockerignore:1: syntax error in pattern \"[a-b-c]\""},
    {"a\\", ".dockerignore:1: syntax error in pattern \"a\\\""},
    {"!x[", ".dockerignore:1: syntax error in pattern \"x[\""},
};

START_TEST(test_bad_patterns)
{
    struct rbx_ignore *ign = NULL;
    struct rbx_error *err = NULL;
    const struct bad_case *c = &bad_cases[_i];
    ck_assert_int_lt(rbx_ignore_parse(c->file, strlen(c->file), ".dockerignore", &ign, &err), 0);
    ck_assert_ptr_null(ign);
    ck_assert_str_eq(err->message, c->want);
    ck_assert_str_eq(rbx_error_kind_name(err->kind), "malformed");
    rbx_error_free(err);
}
END_TEST

START_TEST(test_bounds)
{
    struct rbx_ignore *ign = NULL;
    struct rbx_error *err = NULL;
    size_t n = 10001;
    char *text = malloc(n * 8 + 1), *q = text;
    for (size_t i = 0; i < n; i++)
        q += sprintf(q, "p%zu\n", i);
    ck_assert_int_lt(rbx_ignore_parse(text, strlen(text), ".dockerignore", &ign, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, ".dockerignore:10001: more than 10000 patterns");
    rbx_error_free(err);
    err = NULL;
    free(text);
    text = malloc(RBX_PATH_MAX + 10);
    memset(text, 'x', RBX_PATH_MAX + 5);
    text[RBX_PATH_MAX + 5] = '\0';
    ck_assert_int_lt(rbx_ignore_parse(text, strlen(text), NULL, &ign, &err), 0);
    ck_assert_error(err, RBX_ERR_LIMIT, ".dockerignore:1: pattern longer than 4096 bytes");
    rbx_error_free(err);
    free(text);
}
END_TEST

/* A deep path against many "**" patterns stays linear: no backtracking blow-up. */
START_TEST(test_no_backtracking_blowup)
{
    struct rbx_ignore *ign = load("**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/b\n");
    char path[4000];
    char *q = path;
    for (int i = 0; i < 900; i++)
        q += sprintf(q, "a/");
    strcpy(q, "c");
    uint64_t t0 = rbx_now_ns();
    ck_assert_int_eq(rbx_ignore_match(ign, path, false), RBX_IGNORE_KEEP);
    ck_assert_uint_lt(rbx_now_ns() - t0, 2000000000ull);
    rbx_ignore_free(ign);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("builder_ignore");
    TCase *tc = tcase_create("ignore");
    tcase_add_loop_test(tc, test_one_pattern, 0, (int)RBX_ARRAY_SIZE(one_cases));
    tcase_add_loop_test(tc, test_many_patterns, 0, (int)RBX_ARRAY_SIZE(many_cases));
    tcase_add_test(tc, test_file_lines);
    tcase_add_loop_test(tc, test_bad_patterns, 0, (int)RBX_ARRAY_SIZE(bad_cases));
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_no_backtracking_blowup);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
