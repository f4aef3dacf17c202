#include "sha1.hpp"

// OpenSSL 3's one-shot SHA1() goes through EVP and allocates a context on
// every call, and the deny cache promises lookups that never allocate (a
// long key is hashed on each).  The SHA_CTX calls hash on the stack; 3.0
// marks them deprecated but keeps them, 1.1 does not mark them.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace rl {

void sha1Hex(const void *data, std::size_t len, char out[sha1HexSize])
    noexcept
{
    static constexpr char hex[] = "0123456789abcdef";
    unsigned char digest[sha1DigestSize];
    SHA_CTX ctx;

    static_assert(SHA_DIGEST_LENGTH == sha1DigestSize, "SHA-1 digest size");

    SHA1_Init(&ctx);

    if (data != nullptr && len > 0) {
        SHA1_Update(&ctx, data, len);
    }

    SHA1_Final(digest, &ctx);

    for (std::size_t i = 0; i < sha1DigestSize; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
}

}  // namespace rl
