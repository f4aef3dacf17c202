#pragma once

// What the C ABI's translation units share: the export attribute and the
// deny cache's opaque handle.  Not for the glue, which sees rl_core.h only.

#include "rl_core.h"

#include "cache.hpp"

// The archive is built with hidden visibility: only these are exported.
#define RL_CORE_EXPORT  extern "C" __attribute__((visibility("default")))

// The opaque handle of rl_core.h.
struct rl_core_cache_s {
    rl::DenyCache cache;
};
