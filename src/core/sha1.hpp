#pragma once

// SHA-1, for what Redis itself uses it for: naming a script (EVALSHA) and
// shortening long client keys.  Not for security.  OpenSSL's libcrypto
// computes it (NGINX links it already).

#include <cstddef>

namespace rl {

constexpr std::size_t sha1DigestSize = 20;
constexpr std::size_t sha1HexSize = 40;

// 40 lowercase hex digits at out, no NUL.
void sha1Hex(const void *data, std::size_t len, char out[sha1HexSize])
    noexcept;

}  // namespace rl
