/* util.c — allocation that cannot fail silently, string vectors, sizes, clocks, random ids. */
#include "common/common.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void *oom(void)
{
    static const char msg[] = "reprobox: error: out of memory\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)r;
    abort();
}

void *rbx_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom();
}

void *rbx_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom();
}

void *rbx_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom();
}

char *rbx_xstrdup(const char *s)
{
    char *p = strdup(s);
    return p ? p : oom();
}

char *rbx_xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    return p ? p : oom();
}

char *rbx_xasprintf(const char *fmt, ...)
{
    char *p = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&p, fmt, ap);
    va_end(ap);
    return r < 0 ? oom() : p;
}

size_t rbx_strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **rbx_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
    return NULL;
}

char **rbx_strv_copy(char *const *v)
{
    if (!v)
        return NULL;
    size_t n = rbx_strv_len(v);
    char **c = rbx_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        c[i] = rbx_xstrdup(v[i]);
    return c;
}

void rbx_strv_push_take(char ***v, char *s)
{
    size_t n = rbx_strv_len(*v);
    *v = rbx_xrealloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = s;
    (*v)[n + 1] = NULL;
}

void rbx_strv_push(char ***v, const char *s) { rbx_strv_push_take(v, rbx_xstrdup(s)); }

static size_t key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

void rbx_env_set(char ***env, const char *kv)
{
    size_t k = key_len(kv);
    for (size_t i = 0; *env && (*env)[i]; i++) {
        if (key_len((*env)[i]) == k && strncmp((*env)[i], kv, k) == 0) {
            free((*env)[i]);
            (*env)[i] = rbx_xstrdup(kv);
            return;
        }
    }
    rbx_strv_push(env, kv);
}

const char *rbx_env_get(char *const *env, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, k) == 0 && env[i][k] == '=')
            return env[i] + k + 1;
    return NULL;
}

/* Signals meant for the sandboxed processes (a Ctrl-C forwarded by the supervisor) must not be
 * taken by a helper thread: helpers start with them blocked. */
int rbx_thread_create_quiet(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

uint64_t rbx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rbx_parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (!s || !*s || *s == '-')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -EINVAL;
    }
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}

const char *rbx_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < RBX_ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

void rbx_random_hex(char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t need = (len + 1) / 2;
    if (need > sizeof(raw))
        need = sizeof(raw);
    if (getrandom(raw, need, 0) != (ssize_t)need) {
        uint64_t t = rbx_now_ns() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < need; i++)
            raw[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)i;
    }
    for (size_t i = 0; i < len && i / 2 < need; i++)
        buf[i] = hex[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
    buf[len] = '\0';
}
