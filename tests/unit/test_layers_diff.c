/* test_layers_diff.c — diff.c: the first difference between two layers, by entry and field, as
 * `reprobox build --check` reports it. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static char *top;
static struct rbx_store *store;

static void setup(void)
{
    top = tl_mkdtemp();
    _cleanup_free_ char *dir = rbx_xasprintf("%s/store", top);
    ck_assert_int_eq(rbx_store_open(dir, &store, NULL), 0);
}

static void teardown(void)
{
    store = rbx_store_free(store);
    tl_rm_rf(top);
    free(top);
}

/* A layer of files "name=content:mode" (mode octal), written into the store. */
static struct rbx_out_layer layer(const char *tag, const char *const *files, time_t mtime)
{
    _cleanup_free_ char *dir = rbx_xasprintf("%s/%s", top, tag);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (size_t i = 0; files[i]; i++) {
        _cleanup_free_ char *spec = rbx_xstrdup(files[i]);
        char *content = strchr(spec, '='), *mode = strrchr(spec, ':');
        *content++ = '\0';
        *mode++ = '\0';
        tl_write(dir, spec, content, strlen(content));
        _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, spec);
        ck_assert_int_eq(chmod(p, (mode_t)strtoul(mode, NULL, 8)), 0);
        struct timespec ts[2] = {{.tv_sec = mtime}, {.tv_sec = mtime}};
        ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct rbx_layer_write_opts o = {.source_date_epoch = 1 << 30};
    struct rbx_layer_blob b;
    ck_assert_int_eq(rbx_layer_write(store, fd, &o, &b, NULL), 0);
    close(fd);
    struct rbx_out_layer l = {.size = b.size, .blob_dirfd = rbx_store_blob_dirfd(store)};
    memcpy(l.digest, b.digest, sizeof(l.digest));
    memcpy(l.diff_id, b.diff_id, sizeof(l.diff_id));
    snprintf(l.media_type, sizeof(l.media_type), "application/vnd.oci.image.layer.v1.tar+gzip");
    return l;
}

static void expect(const struct rbx_out_layer *a, const struct rbx_out_layer *b, const char *path,
                   const char *field, const char *detail)
{
    struct rbx_layer_difference d;
    struct rbx_error *err = NULL;
    int r = rbx_layer_diff(a, b, &d, &err);
    ck_assert_msg(r == (field ? 1 : 0), "diff returned %d: %s", r, err ? err->message : "");
    if (field) {
        ck_assert_str_eq(d.path, path);
        ck_assert_str_eq(d.field, field);
        ck_assert_msg(strstr(d.detail, detail), "detail \"%s\" lacks \"%s\"", d.detail, detail);
    }
    rbx_layer_difference_clear(&d);
}

START_TEST(test_diff_fields)
{
    const char *base[] = {"a=1:644", "b=2:644", NULL};
    const char *mode[] = {"a=1:644", "b=2:600", NULL};
    const char *content[] = {"a=1:644", "b=3:644", NULL};
    const char *more[] = {"a=1:644", "b=2:644", "c=0:644", NULL};
    struct rbx_out_layer l0 = layer("l0", base, 100), l1 = layer("l1", base, 100),
                         l2 = layer("l2", mode, 100), l3 = layer("l3", content, 100),
                         l4 = layer("l4", base, 200), l5 = layer("l5", more, 100);
    expect(&l0, &l1, NULL, NULL, NULL);
    expect(&l0, &l2, "b", "mode", "0644 vs 0600");
    expect(&l0, &l3, "b", "content", "1 bytes");
    expect(&l0, &l4, "a", "mtime", "100 vs 200");
    expect(&l0, &l5, "c", "missing", "only in the second build");
    expect(&l5, &l0, "c", "missing", "only in the first build");
}
END_TEST

static Suite *diff_suite(void)
{
    Suite *s = suite_create("layers_diff");
    TCase *tc = tcase_create("diff");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_diff_fields);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(diff_suite)
