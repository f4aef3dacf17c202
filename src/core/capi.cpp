// The C ABI of rl_core.h: thin wrappers over the C++ core.
//
// Every function is noexcept and catches everything, so no exception can
// unwind into NGINX's C frames; the archive is built with hidden
// visibility, so only these are exported from the module.

#include "rl_core.h"

#include <cstring>
#include <new>
#include <random>
#include <string_view>

#include "algorithm.hpp"
#include "backoff.hpp"
#include "cache.hpp"
#include "command.hpp"
#include "fields.hpp"
#include "key.hpp"
#include "limit.hpp"
#include "rate.hpp"
#include "reply.hpp"
#include "scripts.hpp"
#include "sha1.hpp"
#include "verdict.hpp"

#define RL_CORE_EXPORT  extern "C" __attribute__((visibility("default")))

// The opaque handle of rl_core.h.
struct rl_core_cache_s {
    rl::DenyCache cache;
};

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
    try {
        if (s == nullptr || count == nullptr || period_s == nullptr) {
            return RL_CORE_EINVAL;
        }

        return rl::parseRate(std::string_view(s, len), *count, *period_s);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
}


RL_CORE_EXPORT rl_core_status_e
rl_core_parse_algorithm(const char *s, size_t len,
    rl_core_algorithm_e *algorithm) noexcept
{
    try {
        if (s == nullptr || algorithm == nullptr) {
            return RL_CORE_EINVAL;
        }

        return rl::parseAlgorithm(std::string_view(s, len), *algorithm);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
}


RL_CORE_EXPORT const char *
rl_core_algorithm_name(rl_core_algorithm_e algorithm) noexcept
{
    const rl::Algorithm *alg = rl::findAlgorithm(algorithm);

    // The names are string literals, so data() is NUL-terminated.
    return alg != nullptr ? alg->name.data() : "unknown";
}


RL_CORE_EXPORT rl_core_status_e
rl_core_check_limit(rl_core_limit_t *limit, char *err, size_t errlen)
    noexcept
{
    try {
        if (limit == nullptr) {
            return RL_CORE_EINVAL;
        }

        return rl::checkLimit(*limit, err, errlen);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
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


RL_CORE_EXPORT void
rl_core_client_key(const char *key, size_t len,
    char hashed[RL_CORE_HASHED_KEY_LEN], const char **out, size_t *out_len)
    noexcept
{
    if (out == nullptr || out_len == nullptr) {
        return;
    }

    std::string_view k = view(key, len);

    // hashed is only needed for a long key; without it a long key has no
    // form, and the caller gets NULL rather than an unset pointer.
    if (hashed == nullptr) {
        bool kept = k.size() <= RL_CORE_CLIENT_KEY_MAX;

        *out = kept ? k.data() : nullptr;
        *out_len = kept ? k.size() : 0;
        return;
    }

    char (&h)[RL_CORE_HASHED_KEY_LEN] =
        *reinterpret_cast<char (*)[RL_CORE_HASHED_KEY_LEN]>(hashed);
    k = rl::clientKey(k, h);

    *out = k.data();
    *out_len = k.size();
}


RL_CORE_EXPORT size_t
rl_core_zone_key_count(rl_core_algorithm_e algorithm) noexcept
{
    const rl::Algorithm *alg = rl::findAlgorithm(algorithm);

    return alg != nullptr ? alg->keyCount : 0;
}


RL_CORE_EXPORT rl_core_status_e
rl_core_command_size(const rl_core_zone_request_t *zones, size_t n,
    size_t *argc, size_t *bytes) noexcept
{
    try {
        if (argc == nullptr || bytes == nullptr) {
            return RL_CORE_EINVAL;
        }

        return rl::commandSize(zones, n, *argc, *bytes);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
}


RL_CORE_EXPORT rl_core_status_e
rl_core_command_build(const rl_core_zone_request_t *zones, size_t n,
    uint64_t now_ms, const char **argv, size_t *argvlen, char *buf,
    size_t bytes) noexcept
{
    try {
        return rl::commandBuild(zones, n, now_ms, argv, argvlen, buf, bytes);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
}


RL_CORE_EXPORT rl_core_status_e
rl_core_request_size(const rl_core_zone_request_t *zones, size_t n,
    size_t *bytes) noexcept
{
    try {
        if (bytes == nullptr) {
            return RL_CORE_EINVAL;
        }

        return rl::requestSize(zones, n, *bytes);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
}


RL_CORE_EXPORT rl_core_status_e
rl_core_request_build(const rl_core_zone_request_t *zones, size_t n,
    uint64_t now_ms, char *buf, size_t bytes, size_t *len) noexcept
{
    try {
        if (len == nullptr) {
            return RL_CORE_EINVAL;
        }

        return rl::requestBuild(zones, n, now_ms, buf, bytes, *len);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
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


RL_CORE_EXPORT void
rl_core_sha1_hex(const void *data, size_t len, char out[41]) noexcept
{
    rl::sha1Hex(data, len, out);
    out[rl::Sha1::hexSize] = '\0';
}


RL_CORE_EXPORT rl_core_status_e
rl_core_decode_reply(const int64_t *values, size_t n, size_t nzones,
    rl_core_zone_result_t *out) noexcept
{
    try {
        return rl::decodeReply(values, n, nzones, out);
    } catch (...) {
        return RL_CORE_EREPLY;
    }
}


RL_CORE_EXPORT rl_core_redis_error_e
rl_core_classify_error(const char *msg, size_t len) noexcept
{
    try {
        return rl::classifyError(view(msg, len));
    } catch (...) {
        return RL_CORE_REDIS_ERR_REQUEST;
    }
}


RL_CORE_EXPORT rl_core_status_e
rl_core_verdict(const rl_core_zone_result_t *results,
    const unsigned char *answered, size_t n, rl_core_verdict_t *verdict)
    noexcept
{
    try {
        if (verdict == nullptr) {
            return RL_CORE_EINVAL;
        }

        return rl::verdict(results, answered, n, *verdict);
    } catch (...) {
        return RL_CORE_EINVAL;
    }
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
    try {
        return rl::formatPolicy(buf, cap, zones, n);
    } catch (...) {
        return 0;
    }
}


RL_CORE_EXPORT size_t
rl_core_format_ratelimit(char *buf, size_t cap,
    const rl_core_field_zone_t *zones, size_t n) noexcept
{
    try {
        return rl::formatRatelimit(buf, cap, zones, n);
    } catch (...) {
        return 0;
    }
}


RL_CORE_EXPORT uint64_t
rl_core_backoff_ms(unsigned attempt) noexcept
{
    return rl::backoffMs(attempt);
}


RL_CORE_EXPORT rl_core_cache_t *
rl_core_cache_create(size_t capacity) noexcept
{
    if (capacity == 0 || capacity > rl::DenyCache::maxCapacity) {
        return nullptr;
    }

    try {
        void *mem = ::operator new(sizeof(rl_core_cache_t), std::nothrow);

        if (mem == nullptr) {
            return nullptr;
        }

        return new (mem) rl_core_cache_t{
            rl::DenyCache(capacity, cacheSeed(mem)) };
    } catch (...) {
        return nullptr;
    }
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
    try {
        if (cache == nullptr || result == nullptr
            || (key == nullptr && len > 0))
        {
            return RL_CORE_EINVAL;
        }

        return cache->cache.insert(view(key, len), sent_us, *result);
    } catch (...) {
        return RL_CORE_ENOMEM;
    }
}


RL_CORE_EXPORT int
rl_core_cache_lookup(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t now_us, rl_core_zone_result_t *out) noexcept
{
    try {
        if (cache == nullptr || out == nullptr
            || (key == nullptr && len > 0))
        {
            return 0;
        }

        return cache->cache.lookup(view(key, len), now_us, *out) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}


RL_CORE_EXPORT size_t
rl_core_cache_size(const rl_core_cache_t *cache) noexcept
{
    return cache != nullptr ? cache->cache.size() : 0;
}
