/* isal_lazy.c — ISA-L's inflate, loaded the first time a gzip layer is read. Linked, its shared
 * object cost every start of reprobox 0.13 ms (docs/BENCHMARKS.md), runs on a warm cache that
 * never inflate anything included. These definitions stand in for the three functions blob.c
 * calls; where libisal.so.2 cannot be loaded, rbx_isal_available() says so and zlib inflates. */
#include "layers/layers-internal.h"

#ifdef RBX_HAVE_ISAL
#include <dlfcn.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>

static struct {
    void (*inflate_init)(struct inflate_state *);
    void (*inflate_reset)(struct inflate_state *);
    int (*inflate)(struct inflate_state *);
} fn;
static bool loaded, forced_off;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    void *h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    /* POSIX makes dlsym's void * convertible to a function pointer. */
    *(void **)&fn.inflate_init = dlsym(h, "isal_inflate_init");
    *(void **)&fn.inflate_reset = dlsym(h, "isal_inflate_reset");
    *(void **)&fn.inflate = dlsym(h, "isal_inflate");
    loaded = fn.inflate_init && fn.inflate_reset && fn.inflate;
}

bool rbx_isal_available(void)
{
    pthread_once(&once, load);
    return loaded && !forced_off;
}

void rbx_isal_force_off(bool off)
{
    forced_off = off;
}

/* Called only after rbx_isal_available() said yes. */
void isal_inflate_init(struct inflate_state *state)
{
    fn.inflate_init(state);
}

void isal_inflate_reset(struct inflate_state *state)
{
    fn.inflate_reset(state);
}

int isal_inflate(struct inflate_state *state)
{
    return fn.inflate(state);
}
#else
bool rbx_isal_available(void)
{
    return false;
}

void rbx_isal_force_off(bool off)
{
    (void)off;
}
#endif
