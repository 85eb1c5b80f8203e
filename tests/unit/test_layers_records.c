/* test_layers_records.c — records.c and links.c: image records and their last use, listing,
 * disk usage, the prune policy (recent images, kept runs, layers in use), and the links dir a
 * hardlink into a lower layer gets in overlay form. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *top, *storedir;

static void setup(void)
{
    top = tl_mkdtemp();
    storedir = rbx_xasprintf("%s/store", top);
}

static void teardown(void)
{
    tl_rm_rf(top);
    free(top);
    free(storedir);
}

static struct rbx_store *open_store(void)
{
    struct rbx_store *s = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_store_open(storedir, &s, &err) == 0, "%s", err ? err->message : "");
    return s;
}

static size_t count_dir(const char *sub)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", storedir, sub);
    DIR *d = opendir(p);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* An image "name" at top/<name> with one layer per file name given. */
static char *make_image(const char *name, const char *const *files, size_t n)
{
    char *layout = rbx_xasprintf("%s/%s", top, name);
    struct tl_layer *l = rbx_xcalloc(n, sizeof(*l));
    char **keep = rbx_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        struct tl_tar *t = tl_tar_new();
        tl_tar_file(t, files[i], files[i], 0644);
        size_t len;
        keep[i] = tl_tar_finish(t, &len);
        l[i] = (struct tl_layer){.tar = keep[i], .len = len, .compression = RBX_COMPRESSION_GZIP};
    }
    tl_image(layout, "latest", l, n, NULL, NULL);
    rbx_strv_free(keep);
    free(l);
    return layout;
}

static struct rbx_image *open_unpack(struct rbx_store *s, const char *layout)
{
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s", layout);
    struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_image_open(s, ref, NULL, &img, &err) == 0 &&
                      rbx_image_unpack(s, img, NULL, NULL, &err) == 0,
                  "%s", err ? err->message : "");
    return img;
}

static struct rbx_prune_stats prune(bool all, int64_t older_than)
{
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    struct rbx_prune_opts po = {.all = all, .older_than = older_than};
    struct rbx_prune_stats st;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_store_prune(s, &po, &st, &err) == 0, "%s", err ? err->message : "");
    return st;
}

/* Set every image record's last use `secs` back. */
static void age_records(int64_t secs)
{
    _cleanup_free_ char *dir = rbx_xasprintf("%s/images", storedir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        struct timespec ts[2] = {{time(NULL) - secs, 0}, {time(NULL) - secs, 0}};
        ck_assert_int_eq(utimensat(dirfd(d), de->d_name, ts, 0), 0);
    }
    closedir(d);
}

START_TEST(test_records_written_listed_and_touched)
{
    const char *files[] = {"a", "b"};
    _cleanup_free_ char *layout = make_image("img", files, 2);
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    rbx_image_free(open_unpack(s, layout));
    ck_assert_uint_eq(count_dir("images"), 1);
    age_records(3600);
    rbx_image_free(open_unpack(s, layout));
    ck_assert_uint_eq(count_dir("images"), 1);
    struct rbx_cache_list l;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_store_list(s, &l, &err), 0);
    ck_assert_uint_eq(l.n_images, 1);
    _cleanup_free_ char *want = rbx_xasprintf("oci:%s:latest", layout);
    ck_assert_str_eq(l.images[0].reference, want);
    ck_assert_str_eq(l.images[0].platform, "linux/amd64");
    ck_assert_uint_eq(l.images[0].n_layers, 2);
    ck_assert_uint_eq(l.images[0].n_layers_cached, 2);
    ck_assert_int_ge(l.images[0].last_used, time(NULL) - 60); /* touched by the second open */
    ck_assert_uint_eq(l.n_layers, 2);
    ck_assert_uint_eq(l.layers[0].used_by, 1);
    ck_assert_uint_gt(l.layers[0].bytes, 0);
    rbx_cache_list_clear(&l);
    struct rbx_cache_usage u;
    ck_assert_int_eq(rbx_store_du(s, &u, &err), 0);
    ck_assert_uint_eq(u.layers.count, 2);
    ck_assert_uint_gt(u.layers.bytes, 0);
    ck_assert_uint_eq(u.records.count, 1);
}
END_TEST

