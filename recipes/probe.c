/* probe.c — reaching a pod from inside its network namespace: HTTP GETs (libcurl), TCP connects
 * and the listening ports, each from a short-lived thread that setns()es into the pod's network
 * namespace (a namespace belongs to a thread, so the rest of reprobox never leaves its own),
 * and the readiness loop that retries a probe until it succeeds or its time is up. */
#include "recipes/recipes.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HTTP_BODY_MAX (64u << 10)

/* ---- running a function inside a network namespace ---------------------------------------------
 */

struct netns_job {
    int netns_fd;
    void (*fn)(void *arg);
    void *arg;
    int setns_errno;
};

static void *netns_thread(void *p)
{
    struct netns_job *j = p;
    if (j->netns_fd >= 0 && setns(j->netns_fd, CLONE_NEWNET) < 0) {
        j->setns_errno = errno;
        return NULL;
    }
    j->fn(j->arg);
    return NULL;
}

static int run_in_netns(int netns_fd, void (*fn)(void *), void *arg)
{
    struct netns_job j = {.netns_fd = netns_fd, .fn = fn, .arg = arg};
    pthread_t t;
    int r = rbx_thread_create_quiet(&t, netns_thread, &j);
    if (r != 0)
        return -r;
    pthread_join(t, NULL);
    return j.setns_errno ? -j.setns_errno : 0;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_job {
    const char *url;
    uint64_t limit_ms;
    struct rbx_http_response *r;
    size_t len;
    int rc;
};

static size_t http_write(char *data, size_t size, size_t nmemb, void *p)
{
    struct http_job *j = p;
    size_t n = size * nmemb, room = HTTP_BODY_MAX - j->len;
    size_t take = n < room ? n : room;
    if (take) {
        j->r->body = rbx_xrealloc(j->r->body, j->len + take + 1);
        memcpy(j->r->body + j->len, data, take);
        j->len += take;
        j->r->body[j->len] = '\0';
    }
    return n; /* the rest is dropped, not an error */
}

static void http_do(void *p)
{
    struct http_job *j = p;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(j->r->error, sizeof(j->r->error), "libcurl could not start");
        j->rc = -ENOMEM;
        return;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* A proxy from the caller's environment would send 127.0.0.1 somewhere else. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)j->limit_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)j->limit_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "reprobox-probe/" REPROBOX_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        j->r->status = status;
        j->rc = 0;
    } else {
        snprintf(j->r->error, sizeof(j->r->error), "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        j->rc = cc == CURLE_COULDNT_CONNECT      ? -ECONNREFUSED
                : cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
                                                 : -EPROTO;
    }
    curl_easy_cleanup(c);
}

int rbx_http_get_in_netns(int netns_fd, const char *url, uint64_t limit_ms,
                          struct rbx_http_response *r)
{
    pthread_once(&curl_once, curl_init);
    rbx_http_response_clear(r);
    struct http_job j = {.url = url, .limit_ms = limit_ms ? limit_ms : 5000, .r = r, .rc = -EIO};
    int rc = run_in_netns(netns_fd, http_do, &j);
    if (rc < 0) {
        snprintf(r->error, sizeof(r->error), "cannot enter the pod's network: %s", strerror(-rc));
        return rc;
    }
    return j.rc;
}

/* ---- TCP ------------------------------------------------------------------------------------- */

struct tcp_job {
    const char *host;
    int port;
    uint64_t limit_ms;
    int rc;
};

static int connect_one(const struct sockaddr *sa, socklen_t len, uint64_t limit_ms)
{
    _cleanup_close_ int s = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    if (connect(s, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    struct pollfd p = {.fd = s, .events = POLLOUT};
    int n;
    do
        n = poll(&p, 1, (int)limit_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return -ETIMEDOUT;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -errno;
    return soerr ? -soerr : 0;
}

static void tcp_do(void *p)
{
    struct tcp_job *j = p;
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)j->port)};
    if (inet_pton(AF_INET, j->host, &in4.sin_addr) == 1) {
        j->rc = connect_one((struct sockaddr *)&in4, sizeof(in4), j->limit_ms);
        return;
    }
    if (inet_pton(AF_INET6, j->host, &in6.sin6_addr) == 1) {
        j->rc = connect_one((struct sockaddr *)&in6, sizeof(in6), j->limit_ms);
        return;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", j->port);
    if (getaddrinfo(j->host, port, &hints, &res) != 0) {
        j->rc = -EHOSTUNREACH;
        return;
    }
    j->rc = -EHOSTUNREACH;
    for (struct addrinfo *a = res; a && j->rc < 0; a = a->ai_next)
        j->rc = connect_one(a->ai_addr, a->ai_addrlen, j->limit_ms);
    freeaddrinfo(res);
}

int rbx_tcp_connect_in_netns(int netns_fd, const char *host, int port, uint64_t limit_ms)
{
    struct tcp_job j = {
        .host = host, .port = port, .limit_ms = limit_ms ? limit_ms : 2000, .rc = -EIO};
    int rc = run_in_netns(netns_fd, tcp_do, &j);
    return rc < 0 ? rc : j.rc;
}

/* ---- listening ports ------------------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

void rbx_proc_net_tcp_listening(const char *text, int *ports, size_t max, size_t *n)
{
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        unsigned sl, port, state;
        char local[64];
        /* "  0: 0100007F:0FA0 00000000:0000 0A ..." */
        if (sscanf(line, " %u: %63[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &sl, local, &port,
                   &state) == 4 &&
            state == 0x0A) {
            bool dup = false;
            for (size_t i = 0; i < *n; i++)
                dup = dup || ports[i] == (int)port;
            if (!dup && *n < max)
                ports[(*n)++] = (int)port;
        }
        line = eol ? eol + 1 : NULL;
    }
    qsort(ports, *n, sizeof(int), cmp_int);
}

