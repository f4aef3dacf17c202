#pragma once

// The script command for one request's zones:
//
//   EVALSHA sha numkeys KEY... now_us Z (alg N period_us burst nkeys)*Z
//
// Every value is its own argument, so no byte of a client key can change
// the command.

#include <cstddef>
#include <cstdint>

#include "rl_core.h"

namespace rl {

// argc exactly.  bytes exactly for everything but window numbers, which
// are counted at their widest because the size does not depend on the
// clock: enough for commandBuild() at any nowMs.
rl_core_status_e commandSize(const rl_core_zone_request_t *zones,
    std::size_t n, std::size_t &argc, std::size_t &bytes) noexcept;

rl_core_status_e commandBuild(const rl_core_zone_request_t *zones,
    std::size_t n, std::uint64_t nowMs, const char **argv,
    std::size_t *argvlen, char *buf, std::size_t bytes) noexcept;

// The same command as one RESP array (what hiredis would send), written
// without an intermediate argv: requestSize() bounds it at any clock.
rl_core_status_e requestSize(const rl_core_zone_request_t *zones,
    std::size_t n, std::size_t &bytes) noexcept;

rl_core_status_e requestBuild(const rl_core_zone_request_t *zones,
    std::size_t n, std::uint64_t nowMs, char *buf, std::size_t bytes,
    std::size_t &len) noexcept;

}  // namespace rl
