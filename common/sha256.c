/* sha256.c — streaming sha256 with OpenSSL's SHA-256 core (its assembly, SHA-NI where the CPU
 * has it), and digest string checks. The SHA256_* functions rather than EVP: EVP's first use
 * initialises OpenSSL's whole library context (configuration, every algorithm's tables), about
 * a millisecond every reprobox command would pay for one digest. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "common/common.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

struct rbx_sha256 {
    SHA256_CTX ctx;
};

struct rbx_sha256 *rbx_sha256_new(void)
{
    struct rbx_sha256 *h = rbx_xcalloc(1, sizeof(*h));
    if (SHA256_Init(&h->ctx) != 1)
        abort();
    return h;
}

void rbx_sha256_update(struct rbx_sha256 *h, const void *data, size_t len)
{
    if (len && SHA256_Update(&h->ctx, data, len) != 1)
        abort();
}

void rbx_sha256_final(struct rbx_sha256 *h, char out[RBX_DIGEST_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned int n = SHA256_DIGEST_LENGTH;
    if (SHA256_Final(md, &h->ctx) != 1)
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
        OPENSSL_cleanse(&h->ctx, sizeof(h->ctx));
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
