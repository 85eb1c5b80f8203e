/* test_layers_store.c — store.c and rundir.c: layout and modes of the store, sweeps of what a
 * killed reprobox left, run dirs and their locks, parallel and concurrent unpacking. */
#include "layers_testlib.h"
#include "rbx_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *top, *storedir, *layout;

static void setup(void)
{
    top = tl_mkdtemp();
    storedir = rbx_xasprintf("%s/cache/reprobox", top);
    layout = rbx_xasprintf("%s/img", top);
}

static void teardown(void)
{
    tl_rm_rf(top);
    free(top);
    free(storedir);
    free(layout);
}

static bool exists_in(const char *dir, const char *name)
{
    _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

static struct rbx_store *open_store(void)
{
    struct rbx_store *s = NULL;
    struct rbx_error *err = NULL;
    ck_assert_msg(rbx_store_open(storedir, &s, &err) == 0, "%s", err ? err->message : "");
    /* Its sweep of runs/ is a thread: done before the test puts anything there. */
    rbx_store_sweep_wait(s);
    return s;
}

START_TEST(test_store_layout_and_mode)
{
    mode_t old = umask(0);
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    umask(old);
    struct stat st;
    ck_assert_int_eq(stat(storedir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    const char *subdirs[] = {"blobs/sha256", "layers", "tmp", "locks", "runs"};
    for (size_t i = 0; i < RBX_ARRAY_SIZE(subdirs); i++)
        ck_assert_msg(exists_in(storedir, subdirs[i]), "%s missing", subdirs[i]);
    ck_assert_str_eq(rbx_store_dir(s), storedir);
}
END_TEST

START_TEST(test_store_default_dir)
{
    setenv("XDG_CACHE_HOME", "/x/cache", 1);
    _cleanup_free_ char *a = rbx_store_default_dir(true);
    ck_assert_str_eq(a, "/x/cache/reprobox");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    _cleanup_free_ char *b = rbx_store_default_dir(true);
    ck_assert_str_eq(b, "/home/u/.cache/reprobox");
    _cleanup_free_ char *c = rbx_store_default_dir(false);
    ck_assert_str_eq(c, "/var/lib/reprobox");
}
END_TEST

START_TEST(test_store_sweeps_stale_tmp_but_not_locked)
{
    struct rbx_store *s = open_store();
    /* As a kill -9 mid-extraction leaves them: one with a free lock, one still held. */
    const char *stale = "aaaa.0123456789ab", *live = "bbbb.0123456789ab";
    _cleanup_free_ char *tmp = rbx_xasprintf("%s/tmp", storedir);
    tl_write(tmp, "aaaa.0123456789ab/rootfs/file", "x", 1);
    tl_write(tmp, "bbbb.0123456789ab/rootfs/file", "x", 1);
    struct rbx_error *err = NULL;
    int held = rbx_store_lock(s, "bbbb", true, &err);
    ck_assert_int_ge(held, 0);
    /* Another process opening the store while "bbbb" is being extracted. */
    pid_t pid = fork();
    if (pid == 0) {
        struct rbx_store *s2 = NULL;
        int r = rbx_store_open(storedir, &s2, NULL);
        rbx_store_free(s2); /* waits for the sweep, a thread */
        _exit(r == 0 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_eq(status, 0);
    ck_assert(!exists_in(tmp, stale));
    ck_assert(exists_in(tmp, live));
    close(held);
    rbx_store_free(s);
}
END_TEST

START_TEST(test_run_dir_create_close_and_keep)
{
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    struct rbx_run_dir *rd = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_run_dir_create(s, &rd, &err), 0);
    _cleanup_free_ char *path = rbx_xstrdup(rbx_run_dir_path(rd));
    ck_assert(exists_in(path, "upper"));
    ck_assert(exists_in(path, "work"));
    /* The overlay goes on the run dir itself: no merged/ to make and remove. */
    ck_assert(!exists_in(path, "merged"));
    ck_assert_str_eq(rbx_run_dir_merged(rd), path);
    ck_assert_ptr_nonnull(strstr(rbx_run_dir_upper(rd), "/runs/"));
    ck_assert_str_eq(rbx_run_dir_work(rd) + strlen(path), "/work");
    rd = rbx_run_dir_close(rd, false);
    ck_assert(!exists_in(path, ""));

    ck_assert_int_eq(rbx_run_dir_create(s, &rd, &err), 0);
    _cleanup_free_ char *kept = rbx_xstrdup(rbx_run_dir_path(rd));
    rbx_run_dir_close(rd, true);
    /* The next store open leaves a kept run alone. */
    struct rbx_store *s2 = open_store();
    rbx_store_free(s2);
    ck_assert(exists_in(kept, "upper"));
    /* What it stacks, so that a prune leaves those layers alone. */
    ck_assert(exists_in(kept, "layers"));
}
END_TEST

/* A throwaway run that changed nothing leaves its dirs, unlocked, to the next open's sweep; one
 * that wrote something, or ran on a flat copy, is removed at once. */
START_TEST(test_run_dir_leave_defers_only_an_unchanged_run)
{
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    struct rbx_run_dir *rd = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_run_dir_create(s, &rd, &err), 0);
    _cleanup_free_ char *left = rbx_xstrdup(rbx_run_dir_path(rd));
    _cleanup_free_ char *lock = rbx_xasprintf("%s.lock", left);
    ck_assert_ptr_null(rbx_run_dir_leave(rd));
    ck_assert(exists_in(left, "upper"));
    ck_assert_int_ne(access(lock, F_OK), 0);

    ck_assert_int_eq(rbx_run_dir_create(s, &rd, &err), 0);
    _cleanup_free_ char *changed = rbx_xstrdup(rbx_run_dir_path(rd));
    tl_write(rbx_run_dir_upper(rd), "etc/new", "x", 1);
    rbx_run_dir_leave(rd);
    ck_assert(!exists_in(changed, ""));

    /* The next open removes what was left, volatile overlay leftovers and all. */
    _cleanup_free_ char *dirty = rbx_xasprintf("%s/work/work/incompat/volatile", left);
    tl_write(dirty, "dirty", "", 0); /* with its parents */
    struct rbx_store *s2 = open_store();
    rbx_store_free(s2);
    ck_assert(!exists_in(left, ""));
}
END_TEST

/* A store opened for a run makes its run dir in the sweeping thread; the first create hands it
 * out, the next ones make their own; one never asked for is left, empty, to the next sweep. */
START_TEST(test_store_open_for_run_makes_the_run_dir_ahead)
{
    struct rbx_store *s = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_store_open_for_run(storedir, &s, &err), 0);
    struct rbx_run_dir *ahead = rbx_store_take_spare(s);
    ck_assert_ptr_nonnull(ahead);
    ck_assert_ptr_null(rbx_store_take_spare(s)); /* once */
    ck_assert(exists_in(rbx_run_dir_path(ahead), "upper"));
    rbx_run_dir_close(ahead, false);
    rbx_store_free(s);

    ck_assert_int_eq(rbx_store_open_for_run(storedir, &s, &err), 0);
    struct rbx_run_dir *a = NULL, *b = NULL;
    ck_assert_int_eq(rbx_run_dir_create(s, &a, &err), 0);
    ck_assert_int_eq(rbx_run_dir_create(s, &b, &err), 0);
    ck_assert_str_ne(rbx_run_dir_path(a), rbx_run_dir_path(b));
    ck_assert(exists_in(rbx_run_dir_path(a), "work"));
    ck_assert(exists_in(rbx_run_dir_path(b), "work"));
    rbx_run_dir_close(a, false);
    rbx_run_dir_close(b, false);
    rbx_store_free(s);

    ck_assert_int_eq(rbx_store_open_for_run(storedir, &s, &err), 0);
    rbx_store_free(s); /* its run dir never asked for */
    s = open_store();  /* swept by the next open */
    _cleanup_free_ char *runs = rbx_xasprintf("%s/runs", storedir);
    _cleanup_closedir_ DIR *d = opendir(runs);
    struct dirent *de;
    while ((de = readdir(d)))
        ck_assert_msg(de->d_name[0] == '.', "left in runs/: %s", de->d_name);
    rbx_store_free(s);
}
END_TEST

START_TEST(test_init_layer_made_once_with_the_mount_points)
{
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    struct rbx_error *err = NULL;
    _cleanup_free_ char *dir = NULL, *again = NULL;
    ck_assert_int_eq(rbx_store_init_layer(s, &dir, &err), 0);
    static const char *const names[] = {"proc", "dev", "sys"};
    for (size_t i = 0; i < 3; i++) {
        _cleanup_free_ char *p = rbx_xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        ck_assert_int_eq(lstat(p, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0755);
        ck_assert_int_eq(st.st_mtime, 0); /* the same on every machine */
    }
    /* Made once: the second call finds it, nothing is left in tmp/. */
    struct stat a, b;
    ck_assert_int_eq(stat(dir, &a), 0);
    ck_assert_int_eq(rbx_store_init_layer(s, &again, &err), 0);
    ck_assert_str_eq(dir, again);
    ck_assert_int_eq(stat(again, &b), 0);
    ck_assert_int_eq(a.st_ino, b.st_ino);
    _cleanup_free_ char *tmp = rbx_xasprintf("%s/tmp", rbx_store_dir(s));
    _cleanup_closedir_ DIR *d = opendir(tmp);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d)))
        ck_assert_msg(de->d_name[0] == '.', "left in tmp/: %s", de->d_name);
}
END_TEST

