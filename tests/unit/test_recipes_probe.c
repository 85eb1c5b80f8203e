/* test_recipes_probe.c — probes from inside a network namespace: TCP, HTTP, listening ports, the
 * readiness loop, and that a fresh namespace does not see this one's servers. */
#include "recipes/recipes.h"
#include "rbx_check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>

static int self_netns(void)
{
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* A listening socket on 127.0.0.1 and an ephemeral port. */
static int listener(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s, 8), 0);
    socklen_t len = sizeof(a);
    getsockname(s, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return s;
}

/* A port nothing listens on: bind, read the port, close. */
static int closed_port(void)
{
    int port;
    close(listener(&port));
    return port;
}

struct server {
    int fd;
    const char *reply;
    unsigned requests;
};

static void *serve(void *p)
{
    struct server *s = p;
    for (unsigned i = 0; i < s->requests; i++) {
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            break;
        char buf[2048];
        (void)!read(c, buf, sizeof(buf));
        (void)!write(c, s->reply, strlen(s->reply));
        close(c);
    }
    return NULL;
}

START_TEST(test_tcp_connect)
{
    int port, ns = self_netns();
    int l = listener(&port);
    ck_assert_int_eq(rbx_tcp_connect_in_netns(ns, "127.0.0.1", port, 1000), 0);
    ck_assert_int_eq(rbx_tcp_connect_in_netns(-1, "localhost", port, 1000), 0);
    ck_assert_int_eq(rbx_tcp_connect_in_netns(ns, "127.0.0.1", closed_port(), 1000), -ECONNREFUSED);
    close(l);
    close(ns);
}
END_TEST

