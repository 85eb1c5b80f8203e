/* tail.c — a bounded tail of an output stream: a command writing gigabytes costs a fixed amount
 * of memory here. Keeps a ring of max_bytes and trims to the last max_lines lines on read. */
#include "common/common.h"

#include <string.h>

struct rbx_tail {
    char *ring;
    size_t cap, start, len;
    size_t max_lines;
    uint64_t total;
    char *text;
};

struct rbx_tail *rbx_tail_new(size_t max_lines, size_t max_bytes)
{
    struct rbx_tail *t = rbx_xcalloc(1, sizeof(*t));
    t->cap = max_bytes ? max_bytes : 1;
    t->ring = rbx_xmalloc(t->cap);
    t->max_lines = max_lines;
    return t;
}

void rbx_tail_feed(struct rbx_tail *t, const char *data, size_t len)
{
    t->total += len;
    if (len >= t->cap) {
        data += len - t->cap;
        len = t->cap;
    }
    while (len > 0) {
        size_t end = (t->start + t->len) % t->cap;
        size_t room = t->cap - end;
        size_t n = len < room ? len : room;
        memcpy(t->ring + end, data, n);
        data += n;
        len -= n;
        size_t over = t->len + n > t->cap ? t->len + n - t->cap : 0;
        t->len += n - over;
        t->start = (t->start + over) % t->cap;
    }
}

const char *rbx_tail_text(struct rbx_tail *t)
{
    free(t->text);
    t->text = rbx_xmalloc(t->len + 1);
    for (size_t i = 0; i < t->len; i++)
        t->text[i] = t->ring[(t->start + i) % t->cap];
    t->text[t->len] = '\0';
    /* Keep the last max_lines lines; a final line without '\n' counts as one. */
    size_t n = t->len, lines = 0;
    size_t cut = 0;
    for (size_t i = n; i > 0; i--) {
        if (t->text[i - 1] == '\n' && i != n) {
            if (++lines >= t->max_lines) {
                cut = i;
                break;
            }
        }
    }
    if (!cut && t->total > t->len) {
        /* Bytes were dropped: the first line is a fragment; drop it when a whole one follows. */
        char *nl = memchr(t->text, '\n', n);
        if (nl && (size_t)(nl - t->text) + 1 < n)
            cut = (size_t)(nl - t->text) + 1;
    }
    if (cut)
        memmove(t->text, t->text + cut, n - cut + 1);
    return t->text;
}

uint64_t rbx_tail_total(const struct rbx_tail *t) { return t->total; }

struct rbx_tail *rbx_tail_free(struct rbx_tail *t)
{
    if (t) {
        free(t->ring);
        free(t->text);
        free(t);
    }
    return NULL;
}
