#pragma once

// The algorithms (the five of algorithm= and concurrency) as the rest of the core sees them: the name used in
// configuration (and passed to the script), the tag in Redis keys, and how
// many candidate keys a zone passes.

#include <cstddef>
#include <string_view>

#include "rl_core.h"

namespace rl {

struct Algorithm {
    std::string_view name;      // as in "algorithm=" and in the script argv
    std::string_view tag;       // last part of the Redis key
    std::size_t keyCount;       // KEYS per zone
    // Window algorithms name their keys by window number; the caller's
    // window W is at this index of its keys (keys are W - index ...).
    std::size_t currentWindow;
    bool windowed;
    bool takesBurst;
};

// nullptr for a value outside the enum.
const Algorithm *findAlgorithm(rl_core_algorithm_e algorithm) noexcept;

rl_core_status_e parseAlgorithm(std::string_view s,
    rl_core_algorithm_e &algorithm) noexcept;

}  // namespace rl
