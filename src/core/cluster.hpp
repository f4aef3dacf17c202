#pragma once

// Redis Cluster routing without sockets: the key's hash slot, the slot map
// read from CLUSTER SLOTS / CLUSTER SHARDS (as the glue converts it), the
// MOVED / ASK / TRYAGAIN / CLUSTERDOWN replies, and the per-slot grouping
// of a request's zones with the refund plan when the slots disagree.
//
// The rules are those of the Redis Cluster specification ("Key
// distribution model", "Hash tags", "MOVED Redirection", "ASK
// redirection", "Multi-keys operations") and of the CLUSTER SLOTS and
// CLUSTER SHARDS pages; each function says which fact it relies on.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rl_core.h"

namespace rl {

constexpr std::size_t kClusterSlots = RL_CORE_CLUSTER_SLOTS;

// CRC-16/XMODEM: polynomial 0x1021, initial value 0, neither input nor
// output reflected, no final xor; "123456789" gives 0x31c3.
std::uint16_t crc16(const char *data, std::size_t len) noexcept;

// HASH_SLOT of the spec: CRC16 of the hash tag (what lies between the
// first '{' and the first '}' after it, when that is not empty), else of
// the whole key, modulo 16384.
std::uint16_t keySlot(std::string_view key) noexcept;

// Where the hash tag of key ends (the index of its '}'), or npos when the
// whole key is hashed.
std::size_t hashTagEnd(std::string_view key) noexcept;

}  // namespace rl
