/* test_layers_userns.c — unpack.c and whiteout.c as rootless reprobox runs them: as root of a
 * user namespace where most ids are unmapped, trusted.* xattrs and device nodes are refused and
 * only whiteout devices may be made. Each refusal must be skipped and counted, never fatal. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Enter a user namespace mapping only our own uid and gid to 0: every other id is unmapped.
 * No mount happens here or after: only files in the test's own dir are written. */
static int enter_userns(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER) < 0)
        return -1;
    char map[64];
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) < 0)
        return -1;
    (void)write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
    return write_file("/proc/self/gid_map", map);
}

static json_t *meta_of(const char *layer_dir)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/../meta.json", layer_dir);
    return json_load_file(p, 0, NULL);
}

START_TEST(test_unpack_rootless_refusals_are_skipped_and_counted)
{
    _cleanup_free_ char *top = tl_mkdtemp();
    _cleanup_free_ char *layout = rbx_xasprintf("%s/img", top);
    _cleanup_free_ char *storedir = rbx_xasprintf("%s/store", top);
    struct tl_tar *t = tl_tar_new();
    const char *const xattrs[] = {"trusted.note=t", "user.note=u", NULL};
    tl_tar_file_ex(t, "owned", "x", 04755, 1234, 5678, 1000000000, xattrs);
    tl_tar_chardev(t, "dev/null", 1, 3);
    tl_tar_file(t, ".wh.gone", "", 0644);
    tl_tar_dir(t, "opaque", 0755);
    tl_tar_file(t, "opaque/.wh..wh..opq", "", 0644);
    size_t len;
    _cleanup_free_ char *tar = tl_tar_finish(t, &len);
    struct tl_layer l = {.tar = tar, .len = len, .compression = RBX_COMPRESSION_GZIP};
    tl_image(layout, "latest", &l, 1, NULL, NULL);

    int status = 0;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (enter_userns() < 0)
            _exit(77);
        struct rbx_store *s = NULL;
        struct rbx_image *img = NULL;
        struct rbx_error *err = NULL;
        _cleanup_free_ char *ref = rbx_xasprintf("oci:%s", layout);
        char **dirs = NULL;
        if (rbx_store_open(storedir, &s, &err) < 0 ||
            rbx_image_open(s, ref, NULL, &img, &err) < 0 ||
            rbx_image_unpack(s, img, NULL, NULL, &err) < 0 ||
            rbx_image_layer_dirs(s, img, &dirs, &err) < 0) {
            fprintf(stderr, "unpack in user namespace: %s\n", err ? err->message : "?");
            _exit(1);
        }
        json_t *meta = meta_of(dirs[0]);
        json_t *sk = json_object_get(meta, "skipped");
        struct stat st;
        _cleanup_free_ char *owned = rbx_xasprintf("%s/owned", dirs[0]);
        _cleanup_free_ char *gone = rbx_xasprintf("%s/gone", dirs[0]);
        _cleanup_free_ char *opq = rbx_xasprintf("%s/opaque", dirs[0]);
        char v[4];
        int bad = 0;
        bad |= json_integer_value(json_object_get(sk, "owners")) < 1;
        bad |= (json_integer_value(json_object_get(sk, "devices")) != 1) << 1;
        bad |= (json_integer_value(json_object_get(sk, "xattrs")) < 1) << 2;
        bad |= (stat(owned, &st) < 0 || (st.st_mode & 07777) != 04755) << 3;
        bad |= (getxattr(owned, "user.note", v, sizeof(v)) != 1) << 4;
        bad |= (lstat(gone, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0)) << 5;
        bad |= (getxattr(opq, "user.overlay.opaque", v, sizeof(v)) != 1) << 6;
        if (bad)
            fprintf(stderr, "checks failed: mask %#x\n", bad);
        _exit(bad ? 2 : 0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    tl_rm_rf(top);
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        printf("skip: user namespaces are not available here\n");
        return;
    }
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_userns");
    TCase *tc = tcase_create("userns");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unpack_rootless_refusals_are_skipped_and_counted);
    suite_add_tcase(s, tc);
    return s;
}

/* Probe first: without user namespaces there is nothing to test. */
int main(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("skip: cannot create a user namespace (unshare: not permitted)\n");
        return 77;
    }
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