START_TEST(test_prune_keeps_recent_images_and_drops_the_rest)
{
    const char *fa[] = {"a1", "a2"}, *fb[] = {"b1"}, *fc[] = {"c1"};
    _cleanup_free_ char *a = make_image("a", fa, 2), *b = make_image("b", fb, 1),
                        *c = make_image("c", fc, 1);
    {
        _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
        rbx_image_free(open_unpack(s, a));
        rbx_image_free(open_unpack(s, b));
        rbx_image_free(open_unpack(s, c));
    }
    ck_assert_uint_eq(count_dir("layers"), 4);
    struct rbx_prune_stats st = prune(false, -1);
    ck_assert_uint_eq(st.images + st.layers, 0);
    /* b's layout is gone: it can not be opened again. */
    tl_rm_rf(b);
    st = prune(false, -1);
    ck_assert_uint_eq(st.images, 1);
    ck_assert_uint_eq(st.layers, 1);
    ck_assert_uint_eq(count_dir("layers"), 3);
    /* Older than the default week: forgotten too. */
    age_records(8 * 24 * 3600);
    st = prune(false, -1);
    ck_assert_uint_eq(st.images, 2);
    ck_assert_uint_eq(st.layers, 3);
    ck_assert_uint_eq(count_dir("layers"), 0);
    ck_assert_uint_eq(count_dir("images"), 0);
}
END_TEST

