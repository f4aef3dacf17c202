#pragma once

// The request's outcome over its answered zones.

#include <cstddef>
#include <cstdint>

#include "rl_core.h"

namespace rl {

// answered may be nullptr: every zone answered.  EINVAL when none did.
rl_core_status_e verdict(const rl_core_zone_result_t *results,
    const unsigned char *answered, std::size_t n, rl_core_verdict_t &out)
    noexcept;

// ceil(ms / 1000); 0 for ms <= 0.
std::int64_t ceilSeconds(std::int64_t ms) noexcept;

}  // namespace rl
