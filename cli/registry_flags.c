/* registry_flags.c — what pull and run share about registries: their flags, the per-layer
 * progress display and the one-line summary of a pull. */
#include "cli/cli.h"

#include <pthread.h>
#include <string.h>

int cli_registry_flag(int opt, const char *arg, struct rbx_registry_opts *o, struct rbx_error **err)
{
    switch (opt) {
    case CLI_OPT_CREDS: o->creds = arg; return 1;
    case CLI_OPT_TLS_VERIFY:
        if (!arg || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0)
            o->tls_insecure = false;
        else if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0)
            o->tls_insecure = true;
        else
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "--tls-verify=\"%.40s\": expected true or false", arg);
        return 1;
    case CLI_OPT_CERT_DIR: o->cert_dir = arg; return 1;
    case CLI_OPT_MAX_CONCURRENT: {
        char *end;
        unsigned long n = strtoul(arg, &end, 10);
        if (!*arg || *end || n == 0 || n > 32)
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "--max-concurrent \"%.40s\": expected 1 to 32", arg);
        o->max_concurrent = (unsigned)n;
        return 1;
    }
    case CLI_OPT_LIMIT_RATE:
        if (rbx_parse_size(arg, &o->limit_rate) < 0 || o->limit_rate == 0)
            return rbx_error_set(err, RBX_ERR_USAGE, EINVAL,
                                 "--limit-rate \"%.40s\": expected bytes per second, e.g. 10m",
                                 arg);
        return 1;
    default: return 0;
    }
}

int cli_pull_flag(int opt, const char *arg, struct cli_pull_flags *f, struct rbx_error **err)
{
    if (opt == CLI_OPT_PULL) {
        int r = rbx_pull_policy_parse(arg, &f->pull, err);
        return r < 0 ? r : 1;
    }
    return cli_registry_flag(opt, arg, &f->registry, err);
}

/* ---- progress -------------------------------------------------------------------------------- */

struct cli_pull_progress {
    struct rbx_progress_lines *lines;
};

struct cli_pull_progress *cli_pull_progress_new(void)
{
    return rbx_xcalloc(1, sizeof(struct cli_pull_progress));
}

void cli_pull_progress_event(void *ud, const struct rbx_pull_event *ev)
{
    struct cli_pull_progress *p = ud;
    static const char *const states[] = {
        [RBX_PULL_LAYER_WAITING] = "waiting",
        [RBX_PULL_LAYER_DOWNLOADING] = "downloading",
        [RBX_PULL_LAYER_DONE] = "done",
        [RBX_PULL_LAYER_PRESENT] = "present",
    };
    /* The layer count is known with the first event: one line each, lowest layer first. */
    if (!p->lines)
        p->lines = rbx_progress_lines_new(STDERR_FILENO, ev->n_layers);
    char label[24];
    snprintf(label, sizeof(label), "%.19s", ev->digest ? ev->digest : "?");
    rbx_progress_lines_set(p->lines, ev->layer, label, ev->done, ev->total, states[ev->state]);
}

void cli_pull_progress_free(struct cli_pull_progress *p)
{
    if (!p)
        return;
    rbx_progress_lines_free(p->lines, NULL);
    free(p);
}

char *cli_pull_summary(const char *reference, const struct rbx_pull_stats *st)
{
    char plat[128] = "", dl[32], secs[32];
    if (st->platform.os[0])
        snprintf(plat, sizeof(plat), "%s/%s%s%s", st->platform.os, st->platform.architecture,
                 st->platform.variant[0] ? "/" : "", st->platform.variant);
    rbx_format_size(st->bytes_downloaded, dl, sizeof(dl));
    snprintf(secs, sizeof(secs), "%.2f s", (double)st->elapsed_ns / 1e9);
    _cleanup_free_ char *resumed =
        st->layers_resumed ? rbx_xasprintf(", %u resumed", st->layers_resumed) : rbx_xstrdup("");
    _cleanup_free_ char *index =
        st->index_digest[0] ? rbx_xasprintf(" (index %s)", st->index_digest) : rbx_xstrdup("");
    if (!st->contacted)
        return rbx_xasprintf("Present %s (%s) %s%s: %u layers in the store", reference, plat,
                             st->manifest_digest, index, st->layers);
    return rbx_xasprintf("Pulled %s (%s) %s%s: %u layers, %u downloaded (%s)%s, %u present, in %s",
                         reference, plat, st->manifest_digest, index, st->layers,
                         st->layers_downloaded, dl, resumed, st->layers_present, secs);
}
