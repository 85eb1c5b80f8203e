/* test_builder_view.c — view.c: a rootfs read from layer dirs in overlay form without mounting:
 * the topmost layer wins, whiteouts and opaque directories hide what is below, directories merge,
 * symlinks and ".." never leave the root, .dockerignore hides the context's excluded paths. */
#include "builder/builder-internal.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static char top[64];
static char *lowers[3];
static bool have_whiteouts, have_opaque;

static void put(const char *layer, const char *path, const char *content)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", layer, path);
    _cleanup_free_ char *dir = rbx_xstrdup(p);
    for (char *s = strchr(dir + strlen(top) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        mkdir(dir, 0755);
        *s = '/';
    }
    if (content) {
        FILE *f = fopen(p, "w");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        fclose(f);
    } else {
        ck_assert_int_eq(mkdir(p, 0755), 0);
    }
}

static void link_in(const char *layer, const char *path, const char *target)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", layer, path);
    ck_assert_int_eq(symlink(target, p), 0);
}

static void setup(void)
{
    snprintf(top, sizeof(top), "/tmp/rbx-view.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(top));
    lowers[0] = rbx_xasprintf("%s/l0", top); /* lowest */
    lowers[1] = rbx_xasprintf("%s/l1", top);
    lowers[2] = NULL;
    mkdir(lowers[0], 0755);
    mkdir(lowers[1], 0755);
    put(lowers[0], "a/x", "0");
    put(lowers[0], "a/y", "hidden by a whiteout");
    put(lowers[0], "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    put(lowers[0], "d/inner/f", "hidden by an opaque dir");
    put(lowers[0], "m/child", "under a dir a file replaces");
    link_in(lowers[0], "link-abs", "/a");
    link_in(lowers[0], "link-rel", "a");
    link_in(lowers[0], "loop", "loop");
    link_in(lowers[0], "esc", "../../../../etc");
    put(lowers[1], "a/z", "1");
    put(lowers[1], "a/x", "upper x");
    put(lowers[1], "m", "a file now");
    put(lowers[1], "d/new", "new");
    _cleanup_free_ char *wh = rbx_xasprintf("%s/a/y", lowers[1]);
    have_whiteouts = mknod(wh, S_IFCHR | 0, makedev(0, 0)) == 0;
    _cleanup_free_ char *d = rbx_xasprintf("%s/d", lowers[1]);
    have_opaque = setxattr(d, "user.overlay.opaque", "y", 1, 0) == 0;
}

static void teardown(void)
{
    rbx_rm_rf_at(AT_FDCWD, top, NULL);
    free(lowers[0]);
    free(lowers[1]);
}

static struct rbx_view *view(void)
{
    struct rbx_view *v = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_view_new(lowers, true, NULL, &v, &err), 0);
    return v;
}

static char *read_path(struct rbx_view *v, const char *path)
{
    char *out = NULL;
    size_t len;
    int r = rbx_view_read_file(v, path, 4096, &out, &len, NULL);
    return r < 0 ? NULL : out;
}

static char *listing(struct rbx_view *v, const char *path)
{
    struct rbx_vnode n;
    ck_assert_int_eq(rbx_view_lookup(v, path, true, &n, NULL), 0);
    _cleanup_strv_ char **names = NULL;
    ck_assert_int_eq(rbx_view_list(v, &n, &names, NULL), 0);
    rbx_vnode_clear(&n);
    char *s = rbx_xstrdup("");
    for (size_t i = 0; names[i]; i++) {
        char *t = rbx_xasprintf("%s%s%s", s, i ? " " : "", names[i]);
        free(s);
        s = t;
    }
    return s;
}

START_TEST(test_view_top_layer_wins_and_dirs_merge)
{
    _cleanup_(rbx_view_freep) struct rbx_view *v = view();
    _cleanup_free_ char *x = read_path(v, "a/x"), *z = read_path(v, "/a/z");
    ck_assert_str_eq(x, "upper x");
    ck_assert_str_eq(z, "1");
    struct rbx_vnode n;
    ck_assert_int_eq(rbx_view_lookup(v, "a/x", true, &n, NULL), 0);
    ck_assert_uint_eq(n.layer, 0); /* counted from the top */
    ck_assert_str_eq(n.path, "a/x");
    rbx_vnode_clear(&n);
    _cleanup_free_ char *l = listing(v, "a");
    ck_assert_str_eq(l, have_whiteouts ? "x z" : "x y z");
}
END_TEST

START_TEST(test_view_whiteout_hides_below)
{
    if (!have_whiteouts)
        return;
    _cleanup_(rbx_view_freep) struct rbx_view *v = view();
    struct rbx_vnode n;
    ck_assert_int_eq(rbx_view_lookup(v, "a/y", true, &n, NULL), -ENOENT);
}
END_TEST

START_TEST(test_view_opaque_dir_hides_below)
{
    if (!have_opaque)
        return;
    _cleanup_(rbx_view_freep) struct rbx_view *v = view();
    struct rbx_vnode n;
    ck_assert_int_eq(rbx_view_lookup(v, "d/inner", true, &n, NULL), -ENOENT);
    _cleanup_free_ char *l = listing(v, "d");
    ck_assert_str_eq(l, "new");
}
END_TEST

START_TEST(test_view_file_over_dir)
{
    _cleanup_(rbx_view_freep) struct rbx_view *v = view();
    _cleanup_free_ char *m = read_path(v, "m");
    ck_assert_str_eq(m, "a file now");
    struct rbx_vnode n;
    ck_assert_int_eq(rbx_view_lookup(v, "m/child", true, &n, NULL), -ENOTDIR);
}
END_TEST

START_TEST(test_view_symlinks_resolve_inside)
{
    _cleanup_(rbx_view_freep) struct rbx_view *v = view();
    _cleanup_free_ char *a = read_path(v, "link-abs/x"), *r = read_path(v, "link-rel/z");
    ck_assert_str_eq(a, "upper x");
    ck_assert_str_eq(r, "1");
    struct rbx_vnode n;
    ck_assert_int_eq(rbx_view_lookup(v, "link-abs", false, &n, NULL), 0);
    ck_assert(S_ISLNK(n.st.st_mode));
    rbx_vnode_clear(&n);
    ck_assert_int_eq(rbx_view_lookup(v, "link-abs", true, &n, NULL), 0);
    ck_assert(S_ISDIR(n.st.st_mode));
    ck_assert_str_eq(n.path, "a");
    rbx_vnode_clear(&n);
}
END_TEST

START_TEST(test_view_symlink_escape_stays_in_root)
{
    /* "esc" climbs far above the root: it lands on the root's own /etc, never the host's. */
    _cleanup_(rbx_view_freep) struct rbx_view *v = view();
    _cleanup_free_ char *p = read_path(v, "esc/passwd");
    ck_assert_str_eq(p, "root:x:0:0::/root:/bin/sh\n");
    _cleanup_free_ char *q = read_path(v, "../../../etc/passwd");
    ck_assert_str_eq(q, "root:x:0:0::/root:/bin/sh\n");
    _cleanup_free_ char *s = read_path(v, "esc/shadow");
    ck_assert_ptr_null(s); /* the host has one; the root does not */
}
END_TEST

START_TEST(test_view_symlink_loop)
{
    _cleanup_(rbx_view_freep) struct rbx_view *v = view();
    struct rbx_vnode n;
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_lt(rbx_view_lookup(v, "loop/x", true, &n, &err), 0);
    ck_assert_error(err, RBX_ERR_IO, "too many symlinks");
}
END_TEST

START_TEST(test_view_context_ignore)
{
    put(lowers[0], "logs/a.log", "x");
    put(lowers[0], "keep.txt", "k");
    put(lowers[0], "app.log", "y");
    const char pats[] = "*.log\nlogs\n";
    struct rbx_ignore *ign = NULL;
    ck_assert_int_eq(rbx_ignore_parse(pats, strlen(pats), ".dockerignore", &ign, NULL), 0);
    char *one[] = {lowers[0], NULL};
    struct rbx_view *v = NULL;
    ck_assert_int_eq(rbx_view_new(one, false, ign, &v, NULL), 0);
    struct rbx_vnode n;
    ck_assert_int_eq(rbx_view_lookup(v, "app.log", true, &n, NULL), -ENOENT);
    ck_assert_int_eq(rbx_view_lookup(v, "logs/a.log", true, &n, NULL), -ENOENT);
    _cleanup_free_ char *k = read_path(v, "keep.txt");
    ck_assert_str_eq(k, "k");
    _cleanup_free_ char *l = listing(v, "");
    ck_assert_str_eq(l, "a d esc etc keep.txt link-abs link-rel loop m");
    rbx_view_free(v);
    rbx_ignore_free(ign);
}
END_TEST

START_TEST(test_view_path_clean_clamped)
{
    static const char *cases[][2] = {
        {"", ""},           {"/", ""},       {"a/b", "a/b"},   {"/a//b/", "a/b"},
        {"./a/./b", "a/b"}, {"a/../b", "b"}, {"../../x", "x"}, {"/a/b/../../..", ""},
        {"a/..", ""},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *c = rbx_path_clean_clamped(cases[i][0]);
        ck_assert_msg(strcmp(c, cases[i][1]) == 0, "\"%s\" -> \"%s\", want \"%s\"", cases[i][0], c,
                      cases[i][1]);
    }
}
END_TEST

static Suite *view_suite(void)
{
    Suite *s = suite_create("builder_view");
    TCase *tc = tcase_create("view");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_view_top_layer_wins_and_dirs_merge);
    tcase_add_test(tc, test_view_whiteout_hides_below);
    tcase_add_test(tc, test_view_opaque_dir_hides_below);
    tcase_add_test(tc, test_view_file_over_dir);
    tcase_add_test(tc, test_view_symlinks_resolve_inside);
    tcase_add_test(tc, test_view_symlink_escape_stays_in_root);
    tcase_add_test(tc, test_view_symlink_loop);
    tcase_add_test(tc, test_view_context_ignore);
    tcase_add_test(tc, test_view_path_clean_clamped);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(view_suite)