START_TEST(test_prune_leaves_layers_a_running_reprobox_uses)
{
    const char *fa[] = {"a1", "a2"};
    _cleanup_free_ char *a = make_image("a", fa, 2);
    _cleanup_(rbx_store_freep) struct rbx_store *user = open_store();
    rbx_image_free(open_unpack(user, a));
    /* Another process prunes everything while `user` still runs. */
    pid_t pid = fork();
    if (pid == 0) {
        struct rbx_prune_stats st = prune(true, -1);
        _exit(st.layers == 0 && st.layers_in_use == 2 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_uint_eq(count_dir("layers"), 2);
    user = rbx_store_free(user);
    struct rbx_prune_stats st = prune(true, -1);
    ck_assert_uint_eq(st.layers, 2);
    ck_assert_uint_eq(count_dir("layers"), 0);
}
END_TEST

START_TEST(test_prune_keeps_what_a_kept_run_stacks)
{
    const char *fa[] = {"a1"};
    _cleanup_free_ char *a = make_image("a", fa, 1);
    {
        _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
        _cleanup_(rbx_image_freep) struct rbx_image *img = open_unpack(s, a);
        struct rbx_run_dir *rd = NULL;
        struct rbx_error *err = NULL;
        ck_assert_int_eq(rbx_run_dir_create(s, &rd, &err), 0);
        rbx_run_dir_close(rd, true);
    }
    /* The image record is forgotten (0: older than now), the kept run still needs the layer. */
    struct rbx_prune_stats st = prune(false, 0);
    ck_assert_uint_eq(st.images, 1);
    ck_assert_uint_eq(st.layers, 0);
    ck_assert_uint_eq(count_dir("layers"), 1);
    st = prune(true, -1);
    ck_assert_uint_eq(st.runs, 1);
    ck_assert_uint_eq(st.layers, 1);
    ck_assert_uint_eq(count_dir("layers"), 0);
    ck_assert_uint_eq(count_dir("runs"), 0);
}
END_TEST

START_TEST(test_unpack_hardlink_to_lower_layer_copied_up_above_it)
{
    /* Overlay form: the link can not be made across layer dirs. As containerd's copy-up does,
     * target and link land together (one inode) in a dir stacked right above the layer. */
    _cleanup_free_ char *layout = rbx_xasprintf("%s/img", top);
    struct tl_tar *t1 = tl_tar_new(), *t2 = tl_tar_new();
    tl_tar_file_ex(t1, "usr/bin/tool", "tool\n", 0750, 12, 34, 1000000000, NULL);
    tl_tar_dir(t2, "usr", 0711);
    tl_tar_hardlink(t2, "usr/bin/alias", "usr/bin/tool");
    tl_tar_file(t2, "other", "o", 0644);
    size_t l1, l2;
    _cleanup_free_ char *b1 = tl_tar_finish(t1, &l1), *b2 = tl_tar_finish(t2, &l2);
    struct tl_layer l[] = {{.tar = b1, .len = l1, .compression = RBX_COMPRESSION_GZIP},
                           {.tar = b2, .len = l2, .compression = RBX_COMPRESSION_ZSTD}};
    tl_image(layout, "latest", l, 2, NULL, NULL);
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    _cleanup_(rbx_image_freep) struct rbx_image *img = open_unpack(s, layout);
    _cleanup_strv_ char **dirs = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_image_layer_dirs(s, img, &dirs, &err) == 0, "%s", err ? err->message : "");
    ck_assert_uint_eq(rbx_strv_len(dirs), 3);
    ck_assert_ptr_nonnull(strstr(dirs[2], "/layers/links-"));
    _cleanup_free_ char *tool = rbx_xasprintf("%s/usr/bin/tool", dirs[2]),
                        *alias = rbx_xasprintf("%s/usr/bin/alias", dirs[2]),
                        *usr = rbx_xasprintf("%s/usr", dirs[2]),
                        *none = rbx_xasprintf("%s/usr/bin/alias", dirs[1]);
    struct stat a, b, u;
    ck_assert_int_eq(lstat(tool, &a), 0);
    ck_assert_int_eq(lstat(alias, &b), 0);
    ck_assert_uint_eq(a.st_ino, b.st_ino);
    ck_assert_uint_eq(a.st_mode & 07777, 0750);
    ck_assert_uint_eq(a.st_uid, 12);
    ck_assert_uint_eq(a.st_gid, 34);
    ck_assert_int_eq(a.st_size, 5);
    /* Its parents show what the overlay shows there: layer 2's usr (0711), layer 1's bin. */
    ck_assert_int_eq(lstat(usr, &u), 0);
    ck_assert_uint_eq(u.st_mode & 07777, 0711);
    ck_assert_int_lt(lstat(none, &u), 0);
    /* A second image over the same layers finds it made. */
    _cleanup_(rbx_store_freep) struct rbx_store *s2 = open_store();
    _cleanup_(rbx_image_freep) struct rbx_image *img2 = open_unpack(s2, layout);
    _cleanup_strv_ char **dirs2 = NULL;
    ck_assert_int_eq(rbx_image_layer_dirs(s2, img2, &dirs2, &err), 0);
    ck_assert_str_eq(dirs2[2], dirs[2]);
}
END_TEST

START_TEST(test_unpack_hardlink_to_missing_target_refused_in_both_forms)
{
    _cleanup_free_ char *layout = rbx_xasprintf("%s/img", top);
    struct tl_tar *t1 = tl_tar_new(), *t2 = tl_tar_new();
    tl_tar_file(t1, "x", "x", 0644);
    tl_tar_hardlink(t2, "h", "nothing/here");
    size_t l1, l2;
    _cleanup_free_ char *b1 = tl_tar_finish(t1, &l1), *b2 = tl_tar_finish(t2, &l2);
    struct tl_layer l[] = {{.tar = b1, .len = l1, .compression = RBX_COMPRESSION_GZIP},
                           {.tar = b2, .len = l2, .compression = RBX_COMPRESSION_GZIP}};
    tl_image(layout, "latest", l, 2, NULL, NULL);
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s", layout);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    _cleanup_error_ struct rbx_error *err = NULL, *err2 = NULL;
    ck_assert_int_eq(rbx_image_open(s, ref, NULL, &img, &err), 0);
    ck_assert_int_lt(rbx_image_unpack(s, img, NULL, NULL, &err), 0);
    ck_assert_error(err, RBX_ERR_MALFORMED, "its target \"nothing/here\" is in no layer");
    _cleanup_free_ char *dest = rbx_xasprintf("%s/flat", top);
    ck_assert_int_lt(rbx_image_unpack_to(img, dest, NULL, NULL, &err2), 0);
    ck_assert_error(err2, RBX_ERR_MALFORMED, "is not an earlier entry");
    ck_assert_int_lt(access(dest, F_OK), 0);
    ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

START_TEST(test_run_dir_flatten_for_hosts_without_overlayfs)
{
    const char *fa[] = {"a1", "a2"};
    _cleanup_free_ char *a = make_image("a", fa, 2);
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    _cleanup_(rbx_image_freep) struct rbx_image *img = open_unpack(s, a);
    struct rbx_run_dir *rd = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_run_dir_create(s, &rd, &err), 0);
    ck_assert_ptr_null(rbx_run_dir_rootfs(rd));
    ck_assert_msg(rbx_run_dir_flatten(rd, img, NULL, &err) == 0, "%s", err ? err->message : "");
    _cleanup_free_ char *a1 = rbx_xasprintf("%s/a1", rbx_run_dir_rootfs(rd)),
                        *a2 = rbx_xasprintf("%s/a2", rbx_run_dir_rootfs(rd));
    ck_assert_int_eq(access(a1, F_OK), 0);
    ck_assert_int_eq(access(a2, F_OK), 0);
    ck_assert(!rbx_store_overlay_unusable(s));
    ck_assert_int_eq(rbx_store_set_overlay_unusable(s, "mount: ENODEV", &err), 0);
    ck_assert(rbx_store_overlay_unusable(s));
    rbx_run_dir_close(rd, false);
    ck_assert_uint_eq(count_dir("runs"), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_records");
    TCase *tc = tcase_create("records");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_records_written_listed_and_touched);
    tcase_add_test(tc, test_prune_keeps_recent_images_and_drops_the_rest);
    tcase_add_test(tc, test_prune_leaves_layers_a_running_reprobox_uses);
    tcase_add_test(tc, test_prune_keeps_what_a_kept_run_stacks);
    tcase_add_test(tc, test_unpack_hardlink_to_lower_layer_copied_up_above_it);
    tcase_add_test(tc, test_unpack_hardlink_to_missing_target_refused_in_both_forms);
    tcase_add_test(tc, test_run_dir_flatten_for_hosts_without_overlayfs);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
