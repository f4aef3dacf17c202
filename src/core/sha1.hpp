#pragma once

// SHA-1 (FIPS 180-4), for what Redis itself uses it for: naming a script
// (EVALSHA) and shortening long client keys.  Not for security.

#include <cstddef>
#include <cstdint>

namespace rl {

class Sha1 {
public:
    static constexpr std::size_t digestSize = 20;
    static constexpr std::size_t hexSize = 40;

    Sha1() noexcept;

    void update(const void *data, std::size_t len) noexcept;
    // Ends the hash; the object must not be updated afterwards.
    void final(unsigned char digest[digestSize]) noexcept;

private:
    void block(const unsigned char *p) noexcept;

    std::uint32_t state_[5];
    std::uint64_t length_;          // bytes hashed so far
    unsigned char buffer_[64];
    std::size_t buffered_;
};

// 40 lowercase hex digits at out, no NUL.
void sha1Hex(const void *data, std::size_t len, char out[Sha1::hexSize])
    noexcept;

}  // namespace rl