struct listen_job {
    int *ports;
    size_t max, n;
    int rc;
};

static void listen_do(void *p)
{
    struct listen_job *j = p;
    static const char *const files[] = {"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"};
    j->rc = 0;
    for (size_t i = 0; i < RBX_ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = rbx_read_file_at(AT_FDCWD, files[i], 8u << 20, &buf, &len, NULL);
        if (r < 0) {
            if (i == 0)
                j->rc = r;
            continue;
        }
        rbx_proc_net_tcp_listening(buf, j->ports, j->max, &j->n);
    }
}

int rbx_listening_ports_in_netns(int netns_fd, int *ports, size_t max, size_t *n,
                                 struct rbx_error **err)
{
    struct listen_job j = {.ports = ports, .max = max};
    int rc = run_in_netns(netns_fd, listen_do, &j);
    if (rc == 0)
        rc = j.rc;
    if (rc < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, -rc, "reading the pod's listening sockets");
    *n = j.n;
    return 0;
}

/* ---- readiness ------------------------------------------------------------------------------- */

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool attempt(const struct rbx_probe *p, const struct rbx_probe_env *env, uint64_t limit_ms,
                    struct rbx_probe_result *res)
{
    switch (p->kind) {
    case RBX_PROBE_HTTP: {
        struct rbx_http_response r = {0};
        int rc = rbx_http_get_in_netns(env->netns_fd, p->url, limit_ms, &r);
        bool ok = false;
        if (rc == 0) {
            res->ever_connected = true;
            res->last_status = r.status;
            ok = p->status ? r.status == p->status : r.status >= 200 && r.status < 400;
            if (!ok)
                snprintf(res->last_error, sizeof(res->last_error), "HTTP %ld", r.status);
        } else {
            if (rc != -ECONNREFUSED)
                res->ever_connected = res->ever_connected || rc == -EPROTO;
            snprintf(res->last_error, sizeof(res->last_error), "%s", r.error);
        }
        rbx_http_response_clear(&r);
        return ok;
    }
    case RBX_PROBE_TCP: {
        int rc = rbx_tcp_connect_in_netns(env->netns_fd, p->host, p->port, limit_ms);
        if (rc == 0) {
            res->ever_connected = true;
            return true;
        }
        snprintf(res->last_error, sizeof(res->last_error), "%s:%d: %s", p->host, p->port,
                 strerror(-rc));
        return false;
    }
    case RBX_PROBE_EXEC: {
        if (!env->exec) {
            snprintf(res->last_error, sizeof(res->last_error), "exec probes need a container");
            return false;
        }
        int rc = env->exec(env->userdata, p->argv, limit_ms);
        if (rc == 0)
            return true;
        if (rc < 0)
            snprintf(res->last_error, sizeof(res->last_error), "%s: %s", p->argv[0], strerror(-rc));
        else
            snprintf(res->last_error, sizeof(res->last_error), "%s exited %d", p->argv[0], rc);
        return false;
    }
    case RBX_PROBE_NONE: break;
    }
    return true;
}

void rbx_probe_run(const struct rbx_probe *p, const struct rbx_probe_env *env,
                   struct rbx_probe_result *res)
{
    memset(res, 0, sizeof(*res));
    uint64_t start = rbx_now_ns(), timeout = p->timeout_ms ? p->timeout_ms : 30000;
    uint64_t interval = p->interval_ms ? p->interval_ms : 250;
    for (;;) {
        uint64_t elapsed = (rbx_now_ns() - start) / 1000000;
        uint64_t left = elapsed < timeout ? timeout - elapsed : 0;
        /* One attempt may not outlast the probe; two seconds is plenty on loopback. */
        uint64_t limit = left < 2000 ? (left ? left : 1) : 2000;
        res->attempts++;
        if (attempt(p, env, limit, res)) {
            res->ready = true;
            break;
        }
        if (env->alive && !env->alive(env->userdata)) {
            res->target_exited = true;
            break;
        }
        elapsed = (rbx_now_ns() - start) / 1000000;
        if (elapsed >= timeout)
            break;
        sleep_ms(interval < timeout - elapsed ? interval : timeout - elapsed);
    }
    res->elapsed_ms = (rbx_now_ns() - start) / 1000000;
}
