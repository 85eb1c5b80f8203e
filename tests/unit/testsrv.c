/* testsrv.c — the scripted loopback HTTP server of the registry suites (testsrv.h). */
#include "testsrv.h"
#include "rbx_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

void send_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

void respond(int fd, const char *status, const char *headers, const void *body, size_t len)
{
    char head[2048];
    snprintf(head, sizeof(head),
             "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status, len,
             headers ? headers : "");
    send_all(fd, head, strlen(head));
    if (body)
        send_all(fd, body, len);
}

static void *srv_loop(void *arg)
{
    struct srv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        char req[2048] = "";
        size_t n = 0;
        while (n < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
            struct pollfd q = {.fd = fd, .events = POLLIN};
            if (poll(&q, 1, 2000) <= 0)
                break;
            ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (req[0] != 'G')
                break; /* not HTTP: hang up at once */
        }
        req[n] = '\0';
        /* A TLS hello (the client tries https first on an insecure loopback registry). */
        if (strncmp(req, "GET ", 4) == 0) {
            pthread_mutex_lock(&s->mu);
            if (s->nreq < 64)
                snprintf(s->reqs[s->nreq++], sizeof(s->reqs[0]), "%s", req);
            pthread_mutex_unlock(&s->mu);
            s->handler(s, fd, req);
        }
        close(fd);
    }
    return NULL;
}

struct srv *srv_start(srv_handler h)
{
    struct srv *s = rbx_xcalloc(1, sizeof(*s));
    s->handler = h;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(listen(s->lfd, 16), 0);
    atomic_init(&s->stop, false);
    ck_assert_int_eq(pthread_create(&s->th, NULL, srv_loop, s), 0);
    return s;
}

void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The requests whose first line contains `path`, and how many of them had `header`. */
int srv_count(struct srv *s, const char *path, const char *header)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nreq; i++) {
        const char *eol = strchr(s->reqs[i], '\r');
        const char *hit = strstr(s->reqs[i], path);
        if (hit && eol && hit < eol && (!header || strcasestr(s->reqs[i], header)))
            n++;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}
