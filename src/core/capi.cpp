// The C ABI of rl_core.h: thin wrappers over the C++ core.
//
// Every function is noexcept, and so is every core function they call;
// the one call that can throw (std::random_device, below) is caught where
// it is made, so no exception can unwind into NGINX's C frames.  The
// test-only entry points of rl_core_test.h are in capi_test.cpp.

#include "rl_core.h"

#include <new>
#include <random>
#include <string_view>

#include "algorithm.hpp"
#include "cache.hpp"
#include "capi.hpp"
#include "command.hpp"
#include "fields.hpp"
#include "limit.hpp"
#include "rate.hpp"
#include "reply.hpp"
#include "scripts.hpp"
#include "verdict.hpp"

namespace {

std::string_view view(const char *s, std::size_t len) noexcept
{
    return s != nullptr ? std::string_view(s, len) : std::string_view();
}

// The table's hash key: random per cache when the system offers it, else
// at least different per process and per cache.
rl::SipKey cacheSeed(const void *where) noexcept
{
    rl::SipKey seed = { reinterpret_cast<std::uintptr_t>(where),
                        0x9e3779b97f4a7c15ULL };

    // std::random_device throws when the system has no entropy source.
    try {
        std::random_device rd;
        seed.k0 ^= (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
        seed.k1 ^= (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    } catch (...) {
        seed.k1 ^= reinterpret_cast<std::uintptr_t>(&seed);
    }

    return seed;
}

}  // namespace


RL_CORE_EXPORT rl_core_status_e
rl_core_parse_rate(const char *s, size_t len, uint64_t *count,
    uint64_t *period_s) noexcept
{
    if (s == nullptr || count == nullptr || period_s == nullptr) {
        return RL_CORE_EINVAL;
    }

    return rl::parseRate(std::string_view(s, len), *count, *period_s);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_parse_algorithm(const char *s, size_t len,
    rl_core_algorithm_e *algorithm) noexcept
{
    if (s == nullptr || algorithm == nullptr) {
        return RL_CORE_EINVAL;
    }

    return rl::parseAlgorithm(std::string_view(s, len), *algorithm);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_check_limit(rl_core_limit_t *limit, char *err, size_t errlen)
    noexcept
{
    if (limit == nullptr) {
        return RL_CORE_EINVAL;
    }

    return rl::checkLimit(*limit, err, errlen);
}


RL_CORE_EXPORT int
rl_core_valid_zone_name(const char *s, size_t len) noexcept
{
    return s != nullptr && rl::validZoneName(std::string_view(s, len));
}


RL_CORE_EXPORT int
rl_core_valid_prefix(const char *s, size_t len) noexcept
{
    return s != nullptr && rl::validPrefix(std::string_view(s, len));
}


RL_CORE_EXPORT rl_core_status_e
rl_core_request_size(const rl_core_zone_request_t *zones, size_t n,
    size_t lease_len, size_t *bytes) noexcept
{
    if (bytes == nullptr) {
        return RL_CORE_EINVAL;
    }

    return rl::requestSize(zones, n, lease_len, *bytes);
}


RL_CORE_EXPORT rl_core_status_e
rl_core_request_build(const rl_core_zone_request_t *zones, size_t n,
    rl_core_mode_e mode, const char *lease, size_t lease_len,
    uint64_t now_ms, char *buf, size_t bytes, size_t *len) noexcept
{
    if (len == nullptr || (lease == nullptr && lease_len > 0)) {
        return RL_CORE_EINVAL;
    }

    return rl::requestBuild(zones, n, mode, view(lease, lease_len), now_ms,
                            buf, bytes, *len);
}


RL_CORE_EXPORT const char *
rl_core_script(size_t *len) noexcept
{
    if (len != nullptr) {
        *len = rl::scriptLength;
    }

    return rl::scriptText;
}


RL_CORE_EXPORT const char *
rl_core_script_sha1(void) noexcept
{
    return rl::scriptSha1;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_decode_reply(const int64_t *values, size_t n, size_t nzones,
    rl_core_zone_result_t *out) noexcept
{
    return rl::decodeReply(values, n, nzones, out);
}


RL_CORE_EXPORT rl_core_redis_error_e
rl_core_classify_error(const char *msg, size_t len) noexcept
{
    return rl::classifyError(view(msg, len));
}


RL_CORE_EXPORT rl_core_status_e
rl_core_verdict(const rl_core_zone_result_t *results,
    const unsigned char *answered, size_t n, rl_core_verdict_t *verdict)
    noexcept
{
    if (verdict == nullptr) {
        return RL_CORE_EINVAL;
    }

    return rl::verdict(results, answered, n, *verdict);
}


RL_CORE_EXPORT int64_t
rl_core_ceil_seconds(int64_t ms) noexcept
{
    return rl::ceilSeconds(ms);
}


RL_CORE_EXPORT size_t
rl_core_format_policy(char *buf, size_t cap,
    const rl_core_field_zone_t *zones, size_t n) noexcept
{
    return rl::formatPolicy(buf, cap, zones, n);
}


RL_CORE_EXPORT size_t
rl_core_format_ratelimit(char *buf, size_t cap,
    const rl_core_field_zone_t *zones, size_t n) noexcept
{
    return rl::formatRatelimit(buf, cap, zones, n);
}


RL_CORE_EXPORT rl_core_cache_t *
rl_core_cache_create(size_t capacity) noexcept
{
    if (capacity == 0 || capacity > rl::DenyCache::maxCapacity) {
        return nullptr;
    }

    void *mem = ::operator new(sizeof(rl_core_cache_t), std::nothrow);

    if (mem == nullptr) {
        return nullptr;
    }

    return new (mem) rl_core_cache_t{
        rl::DenyCache(capacity, cacheSeed(mem)) };
}


RL_CORE_EXPORT void
rl_core_cache_destroy(rl_core_cache_t *cache) noexcept
{
    delete cache;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_cache_insert(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t sent_us, const rl_core_zone_result_t *result) noexcept
{
    if (cache == nullptr || result == nullptr
        || (key == nullptr && len > 0))
    {
        return RL_CORE_EINVAL;
    }

    return cache->cache.insert(view(key, len), sent_us, *result);
}


RL_CORE_EXPORT int
rl_core_cache_lookup(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t now_us, rl_core_zone_result_t *out) noexcept
{
    if (cache == nullptr || out == nullptr
        || (key == nullptr && len > 0))
    {
        return 0;
    }

    return cache->cache.lookup(view(key, len), now_us, *out) ? 1 : 0;
}
