#pragma once

// Decimal formatting into caller-provided memory.  The command builder and
// the field formatters run per request, so they write digits straight into
// their buffers instead of going through streams or std::string.

#include <cstddef>
#include <cstdint>

namespace rl {

// The widest int64_t in decimal: "-9223372036854775808".
constexpr std::size_t decimalMax = 20;

inline std::size_t decimalLength(std::uint64_t v) noexcept
{
    std::size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }

    return n;
}

inline std::size_t decimalLength(std::int64_t v) noexcept
{
    if (v >= 0) {
        return decimalLength(static_cast<std::uint64_t>(v));
    }

    // Negate in unsigned arithmetic: -INT64_MIN does not fit an int64_t.
    return 1 + decimalLength(0 - static_cast<std::uint64_t>(v));
}

// Writes v at p (no NUL) and returns the end.
inline char *writeDecimal(char *p, std::uint64_t v) noexcept
{
    char *end = p + decimalLength(v);
    char *q = end;

    do {
        *--q = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);

    return end;
}

inline char *writeDecimal(char *p, std::int64_t v) noexcept
{
    if (v >= 0) {
        return writeDecimal(p, static_cast<std::uint64_t>(v));
    }

    *p++ = '-';
    return writeDecimal(p, 0 - static_cast<std::uint64_t>(v));
}

}  // namespace rl
