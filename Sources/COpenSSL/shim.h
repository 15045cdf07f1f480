// SHA-256 from OpenSSL's libcrypto (libssl-dev), through its low-level interface: a context on
// the caller's stack, no allocation, no algorithm lookup (OpenSSL 3's one-shot SHA256() and EVP
// fetch the algorithm under a lock on every call), and the CPU's SHA instructions where it has
// them. That interface is deprecated in OpenSSL 3 but kept; the warnings are silenced here.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

static inline void pool_sha256_start(SHA256_CTX *context) { SHA256_Init(context); }

static inline void pool_sha256_update(SHA256_CTX *context, const void *bytes, size_t count) {
    SHA256_Update(context, bytes, count);
}

static inline void pool_sha256_finish(SHA256_CTX *context, unsigned char *digest) {
    SHA256_Final(digest, context);
}

static inline void pool_sha256(const void *bytes, size_t count, unsigned char *digest) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, bytes, count);
    SHA256_Final(digest, &context);
}
