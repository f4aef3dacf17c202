#pragma once

// Response field values of draft-ietf-httpapi-ratelimit-headers-10.

#include <cstddef>

#include "rl_core.h"

namespace rl {

// Bytes written, or 0 when cap is too small (buf's content is then
// unspecified).  No NUL is written.
std::size_t formatPolicy(char *buf, std::size_t cap,
    const rl_core_field_zone_t *zones, std::size_t n) noexcept;
std::size_t formatRatelimit(char *buf, std::size_t cap,
    const rl_core_field_zone_t *zones, std::size_t n) noexcept;

}  // namespace rl
