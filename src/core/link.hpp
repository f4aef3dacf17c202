#pragma once

// The bookkeeping of one Redis connection of the link, without sockets:
// states, the commands it holds, the reconnect pace and the script loads
// after NOSCRIPT.  The glue does the I/O and tells these functions what
// happened; they say what follows.  Also the version check of the
// handshake.

#include <cstdint>
#include <string_view>

#include "rl_core.h"

namespace rl {

void connInit(rl_core_conn_t &c, std::uint32_t maxPending) noexcept;
bool connConnect(rl_core_conn_t &c) noexcept;
bool connConnected(rl_core_conn_t &c) noexcept;
bool connReady(rl_core_conn_t &c) noexcept;
std::uint64_t connLost(rl_core_conn_t &c) noexcept;
bool connRoom(const rl_core_conn_t &c) noexcept;
rl_core_status_e connQueue(rl_core_conn_t &c) noexcept;
void connUnqueue(rl_core_conn_t &c) noexcept;
bool connWrite(rl_core_conn_t &c, std::uint32_t &gen) noexcept;
void connReplied(rl_core_conn_t &c, bool answered) noexcept;
bool connResend(rl_core_conn_t &c, std::uint32_t &gen) noexcept;

// "redis_version:X.Y.Z" of an INFO reply; false when missing or malformed.
bool redisVersion(std::string_view info, rl_core_version_t &v) noexcept;
bool redisVersionSupported(const rl_core_version_t &v) noexcept;

}  // namespace rl
