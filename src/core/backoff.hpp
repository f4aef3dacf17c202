#pragma once

#include <cstdint>

namespace rl {

// Reconnect delay after the attempt-th consecutive failure: 0 for the
// first, then 100 ms doubling, capped at 2000 ms.
std::uint64_t backoffMs(unsigned attempt) noexcept;

}  // namespace rl
