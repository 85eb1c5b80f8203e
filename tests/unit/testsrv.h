/* testsrv.h — a scripted HTTP/1.1 server on loopback for the registry client's suites: one
 * connection at a time, each request recorded, answered by the suite's handler, then closed. */
#pragma once

#include "common/common.h"

#include <pthread.h>
#include <stdatomic.h>

struct srv;
typedef void (*srv_handler)(struct srv *s, int fd, const char *req);

struct srv {
    int lfd, port;
    pthread_t th;
    atomic_bool stop;
    srv_handler handler;
    pthread_mutex_t mu;
    char reqs[64][2048];
    int nreq;
    int step; /* handler state */
    const char *blob;
    size_t blob_len;
    char digest[RBX_DIGEST_LEN + 1];
    int other_port; /* where redirects go */
    void *data;     /* the suite's own */
};

void send_all(int fd, const void *p, size_t n);
/* A whole response with Content-Length and "Connection: close"; headers end with \r\n each. */
void respond(int fd, const char *status, const char *headers, const void *body, size_t len);
struct srv *srv_start(srv_handler h);
void srv_stop(struct srv *s);
/* The requests whose first line contains `path`, and of those, how many carry `header`. */
int srv_count(struct srv *s, const char *path, const char *header);
