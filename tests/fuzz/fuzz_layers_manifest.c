/* fuzz_layers_manifest.c — libFuzzer target for layers/' readers of what an image says about
 * itself: the input is parsed as an image index, a manifest (with and without an expected media
 * type), an image config, an oci-layout marker and a platform string. */
#include "layers/layers-internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *buf = (const char *)data;
    struct rbx_error *err = NULL;

    struct rbx_index idx = {0};
    if (rbx_index_parse(buf, size, "index.json", &idx, &err) == 0) {
        struct rbx_platform want;
        rbx_platform_host(&want);
        for (size_t i = 0; i < idx.n_manifests; i++)
            if (idx.manifests[i].has_platform)
                (void)rbx_platform_matches(&idx.manifests[i].platform, &want);
        rbx_index_clear(&idx);
    }
    err = rbx_error_free(err);

    static const enum rbx_media expect[] = {RBX_MEDIA_UNKNOWN, RBX_MEDIA_OCI_MANIFEST,
                                            RBX_MEDIA_DOCKER_MANIFEST};
    for (size_t k = 0; k < sizeof(expect) / sizeof(expect[0]); k++) {
        struct rbx_manifest m = {0};
        if (rbx_manifest_parse(buf, size, "manifest", expect[k], &m, &err) == 0)
            rbx_manifest_clear(&m);
        err = rbx_error_free(err);
    }

    struct rbx_image_config cfg = {0};
    char **diff_ids = NULL;
    json_t *json = NULL;
    if (rbx_config_parse(buf, size, "config", &cfg, &diff_ids, &json, &err) == 0) {
        rbx_config_clear(&cfg);
        rbx_strv_free(diff_ids);
        json_decref(json);
    }
    err = rbx_error_free(err);

    (void)rbx_oci_layout_check(buf, size, &err);
    err = rbx_error_free(err);

    if (size < 256) {
        char s[256];
        memcpy(s, buf, size);
        s[size] = '\0';
        struct rbx_platform p;
        (void)rbx_platform_parse(s, &p, &err);
        err = rbx_error_free(err);
        struct rbx_ref ref = {0};
        if (rbx_ref_parse(s, &ref, &err) == 0)
            rbx_ref_clear(&ref);
        rbx_error_free(err);
    }
    return 0;
}
