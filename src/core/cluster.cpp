#include "cluster.hpp"


namespace rl {

namespace {

// The byte table of CRC-16/XMODEM, made at compile time: entry b is the
// CRC register after shifting b through it from 0, MSB first.
struct Crc16Table {
    std::uint16_t v[256];

    constexpr Crc16Table() : v()
    {
        for (unsigned b = 0; b < 256; b++) {
            std::uint16_t crc = static_cast<std::uint16_t>(b << 8);

            for (int bit = 0; bit < 8; bit++) {
                crc = (crc & 0x8000)
                      ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                      : static_cast<std::uint16_t>(crc << 1);
            }

            v[b] = crc;
        }
    }
};

constexpr Crc16Table kCrc16;

}  // namespace

std::uint16_t crc16(const char *data, std::size_t len) noexcept
{
    std::uint16_t crc = 0;

    for (std::size_t i = 0; i < len; i++) {
        unsigned char b = static_cast<unsigned char>(data[i]);
        crc = static_cast<std::uint16_t>((crc << 8)
                                         ^ kCrc16.v[((crc >> 8) ^ b) & 0xff]);
    }

    return crc;
}

std::size_t hashTagEnd(std::string_view key) noexcept
{
    std::size_t open = key.find('{');

    if (open == std::string_view::npos) {
        return std::string_view::npos;
    }

    std::size_t close = key.find('}', open + 1);

    // No '}' after the '{', or "{}": the whole key is hashed.
    if (close == std::string_view::npos || close == open + 1) {
        return std::string_view::npos;
    }

    return close;
}

std::uint16_t keySlot(std::string_view key) noexcept
{
    std::size_t close = hashTagEnd(key);

    if (close != std::string_view::npos) {
        std::size_t open = key.find('{');
        key = key.substr(open + 1, close - open - 1);
    }

    return static_cast<std::uint16_t>(crc16(key.data(), key.size())
                                      & (kClusterSlots - 1));
}

}  // namespace rl
