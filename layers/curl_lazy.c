/* curl_lazy.c — libcurl, loaded the first time a registry is spoken to. libcurl pulls in some 25
 * shared libraries (TLS, Kerberos, LDAP, IDN...) whose loading costs every reprobox command
 * about 5 ms of CPU before main(); only pulls need them. These definitions stand in for the
 * libcurl functions registry.c calls and forward to the real ones, found with dlopen. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    void (*free)(void *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLSH *(*share_init)(void);
    CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
    CURLSHcode (*share_cleanup)(CURLSH *);
} fn;
static bool loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *sym(void *h, const char *name, bool *ok)
{
    void *p = dlsym(h, name);
    if (!p)
        *ok = false;
    return p;
}

static void load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    bool ok = true;
    /* POSIX makes dlsym's void * convertible to a function pointer. */
#define LOAD(field, name) *(void **)&fn.field = sym(h, name, &ok)
    LOAD(global_init, "curl_global_init");
    LOAD(easy_init, "curl_easy_init");
    LOAD(easy_setopt, "curl_easy_setopt");
    LOAD(easy_perform, "curl_easy_perform");
    LOAD(easy_cleanup, "curl_easy_cleanup");
    LOAD(easy_getinfo, "curl_easy_getinfo");
    LOAD(easy_strerror, "curl_easy_strerror");
    LOAD(easy_escape, "curl_easy_escape");
    LOAD(free, "curl_free");
    LOAD(slist_append, "curl_slist_append");
    LOAD(slist_free_all, "curl_slist_free_all");
    LOAD(share_init, "curl_share_init");
    LOAD(share_setopt, "curl_share_setopt");
    LOAD(share_cleanup, "curl_share_cleanup");
#undef LOAD
    loaded = ok;
}

static bool ready(void)
{
    pthread_once(&once, load);
    return loaded;
}

CURLcode curl_global_init(long flags)
{
    return ready() ? fn.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
    return ready() ? fn.easy_init() : NULL;
}

/* One argument follows the option; its type is told by the option's number range. */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    if (!ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode r;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        r = fn.easy_setopt(h, opt, va_arg(ap, long));
    else if (opt < CURLOPTTYPE_OFF_T)
        r = fn.easy_setopt(h, opt, va_arg(ap, void *)); /* objects, strings, functions */
    else if (opt < CURLOPTTYPE_BLOB)
        r = fn.easy_setopt(h, opt, va_arg(ap, curl_off_t));
    else
        r = fn.easy_setopt(h, opt, va_arg(ap, void *));
    va_end(ap);
    return r;
}

CURLcode curl_easy_perform(CURL *h)
{
    return ready() ? fn.easy_perform(h) : CURLE_FAILED_INIT;
}

void curl_easy_cleanup(CURL *h)
{
    if (ready())
        fn.easy_cleanup(h);
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    if (!ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode r = fn.easy_getinfo(h, info, va_arg(ap, void *));
    va_end(ap);
    return r;
}

const char *curl_easy_strerror(CURLcode c)
{
    return ready() ? fn.easy_strerror(c) : "libcurl (libcurl.so.4) could not be loaded";
}

char *curl_easy_escape(CURL *h, const char *s, int len)
{
    return ready() ? fn.easy_escape(h, s, len) : NULL;
}

void curl_free(void *p)
{
    if (ready())
        fn.free(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
    return ready() ? fn.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
    if (ready())
        fn.slist_free_all(l);
}

CURLSH *curl_share_init(void)
{
    return ready() ? fn.share_init() : NULL;
}

CURLSHcode curl_share_setopt(CURLSH *s, CURLSHoption opt, ...)
{
    if (!ready())
        return CURLSHE_NOT_BUILT_IN;
    va_list ap;
    va_start(ap, opt);
    CURLSHcode r;
    if (opt == CURLSHOPT_SHARE || opt == CURLSHOPT_UNSHARE)
        r = fn.share_setopt(s, opt, va_arg(ap, int));
    else
        r = fn.share_setopt(s, opt, va_arg(ap, void *)); /* functions, user data */
    va_end(ap);
    return r;
}

CURLSHcode curl_share_cleanup(CURLSH *s)
{
    return ready() ? fn.share_cleanup(s) : CURLSHE_NOT_BUILT_IN;
}
