/* test_sandbox_pod.c — pods, containers and processes (pod.c, container.c, process.c,
 * supervise.c): a network shared by the containers of a pod, a rootfs shared by the processes of
 * a container, each of them pid 1, detached services, stops, timeouts, idle timeouts, logs,
 * reprobox's init and ptys. */
#include "sandbox_busybox.h"

#include <sys/resource.h>

static struct rbx_container *container_new(struct rbx_pod *pod)
{
    struct rbx_spec spec;
    spec_init(&spec, "unused");
    struct rbx_container *c = NULL;
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_container_create(&spec, pod, &c, &err);
    ck_assert_msg(r == 0, "container: %s", err ? err->message : "?");
    rbx_spec_clear(&spec);
    return c;
}

static struct rbx_process *spawn(struct rbx_container *c, struct rbx_spec *spec)
{
    struct rbx_process *p = NULL;
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_container_spawn(c, spec, &p, &err);
    ck_assert_msg(r == 0, "spawn: %s", err ? err->message : "?");
    return p;
}

static struct rbx_process *spawn_script(struct rbx_container *c, const char *script)
{
    struct rbx_spec spec;
    spec_init(&spec, script);
    struct rbx_process *p = spawn(c, &spec);
    rbx_spec_clear(&spec);
    return p;
}

static void wait_ok(struct rbx_process *p, struct rbx_result *res)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    int r = rbx_process_wait(p, res, &err);
    ck_assert_msg(r == 0, "wait: %s", err ? err->message : "?");
}

START_TEST(test_pod_containers_share_loopback)
{
    _cleanup_error_ struct rbx_error *err = NULL;
    struct rbx_pod *pod = NULL;
    ck_assert_int_eq(rbx_pod_create(RBX_NETWORK_NONE, "pod-host", &pod, &err), 0);
    ck_assert_int_ge(rbx_pod_netns_fd(pod), 0);
    struct rbx_container *server_c = container_new(pod);
    struct rbx_container *client_c = container_new(pod);

    /* nc stops at EOF on its stdin: keep that open until the client is done. */
    int in[2];
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    struct rbx_spec sspec;
    spec_init(&sspec, "nc -l -p 8080");
    sspec.stdin_fd = in[0];
    struct rbx_process *server = spawn(server_c, &sspec);
    rbx_spec_clear(&sspec);
    close(in[0]);
    /* The client retries until the server listens. */
    struct rbx_process *client = spawn_script(
        client_c, "i=0; while [ $i -lt 100 ]; do echo ping | nc 127.0.0.1 8080 && exit 0; "
                  "sleep 0.05; i=$((i+1)); done; exit 1");
    struct rbx_result res;
    wait_ok(client, &res);
    ck_assert_int_eq(res.exit_code, 0);
    rbx_result_clear(&res);
    close(in[1]);
    wait_ok(server, &res);
    ck_assert_str_eq(res.stdout_tail, "ping\n");
    rbx_result_clear(&res);

    /* Same uts namespace: the pod's hostname everywhere. */
    struct rbx_process *h = spawn_script(client_c, "hostname");
    wait_ok(h, &res);
    ck_assert_str_eq(res.stdout_tail, "pod-host\n");
    rbx_result_clear(&res);
    rbx_process_free(h);
    rbx_process_free(server);
    rbx_process_free(client);
    rbx_container_free(client_c);
    /* The pod stops what is left. */
    rbx_pod_free(pod);
    (void)server_c;
}
END_TEST

START_TEST(test_container_processes_share_writes_each_pid_1)
{
    struct rbx_container *c = container_new(NULL);
    struct rbx_result res;
    struct rbx_process *p = spawn_script(c, "echo migrated > /tmp/state; echo $$; ls /proc | "
                                            "grep -c '^[0-9]'");
    wait_ok(p, &res);
    /* pid 1, and its /proc shows its own pid namespace only (sh and ls and grep). */
    ck_assert_msg(strncmp(res.stdout_tail, "1\n", 2) == 0, "got %s", res.stdout_tail);
    rbx_result_clear(&res);
    rbx_process_free(p);
    p = spawn_script(c, "cat /tmp/state; echo $$");
    wait_ok(p, &res);
    ck_assert_str_eq(res.stdout_tail, "migrated\n1\n");
    rbx_result_clear(&res);
    rbx_process_free(p);
    /* The rootfs is there to look into. */
    int fd = rbx_open_in_root(rbx_container_rootfd(c), "tmp/state", O_RDONLY, 0, 0, NULL);
    ck_assert_int_ge(fd, 0);
    close(fd);
    rbx_container_free(c);
}
END_TEST

