#include "sha1.hpp"

#include <cstring>

namespace rl {

namespace {

inline std::uint32_t rotl(std::uint32_t x, unsigned n) noexcept
{
    return (x << n) | (x >> (32 - n));
}

inline std::uint32_t loadBe32(const unsigned char *p) noexcept
{
    return static_cast<std::uint32_t>(p[0]) << 24
           | static_cast<std::uint32_t>(p[1]) << 16
           | static_cast<std::uint32_t>(p[2]) << 8
           | static_cast<std::uint32_t>(p[3]);
}

inline void storeBe32(unsigned char *p, std::uint32_t v) noexcept
{
    p[0] = static_cast<unsigned char>(v >> 24);
    p[1] = static_cast<unsigned char>(v >> 16);
    p[2] = static_cast<unsigned char>(v >> 8);
    p[3] = static_cast<unsigned char>(v);
}

}  // namespace

Sha1::Sha1() noexcept
    : state_{ 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 },
      length_(0), buffer_{}, buffered_(0)
{
}

void Sha1::block(const unsigned char *p) noexcept
{
    std::uint32_t w[80];

    for (unsigned i = 0; i < 16; i++) {
        w[i] = loadBe32(p + 4 * i);
    }

    for (unsigned i = 16; i < 80; i++) {
        w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }

    std::uint32_t a = state_[0], b = state_[1], c = state_[2],
                  d = state_[3], e = state_[4];

    for (unsigned i = 0; i < 80; i++) {
        std::uint32_t f, k;

        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }

        std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }

    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
    state_[4] += e;
}

void Sha1::update(const void *data, std::size_t len) noexcept
{
    auto p = static_cast<const unsigned char *>(data);

    length_ += len;

    if (buffered_ > 0) {
        std::size_t n = sizeof(buffer_) - buffered_;

        if (n > len) {
            n = len;
        }

        std::memcpy(buffer_ + buffered_, p, n);
        buffered_ += n;
        p += n;
        len -= n;

        if (buffered_ < sizeof(buffer_)) {
            return;
        }

        block(buffer_);
        buffered_ = 0;
    }

    while (len >= sizeof(buffer_)) {
        block(p);
        p += sizeof(buffer_);
        len -= sizeof(buffer_);
    }

    if (len > 0) {
        std::memcpy(buffer_, p, len);
        buffered_ = len;
    }
}

void Sha1::final(unsigned char digest[digestSize]) noexcept
{
    std::uint64_t bits = length_ * 8;

    // Padding: 0x80, zeros up to 56 mod 64, then the length in bits.
    buffer_[buffered_++] = 0x80;

    if (buffered_ > 56) {
        std::memset(buffer_ + buffered_, 0, sizeof(buffer_) - buffered_);
        block(buffer_);
        buffered_ = 0;
    }

    std::memset(buffer_ + buffered_, 0, 56 - buffered_);
    storeBe32(buffer_ + 56, static_cast<std::uint32_t>(bits >> 32));
    storeBe32(buffer_ + 60, static_cast<std::uint32_t>(bits));
    block(buffer_);
    buffered_ = 0;

    for (unsigned i = 0; i < 5; i++) {
        storeBe32(digest + 4 * i, state_[i]);
    }
}

void sha1Hex(const void *data, std::size_t len, char out[Sha1::hexSize])
    noexcept
{
    static constexpr char hex[] = "0123456789abcdef";
    unsigned char digest[Sha1::digestSize];
    Sha1 sha;

    sha.update(data, len);
    sha.final(digest);

    for (std::size_t i = 0; i < Sha1::digestSize; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
}

}  // namespace rl
