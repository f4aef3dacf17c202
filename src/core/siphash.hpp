#pragma once

// SipHash-2-4: a keyed hash for the deny cache's table.  Its keys come
// from clients, so an unkeyed hash would let a client pick keys that all
// land in one probe chain.

#include <cstddef>
#include <cstdint>

namespace rl {

struct SipKey {
    std::uint64_t k0;
    std::uint64_t k1;
};

std::uint64_t sipHash(const SipKey &key, const void *data, std::size_t len)
    noexcept;

}  // namespace rl