START_TEST(test_process_stop_sigterm_then_kill)
{
    struct rbx_container *c = container_new(NULL);
    struct rbx_result res;
    _cleanup_error_ struct rbx_error *err = NULL;
    /* pid 1 without a handler ignores SIGTERM: the grace runs out, SIGKILL. */
    struct rbx_process *p = spawn_script(c, "echo up; sleep 30");
    ck_assert(rbx_process_running(p));
    uint64_t t0 = rbx_now_ns();
    ck_assert_int_eq(rbx_process_stop(p, 200, &res, &err), 0);
    ck_assert_uint_ge(rbx_now_ns() - t0, 190 * 1000000ULL);
    ck_assert_int_eq(res.stop_reason, RBX_STOP_REQUESTED);
    ck_assert(res.killed_after_grace);
    ck_assert_int_eq(res.signal, SIGKILL);
    rbx_result_clear(&res);
    rbx_process_free(p);

    /* With a handler it ends in time. */
    p = spawn_script(c, "trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.05; done");
    /* Wait until the trap is set (the first output). */
    for (int i = 0; i < 200 && rbx_process_running(p); i++) {
        if (p->tail[0] && strstr(rbx_tail_text(p->tail[0]), "up"))
            break;
        usleep(10000);
    }
    ck_assert_int_eq(rbx_process_stop(p, 5000, &res, &err), 0);
    ck_assert_int_eq(res.exit_code, 7);
    ck_assert_int_eq(res.stop_reason, RBX_STOP_REQUESTED);
    ck_assert(!res.killed_after_grace);
    ck_assert_str_eq(res.stdout_tail, "up\nbye\n");
    rbx_result_clear(&res);
    rbx_process_free(p);
    rbx_container_free(c);
}
END_TEST

START_TEST(test_timeout_pid1_ignoring_sigterm_dies_after_grace)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "sleep 30");
    spec.timeout_ms = 300;
    spec.stop_timeout_ms = 300;
    uint64_t t0 = rbx_now_ns();
    run_ok(&spec, &res);
    uint64_t took = rbx_now_ns() - t0;
    ck_assert_int_eq(res.stop_reason, RBX_STOP_TIMEOUT);
    ck_assert(res.killed_after_grace);
    ck_assert_int_eq(res.exit_code, 137);
    ck_assert_msg(took >= 590 * 1000000ULL && took < 5000 * 1000000ULL, "took %llu ms",
                  (unsigned long long)(took / 1000000));
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);

    spec_init(&spec, "trap 'exit 3' TERM; while :; do sleep 0.05; done");
    spec.timeout_ms = 300;
    run_ok(&spec, &res);
    ck_assert_int_eq(res.stop_reason, RBX_STOP_TIMEOUT);
    ck_assert(!res.killed_after_grace);
    ck_assert_int_eq(res.exit_code, 3);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_idle_timeout_is_a_hang)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "echo working; sleep 30");
    spec.idle_timeout_ms = 300;
    spec.stop_timeout_ms = 100;
    run_ok(&spec, &res);
    ck_assert_int_eq(res.stop_reason, RBX_STOP_IDLE);
    ck_assert_str_eq(res.stdout_tail, "working\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);

    /* Output keeps it alive; the overall timeout still ends it. */
    spec_init(&spec, "while :; do echo tick; sleep 0.05; done");
    spec.idle_timeout_ms = 300;
    spec.timeout_ms = 800;
    spec.stop_timeout_ms = 100;
    run_ok(&spec, &res);
    ck_assert_int_eq(res.stop_reason, RBX_STOP_TIMEOUT);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* A chatty detached service keeps running while a step in another container is waited for. */
START_TEST(test_detached_service_never_blocks_on_its_pipe)
{
    struct rbx_container *svc_c = container_new(NULL);
    struct rbx_container *step_c = container_new(NULL);
    struct rbx_process *svc = spawn_script(svc_c, "head -c 3000000 /dev/zero; echo done >&2; "
                                                  "sleep 30");
    struct rbx_process *step = spawn_script(step_c, "sleep 0.5; echo step");
    struct rbx_result res;
    wait_ok(step, &res);
    ck_assert_str_eq(res.stdout_tail, "step\n");
    rbx_result_clear(&res);
    _cleanup_error_ struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_process_stop(svc, 100, &res, &err), 0);
    ck_assert_uint_eq(res.stdout_bytes, 3000000);
    ck_assert_str_eq(res.stderr_tail, "done\n");
    rbx_result_clear(&res);
    rbx_process_free(step);
    rbx_process_free(svc);
    rbx_container_free(step_c);
    rbx_container_free(svc_c);
}
END_TEST