/* A maker killed half-way leaves tmp/init-v1.<random> under a lock it no longer holds: the next
 * open sweeps it, and the layer is made whole then. */
START_TEST(test_init_layer_half_made_is_swept)
{
    _cleanup_free_ char *tmp = rbx_xasprintf("%s/tmp", storedir);
    struct rbx_store *s = open_store();
    rbx_store_free(s);
    tl_write(tmp, "init-v1.0123456789ab/rootfs/proc/x", "", 0);
    s = open_store();
    ck_assert(!exists_in(tmp, "init-v1.0123456789ab"));
    _cleanup_free_ char *dir = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_store_init_layer(s, &dir, &err), 0);
    ck_assert(exists_in(dir, "sys"));
    /* Made under that lock: what a killed maker leaves has the name the sweep knows. */
    _cleanup_free_ char *locks = rbx_xasprintf("%s/locks", storedir);
    ck_assert(exists_in(locks, "init-v1"));
    rbx_store_free(s);
}
END_TEST

START_TEST(test_run_dir_sweep_removes_dead_runs_only)
{
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    struct rbx_run_dir *live = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_run_dir_create(s, &live, &err), 0);
    /* A run whose owner died: its lock file is there, nobody holds it. */
    _cleanup_free_ char *runs = rbx_xasprintf("%s/runs", storedir);
    tl_write(runs, "deadbeefdeadbeef/upper/file", "x", 1);
    tl_write(runs, "deadbeefdeadbeef.lock", "", 0);
    tl_write(runs, "0000000000000000/upper/orphan", "x", 1); /* no lock at all */
    pid_t pid = fork();
    if (pid == 0) {
        struct rbx_store *s2 = NULL;
        int r = rbx_store_open(storedir, &s2, NULL);
        rbx_store_free(s2); /* waits for the sweep, a thread */
        _exit(r == 0 ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_eq(status, 0);
    ck_assert(!exists_in(runs, "deadbeefdeadbeef"));
    ck_assert(!exists_in(runs, "deadbeefdeadbeef.lock"));
    ck_assert(!exists_in(runs, "0000000000000000"));
    ck_assert(exists_in(rbx_run_dir_path(live), "upper"));
    rbx_run_dir_close(live, false);
}
END_TEST

static void make_image(size_t n_layers)
{
    struct tl_layer *ls = rbx_xcalloc(n_layers, sizeof(*ls));
    char **tars = rbx_xcalloc(n_layers, sizeof(char *));
    for (size_t i = 0; i < n_layers; i++) {
        struct tl_tar *t = tl_tar_new();
        _cleanup_free_ char *name = rbx_xasprintf("layer%zu/file", i);
        _cleanup_free_ char *big = rbx_xmalloc(300001);
        memset(big, 'a' + (int)i, 300000);
        big[300000] = '\0';
        tl_tar_file(t, name, big, 0644);
        tars[i] = tl_tar_finish(t, &ls[i].len);
        ls[i].tar = tars[i];
        ls[i].compression = i % 2 ? RBX_COMPRESSION_ZSTD : RBX_COMPRESSION_GZIP;
    }
    tl_image(layout, "latest", ls, n_layers, NULL, NULL);
    for (size_t i = 0; i < n_layers; i++)
        free(tars[i]);
    free(tars);
    free(ls);
}

struct progress_seen {
    unsigned calls, last_done, total;
    uint64_t bytes;
};

static void on_progress(void *ud, const struct rbx_progress_event *ev)
{
    struct progress_seen *p = ud;
    p->calls++;
    p->last_done = ev->items_done;
    p->total = ev->items_total;
    p->bytes = ev->bytes_done;
}

START_TEST(test_unpack_parallel_jobs_and_progress)
{
    make_image(4);
    _cleanup_(rbx_store_freep) struct rbx_store *s = open_store();
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s", layout);
    _cleanup_(rbx_image_freep) struct rbx_image *img = NULL;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_image_open(s, ref, NULL, &img, &err), 0);
    struct progress_seen seen = {0};
    struct rbx_unpack_opts opts = {.jobs = 3, .progress = on_progress, .progress_data = &seen};
    struct rbx_unpack_stats st;
    ck_assert_msg(rbx_image_unpack(s, img, &opts, &st, &err) == 0, "%s", err ? err->message : "");
    ck_assert_uint_eq(st.layers_extracted, 4);
    ck_assert_uint_gt(seen.calls, 0);
    ck_assert_uint_eq(seen.last_done, 4);
    ck_assert_uint_eq(seen.total, 4);
    ck_assert_uint_eq(st.bytes_read, seen.bytes);
    _cleanup_strv_ char **dirs = NULL;
    ck_assert_int_eq(rbx_image_layer_dirs(s, img, &dirs, &err), 0);
    for (size_t i = 0; i < 4; i++) {
        _cleanup_free_ char *f = rbx_xasprintf("layer%zu/file", i);
        ck_assert(exists_in(dirs[i], f));
    }
}
END_TEST

