#pragma once

// What comes back from Redis: the script's integers and error replies.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rl_core.h"

namespace rl {

// RL_CORE_REPLY_VALUES integers per zone; EREPLY unless the shape and
// every invariant
// that rl_core_decode_reply() lists in rl_core.h hold.
rl_core_status_e decodeReply(const std::int64_t *values, std::size_t n,
    std::size_t nzones, rl_core_zone_result_t *out) noexcept;

// By the error's first word.
rl_core_redis_error_e classifyError(std::string_view msg) noexcept;

}  // namespace rl
