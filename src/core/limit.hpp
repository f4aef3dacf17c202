#pragma once

// Validation of a zone's configuration: the limit's numeric bounds, the
// zone name and the key prefix.
//
// Every bound exists so that each intermediate value of the Lua scripts
// stays an exact integer in a double (below 2^53); lua/ uses the same
// numbers.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rl_core.h"

namespace rl {

constexpr std::uint64_t maxBurst = 1000000000;
// gcra: (burst + 1) * T, the furthest the theoretical arrival time runs
// ahead of now, in us.
constexpr std::uint64_t gcraMaxAheadUs = 1000000000000000ULL;  // 10^15
// token_bucket: C * P; sliding_window: N * P (in us).
constexpr std::uint64_t maxProductUs = 1ULL << 52;
// sliding_log keeps up to N members per key in a sorted set.
constexpr std::uint64_t slidingLogMaxCount = 1000000;

// Fills the default burst and checks every bound.  On failure writes a
// NUL-terminated message naming the bound into err (if errlen > 0).
rl_core_status_e checkLimit(rl_core_limit_t &limit, char *err,
    std::size_t errlen) noexcept;

// What a fresh key admits at once, in units (rl_core_limit_units()).
std::uint64_t limitUnits(const rl_core_limit_t &limit) noexcept;

bool validZoneName(std::string_view s) noexcept;
bool validPrefix(std::string_view s) noexcept;

}  // namespace rl
