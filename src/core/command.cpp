#include "command.hpp"

#include <cstring>
#include <string_view>

#include "algorithm.hpp"
#include "key.hpp"
#include "numbers.hpp"
#include "rate.hpp"
#include "scripts.hpp"

namespace rl {

namespace {

// What one zone contributes, worked out once for sizing and building.
struct ZonePlan {
    const Algorithm *alg;
    KeyParts parts;
    std::uint64_t periodUs;
    std::uint64_t burst;
};

// nullptr when the zone cannot be sent.
const Algorithm *checkZone(const rl_core_zone_request_t &z) noexcept
{
    if (z.limit == nullptr || z.key == nullptr || z.key_len == 0
        || (z.prefix == nullptr && z.prefix_len > 0)
        || (z.zone == nullptr && z.zone_len > 0)
        || z.prefix_len > RL_CORE_PREFIX_MAX
        || z.zone_len > RL_CORE_ZONE_NAME_MAX)
    {
        return nullptr;
    }

    return findAlgorithm(z.limit->algorithm);
}

std::uint64_t burstArgument(const rl_core_limit_t &limit) noexcept
{
    switch (limit.algorithm) {
    case RL_CORE_ALG_GCRA:
        return limit.burst;
    case RL_CORE_ALG_TOKEN_BUCKET:
        // The capacity; rl_core_check_limit() fills N when burst= is
        // absent, and a limit that skipped it gets the same default.
        return limit.burst != 0 ? limit.burst : limit.count;
    default:
        return 0;
    }
}

// The per-zone arguments but the keys: alg N period_us burst nkeys.
std::size_t zoneArgumentBytes(const ZonePlan &plan,
    const rl_core_limit_t &limit) noexcept
{
    return plan.alg->name.size() + decimalLength(limit.count)
           + decimalLength(plan.periodUs) + decimalLength(plan.burst)
           + decimalLength(static_cast<std::uint64_t>(plan.alg->keyCount));
}

ZonePlan planZone(const rl_core_zone_request_t &z, const Algorithm *alg)
    noexcept
{
    ZonePlan plan;

    plan.alg = alg;
    plan.parts.prefix = std::string_view(z.prefix, z.prefix_len);
    plan.parts.zone = std::string_view(z.zone, z.zone_len);
    plan.parts.tag = alg->tag;
    plan.periodUs = z.limit->period_s * usPerSecond;
    plan.burst = burstArgument(*z.limit);

    return plan;
}

}  // namespace

rl_core_status_e commandSize(const rl_core_zone_request_t *zones,
    std::size_t n, std::size_t &argc, std::size_t &bytes) noexcept
{
    if (zones == nullptr || n == 0) {
        return RL_CORE_EINVAL;
    }

    std::size_t keys = 0;
    std::size_t size = 0;

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_zone_request_t &z = zones[i];
        const Algorithm *alg = checkZone(z);

        if (alg == nullptr) {
            return RL_CORE_EINVAL;
        }

        ZonePlan plan = planZone(z, alg);

        std::size_t keyBytes = plan.parts.baseLength()
            + clientKeyLength(std::string_view(z.key, z.key_len));

        if (alg->windowed) {
            keyBytes += 1 + decimalMax;     // ":" and the window number
        }

        keys += alg->keyCount;
        size += alg->keyCount * keyBytes + zoneArgumentBytes(plan, *z.limit);
    }

    // numkeys, now_us ("0") and Z.
    size += decimalLength(static_cast<std::uint64_t>(keys)) + 1
            + decimalLength(static_cast<std::uint64_t>(n));

    argc = 3 + keys + 2 + 5 * n;
    bytes = size;

    return RL_CORE_OK;
}

rl_core_status_e commandBuild(const rl_core_zone_request_t *zones,
    std::size_t n, std::uint64_t nowMs, const char **argv,
    std::size_t *argvlen, char *buf, std::size_t bytes) noexcept
{
    if (zones == nullptr || n == 0 || argv == nullptr || argvlen == nullptr
        || buf == nullptr)
    {
        return RL_CORE_EINVAL;
    }

    // First pass: check every zone and the exact room needed at nowMs,
    // so nothing is written past buf whatever the caller sized.
    std::size_t keys = 0;
    std::size_t need = 0;

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_zone_request_t &z = zones[i];
        const Algorithm *alg = checkZone(z);

        if (alg == nullptr) {
            return RL_CORE_EINVAL;
        }

        ZonePlan plan = planZone(z, alg);
        std::size_t base = plan.parts.baseLength()
            + clientKeyLength(std::string_view(z.key, z.key_len));

        need += alg->keyCount * base + zoneArgumentBytes(plan, *z.limit);

        if (alg->windowed) {
            std::int64_t w = windowNumber(nowMs, z.limit->period_s)
                             - static_cast<std::int64_t>(alg->currentWindow);

            for (std::size_t k = 0; k < alg->keyCount; k++) {
                need += 1 + decimalLength(w + static_cast<std::int64_t>(k));
            }
        }

        keys += alg->keyCount;
    }

    need += decimalLength(static_cast<std::uint64_t>(keys)) + 1
            + decimalLength(static_cast<std::uint64_t>(n));

    if (need > bytes) {
        return RL_CORE_EINVAL;
    }

    char *p = buf;
    std::size_t a = 0;

    // Each argument is written at p, then recorded from start to p.
    auto record = [&](const char *start) noexcept {
        argv[a] = start;
        argvlen[a] = static_cast<std::size_t>(p - start);
        a++;
    };

    static constexpr char evalsha[] = "EVALSHA";
    argv[a] = evalsha;
    argvlen[a++] = sizeof(evalsha) - 1;
    argv[a] = scriptSha1;
    argvlen[a++] = 40;

    char *start = p;
    p = writeDecimal(p, static_cast<std::uint64_t>(keys));
    record(start);

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_zone_request_t &z = zones[i];
        ZonePlan plan = planZone(z, findAlgorithm(z.limit->algorithm));
        char hashed[RL_CORE_HASHED_KEY_LEN];

        plan.parts.client = clientKey(std::string_view(z.key, z.key_len),
                                      hashed);

        std::int64_t w = 0;

        if (plan.alg->windowed) {
            w = windowNumber(nowMs, z.limit->period_s)
                - static_cast<std::int64_t>(plan.alg->currentWindow);
        }

        for (std::size_t k = 0; k < plan.alg->keyCount; k++) {
            start = p;
            p = plan.parts.writeBase(p);

            if (plan.alg->windowed) {
                *p++ = ':';
                p = writeDecimal(p, w + static_cast<std::int64_t>(k));
            }

            record(start);
        }
    }

    // now_us: 0 tells the script to take the time from Redis TIME.
    start = p;
    *p++ = '0';
    record(start);

    start = p;
    p = writeDecimal(p, static_cast<std::uint64_t>(n));
    record(start);

    for (std::size_t i = 0; i < n; i++) {
        const rl_core_limit_t &limit = *zones[i].limit;
        const Algorithm *alg = findAlgorithm(limit.algorithm);
        std::uint64_t values[] = {
            limit.count,
            limit.period_s * usPerSecond,
            burstArgument(limit),
            static_cast<std::uint64_t>(alg->keyCount),
        };

        start = p;
        std::memcpy(p, alg->name.data(), alg->name.size());
        p += alg->name.size();
        record(start);

        for (std::uint64_t v : values) {
            start = p;
            p = writeDecimal(p, v);
            record(start);
        }
    }

    return RL_CORE_OK;
}

}  // namespace rl
