/* progress.c — a progress bar for people on a terminal: items, bytes, rate; redrawn at most ten
 * times a second so it costs nothing measurable. */
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
