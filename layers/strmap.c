/* strmap.c — a string-keyed map to size_t with open addressing: the paths of one layer (what it
 * made, what it whited out, where its directory fixups are) and the digests a prune keeps. */
#include "layers/layers-internal.h"

#include <string.h>

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

static void grow(struct rbx_strmap *m)
{
    struct rbx_strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = rbx_xcalloc(m->cap, sizeof(char *));
    m->vals = rbx_xcalloc(m->cap, sizeof(size_t));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i]) {
            size_t j = hash_str(old.keys[i]) & (m->cap - 1);
            while (m->keys[j])
                j = (j + 1) & (m->cap - 1);
            m->keys[j] = old.keys[i];
            m->vals[j] = old.vals[i];
            m->n++;
        }
    free(old.keys);
    free(old.vals);
}

size_t *rbx_strmap_slot(struct rbx_strmap *m, const char *key, bool insert)
{
    if (insert && (m->n + 1) * 2 > m->cap)
        grow(m);
    if (!m->cap)
        return NULL;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (strcmp(m->keys[j], key) == 0)
            return &m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!insert)
        return NULL;
    m->keys[j] = rbx_xstrdup(key);
    m->vals[j] = 0;
    m->n++;
    return &m->vals[j];
}

size_t rbx_strmap_get(const struct rbx_strmap *m, const char *key)
{
    size_t *v = rbx_strmap_slot((struct rbx_strmap *)m, key, false);
    return v ? *v : 0;
}

void rbx_strmap_clear(struct rbx_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}
