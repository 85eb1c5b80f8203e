/* sha256.c — streaming sha256 through OpenSSL's EVP interface, and digest string checks. */
#include "common/common.h"

#include <openssl/evp.h>
#include <string.h>

struct rbx_sha256 {
    EVP_MD_CTX *ctx;
};

struct rbx_sha256 *rbx_sha256_new(void)
{
    struct rbx_sha256 *h = rbx_xcalloc(1, sizeof(*h));
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
        abort();
    return h;
}

void rbx_sha256_update(struct rbx_sha256 *h, const void *data, size_t len)
{
    if (len && EVP_DigestUpdate(h->ctx, data, len) != 1)
        abort();
}

void rbx_sha256_final(struct rbx_sha256 *h, char out[RBX_DIGEST_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32)
        abort();
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < n; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[7 + 2 * i + 1] = hex[md[i] & 0xf];
    }
    out[RBX_DIGEST_LEN] = '\0';
}

struct rbx_sha256 *rbx_sha256_free(struct rbx_sha256 *h)
{
    if (h) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
    }
    return NULL;
}

void rbx_sha256_buf(const void *data, size_t len, char out[RBX_DIGEST_LEN + 1])
{
    _cleanup_(rbx_sha256_freep) struct rbx_sha256 *h = rbx_sha256_new();
    rbx_sha256_update(h, data, len);
    rbx_sha256_final(h, out);
}

bool rbx_digest_valid(const char *digest)
{
    if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != RBX_DIGEST_LEN)
        return false;
    for (const char *p = digest + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}