START_TEST(test_http_get_status_and_body)
{
    int port, ns = self_netns();
    struct server s = {.fd = listener(&port), .requests = 1,
                       .reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"db\":\"down\"}"};
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
    /* A proxy in the environment must not take loopback requests elsewhere. */
    setenv("http_proxy", "http://192.0.2.1:3128", 1);
    struct rbx_http_response r = {0};
    ck_assert_int_eq(rbx_http_get_in_netns(ns, url, 2000, &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "{\"db\":\"down\"}");
    rbx_http_response_clear(&r);
    pthread_join(t, NULL);
    close(s.fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    ck_assert_int_eq(rbx_http_get_in_netns(ns, url, 2000, &r), -ECONNREFUSED);
    ck_assert_int_eq(r.status, 0);
    ck_assert(r.error[0] != '\0');
    rbx_http_response_clear(&r);
    close(ns);
}
END_TEST

START_TEST(test_proc_net_tcp_parser)
{
    const char *v4 =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 1 1 0 100 0 0 10 0\n"
        "   1: 00000000:0FA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n"
        "   2: 0100007F:0FA0 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1\n";
    const char *v6 =
        "  sl  local_address                         remote_address                        st ...\n"
        "   0: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 4 1\n"
        "   1: 00000000000000000000000001000000:0FA0 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 5 1\n";
    int ports[8];
    size_t n = 0;
    rbx_proc_net_tcp_listening(v4, ports, 8, &n);
    rbx_proc_net_tcp_listening(v6, ports, 8, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ports[0], 3000);
    ck_assert_int_eq(ports[1], 4000); /* once, though v4 and v6 both listen; the connection is not */
    ck_assert_int_eq(ports[2], 5432);
}
END_TEST

START_TEST(test_listening_ports_of_this_netns)
{
    int port, ns = self_netns();
    int l = listener(&port);
    int ports[4096];
    size_t n = 0;
    struct rbx_error *err = NULL;
    ck_assert_int_eq(rbx_listening_ports_in_netns(ns, ports, 4096, &n, &err), 0);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        seen = seen || ports[i] == port;
    ck_assert_msg(seen, "port %d not among %zu listening ports", port, n);
    close(l);
    close(ns);
}
END_TEST

static bool gone(void *u) { return false; }
static bool alive(void *u) { return true; }

START_TEST(test_probe_gives_up_when_the_process_is_gone)
{
    struct rbx_probe p = {.kind = RBX_PROBE_TCP, .host = "127.0.0.1", .port = closed_port(),
                          .timeout_ms = 10000, .interval_ms = 50};
    struct rbx_probe_env env = {.netns_fd = -1, .alive = gone};
    struct rbx_probe_result res;
    rbx_probe_run(&p, &env, &res);
    ck_assert(!res.ready);
    ck_assert(res.target_exited);
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert_uint_lt(res.elapsed_ms, 2000);
}
END_TEST

START_TEST(test_probe_times_out_and_retries)
{
    struct rbx_probe p = {.kind = RBX_PROBE_TCP, .host = "127.0.0.1", .port = closed_port(),
                          .timeout_ms = 400, .interval_ms = 50};
    struct rbx_probe_env env = {.netns_fd = -1, .alive = alive};
    struct rbx_probe_result res;
    rbx_probe_run(&p, &env, &res);
    ck_assert(!res.ready);
    ck_assert(!res.ever_connected);
    ck_assert(!res.target_exited);
    ck_assert_uint_ge(res.attempts, 3);
    ck_assert_uint_ge(res.elapsed_ms, 400);
    ck_assert_uint_lt(res.elapsed_ms, 3000);
    ck_assert_msg(strstr(res.last_error, "Connection refused"), "%s", res.last_error);
}
END_TEST

START_TEST(test_http_probe_wants_its_status)
{
    int port;
    struct server s = {.fd = listener(&port), .requests = 1000,
                       .reply = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
    struct rbx_probe p = {.kind = RBX_PROBE_HTTP, .url = url, .timeout_ms = 300, .interval_ms = 100};
    struct rbx_probe_env env = {.netns_fd = -1, .alive = alive};
    struct rbx_probe_result res;
    rbx_probe_run(&p, &env, &res);
    ck_assert(!res.ready);
    ck_assert(res.ever_connected);
    ck_assert_int_eq(res.last_status, 500);
    p.status = 500; /* a probe may want exactly that */
    p.timeout_ms = 2000;
    rbx_probe_run(&p, &env, &res);
    ck_assert(res.ready);
    shutdown(s.fd, SHUT_RDWR);
    pthread_join(t, NULL);
    close(s.fd);
}
END_TEST

static int exec_count;
static int fake_exec(void *u, char *const *argv, uint64_t limit)
{
    return ++exec_count < 3 ? 1 : 0;
}

START_TEST(test_exec_probe_until_exit_0)
{
    char *argv[] = {"pg_isready", NULL};
    struct rbx_probe p = {.kind = RBX_PROBE_EXEC, .argv = argv, .timeout_ms = 5000, .interval_ms = 10};
    struct rbx_probe_env env = {.netns_fd = -1, .exec = fake_exec, .alive = alive};
    struct rbx_probe_result res;
    exec_count = 0;
    rbx_probe_run(&p, &env, &res);
    ck_assert(res.ready);
    ck_assert_uint_eq(res.attempts, 3);
}
END_TEST

/* A fresh network namespace: loopback down, this namespace's servers out of reach. */
static void *make_netns(void *p)
{
    int *fd = p;
    if (unshare(CLONE_NEWNET) == 0)
        *fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return NULL;
}

START_TEST(test_probe_runs_in_the_given_namespace_only)
{
    int other = -1;
    pthread_t t;
    pthread_create(&t, NULL, make_netns, &other);
    pthread_join(t, NULL);
    if (other < 0) {
        printf("skip: cannot create a network namespace here\n");
        return;
    }
    int port, l = listener(&port);
    ck_assert_int_eq(rbx_tcp_connect_in_netns(-1, "127.0.0.1", port, 1000), 0);
    ck_assert_int_lt(rbx_tcp_connect_in_netns(other, "127.0.0.1", port, 1000), 0);
    int ports[64];
    size_t n = 0;
    ck_assert_int_eq(rbx_listening_ports_in_netns(other, ports, 64, &n, NULL), 0);
    ck_assert_uint_eq(n, 0);
    close(l);
    close(other);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("recipes_probe");
    TCase *tc = tcase_create("probe");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_tcp_connect);
    tcase_add_test(tc, test_http_get_status_and_body);
    tcase_add_test(tc, test_proc_net_tcp_parser);
    tcase_add_test(tc, test_listening_ports_of_this_netns);
    tcase_add_test(tc, test_probe_gives_up_when_the_process_is_gone);
    tcase_add_test(tc, test_probe_times_out_and_retries);
    tcase_add_test(tc, test_http_probe_wants_its_status);
    tcase_add_test(tc, test_exec_probe_until_exit_0);
    tcase_add_test(tc, test_probe_runs_in_the_given_namespace_only);
    suite_add_tcase(s, tc);
    return s;
}

RBX_TEST_MAIN(suite)
