/* test_builder_copy.c — copy.c's rules: --chmod (octal and symbolic, as BuildKit takes them) and
 * --chown resolved in the target stage's /etc/passwd and /etc/group, as BuildKit does. */
#include "builder/builder-internal.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

START_TEST(test_copy_chmod)
{
    static const struct {
        const char *spec;
        mode_t from;
        bool dir;
        mode_t want;
    } cases[] = {
        {"0755", 0600, false, 0755},
        {"644", 0777, false, 0644},
        {"4755", 0644, false, 04755},
        {"u+x", 0644, false, 0744},
        {"go-w", 0666, false, 0644},
        {"a=r", 0755, false, 0444},
        {"u=rwx,g=rx,o=", 0600, false, 0750},
        {"+X", 0644, true, 0755},  /* X: directories ... */
        {"+X", 0644, false, 0644}, /* ... and files already executable by someone */
        {"+X", 0744, false, 0755},
        {"u+s", 0755, false, 04755},
        {"+t", 0755, true, 01755},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        mode_t got = 0;
        struct rbx_error *err = NULL;
        ck_assert_msg(rbx_chmod_parse(cases[i].spec, cases[i].from, cases[i].dir, &got, &err) == 0,
                      "%s: %s", cases[i].spec, err ? err->message : "");
        ck_assert_msg(got == cases[i].want, "%s on %04o: %04o, want %04o", cases[i].spec,
                      cases[i].from, got, cases[i].want);
    }
    static const char *bad[] = {"999", "07778", "u+q", "z+x", "u", ""};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(bad); i++) {
        mode_t got;
        _cleanup_error_ struct rbx_error *err = NULL;
        ck_assert_msg(rbx_chmod_parse(bad[i], 0644, false, &got, &err) < 0, "%s accepted", bad[i]);
        ck_assert_error(err, RBX_ERR_USAGE, "invalid chmod parameter");
    }
}
END_TEST

static char dir[64];

static struct rbx_view *passwd_view(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rbx-chown.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    _cleanup_free_ char *etc = rbx_xasprintf("%s/etc", dir);
    ck_assert_int_eq(mkdir(etc, 0755), 0);
    _cleanup_close_ int fd = open(etc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char pw[] = "root:x:0:0:root:/root:/bin/sh\n"
                      "app:x:1000:1001::/home/app:/bin/sh\n"
                      "odd:x::5::/:/bin/sh\n";
    const char gr[] = "root:x:0:\nusers:x:100:app\nstaff:x:50:\n";
    ck_assert_int_eq(rbx_write_file_atomic_at(fd, "passwd", pw, sizeof(pw) - 1, 0644, NULL), 0);
    ck_assert_int_eq(rbx_write_file_atomic_at(fd, "group", gr, sizeof(gr) - 1, 0644, NULL), 0);
    char *dirs[] = {dir, NULL};
    struct rbx_view *v = NULL;
    ck_assert_int_eq(rbx_view_new(dirs, true, NULL, &v, NULL), 0);
    return v;
}

START_TEST(test_copy_chown)
{
    _cleanup_(rbx_view_freep) struct rbx_view *v = passwd_view();
    static const struct {
        const char *spec;
        uid_t uid;
        gid_t gid;
    } cases[] = {
        {"app", 1000, 1001},      /* a name: its passwd uid and primary group */
        {"1000", 1000, 1000},     /* a number: the same number as group */
        {"app:users", 1000, 100}, /* names of passwd and group */
        {"app:50", 1000, 50},     /* a number for the group */
        {"42:staff", 42, 50},     /* an id not in passwd is used as it is */
        {"7:8", 7, 8},
    };
    for (size_t i = 0; i < RBX_ARRAY_SIZE(cases); i++) {
        uid_t u;
        gid_t g;
        struct rbx_error *err = NULL;
        ck_assert_msg(rbx_chown_resolve(v, cases[i].spec, &u, &g, &err) == 0, "%s: %s",
                      cases[i].spec, err ? err->message : "");
        ck_assert_msg(u == cases[i].uid && g == cases[i].gid, "%s: %u:%u", cases[i].spec, u, g);
    }
    uid_t u;
    gid_t g;
    _cleanup_error_ struct rbx_error *e1 = NULL, *e2 = NULL;
    ck_assert_int_lt(rbx_chown_resolve(v, "nobody", &u, &g, &e1), 0);
    ck_assert_error(e1, RBX_ERR_NOT_FOUND, "unable to find user nobody");
    ck_assert_int_lt(rbx_chown_resolve(v, "app:wheel", &u, &g, &e2), 0);
    ck_assert_error(e2, RBX_ERR_NOT_FOUND, "unable to find group wheel");
    rbx_rm_rf_at(AT_FDCWD, dir, NULL);
}
END_TEST

static Suite *copy_suite(void)
{
    Suite *s = suite_create("builder_copy");
    TCase *tc = tcase_create("copy");
    tcase_add_test(tc, test_copy_chmod);
    tcase_add_test(tc, test_copy_chown);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(copy_suite)
