/* cmd_images.c — `reprobox images [--layers] [--json]`: the images the cache has records of,
 * their unpacked layers and the blobs imported from archives. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>
#include <time.h>

static void images_usage(FILE *out)
{
    fputs("Usage: reprobox images [--layers] [--json]\n\n"
          "List what the cache holds: the images opened (by reference and platform), with the\n"
          "size of their unpacked layers and when they were last used.\n\n"
          "Options:\n"
          "      --layers  list the unpacked layers too\n"
          "      --json    print JSON\n"
          "  -h, --help    this help\n",
          out);
}

const char *cli_format_age(int64_t when, char *buf, size_t len)
{
    int64_t d = (int64_t)time(NULL) - when;
    if (d < 0)
        d = 0;
    if (d < 60)
        snprintf(buf, len, "%lld seconds ago", (long long)d);
    else if (d < 3600)
        snprintf(buf, len, "%lld minutes ago", (long long)(d / 60));
    else if (d < 48 * 3600)
        snprintf(buf, len, "%lld hours ago", (long long)(d / 3600));
    else
        snprintf(buf, len, "%lld days ago", (long long)(d / 86400));
    return buf;
}

static json_t *list_json(const struct rbx_cache_list *l)
{
    json_t *images = json_array(), *layers = json_array();
    for (size_t i = 0; i < l->n_images; i++) {
        const struct rbx_cached_image *im = &l->images[i];
        json_array_append_new(
            images,
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "reference", im->reference, "platform",
                      im->platform, "config_digest", im->config_digest, "layers",
                      (json_int_t)im->n_layers, "layers_cached", (json_int_t)im->n_layers_cached,
                      "bytes", (json_int_t)im->bytes, "last_used", (json_int_t)im->last_used));
    }
    for (size_t i = 0; i < l->n_layers; i++) {
        const struct rbx_cached_layer *c = &l->layers[i];
        json_t *j =
            json_pack("{s:s, s:I, s:I, s:I}", "name", c->name, "entries", (json_int_t)c->entries,
                      "bytes", (json_int_t)c->bytes, "used_by", (json_int_t)c->used_by);
        if (c->diff_id)
            json_object_set_new(j, "diff_id", json_string(c->diff_id));
        if (c->digest)
            json_object_set_new(j, "digest", json_string(c->digest));
        json_array_append_new(layers, j);
    }
    return json_pack("{s:o, s:o, s:{s:I, s:I}}", "images", images, "layers", layers, "blobs",
                     "count", (json_int_t)l->n_blobs, "bytes", (json_int_t)l->blob_bytes);
}

static int cmp_image(const void *a, const void *b)
{
    const struct rbx_cached_image *x = a, *y = b;
    return x->last_used != y->last_used ? (x->last_used < y->last_used ? 1 : -1)
                                        : strcmp(x->reference, y->reference);
}

int cmd_images(int argc, char **argv)
{
    static const struct option opts[] = {
        {"layers", no_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct rbx_error *err = NULL;
    bool layers = false, as_json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': layers = true; break;
        case 'j': as_json = true; break;
        case 'h': images_usage(stdout); return 0;
        default:
            rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                          "images: unknown option \"%s\" (see reprobox images --help)",
                          argv[optind - 1]);
            return cli_fail(err);
        }
    }
    if (optind != argc) {
        rbx_error_set(&err, RBX_ERR_USAGE, EINVAL,
                      "images: no arguments expected (see reprobox images --help)");
        return cli_fail(err);
    }
    _cleanup_(rbx_store_freep) struct rbx_store *store = NULL;
    struct rbx_cache_list l = {0};
    if (cli_open_store(&store, &err) < 0 || rbx_store_list(store, &l, &err) < 0)
        return cli_fail(err);
    qsort(l.images, l.n_images, sizeof(*l.images), cmp_image);
    if (as_json) {
        _cleanup_json_ json_t *j = list_json(&l);
        _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(text);
        rbx_cache_list_clear(&l);
        return 0;
    }
    char size[32], age[64];
    printf("%-60s %-13s %-14s %-8s %10s  %s\n", "REFERENCE", "PLATFORM", "IMAGE ID", "LAYERS",
           "SIZE", "LAST USED");
    for (size_t i = 0; i < l.n_images; i++) {
        const struct rbx_cached_image *im = &l.images[i];
        char layers_col[32];
        snprintf(layers_col, sizeof(layers_col), "%zu/%zu", im->n_layers_cached, im->n_layers);
        const char *id = strncmp(im->config_digest, "sha256:", 7) == 0 ? im->config_digest + 7
                                                                       : im->config_digest;
        printf("%-60s %-13s %-14.12s %-8s %10s  %s\n", im->reference, im->platform, id, layers_col,
               rbx_format_size(im->bytes, size, sizeof(size)),
               cli_format_age(im->last_used, age, sizeof(age)));
    }
    uint64_t layer_bytes = 0;
    for (size_t i = 0; i < l.n_layers; i++)
        layer_bytes += l.layers[i].bytes;
    if (layers) {
        printf("\n%-72s %-14s %8s %10s  %s\n", "LAYER", "BLOB", "ENTRIES", "SIZE", "USED BY");
        for (size_t i = 0; i < l.n_layers; i++) {
            const struct rbx_cached_layer *x = &l.layers[i];
            const char *blob =
                x->digest && strncmp(x->digest, "sha256:", 7) == 0 ? x->digest + 7 : "-";
            char used[16];
            snprintf(used, sizeof(used), "%u", x->used_by);
            printf("%-72s %-14.12s %8llu %10s  %s\n", x->diff_id ? x->diff_id : x->name, blob,
                   (unsigned long long)x->entries, rbx_format_size(x->bytes, size, sizeof(size)),
                   strncmp(x->name, "links-", 6) == 0 ? "(hardlinks to lower layers)" : used);
        }
    }
    char bsize[32];
    printf("\n%zu images, %zu unpacked layers (%s), %zu blobs imported from archives (%s)\n",
           l.n_images, l.n_layers, rbx_format_size(layer_bytes, size, sizeof(size)), l.n_blobs,
           rbx_format_size(l.blob_bytes, bsize, sizeof(bsize)));
    rbx_cache_list_clear(&l);
    return 0;
}
