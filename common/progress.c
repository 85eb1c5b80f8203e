/* progress.c — progress bars for people on a terminal: one line (items, bytes, rate) or one line
 * per item; redrawn at most ten times a second so they cost nothing measurable. */
#include "common/common.h"

#include <string.h>

struct rbx_progress_bar {
    int fd;
    uint64_t start_ns, last_ns;
    bool drawn;
};

struct rbx_progress_bar *rbx_progress_bar_new(int fd)
{
    struct rbx_progress_bar *b = rbx_xcalloc(1, sizeof(*b));
    b->fd = fd;
    b->start_ns = rbx_now_ns();
    return b;
}

static void put(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t w = write(fd, s, len);
        if (w <= 0)
            return;
        s += w;
        len -= (size_t)w;
    }
}

void rbx_progress_bar_update(void *userdata, const struct rbx_progress_event *ev)
{
    struct rbx_progress_bar *b = userdata;
    uint64_t now = rbx_now_ns();
    bool finished = ev->items_total && ev->items_done == ev->items_total;
    if (!finished && b->drawn && now - b->last_ns < 100000000ull)
        return;
    b->last_ns = now;

    char done[32], total[32], rate[32], line[256], bar[31];
    double secs = (double)(now - b->start_ns) / 1e9;
    double frac = ev->bytes_total ? (double)ev->bytes_done / (double)ev->bytes_total
                  : ev->items_total ? (double)ev->items_done / ev->items_total
                                    : 0;
    if (frac > 1)
        frac = 1;
    size_t fill = (size_t)(frac * 30);
    for (size_t i = 0; i < 30; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[30] = '\0';
    rbx_format_size(ev->bytes_done, done, sizeof(done));
    rbx_format_size(ev->bytes_total, total, sizeof(total));
    rbx_format_size(secs > 0.05 ? (uint64_t)((double)ev->bytes_done / secs) : 0, rate, sizeof(rate));
    snprintf(line, sizeof(line), "\r\033[K%s %u/%u layers [%s] %s%s%s  %s/s", ev->phase,
             ev->items_done, ev->items_total, bar, done, ev->bytes_total ? " / " : "",
             ev->bytes_total ? total : "", rate);
    put(b->fd, line);
    b->drawn = true;
}

struct rbx_progress_bar *rbx_progress_bar_free(struct rbx_progress_bar *b, const char *summary)
{
    if (!b)
        return NULL;
    if (b->drawn)
        put(b->fd, "\r\033[K");
    if (summary && b->drawn) {
        put(b->fd, summary);
        put(b->fd, "\n");
    }
    free(b);
    return NULL;
}

/* ---- one line per item ----------------------------------------------------------------------- */

#define LINE_LABEL_MAX 24
#define LINE_STATUS_MAX 16

struct progress_line {
    char label[LINE_LABEL_MAX + 1];
    char status[LINE_STATUS_MAX + 1];
    uint64_t done, total;
};

struct rbx_progress_lines {
    int fd;
    size_t n;
    struct progress_line *lines;
    uint64_t last_ns;
    bool drawn, dirty;
};

struct rbx_progress_lines *rbx_progress_lines_new(int fd, size_t n_lines)
{
    struct rbx_progress_lines *p = rbx_xcalloc(1, sizeof(*p));
    p->fd = fd;
    p->n = n_lines;
    p->lines = rbx_xcalloc(n_lines + 1, sizeof(*p->lines));
    return p;
}

static void lines_draw(struct rbx_progress_lines *p)
{
    size_t cap = (p->n + 1) * 160 + 32, len = 0;
    _cleanup_free_ char *out = rbx_xmalloc(cap);
    if (p->drawn && p->n)
        len += (size_t)snprintf(out + len, cap - len, "\033[%zuA", p->n);
    for (size_t i = 0; i < p->n; i++) {
        const struct progress_line *l = &p->lines[i];
        char bar[21], done[32], total[32];
        double frac = l->total ? (double)l->done / (double)l->total : 0;
        if (frac > 1)
            frac = 1;
        size_t fill = (size_t)(frac * 20);
        for (size_t k = 0; k < 20; k++)
            bar[k] = k < fill ? '=' : (k == fill ? '>' : ' ');
        bar[20] = '\0';
        rbx_format_size(l->done, done, sizeof(done));
        rbx_format_size(l->total, total, sizeof(total));
        len += (size_t)snprintf(out + len, cap - len, "\r\033[K%-*s [%s] %10s / %-10s %s\n",
                                LINE_LABEL_MAX, l->label, bar, done, total, l->status);
    }
    put(p->fd, out);
    p->drawn = true;
    p->dirty = false;
}

void rbx_progress_lines_set(struct rbx_progress_lines *p, size_t i, const char *label,
                            uint64_t done, uint64_t total, const char *status)
{
    if (!p || i >= p->n)
        return;
    struct progress_line *l = &p->lines[i];
    bool changed_state = strncmp(l->status, status ? status : "", LINE_STATUS_MAX) != 0;
    snprintf(l->label, sizeof(l->label), "%s", label ? label : "");
    snprintf(l->status, sizeof(l->status), "%s", status ? status : "");
    l->done = done;
    l->total = total;
    p->dirty = true;
    uint64_t now = rbx_now_ns();
    /* A change of state is always shown; byte counts at most ten times a second. */
    if (!changed_state && p->drawn && now - p->last_ns < 100000000ull)
        return;
    p->last_ns = now;
    lines_draw(p);
}

struct rbx_progress_lines *rbx_progress_lines_free(struct rbx_progress_lines *p,
                                                   const char *summary)
{
    if (!p)
        return NULL;
    if (p->dirty || !p->drawn)
        lines_draw(p);
    if (summary) {
        put(p->fd, summary);
        put(p->fd, "\n");
    }
    free(p->lines);
    free(p);
    return NULL;
}
