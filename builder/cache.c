/* cache.c — the step cache: <store>/builder/cache/<key>.json names the layer a step made (or that
 * it made none). A key hashes the rootfs chain the step ran on, the step as substituted, what it
 * ran with (env, user, workdir, shell, network, mounts, build args) and the digest of its inputs.
 */
#include "builder/builder-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* Bumped when a layer made from the same inputs would come out different. */
#define CACHE_FORMAT 1

char *rbx_builder_dir(struct rbx_build_state *b, const char *sub, struct rbx_error **err)
{
    _cleanup_free_ char *top = rbx_xasprintf("%s/builder", rbx_store_dir(b->store));
    if (mkdir(top, 0700) < 0 && errno != EEXIST) {
        rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir %s", top);
        return NULL;
    }
    char *dir = rbx_xasprintf("%s/%s", top, sub);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rbx_error_set_errno(err, RBX_ERR_IO, errno, "mkdir %s", dir);
        free(dir);
        return NULL;
    }
    return dir;
}

void rbx_cache_key(const struct rbx_bstage *st, json_t *step, int64_t epoch,
                   char out[RBX_DIGEST_LEN + 1])
{
    json_object_set_new(step, "format", json_integer(CACHE_FORMAT));
    json_object_set_new(step, "parent", json_string(st->chain));
    json_object_set_new(step, "source_date_epoch", json_integer(epoch));
    char plat[100];
    snprintf(plat, sizeof(plat), "%s/%s%s%s", st->platform.os, st->platform.architecture,
             st->platform.variant[0] ? "/" : "", st->platform.variant);
    json_object_set_new(step, "platform", json_string(plat));
    _cleanup_free_ char *text = rbx_json_dump_canonical(step);
    rbx_sha256_buf(text, strlen(text), out);
}

static char *record_path(struct rbx_build_state *b, const char *key)
{
    _cleanup_free_ char *dir = rbx_builder_dir(b, "cache", NULL);
    return dir ? rbx_xasprintf("%s/%s.json", dir, rbx_digest_hex(key)) : NULL;
}

int rbx_cache_get(struct rbx_build_state *b, const char *key, struct rbx_cache_hit *hit)
{
    memset(hit, 0, sizeof(*hit));
    if (b->opts->cache_off || b->opts->no_cache)
        return 0;
    _cleanup_free_ char *path = record_path(b, key);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if (!path || rbx_read_file_at(AT_FDCWD, path, 65536, &text, &len, NULL) < 0)
        return 0;
    _cleanup_json_ json_t *j = rbx_json_loadb(text, len, path, NULL);
    if (!json_is_object(j))
        return 0;
    if (json_is_true(json_object_get(j, "empty"))) {
        hit->empty = true;
        return 1;
    }
    const char *d = json_string_value(json_object_get(j, "digest"));
    const char *id = json_string_value(json_object_get(j, "diff_id"));
    json_t *size = json_object_get(j, "size");
    if (!d || !id || !rbx_digest_valid(d) || !rbx_digest_valid(id) || !json_is_integer(size))
        return 0;
    /* A hit is only as good as what it names: a pruned blob or layer is a miss. */
    _cleanup_free_ char *dir = NULL;
    if (!rbx_store_has_blob(b->store, d) || rbx_store_layer_path(b->store, id, &dir, NULL) < 0)
        return 0;
    snprintf(hit->blob.digest, sizeof(hit->blob.digest), "%s", d);
    snprintf(hit->blob.diff_id, sizeof(hit->blob.diff_id), "%s", id);
    hit->blob.size = json_integer_value(size);
    hit->blob.gzip = true;
    return 1;
}

int rbx_cache_put(struct rbx_build_state *b, const char *key, const struct rbx_cache_hit *hit,
                  struct rbx_error **err)
{
    if (b->opts->cache_off)
        return 0;
    _cleanup_free_ char *dir = rbx_builder_dir(b, "cache", err);
    if (!dir)
        return -EIO;
    _cleanup_json_ json_t *j =
        hit->empty ? json_pack("{s:b}", "empty", 1)
                   : json_pack("{s:s, s:s, s:I}", "digest", hit->blob.digest, "diff_id",
                               hit->blob.diff_id, "size", (json_int_t)hit->blob.size);
    _cleanup_free_ char *text = rbx_json_dump_canonical(j);
    _cleanup_free_ char *name = rbx_xasprintf("%s.json", rbx_digest_hex(key));
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return rbx_error_set_errno(err, RBX_ERR_IO, errno, "open %s", dir);
    return rbx_write_file_atomic_at(dfd, name, text, strlen(text), 0600, err);
}
