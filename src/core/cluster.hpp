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

// What a host string is, as far as connecting to it goes.
rl_core_host_kind_e hostKind(std::string_view host) noexcept;

// A numeric host as bytes, to compare addresses rather than spellings.
struct Address {
    int family = 0;                         // AF_INET or AF_INET6
    std::array<unsigned char, 16> bytes {};
};

// The slot map: 16384 entries, each a node index or RL_CORE_CLUSTER_NO_NODE,
// and the masters, each once.
class SlotMap {
public:
    struct Node {
        std::string host;           // numeric, no brackets
        std::uint16_t port;
        Address addr;               // for deduplication
    };

    // Fills the map from ranges; origin replaces empty hosts (the node
    // that answered).  On failure writes a message into err and leaves
    // the map empty.  May throw std::bad_alloc.
    rl_core_status_e build(const rl_core_cluster_range_t *ranges,
        std::size_t n, std::string_view origin, char *err,
        std::size_t errlen);

    std::uint32_t lookup(std::uint16_t slot) const noexcept
    {
        return slot < kClusterSlots ? slots_[slot] : RL_CORE_CLUSTER_NO_NODE;
    }

    std::size_t nodeCount() const noexcept { return nodes_.size(); }
    const Node &node(std::size_t i) const noexcept { return nodes_[i]; }
    std::size_t unassigned() const noexcept { return unassigned_; }

    // The index of the node at host:port (numeric, brackets allowed), or
    // RL_CORE_CLUSTER_NO_NODE.
    std::uint32_t find(std::string_view host, std::uint16_t port)
        const noexcept;

private:
    rl_core_status_e fill(const rl_core_cluster_range_t *ranges,
        std::size_t n, std::string_view origin, char *err,
        std::size_t errlen);
    std::uint32_t find(const Address &addr, std::uint16_t port)
        const noexcept;

    std::array<std::uint32_t, kClusterSlots> slots_ {};
    std::vector<Node> nodes_;
    std::size_t unassigned_ = kClusterSlots;
};

// Parses a Redis error reply's text (with or without hiredis's missing
// leading '-').  RL_CORE_OK with out.kind set for any text (NONE for an
// error that is not a cluster one); RL_CORE_EREPLY when it names MOVED or
// ASK but the rest is malformed (then out.kind is NONE).
rl_core_status_e parseRedirect(std::string_view msg,
    rl_core_redirect_t &out) noexcept;

// Groups zones by slot: groups in the order of their first zone, zones
// in rate_limit order within each group.  order and groups hold n each.
void groupBySlot(const std::uint16_t *slots, std::size_t n,
    std::size_t *order, rl_core_cluster_group_t *groups,
    std::size_t &ngroups) noexcept;

// The outcome of a request decided per slot, and the refunds if it is not
// admitted.  RL_CORE_EINVAL when groups and order do not describe a
// partition of n zones.
rl_core_status_e clusterOutcome(const rl_core_cluster_group_t *groups,
    std::size_t ngroups, const std::size_t *order, std::size_t n,
    const rl_core_group_state_e *states, const int *allowed,
    rl_core_outcome_e &outcome, rl_core_cluster_refund_t *refunds,
    std::size_t &nrefunds) noexcept;

}  // namespace rl
