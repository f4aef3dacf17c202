#pragma once

// The deny cache: client keys Redis rejected, remembered until their next
// allowed time so a worker can reject them again without a round trip.
//
// A bounded LRU: an open-addressing table (linear probing, keyed SipHash)
// of indices into a slab of entries linked from most to least recently
// used.  Lookups, the hot path under attack, allocate nothing; an insert
// allocates the new key's bytes and, while the cache fills up, grows the
// slab and the table.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "rl_core.h"
#include "siphash.hpp"

namespace rl {

class DenyCache {
public:
    // Above this a cache is refused (nginx -t refuses it first); the
    // indices are 32 bits.
    static constexpr std::size_t maxCapacity = RL_CORE_CACHE_MAX;

    DenyCache(std::size_t capacity, SipKey seed) noexcept;

    // Times are the caller's monotonic clock in microseconds.  ENOMEM
    // leaves the cache as it was.
    rl_core_status_e insert(std::string_view key, std::uint64_t sentUs,
        const rl_core_zone_result_t &result) noexcept;

    bool lookup(std::string_view key, std::uint64_t nowUs,
        rl_core_zone_result_t &out) noexcept;

    std::size_t size() const noexcept { return size_; }

private:
    static constexpr std::uint32_t none = UINT32_MAX;

    struct Entry {
        std::unique_ptr<char[]> key;    // keyLen bytes
        std::uint64_t hash;
        std::uint64_t untilUs;          // rejected while now < untilUs
        std::uint64_t resetAtUs;        // the key is fresh again
        std::int64_t limit;
        std::uint32_t prev;             // towards most recent
        std::uint32_t next;             // towards least recent; free list
        std::uint8_t keyLen;            // keys are at most 128 bytes
    };

    std::uint64_t hash(std::string_view key) const noexcept;
    // The slot holding key, or none.
    std::uint32_t findSlot(std::string_view key, std::uint64_t h)
        const noexcept;
    void placeInTable(std::uint32_t index) noexcept;
    void removeFromTable(std::uint32_t slot) noexcept;
    bool growTable() noexcept;

    void unlink(std::uint32_t index) noexcept;
    void pushFront(std::uint32_t index) noexcept;
    void erase(std::uint32_t slot) noexcept;

    std::size_t capacity_;
    std::size_t size_ = 0;
    SipKey seed_;
    std::vector<Entry> entries_;
    std::vector<std::uint32_t> slots_;  // 0 empty, else entry index + 1
    std::uint32_t head_ = none;         // most recently used
    std::uint32_t tail_ = none;         // least recently used
    std::uint32_t free_ = none;         // entries erased, to reuse
};

}  // namespace rl