START_TEST(test_logs_are_capped_with_a_marker)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "head -c 5000 /dev/zero | tr '\\0' a; echo err >&2");
    spec.log_dir = at(base, "logs");
    spec.log_max_bytes = 1000;
    run_ok(&spec, &res);
    ck_assert_uint_eq(res.stdout_bytes, 5000);
    _cleanup_free_ char *out = NULL, *errtext = NULL;
    _cleanup_free_ char *outp = at(spec.log_dir, "stdout.log");
    _cleanup_free_ char *errp = at(spec.log_dir, "stderr.log");
    _cleanup_error_ struct rbx_error *err = NULL;
    size_t len = 0;
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, outp, 1 << 20, &out, &len, &err), 0);
    ck_assert_int_eq(strspn(out, "a"), 1000);
    ck_assert_ptr_nonnull(strstr(out, "[reprobox: log truncated after 1000 bytes"));
    ck_assert_int_eq(rbx_read_file_at(AT_FDCWD, errp, 1 << 20, &errtext, NULL, &err), 0);
    ck_assert_str_eq(errtext, "err\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

/* An output flood goes through a fixed buffer: reprobox's memory does not grow with it. */
static long vm_hwm_kb(void)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ struct rbx_error *err = NULL;
    if (rbx_read_file_at(AT_FDCWD, "/proc/self/status", 1 << 16, &text, NULL, &err) < 0)
        return -1;
    const char *p = strstr(text, "VmHWM:");
    return p ? atol(p + 6) : -1;
}

START_TEST(test_output_flood_leaves_rss_bounded)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "echo warm");
    run_ok(&spec, &res);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
    long before = vm_hwm_kb();
    spec_init(&spec, "head -c 1000000000 /dev/zero");
    run_ok(&spec, &res);
    long after = vm_hwm_kb();
    ck_assert_uint_eq(res.stdout_bytes, 1000000000ULL);
    ck_assert_msg(after - before < 16 * 1024, "VmHWM grew by %ld kB", after - before);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_init_reaps_1000_orphans)
{
    struct rbx_spec spec;
    struct rbx_result res;
    /* Each ( ... & ) leaves an orphan that init must reap. */
    spec_init(&spec, "i=0; while [ $i -lt 1000 ]; do (sleep 0.01 &); i=$((i+1)); done; "
                     "sleep 1; echo $$; cat /proc/[0-9]*/stat | cut -d' ' -f3 | grep -c Z; "
                     "exit 5");
    spec.init = true;
    run_ok(&spec, &res);
    /* The command is pid 2 (init is 1), no zombie is left, its status is passed on. */
    ck_assert_str_eq(res.stdout_tail, "2\n0\n");
    ck_assert_int_eq(res.exit_code, 5);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_init_forwards_sigterm)
{
    struct rbx_spec spec;
    struct rbx_result res;
    /* Under init the command is not pid 1: SIGTERM's default action applies. */
    spec_init(&spec, "echo up; sleep 30");
    spec.init = true;
    spec.timeout_ms = 300;
    spec.stop_timeout_ms = 5000;
    run_ok(&spec, &res);
    ck_assert_int_eq(res.stop_reason, RBX_STOP_TIMEOUT);
    ck_assert(!res.killed_after_grace);
    ck_assert_int_eq(res.exit_code, 128 + SIGTERM);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

START_TEST(test_tty_gives_a_controlling_terminal)
{
    struct rbx_spec spec;
    struct rbx_result res;
    spec_init(&spec, "tty; test -t 0 && test -t 1 && echo term");
    spec.tty = true;
    run_ok(&spec, &res);
    ck_assert_msg(strstr(res.stdout_tail, "/dev/pts/0") && strstr(res.stdout_tail, "term"),
                  "got %s", res.stdout_tail);
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);

    /* Without -t: no terminal at all. */
    spec_init(&spec, "tty; echo $?");
    run_ok(&spec, &res);
    ck_assert_str_eq(res.stdout_tail, "not a tty\n1\n");
    rbx_result_clear(&res);
    rbx_spec_clear(&spec);
}
END_TEST

static Suite *pod_suite(void)
{
    Suite *s = suite_create("sandbox_pod");
    TCase *tc = tcase_create("pod");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pod_containers_share_loopback);
    tcase_add_test(tc, test_container_processes_share_writes_each_pid_1);
    tcase_add_test(tc, test_process_stop_sigterm_then_kill);
    tcase_add_test(tc, test_timeout_pid1_ignoring_sigterm_dies_after_grace);
    tcase_add_test(tc, test_idle_timeout_is_a_hang);
    tcase_add_test(tc, test_detached_service_never_blocks_on_its_pipe);
    tcase_add_test(tc, test_logs_are_capped_with_a_marker);
    tcase_add_test(tc, test_output_flood_leaves_rss_bounded);
    tcase_add_test(tc, test_init_reaps_1000_orphans);
    tcase_add_test(tc, test_init_forwards_sigterm);
    tcase_add_test(tc, test_tty_gives_a_controlling_terminal);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    return busybox_suite_main(argv, pod_suite);
}
