#pragma once

// The script command for one request's zones:
//
//   EVALSHA sha numkeys KEY... now_us mode lease Z
//           (alg N period_us burst cost nkeys)*Z      (script ABI v2)
//
// Every value is its own argument, so no byte of a client key can change
// the command.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rl_core.h"

namespace rl {

// The command as one RESP array (what hiredis would format from an argv),
// written directly: requestSize() bounds it at any clock, requestBuild()
// writes it and refuses a buffer short of what it needs.
rl_core_status_e requestSize(const rl_core_zone_request_t *zones,
    std::size_t n, std::size_t leaseLen, std::size_t &bytes) noexcept;

rl_core_status_e requestBuild(const rl_core_zone_request_t *zones,
    std::size_t n, rl_core_mode_e mode, std::string_view lease,
    std::uint64_t nowMs, char *buf, std::size_t bytes, std::size_t &len)
    noexcept;

}  // namespace rl
