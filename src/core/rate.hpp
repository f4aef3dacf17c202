#pragma once

// Rates as configured: "Nr/s", "Nr/m", "Nr/h", "Nr/d", "Nr/w", "Nr/M".

#include <cstdint>
#include <string_view>

#include "rl_core.h"

namespace rl {

// No algorithm takes more than this many requests per period.
constexpr std::uint64_t maxCount = 1000000000;

constexpr std::uint64_t usPerSecond = 1000000;

// EINVAL when malformed, ERANGE when N is 0 or above maxCount; count and
// periodS are written only on success.
rl_core_status_e parseRate(std::string_view s, std::uint64_t &count,
    std::uint64_t &periodS) noexcept;

// 's', 'm', 'h', 'd', 'w' or 'M' for a valid period in seconds, else '?'.
char periodUnit(std::uint64_t periodS) noexcept;

}  // namespace rl