struct racer {
    struct rbx_unpack_stats st;
    int r;
};

static void *race(void *arg)
{
    struct racer *rc = arg;
    struct rbx_store *s = NULL;
    struct rbx_image *img = NULL;
    _cleanup_free_ char *ref = rbx_xasprintf("oci:%s", layout);
    struct rbx_unpack_opts opts = {.jobs = 2};
    rc->r = rbx_store_open(storedir, &s, NULL);
    if (rc->r == 0)
        rc->r = rbx_image_open(s, ref, NULL, &img, NULL);
    if (rc->r == 0)
        rc->r = rbx_image_unpack(s, img, &opts, &rc->st, NULL);
    rbx_image_free(img);
    rbx_store_free(s);
    return NULL;
}

START_TEST(test_unpack_concurrent_same_image_extracts_each_layer_once)
{
    make_image(5);
    rbx_store_free(open_store());
    struct racer a = {0}, b = {0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &a);
    pthread_create(&tb, NULL, race, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.r, 0);
    ck_assert_int_eq(b.r, 0);
    ck_assert_uint_eq(a.st.layers_extracted + b.st.layers_extracted, 5);
    ck_assert_uint_eq(a.st.layers_cached + b.st.layers_cached, 5);
    _cleanup_free_ char *tmp = rbx_xasprintf("%s/tmp", storedir);
    DIR *d = opendir(tmp);
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_unpack_concurrent_processes_extract_each_layer_once)
{
    make_image(3);
    rbx_store_free(open_store());
    int pipes[2];
    ck_assert_int_eq(pipe(pipes), 0);
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            struct racer rc = {0};
            race(&rc);
            unsigned n = rc.r == 0 ? rc.st.layers_extracted : 100;
            _exit(write(pipes[1], &n, sizeof(n)) == sizeof(n) ? 0 : 1);
        }
    }
    unsigned total = 0;
    for (int i = 0; i < 2; i++) {
        unsigned n = 0;
        ck_assert_int_eq(read(pipes[0], &n, sizeof(n)), sizeof(n));
        total += n;
        waitpid(pids[i], NULL, 0);
    }
    ck_assert_uint_eq(total, 3);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("layers_store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_store_layout_and_mode);
    tcase_add_test(tc, test_store_default_dir);
    tcase_add_test(tc, test_store_sweeps_stale_tmp_but_not_locked);
    tcase_add_test(tc, test_run_dir_create_close_and_keep);
    tcase_add_test(tc, test_run_dir_sweep_removes_dead_runs_only);
    tcase_add_test(tc, test_init_layer_half_made_is_swept);
    tcase_add_test(tc, test_run_dir_leave_defers_only_an_unchanged_run);
    tcase_add_test(tc, test_store_open_for_run_makes_the_run_dir_ahead);
    tcase_add_test(tc, test_init_layer_made_once_with_the_mount_points);
    tcase_add_test(tc, test_unpack_parallel_jobs_and_progress);
    tcase_add_test(tc, test_unpack_concurrent_same_image_extracts_each_layer_once);
    tcase_add_test(tc, test_unpack_concurrent_processes_extract_each_layer_once);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
