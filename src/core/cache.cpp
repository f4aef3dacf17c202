#include "cache.hpp"

#include <cstring>
#include <new>

#include "key.hpp"

namespace rl {

namespace {

constexpr std::size_t initialSlots = 16;

std::uint64_t saturatingAdd(std::uint64_t a, std::uint64_t b) noexcept
{
    return a + b < a ? UINT64_MAX : a + b;
}

constexpr std::uint64_t usPerMs = 1000;

// ms * 1000, saturating; a negative ms is 0.
std::uint64_t msToUs(std::int64_t ms) noexcept
{
    if (ms <= 0) {
        return 0;
    }

    std::uint64_t v = static_cast<std::uint64_t>(ms);

    return v > UINT64_MAX / usPerMs ? UINT64_MAX : v * usPerMs;
}

// Microseconds as milliseconds rounded up, as the script's replies are.
std::int64_t ceilMs(std::uint64_t us) noexcept
{
    std::uint64_t v = us / usPerMs + (us % usPerMs != 0);

    return v > static_cast<std::uint64_t>(INT64_MAX)
           ? INT64_MAX : static_cast<std::int64_t>(v);
}

}  // namespace

DenyCache::DenyCache(std::size_t capacity, SipKey seed) noexcept
    : capacity_(capacity), seed_(seed)
{
}

std::uint64_t DenyCache::hash(std::string_view key) const noexcept
{
    return sipHash(seed_, key.data(), key.size());
}

std::uint32_t DenyCache::findSlot(std::string_view key, std::uint64_t h)
    const noexcept
{
    if (slots_.empty()) {
        return none;
    }

    std::size_t mask = slots_.size() - 1;

    // The table is at most half full, so an empty slot ends every probe.
    for (std::size_t i = h & mask; ; i = (i + 1) & mask) {
        std::uint32_t v = slots_[i];

        if (v == 0) {
            return none;
        }

        const Entry &e = entries_[v - 1];

        if (e.hash == h && e.keyLen == key.size()
            && std::memcmp(e.key.get(), key.data(), key.size()) == 0)
        {
            return static_cast<std::uint32_t>(i);
        }
    }
}

void DenyCache::placeInTable(std::uint32_t index) noexcept
{
    std::size_t mask = slots_.size() - 1;
    std::size_t i = entries_[index].hash & mask;

    while (slots_[i] != 0) {
        i = (i + 1) & mask;
    }

    slots_[i] = index + 1;
}

void DenyCache::removeFromTable(std::uint32_t slot) noexcept
{
    std::size_t mask = slots_.size() - 1;
    std::size_t hole = slot;

    // Backward shift: pull later entries of the probe chain into the hole
    // when their home slot allows it, so no tombstones are needed.
    slots_[hole] = 0;

    for (std::size_t j = (hole + 1) & mask; slots_[j] != 0;
         j = (j + 1) & mask)
    {
        std::size_t home = entries_[slots_[j] - 1].hash & mask;

        // The entry at j may move to hole unless its home lies cyclically
        // in (hole, j].
        bool stays = hole <= j ? (hole < home && home <= j)
                               : (hole < home || home <= j);

        if (!stays) {
            slots_[hole] = slots_[j];
            slots_[j] = 0;
            hole = j;
        }
    }
}

bool DenyCache::growTable() noexcept
{
    std::size_t want = slots_.empty() ? initialSlots : slots_.size() * 2;
    std::vector<std::uint32_t> bigger;

    try {
        bigger.assign(want, 0);
    } catch (...) {
        return false;
    }

    slots_.swap(bigger);

    for (std::uint32_t i = head_; i != none; i = entries_[i].next) {
        placeInTable(i);
    }

    return true;
}

void DenyCache::unlink(std::uint32_t index) noexcept
{
    Entry &e = entries_[index];

    if (e.prev != none) {
        entries_[e.prev].next = e.next;
    } else {
        head_ = e.next;
    }

    if (e.next != none) {
        entries_[e.next].prev = e.prev;
    } else {
        tail_ = e.prev;
    }

    e.prev = none;
    e.next = none;
}

void DenyCache::pushFront(std::uint32_t index) noexcept
{
    Entry &e = entries_[index];

    e.prev = none;
    e.next = head_;

    if (head_ != none) {
        entries_[head_].prev = index;
    } else {
        tail_ = index;
    }

    head_ = index;
}

void DenyCache::erase(std::uint32_t slot) noexcept
{
    std::uint32_t index = slots_[slot] - 1;
    Entry &e = entries_[index];

    removeFromTable(slot);
    unlink(index);
    e.key.reset();
    e.keyLen = 0;
    e.next = free_;
    free_ = index;
    size_--;
}

rl_core_status_e DenyCache::insert(std::string_view key, std::uint64_t sentUs,
    const rl_core_zone_result_t &result) noexcept
{
    // The reply's retry_after_ms is rounded up: the true wait, counted
    // from the script's run (after sentUs), is more than retry - 1 ms.
    // Rounded down so, the cache never rejects what Redis would admit; a
    // wait of 1 ms or less is not worth remembering.
    if (result.retry_after_ms <= 1) {
        return RL_CORE_OK;
    }

    std::uint64_t untilUs = saturatingAdd(sentUs,
                                          msToUs(result.retry_after_ms - 1));
    std::uint64_t resetAt = saturatingAdd(sentUs,
                                          msToUs(result.reset_after_ms));

    char hashed[RL_CORE_HASHED_KEY_LEN];
    std::string_view k = clientKey(key, hashed);
    std::uint64_t h = hash(k);

    std::uint32_t slot = findSlot(k, h);

    if (slot != none) {
        std::uint32_t index = slots_[slot] - 1;
        Entry &e = entries_[index];

        // Other requests can only push a key's next allowed time later,
        // so an older, earlier answer never shortens a known wait.
        if (untilUs > e.untilUs) {
            e.untilUs = untilUs;
        }
        if (resetAt > e.resetAtUs) {
            e.resetAtUs = resetAt;
        }
        e.limit = result.limit;

        unlink(index);
        pushFront(index);

        return RL_CORE_OK;
    }

    // Everything that can fail comes first, so a failure changes nothing.
    std::unique_ptr<char[]> bytes(new (std::nothrow) char[k.size() + 1]);

    if (!bytes) {
        return RL_CORE_ENOMEM;
    }

    std::memcpy(bytes.get(), k.data(), k.size());

    std::uint32_t index;

    if (size_ == capacity_) {
        // Full: the least recently used entry makes room; the table does
        // not grow, as the count stays the same.
        std::uint32_t victim = findSlot(
            std::string_view(entries_[tail_].key.get(),
                             entries_[tail_].keyLen),
            entries_[tail_].hash);

        erase(victim);
        index = free_;
        free_ = entries_[index].next;

    } else {
        if ((size_ + 1) * 2 > slots_.size() && !growTable()) {
            return RL_CORE_ENOMEM;
        }

        if (free_ != none) {
            index = free_;
            free_ = entries_[index].next;

        } else {
            try {
                entries_.emplace_back();
            } catch (...) {
                return RL_CORE_ENOMEM;
            }

            index = static_cast<std::uint32_t>(entries_.size() - 1);
        }
    }

    Entry &e = entries_[index];

    e.key = std::move(bytes);
    e.keyLen = static_cast<std::uint8_t>(k.size());
    e.hash = h;
    e.untilUs = untilUs;
    e.resetAtUs = resetAt;
    e.limit = result.limit;

    placeInTable(index);
    pushFront(index);
    size_++;

    return RL_CORE_OK;
}

bool DenyCache::lookup(std::string_view key, std::uint64_t nowUs,
    rl_core_zone_result_t &out) noexcept
{
    char hashed[RL_CORE_HASHED_KEY_LEN];
    std::string_view k = clientKey(key, hashed);
    std::uint32_t slot = findSlot(k, hash(k));

    if (slot == none) {
        return false;
    }

    std::uint32_t index = slots_[slot] - 1;
    Entry &e = entries_[index];

    if (nowUs >= e.untilUs) {
        erase(slot);
        return false;
    }

    std::uint64_t retry = e.untilUs - nowUs;
    std::uint64_t reset = e.resetAtUs > nowUs ? e.resetAtUs - nowUs : 0;

    out.allowed = 0;
    out.limit = e.limit;
    out.remaining = 0;
    out.retry_after_ms = ceilMs(retry);
    out.reset_after_ms = ceilMs(reset > retry ? reset : retry);
    out.delay_ms = 0;

    unlink(index);
    pushFront(index);

    return true;
}

}  // namespace rl
